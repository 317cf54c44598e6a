//! The agent loop end to end: a scripted model over real loopback HTTP in
//! each protocol, streaming and not, driving real tool calls in real
//! sandboxes.

use serde_json::{Value, json};
use toolhost::llm::{
    Agent, AgentEvent, AgentStop, Dispatch, ModelClient, Provider, Script, ScriptGate,
    ScriptedReply, ScriptedServer, StopReason, event_channel,
};

use crate::llm_util::{
    Ending, OpenWhen, RawServer, anthropic_notes, config, finished, message_end, position,
    results_sent, run, run_raw, sse_reply, started, without_last_newline,
};

const PROVIDERS: [Provider; 3] = Provider::ALL;

fn three_turns() -> Script {
    Script::new(vec![
        ScriptedReply::new()
            .text("Let me work that out.")
            .call("calc", json!({"expression": "2 * (3 + 4)"}))
            .call("text__slugify", json!({"text": "Héllo \"Wörld\""})),
        ScriptedReply::new()
            .text("Now a short wait.")
            .call("sleep", json!({"ms": 5})),
        ScriptedReply::new().text("It is 14, the slug is hello-world, and I waited."),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_turn_conversation_in_every_protocol_streaming_and_not() {
    for provider in PROVIDERS {
        for streaming in [true, false] {
            let server = ScriptedServer::start(three_turns()).await.unwrap();
            let (report, events) = run(&server, provider, config(streaming), None, None).await;
            let what = format!("{provider}, streaming {streaming}");
            assert_eq!(report.stop, AgentStop::Answered, "{what}");
            assert_eq!(report.turns, 3, "{what}");
            assert_eq!(report.tool_calls, 3, "{what}");
            assert!(report.answer.starts_with("It is 14"), "{what}");
            let requests = server.requests();
            assert_eq!(requests.len(), 3, "{what}");
            // The second request carries both results, computed in sandboxes.
            let results = results_sent(provider, &requests[1].body);
            assert_eq!(results.len(), 2, "{what}: {results:?}");
            let calc: Value = serde_json::from_str(&results[0].1).unwrap();
            assert_eq!(calc["value"], 14.0, "{what}");
            let slug: Value = serde_json::from_str(&results[1].1).unwrap();
            assert_eq!(slug["slug"], "hello-world", "{what}: {slug}");
            assert!(!results[0].2 && !results[1].2, "{what}");
            // The third carries all three, ids matching the calls the model made.
            let results = results_sent(provider, &requests[2].body);
            assert_eq!(results.len(), 3, "{what}");
            let slept: Value = serde_json::from_str(&results[2].1).unwrap();
            assert_eq!(slept["requested_ms"], 5, "{what}");
            // Tools were declared to the model in its own format.
            let tools = requests[0].body["tools"].as_array().unwrap();
            assert!(tools.len() >= 6, "{what}");
            // Every turn opened and ended; text streamed out.
            let ended = events
                .iter()
                .filter(|e| matches!(e, AgentEvent::TurnEnded { .. }))
                .count();
            assert_eq!(ended, 3, "{what}");
            assert!(
                matches!(
                    events.last(),
                    Some(AgentEvent::Finished {
                        stop: AgentStop::Answered,
                        ..
                    })
                ),
                "{what}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_model_output_becomes_results_the_model_can_read() {
    for provider in PROVIDERS {
        let script = Script::new(vec![
            ScriptedReply::new()
                .raw_call("calc", r#"{"expression": "1 +"#)
                .call("calc_v2", json!({"expression": "1"}))
                .call("calc", json!({"expression": 5}))
                .call("calc", json!({"expression": "1 + 1"})),
            ScriptedReply::new().text("Sorry; 1 + 1 is 2."),
        ]);
        let server = ScriptedServer::start(script).await.unwrap();
        let (report, _) = run(&server, provider, config(true), None, None).await;
        assert_eq!(report.stop, AgentStop::Answered, "{provider}");
        let body = &server.requests()[1].body;
        let mut results = results_sent(provider, body);
        if provider == Provider::Anthropic {
            // No `tool_use` input is invented for arguments that are not
            // JSON: that call is left out, and its result comes as text.
            let notes = anthropic_notes(body);
            assert_eq!(notes.len(), 1, "{notes:?}");
            results.insert(0, (String::new(), notes[0].clone(), true));
        }
        let contents: Vec<&str> = results.iter().map(|r| r.1.as_str()).collect();
        assert_eq!(results.len(), 4, "{provider}: {contents:?}");
        assert!(
            contents[0].contains("not valid JSON") || contents[0].contains("invalid-input"),
            "{provider}: {}",
            contents[0]
        );
        assert!(contents[1].starts_with("unknown-tool"), "{}", contents[1]);
        assert!(
            contents[1].contains("`calc`"),
            "did you mean: {}",
            contents[1]
        );
        assert!(contents[2].starts_with("invalid-input"), "{}", contents[2]);
        assert!(contents[2].contains("expression"), "{}", contents[2]);
        assert_eq!(
            serde_json::from_str::<Value>(contents[3]).unwrap()["value"],
            2.0
        );
        if provider == Provider::Anthropic {
            let flags: Vec<bool> = results.iter().map(|r| r.2).collect();
            assert_eq!(flags, [true, true, true, false]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_mid_call_becomes_an_error_result() {
    for provider in PROVIDERS {
        let script = Script::new(vec![
            ScriptedReply::new()
                .text("On it.")
                .call("calc", json!({"expression": "6 * 7"}))
                .truncate_after(6),
            ScriptedReply::new().text("Let me stop there."),
        ]);
        let server = ScriptedServer::start(script).await.unwrap();
        let (report, events) = run(&server, provider, config(true), None, None).await;
        assert_eq!(report.stop, AgentStop::Answered, "{provider}");
        assert!(
            events.iter().any(|e| matches!(
                e,
                AgentEvent::MessageEnd {
                    turn: 1,
                    stop: StopReason::Truncated,
                    ..
                }
            )),
            "{provider}"
        );
        let body = &server.requests()[1].body;
        let mut results = results_sent(provider, body);
        if provider == Provider::Anthropic {
            // The cut call is left out (no input invented); its result is text.
            assert!(results.is_empty(), "{results:?}");
            results = anthropic_notes(body)
                .into_iter()
                .map(|note| (String::new(), note, true))
                .collect();
        }
        assert_eq!(results.len(), 1, "{provider}");
        assert!(
            results[0].1.contains("invalid-input"),
            "{provider}: {}",
            results[0].1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_dispatch_runs_a_call_before_the_reply_ends() {
    for provider in PROVIDERS {
        // The stream waits after the call until the call has finished: only
        // a call started before the reply's end lets the reply end promptly,
        // and the events prove the order.
        let gate = ScriptGate::new();
        let script = Script::new(vec![
            ScriptedReply::new()
                .text("First the sum.")
                .call("calc", json!({"expression": "40 + 2"}))
                .pause(&gate)
                .text("Then the slug.")
                .call("text__slugify", json!({"text": "A B"})),
            ScriptedReply::new().text("42 and a-b."),
        ]);
        let server = ScriptedServer::start(script).await.unwrap();
        let open = OpenWhen::finished("calc", &gate);
        let (report, events) = run(&server, provider, config(true), None, open).await;
        assert_eq!(report.stop, AgentStop::Answered);
        assert!(
            !gate.gave_up(),
            "{provider}: the stream waited in vain for the call to finish"
        );
        let end = position(&events, "message end", message_end(1));
        assert!(
            position(&events, "calc started", started("calc")) < end,
            "{provider}"
        );
        assert!(
            position(&events, "calc finished", finished("calc")) < end,
            "{provider}"
        );
        assert!(
            position(&events, "slug started", started("text__slugify")) < end,
            "{provider}: the last call is ready at its own end, before the reply's"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_after_message_waits_for_the_end() {
    let script = Script::new(vec![
        ScriptedReply::new()
            .call("calc", json!({"expression": "1"}))
            .text("and more text"),
        ScriptedReply::new().text("done"),
    ]);
    let server = ScriptedServer::start(script).await.unwrap();
    let mut config = config(true);
    config.dispatch = Dispatch::AfterMessage;
    let (_, events) = run(&server, Provider::Anthropic, config, None, None).await;
    assert!(position(&events, "end", message_end(1)) < position(&events, "start", started("calc")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_reusing_index_zero_get_every_call_answered() {
    let calls = ["1 + 1", "2 + 2", "3 + 3"];
    let mut first = ScriptedReply::new();
    for expression in calls {
        first = first.call("calc", json!({"expression": expression}));
    }
    let script = Script::new(vec![first, ScriptedReply::new().text("2, 4, 6")]).reuse_index_zero();
    let server = ScriptedServer::start(script).await.unwrap();
    let (report, events) = run(&server, Provider::OpenAiChat, config(true), None, None).await;
    assert_eq!(report.tool_calls, 3);
    let values: Vec<f64> = results_sent(Provider::OpenAiChat, &server.requests()[1].body)
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.1).unwrap()["value"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(values, [2.0, 4.0, 6.0]);
    // The first call started when the second began, before the reply ended.
    assert!(position(&events, "start", started("calc")) < position(&events, "end", message_end(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_end_the_run() {
    let looping = ScriptedReply::new().call("calc", json!({"expression": "1"}));
    let script = Script::new(vec![looping.clone(), looping.clone(), looping]);
    let server = ScriptedServer::start(script.clone()).await.unwrap();
    let mut turns = config(true);
    turns.max_turns = 2;
    let (report, _) = run(&server, Provider::OpenAiResponses, turns, None, None).await;
    assert_eq!((report.stop, report.turns), (AgentStop::MaxTurns, 2));

    let two = ScriptedReply::new()
        .call("calc", json!({"expression": "1"}))
        .call("calc", json!({"expression": "2"}));
    let server = ScriptedServer::start(Script::new(vec![two])).await.unwrap();
    let mut calls = config(false);
    calls.max_tool_calls = 1;
    let (report, _) = run(&server, Provider::OpenAiChat, calls, None, None).await;
    assert_eq!(
        (report.stop, report.tool_calls),
        (AgentStop::MaxToolCalls, 1)
    );
    let Some(toolhost::llm::Message::ToolResults(results)) = report.messages.last() else {
        panic!("the last message holds the results");
    };
    assert!(!results[0].is_error);
    assert!(
        results[1].is_error && results[1].content.contains("budget"),
        "{:?}",
        results[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_stops_the_run_and_its_calls() {
    let script = Script::new(vec![
        ScriptedReply::new().call("sleep", json!({"ms": 60_000})),
        ScriptedReply::new().text("never reached"),
    ]);
    let server = ScriptedServer::start(script).await.unwrap();
    let mut config = config(true);
    // Long enough for the call to start on a loaded machine; the sleep is longer.
    config.deadline = std::time::Duration::from_secs(5);
    let (report, events) = run(&server, Provider::OpenAiChat, config, None, None).await;
    assert_eq!(report.stop, AgentStop::Deadline);
    assert_eq!(server.requests().len(), 1);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, AgentEvent::ToolStarted { .. }))
    );
    assert!(matches!(
        events.last(),
        Some(AgentEvent::Finished {
            stop: AgentStop::Deadline,
            ..
        })
    ));
}

/// A run's deadline may be any `Duration`; one too far to add to the clock
/// is no deadline, not a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_of_duration_max_runs_to_the_end() {
    let script = Script::new(vec![
        ScriptedReply::new().call("calc", json!({"expression": "2 + 2"})),
        ScriptedReply::new().text("4"),
    ]);
    let server = ScriptedServer::start(script).await.unwrap();
    let mut config = config(true);
    config.deadline = std::time::Duration::MAX;
    let (report, _) = run(&server, Provider::OpenAiChat, config, None, None).await;
    assert_eq!(report.stop, AgentStop::Answered);
    assert_eq!(server.requests().len(), 2);
}

/// The calls a follow-up request sends back, as (id, arguments as sent),
/// and the ids its results answer, read from the provider's wire shape.
fn calls_and_answers(provider: Provider, body: &Value) -> (Vec<(String, String)>, Vec<String>) {
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let answered = results_sent(provider, body)
        .into_iter()
        .map(|r| r.0)
        .collect();
    let sent = match provider {
        Provider::OpenAiChat => list(&body["messages"])
            .iter()
            .flat_map(|m| list(&m["tool_calls"]))
            .map(|c| (text(&c["id"]), text(&c["function"]["arguments"])))
            .collect(),
        Provider::OpenAiResponses => list(&body["input"])
            .iter()
            .filter(|i| i["type"] == "function_call")
            .map(|c| (text(&c["call_id"]), text(&c["arguments"])))
            .collect(),
        _ => list(&body["messages"])
            .iter()
            .flat_map(|m| list(&m["content"]))
            .filter(|b| b["type"] == "tool_use")
            .map(|b| (text(&b["id"]), b["input"].to_string()))
            .collect(),
    };
    (sent, answered)
}

/// Every call the follow-up sends is answered, and carries what the model
/// sent: a prefix of it for OpenAI, the whole input for Anthropic.
fn check_nothing_invented(
    provider: Provider,
    body: &Value,
    model_sent: &[(&str, &str)],
    what: &str,
) {
    let (sent, answered) = calls_and_answers(provider, body);
    let ids: Vec<&str> = sent.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        answered.iter().map(String::as_str).collect::<Vec<_>>(),
        "{what}"
    );
    for (id, arguments) in &sent {
        let original = model_sent
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, a)| *a)
            .unwrap();
        if provider == Provider::Anthropic {
            let whole: Value = serde_json::from_str(original)
                .unwrap_or_else(|_| panic!("{what}: {id} sent with invented input {arguments}"));
            assert_eq!(arguments, &whole.to_string(), "{what}: {id}");
        } else {
            assert!(
                original.starts_with(arguments.as_str()),
                "{what}: {id} sent as {arguments:?}"
            );
        }
    }
}

fn started_ids(events: &[AgentEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::ToolStarted { call_id, .. } => Some(call_id.clone()),
            _ => None,
        })
        .collect()
}

fn message_ends(events: &[AgentEvent]) -> Vec<(usize, String, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::MessageEnd {
                turn,
                stop,
                truncated,
                ..
            } => Some((*turn, stop.as_str().to_string(), *truncated)),
            _ => None,
        })
        .collect()
}

const WHOLE: (&str, &str) = ("c_1", r#"{"expression": "6 * 7"}"#);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tokens_inside_a_call_runs_the_whole_calls_and_refuses_the_cut_one_unstarted() {
    let cut = ("c_2", r#"{"expression": "1 +"#);
    for provider in PROVIDERS {
        for (seed, eol) in [(1, "\r\n"), (2, "\n"), (3, "\n")] {
            let what = format!("{provider}, seed {seed}, eol {eol:?}");
            let calls = [(WHOLE.0, "calc", WHOLE.1), (cut.0, "calc", cut.1)];
            let first = sse_reply(provider, "Two sums: é😀", &calls, Ending::MaxTokens, eol);
            let second = sse_reply(provider, "It is 42.", &[], Ending::Done, eol);
            let server = RawServer::start(vec![first.into(), second.into()], seed).await;
            let (report, events) = run_raw(&server, provider, config(true)).await;
            assert_eq!(report.stop, AgentStop::Answered, "{what}");
            assert_eq!(
                message_ends(&events)[0],
                (1, "max_tokens".into(), true),
                "{what}"
            );
            assert_eq!(
                started_ids(&events),
                ["c_1"],
                "{what}: the cut call never starts"
            );
            assert!(
                events.iter().any(
                    |e| matches!(e, AgentEvent::ToolFinished { call_id, .. } if call_id == "c_2")
                ),
                "{what}: the cut call is answered"
            );
            let body = &server.requests()[1];
            check_nothing_invented(provider, body, &[WHOLE, cut], &what);
            let said = body.to_string();
            assert!(
                said.contains("c_2") && said.contains("cut off"),
                "{what}: {said}"
            );
            let (sent, _) = calls_and_answers(provider, body);
            let cut_sent = sent.iter().any(|(id, _)| id == "c_2");
            assert_eq!(
                cut_sent,
                provider != Provider::Anthropic,
                "{what}: {sent:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_inside_a_line_is_truncated_never_a_provider_error() {
    let second = ("c_2", r#"{"expression": "1 + 1", "é": "😀"}"#);
    for provider in PROVIDERS {
        for (k, eol) in [(1, "\n"), (2, "\r\n"), (3, "\n"), (4, "\r\n"), (5, "\n")] {
            let calls = [(WHOLE.0, "calc", WHOLE.1), (second.0, "calc", second.1)];
            let whole = sse_reply(provider, "Two sums: é😀", &calls, Ending::Done, eol);
            let start = whole.find("c_2").unwrap();
            let mut at = start + (whole.len() - start) * k / 7;
            while matches!(whole.as_bytes()[at - 1], b'\n' | b'\r') || !whole.is_char_boundary(at) {
                at += 1;
            }
            let what = format!("{provider}, cut at {at}: …{:?}", &whole[at - 30..at]);
            let answer = sse_reply(provider, "Done.", &[], Ending::Done, eol);
            let server = RawServer::start(vec![whole[..at].into(), answer.into()], k as u64).await;
            let (report, events) = run_raw(&server, provider, config(true)).await;
            assert_eq!(report.stop, AgentStop::Answered, "{what}");
            assert_eq!(
                message_ends(&events)[0],
                (1, "truncated".into(), true),
                "{what}"
            );
            assert_eq!(started_ids(&events)[0], "c_1", "{what}");
            check_nothing_invented(provider, &server.requests()[1], &[WHOLE, second], &what);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_written_terminator_is_truncated_and_ends_the_run_so() {
    for provider in PROVIDERS {
        for (seed, eol) in [(1, "\r\n"), (2, "\n")] {
            let what = format!("{provider}, eol {eol:?}");
            let stream = sse_reply(provider, "The answer is 4", &[], Ending::Done, eol);
            let server =
                RawServer::start(vec![without_last_newline(&stream, eol).into()], seed).await;
            let (report, events) = run_raw(&server, provider, config(true)).await;
            assert_eq!(report.stop, AgentStop::Truncated, "{what}");
            assert_eq!(report.answer, "The answer is 4", "{what}");
            assert_eq!(
                message_ends(&events),
                [(1, "truncated".into(), true)],
                "{what}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_exits_non_zero_and_says_so_when_the_run_ends_on_a_cut_reply() {
    let eol = "\n";
    let stream = sse_reply(
        Provider::OpenAiChat,
        "The answer is 4",
        &[],
        Ending::Done,
        eol,
    );
    let server = RawServer::start(vec![without_last_newline(&stream, eol).into()], 1).await;
    let tools = tempfile::tempdir().expect("temp dir");
    let mut command = std::process::Command::new(crate::common::toolhost_bin());
    command
        .args([
            "chat",
            "hi",
            "--json",
            "--base-url",
            &server.base_url,
            "--tools",
        ])
        .arg(tools.path())
        .env_remove("OPENAI_API_KEY");
    let output = tokio::task::spawn_blocking(move || command.output().expect("run toolhost"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events.iter().any(|e| e["event"] == "message_end"
            && e["stop"] == "truncated"
            && e["truncated"] == true),
        "{stdout}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "finished" && e["stop"] == "truncated"),
        "{stdout}"
    );
}

/// A Responses stream whose `call_id` arrives only with the item's `done`
/// (the call began under its item id): the tool runs once, under the id the
/// reply holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responses_call_id_that_arrives_late_runs_the_tool_once() {
    let provider = Provider::OpenAiResponses;
    let arguments = WHOLE.1;
    let frame = |data: Value| format!("data: {data}\n\n");
    let first = [
        frame(
            json!({"type": "response.output_item.added", "item": {"type": "function_call", "id": "fc_1", "name": "calc", "arguments": ""}}),
        ),
        frame(
            json!({"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": arguments}),
        ),
        frame(
            json!({"type": "response.function_call_arguments.done", "item_id": "fc_1", "arguments": arguments}),
        ),
        frame(
            json!({"type": "response.output_item.done", "item": {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "calc", "arguments": arguments}}),
        ),
        frame(json!({"type": "response.completed", "response": {"status": "completed"}})),
    ]
    .concat();
    let second = sse_reply(provider, "It is 42.", &[], Ending::Done, "\n");
    let server = RawServer::start(vec![first.into(), second.into()], 2).await;
    let (report, events) = run_raw(&server, provider, config(true)).await;
    assert_eq!(report.stop, AgentStop::Answered);
    assert_eq!(started_ids(&events), ["call_1"], "{events:#?}");
    let finished = events
        .iter()
        .filter(|e| matches!(e, AgentEvent::ToolFinished { .. }))
        .count();
    assert_eq!(finished, 1, "{events:#?}");
    let answers = results_sent(provider, &server.requests()[1]);
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].0, "call_1");
}

/// A reader that falls behind a run's events (a CLI printing into a pipe
/// nobody drains, say) holds each call's newest progress report, not one
/// per report: a guest may report every 10 ms for as long as it runs, and
/// every report used to wait in the reader's channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_run_keeps_each_call_s_newest_progress_not_every_report() {
    let mut first = ScriptedReply::new();
    for _ in 0..4 {
        // Each call reports every 100 ms of its second: ten reports.
        first = first.call("sleep", json!({"ms": 1_000}));
    }
    let script = Script::new(vec![first, ScriptedReply::new().text("Slept.")]);
    let server = ScriptedServer::start(script).await.unwrap();
    let client = ModelClient::new(server.client_config(Provider::OpenAiChat)).unwrap();
    let agent = Agent::new(client, crate::common::executor()).with_config(config(true));
    let (sender, mut receiver) = event_channel();
    // Nobody reads while the run goes on.
    let report = agent.run_prompt("Sleep.", Some(sender)).await.unwrap();
    assert_eq!(report.stop, AgentStop::Answered);
    let mut events = Vec::new();
    while let Some(event) = receiver.recv().await {
        events.push(event);
    }
    let ids: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::ToolStarted { call_id, .. } => Some(call_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 4);
    for id in &ids {
        let reports: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                AgentEvent::ToolProgress { call_id, done, .. } if call_id == id => Some(*done),
                _ => None,
            })
            .collect();
        // Ten were held before.
        assert_eq!(reports, [1_000], "call {id}: the newest report alone");
        let report_at = position(
            &events,
            "progress",
            |e| matches!(e, AgentEvent::ToolProgress { call_id, .. } if call_id == id),
        );
        let finished_at = position(
            &events,
            "finish",
            |e| matches!(e, AgentEvent::ToolFinished { call_id, outcome, .. } if call_id == id && outcome.is_ok()),
        );
        assert!(
            report_at < finished_at,
            "call {id}: progress before its end"
        );
    }
}
