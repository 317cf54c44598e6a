//! Reading bytes from base64 and hex text, with errors that say where the
//! text went wrong, and writing them back.

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use base64::{DecodeError, alphabet};
use toolhost_sdk::ToolError;

/// Decodes either alphabet, with or without padding, ignoring stray bits.
const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Encodes `bytes` as standard (`+/`) or URL-safe (`-_`) base64.
pub fn encode_base64(bytes: &[u8], url_safe: bool, padding: bool) -> String {
    let engine = match (url_safe, padding) {
        (false, true) => general_purpose::STANDARD,
        (false, false) => general_purpose::STANDARD_NO_PAD,
        (true, true) => general_purpose::URL_SAFE,
        (true, false) => general_purpose::URL_SAFE_NO_PAD,
    };
    engine.encode(bytes)
}

/// Decodes base64 in either alphabet, padded or not, ignoring whitespace
/// (so line-wrapped PEM or MIME bodies work). `field` names the input field
/// in error messages.
pub fn decode_base64(field: &str, text: &str) -> Result<Vec<u8>, ToolError> {
    // Byte offsets in `text` of the bytes that are not whitespace.
    let positions: Vec<usize> = text
        .bytes()
        .enumerate()
        .filter(|(_, b)| !b.is_ascii_whitespace())
        .map(|(i, _)| i)
        .collect();
    let compact: Vec<u8> = positions.iter().map(|&i| text.as_bytes()[i]).collect();
    let standard = compact.iter().position(|b| matches!(b, b'+' | b'/'));
    let url_safe = compact.iter().position(|b| matches!(b, b'-' | b'_'));
    if let (Some(s), Some(u)) = (standard, url_safe) {
        return Err(ToolError::invalid_input(format!(
            "`{field}` mixes the standard base64 alphabet ({} at position {}) with the \
             URL-safe one ({} at position {}); use one or the other",
            describe_at(text, positions[s]),
            char_index(text, positions[s]),
            describe_at(text, positions[u]),
            char_index(text, positions[u]),
        )));
    }
    let engine = if url_safe.is_some() {
        URL_SAFE_LENIENT
    } else {
        STANDARD_LENIENT
    };
    engine.decode(&compact).map_err(|e| {
        let at = |offset: usize| positions.get(offset).copied().unwrap_or(text.len());
        let message = match e {
            DecodeError::InvalidByte(offset, b'=')
                if compact
                    .get(offset..)
                    .is_some_and(|rest| rest.iter().all(|&b| b == b'=')) =>
            {
                format!(
                    "too much `=` padding from position {}: the last group of 4 characters \
                     may end in at most two `=`",
                    char_index(text, at(offset))
                )
            }
            DecodeError::InvalidByte(offset, b'=') => format!(
                "padding `=` at position {} is not at the end; `=` may only end the text",
                char_index(text, at(offset))
            ),
            DecodeError::InvalidByte(offset, _) => format!(
                "{} at position {} is not a base64 character (expected A-Z, a-z, 0-9, + and / \
                 or - and _, then optional = padding)",
                describe_at(text, at(offset)),
                char_index(text, at(offset))
            ),
            DecodeError::InvalidLength(symbols) => format!(
                "it has {symbols} base64 characters (not counting whitespace and padding), \
                 which no byte string encodes to: the last group of 4 has only 1; the text \
                 looks cut short or has one character too many"
            ),
            DecodeError::InvalidLastSymbol(offset, _) => format!(
                "the final character {} at position {} is not a valid last character",
                describe_at(text, at(offset)),
                char_index(text, at(offset))
            ),
            DecodeError::InvalidPadding => {
                String::from("its `=` padding is wrong: a group of 4 may end in at most two `=`")
            }
        };
        ToolError::invalid_input(format!("`{field}` is not valid base64: {message}"))
    })
}

/// Decodes hex digits (either case), ignoring whitespace, `:` and `-`
/// separators and a leading `0x`. `field` names the input field in errors.
pub fn decode_hex(field: &str, text: &str) -> Result<Vec<u8>, ToolError> {
    let trimmed = text.trim_start();
    let skip = text.len() - trimmed.len()
        + if trimmed.starts_with("0x") || trimmed.starts_with("0X") {
            2
        } else {
            0
        };
    let mut bytes = Vec::with_capacity(text.len() / 2);
    let mut high: Option<(u8, usize)> = None;
    for (i, c) in text.char_indices().skip_while(|(i, _)| *i < skip) {
        if c.is_whitespace() || c == ':' || c == '-' {
            continue;
        }
        let Some(nibble) = c.to_digit(16) else {
            return Err(ToolError::invalid_input(format!(
                "`{field}` is not valid hex: {} at position {} is not a hex digit (0-9, a-f, A-F)",
                describe_at(text, i),
                char_index(text, i)
            )));
        };
        let nibble = nibble as u8;
        match high.take() {
            None => high = Some((nibble, i)),
            Some((h, _)) => bytes.push(h << 4 | nibble),
        }
    }
    if let Some((_, i)) = high {
        return Err(ToolError::invalid_input(format!(
            "`{field}` is not valid hex: it has an odd number of hex digits; the last one, at \
             position {}, has no partner (each byte takes two digits)",
            char_index(text, i)
        )));
    }
    Ok(bytes)
}

/// The character at byte offset `at` of `text`, quoted for a message.
fn describe_at(text: &str, at: usize) -> String {
    let start = (0..=at.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    match text[start..].chars().next() {
        Some(c) => format!("{c:?}"),
        None => String::from("the end"),
    }
}

/// The 0-based character position of byte offset `at` in `text`.
fn char_index(text: &str, at: usize) -> usize {
    let end = (0..=at.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text[..end].chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_in_all_four_forms() {
        let bytes = b"\xfb\xff\xfe hello";
        for (url, pad, expected) in [(false, true, "+//+IGhlbGxv"), (true, false, "-__-IGhlbGxv")] {
            let encoded = encode_base64(bytes, url, pad);
            assert_eq!(encoded, expected);
            assert_eq!(decode_base64("data", &encoded).unwrap(), bytes);
        }
        assert_eq!(encode_base64(b"ab", false, true), "YWI=");
        assert_eq!(encode_base64(b"ab", true, false), "YWI");
    }

    #[test]
    fn base64_ignores_whitespace_and_missing_padding() {
        assert_eq!(
            decode_base64("data", "aGVs\n bG8g\r\nd29y bGQ").unwrap(),
            b"hello world"
        );
        assert_eq!(decode_base64("data", "YWI=").unwrap(), b"ab");
        assert_eq!(decode_base64("data", "YWI").unwrap(), b"ab");
        assert_eq!(decode_base64("data", "").unwrap(), b"");
    }

    #[test]
    fn base64_errors_name_the_position() {
        let err = decode_base64("data", "aGVs\nbG*8").unwrap_err();
        assert!(err.message().contains("'*' at position 7"), "{err}");
        let err = decode_base64("data", "aGé=").unwrap_err();
        assert!(err.message().contains("'é' at position 2"), "{err}");
        let err = decode_base64("data", "ab+c-d").unwrap_err();
        assert!(err.message().contains("'+' at position 2"), "{err}");
        assert!(err.message().contains("'-' at position 4"), "{err}");
        let err = decode_base64("data", "abcde").unwrap_err();
        assert!(err.message().contains("5 base64 characters"), "{err}");
        let err = decode_base64("data", "YWJj====").unwrap_err();
        assert!(
            err.message()
                .contains("too much `=` padding from position 4"),
            "{err}"
        );
        let err = decode_base64("data", "ab=cd").unwrap_err();
        assert!(err.message().contains("position 2"), "{err}");
        assert!(
            err.message().starts_with("`data` is not valid base64"),
            "{err}"
        );
    }

    #[test]
    fn hex_accepts_separators_prefix_and_either_case() {
        assert_eq!(
            decode_hex("hex", "DEadBeef").unwrap(),
            [0xde, 0xad, 0xbe, 0xef]
        );
        assert_eq!(
            decode_hex("hex", "  0xde:ad be-ef\n").unwrap(),
            [0xde, 0xad, 0xbe, 0xef]
        );
        assert_eq!(decode_hex("hex", "").unwrap(), b"");
    }

    #[test]
    fn hex_errors_name_the_position() {
        let err = decode_hex("hex", "abcg12").unwrap_err();
        assert!(err.message().contains("'g' at position 3"), "{err}");
        let err = decode_hex("hex", "ab c").unwrap_err();
        assert!(
            err.message().contains("odd number") && err.message().contains("position 3"),
            "{err}"
        );
        let err = decode_hex("hex", "€1").unwrap_err();
        assert!(err.message().contains("'€' at position 0"), "{err}");
    }
}
