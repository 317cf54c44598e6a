//! Run with: `cargo run --release --example llm_bench [-- TOKENS_PER_S LATENCY_MS ROUNDS FIRST_TOKEN_MS]`
//!
//! Measures the wall time of one agent turn (request sent → every tool
//! result in) on a scripted model stream of realistic speed (default 50
//! tokens/s, 4 characters a token) that makes 4 calls of the `sleep` tool
//! (default 300 ms each), after a time to first token (default 0), under
//! four strategies:
//!
//! - after message: every call starts when the whole reply has arrived;
//! - early dispatch: each call starts the moment its arguments are complete;
//! - early + history speculation: a history predictor, trained by one
//!   earlier run of the same workflow, starts the calls as the request goes out;
//! - early + draft model: a second scripted model at 10× the speed predicts.
//!
//! Two message shapes: calls spread through the text (Anthropic-style
//! interleaving, with a closing sentence), and calls after one opening
//! sentence (OpenAI-style parallel calls). Each figure is the median of the
//! rounds; the ratio is against "after message" in the same run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use toolhost::llm::{
    Agent, AgentConfig, AgentStop, Dispatch, HistoryPredictor, ModelClient, ModelPredictor,
    Predictor, Provider, Script, ScriptedReply, ScriptedServer,
};
use toolhost::{Catalog, Engine, EngineConfig, Executor, LoadOptions};

const CALLS: u64 = 4;

fn spread(latency_ms: u64) -> ScriptedReply {
    let mut reply = ScriptedReply::new().text("I'll time the four paths one after another. ");
    for n in 0..CALLS {
        reply = reply
            .call("sleep", json!({"ms": latency_ms + n}))
            .text(format!(
                "Path {} is measuring; moving on to the next. ",
                n + 1
            ));
    }
    reply.text("That is all four; I'll compare once they are back.")
}

fn at_end(latency_ms: u64) -> ScriptedReply {
    let mut reply = ScriptedReply::new().text("I'll time all four paths at once. ");
    for n in 0..CALLS {
        reply = reply.call("sleep", json!({"ms": latency_ms + n}));
    }
    reply
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    AfterMessage,
    Early,
    History,
    Draft,
}

async fn turn_time(
    executor: &Arc<Executor>,
    server: &ScriptedServer,
    provider: Provider,
    dispatch: Dispatch,
    predictor: Option<Arc<dyn Predictor>>,
) -> anyhow::Result<Duration> {
    let client = ModelClient::new(server.client_config(provider))?;
    let mut config = AgentConfig::default();
    config.dispatch = dispatch;
    let mut agent = Agent::new(client, executor.clone()).with_config(config);
    if let Some(predictor) = predictor {
        agent = agent.with_predictor(predictor);
    }
    let report = agent.run_prompt("Time the four paths.", None).await?;
    anyhow::ensure!(
        report.stop == AgentStop::Answered && report.tool_calls == CALLS as usize,
        "unexpected run: {:?}, {} calls",
        report.stop,
        report.tool_calls
    );
    Ok(report.turn_times[0])
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<f64> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let tokens_per_second = args.first().copied().unwrap_or(50.0);
    let latency_ms = args.get(1).copied().unwrap_or(300.0) as u64;
    let rounds = args.get(2).copied().unwrap_or(5.0).max(1.0) as usize;
    let first_token = Duration::from_secs_f64(args.get(3).copied().unwrap_or(0.0).max(0.0) / 1e3);

    let engine = Engine::new(EngineConfig::default())?;
    let paths = [PathBuf::from(toolhost_artifacts::SLEEP)];
    let catalog = Catalog::load_files(&engine, &paths, &LoadOptions::default(), &|_| {}).await?;
    let executor = Arc::new(Executor::new(Arc::new(catalog)));

    println!(
        "One turn with {CALLS} calls of `sleep` ({latency_ms} ms), model at {tokens_per_second} tokens/s after {} ms to the first token; median of {rounds} rounds\n",
        first_token.as_millis()
    );
    println!(
        "| message | protocol | after message | early dispatch | early + history speculation | early + draft model |"
    );
    println!("|---|---|--:|--:|--:|--:|");
    for (shape, reply) in [
        ("calls spread through text", spread(latency_ms)),
        ("calls after one sentence", at_end(latency_ms)),
    ] {
        let script = Script::new(vec![reply.clone(), ScriptedReply::new().text("Compared.")])
            .tokens_per_second(tokens_per_second)
            .first_token_delay(first_token);
        let draft_script = script
            .clone()
            .tokens_per_second(tokens_per_second * 10.0)
            .first_token_delay(first_token / 10);
        for provider in [Provider::Anthropic, Provider::OpenAiChat] {
            let server = ScriptedServer::start(script.clone()).await?;
            let draft = ScriptedServer::start(draft_script.clone()).await?;
            let history: Arc<dyn Predictor> = Arc::new(HistoryPredictor::new());
            // One earlier run of the workflow teaches the history predictor.
            turn_time(
                &executor,
                &server,
                provider,
                Dispatch::Early,
                Some(history.clone()),
            )
            .await?;
            let mut cells = Vec::new();
            let mut baseline = Duration::ZERO;
            for mode in [Mode::AfterMessage, Mode::Early, Mode::History, Mode::Draft] {
                let mut times = Vec::new();
                for _ in 0..rounds {
                    let (dispatch, predictor) = match mode {
                        Mode::AfterMessage => (Dispatch::AfterMessage, None),
                        Mode::Early => (Dispatch::Early, None),
                        Mode::History => (Dispatch::Early, Some(history.clone())),
                        Mode::Draft => {
                            let client = ModelClient::new(draft.client_config(provider))?;
                            let predictor: Arc<dyn Predictor> =
                                Arc::new(ModelPredictor::new(client));
                            (Dispatch::Early, Some(predictor))
                        }
                    };
                    times.push(turn_time(&executor, &server, provider, dispatch, predictor).await?);
                }
                let time = median(times);
                if mode == Mode::AfterMessage {
                    baseline = time;
                    cells.push(format!("{:.0} ms", time.as_secs_f64() * 1e3));
                } else {
                    let saved = 1.0 - time.as_secs_f64() / baseline.as_secs_f64();
                    cells.push(format!(
                        "{:.0} ms ({:+.0}%)",
                        time.as_secs_f64() * 1e3,
                        -saved * 100.0
                    ));
                }
            }
            println!("| {shape} | {provider} | {} |", cells.join(" | "));
        }
    }
    Ok(())
}
