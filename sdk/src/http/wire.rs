//! One request over `wasi:http/outgoing-handler`, and the host's error
//! codes turned into [`ToolError`]s a model can act on.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use wasip2::io::streams::StreamError;

use super::{Response, Url};
use crate::ToolError;

/// Bytes written to the request body per call (the stream's limit).
const WRITE_CHUNK: usize = 4096;
/// Bytes asked for per read of the response body.
const READ_CHUNK: u64 = 64 << 10;

pub(super) fn send(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: Option<&[u8]>,
    max_body: usize,
) -> Result<Response, ToolError> {
    let mut entries: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    if let Some(body) = body {
        entries.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    let fields = Fields::from_list(&entries)
        .map_err(|e| ToolError::invalid_input(format!("a request header was refused: {e:?}")))?;
    let request = OutgoingRequest::new(fields);
    let setup = request
        .set_method(&method_of(method))
        .and_then(|()| {
            request.set_scheme(Some(&if url.is_https() {
                Scheme::Https
            } else {
                Scheme::Http
            }))
        })
        .and_then(|()| request.set_authority(Some(url.authority())))
        .and_then(|()| request.set_path_with_query(Some(url.path_with_query())));
    if setup.is_err() {
        return Err(ToolError::invalid_input(format!(
            "{method} {url} is not a valid request"
        )));
    }
    let outgoing = request
        .body()
        .map_err(|()| ToolError::failed("the request body was already taken"))?;
    let future = outgoing_handler::handle(request, None).map_err(|code| error(url, &code))?;
    // The host consumes the body while the request is in flight; a write
    // that fails here (the request was denied, say) shows up as the response error.
    if let Some(body) = body
        && let Ok(stream) = outgoing.write()
    {
        for chunk in body.chunks(WRITE_CHUNK) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
    let finished = OutgoingBody::finish(outgoing, None);
    let incoming = loop {
        match future.get() {
            Some(result) => break result,
            None => future.subscribe().block(),
        }
    };
    let response = incoming
        .map_err(|()| ToolError::failed("the response was already taken"))?
        .map_err(|code| error(url, &code))?;
    finished.map_err(|code| error(url, &code))?;

    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                String::from_utf8_lossy(&value).into_owned(),
            )
        })
        .collect();
    let incoming_body = response
        .consume()
        .map_err(|()| ToolError::failed("the response body was already taken"))?;
    let body = read_body(&incoming_body, url, max_body)?;
    drop(IncomingBody::finish(incoming_body));
    Ok(Response {
        status,
        headers,
        body,
        url: url.to_string(),
    })
}

fn read_body(body: &IncomingBody, url: &Url, max_body: usize) -> Result<Vec<u8>, ToolError> {
    let stream = body
        .stream()
        .map_err(|()| ToolError::failed("the response stream was already taken"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > max_body {
                    return Err(ToolError::failed(format!(
                        "the response from {url} is larger than {max_body} bytes"
                    )));
                }
            }
            Err(StreamError::Closed) => return Ok(bytes),
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(match wasip2::http::types::http_error_code(&e) {
                    Some(code) => error(url, &code),
                    None => ToolError::retryable(format!(
                        "reading the response from {url} failed: {}",
                        e.to_debug_string()
                    )),
                });
            }
        }
    }
}

fn method_of(method: &str) -> Method {
    match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    }
}

/// The host's error code as a [`ToolError`] naming the URL.
fn error(url: &Url, code: &ErrorCode) -> ToolError {
    let at = format!("{}://{}", url.scheme(), url.authority());
    match code {
        ErrorCode::HttpRequestDenied => ToolError::denied(format!(
            "the host's policy does not allow requests to {at} (it is not on the tool's \
             `capabilities.http` list, or it resolves to a private address)"
        )),
        ErrorCode::ConnectionLimitReached => ToolError::denied(format!(
            "request to {at} refused: this call used up its HTTP request budget"
        )),
        ErrorCode::HttpResponseBodySize(_) => ToolError::failed(format!(
            "the response from {at} is larger than the host allows"
        )),
        ErrorCode::DnsTimeout
        | ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => {
            ToolError::retryable(format!("{at} did not answer in time"))
        }
        ErrorCode::ConnectionRefused
        | ErrorCode::ConnectionTerminated
        | ErrorCode::DestinationUnavailable => {
            ToolError::retryable(format!("{at} could not be reached ({code:?})"))
        }
        ErrorCode::DnsError(_) | ErrorCode::DestinationNotFound => {
            ToolError::failed(format!("{at}: the host name did not resolve"))
        }
        ErrorCode::HttpRequestUriInvalid => {
            ToolError::invalid_input(format!("{url} is not a URL the host accepts"))
        }
        other => ToolError::failed(format!("request to {at} failed: {other:?}")),
    }
}
