//! Harm aimed at the host's channels: log and progress floods, stdout and
//! stderr floods, and a call that only ends when it is cancelled.

use std::io::Write;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, Level, ToolError};

use crate::{NoInput, to_usize};

/// Padding that makes each log line and progress message about 200 bytes.
const FILLER: &str = "the quick brown fox jumps over the lazy dog; \
                      the quick brown fox jumps over the lazy dog; \
                      the quick brown fox jumps over the lazy dog; \
                      the quick brown fox jumps over the lazy dog";

/// How many host calls to make.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Flood {
    /// Calls to `log` (at `info`), each about 200 bytes. Default 0.
    #[serde(default)]
    logs: u64,
    /// Calls to `progress`, each with a message of about 200 bytes. Default 0.
    #[serde(default)]
    progress: u64,
    /// Make every report say it is finished (`done == total`), as a guest
    /// would that tries to slip past the host's coalescing. Default false.
    #[serde(default)]
    finished: bool,
}

/// How many host calls were made.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Flooded {
    /// Calls to `log` made.
    logs: u64,
    /// Calls to `progress` made.
    progress: u64,
}

/// Call `log` and then `progress` as many times as asked.
pub(crate) fn flood_host(ctx: &Ctx, input: Flood) -> Result<Flooded, ToolError> {
    for i in 0..input.logs {
        ctx.log(Level::Info, &format!("flood log line {i}: {FILLER}"));
    }
    for i in 0..input.progress {
        let total = if input.finished {
            i + 1
        } else {
            input.progress
        };
        ctx.progress(
            i + 1,
            Some(total),
            Some(&format!("flood progress {i}: {FILLER}")),
        );
    }
    Ok(Flooded {
        logs: input.logs,
        progress: input.progress,
    })
}

/// How much to write.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StdoutFlood {
    /// Bytes to write to stdout, and again to stderr (lines of `o`s or `e`s).
    bytes: u64,
    /// Milliseconds to wait after writing, before returning (0 by default):
    /// a call that keeps whatever the host holds of its output in flight.
    #[serde(default)]
    then_ms: u64,
}

/// What the writes returned.
#[derive(Serialize, JsonSchema)]
pub(crate) struct StdoutFlooded {
    /// Bytes accepted by stdout.
    stdout_written: u64,
    /// The error that stopped the stdout writes, if any.
    stdout_error: Option<String>,
    /// Bytes accepted by stderr.
    stderr_written: u64,
    /// The error that stopped the stderr writes, if any.
    stderr_error: Option<String>,
}

/// Write `bytes` bytes to stdout and to stderr; a write error stops that
/// stream and is reported, never a panic.
pub(crate) fn stdout_flood(_: &Ctx, input: StdoutFlood) -> Result<StdoutFlooded, ToolError> {
    let total = to_usize("bytes", input.bytes)?;
    let (stdout_written, stdout_error) = write_flood(&mut std::io::stdout().lock(), total, b'o');
    let (stderr_written, stderr_error) = write_flood(&mut std::io::stderr().lock(), total, b'e');
    std::thread::sleep(Duration::from_millis(input.then_ms));
    Ok(StdoutFlooded {
        stdout_written,
        stdout_error,
        stderr_written,
        stderr_error,
    })
}

/// Write `total` bytes of 80-byte lines of `fill` (the last line may be short).
fn write_flood(out: &mut impl Write, total: usize, fill: u8) -> (u64, Option<String>) {
    let mut line = [fill; 80];
    line[79] = b'\n';
    let chunk = line.repeat(64 * 1024 / 80);
    let mut written = 0;
    while written < total {
        let n = chunk.len().min(total - written);
        if let Err(e) = out.write_all(&chunk[..n]) {
            return (written as u64, Some(e.to_string()));
        }
        written += n;
    }
    let error = out.flush().err().map(|e| e.to_string());
    (written as u64, error)
}

/// Seen once cancelled.
#[derive(Serialize, JsonSchema)]
pub(crate) struct SawCancel {
    /// Always true: the tool returns only once `cancelled` says so.
    saw_cancel: bool,
    /// How many times `cancelled` was asked.
    checks: u64,
}

/// Ask `cancelled` every millisecond until it is true.
pub(crate) fn wait_cancel(ctx: &Ctx, _: NoInput) -> Result<SawCancel, ToolError> {
    let mut checks = 0;
    loop {
        checks += 1;
        if ctx.cancelled() {
            return Ok(SawCancel {
                saw_cancel: true,
                checks,
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_flood_writes_exactly_the_asked_bytes() {
        for total in [0, 1, 79, 80, 81, 200_000] {
            let mut out = Vec::new();
            let (written, error) = write_flood(&mut out, total, b'o');
            assert_eq!((written, error), (total as u64, None));
            assert_eq!(out.len(), total);
        }
    }

    #[test]
    fn write_flood_reports_a_failing_stream() {
        let mut out = [0u8; 100];
        let (written, error) = write_flood(&mut &mut out[..], 1000, b'e');
        assert_eq!(written, 0);
        assert!(error.is_some());
    }

    #[test]
    fn flood_host_counts_its_calls() {
        let out = flood_host(
            &Ctx::new(),
            Flood {
                logs: 3,
                progress: 5,
                finished: false,
            },
        )
        .unwrap();
        assert_eq!((out.logs, out.progress), (3, 5));
    }
}
