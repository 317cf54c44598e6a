//! Helpers for the model-driven tests: run an agent against a scripted
//! server over real loopback HTTP and collect its events in order.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use toolhost::Executor;
use toolhost::llm::{
    Agent, AgentConfig, AgentEvent, AgentReport, ModelClient, Predictor, Provider, ScriptGate,
    ScriptedServer, event_channel,
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
    let (sender, mut receiver) = event_channel();
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

/// The text blocks of Anthropic's tool-result messages: the results of
/// calls that could not be sent back as `tool_use` blocks.
pub fn anthropic_notes(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "user" && m["content"].is_array())
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["type"] == "text")
        .map(|b| b["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A model server that answers each request with raw bytes, written in
/// seeded random pieces, then closes: for streams that end badly. The
/// reply is chosen by the request's position (the last one repeats).
pub struct RawServer {
    pub base_url: String,
    pub requests: Arc<std::sync::Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawServer {
    pub async fn start(replies: Vec<Vec<u8>>, seed: u64) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            let mut seed = seed;
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                        break;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                socket.read_exact(&mut body).await.unwrap();
                let n = {
                    let mut requests = recorded.lock().unwrap();
                    requests.push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    requests.len() - 1
                };
                let reply = &replies[n.min(replies.len() - 1)];
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
                    .await;
                seed += 1;
                for piece in split(reply, seed) {
                    if socket.write_all(piece).await.is_err() || socket.flush().await.is_err() {
                        break;
                    }
                }
                let _ = socket.shutdown().await;
            }
        });
        Self {
            base_url,
            requests,
            task,
        }
    }

    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    pub fn client(&self, provider: Provider) -> ModelClient {
        let config = toolhost::llm::ClientConfig::new(provider).base_url(self.base_url.clone());
        ModelClient::new(config).expect("client")
    }
}

/// `bytes` in seeded random pieces; odd seeds also split inside every
/// multi-byte character and between every `\r` and `\n`.
pub fn split(bytes: &[u8], seed: u64) -> Vec<&[u8]> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut pieces = Vec::new();
    let mut start = 0;
    for i in 1..bytes.len() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let awkward = bytes[i] & 0xC0 == 0x80 || (bytes[i - 1] == b'\r' && bytes[i] == b'\n');
        if (seed % 2 == 1 && awkward) || state.is_multiple_of(5) {
            pieces.push(&bytes[start..i]);
            start = i;
        }
    }
    pieces.push(&bytes[start..]);
    pieces
}

/// Runs `prompt` with an agent talking to `server`.
pub async fn run_raw(
    server: &RawServer,
    provider: Provider,
    config: AgentConfig,
) -> (AgentReport, Vec<AgentEvent>) {
    let agent = Agent::new(server.client(provider), executor()).with_config(config);
    let (sender, mut receiver) = event_channel();
    let report = agent
        .run_prompt("What do the tools say?", Some(sender))
        .await
        .unwrap_or_else(|e| panic!("{provider}: the run failed: {e}"));
    let mut events = Vec::new();
    while let Some(event) = receiver.recv().await {
        events.push(event);
    }
    (report, events)
}

/// How a real-shaped stream ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ending {
    /// The model is done (its calls complete, if any).
    Done,
    /// The token limit ends the reply; the last call's arguments are whatever
    /// was given.
    MaxTokens,
}

/// A real-shaped stream of `provider` with `text` and `calls` (id, tool,
/// arguments as sent), ending as `ending` says, lines ending in `eol`.
pub fn sse_reply(
    provider: Provider,
    text: &str,
    calls: &[(&str, &str, &str)],
    ending: Ending,
    eol: &str,
) -> String {
    let frame = |event: Option<&str>, data: Value| {
        let mut out = String::new();
        if let Some(event) = event {
            out += &format!("event: {event}{eol}");
        }
        out + &format!("data: {data}{eol}{eol}")
    };
    let pieces = |s: &str| -> Vec<String> {
        let chars: Vec<char> = s.chars().collect();
        chars.chunks(3).map(|c| c.iter().collect()).collect()
    };
    let mut out = String::new();
    match provider {
        Provider::OpenAiChat => {
            let chunk = |delta: Value, finish: Option<&str>| {
                frame(
                    None,
                    serde_json::json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
                )
            };
            out += &chunk(
                serde_json::json!({"role": "assistant", "content": text}),
                None,
            );
            for (n, (id, name, arguments)) in calls.iter().enumerate() {
                out += &chunk(
                    serde_json::json!({"tool_calls": [{"index": n, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                    None,
                );
                for piece in pieces(arguments) {
                    out += &chunk(
                        serde_json::json!({"tool_calls": [{"index": n, "function": {"arguments": piece}}]}),
                        None,
                    );
                }
            }
            let reason = match (ending, calls.is_empty()) {
                (Ending::MaxTokens, _) => "length",
                (Ending::Done, true) => "stop",
                (Ending::Done, false) => "tool_calls",
            };
            out += &chunk(serde_json::json!({}), Some(reason));
            out += &format!("data: [DONE]{eol}{eol}");
        }
        Provider::OpenAiResponses => {
            out += &frame(
                None,
                serde_json::json!({"type": "response.output_text.delta", "delta": text}),
            );
            for (n, (id, name, arguments)) in calls.iter().enumerate() {
                let item = format!("fc_{n}");
                out += &frame(
                    None,
                    serde_json::json!({"type": "response.output_item.added", "item": {"type": "function_call", "id": item, "call_id": id, "name": name, "arguments": ""}}),
                );
                for piece in pieces(arguments) {
                    out += &frame(
                        None,
                        serde_json::json!({"type": "response.function_call_arguments.delta", "item_id": item, "delta": piece}),
                    );
                }
            }
            let end = match ending {
                Ending::Done => {
                    serde_json::json!({"type": "response.completed", "response": {"status": "completed"}})
                }
                Ending::MaxTokens => {
                    serde_json::json!({"type": "response.incomplete", "response": {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}})
                }
            };
            out += &frame(None, end);
        }
        _ => {
            out += &frame(
                Some("message_start"),
                serde_json::json!({"type": "message_start", "message": {"id": "m"}}),
            );
            out += &frame(
                Some("content_block_start"),
                serde_json::json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": text}}),
            );
            out += &frame(
                Some("content_block_stop"),
                serde_json::json!({"type": "content_block_stop", "index": 0}),
            );
            for (n, (id, name, arguments)) in calls.iter().enumerate() {
                out += &frame(
                    Some("content_block_start"),
                    serde_json::json!({"type": "content_block_start", "index": n + 1, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
                );
                for piece in pieces(arguments) {
                    out += &frame(
                        Some("content_block_delta"),
                        serde_json::json!({"type": "content_block_delta", "index": n + 1, "delta": {"type": "input_json_delta", "partial_json": piece}}),
                    );
                }
                out += &frame(
                    Some("content_block_stop"),
                    serde_json::json!({"type": "content_block_stop", "index": n + 1}),
                );
            }
            let reason = match (ending, calls.is_empty()) {
                (Ending::MaxTokens, _) => "max_tokens",
                (Ending::Done, true) => "end_turn",
                (Ending::Done, false) => "tool_use",
            };
            out += &frame(
                Some("message_delta"),
                serde_json::json!({"type": "message_delta", "delta": {"stop_reason": reason}}),
            );
            out += &frame(
                Some("message_stop"),
                serde_json::json!({"type": "message_stop"}),
            );
        }
    }
    out
}

/// The stream without its last line's end: the terminator, cut just before
/// its newline (what is left is valid JSON, or `[DONE]`).
pub fn without_last_newline(stream: &str, eol: &str) -> String {
    let whole = stream.strip_suffix(eol).unwrap_or(stream);
    whole.strip_suffix(eol).unwrap_or(whole).to_string()
}
