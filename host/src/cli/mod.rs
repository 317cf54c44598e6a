//! Command-line parsing and the commands. Errors here are `anyhow`: this is
//! the edge where they become messages for a person.

mod bench;
mod bench_mcp;
mod call;
mod chat;
mod list;
mod mcp;
mod new;
mod oci;
#[cfg(feature = "otlp")]
mod otlp;
mod policy;
mod serve;
mod trust;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use toolhost::{Catalog, Engine, EngineConfig, LoadEvent, LoadOptions};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Run LLM tools as sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "toolhost", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log more (repeat for more); `RUST_LOG` works too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the tools in a folder with their descriptions and input schemas.
    List(list::ListArgs),
    /// Run one call in a fresh sandbox and print its outcome as JSON.
    Call(call::CallArgs),
    /// Measure fresh-instance calls per second against a bare wasmtime loop.
    Bench(bench::BenchArgs),
    /// Review policies: `toolhost policy check DIR` validates them and prints each tool's grants.
    Policy(policy::PolicyArgs),
    /// Create a tool project (Rust, Python or JavaScript) that builds and passes its tests.
    New(new::NewArgs),
    /// Let a model (OpenAI, Anthropic or any OpenAI-compatible server) call the
    /// tools until it answers; with no API key, replay a scripted demo.
    Chat(chat::ChatArgs),
    /// Serve the HTTP API: tenants with keys and quotas, tool calls in either
    /// provider's dialect, SSE, Prometheus metrics; the tools folder is watched.
    Serve(serve::ServeArgs),
    /// Hash an API key for the server configuration (or make a new one).
    HashKey(serve::HashKeyArgs),
    /// Serve the tools to an MCP client on stdin/stdout (logs go to stderr).
    Mcp(mcp::McpArgs),
    /// Pin the tools folder: write `toolhost.lock` with the sha256 of every
    /// component and policy (`--locked` then refuses anything else).
    Lock(trust::LockArgs),
    /// Make an ed25519 key pair for signing components.
    Keygen(trust::KeygenArgs),
    /// Sign components: a detached signature `FILE.wasm.sig` over each one's sha256.
    Sign(trust::SignArgs),
    /// Check components' signatures against trusted keys.
    Verify(trust::VerifyArgs),
    /// Fetch a component from an OCI registry into the tools folder (digest
    /// and signature checked, provenance pinned in the lock file).
    Pull(oci::PullArgs),
    /// Publish a component (and its signature) to an OCI registry.
    Push(oci::PushArgs),
}

/// Where the tools are and how to load them; shared by the commands.
#[derive(Debug, Args)]
struct ToolsArgs {
    /// The tools folder: `NAME.wasm` components with optional `NAME.toml` policies.
    #[arg(long, env = "TOOLHOST_TOOLS", default_value = "target/tools")]
    tools: PathBuf,
    /// Where compiled components are cached [default: $TOOLHOST_CACHE, else
    /// $XDG_CACHE_HOME/toolhost, else ~/.cache/toolhost]. Used only if it is private to
    /// the user (owned by them, writable by nobody else); otherwise nothing is cached.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Compile every component afresh and cache nothing.
    #[arg(long)]
    no_cache: bool,
    #[command(flatten)]
    trust: trust::TrustArgs,
}

impl ToolsArgs {
    fn load_options(&self) -> anyhow::Result<LoadOptions> {
        let mut options = LoadOptions::default();
        if self.no_cache {
            options.cache_dir = None;
        } else if let Some(dir) = &self.cache_dir {
            options.cache_dir = Some(dir.clone());
        }
        options.trust = self.trust.options()?;
        Ok(options)
    }

    /// When `enabled`, watches the folder and swaps each reload into `executor`
    /// (hot reload) for as long as the returned guard lives.
    fn watch(
        &self,
        executor: &Arc<toolhost::Executor>,
        enabled: bool,
    ) -> anyhow::Result<Option<toolhost::FolderWatch>> {
        if !enabled {
            return Ok(None);
        }
        Ok(Some(toolhost::watch(
            executor.clone(),
            &self.tools,
            self.load_options()?,
        )?))
    }

    /// Loads the folder, showing compile progress on a terminal unless `quiet`,
    /// and warns on stderr about every refused component.
    async fn load(&self, quiet: bool) -> anyhow::Result<Arc<Catalog>> {
        let engine = Engine::new(EngineConfig::default())?;
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        };
        let observe = |event: &LoadEvent| match event {
            LoadEvent::Compiling { component, bytes } => {
                bar.set_message(format!(
                    "compiling {component} ({:.1} MB, cached after this once)",
                    *bytes as f64 / 1e6
                ));
                bar.enable_steady_tick(std::time::Duration::from_millis(100));
            }
            LoadEvent::Compiled { component, elapsed } => {
                bar.println(format!(
                    "compiled {component} in {:.1} s",
                    elapsed.as_secs_f64()
                ));
            }
            _ => {}
        };
        let options = self.load_options()?;
        let catalog = Catalog::load_dir_with(&engine, &self.tools, &options, &observe)
            .await
            .context("could not load the tools folder; build the bundled tools with `cargo build --release -p toolhost-artifacts` or pass --tools DIR")?;
        bar.finish_and_clear();
        for failure in catalog.failures() {
            eprintln!("warning: refused {failure}");
        }
        Ok(Arc::new(catalog))
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::List(args) => runtime.block_on(list::run(args)),
        Command::Call(args) => runtime.block_on(call::run(args)),
        Command::Bench(args) => bench::run(args),
        Command::Policy(args) => policy::run(args),
        Command::New(args) => new::run(args),
        Command::Chat(args) => runtime.block_on(chat::run(args)),
        Command::Serve(args) => runtime.block_on(serve::run(args)),
        Command::HashKey(args) => serve::hash(args),
        Command::Mcp(args) => runtime.block_on(mcp::run(args)),
        Command::Lock(args) => trust::lock(args),
        Command::Keygen(args) => trust::keygen(args),
        Command::Sign(args) => trust::sign(args),
        Command::Verify(args) => trust::verify(args),
        Command::Pull(args) => runtime.block_on(oci::pull(args)),
        Command::Push(args) => runtime.block_on(oci::push(args)),
    };
    #[cfg(feature = "otlp")]
    otlp::flush();
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,toolhost::guest=info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let registry = tracing_subscriber::registry().with(stderr);
    #[cfg(feature = "otlp")]
    let registry = registry.with(otlp::layer());
    registry.init();
}
