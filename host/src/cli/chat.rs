//! `toolhost chat`: a model drives the tools until it answers.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use toolhost::Executor;
use toolhost::llm::{
    Agent, AgentConfig, AgentEvent, AgentStop, ClientConfig, Dispatch, ModelClient, ModelPredictor,
    Provider, Script, ScriptedReply, ScriptedServer, event_channel,
};

use super::ToolsArgs;

#[derive(Debug, Args)]
pub(super) struct ChatArgs {
    /// What to ask the model.
    prompt: String,
    /// The wire protocol: openai (Chat Completions, also Ollama, vLLM,
    /// llama.cpp), openai-responses or anthropic.
    #[arg(long, default_value = "openai")]
    provider: Provider,
    /// The model [default: the provider's small current model].
    #[arg(long)]
    model: Option<String>,
    /// Any server speaking the protocol, e.g. http://127.0.0.1:11434/v1 for Ollama.
    #[arg(long)]
    base_url: Option<String>,
    /// Send the key in this environment variable. Without it, the provider's
    /// variable (OPENAI_API_KEY, ANTHROPIC_API_KEY) is sent only to the
    /// provider's own endpoint or a loopback --base-url.
    #[arg(long, value_name = "NAME")]
    api_key_env: Option<String>,
    /// Model requests at most.
    #[arg(long, default_value_t = 10)]
    max_turns: usize,
    /// Tool calls at most.
    #[arg(long, default_value_t = 50)]
    max_tool_calls: usize,
    /// Wall-clock budget of the whole conversation, in seconds.
    #[arg(long, default_value_t = 600)]
    deadline_s: u64,
    /// Instructions for the model.
    #[arg(long)]
    system: Option<String>,
    /// Ask for whole replies instead of streams (no early dispatch).
    #[arg(long)]
    no_stream: bool,
    /// Start calls only after the whole reply has arrived.
    #[arg(long)]
    after_message: bool,
    /// Speculate with a second, faster model of the same provider.
    #[arg(long)]
    draft_model: Option<String>,
    #[command(flatten)]
    tools: ToolsArgs,
    /// Print every event as a JSON line.
    #[arg(long)]
    json: bool,
}

/// The demo conversation replayed when there is no key and no base URL.
fn demo_script(prompt: &str) -> Script {
    Script::new(vec![
        ScriptedReply::new()
            .text("I'll slugify and hash your prompt, and work out the area of a circle of radius 2, all at once. ")
            .call("text__slugify", json!({"text": prompt, "max_length": 40}))
            .call("hash__digest", json!({"text": prompt, "algorithms": ["sha256"]}))
            .call("calc", json!({"expression": "r = 2; pi * r^2"})),
        ScriptedReply::new()
            .text("Now a pause of 300 ms, to show a call running while I write. ")
            .call("sleep", json!({"ms": 300}))
            .text("The sleep runs in its own sandbox while this sentence streams."),
        ScriptedReply::new().text(
            "Done. The results above came from real calls in fresh sandboxes; this text is a scripted replay, not a model.",
        ),
    ])
    .tokens_per_second(60.0)
    .first_token_delay(Duration::from_millis(150))
}

/// The key to send to `base_url`: from `--api-key-env` when given; else
/// the provider's variable, but only to the provider's own endpoint or a
/// loopback server (a key sent to another host is refused, not sent).
fn api_key(args: &ChatArgs, base_url: &str) -> anyhow::Result<Option<String>> {
    let read = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|key| !key.trim().is_empty())
    };
    if let Some(name) = &args.api_key_env {
        return read(name)
            .map(Some)
            .ok_or_else(|| anyhow::anyhow!("--api-key-env {name}: that variable is not set"));
    }
    let name = args.provider.key_env();
    match read(name) {
        Some(_) if !args.provider.env_key_may_go_to(base_url) => anyhow::bail!(
            "not sending {name} to {base_url}: a key from {name} goes only to {} or a loopback \
             server. To send it to this server, pass --api-key-env {name}; to send no key, \
             unset {name}.",
            args.provider.default_base_url()
        ),
        key => Ok(key),
    }
}

pub(super) async fn run(args: ChatArgs) -> anyhow::Result<ExitCode> {
    let catalog = args.tools.load(args.json).await?;
    let executor = Arc::new(Executor::new(catalog));
    let mut config = ClientConfig::new(args.provider);
    if let Some(url) = &args.base_url {
        config.base_url = url.clone();
    }
    config.api_key = api_key(&args, &config.base_url)?;
    let mut _replay = None;
    if config.api_key.is_none() && args.base_url.is_none() {
        let server = ScriptedServer::start(demo_script(&args.prompt)).await?;
        eprintln!(
            "No {} and no --base-url: replaying a scripted demo conversation from a local server ({}). \
             It is not a model; the tool calls are real.",
            args.provider.key_env(),
            server.base_url()
        );
        config = server.client_config(args.provider);
        _replay = Some(server);
    }
    if let Some(model) = &args.model {
        config.model = model.clone();
    }
    let client = ModelClient::new(config.clone())?;
    let mut agent_config = AgentConfig::default();
    agent_config.system = args.system.clone();
    agent_config.max_turns = args.max_turns;
    agent_config.max_tool_calls = args.max_tool_calls;
    agent_config.deadline = Duration::from_secs(args.deadline_s);
    agent_config.streaming = !args.no_stream;
    if args.after_message {
        agent_config.dispatch = Dispatch::AfterMessage;
    }
    let mut agent = Agent::new(client, executor).with_config(agent_config);
    if let Some(draft) = &args.draft_model {
        let draft = ModelClient::new(config.model(draft.clone()))?;
        agent = agent.with_predictor(Arc::new(ModelPredictor::new(draft)));
    }
    let (sender, mut receiver) = event_channel();
    let json = args.json;
    let printer = tokio::spawn(async move {
        let mut printer = Printer::default();
        // A closed stdout (`| head`) stops the printing, not the run.
        let mut open = true;
        while let Some(event) = receiver.recv().await {
            if !open {
                continue;
            }
            open = if json {
                let line = serde_json::to_string(&event).unwrap_or_default();
                writeln!(std::io::stdout(), "{line}").is_ok()
            } else {
                printer.print(&event).is_ok()
            };
        }
    });
    let result = agent.run_prompt(&args.prompt, Some(sender)).await;
    let _ = printer.await;
    let report = result?;
    if !json {
        let spec = report.speculation;
        eprintln!(
            "\n{} turns, {} tool calls, {:.2} s{}",
            report.turns,
            report.tool_calls,
            report.elapsed.as_secs_f64(),
            if spec.launched > 0 {
                format!(
                    "; speculation: {} hits, {} misses, {:.0} ms saved",
                    spec.hits,
                    spec.misses,
                    spec.time_saved.as_secs_f64() * 1e3
                )
            } else {
                String::new()
            }
        );
    }
    Ok(if report.stop == AgentStop::Answered {
        ExitCode::SUCCESS
    } else {
        eprintln!("stopped: {:?}", report.stop);
        ExitCode::FAILURE
    })
}

/// Human output: the model's text on stdout as it streams, tool activity on stderr.
#[derive(Default)]
struct Printer {
    mid_line: bool,
}

impl Printer {
    fn break_line(&mut self) -> std::io::Result<()> {
        if self.mid_line {
            self.mid_line = false;
            writeln!(std::io::stdout())?;
        }
        Ok(())
    }

    fn print(&mut self, event: &AgentEvent) -> std::io::Result<()> {
        match event {
            AgentEvent::Text { text, .. } => {
                let mut stdout = std::io::stdout();
                write!(stdout, "{text}")?;
                stdout.flush()?;
                self.mid_line = !text.ends_with('\n');
            }
            AgentEvent::ToolStarted {
                tool,
                arguments,
                speculative,
                ..
            } => {
                self.break_line()?;
                let tag = if *speculative { " (speculative)" } else { "" };
                eprintln!("  → {tool} {}{tag}", cut(arguments, 100));
            }
            AgentEvent::ToolFinished {
                tool,
                outcome,
                elapsed_ms,
                ..
            } => {
                self.break_line()?;
                let detail = match outcome.output() {
                    Some(output) => output.to_string(),
                    None => outcome.message().unwrap_or_default().to_string(),
                };
                eprintln!(
                    "  ← {tool} {} in {elapsed_ms:.1} ms: {}",
                    outcome.kind(),
                    cut(&detail, 160)
                );
            }
            AgentEvent::MessageEnd {
                stop,
                truncated: true,
                ..
            } => {
                self.break_line()?;
                eprintln!("  reply cut off ({})", stop.as_str());
            }
            AgentEvent::TurnEnded { .. } | AgentEvent::Finished { .. } => self.break_line()?,
            _ => {}
        }
        Ok(())
    }
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}…")
}
