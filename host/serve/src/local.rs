//! The guard of a server without keys (`--no-auth`): such a server trusts
//! whoever reaches it, so it must be reached from this machine only, and
//! not by a web page open in a browser on it. A page can send a "simple"
//! cross-origin POST (`text/plain` or form-encoded, no preflight), and
//! DNS rebinding can point a name of its own at 127.0.0.1 to read the
//! answers. So every route refuses:
//!
//! - a `Host` that is not a loopback name (`localhost`, `127.0.0.1`,
//!   `[::1]`, any port): 403 (rebinding sends the attacker's name);
//! - an `Origin` that is not a loopback origin (`http://localhost:8787`…),
//!   `null` included: 403 (a page elsewhere);
//! - a request with a body that is not `application/json`: 415 (a browser
//!   sends JSON cross-origin only after a preflight, which this server
//!   never grants).
//!
//! A request with no `Host` (not HTTP/1.1, not a browser) or no `Origin`
//! (not a browser, or a same-origin GET) passes those two checks.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::routes::error;

/// Lets through only what a local, non-browser client sends.
pub(super) async fn loopback_only(request: Request, next: Next) -> Response {
    if let Some(refused) = refusal(request.method(), request.headers()) {
        return refused;
    }
    next.run(request).await
}

fn refusal(method: &Method, headers: &HeaderMap) -> Option<Response> {
    let text = |name| {
        headers
            .get(name)
            .map(|value| value.to_str().unwrap_or_default())
    };
    if let Some(host) = text(header::HOST)
        && !names_loopback(host)
    {
        return Some(error(
            StatusCode::FORBIDDEN,
            format!(
                "a server without keys (--no-auth) answers only loopback names \
                 (localhost, 127.0.0.1, [::1]), not Host {host:?}"
            ),
        ));
    }
    if let Some(origin) = text(header::ORIGIN)
        && !is_loopback_origin(origin)
    {
        return Some(error(
            StatusCode::FORBIDDEN,
            format!(
                "a server without keys (--no-auth) refuses cross-origin requests \
                 (Origin {origin:?})"
            ),
        ));
    }
    let has_body = [Method::POST, Method::PUT, Method::PATCH].contains(method);
    if has_body && !text(header::CONTENT_TYPE).is_some_and(is_json) {
        return Some(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a server without keys (--no-auth) takes only `Content-Type: application/json` bodies",
        ));
    }
    None
}

/// True for `localhost`, `127.0.0.1` and `[::1]`, each with or without a port.
fn names_loopback(authority: &str) -> bool {
    let end = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => end + 1,
            None => return false,
        }
    } else {
        authority.find(':').unwrap_or(authority.len())
    };
    let (host, port) = authority.split_at(end);
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok && (host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "[::1]")
}

/// `http://` or `https://` and a loopback name, nothing after it.
fn is_loopback_origin(origin: &str) -> bool {
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(names_loopback)
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_with_and_without_ports() {
        for good in [
            "localhost",
            "LOCALHOST:8787",
            "127.0.0.1",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:8787",
        ] {
            assert!(names_loopback(good), "{good}");
        }
        for bad in [
            "evil.example",
            "localhost.evil.example",
            "localhost:",
            "localhost:80x",
            "127.0.0.1.evil.example",
            "127.0.0.2",
            "[::1",
            "[::1]x",
            "::1",
            "",
        ] {
            assert!(!names_loopback(bad), "{bad}");
        }
    }

    #[test]
    fn origins_and_content_types() {
        assert!(is_loopback_origin("http://localhost:8787"));
        assert!(is_loopback_origin("https://[::1]"));
        for bad in [
            "null",
            "http://evil.example",
            "http://localhost/x",
            "file://",
        ] {
            assert!(!is_loopback_origin(bad), "{bad}");
        }
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "application/jsonp",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }
}
