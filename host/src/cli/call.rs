//! `toolhost call`.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use toolhost::{CallOptions, Executor};

use super::ToolsArgs;

#[derive(Debug, Args)]
pub(super) struct CallArgs {
    /// The tool's public name (see `toolhost list`).
    tool: String,
    /// The input: a JSON object, or `-` to read it from stdin.
    #[arg(default_value = "{}")]
    input: String,
    #[command(flatten)]
    tools: ToolsArgs,
    /// Wall-clock budget in milliseconds (replaces the policy's).
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Fuel budget (replaces the policy's).
    #[arg(long)]
    fuel: Option<u64>,
    /// Memory cap in MiB (replaces the policy's).
    #[arg(long)]
    memory_mb: Option<u64>,
    /// Print compact JSON on one line and no progress.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(args: CallArgs) -> anyhow::Result<ExitCode> {
    let input = if args.input == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("could not read the input from stdin")?;
        text
    } else {
        args.input.clone()
    };
    let catalog = args.tools.load(args.json).await?;
    let executor = Executor::new(catalog);
    let mut options = CallOptions::default();
    options.timeout = args.timeout_ms.map(Duration::from_millis);
    options.fuel = args.fuel;
    options.memory_mb = args.memory_mb;
    let record = executor.call(&args.tool, &input, options).await;
    let json = record.to_json();
    if args.json {
        println!("{json}");
    } else {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(if record.outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
