//! The `toolhost` command.

mod bench;
mod cli;

/// mimalloc: a call allocates and frees many small objects across the
/// runtime's worker threads (its record, JSON values, strings, task
/// state), where glibc's allocator spent about a tenth of a busy server's
/// CPU. Built without transparent huge pages for its heap (the workspace's
/// `no_thp`): they cost start-up time and memory and bought no throughput.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
