//! `toolhost mcp`: the tools folder as an MCP server on stdin/stdout.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use toolhost::{ExecConfig, Executor};

use super::ToolsArgs;

#[derive(Debug, Args)]
pub(super) struct McpArgs {
    #[command(flatten)]
    tools: ToolsArgs,
    /// Do not watch the tools folder; by default a change reloads it and
    /// sends `notifications/tools/list_changed`.
    #[arg(long)]
    no_watch: bool,
    #[command(flatten)]
    audit: super::trust::AuditArgs,
}

pub(super) async fn run(args: McpArgs) -> anyhow::Result<ExitCode> {
    if args.audit.is_stdout() {
        anyhow::bail!("`mcp` speaks the protocol on stdout: give --audit-log a file, not `-`");
    }
    // stdout carries the protocol: loading stays quiet, warnings go to stderr.
    let catalog = args.tools.load(true).await?;
    let mut exec = ExecConfig::default();
    exec.audit = args.audit.open()?;
    if let Some(audit) = &exec.audit {
        audit.catalog_loaded(&catalog);
    }
    let executor = Arc::new(Executor::with_config(catalog, exec));
    let _watch = args.tools.watch(&executor, !args.no_watch)?;
    toolhost::mcp::serve_stdio(executor).await?;
    Ok(ExitCode::SUCCESS)
}
