//! A whole reply is bounded, not only each event: its number of calls, and
//! its text and arguments together.

use serde_json::json;

use crate::assembly::{MAX_CALLS, MAX_REPLY, StreamError};
use crate::reader::{ReadError, StreamReader};
use crate::types::{ModelReply, Provider};

/// Reads `stream` in pieces of 64 KiB.
fn read(provider: Provider, stream: &str) -> Result<ModelReply, ReadError> {
    let mut reader = StreamReader::new(provider);
    let mut on_event = |_| {};
    for chunk in stream.as_bytes().chunks(1 << 16) {
        if reader.feed(chunk, &mut on_event)? {
            break;
        }
    }
    reader.finish(&mut on_event)
}

/// One complete call of `calc`, numbered `n`, in `provider`'s shape.
fn call(provider: Provider, n: usize) -> String {
    let data = match provider {
        Provider::OpenAiChat => json!({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": n, "id": format!("c{n}"), "type": "function", "function": {"name": "calc", "arguments": "{}"}}
        ]}}]}),
        Provider::OpenAiResponses => json!({"type": "response.output_item.added", "item": {
            "type": "function_call", "id": format!("fc{n}"), "call_id": format!("c{n}"), "name": "calc", "arguments": "{}"
        }}),
        _ => json!({"type": "content_block_start", "index": n, "content_block": {
            "type": "tool_use", "id": format!("c{n}"), "name": "calc", "input": {}
        }}),
    };
    format!("data: {data}\n\n")
}

/// One piece of text, in `provider`'s shape.
fn text(provider: Provider, text: &str) -> String {
    let data = match provider {
        Provider::OpenAiChat => json!({"choices": [{"index": 0, "delta": {"content": text}}]}),
        Provider::OpenAiResponses => json!({"type": "response.output_text.delta", "delta": text}),
        _ => {
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})
        }
    };
    format!("data: {data}\n\n")
}

#[test]
fn a_reply_of_a_hundred_thousand_calls_is_refused() {
    for provider in Provider::ALL {
        let stream: String = (0..100_000).map(|n| call(provider, n)).collect();
        match read(provider, &stream) {
            Err(ReadError::Stream(error @ StreamError::TooLarge(_))) => assert_eq!(
                error.to_string(),
                format!("the reply holds more than {MAX_CALLS} tool calls")
            ),
            Err(other) => panic!("{provider}: {other:?}"),
            Ok(reply) => panic!("{provider}: {} calls kept", reply.message.calls.len()),
        }
        // At the cap, all is well.
        let stream: String = (0..MAX_CALLS).map(|n| call(provider, n)).collect();
        let reply = read(provider, &stream).unwrap();
        assert_eq!(reply.message.calls.len(), MAX_CALLS, "{provider}");
    }
}

#[test]
fn a_reply_of_endless_text_is_refused() {
    let piece = "x".repeat(1 << 20);
    for provider in Provider::ALL {
        let pieces = (MAX_REPLY >> 20) + 1;
        let stream: String = (0..pieces).map(|_| text(provider, &piece)).collect();
        match read(provider, &stream) {
            Err(ReadError::Stream(StreamError::TooLarge(what))) => {
                assert_eq!(
                    what,
                    format!("{} MiB of text and arguments", MAX_REPLY >> 20)
                );
            }
            Err(other) => panic!("{provider}: {other:?}"),
            Ok(reply) => panic!(
                "{provider}: {} bytes of text kept",
                reply.message.text.len()
            ),
        }
    }
}

#[test]
fn long_names_count_against_the_reply_cap() {
    // Each event is well under the event cap; together they are not.
    let name = "n".repeat(64 << 10);
    let stream: String = (0..MAX_CALLS)
        .map(|n| {
            let data = json!({"type": "response.output_item.added", "item": {
                "type": "function_call", "id": format!("fc{n}"), "call_id": format!("c{n}"), "name": name, "arguments": ""
            }});
            format!("data: {data}\n\n")
        })
        .collect();
    match read(Provider::OpenAiResponses, &stream) {
        Err(ReadError::Stream(StreamError::TooLarge(what))) => {
            assert!(what.contains("MiB"), "{what}");
        }
        Err(other) => panic!("{other:?}"),
        Ok(reply) => panic!("{} calls kept", reply.message.calls.len()),
    }
}
