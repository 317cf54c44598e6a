//! `hash`: digests (SHA-2, BLAKE3, HMAC) and base64 / hex encoding.
//!
//! Every tool here is pure: the same input always gives the same output.

mod bytes;
mod codec;
mod digest;
mod hmac;
mod source;

use toolhost_sdk::Tool;

fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "digest",
            "Hash data given as text, base64 or hex with SHA-256, SHA-384, SHA-512, BLAKE3, \
             HMAC-SHA-256 or HMAC-SHA-512; returns hex and base64, and can check the result \
             against an expected digest or signature.",
            digest::digest,
        )
        .pure(),
        Tool::new(
            "encode",
            "Encode data (text, base64 or hex) as base64, URL-safe base64 or hex, with or \
             without padding. Also converts between these encodings.",
            codec::encode,
        )
        .pure(),
        Tool::new(
            "decode",
            "Decode base64 (either alphabet, padding optional) or hex. Returns the text if \
             the bytes are UTF-8, otherwise the bytes as base64 with `utf8: false`.",
            codec::decode,
        )
        .pure(),
    ]
}

toolhost_sdk::export!(tools);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_field_is_described() {
        for tool in tools() {
            let schema: serde_json::Value = serde_json::from_str(&tool.input_schema()).unwrap();
            assert_eq!(schema["type"], "object", "{}", tool.name());
            for (field, spec) in schema["properties"].as_object().unwrap() {
                assert!(spec.get("description").is_some(), "{}.{field}", tool.name());
            }
        }
    }
}
