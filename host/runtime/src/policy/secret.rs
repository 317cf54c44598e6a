//! Secrets: a header the host adds to outgoing requests to one host
//! pattern, with a value built from `${env:NAME}` and `${file:PATH}` pieces
//! read once, when the tool loads. The value never enters the guest.

use std::fmt;
use std::path::Path;

use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::pattern::{HostPattern, Target};

/// A secret as a policy states it, under `[secrets]`, keyed by host pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Secret {
    /// The request header to set, e.g. `Authorization`.
    pub header: String,
    /// The value, e.g. `"Bearer ${env:API_KEY}"`; `${file:PATH}` reads a
    /// file relative to the policy's folder (its trailing newline dropped).
    pub value: String,
}

/// Where one piece of a secret value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Env(String),
    File(String),
}

/// Headers no secret may set: they frame or route the request.
const RESERVED: [&str; 8] = [
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
];

/// Checks a secret's header name and template; the error is a reason.
pub(crate) fn check(secret: &Secret) -> Result<(), (&'static str, String)> {
    let name = HeaderName::from_bytes(secret.header.as_bytes()).map_err(|_| {
        (
            "header",
            format!("{:?} is not an HTTP header name", secret.header),
        )
    })?;
    if RESERVED.contains(&name.as_str()) {
        return Err((
            "header",
            format!(
                "{:?} frames or routes the request; a secret may not set it",
                secret.header
            ),
        ));
    }
    let pieces = parse(&secret.value).map_err(|why| ("value", why))?;
    if !pieces.iter().any(|p| !matches!(p, Piece::Text(_))) {
        return Err((
            "value",
            "has no ${env:NAME} or ${file:PATH}; a secret written into the policy is not secret"
                .into(),
        ));
    }
    Ok(())
}

fn parse(template: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            pieces.push(Piece::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("{template:?}: `${{` is not closed by `}}`"))?;
        let inner = &after[..end];
        let piece = match inner.split_once(':') {
            Some(("env", name)) if is_env_name(name) => Piece::Env(name.to_string()),
            Some(("env", name)) => {
                return Err(format!("{name:?} is not an environment variable name"));
            }
            Some(("file", path)) if !path.trim().is_empty() => Piece::File(path.to_string()),
            _ => {
                return Err(format!(
                    "`${{{inner}}}` is not `${{env:NAME}}` or `${{file:PATH}}`"
                ));
            }
        };
        pieces.push(piece);
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(pieces)
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A secret with its value read, ready to add to requests.
#[derive(Clone)]
pub(crate) struct ResolvedSecret {
    pub(crate) pattern: HostPattern,
    pub(crate) header: HeaderName,
    pub(crate) value: HeaderValue,
    /// Byte strings a response must not show the guest: the whole value and
    /// each piece read from the environment or a file, longest first.
    pub(crate) needles: Vec<Vec<u8>>,
}

impl fmt::Debug for ResolvedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedSecret")
            .field("pattern", &self.pattern.as_str())
            .field("header", &self.header)
            .field("value", &"<redacted>")
            .finish()
    }
}

impl ResolvedSecret {
    pub(crate) fn applies_to(&self, target: &Target) -> bool {
        self.pattern.carries_secret_to(target)
    }
}

/// Reads a checked secret's value; `base` is the policy's folder. The error
/// names the variable or file and never contains a value.
pub(crate) fn resolve(
    pattern: &str,
    secret: &Secret,
    base: &Path,
) -> Result<ResolvedSecret, String> {
    let pattern = HostPattern::parse(pattern)?;
    let header = HeaderName::from_bytes(secret.header.as_bytes())
        .map_err(|_| format!("{:?} is not an HTTP header name", secret.header))?;
    let mut value = String::new();
    let mut needles = Vec::new();
    for piece in parse(&secret.value)? {
        let read = match piece {
            Piece::Text(text) => {
                value.push_str(&text);
                continue;
            }
            Piece::Env(name) => match std::env::var(&name) {
                Ok(v) if !v.is_empty() => v,
                Ok(_) => return Err(format!("the environment variable {name} is set but empty")),
                Err(std::env::VarError::NotPresent) => {
                    return Err(format!("the environment variable {name} is not set"));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(format!("the environment variable {name} is not UTF-8"));
                }
            },
            Piece::File(file) => {
                let path = base.join(&file);
                let text = crate::disk::read_text(&path).map_err(|e| {
                    format!("the secret file {} could not be read: {e}", path.display())
                })?;
                let text = text.trim_end_matches(['\r', '\n']).to_string();
                if text.is_empty() {
                    return Err(format!("the secret file {} is empty", path.display()));
                }
                text
            }
        };
        needles.push(read.clone().into_bytes());
        value.push_str(&read);
    }
    let mut value_header = HeaderValue::from_str(&value).map_err(|_| {
        "the value holds characters a header may not (a newline or a control character)".to_string()
    })?;
    value_header.set_sensitive(true);
    needles.push(value.into_bytes());
    needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    needles.dedup();
    Ok(ResolvedSecret {
        pattern,
        header,
        value: value_header,
        needles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(header: &str, value: &str) -> Secret {
        Secret {
            header: header.into(),
            value: value.into(),
        }
    }

    #[test]
    fn templates_parse() {
        assert_eq!(
            parse("Bearer ${env:KEY}").unwrap(),
            [Piece::Text("Bearer ".into()), Piece::Env("KEY".into())]
        );
        assert_eq!(
            parse("${file:key.txt}:${env:B}").unwrap(),
            [
                Piece::File("key.txt".into()),
                Piece::Text(":".into()),
                Piece::Env("B".into())
            ]
        );
        assert!(parse("${env:KEY").is_err());
        assert!(parse("${vault:x}").is_err());
        assert!(parse("${env:A-B}").is_err());
    }

    #[test]
    fn checks_refuse_bad_headers_and_literal_values() {
        assert!(check(&secret("Authorization", "Bearer ${env:K}")).is_ok());
        assert_eq!(
            check(&secret("Bad Header", "${env:K}")).unwrap_err().0,
            "header"
        );
        assert_eq!(check(&secret("Host", "${env:K}")).unwrap_err().0, "header");
        assert_eq!(check(&secret("X-Key", "hunter2")).unwrap_err().0, "value");
    }

    #[test]
    fn resolving_reads_files_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.txt"), "s3cr3t-from-file\n").unwrap();
        let resolved = resolve(
            "api.example.com",
            &secret("X-Key", "k=${file:key.txt}"),
            dir.path(),
        )
        .unwrap();
        assert_eq!(resolved.value.to_str().unwrap(), "k=s3cr3t-from-file");
        assert_eq!(
            resolved.needles,
            [b"k=s3cr3t-from-file".to_vec(), b"s3cr3t-from-file".to_vec()]
        );
        assert!(!format!("{resolved:?}").contains("s3cr3t"));

        let err = resolve(
            "api.example.com",
            &secret("X-Key", "${env:TOOLHOST_TEST_SURELY_UNSET_VAR}"),
            dir.path(),
        )
        .unwrap_err();
        assert!(err.contains("TOOLHOST_TEST_SURELY_UNSET_VAR"), "{err}");
        let err = resolve("a.org", &secret("X-Key", "${file:nope.txt}"), dir.path()).unwrap_err();
        assert!(err.contains("nope.txt"), "{err}");
    }
}
