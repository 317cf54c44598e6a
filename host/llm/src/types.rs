//! A provider-neutral conversation: what every protocol module turns into
//! its own wire shape and parses back.

use std::fmt;
use std::str::FromStr;

/// Which wire protocol a model server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Provider {
    /// OpenAI Chat Completions (`/chat/completions`), also spoken by Ollama,
    /// vLLM, llama.cpp and most OpenAI-compatible servers.
    OpenAiChat,
    /// The OpenAI Responses API (`/responses`).
    OpenAiResponses,
    /// Anthropic Messages (`/messages`).
    Anthropic,
}

impl Provider {
    /// Every provider, in a fixed order.
    pub const ALL: [Provider; 3] = [Self::OpenAiChat, Self::OpenAiResponses, Self::Anthropic];

    /// The name used on the command line and in errors.
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAiChat => "openai",
            Self::OpenAiResponses => "openai-responses",
            Self::Anthropic => "anthropic",
        }
    }

    /// The environment variable holding the API key.
    pub fn key_env(self) -> &'static str {
        match self {
            Self::OpenAiChat | Self::OpenAiResponses => "OPENAI_API_KEY",
            Self::Anthropic => "ANTHROPIC_API_KEY",
        }
    }

    /// True when a key read from [`Provider::key_env`] may be sent to
    /// `base_url`: the provider's own host over HTTPS, or a loopback host
    /// (a local server). Any other host gets the key only when the user
    /// names it for that server explicitly.
    pub fn env_key_may_go_to(self, base_url: &str) -> bool {
        let Ok(url) = reqwest::Url::parse(base_url) else {
            return false;
        };
        let own = reqwest::Url::parse(self.default_base_url()).ok();
        let own_host = own.as_ref().and_then(|own| own.host_str());
        let Some(host) = url.host_str() else {
            return false;
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => {
                host.eq_ignore_ascii_case("localhost")
                    || (url.scheme() == "https" && Some(host) == own_host)
            }
        }
    }

    /// The provider's own base URL, used when none is given.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Self::OpenAiChat | Self::OpenAiResponses => "https://api.openai.com/v1",
            Self::Anthropic => "https://api.anthropic.com/v1",
        }
    }

    /// The path of the endpoint under the base URL.
    pub fn path(self) -> &'static str {
        match self {
            Self::OpenAiChat => "/chat/completions",
            Self::OpenAiResponses => "/responses",
            Self::Anthropic => "/messages",
        }
    }

    /// A model to use when none is given.
    pub fn default_model(self) -> &'static str {
        match self {
            Self::OpenAiChat | Self::OpenAiResponses => "gpt-4.1-mini",
            Self::Anthropic => "claude-sonnet-4-5",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Provider {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "openai" | "openai-chat" => Ok(Self::OpenAiChat),
            "openai-responses" | "responses" => Ok(Self::OpenAiResponses),
            "anthropic" => Ok(Self::Anthropic),
            other => Err(format!(
                "unknown provider `{other}`; use openai, openai-responses or anthropic"
            )),
        }
    }
}

/// One tool call a model asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// The id the result must carry back (`tool_call_id`, `call_id`, `tool_use_id`).
    pub id: String,
    /// The tool's name as the model wrote it.
    pub name: String,
    /// The arguments as the model wrote them: JSON text, not checked.
    pub arguments: String,
}

impl ToolCall {
    /// A call of `name` with `arguments` (JSON text).
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }
}

/// The answer to one tool call, in the words the model will read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    /// The id of the call it answers.
    pub call_id: String,
    /// The output (JSON text) or the error message.
    pub content: String,
    /// True when the call failed; Anthropic gets `is_error`, OpenAI reads the text.
    pub is_error: bool,
}

/// What a model said in one reply: text and tool calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssistantMessage {
    /// The reply's text, all text blocks joined.
    pub text: String,
    /// The tool calls, in the order the model made them.
    pub calls: Vec<ToolCall>,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// The user speaking.
    User(String),
    /// The model's reply.
    Assistant(AssistantMessage),
    /// Results of the previous reply's tool calls.
    ToolResults(Vec<ToolResult>),
}

/// Why a model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The model finished its answer.
    EndTurn,
    /// The model wants tool results.
    ToolUse,
    /// The output token limit cut the reply.
    MaxTokens,
    /// The stream ended before the provider said it was done.
    Truncated,
    /// Anything else the provider said, verbatim.
    Other(String),
}

impl StopReason {
    /// The reason as one word: `end_turn`, `tool_use`, `max_tokens`,
    /// `truncated`, or the provider's own word.
    pub fn as_str(&self) -> &str {
        match self {
            Self::EndTurn => "end_turn",
            Self::ToolUse => "tool_use",
            Self::MaxTokens => "max_tokens",
            Self::Truncated => "truncated",
            Self::Other(other) => other,
        }
    }
}

impl serde::Serialize for StopReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelReply {
    /// What the model said.
    pub message: AssistantMessage,
    /// Why it stopped.
    pub stop: StopReason,
}

/// Something a streaming reply produced as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// A piece of the reply's text.
    Text(String),
    /// A tool call began; its arguments are still arriving.
    CallBegun {
        /// The call's id.
        id: String,
        /// The tool's name.
        name: String,
    },
    /// A tool call's arguments are complete: it can run now.
    CallReady(ToolCall),
}

/// Arguments as the executor wants them: empty text (which OpenAI sends for
/// tools without parameters) becomes `{}`.
pub(crate) fn normalize_arguments(arguments: String) -> String {
    if arguments.trim().is_empty() {
        "{}".to_string()
    } else {
        arguments
    }
}

/// True when `text` is one complete JSON value (and nothing after it).
/// Empty text is not: more may be coming (a call that has not started its
/// arguments yet), so only the end of the call reads it as `{}`.
pub(crate) fn is_complete_json(text: &str) -> bool {
    let trimmed = text.trim_end();
    (trimmed.ends_with('}') || trimmed.ends_with(']')) && parses(trimmed)
}

/// True when `text` is one JSON value: the one whole parse of arguments
/// that every completeness check goes through (and tests count).
pub(crate) fn parses(text: &str) -> bool {
    #[cfg(test)]
    WHOLE_PARSES.with(|count| count.set(count.get() + 1));
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

#[cfg(test)]
thread_local! {
    /// Whole parses of arguments made on this thread.
    pub(crate) static WHOLE_PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The first `max` bytes of `text`, cut on a character boundary.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_environment_key_goes_only_to_its_provider_or_loopback() {
        let openai = Provider::OpenAiChat;
        for url in [
            "https://api.openai.com/v1",
            "https://API.OpenAI.com/v1/",
            "http://127.0.0.1:11434/v1",
            "http://localhost:8080/v1",
            "http://[::1]:9/v1",
        ] {
            assert!(openai.env_key_may_go_to(url), "{url}");
        }
        for url in [
            "http://api.openai.com/v1",
            "https://api.openai.com.evil.example/v1",
            "https://evil.example/v1",
            "https://api.anthropic.com/v1",
            "http://10.0.0.1/v1",
            "not a url",
        ] {
            assert!(!openai.env_key_may_go_to(url), "{url}");
        }
        assert!(Provider::Anthropic.env_key_may_go_to("https://api.anthropic.com/v1"));
    }

    #[test]
    fn providers_parse_and_name_themselves() {
        for provider in Provider::ALL {
            assert_eq!(provider.name().parse::<Provider>(), Ok(provider));
        }
        assert!("gemini".parse::<Provider>().is_err());
    }

    #[test]
    fn completeness_of_arguments() {
        assert!(is_complete_json(r#"{"a": 1}"#));
        assert!(is_complete_json(r#"{"a": "}"} "#));
        assert!(!is_complete_json(""));
        assert!(!is_complete_json(r#"{"a": "}"#));
        assert!(!is_complete_json(r#"{"a": 1"#));
        assert!(!is_complete_json(r#"{"a": 1}{"#));
        assert_eq!(normalize_arguments("  ".into()), "{}");
    }
}
