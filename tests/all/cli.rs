//! The `toolhost` binary as a new user meets it: its version, and what it
//! says when a command lacks what it needs.

use std::process::Command;

use crate::common::toolhost_bin;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(toolhost_bin())
        .args(args)
        .output()
        .expect("run toolhost")
}

#[test]
fn version_prints_the_crate_version() {
    let output = run(&["--version"]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("toolhost {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn serve_without_a_config_says_what_a_server_needs() {
    let output = run(&["serve", "--tools", "/nonexistent"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--config FILE"), "{stderr}");
    assert!(stderr.contains("--no-auth"), "{stderr}");
    assert!(stderr.contains("loopback"), "{stderr}");
    // It is said before anything is loaded: the missing folder is not the complaint.
    assert!(!stderr.contains("/nonexistent"), "{stderr}");
}

#[test]
fn chat_does_not_send_the_environment_key_to_another_host() {
    let tools = tempfile::tempdir().expect("temp dir");
    let output = Command::new(toolhost_bin())
        .args([
            "chat",
            "hi",
            "--base-url",
            "http://model.invalid/v1",
            "--tools",
        ])
        .arg(tools.path())
        .env("OPENAI_API_KEY", "sk-canary-not-for-model-invalid")
        .output()
        .expect("run toolhost");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("OPENAI_API_KEY") && stderr.contains("--api-key-env"),
        "{stderr}"
    );
    assert!(!stderr.contains("sk-canary"), "{stderr}");
}

/// Counts of nothing are refused by the argument parser with a message,
/// before anything is measured: never a panic mid-run.
#[test]
fn bench_refuses_counts_of_zero() {
    for (flag, value) in [
        ("--calls", "0"),
        ("--concurrency", "0"),
        ("--threads", "0"),
        ("--threads", "1,0"),
        ("--rounds", "0"),
    ] {
        let output = run(&["bench", flag, value]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{flag} {value}: {stderr}");
    }
}
