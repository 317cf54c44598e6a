//! The stdio transport: one JSON-RPC message per line, read and written as
//! rmcp's own line transport does, except that `tools/call` requests are
//! decoded as what they are.
//!
//! rmcp decodes every incoming request by trying each of the twenty-odd
//! client request types in turn until one accepts its `method`; `tools/call`
//! comes fourteenth, so each call paid for thirteen failed attempts (a
//! buffered copy of the message and an error value apiece): 3.1 µs a line,
//! a fifth of what the MCP layer spent on a call. A line that names `tools/call` is
//! decoded here as a request of that one type, through rmcp's own message
//! checks (a request has a `method` and an `id` and no `result` or `error`).
//! Any other line, or one that does not decode that way, goes through
//! rmcp's decoder unchanged, so what is accepted, skipped or answered with
//! "Invalid request" is exactly what rmcp does.
//!
//! A line is parsed within the host's memory budget: one of rmcp's 16 MiB
//! can make a tree sixteen times that, so before a line whose parse would
//! take more than 1 MiB is decoded, what it would take is held from the
//! budget until it is decoded. While the calls in flight hold the budget,
//! the line waits (reading stops, so the one client slows down); a line the
//! whole budget could not hold is dropped, as a line over the length limit
//! is.
//!
//! A client that stops reading what the server writes stops being read
//! too: once [`MAX_UNSENT`] answers and notifications wait to be written,
//! no further line is read until one is, so a client that sends without
//! reading slows to what it reads, instead of the server keeping an answer
//! for every line it sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::SinkExt;
use rmcp::RoleServer;
use rmcp::model::{
    CallToolRequest, ClientNotification, ClientRequest, ClientResult, ErrorData, JsonRpcMessage,
    JsonRpcRequest,
};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::{
    DEFAULT_MAX_LINE_LENGTH, JsonRpcMessageCodec, JsonRpcMessageCodecError,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::sync::{Mutex, Notify};
use tokio_util::bytes::{BufMut, BytesMut};
use tokio_util::codec::{Decoder, FramedWrite};
use toolhost_runtime::{HoldRefused, MemoryHold, parse_hold_bytes};

type Writer<W> = FramedWrite<W, JsonRpcMessageCodec<TxJsonRpcMessage<RoleServer>>>;

/// Holds `bytes` of the host's memory budget (see
/// [`Executor::hold_memory`](toolhost_runtime::Executor::hold_memory)).
pub(crate) type ParseHold = Box<dyn Fn(u64) -> Result<MemoryHold, HoldRefused> + Send + Sync>;

/// How long a line that does not fit beside the calls in flight waits
/// before it asks the budget again.
const BUDGET_RETRY: Duration = Duration::from_millis(10);

/// Answers and notifications waiting to be written, at most, before the
/// next line is read.
pub(crate) const MAX_UNSENT: usize = 64;

/// Messages handed to [`Transport::send`] and not yet written (or given up).
#[derive(Debug, Default)]
struct Unsent {
    count: AtomicUsize,
    written: Notify,
}

/// One message waiting to be written: counted in [`Unsent`] until dropped.
struct Waiting(Arc<Unsent>);

impl Waiting {
    fn new(unsent: &Arc<Unsent>) -> Self {
        unsent.count.fetch_add(1, Ordering::AcqRel);
        Self(unsent.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.written.notify_waiters();
    }
}

impl Unsent {
    /// Returns once fewer than [`MAX_UNSENT`] messages wait.
    async fn room(&self) {
        loop {
            // Made before the count is read, so no write between is missed.
            let written = self.written.notified();
            if self.count.load(Ordering::Acquire) < MAX_UNSENT {
                return;
            }
            written.await;
        }
    }
}

/// Newline-delimited JSON-RPC over `R` and `W` for an MCP server.
pub(crate) struct Lines<R, W> {
    read: BufReader<R>,
    /// The line being read: kept across a cancelled [`Transport::receive`]
    /// (rmcp polls it in a `select!`), cleared once the line is decoded.
    line: Vec<u8>,
    /// Skipping the rest of a line that was too long.
    discarding: bool,
    /// `line` is whole and waits for the memory its parse takes (kept
    /// across a cancelled [`Transport::receive`], as `line` is).
    whole: bool,
    /// Where a large line's parse is held, if anywhere.
    hold: Option<ParseHold>,
    write: Arc<Mutex<Option<Writer<W>>>>,
    /// An "Invalid request" answer owed for a line that was JSON but no
    /// message, and how far it got (queued, then flushed).
    owed: Option<Owed>,
    /// Messages sent and not yet written.
    unsent: Arc<Unsent>,
}

#[derive(Clone, Copy, PartialEq)]
enum Owed {
    Answer,
    Flush,
}

/// What reading a line gave.
enum Read {
    Line,
    TooLong,
    End,
    Failed(std::io::Error),
}

/// What a line decodes to.
#[derive(Debug)]
enum Decoded {
    Message(Box<RxJsonRpcMessage<RoleServer>>),
    /// Not JSON, or a notification rmcp ignores: nothing to answer.
    Skip,
    /// JSON, but no JSON-RPC message: answered with "Invalid request".
    Invalid,
}

impl<R, W> Lines<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    pub(crate) fn new(read: R, write: W) -> Self {
        Self {
            read: BufReader::new(read),
            line: Vec::new(),
            discarding: false,
            whole: false,
            hold: None,
            write: Arc::new(Mutex::new(Some(FramedWrite::new(
                write,
                JsonRpcMessageCodec::default(),
            )))),
            owed: None,
            unsent: Arc::default(),
        }
    }

    /// Holds each large line's parse with `hold` (see the module's doc).
    pub(crate) fn with_parse_hold(mut self, hold: ParseHold) -> Self {
        self.hold = Some(hold);
        self
    }

    /// Reads up to and including the next newline into `self.line`. Lines
    /// longer than rmcp's limit are dropped whole.
    async fn read_line(&mut self) -> Read {
        loop {
            let available = match self.read.fill_buf().await {
                Ok([]) => return Read::End,
                Ok(available) => available,
                Err(error) => return Read::Failed(error),
            };
            let newline = available.iter().position(|&b| b == b'\n');
            let take = newline.map_or(available.len(), |at| at + 1);
            let mut read = None;
            if self.discarding {
                self.discarding = newline.is_none();
            } else if self.line.len().saturating_add(take) > DEFAULT_MAX_LINE_LENGTH {
                self.line.clear();
                self.discarding = newline.is_none();
                read = Some(Read::TooLong);
            } else {
                self.line.extend_from_slice(&available[..take]);
                if newline.is_some() {
                    read = Some(Read::Line);
                }
            }
            self.read.consume(take);
            if let Some(read) = read {
                return read;
            }
        }
    }

    /// Sends the "Invalid request" answer owed, if any; false if the
    /// connection is gone.
    async fn pay(&mut self) -> bool {
        let Some(owed) = self.owed else {
            return true;
        };
        let mut write = self.write.lock().await;
        let Some(framed) = write.as_mut() else {
            return false;
        };
        if owed == Owed::Answer {
            let answer = TxJsonRpcMessage::<RoleServer>::error(
                ErrorData::invalid_request("Invalid request", None),
                None,
            );
            if framed.feed(answer).await.is_err() {
                return false;
            }
            // Queued: a cancelled flush must not queue it again.
            self.owed = Some(Owed::Flush);
        }
        if framed.flush().await.is_err() {
            return false;
        }
        self.owed = None;
        true
    }
}

impl<R, W> Transport<RoleServer> for Lines<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let write = self.write.clone();
        let waiting = Waiting::new(&self.unsent);
        async move {
            let _waiting = waiting;
            match write.lock().await.as_mut() {
                Some(framed) => framed.send(item).await.map_err(Into::into),
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "the transport is closed",
                )),
            }
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            if !self.pay().await {
                return None;
            }
            if !self.whole {
                // A client that does not read is not read either.
                if self.line.is_empty() {
                    self.unsent.room().await;
                }
                match self.read_line().await {
                    Read::Line => self.whole = true,
                    Read::TooLong => {
                        tracing::error!(
                            max = DEFAULT_MAX_LINE_LENGTH,
                            "an incoming message was longer than the limit and was dropped"
                        );
                        continue;
                    }
                    Read::End => return None,
                    Read::Failed(error) => {
                        tracing::error!(%error, "reading the client's messages failed");
                        return None;
                    }
                }
            }
            let held = hold_parse(self.hold.as_ref(), &self.line).await;
            self.whole = false;
            let decoded = match &held {
                Ok(_) => decode(&self.line),
                Err(refused) => {
                    tracing::error!(
                        bytes = self.line.len(),
                        %refused,
                        "an incoming message was not parsed and was dropped"
                    );
                    Decoded::Skip
                }
            };
            drop(held);
            self.line.clear();
            match decoded {
                Decoded::Message(message) => return Some(*message),
                Decoded::Skip => {}
                Decoded::Invalid => self.owed = Some(Owed::Answer),
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        drop(self.write.lock().await.take());
        Ok(())
    }
}

/// What `line` would take parsed, held from the budget with `hold`:
/// `Ok(None)` when it is small or there is no budget to ask, `Err` when the
/// whole budget could not hold it. Waits while the calls in flight hold the
/// budget.
async fn hold_parse(
    hold: Option<&ParseHold>,
    line: &[u8],
) -> Result<Option<MemoryHold>, HoldRefused> {
    let (Some(hold), Some(bytes)) = (hold, parse_hold_bytes(line)) else {
        return Ok(None);
    };
    loop {
        match hold(bytes) {
            Ok(held) => return Ok(Some(held)),
            Err(HoldRefused::Busy { .. }) => tokio::time::sleep(BUDGET_RETRY).await,
            Err(refused) => return Err(refused),
        }
    }
}

/// One line, with or without its newline.
fn decode(line: &[u8]) -> Decoded {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Decoded::Skip;
    }
    if let Some(call) = tool_call(line) {
        return Decoded::Message(Box::new(call));
    }
    let mut framed = BytesMut::with_capacity(line.len() + 1);
    framed.extend_from_slice(line);
    framed.put_u8(b'\n');
    match JsonRpcMessageCodec::<RxJsonRpcMessage<RoleServer>>::new().decode(&mut framed) {
        Ok(Some(message)) => Decoded::Message(Box::new(message)),
        Ok(None) => Decoded::Skip,
        Err(JsonRpcMessageCodecError::Serde(error)) => {
            use serde_json::error::Category;
            match error.classify() {
                // Not JSON: there is no id to answer, and answering garbage
                // can start an error storm with a peer that echoes it.
                Category::Syntax | Category::Eof => {
                    tracing::debug!(%error, "ignoring an incoming line that is not JSON");
                    Decoded::Skip
                }
                Category::Data | Category::Io => {
                    tracing::debug!(%error, "an incoming message is no JSON-RPC message");
                    Decoded::Invalid
                }
            }
        }
        Err(error) => {
            tracing::debug!(%error, "ignoring an incoming line");
            Decoded::Skip
        }
    }
}

/// `line` as a `tools/call` request, if it names that method and decodes as
/// one through rmcp's message checks.
fn tool_call(line: &[u8]) -> Option<RxJsonRpcMessage<RoleServer>> {
    const METHOD: &[u8] = b"\"tools/call\"";
    if !line.windows(METHOD.len()).any(|w| w == METHOD) {
        return None;
    }
    type Call = JsonRpcMessage<CallToolRequest, ClientResult, ClientNotification>;
    match serde_json::from_slice::<Call>(line).ok()? {
        JsonRpcMessage::Request(JsonRpcRequest {
            jsonrpc,
            id,
            request,
        }) => Some(JsonRpcMessage::Request(JsonRpcRequest {
            jsonrpc,
            id,
            request: ClientRequest::CallToolRequest(request),
        })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A message as it would be sent on: what is compared.
    fn text(message: &RxJsonRpcMessage<RoleServer>) -> serde_json::Value {
        serde_json::to_value(message).unwrap()
    }

    /// What rmcp's own decoder makes of `line`.
    fn rmcp(line: &[u8]) -> Option<serde_json::Value> {
        let mut framed = BytesMut::from(line);
        framed.put_u8(b'\n');
        JsonRpcMessageCodec::<RxJsonRpcMessage<RoleServer>>::new()
            .decode(&mut framed)
            .ok()
            .flatten()
            .as_ref()
            .map(text)
    }

    fn ours(line: &[u8]) -> Option<serde_json::Value> {
        match decode(line) {
            Decoded::Message(message) => Some(text(&message)),
            _ => None,
        }
    }

    /// A client that writes requests and never reads the answers: once
    /// [`MAX_UNSENT`] answers wait to be written, no further line is read,
    /// so the server keeps a bounded number of them, however many lines
    /// the client sent.
    #[tokio::test]
    async fn a_client_that_does_not_read_is_not_read_either() {
        use tokio::io::AsyncWriteExt;
        const SENT: usize = 1000;
        let (mut client, server_in) = tokio::io::duplex(1 << 20);
        // The answers go into a pipe of 64 bytes that nobody reads.
        let (server_out, _unread) = tokio::io::duplex(64);
        let mut lines = Lines::new(server_in, server_out);
        let mut pings = String::new();
        for id in 0..SENT {
            pings += &format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"ping\"}}\n");
        }
        client.write_all(pings.as_bytes()).await.unwrap();
        let mut answers = Vec::new();
        let mut read = 0;
        // Each line read is answered at once, as rmcp answers a ping; a
        // receive that waits a second is one that stopped.
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(1), lines.receive()).await
        {
            read += 1;
            let answer = TxJsonRpcMessage::<RoleServer>::error(
                ErrorData::invalid_request("x".repeat(100), None),
                None,
            );
            answers.push(tokio::spawn(lines.send(answer)));
        }
        assert!(read < SENT, "all {SENT} lines were read");
        assert!(read <= MAX_UNSENT + 1, "{read} lines were read");
        for answer in answers {
            answer.abort();
        }
    }

    #[test]
    fn tool_calls_decode_as_rmcp_decodes_them() {
        let lines: &[&str] = &[
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"value":1}}}"#,
            r#"{"jsonrpc":"2.0","id":"a-string","method":"tools/call","params":{"name":"echo"}}"#,
            r#"{"method":"tools/call","params":{"name":"e","arguments":{},"_meta":{"progressToken":7}},"id":9,"jsonrpc":"2.0"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","task":{"ttl":5}},"extra":true}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"e","arguments":{"s":"\"tools/call\""}}}"#,
        ];
        for line in lines {
            let fast = tool_call(line.as_bytes()).expect(line);
            assert_eq!(Some(text(&fast)), rmcp(line.as_bytes()), "{line}");
            assert_eq!(ours(line.as_bytes()), rmcp(line.as_bytes()), "{line}");
        }
    }

    #[test]
    fn hostile_lines_get_what_rmcp_gives_them() {
        let cases: &[(&str, &str)] = &[
            // A request that also carries a result is no message at all.
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"e"},"result":{}}"#,
                "invalid",
            ),
            (
                r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"e"}}"#,
                "invalid",
            ),
            (r#"["tools/call"]"#, "invalid"),
            // Calls without an id, without params or with a bad name are
            // rmcp's custom notifications and requests (the server answers
            // those as unknown), not calls.
            (
                r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"e"}}"#,
                "message",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
                "message",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#,
                "message",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"e"}"#,
                "skip",
            ),
            (r#"not json "tools/call""#, "skip"),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/whatever"}"#,
                "message",
            ),
            (
                r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#,
                "message",
            ),
            (
                "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":\"e\"}}",
                "message",
            ),
            (
                "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\",\"params\":{\"name\":\"e\"}}\r",
                "message",
            ),
            ("", "skip"),
        ];
        for (line, want) in cases {
            let got = match decode(line.as_bytes()) {
                Decoded::Message(_) => "message",
                Decoded::Skip => "skip",
                Decoded::Invalid => "invalid",
            };
            assert_eq!(got, *want, "{line}");
            assert_eq!(ours(line.as_bytes()), rmcp(line.as_bytes()), "{line}");
        }
    }

    /// A `tools/call` line with its parts chosen (each may be wrong), in the
    /// given order, with `tail` after it.
    fn call_line(parts: &[(&str, serde_json::Value)], tail: &str) -> String {
        let fields: Vec<String> = parts
            .iter()
            .map(|(key, value)| format!("{}:{value}", serde_json::Value::from(*key)))
            .collect();
        format!("{{{}}}{tail}", fields.join(","))
    }

    fn id() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::json;
        prop_oneof![
            3 => any::<i64>().prop_map(|n| json!(n)),
            3 => "[a-z0-9-]{0,6}".prop_map(|s| json!(s)),
            1 => Just(json!(null)),
            1 => Just(json!(1.5)),
        ]
    }

    fn params() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::json;
        prop_oneof![
            3 => "[a-z_]{1,6}".prop_map(|n| json!({"name": n, "arguments": {"value": 1}})),
            2 => "[a-z_]{1,6}".prop_map(|n| json!({"name": n, "_meta": {"progressToken": n}})),
            1 => Just(json!({"name": 7})),
            1 => Just(json!({"arguments": {}})),
            1 => Just(json!([1])),
        ]
    }

    /// Another member: a second copy of one, or one no request has.
    fn extra() -> impl Strategy<Value = (&'static str, serde_json::Value)> {
        use serde_json::json;
        prop_oneof![
            id().prop_map(|id| ("id", id)),
            prop_oneof![Just(json!("2.0")), Just(json!("1.0")), Just(json!(2))]
                .prop_map(|v| ("jsonrpc", v)),
            Just(("method", json!("tools/list"))),
            params().prop_map(|p| ("params", p)),
            prop_oneof![Just("result"), Just("error"), Just("extra")].prop_map(|k| (k, json!({}))),
        ]
    }

    proptest::proptest! {
        #[test]
        fn every_line_naming_tools_call_decodes_as_rmcp_decodes_it(
            id in proptest::option::weighted(0.8, id()),
            version in proptest::option::weighted(0.9, Just("2.0")),
            params in proptest::option::weighted(0.9, params()),
            extras in proptest::collection::vec(extra(), 0..3),
            turn in 0usize..6,
            tail in prop_oneof![4 => Just(""), 1 => Just("\r"), 1 => Just(" "), 1 => Just("}")],
        ) {
            let mut parts = vec![("method", serde_json::json!("tools/call"))];
            parts.extend(id.map(|id| ("id", id)));
            parts.extend(version.map(|v| ("jsonrpc", serde_json::json!(v))));
            parts.extend(params.map(|p| ("params", p)));
            parts.extend(extras);
            let turn = turn % parts.len();
            parts.rotate_left(turn);
            let line = call_line(&parts, tail);
            proptest::prop_assert_eq!(ours(line.as_bytes()), rmcp(line.as_bytes()), "{}", line);
        }
    }

    #[tokio::test]
    async fn lines_split_across_reads_too_long_lines_and_junk_lose_nothing() {
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"e"}}"#;
        let (client, server) = tokio::io::duplex(1 << 10);
        let (server_read, server_write) = tokio::io::split(server);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let mut lines = Lines::new(server_read, server_write);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            // A call in three pieces, a line over the limit, junk, JSON that
            // is no message, then a call.
            for piece in [&call[..10], &call[10..40], &call[40..], "\n"] {
                client_write.write_all(piece.as_bytes()).await.unwrap();
                client_write.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
            let long = vec![b'x'; DEFAULT_MAX_LINE_LENGTH + 10];
            client_write.write_all(&long).await.unwrap();
            client_write.write_all(b"\nnot json\n[1]\n").await.unwrap();
            client_write
                .write_all(call.replace(":1,", ":2,").as_bytes())
                .await
                .unwrap();
            client_write.write_all(b"\n").await.unwrap();
            client_write
        });
        let first = lines.receive().await.expect("the split call");
        assert_eq!(Some(text(&first)), rmcp(call.as_bytes()));
        let second = lines.receive().await.expect("the call after the junk");
        let JsonRpcMessage::Request(request) = second else {
            panic!("a request");
        };
        assert_eq!(request.id, rmcp::model::RequestId::Number(2));
        // The JSON that was no message was answered.
        let mut answer = String::new();
        let mut reader = BufReader::new(&mut client_read);
        reader.read_line(&mut answer).await.unwrap();
        assert!(answer.contains("Invalid request"), "{answer}");
        drop(reader);
        let client_write = writer.await.unwrap();
        // Both halves: the duplex closes when the client's whole end is gone.
        drop(client_read.unsplit(client_write));
        assert!(
            lines.receive().await.is_none(),
            "the client's end closes it"
        );
    }

    /// An executor over an empty catalog, with a memory budget of `mb`.
    async fn budgeted(mb: u64) -> Arc<toolhost_runtime::Executor> {
        let mut config = toolhost_runtime::ExecConfig::default();
        config.memory_budget_mb = Some(mb);
        crate::server::tests::empty_executor_with(config).await
    }

    /// A `tools/call` line with `id` whose arguments hold `zeros` zeros.
    fn zeros_call(id: u64, zeros: usize) -> String {
        let zeros = vec!["0"; zeros].join(",");
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"e","arguments":{{"v":[{zeros}]}}}}}}"#
        ) + "\n"
    }

    #[tokio::test]
    async fn a_line_is_parsed_within_the_memory_budget() {
        // The attack: lines of zeros, each a few MiB of text that parses to
        // sixteen times that, sent while the calls in flight hold the host's
        // memory budget. Each was parsed at once, outside every budget.
        let executor = budgeted(40).await;
        let asks = executor.clone();
        let hold: ParseHold = Box::new(move |bytes| asks.hold_memory("mcp", bytes));
        let (client, server) = tokio::io::duplex(1 << 16);
        let (server_read, server_write) = tokio::io::split(server);
        let (_client_read, mut client_write) = tokio::io::split(client);
        let mut lines = Lines::new(server_read, server_write).with_parse_hold(hold);
        let (fits, never, small) = (
            zeros_call(1, 500_000),
            zeros_call(2, 3_000_000),
            zeros_call(3, 1),
        );
        use toolhost_runtime::parsed_json_size;
        assert!(parsed_json_size(&fits) > 8 << 20 && parsed_json_size(&fits) < 30 << 20);
        assert!(parsed_json_size(&never) > 40 << 20);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for line in [fits, never, small] {
                client_write.write_all(line.as_bytes()).await.unwrap();
            }
            client_write
        });
        // The calls in flight hold 30 MiB: the line waits, and a receive
        // given up meanwhile loses nothing.
        let calls = executor.hold_memory("calls", 30 << 20).unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(300), lines.receive()).await;
        assert!(waited.is_err(), "the line waits for the budget");
        drop(calls);
        let first = lines.receive().await.expect("the line, once it fits");
        let JsonRpcMessage::Request(first) = first else {
            panic!("a request");
        };
        assert_eq!(first.id, rmcp::model::RequestId::Number(1));
        // A line the whole budget could not hold is dropped, unparsed.
        let next = lines.receive().await.expect("the line after it");
        let JsonRpcMessage::Request(next) = next else {
            panic!("a request");
        };
        assert_eq!(next.id, rmcp::model::RequestId::Number(3));
        assert_eq!(executor.stats().memory_reserved_bytes, 0, "all given back");
        drop(writer.await.unwrap());
    }
}
