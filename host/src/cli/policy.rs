//! `toolhost policy check DIR`: validate every policy in a tools folder and
//! print what each tool is granted, for a reviewer to read before deploying.
//! Secret values are read to prove they resolve, and never printed.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use toolhost::{EngineConfig, Granted, Limits, PolicyReview, review_dir};

#[derive(Debug, Args)]
pub(super) struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate every `NAME.toml` beside a `NAME.wasm` and print each tool's grants.
    Check {
        /// The tools folder [default: $TOOLHOST_TOOLS, else target/tools].
        #[arg(env = "TOOLHOST_TOOLS", default_value = "target/tools")]
        dir: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(args: PolicyArgs) -> anyhow::Result<ExitCode> {
    let PolicyCommand::Check { dir, json } = args.command;
    let reviews = review_dir(
        &dir,
        EngineConfig::default().max_memory_mb,
        &Limits::default(),
    )
    .with_context(|| format!("could not list {}", dir.display()))?;
    let refused = reviews.iter().filter(|r| r.result.is_err()).count();
    let mut out = String::new();
    if json {
        let items: Vec<serde_json::Value> = reviews.iter().map(review_json).collect();
        out = serde_json::to_string_pretty(&items)? + "\n";
    } else {
        for review in &reviews {
            print_review(&mut out, review);
        }
    }
    // A reader that stops early (`| head`) is not an error.
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    if !json {
        eprintln!(
            "{} tools checked, {refused} refused{}",
            reviews.len(),
            if refused > 0 {
                " (they would not load)"
            } else {
                ""
            }
        );
    }
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn review_json(review: &PolicyReview) -> serde_json::Value {
    let mut value = serde_json::json!({
        "tool": review.tool,
        "component": review.component.as_ref().map(|p| p.display().to_string()),
        "policy": review.policy.as_ref().map(|p| p.display().to_string()),
    });
    match &review.result {
        Ok(granted) => value["granted"] = granted.to_json(),
        Err(error) => value["error"] = error.to_string().into(),
    }
    value
}

fn print_review(out: &mut String, review: &PolicyReview) {
    let source = match (&review.policy, &review.component) {
        (Some(_), None) => "policy with no component beside it".to_string(),
        (Some(p), Some(_)) => p.display().to_string(),
        (None, _) => "no policy".to_string(),
    };
    let _ = writeln!(out, "{} ({source})", review.tool);
    match &review.result {
        Err(error) => {
            let _ = writeln!(out, "  REFUSED: {error}");
        }
        Ok(granted) => print_granted(out, granted),
    }
    out.push('\n');
}

fn print_granted(out: &mut String, g: &Granted) {
    if g.is_nothing() {
        let _ = writeln!(
            out,
            "  grants: nothing (no network, files, environment or secrets; frozen wall clock)"
        );
    }
    if !g.http.is_empty() {
        let private = if g.allow_private {
            "private addresses ALLOWED"
        } else {
            "public addresses only"
        };
        let _ = writeln!(out, "  http: {} ({private})", g.http.join(", "));
    }
    for (pattern, header) in &g.secrets {
        let _ = writeln!(
            out,
            "  secret: header `{header}` added to requests to {pattern}"
        );
    }
    for (guest, host) in &g.read_dirs {
        let _ = writeln!(out, "  read-only dir: {guest} <- {}", host.display());
    }
    if !g.env.is_empty() {
        let _ = writeln!(out, "  env: {}", g.env.join(", "));
    }
    if g.wall_clock {
        let _ = writeln!(out, "  wall clock: real time");
    }
    let l = &g.limits;
    let _ = writeln!(
        out,
        "  limits: timeout {} ms, fuel {}, memory {} MiB, output {} KiB, concurrency {}{}",
        l.timeout.as_millis(),
        l.fuel,
        l.memory_bytes >> 20,
        l.max_output_bytes >> 10,
        l.max_concurrency,
        l.rate
            .map(|r| format!(
                ", rate {}/{} s (burst {})",
                r.count,
                r.per.as_secs(),
                r.burst
            ))
            .unwrap_or_default()
    );
    if !g.http.is_empty() {
        let _ = writeln!(
            out,
            "  http limits: {} requests/call, {} KiB/response, {} ms/request",
            l.http.max_requests,
            l.http.max_response_bytes >> 10,
            l.http.timeout.as_millis()
        );
    }
}
