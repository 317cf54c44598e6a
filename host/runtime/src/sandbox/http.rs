//! Outbound HTTP: the `wasi:http` hooks that decide every request a guest
//! sends. Deny by default: a request goes out only if its scheme, host and
//! port match the policy's allow-list, the call has requests left, and
//! (checked in [`net`](super::net) after resolving) every address of the
//! host is public unless the policy allows private ones.
//!
//! A refusal reaches the guest as the `wasi:http` error
//! `HTTP-request-denied`, a value, and is logged with the tool and call id.
//! Redirects are never followed here: a 3xx goes back to the guest, and the
//! request it makes next is checked like any other.
//!
//! Secrets are added here, on the host side of the request, after the
//! guest has handed it over; the guest cannot read them back.

use std::sync::Arc;

use http::header::{ACCEPT_ENCODING, HeaderValue};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::CallInfo;
use super::grants::HttpGrant;
use super::net::{self, Admitted};
use super::refusals::Who;
use crate::policy::{HttpLimits, Scheme, Target};

/// Per-call state of outbound HTTP.
pub(crate) struct Outbound {
    grant: Option<Arc<HttpGrant>>,
    limits: HttpLimits,
    sent: u32,
    /// The call's names, made into its [`Who`] on the first request: most
    /// calls send none, and pay nothing for it.
    call: (Arc<str>, Arc<str>, Option<Arc<crate::audit::CallAudit>>),
    who: Option<Who>,
}

type Sent = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl Outbound {
    pub(crate) fn new(grant: Option<Arc<HttpGrant>>, limits: HttpLimits, call: &CallInfo) -> Self {
        Self {
            grant,
            limits,
            sent: 0,
            call: (call.tool.clone(), call.call_id.clone(), call.audit.clone()),
            who: None,
        }
    }

    /// The call's refusal counter, shared by every request it sends.
    fn who(&mut self) -> Who {
        let (tool, call_id, audit) = &self.call;
        self.who
            .get_or_insert_with(|| Who::new(tool.clone(), call_id.clone(), audit.clone()))
            .clone()
    }

    /// Checks a request against the policy and adds its secret.
    fn admit(&mut self, request: &mut http::Request<WasiBody>) -> Result<Admitted, Error> {
        let who = self.who();
        let uri = request.uri();
        let shown = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or("?"),
            uri.authority().map_or("", |a| a.as_str())
        );
        let Some(target) = target_of(uri) else {
            who.refused(
                &shown,
                "the URL has no usable scheme and host, or has a user part",
            );
            return Err(Error::HttpRequestUriInvalid);
        };
        let Some(grant) = &self.grant else {
            who.denied(&shown, "the policy grants no outbound HTTP");
            return Err(Error::HttpRequestDenied);
        };
        if !grant.allow.iter().any(|p| p.allows(&target)) {
            who.denied(
                &target.to_string(),
                "not on the policy's `capabilities.http` list",
            );
            return Err(Error::HttpRequestDenied);
        }
        if self.sent >= self.limits.max_requests {
            who.refused(
                &target.to_string(),
                "the call used up `limits.http.max_requests`",
            );
            return Err(Error::ConnectionLimitReached);
        }
        self.sent += 1;
        who.allowed(&target.to_string());
        let secret = grant.secrets.iter().position(|s| s.applies_to(&target));
        if let Some(i) = secret {
            let secret = &grant.secrets[i];
            who.secret_injected(&target.to_string(), secret.header.as_str());
            let headers = request.headers_mut();
            headers.insert(secret.header.clone(), secret.value.clone());
            // A compressed echo could not be redacted.
            headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        }
        Ok(Admitted {
            target,
            allow_private: grant.allow_private,
            limits: self.limits,
            secret: secret.map(|i| (grant.clone(), i)),
            who,
        })
    }
}

/// The scheme, host and port of an absolute request URI; `None` for
/// anything else, including a URI with a user part.
fn target_of(uri: &http::Uri) -> Option<Target> {
    let scheme = match uri.scheme_str()? {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return None,
    };
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    Target::new(scheme, authority.host(), authority.port_u16())
}

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        match self.admit(&mut request) {
            Ok(admitted) => Box::new(net::send(request, admitted, options)),
            Err(error) => Box::new(async move { Err(error) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_come_from_absolute_uris_only() {
        let t = target_of(&"http://Example.COM:8080/x".parse().unwrap()).unwrap();
        assert_eq!(t.to_string(), "http://example.com:8080");
        let t = target_of(&"https://[::1]/".parse().unwrap()).unwrap();
        assert_eq!(t.to_string(), "https://[::1]:443");
        assert!(target_of(&"/relative".parse().unwrap()).is_none());
        assert!(target_of(&"ftp://example.com/".parse().unwrap()).is_none());
        assert!(target_of(&"http://user:pw@example.com/".parse().unwrap()).is_none());
    }
}
