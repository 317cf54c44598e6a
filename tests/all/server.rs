//! A real HTTP server on 127.0.0.1 for the outbound HTTP tests. It records
//! every request it gets, so a test can show that a denied request never
//! reached it and that a secret arrived only where it should.
//!
//! Routes: `/json` answers `{"hello": "world"}`; `/echo` answers the request
//! (method, headers, body) as JSON and repeats the `authorization` header in
//! `x-echo-authorization`; `/redirect?to=URL` answers 302 to URL; `/html` a
//! small page; `/big` 64 KiB; `/huge` 8 MiB in pieces of 64 KiB, then the
//! `authorization` header it got; `/slow` waits 10 s; `/status/N` answers N.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running server; dropping it stops it.
pub struct Server {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Starts a server on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(handle).with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, seen, task }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn handle(State(seen): State<Arc<Mutex<Vec<Seen>>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    seen.lock().expect("lock").push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.to_string(),
        headers: headers.clone(),
    });
    let path = parts.uri.path();
    match path {
        "/json" => axum::Json(json!({"hello": "world"})).into_response(),
        "/echo" => echo(&parts.method, &parts.headers, headers, &body),
        "/redirect" => {
            let to = parts
                .uri
                .query()
                .and_then(|q| q.strip_prefix("to="))
                .unwrap_or("/json")
                .to_string();
            (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
        }
        "/html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<html><head><title>Test page</title><script>alert(1)</script></head>\
             <body><h1>Hello</h1><p>From the <b>loopback</b> server &amp; friends.</p></body></html>",
        )
            .into_response(),
        "/big" => vec![b'x'; 64 << 10].into_response(),
        "/huge" => {
            // Static pieces: the server takes no heap for the body.
            static PIECE: [u8; 64 << 10] = [b'x'; 64 << 10];
            let echo = parts
                .headers
                .get(header::AUTHORIZATION)
                .map(|v| Bytes::copy_from_slice(v.as_bytes()))
                .unwrap_or_default();
            let pieces = (0..128)
                .map(|_| Bytes::from_static(&PIECE))
                .chain(std::iter::once(echo))
                .map(Ok::<_, std::convert::Infallible>);
            axum::body::Body::from_stream(futures::stream::iter(pieces)).into_response()
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            "late".into_response()
        }
        _ => match path.strip_prefix("/status/").and_then(|n| n.parse::<u16>().ok()) {
            Some(code) => (
                StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT),
                axum::Json(json!({"status": code})),
            )
                .into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        },
    }
}

fn echo(
    method: &axum::http::Method,
    raw: &HeaderMap,
    headers: Vec<(String, String)>,
    body: &Bytes,
) -> Response {
    let mut response = axum::Json(json!({
        "method": method.as_str(),
        "headers": headers,
        "body": String::from_utf8_lossy(body),
    }))
    .into_response();
    if let Some(auth) = raw.get(header::AUTHORIZATION) {
        response
            .headers_mut()
            .insert("x-echo-authorization", auth.clone());
    }
    response
        .headers_mut()
        .insert("x-server", HeaderValue::from_static("loopback"));
    response
}
