//! `toolhost serve` and `toolhost hash-key`.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use toolhost::serve::{RedisConfig, ServeConfig, Server, hash_key};
use toolhost::{ExecConfig, Executor};

use super::ToolsArgs;

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    #[command(flatten)]
    tools: ToolsArgs,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// The server configuration: tenants, hashed keys, quotas (see the README).
    /// Required unless `--no-auth`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve without API keys: everyone is one tenant with every tool. Only
    /// on a loopback address, for development: it answers only loopback
    /// `Host` names, no cross-origin request and JSON bodies only.
    #[arg(long, conflicts_with = "config")]
    no_auth: bool,
    /// Do not watch the tools folder for changes.
    #[arg(long)]
    no_watch: bool,
    /// Memory, in MiB, that the calls in flight may use together (each
    /// reserves its memory cap plus a fixed overhead; the rest queue).
    /// Overrides the configuration's `memory_budget_mb`; the default is half
    /// of the machine's memory, or of the cgroup's limit when lower.
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..))]
    memory_budget_mb: Option<u64>,
    #[command(flatten)]
    audit: super::trust::AuditArgs,
    /// Share tenants' quotas, tools' rates and the pure-tool cache with the
    /// other nodes on this Redis (`redis://[USER:PASSWORD@]HOST:PORT/DB`, or
    /// `rediss://` for TLS). Overrides the configuration's `[redis] url`;
    /// its other settings (see the README's "Running several nodes") stay.
    #[arg(long, value_name = "URL", env = "TOOLHOST_REDIS")]
    redis: Option<String>,
}

#[derive(Debug, Args)]
pub(super) struct HashKeyArgs {
    /// The key to hash; with none, a new random key is made and printed too.
    key: Option<String>,
}

pub(super) async fn run(mut args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => Some(ServeConfig::load(path)?),
        None if args.no_auth => None,
        None => anyhow::bail!(
            "a server needs `--config FILE` (tenants with hashed keys and quotas; see the README's \
             \"Serving\" section, and `toolhost hash-key` to make a key) or `--no-auth` (one tenant \
             with every tool and no keys: for development, on loopback only)"
        ),
    };
    if args.no_auth && !args.listen.ip().is_loopback() {
        anyhow::bail!(
            "--no-auth listens on loopback only (127.0.0.1 or [::1]), not {}: without keys \
             anyone who can reach it could run every tool; use `--config FILE` with keys",
            args.listen
        );
    }
    if let Some(config) = &config {
        args.tools
            .trust
            .add_config(config.locked, &config.trusted_keys);
    }
    let redis = match (&args.redis, config.as_ref().and_then(|c| c.redis.clone())) {
        (Some(url), Some(mut table)) => {
            table.url = url.clone();
            Some(table)
        }
        (Some(url), None) => Some(RedisConfig::new(url.clone())),
        (None, table) => table,
    };
    let shared = match &redis {
        Some(redis) => Some(redis.open()?),
        None => None,
    };
    let catalog = args.tools.load(false).await?;
    let mut exec = ExecConfig::default();
    exec.shared = shared.clone();
    exec.audit = args.audit.open()?;
    if let Some(audit) = &exec.audit {
        audit.catalog_loaded(&catalog);
    }
    if let Some(mb) = args
        .memory_budget_mb
        .or(config.as_ref().and_then(|c| c.memory_budget_mb))
    {
        exec.memory_budget_mb = Some(mb);
    }
    let executor = Arc::new(Executor::with_config(catalog, exec));
    let watch = args.tools.watch(&executor, !args.no_watch)?;
    let reload = watch.as_ref().map(|w| w.counters());
    let server = match &config {
        Some(config) => Server::new(executor.clone(), config, reload)?,
        None => Server::open(executor.clone(), reload),
    };
    // Before anything opens files in numbers: connections are capped by it.
    let open_files = toolhost::serve::raise_open_files_limit();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("could not listen on {}", args.listen))?;
    eprintln!(
        "toolhost serving {} tools on http://{}{}",
        executor.catalog().tools().count(),
        listener.local_addr()?,
        if config.is_none() { " (no auth)" } else { "" }
    );
    eprintln!(
        "connections: up to {} at once (open files: {})",
        server.max_connections(),
        open_files.map_or_else(|| "unlimited".to_string(), |n| n.to_string())
    );
    let _maintain = shared.map(|shared| {
        eprintln!(
            "sharing quotas and the result cache as node `{}` on Redis",
            redis
                .as_ref()
                .map(RedisConfig::node_name)
                .unwrap_or_default()
        );
        AbortOnDrop(tokio::spawn(shared.maintain()))
    });
    if let Some(budget) = executor.stats().memory_budget_bytes {
        eprintln!(
            "memory budget: {} MiB for the calls in flight",
            budget >> 20
        );
    }
    let draining = server.clone();
    let mut mcp = toolhost::mcp::McpHttpConfig::default();
    if !args.listen.ip().is_loopback() {
        // rmcp refuses non-loopback `Host` names by default (DNS rebinding);
        // a server bound elsewhere is reached by other names, and keys guard it.
        mcp.allowed_hosts.clear();
    }
    let app = toolhost::router_with_mcp(&server, mcp);
    server
        .serve(listener, app, async move {
            shutdown_signal().await;
            eprintln!(
                "draining: finishing {} calls in flight",
                executor.in_flight()
            );
            draining.drain();
        })
        .await
        .context("the server stopped")?;
    drop(watch);
    Ok(ExitCode::SUCCESS)
}

/// Stops a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

pub(super) fn hash(args: HashKeyArgs) -> anyhow::Result<ExitCode> {
    match args.key {
        Some(key) => println!("{}", hash_key(&key)),
        None => {
            let mut bytes = [0u8; 24];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut bytes))
                .context("could not read random bytes for a new key")?;
            let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let key = format!("th_{key}");
            println!("key:  {key}\nhash: {}", hash_key(&key));
            eprintln!(
                "give the key to the tenant; put the hash in the server configuration's `keys`"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
