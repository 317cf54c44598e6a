//! Speculation: predicted calls of pure tools run while the model writes;
//! nothing else ever runs early.

use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Value, json};
use toolhost::llm::{
    AgentEvent, HistoryPredictor, ModelClient, ModelPredictor, PredictContext, PredictedCall,
    Predictor, Provider, Script, ScriptGate, ScriptedReply, ScriptedServer,
};
use toolhost::{Catalog, Executor};
use toolhost_artifacts as artifacts;

use crate::common::{block_on, engine, load_options};
use crate::llm_util::{OpenWhen, config, results_sent, run, run_with};

/// The model's reply waits at `gate` first, so a test can let speculation
/// start before any real call arrives.
fn gated(gate: &ScriptGate) -> Script {
    Script::new(vec![
        ScriptedReply::new()
            .pause(gate)
            .text("Computing and waiting.")
            .call("calc", json!({"expression": "sqrt(16) + 1"}))
            .call("sleep", json!({"ms": 40})),
        ScriptedReply::new().text("5, after a pause."),
    ])
    .tokens_per_second(400.0)
}

fn speculative_starts(events: &[AgentEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::ToolStarted {
                tool,
                speculative: true,
                ..
            } => Some(tool.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_predictor_answers_a_repeated_workflow() {
    let predictor = Arc::new(HistoryPredictor::new());
    let gate = ScriptGate::new();
    gate.open(); // the first run has nothing to predict
    let server = ScriptedServer::start(gated(&gate)).await.unwrap();
    let (first, _) = run(
        &server,
        Provider::Anthropic,
        config(true),
        Some(predictor.clone()),
        None,
    )
    .await;
    assert_eq!(first.speculation.launched, 0);

    let gate = ScriptGate::new();
    let server = ScriptedServer::start(gated(&gate)).await.unwrap();
    let open = OpenWhen::speculated(&gate);
    let (second, events) = run(
        &server,
        Provider::Anthropic,
        config(true),
        Some(predictor),
        open,
    )
    .await;
    assert!(
        !gate.gave_up(),
        "the stream went on before speculation started"
    );
    let stats = second.speculation;
    assert_eq!(
        (stats.launched, stats.hits, stats.misses, stats.refused),
        (2, 2, 0, 0)
    );
    assert!(stats.time_saved > std::time::Duration::ZERO);
    assert_eq!(speculative_starts(&events), ["calc", "sleep"]);
    // The speculative results are the real ones.
    let results = results_sent(Provider::Anthropic, &server.requests()[1].body);
    assert_eq!(
        serde_json::from_str::<Value>(&results[0].1).unwrap()["value"],
        5.0
    );
    assert_eq!(
        serde_json::from_str::<Value>(&results[1].1).unwrap()["requested_ms"],
        40
    );
    assert_eq!(second.tool_calls, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_model_predicts_and_wrong_guesses_are_cancelled() {
    let gate = ScriptGate::new();
    let main = ScriptedServer::start(gated(&gate)).await.unwrap();
    // The draft model guesses the calc right, the sleep wrong.
    let draft = ScriptedServer::start(Script::new(vec![
        ScriptedReply::new()
            .call("calc", json!({"expression": "sqrt(16) + 1"}))
            .call("sleep", json!({"ms": 4000})),
    ]))
    .await
    .unwrap();
    let client = ModelClient::new(draft.client_config(Provider::OpenAiChat)).unwrap();
    let predictor = Arc::new(ModelPredictor::new(client));
    let open = OpenWhen::speculated(&gate);
    let (report, events) = run(
        &main,
        Provider::OpenAiChat,
        config(true),
        Some(predictor),
        open,
    )
    .await;
    assert!(
        !gate.gave_up(),
        "the stream went on before speculation started"
    );
    let stats = report.speculation;
    assert_eq!((stats.launched, stats.hits, stats.misses), (2, 1, 1));
    assert_eq!(speculative_starts(&events), ["calc"]);
    // The draft saw the same conversation the main model did.
    assert_eq!(
        draft.requests()[0].body["messages"],
        main.requests()[0].body["messages"]
    );
}

/// Proposes a fixed list of calls for the first turn.
#[derive(Debug)]
struct Fixed(Vec<PredictedCall>);

impl Predictor for Fixed {
    fn predict<'a>(&'a self, context: PredictContext<'a>) -> BoxFuture<'a, Vec<PredictedCall>> {
        let first_turn = context.messages.len() == 1;
        Box::pin(async move {
            if first_turn {
                self.0.clone()
            } else {
                Vec::new()
            }
        })
    }
}

/// calc, clock, the network probe, and the trivial echo under a policy
/// granting the wall clock.
fn mixed_executor(dir: &Path) -> Arc<Executor> {
    for (from, to) in [
        (artifacts::CALC, "calc.wasm"),
        (artifacts::CLOCK, "clock.wasm"),
        (artifacts::PROBE, "guest_probe.wasm"),
        (artifacts::TRIVIAL, "echo.wasm"),
    ] {
        std::fs::copy(from, dir.join(to)).unwrap();
    }
    std::fs::write(
        dir.join("clock.toml"),
        "[capabilities]\nwall_clock = true\n",
    )
    .unwrap();
    std::fs::write(dir.join("echo.toml"), "[capabilities]\nwall_clock = true\n").unwrap();
    let (engine, dir) = (engine(), dir.to_path_buf());
    let catalog = block_on(async move {
        Catalog::load_dir(&engine, &dir, &load_options())
            .await
            .unwrap()
    });
    assert!(catalog.failures().is_empty(), "{:?}", catalog.failures());
    Arc::new(Executor::new(Arc::new(catalog)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speculation_never_runs_a_tool_that_is_not_provably_pure() {
    let dir = tempfile::tempdir().unwrap();
    let executor = mixed_executor(dir.path());
    let catalog = executor.catalog();
    let echo_name = catalog
        .tools()
        .find(|t| t.component == "echo")
        .unwrap()
        .name
        .clone();
    assert!(catalog.is_pure("calc"));
    assert!(
        !catalog.is_pure("clock__add"),
        "declares itself pure, but its component is granted the wall clock"
    );
    assert!(
        !catalog.is_pure("clock__now"),
        "read-only but not idempotent"
    );
    assert!(
        !catalog.is_pure("guest_probe__probe"),
        "opens sockets, writes files: no flags"
    );
    assert!(
        !catalog.is_pure(&echo_name),
        "declares itself pure, but its policy grants the wall clock"
    );
    assert!(!catalog.is_pure("nope"));

    let predicted = [
        ("guest_probe__probe", json!({})),
        ("clock__now", json!({})),
        (echo_name.as_str(), json!({"value": 1})),
        ("nope", json!({})),
        ("calc", json!({"expression": "1 + 2"})),
    ]
    .into_iter()
    .map(|(tool, arguments)| PredictedCall {
        tool: tool.into(),
        arguments,
    })
    .collect();
    let gate = ScriptGate::new();
    let script = Script::new(vec![
        ScriptedReply::new()
            .pause(&gate)
            .call("guest_probe__probe", json!({}))
            .call("clock__now", json!({}))
            .call(&echo_name, json!({"value": 1}))
            .call("calc", json!({"expression": "1 + 2"})),
        ScriptedReply::new().text("done"),
    ]);
    let server = ScriptedServer::start(script).await.unwrap();
    let open = OpenWhen::speculated(&gate);
    let predictor = Arc::new(Fixed(predicted));
    let (report, events) = run_with(
        executor,
        &server,
        Provider::OpenAiResponses,
        config(true),
        Some(predictor),
        open,
    )
    .await;
    assert!(
        !gate.gave_up(),
        "the stream went on before speculation started"
    );
    let stats = report.speculation;
    assert_eq!(
        (stats.launched, stats.refused, stats.hits, stats.misses),
        (1, 4, 1, 0)
    );
    let speculated: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Speculated { tool, .. } => Some(tool.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(speculated, ["calc"], "only the pure tool ran early");
    assert_eq!(speculative_starts(&events), ["calc"]);
    // The impure calls ran for real, when the model made them.
    assert_eq!(report.tool_calls, 4);
}

/// A speculative call is the real call once claimed, so it runs under the
/// agent's `call_timeout` too: a slow tool guessed right must not outlast
/// the timeout the real call would have had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_speculative_call_keeps_the_agent_s_call_timeout() {
    let script = |gate: &ScriptGate| {
        Script::new(vec![
            ScriptedReply::new()
                .pause(gate)
                .call("sleep", json!({"ms": 3000})),
            ScriptedReply::new().text("done"),
        ])
    };
    let mut config = config(true);
    config.call_timeout = Some(std::time::Duration::from_millis(100));
    let predictor = Arc::new(HistoryPredictor::new());
    let gate = ScriptGate::new();
    gate.open(); // the first run teaches the predictor
    let server = ScriptedServer::start(script(&gate)).await.unwrap();
    run(
        &server,
        Provider::Anthropic,
        config.clone(),
        Some(predictor.clone()),
        None,
    )
    .await;
    let first = results_sent(Provider::Anthropic, &server.requests()[1].body);
    assert!(first[0].2, "the real call was not stopped: {first:?}");

    let gate = ScriptGate::new();
    let server = ScriptedServer::start(script(&gate)).await.unwrap();
    let open = OpenWhen::speculated(&gate);
    let (report, events) = run(&server, Provider::Anthropic, config, Some(predictor), open).await;
    assert_eq!(speculative_starts(&events), ["sleep"]);
    assert_eq!(report.speculation.hits, 1);
    let second = results_sent(Provider::Anthropic, &server.requests()[1].body);
    assert!(
        second[0].2 && second[0].1.contains("timeout"),
        "the speculative call outlasted the call timeout: {second:?}"
    );
}
