//! Sending one admitted request: resolve the host, refuse non-public
//! addresses unless allowed, connect to exactly the addresses checked (no
//! second lookup a DNS answer could change), TLS for https, HTTP/1.1, and a
//! response body capped in size and time. When the host added a secret,
//! every echo of it is redacted from the headers and, as it streams, from
//! the body, before the guest sees a byte.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep, timeout, timeout_at};
use tokio_rustls::rustls;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use super::addr::is_public;
use super::grants::HttpGrant;
use super::redact::{Redacting, redact};
use super::refusals::Who;
use crate::policy::{HttpLimits, Scheme, Target};

/// What [`Outbound::admit`](super::http::Outbound) settled for one request.
pub(crate) struct Admitted {
    pub(crate) target: Target,
    pub(crate) allow_private: bool,
    pub(crate) limits: HttpLimits,
    /// The grant and the index of the secret added, if one was.
    pub(crate) secret: Option<(Arc<HttpGrant>, usize)>,
    pub(crate) who: Who,
}

impl Admitted {
    /// What a response must not show the guest.
    pub(crate) fn needles(&self) -> Option<&[Vec<u8>]> {
        self.secret
            .as_ref()
            .map(|(grant, i)| grant.secrets[*i].needles.as_slice())
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

type Conn = hyper::client::conn::http1::Connection<TokioIo<Box<dyn Io>>, WasiBody>;
type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// Sends `request`, which [`Outbound`](super::http::Outbound) admitted.
pub(crate) async fn send(
    mut request: http::Request<WasiBody>,
    admitted: Admitted,
    options: Option<RequestOptions>,
) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
    let limits = admitted.limits;
    let deadline = Instant::now() + limits.timeout;
    let within = |asked: Option<Duration>| asked.map_or(limits.timeout, |t| t.min(limits.timeout));
    let connect_timeout = within(options.and_then(|o| o.connect_timeout));
    let first_byte_timeout = within(options.and_then(|o| o.first_byte_timeout));
    let target = &admitted.target;

    let addrs = timeout(connect_timeout, resolve(&target.host, target.port))
        .await
        .map_err(|_| Error::DnsTimeout)??;
    if !admitted.allow_private
        && let Some(ip) = addrs.iter().map(SocketAddr::ip).find(|ip| !is_public(*ip))
    {
        admitted.who.refused(
            &target.to_string(),
            &format!(
                "the host resolves to the non-public address {ip} and the policy does not set `capabilities.allow_private`"
            ),
        );
        return Err(Error::HttpRequestDenied);
    }
    let tcp = timeout(connect_timeout, connect(&addrs))
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
    let io: Box<dyn Io> = match target.scheme {
        Scheme::Http => Box::new(tcp),
        Scheme::Https => Box::new(
            timeout(connect_timeout, tls(tcp, &target.host))
                .await
                .map_err(|_| Error::ConnectionTimeout)??,
        ),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(Error::from)?;

    // The request line carries the path only; the host went into `Host`.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    *request.uri_mut() = path;

    let mut conn: Pin<Box<Conn>> = Box::pin(conn);
    let mut conn_done = false;
    let response = timeout_at(
        deadline.min(Instant::now() + first_byte_timeout),
        drive(sender.send_request(request), &mut conn, &mut conn_done),
    )
    .await
    .map_err(|_| Error::ConnectionReadTimeout)??
    .map_err(Error::from)?;
    drop(sender);

    let (mut parts, incoming) = response.into_parts();
    let cap = limits.max_response_bytes;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap) {
        return Err(Error::HttpResponseBodySize(declared));
    }
    let body = Capped {
        inner: incoming,
        seen: 0,
        cap,
        deadline: Box::pin(tokio::time::sleep_until(deadline)),
    };
    let finish_io = async move {
        if conn_done {
            Ok(())
        } else {
            conn.await.map_err(Error::from)
        }
    };

    let Some(needles) = admitted.needles() else {
        return Ok((
            http::Response::from_parts(parts, body.boxed_unsync()),
            Box::new(finish_io),
        ));
    };
    if parts
        .headers
        .get(CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() != b"identity")
    {
        // Asked for identity; a compressed echo could hide the secret.
        return Err(Error::HttpResponseContentCoding(None));
    }
    for value in parts.headers.values_mut() {
        let redacted = redact(value.as_bytes(), needles);
        if redacted != value.as_bytes() {
            *value = HeaderValue::from_bytes(&redacted)
                .unwrap_or_else(|_| HeaderValue::from_static("[REDACTED]"));
        }
    }
    // Redaction changes the body's length.
    parts.headers.remove(CONTENT_LENGTH);
    let body = Redacting::new(body, needles).boxed_unsync();
    Ok((http::Response::from_parts(parts, body), Box::new(finish_io)))
}

/// Polls `work` while driving the connection, which does the actual I/O.
async fn drive<F: Future>(
    work: F,
    conn: &mut Pin<Box<Conn>>,
    conn_done: &mut bool,
) -> Result<F::Output, Error> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return Ok(out),
            result = conn.as_mut(), if !*conn_done => {
                *conn_done = true;
                result.map_err(Error::from)?;
            }
        }
    }
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| Error::DnsError {
            rcode: Some("the name did not resolve".into()),
            info_code: None,
        })?
        .collect();
    if addrs.is_empty() {
        return Err(Error::DestinationNotFound);
    }
    Ok(addrs)
}

async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, Error> {
    let mut last = Error::DestinationUnavailable;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = Error::ConnectionRefused;
            }
            Err(_) => last = Error::DestinationUnavailable,
        }
    }
    Err(last)
}

/// The TLS client setup, made once: webpki's Mozilla roots, ring, HTTP/1.1.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    static CONFIG: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .ok()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Arc::new(config))
        })
        .clone()
        .ok_or(Error::ConfigurationError)
}

async fn tls(
    tcp: TcpStream,
    host: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|_| Error::TlsProtocolError)?;
    tokio_rustls::TlsConnector::from(tls_config()?)
        .connect(name, tcp)
        .await
        .map_err(|e| {
            match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(rustls::Error::InvalidCertificate(_)) => Error::TlsCertificateError,
                _ => Error::TlsProtocolError,
            }
        })
}

/// A response body cut off past `cap` bytes or at the deadline.
struct Capped {
    inner: hyper::body::Incoming,
    seen: u64,
    cap: u64,
    deadline: Pin<Box<Sleep>>,
}

impl Body for Capped {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Error::HttpResponseTimeout)));
        }
        let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            None => return Poll::Ready(None),
            Some(Err(e)) => return Poll::Ready(Some(Err(Error::from(e)))),
            Some(Ok(frame)) => frame,
        };
        if let Some(data) = frame.data_ref() {
            this.seen += data.len() as u64;
            if this.seen > this.cap {
                return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(this.cap)))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
