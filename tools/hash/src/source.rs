//! Input bytes given as exactly one of UTF-8 text, base64 or hex.

use toolhost_sdk::ToolError;

use crate::bytes::{decode_base64, decode_hex};

/// Reads the one given field of `(text, base64, hex)` as bytes. `names` are
/// the three field names, for messages.
pub fn one_of(
    names: [&str; 3],
    text: Option<&str>,
    base64: Option<&str>,
    hex: Option<&str>,
) -> Result<Option<Vec<u8>>, ToolError> {
    let given = [text.is_some(), base64.is_some(), hex.is_some()];
    if given.iter().filter(|&&g| g).count() > 1 {
        let present: Vec<String> = names
            .iter()
            .zip(given)
            .filter(|(_, g)| *g)
            .map(|(n, _)| format!("`{n}`"))
            .collect();
        return Err(ToolError::invalid_input(format!(
            "give only one of `{}`, `{}` and `{}`; got {}",
            names[0],
            names[1],
            names[2],
            present.join(" and ")
        )));
    }
    if let Some(text) = text {
        return Ok(Some(text.as_bytes().to_vec()));
    }
    if let Some(b64) = base64 {
        return decode_base64(names[1], b64).map(Some);
    }
    if let Some(hex) = hex {
        return decode_hex(names[2], hex).map(Some);
    }
    Ok(None)
}

/// Like [`one_of`], but one of the three is required.
pub fn required(
    names: [&str; 3],
    text: Option<&str>,
    base64: Option<&str>,
    hex: Option<&str>,
) -> Result<Vec<u8>, ToolError> {
    one_of(names, text, base64, hex)?.ok_or_else(|| {
        ToolError::invalid_input(format!(
            "give the input as one of `{}` (UTF-8 text), `{}` or `{}`",
            names[0], names[1], names[2]
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 3] = ["text", "base64", "hex"];

    #[test]
    fn reads_whichever_field_is_given() {
        assert_eq!(required(NAMES, Some("hi"), None, None).unwrap(), b"hi");
        assert_eq!(required(NAMES, None, Some("aGk="), None).unwrap(), b"hi");
        assert_eq!(required(NAMES, None, None, Some("6869")).unwrap(), b"hi");
        assert_eq!(one_of(NAMES, None, None, None).unwrap(), None);
    }

    #[test]
    fn refuses_none_or_several() {
        let err = required(NAMES, None, None, None).unwrap_err();
        assert!(err.message().contains("give the input"), "{err}");
        let err = required(NAMES, Some("a"), None, Some("61")).unwrap_err();
        assert!(err.message().contains("got `text` and `hex`"), "{err}");
    }
}
