//! Paths of the guest components built from `tools/`, for tests, examples
//! and benchmarks. Building this crate builds every guest for
//! `wasm32-wasip2` (see `build.rs`); nothing here is committed as `.wasm`.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
