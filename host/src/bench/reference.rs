//! The reference the targets name: an unsandboxed Python tool
//! orchestrator (`examples/bench/orchestrator.py`, built into this binary),
//! run as a child process in the same run as the figures it sits beside.
//! Tools there are plain async functions; a call parses its arguments, runs
//! under a deadline and serializes its answer, as an agent framework's tool
//! step does, with no sandbox at all.

use std::path::Path;
use std::process::Command;

use serde::Deserialize;

/// The orchestrator's source, run with `python3 -c`.
const SCRIPT: &str = include_str!("../../../examples/bench/orchestrator.py");

/// N sleeps at once through the orchestrator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sleeps {
    /// Wall time of the median round, in milliseconds.
    pub(crate) wall_ms: f64,
    /// The process's CPU per call in the median round, in microseconds.
    pub(crate) cpu_us_per_call: f64,
}

#[derive(Deserialize)]
struct SleepsOutput {
    walls_ms: Vec<f64>,
    cpu_us_per_call: f64,
}

#[derive(Deserialize)]
struct NoopOutput {
    per_sec: Vec<f64>,
}

/// `calls` sleeps of `ms` at once, `rounds` times, by the orchestrator run
/// with `python`.
pub(crate) fn sleeps(
    python: &Path,
    calls: usize,
    ms: u64,
    rounds: usize,
) -> Result<Sleeps, String> {
    let args = [calls.to_string(), ms.to_string(), rounds.to_string()];
    let output: SleepsOutput = run(python, "sleeps", &args)?;
    let mut walls = output.walls_ms;
    if walls.is_empty() {
        return Err("the orchestrator reported no rounds".into());
    }
    walls.sort_by(f64::total_cmp);
    Ok(Sleeps {
        wall_ms: walls[walls.len() / 2],
        cpu_us_per_call: output.cpu_us_per_call,
    })
}

/// The best of `rounds` rounds of `calls` no-op calls, `concurrency` in
/// flight, in calls per second.
pub(crate) fn noop(
    python: &Path,
    calls: usize,
    concurrency: usize,
    rounds: usize,
) -> Result<f64, String> {
    let args = [
        calls.to_string(),
        concurrency.to_string(),
        rounds.to_string(),
    ];
    let output: NoopOutput = run(python, "noop", &args)?;
    output
        .per_sec
        .into_iter()
        .max_by(f64::total_cmp)
        .ok_or_else(|| "the orchestrator reported no rounds".into())
}

fn run<T: for<'de> Deserialize<'de>>(
    python: &Path,
    mode: &str,
    args: &[String],
) -> Result<T, String> {
    let output = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(mode)
        .args(args)
        .output()
        .map_err(|e| format!("could not run {}: {e}", python.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("").trim();
        return Err(format!(
            "{} ran the orchestrator and ended with {}: {last}",
            python.display(),
            output.status
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "the orchestrator's output is not what it should print ({e}): {}",
            String::from_utf8_lossy(&output.stdout).trim()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orchestrator_answers_every_sleep() {
        // A failed call makes the script exit non-zero, which is an error here.
        let sleeps =
            sleeps(Path::new("python3"), 20, 10, 2).expect("python3 runs the orchestrator");
        assert!(
            sleeps.wall_ms.is_finite() && sleeps.wall_ms > 0.0,
            "{sleeps:?}"
        );
        assert!(sleeps.cpu_us_per_call.is_finite(), "{sleeps:?}");
    }

    #[test]
    fn what_the_orchestrator_refuses_is_reported_with_its_reason() {
        let error = run::<NoopOutput>(
            Path::new("python3"),
            "noop",
            &["0".into(), "1".into(), "1".into()],
        )
        .err()
        .expect("no calls is refused");
        assert!(error.contains("every number must be at least 1"), "{error}");
    }

    #[test]
    fn the_orchestrator_counts_its_no_op_calls() {
        let per_sec = noop(Path::new("python3"), 500, 8, 2).expect("python3 runs the orchestrator");
        assert!(per_sec > 0.0 && per_sec.is_finite(), "{per_sec}");
    }

    #[test]
    fn a_missing_interpreter_is_named() {
        let error = noop(Path::new("/nonexistent/python3"), 1, 1, 1).unwrap_err();
        assert!(error.contains("/nonexistent/python3"), "{error}");
    }
}
