//! The `toolhost` command.

mod bench;
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
