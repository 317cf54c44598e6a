//! Helpers for the model-driven tests: run an agent against a scripted
//! server over real loopback HTTP and collect its events in order.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use toolhost::Executor;
use toolhost::llm::{
    Agent, AgentConfig, AgentEvent, AgentReport, ModelClient, Predictor, Provider, ScriptGate,
    ScriptedServer,
};

use crate::common::executor;

/// Opens `gate` at the first event `when` accepts.
pub struct OpenWhen {
    pub gate: ScriptGate,
    pub when: Box<dyn Fn(&AgentEvent) -> bool + Send>,
}

impl OpenWhen {
    /// When a call of `tool` finishes.
    pub fn finished(tool: &'static str, gate: &ScriptGate) -> Option<Self> {
        Some(Self {
            gate: gate.clone(),
            when: Box::new(finished(tool)),
        })
    }

    /// When the first speculative call starts.
    pub fn speculated(gate: &ScriptGate) -> Option<Self> {
        Some(Self {
            gate: gate.clone(),
            when: Box::new(|e| matches!(e, AgentEvent::Speculated { .. })),
        })
    }
}

/// Runs `prompt` with `provider` against `server` and returns the report and
/// every event, in the order the agent sent them.
pub async fn run(
    server: &ScriptedServer,
    provider: Provider,
    config: AgentConfig,
    predictor: Option<Arc<dyn Predictor>>,
    open: Option<OpenWhen>,
) -> (AgentReport, Vec<AgentEvent>) {
    run_with(executor(), server, provider, config, predictor, open).await
}

pub async fn run_with(
    executor: Arc<Executor>,
    server: &ScriptedServer,
    provider: Provider,
    config: AgentConfig,
    predictor: Option<Arc<dyn Predictor>>,
    open: Option<OpenWhen>,
) -> (AgentReport, Vec<AgentEvent>) {
    let client = ModelClient::new(server.client_config(provider)).expect("client");
    let mut agent = Agent::new(client, executor).with_config(config);
    if let Some(predictor) = predictor {
        agent = agent.with_predictor(predictor);
    }
    let gate = open.as_ref().map(|open| open.gate.clone());
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let collector = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(event) = receiver.recv().await {
            if let Some(open) = &open
                && (open.when)(&event)
            {
                open.gate.open();
            }
            events.push(event);
        }
        events
    });
    let report = agent
        .run_prompt("What do the tools say?", Some(sender))
        .await
        .unwrap_or_else(|e| panic!("{provider}: the run failed: {e}"));
    let events = tokio::time::timeout(Duration::from_secs(30), collector)
        .await
        .expect("the event stream closes after the run")
        .expect("collector");
    // A stream that went on without its gate opening did not test what the
    // gate was there for.
    assert!(
        !gate.is_some_and(|gate| gate.gave_up()),
        "{provider}: the scripted stream gave up waiting at its gate"
    );
    (report, events)
}

/// Streaming and non-streaming configurations.
pub fn config(streaming: bool) -> AgentConfig {
    let mut config = AgentConfig::default();
    config.streaming = streaming;
    config
}

/// The position of the first event matching `predicate`, naming it on failure.
pub fn position(
    events: &[AgentEvent],
    what: &str,
    predicate: impl Fn(&AgentEvent) -> bool,
) -> usize {
    events
        .iter()
        .position(predicate)
        .unwrap_or_else(|| panic!("no {what} event in {events:#?}"))
}

pub fn started(tool: &'static str) -> impl Fn(&AgentEvent) -> bool {
    move |event| matches!(event, AgentEvent::ToolStarted { tool: t, .. } if t == tool)
}

pub fn finished(tool: &'static str) -> impl Fn(&AgentEvent) -> bool {
    move |event| matches!(event, AgentEvent::ToolFinished { tool: t, .. } if t == tool)
}

pub fn message_end(turn: usize) -> impl Fn(&AgentEvent) -> bool {
    move |event| matches!(event, AgentEvent::MessageEnd { turn: t, .. } if *t == turn)
}

/// The tool results the second request carried, as (id, content, is_error),
/// read from the provider's own wire shape.
pub fn results_sent(provider: Provider, body: &Value) -> Vec<(String, String, bool)> {
    let text = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_string();
    match provider {
        Provider::OpenAiChat => body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| (text(m, "tool_call_id"), text(m, "content"), false))
            .collect(),
        Provider::OpenAiResponses => body["input"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["type"] == "function_call_output")
            .map(|i| (text(i, "call_id"), text(i, "output"), false))
            .collect(),
        _ => body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "user" && m["content"].is_array())
            .flat_map(|m| m["content"].as_array().unwrap().clone())
            .filter(|b| b["type"] == "tool_result")
            .map(|b| {
                (
                    text(&b, "tool_use_id"),
                    text(&b, "content"),
                    b["is_error"] == true,
                )
            })
            .collect(),
    }
}
