//! `wrong-world`: a plain WASI command (`wasi:cli/command`), not a tool.
//!
//! Not a shipped tool. It is a valid component of the wrong world: it exports
//! `wasi:cli/run` and neither `describe` nor `invoke`. The host must refuse it
//! at load with a clear message (that it is not a `toolhost:tool` component),
//! never run `main`, and never crash.

fn main() {
    println!("wrong-world: I am a WASI command, not a toolhost tool");
}
