//! Just enough URL handling for `wasi:http`: split an absolute http(s) URL
//! into scheme, authority and path-with-query, resolve a redirect's
//! `Location`, and build query strings.

use std::fmt;

/// An absolute `http` or `https` URL, split the way `wasi:http` wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    https: bool,
    authority: String,
    path_with_query: String,
}

impl Url {
    /// Parses `http://host[:port][/path][?query]` (a `#fragment` is dropped).
    /// Characters a request line may not hold, such as spaces, are
    /// percent-encoded. The error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (scheme, rest) = text.split_once("://").ok_or_else(|| {
            format!("{text:?} is not an absolute URL; write it like https://example.com/page")
        })?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            other => {
                return Err(format!(
                    "{text:?}: the scheme {other:?} is not http or https"
                ));
            }
        };
        let rest = rest.split('#').next().unwrap_or("");
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty() {
            return Err(format!("{text:?} has no host"));
        }
        if authority.contains('@') {
            return Err(format!(
                "{text:?}: user names and passwords in URLs are not supported"
            ));
        }
        if authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!("{text:?}: the host may not contain spaces"));
        }
        Ok(Self {
            https,
            authority: authority.to_ascii_lowercase(),
            path_with_query: normalize_target(path),
        })
    }

    /// `"https"` or `"http"`.
    pub fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    /// Whether the scheme is https.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// `host[:port]`.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// `/path?query`, never empty.
    pub fn path_with_query(&self) -> &str {
        &self.path_with_query
    }

    /// Resolves `reference` (a redirect's `Location`, say) against this URL.
    pub fn join(&self, reference: &str) -> Result<Self, String> {
        let reference = reference.trim();
        if reference.contains("://") && !reference.starts_with('/') {
            return Self::parse(reference);
        }
        if let Some(rest) = reference.strip_prefix("//") {
            return Self::parse(&format!("{}://{rest}", self.scheme()));
        }
        let current_path = self.path_with_query.split('?').next().unwrap_or("/");
        let target = if reference.starts_with('/') {
            reference.to_string()
        } else if reference.starts_with('?') {
            format!("{current_path}{reference}")
        } else {
            let dir = &current_path[..current_path.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{reference}")
        };
        let target = target.split('#').next().unwrap_or("");
        Ok(Self {
            https: self.https,
            authority: self.authority.clone(),
            path_with_query: normalize_target(&remove_dot_segments(target)),
        })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme(),
            self.authority,
            self.path_with_query
        )
    }
}

/// Makes `path` a valid request target: starts with `/`, with spaces,
/// quotes, non-ASCII and the like percent-encoded.
fn normalize_target(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 1);
    if !path.starts_with('/') {
        out.push('/');
    }
    for byte in path.bytes() {
        if byte.is_ascii_graphic() && !b"\"<>\\^`{|}".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// RFC 3986 section 5.2.4, on a path that may carry a query.
fn remove_dot_segments(target: &str) -> String {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut path = out.join("/");
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    }
}

/// `base` with `pairs` appended as a query string, each key and value
/// percent-encoded.
pub fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return base.to_string();
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", query.join("&"))
}

/// Percent-encodes everything but the unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_wasi_parts() {
        let url = Url::parse("HTTPS://Example.com:8443/a b?q=1#frag").unwrap();
        assert!(url.is_https());
        assert_eq!(url.authority(), "example.com:8443");
        assert_eq!(url.path_with_query(), "/a%20b?q=1");
        assert_eq!(Url::parse("http://x.org").unwrap().path_with_query(), "/");
        assert_eq!(
            Url::parse("http://x.org?a=1").unwrap().path_with_query(),
            "/?a=1"
        );
        assert_eq!(
            Url::parse("http://x.org/é").unwrap().path_with_query(),
            "/%C3%A9"
        );
        for bad in [
            "x.org",
            "ftp://x.org",
            "http://",
            "http://u:p@x.org/",
            "http://a b/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirects_resolve() {
        let base = Url::parse("http://a.test/dir/page?x=1").unwrap();
        let join = |r: &str| base.join(r).unwrap().to_string();
        assert_eq!(join("https://b.test/x"), "https://b.test/x");
        assert_eq!(join("//c.test/y"), "http://c.test/y");
        assert_eq!(join("/root"), "http://a.test/root");
        assert_eq!(join("other"), "http://a.test/dir/other");
        assert_eq!(join("../up?q"), "http://a.test/up?q");
        assert_eq!(join("?only=query"), "http://a.test/dir/page?only=query");
        assert_eq!(join("../../../../x"), "http://a.test/x");
    }

    #[test]
    fn queries_are_encoded() {
        assert_eq!(
            with_query("http://a.test/s", &[("q", "a b&c"), ("n", "é")]),
            "http://a.test/s?q=a%20b%26c&n=%C3%A9"
        );
        assert_eq!(
            with_query("http://a.test/s?x=1", &[("y", "2")]),
            "http://a.test/s?x=1&y=2"
        );
    }
}
