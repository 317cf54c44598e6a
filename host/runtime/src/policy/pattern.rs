//! Host patterns for the outbound HTTP allow-list and for secrets:
//! `[scheme://]host[:port]`, where `host` is an exact name, an IP address
//! (`[..]` around IPv6), `*.example.com` (any name below `example.com`, not
//! `example.com` itself) or `*` (any host), and `port` is a number or `*`.
//!
//! Without a port a pattern matches the scheme's default port (80 for http,
//! 443 for https). Without a scheme the allow-list matches http and https;
//! secrets match https only, so a secret never travels in clear text unless
//! its pattern says `http://`.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// The URL schemes outbound requests may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub(crate) fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Any,
    Exact(String),
    /// `*.suffix`: the suffix without the leading dot.
    Below(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    Default,
    Any,
    Exact(u16),
}

/// One parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPattern {
    text: String,
    scheme: Option<Scheme>,
    host: Host,
    port: Port,
}

/// The parts of a request URL a pattern is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) scheme: Scheme,
    /// Lowercase, without a trailing dot; IPv6 without brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Target {
    /// Builds a target from URL parts; `None` if the host is not a plausible name or address.
    pub(crate) fn new(scheme: Scheme, host: &str, port: Option<u16>) -> Option<Self> {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        if host.parse::<IpAddr>().is_err() && !is_dns_name(&host) {
            return None;
        }
        Some(Self {
            scheme,
            host,
            port: port.unwrap_or(scheme.default_port()),
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(
                f,
                "{}://[{}]:{}",
                self.scheme.as_str(),
                self.host,
                self.port
            )
        } else {
            write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port)
        }
    }
}

impl HostPattern {
    /// Parses a pattern; the error says what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| Err(format!("{text:?} is not a host pattern: {why}"));
        let (scheme, rest) = match text.split_once("://") {
            Some(("http", rest)) => (Some(Scheme::Http), rest),
            Some(("https", rest)) => (Some(Scheme::Https), rest),
            Some((other, _)) => {
                return bad(&format!("the scheme {other:?} is not http or https"));
            }
            None => (None, text),
        };
        if rest.is_empty() {
            return bad("the host is missing");
        }
        if rest.contains(['/', '?', '#', '@']) || rest.chars().any(char::is_whitespace) {
            return bad("write only [scheme://]host[:port], without a path, user or spaces");
        }
        let (host, port) = split_host_port(rest)
            .map_err(|why| format!("{text:?} is not a host pattern: {why}"))?;
        let port = match port {
            None => Port::Default,
            Some("*") => Port::Any,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Port::Exact(n),
                _ => return bad(&format!("the port {p:?} is not 1-65535 or *")),
            },
        };
        let host_lower = host.to_ascii_lowercase();
        let host = if host == "*" {
            Host::Any
        } else if let Some(suffix) = host_lower.strip_prefix("*.") {
            if !is_dns_name(suffix) {
                return bad("after `*.` must come a domain name such as example.com");
            }
            Host::Below(suffix.to_string())
        } else if host.contains('*') {
            return bad("`*` may only stand alone or as the first label (`*.example.com`)");
        } else if let Some(inner) = host.strip_prefix('[') {
            let inner = inner.strip_suffix(']').unwrap_or(inner);
            match inner.parse::<Ipv6Addr>() {
                Ok(ip) => Host::Ip(IpAddr::V6(ip)),
                Err(_) => return bad("the bracketed part is not an IPv6 address"),
            }
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            Host::Ip(ip)
        } else if is_dns_name(&host_lower) {
            Host::Exact(
                host_lower
                    .strip_suffix('.')
                    .unwrap_or(&host_lower)
                    .to_string(),
            )
        } else {
            return bad(
                "the host is not a DNS name (letters, digits, `-` and dots) or an IP address",
            );
        };
        Ok(Self {
            text: text.to_string(),
            scheme,
            host,
            port,
        })
    }

    /// The pattern as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `target` matches; `schemeless` is the set of schemes a pattern
    /// without one stands for.
    fn matches_with(&self, target: &Target, schemeless: &[Scheme]) -> bool {
        let scheme_ok = match self.scheme {
            Some(s) => s == target.scheme,
            None => schemeless.contains(&target.scheme),
        };
        let port_ok = match self.port {
            Port::Any => true,
            Port::Exact(p) => p == target.port,
            Port::Default => target.port == target.scheme.default_port(),
        };
        let host_ok = match &self.host {
            Host::Any => true,
            Host::Exact(name) => *name == target.host,
            Host::Below(suffix) => target
                .host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            Host::Ip(ip) => target.host.parse::<IpAddr>().is_ok_and(|t| t == *ip),
        };
        scheme_ok && port_ok && host_ok
    }

    /// As an allow-list entry: no scheme means http or https.
    pub(crate) fn allows(&self, target: &Target) -> bool {
        self.matches_with(target, &[Scheme::Http, Scheme::Https])
    }

    /// As a secret's host: no scheme means https only.
    pub(crate) fn carries_secret_to(&self, target: &Target) -> bool {
        self.matches_with(target, &[Scheme::Https])
    }
}

/// Splits `host[:port]`, where an IPv6 host is in brackets.
fn split_host_port(text: &str) -> Result<(&str, Option<&str>), &'static str> {
    if text.starts_with('[') {
        let end = text
            .find(']')
            .ok_or("an IPv6 address needs a closing `]`")?;
        let (host, rest) = text.split_at(end + 1);
        return match rest {
            "" => Ok((host, None)),
            _ => rest
                .strip_prefix(':')
                .map(|port| (host, Some(port)))
                .ok_or("after `]` may only come `:port`"),
        };
    }
    match text.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => {
            Err("write an IPv6 address in brackets, as [::1]:8080")
        }
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((text, None)),
    }
}

/// A DNS name: dot-separated labels of letters, digits and `-` (and `_`,
/// which some real names use), none empty, none longer than 63 bytes.
fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        let (scheme, rest) = url.split_once("://").unwrap();
        let scheme = if scheme == "http" {
            Scheme::Http
        } else {
            Scheme::Https
        };
        let (host, port) = split_host_port(rest).unwrap();
        Target::new(scheme, host, port.map(|p| p.parse().unwrap())).unwrap()
    }

    fn allows(pattern: &str, url: &str) -> bool {
        HostPattern::parse(pattern).unwrap().allows(&target(url))
    }

    #[test]
    fn exact_hosts_match_their_default_ports_and_both_schemes() {
        assert!(allows("api.example.com", "https://api.example.com"));
        assert!(allows("api.example.com", "http://API.Example.com."));
        assert!(!allows("api.example.com", "https://api.example.com:8443"));
        assert!(!allows("api.example.com", "https://example.com"));
        assert!(!allows(
            "api.example.com",
            "https://api.example.com.evil.org"
        ));
        assert!(!allows("https://api.example.com", "http://api.example.com"));
    }

    #[test]
    fn wildcards_match_names_below_the_domain_only() {
        assert!(allows("*.wikipedia.org", "https://en.wikipedia.org"));
        assert!(allows("*.wikipedia.org", "https://a.b.wikipedia.org"));
        assert!(!allows("*.wikipedia.org", "https://wikipedia.org"));
        assert!(!allows("*.wikipedia.org", "https://evilwikipedia.org"));
        assert!(allows("*", "https://anything.example"));
        assert!(!allows("*", "https://anything.example:8443"));
        assert!(allows("*:*", "https://anything.example:8443"));
    }

    #[test]
    fn ports_and_addresses() {
        assert!(allows("127.0.0.1:8080", "http://127.0.0.1:8080"));
        assert!(!allows("127.0.0.1:8080", "http://127.0.0.1:8081"));
        assert!(allows("http://localhost:*", "http://localhost:1234"));
        assert!(!allows("http://localhost:*", "https://localhost:1234"));
        assert!(allows("[::1]:*", "http://[::1]:99"));
        assert!(!allows("[::1]:*", "http://127.0.0.1:99"));
    }

    #[test]
    fn secrets_without_a_scheme_go_over_https_only() {
        let p = HostPattern::parse("api.example.com").unwrap();
        assert!(p.carries_secret_to(&target("https://api.example.com")));
        assert!(!p.carries_secret_to(&target("http://api.example.com")));
        let p = HostPattern::parse("http://127.0.0.1:*").unwrap();
        assert!(p.carries_secret_to(&target("http://127.0.0.1:5000")));
    }

    #[test]
    fn bad_patterns_say_why() {
        for bad in [
            "",
            "ftp://x.org",
            "x.org/path",
            "user@x.org",
            "exa mple.com",
            "*.*.com",
            "*example.com",
            "ex*ample.com",
            "x.org:0",
            "x.org:99999",
            "x.org:http",
            "::1",
            "[::1",
            "[nope]",
            "-x.org",
            "https://",
        ] {
            let err = HostPattern::parse(bad).expect_err(bad);
            assert!(err.contains("is not a host pattern"), "{bad}: {err}");
        }
    }
}
