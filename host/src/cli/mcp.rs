//! `toolhost mcp`: the tools folder as an MCP server on stdin/stdout.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use toolhost::Executor;

use super::ToolsArgs;

#[derive(Debug, Args)]
pub(super) struct McpArgs {
    #[command(flatten)]
    tools: ToolsArgs,
    /// Do not watch the tools folder; by default a change reloads it and
    /// sends `notifications/tools/list_changed`.
    #[arg(long)]
    no_watch: bool,
}

pub(super) async fn run(args: McpArgs) -> anyhow::Result<ExitCode> {
    // stdout carries the protocol: loading stays quiet, warnings go to stderr.
    let catalog = args.tools.load(true).await?;
    let executor = Arc::new(Executor::new(catalog));
    let _watch = args.tools.watch(&executor, !args.no_watch)?;
    toolhost::mcp::serve_stdio(executor).await?;
    Ok(ExitCode::SUCCESS)
}
