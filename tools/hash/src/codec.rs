//! `encode` and `decode`: base64 (standard and URL-safe) and hex.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, ToolError};

use crate::bytes::{decode_base64, decode_hex, encode_base64};
use crate::source;

/// A text encoding of bytes.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// Standard base64 (RFC 4648 §4, alphabet `A-Z a-z 0-9 + /`).
    Base64,
    /// URL- and file-name-safe base64 (RFC 4648 §5, `-` and `_` instead of
    /// `+` and `/`).
    Base64url,
    /// Hexadecimal, two digits per byte.
    Hex,
}

/// Input of `encode`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncodeInput {
    /// The data as UTF-8 text. Give exactly one of `text`, `base64` and `hex`.
    #[serde(default)]
    text: Option<String>,
    /// The data as base64 (either alphabet, padding optional), to convert it.
    #[serde(default)]
    base64: Option<String>,
    /// The data as hex, to convert it.
    #[serde(default)]
    hex: Option<String>,
    /// The encoding to produce.
    to: Encoding,
    /// End base64 with `=` padding to a multiple of 4 characters. Default
    /// true; set false for unpadded forms such as JWT parts.
    #[serde(default)]
    padding: Option<bool>,
    /// Use uppercase hex digits. Default false.
    #[serde(default)]
    uppercase: bool,
}

/// The encoded data.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EncodeOutput {
    /// The encoded text.
    encoded: String,
    /// How many bytes were encoded.
    bytes: usize,
}

pub fn encode(_ctx: &Ctx, input: EncodeInput) -> Result<EncodeOutput, ToolError> {
    let data = source::required(
        ["text", "base64", "hex"],
        input.text.as_deref(),
        input.base64.as_deref(),
        input.hex.as_deref(),
    )?;
    let padding = input.padding.unwrap_or(true);
    let encoded = match input.to {
        Encoding::Base64 => encode_base64(&data, false, padding),
        Encoding::Base64url => encode_base64(&data, true, padding),
        Encoding::Hex if input.uppercase => hex::encode_upper(&data),
        Encoding::Hex => hex::encode(&data),
    };
    Ok(EncodeOutput {
        encoded,
        bytes: data.len(),
    })
}

/// Input of `decode`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecodeInput {
    /// The encoded text.
    data: String,
    /// Its encoding. base64 and base64url both accept either alphabet, with
    /// or without padding, and ignore whitespace; hex accepts either case and
    /// ignores whitespace, `:` and `-` separators and a leading `0x`.
    from: Encoding,
}

/// The decoded bytes.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DecodeOutput {
    /// How many bytes were decoded.
    bytes: usize,
    /// True if the bytes are valid UTF-8, so `text` holds them.
    utf8: bool,
    /// The bytes as text, when they are UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    /// The bytes as standard base64, when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    base64: Option<String>,
}

pub fn decode(_ctx: &Ctx, input: DecodeInput) -> Result<DecodeOutput, ToolError> {
    let bytes = match input.from {
        Encoding::Base64 | Encoding::Base64url => decode_base64("data", &input.data)?,
        Encoding::Hex => decode_hex("data", &input.data)?,
    };
    let len = bytes.len();
    Ok(match String::from_utf8(bytes) {
        Ok(text) => DecodeOutput {
            bytes: len,
            utf8: true,
            text: Some(text),
            base64: None,
        },
        Err(e) => DecodeOutput {
            bytes: len,
            utf8: false,
            text: None,
            base64: Some(encode_base64(e.as_bytes(), false, true)),
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::tools;

    fn run(name: &str, input: Value) -> Result<Value, toolhost_sdk::ToolError> {
        let tool = tools().into_iter().find(|t| t.name() == name).unwrap();
        tool.call_json(&input.to_string())
            .map(|out| serde_json::from_str(&out).unwrap())
    }

    fn encoded(input: Value) -> String {
        run("encode", input).unwrap()["encoded"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn encodes_text_every_way() {
        assert_eq!(encoded(json!({"text": "hé?>", "to": "base64"})), "aMOpPz4=");
        assert_eq!(
            encoded(json!({"text": "hé?>", "to": "base64url"})),
            "aMOpPz4="
        );
        assert_eq!(
            encoded(json!({"text": "hé?>", "to": "base64", "padding": false})),
            "aMOpPz4"
        );
        assert_eq!(encoded(json!({"text": "hé", "to": "hex"})), "68c3a9");
        assert_eq!(
            encoded(json!({"text": "hé", "to": "hex", "uppercase": true})),
            "68C3A9"
        );
        let out = run("encode", json!({"text": "", "to": "base64"})).unwrap();
        assert_eq!(out, json!({"encoded": "", "bytes": 0}));
    }

    #[test]
    fn url_safe_alphabet_differs_where_it_should() {
        assert_eq!(encoded(json!({"hex": "fbff", "to": "base64"})), "+/8=");
        assert_eq!(
            encoded(json!({"hex": "fbff", "to": "base64url", "padding": false})),
            "-_8"
        );
    }

    #[test]
    fn converts_between_encodings() {
        assert_eq!(
            encoded(json!({"base64": "3q2+7w==", "to": "hex"})),
            "deadbeef"
        );
        assert_eq!(
            encoded(json!({"hex": "DEADBEEF", "to": "base64url"})),
            "3q2-7w=="
        );
    }

    #[test]
    fn decodes_utf8_as_text() {
        let out = run("decode", json!({"data": "aMOpPz4", "from": "base64"})).unwrap();
        assert_eq!(out, json!({"bytes": 5, "utf8": true, "text": "hé?>"}));
        let out = run("decode", json!({"data": "68 c3 a9", "from": "hex"})).unwrap();
        assert_eq!(out["text"], "hé");
    }

    #[test]
    fn decodes_binary_as_base64() {
        let out = run("decode", json!({"data": "ff00fe", "from": "hex"})).unwrap();
        assert_eq!(out, json!({"bytes": 3, "utf8": false, "base64": "/wD+"}));
        let out = run("decode", json!({"data": "_wD-", "from": "base64url"})).unwrap();
        assert_eq!(out["base64"], "/wD+");
    }

    #[test]
    fn bad_data_names_the_position() {
        let err = run("decode", json!({"data": "aGVsbG8#", "from": "base64"})).unwrap_err();
        assert!(matches!(err, toolhost_sdk::ToolError::InvalidInput(_)));
        assert!(err.message().contains("'#' at position 7"), "{err}");
        let err = run("decode", json!({"data": "abc", "from": "hex"})).unwrap_err();
        assert!(err.message().contains("odd number"), "{err}");
        let err = run("decode", json!({"data": "ab", "from": "base32"})).unwrap_err();
        assert!(err.message().contains("from"), "{err}");
        let err = run("encode", json!({"text": "a", "to": "hex", "hex": "61"})).unwrap_err();
        assert!(err.message().contains("only one of"), "{err}");
    }
}
