//! `digest`: SHA-2 and BLAKE3 digests and HMACs, with an optional check
//! against an expected value.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use toolhost_sdk::{Ctx, ToolError};

use crate::bytes::{decode_base64, decode_hex, encode_base64};
use crate::hmac::hmac;
use crate::source;

/// Input of `digest`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestInput {
    /// The data as UTF-8 text. Give exactly one of `text`, `base64` and `hex`.
    #[serde(default)]
    text: Option<String>,
    /// The data as base64 (standard or URL-safe, padding optional,
    /// whitespace ignored).
    #[serde(default)]
    base64: Option<String>,
    /// The data as hex digits (whitespace, `:` and `-` ignored).
    #[serde(default)]
    hex: Option<String>,
    /// Which digests to compute. Default ["sha256", "blake3"], or
    /// ["hmac_sha256"] when a key is given.
    #[serde(default)]
    algorithms: Option<Vec<Algorithm>>,
    /// The HMAC key as UTF-8 text; needed by hmac_sha256 and hmac_sha512.
    /// Give at most one of `key`, `key_base64` and `key_hex`.
    #[serde(default)]
    key: Option<String>,
    /// The HMAC key as base64.
    #[serde(default)]
    key_base64: Option<String>,
    /// The HMAC key as hex.
    #[serde(default)]
    key_hex: Option<String>,
    /// A digest to check against, in hex or base64, optionally prefixed like
    /// "sha256=" or "sha256:" (as in webhook signatures). The output then
    /// says whether any computed digest equals it.
    #[serde(default)]
    expected: Option<String>,
}

/// A digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-384 (48 bytes).
    Sha384,
    /// SHA-512 (64 bytes).
    Sha512,
    /// BLAKE3 (32 bytes).
    Blake3,
    /// HMAC-SHA-256 with the given key (32 bytes).
    HmacSha256,
    /// HMAC-SHA-512 with the given key (64 bytes).
    HmacSha512,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
            Self::Blake3 => "blake3",
            Self::HmacSha256 => "hmac_sha256",
            Self::HmacSha512 => "hmac_sha512",
        }
    }

    fn is_hmac(self) -> bool {
        matches!(self, Self::HmacSha256 | Self::HmacSha512)
    }
}

/// The digests.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DigestOutput {
    /// How many bytes were hashed.
    bytes: usize,
    /// Each requested digest, by algorithm name.
    digests: BTreeMap<String, DigestValue>,
    /// Whether some digest equals `expected`; only present when `expected`
    /// was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    matches: Option<bool>,
    /// The algorithm whose digest equals `expected`, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    matched_algorithm: Option<String>,
}

/// One digest in two spellings.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DigestValue {
    /// Lowercase hex.
    hex: String,
    /// Standard base64 with padding.
    base64: String,
}

pub fn digest(_ctx: &Ctx, input: DigestInput) -> Result<DigestOutput, ToolError> {
    let data = source::required(
        ["text", "base64", "hex"],
        input.text.as_deref(),
        input.base64.as_deref(),
        input.hex.as_deref(),
    )?;
    let key = source::one_of(
        ["key", "key_base64", "key_hex"],
        input.key.as_deref(),
        input.key_base64.as_deref(),
        input.key_hex.as_deref(),
    )?;
    let algorithms = match (input.algorithms, &key) {
        (Some(list), _) if list.is_empty() => {
            return Err(ToolError::invalid_input(
                "algorithms is empty; name at least one, or omit it for the default",
            ));
        }
        (Some(list), _) => list,
        (None, Some(_)) => vec![Algorithm::HmacSha256],
        (None, None) => vec![Algorithm::Sha256, Algorithm::Blake3],
    };
    let wants_hmac = algorithms.iter().any(|a| a.is_hmac());
    if wants_hmac && key.is_none() {
        return Err(ToolError::invalid_input(
            "hmac_sha256 and hmac_sha512 need a key: give `key`, `key_base64` or `key_hex`",
        ));
    }
    if !wants_hmac && key.is_some() {
        return Err(ToolError::invalid_input(
            "a key was given but no HMAC algorithm was asked for; add \"hmac_sha256\" or \
             \"hmac_sha512\" to `algorithms`",
        ));
    }
    let key = key.unwrap_or_default();

    let mut raw: Vec<(Algorithm, Vec<u8>)> = Vec::new();
    for algorithm in algorithms {
        if raw.iter().any(|(a, _)| *a == algorithm) {
            continue;
        }
        let value = match algorithm {
            Algorithm::Sha256 => Sha256::digest(&data).to_vec(),
            Algorithm::Sha384 => Sha384::digest(&data).to_vec(),
            Algorithm::Sha512 => Sha512::digest(&data).to_vec(),
            Algorithm::Blake3 => blake3::hash(&data).as_bytes().to_vec(),
            Algorithm::HmacSha256 => hmac::<Sha256>(&key, &data),
            Algorithm::HmacSha512 => hmac::<Sha512>(&key, &data),
        };
        raw.push((algorithm, value));
    }

    let (matches, matched_algorithm) = match input.expected.as_deref() {
        None => (None, None),
        Some(expected) => {
            let candidates = expected_bytes(expected)?;
            let found = raw
                .iter()
                .find(|(_, value)| candidates.iter().any(|c| c == value));
            (
                Some(found.is_some()),
                found.map(|(a, _)| a.name().to_owned()),
            )
        }
    };
    let digests = raw
        .into_iter()
        .map(|(algorithm, value)| {
            let spelled = DigestValue {
                hex: hex::encode(&value),
                base64: encode_base64(&value, false, true),
            };
            (algorithm.name().to_owned(), spelled)
        })
        .collect();
    Ok(DigestOutput {
        bytes: data.len(),
        digests,
        matches,
        matched_algorithm,
    })
}

/// The byte strings `expected` may stand for: as hex, as base64, or both.
fn expected_bytes(expected: &str) -> Result<Vec<Vec<u8>>, ToolError> {
    let mut value = expected.trim();
    if let Some((prefix, rest)) = value.split_once(['=', ':'])
        && !prefix.is_empty()
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !prefix.bytes().all(|b| b.is_ascii_hexdigit())
        && !rest.is_empty()
        && !rest.starts_with('=')
    {
        value = rest.trim();
    }
    let mut candidates = Vec::new();
    if let Ok(bytes) = decode_hex("expected", value) {
        candidates.push(bytes);
    }
    if let Ok(bytes) = decode_base64("expected", value) {
        candidates.push(bytes);
    }
    candidates.retain(|c| !c.is_empty());
    if candidates.is_empty() {
        return Err(ToolError::invalid_input(format!(
            "`expected` is neither hex nor base64: {expected:?}"
        )));
    }
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::tools;

    fn run(input: Value) -> Result<Value, toolhost_sdk::ToolError> {
        let tool = tools().into_iter().find(|t| t.name() == "digest").unwrap();
        tool.call_json(&input.to_string())
            .map(|out| serde_json::from_str(&out).unwrap())
    }

    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn default_digests_of_abc() {
        let out = run(json!({"text": "abc"})).unwrap();
        assert_eq!(out["bytes"], 3);
        assert_eq!(out["digests"]["sha256"]["hex"], ABC_SHA256);
        assert_eq!(
            out["digests"]["sha256"]["base64"],
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        assert_eq!(
            out["digests"]["blake3"]["hex"],
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
        assert!(out.get("matches").is_none());
    }

    #[test]
    fn sha384_and_sha512_of_empty_input() {
        let out = run(json!({"hex": "", "algorithms": ["sha384", "sha512"]})).unwrap();
        assert_eq!(out["bytes"], 0);
        assert!(
            out["digests"]["sha384"]["hex"]
                .as_str()
                .unwrap()
                .starts_with("38b060a751ac9638")
        );
        assert!(
            out["digests"]["sha512"]["hex"]
                .as_str()
                .unwrap()
                .starts_with("cf83e1357eefb8bd")
        );
        assert!(out["digests"].get("sha256").is_none());
    }

    #[test]
    fn same_bytes_via_base64_and_hex() {
        let b64 = run(json!({"base64": "YWJj"})).unwrap();
        let hex = run(json!({"hex": "616263"})).unwrap();
        assert_eq!(b64["digests"]["sha256"]["hex"], ABC_SHA256);
        assert_eq!(b64, hex);
    }

    #[test]
    fn hmac_with_a_key_given_as_hex() {
        // RFC 4231 test case 2, key "Jefe" = 4a656665.
        let out = run(json!({
            "text": "what do ya want for nothing?",
            "key_hex": "4a656665",
            "algorithms": ["hmac_sha256", "sha256"],
        }))
        .unwrap();
        assert_eq!(
            out["digests"]["hmac_sha256"]["hex"],
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(out["digests"].get("sha256").is_some());
    }

    #[test]
    fn expected_digest_is_checked_in_any_spelling() {
        for expected in [
            ABC_SHA256.to_uppercase(),
            format!("sha256={ABC_SHA256}"),
            format!("sha256:{ABC_SHA256}"),
            ABC_SHA256
                .as_bytes()
                .chunks(2)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(":"),
            String::from("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0"),
        ] {
            let out = run(json!({"text": "abc", "expected": expected})).unwrap();
            assert_eq!(out["matches"], true, "{expected}");
            assert_eq!(out["matched_algorithm"], "sha256");
        }
        let out = run(json!({"text": "abd", "expected": ABC_SHA256})).unwrap();
        assert_eq!(out["matches"], false);
        assert!(out.get("matched_algorithm").is_none());
    }

    #[test]
    fn bad_requests_are_invalid_input() {
        let cases = [
            (json!({}), "give the input"),
            (json!({"text": "a", "hex": "61"}), "only one of"),
            (
                json!({"text": "a", "algorithms": ["hmac_sha256"]}),
                "need a key",
            ),
            (
                json!({"text": "a", "key": "k", "algorithms": ["sha256"]}),
                "no HMAC",
            ),
            (json!({"text": "a", "algorithms": []}), "empty"),
            (json!({"text": "a", "algorithms": ["md5"]}), "algorithms"),
            (json!({"base64": "YW!j"}), "'!' at position 2"),
            (
                json!({"text": "a", "expected": "not a digest!"}),
                "neither hex nor base64",
            ),
        ];
        for (input, needle) in cases {
            let err = run(input.clone()).unwrap_err();
            assert!(
                matches!(err, toolhost_sdk::ToolError::InvalidInput(_)),
                "{input}"
            );
            assert!(err.message().contains(needle), "{input}: {err}");
        }
    }
}
