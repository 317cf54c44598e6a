//! The provider client against the scripted server over real loopback
//! HTTP: retries, giving up with a clear error, keys, timeouts.

use std::time::Duration;

use serde_json::json;
use toolhost::llm::{
    ClientConfig, LlmError, Message, ModelClient, Provider, Script, ScriptGate, ScriptedReply,
    ScriptedServer, StopReason, StreamEvent,
};

fn hello() -> Message {
    Message::User("hello".into())
}

fn one_call() -> Script {
    Script::new(vec![
        ScriptedReply::new()
            .text("Sure.")
            .call("calc", json!({"expression": "1"})),
    ])
}

#[tokio::test]
async fn retries_429_honouring_retry_after_then_succeeds() {
    for provider in Provider::ALL {
        let server = ScriptedServer::start(one_call().fail_first(2, 429))
            .await
            .unwrap();
        let client = ModelClient::new(server.client_config(provider)).unwrap();
        let reply = client.complete(None, &[hello()], &[]).await.unwrap();
        assert_eq!(reply.message.calls.len(), 1, "{provider}");
        assert_eq!(reply.stop, StopReason::ToolUse, "{provider}");
        assert_eq!(
            server.requests().len(),
            3,
            "{provider}: two refusals, one success"
        );
    }
}

#[tokio::test]
async fn gives_up_naming_the_provider_and_the_status() {
    let server = ScriptedServer::start(one_call().fail_first(100, 503))
        .await
        .unwrap();
    let mut config = server.client_config(Provider::Anthropic);
    config.retries = 2;
    let client = ModelClient::new(config).unwrap();
    let error = client
        .stream(None, &[hello()], &[], &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            LlmError::Status {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.starts_with("anthropic: "), "{text}");
    assert!(
        text.contains("HTTP 503") && text.contains("scripted failure"),
        "{text}"
    );
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let server = ScriptedServer::start(Script::new(vec![])).await.unwrap();
    let client = ModelClient::new(server.client_config(Provider::OpenAiChat)).unwrap();
    let error = client.complete(None, &[hello()], &[]).await.unwrap_err();
    assert!(
        matches!(
            error,
            LlmError::Status {
                status: 400,
                attempts: 1,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("the script has 0 replies"),
        "{error}"
    );
}

#[tokio::test]
async fn keys_go_in_each_providers_header() {
    for provider in Provider::ALL {
        let server = ScriptedServer::start(one_call()).await.unwrap();
        let client =
            ModelClient::new(server.client_config(provider).api_key("sk-test-123")).unwrap();
        client.complete(None, &[hello()], &[]).await.unwrap();
        assert_eq!(
            server.requests()[0].api_key.as_deref(),
            Some("sk-test-123"),
            "{provider}"
        );
    }
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error() {
    // Bind a port, then free it: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = ClientConfig::new(Provider::OpenAiResponses)
        .base_url(format!("http://127.0.0.1:{port}/v1"));
    config.retries = 1;
    config.backoff = Duration::from_millis(1);
    let error = ModelClient::new(config)
        .unwrap()
        .complete(None, &[hello()], &[])
        .await
        .unwrap_err();
    assert!(
        matches!(error, LlmError::Transport { attempts: 2, .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("openai-responses: http://127.0.0.1:"),
        "{error}"
    );
}

#[tokio::test]
async fn a_silent_stream_times_out() {
    let gate = ScriptGate::new(); // never opened
    let script = Script::new(vec![ScriptedReply::new().text("a").pause(&gate).text("b")]);
    let server = ScriptedServer::start(script).await.unwrap();
    let mut config = server.client_config(Provider::OpenAiChat);
    // Long enough for "a" to arrive on a loaded machine; "b" never comes.
    config.idle_timeout = Duration::from_secs(2);
    let client = ModelClient::new(config).unwrap();
    let mut texts = Vec::new();
    let error = client
        .stream(None, &[hello()], &[], &mut |event| {
            if let StreamEvent::Text(text) = event {
                texts.push(text);
            }
        })
        .await
        .unwrap_err();
    assert!(matches!(error, LlmError::Idle { .. }), "{error:?}");
    assert_eq!(
        texts,
        ["a"],
        "what arrived before the silence was delivered"
    );
}
