//! `case`: change the case of text, or turn it into an identifier.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, ToolError};

/// Input of `case`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseInput {
    /// The text to convert.
    text: String,
    /// The case to convert to.
    to: Case,
}

/// A target case. The first four keep spacing and punctuation; the other
/// five split the text into words (at spaces, punctuation and camelCase
/// boundaries, keeping acronyms like "HTTP" whole) and join them.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Case {
    /// `HELLO WORLD`.
    Upper,
    /// `hello world`.
    Lower,
    /// `Hello World`: each word capitalized, the rest lowercased.
    Title,
    /// `Hello world. Bye now`: lowercased, with the first letter of each
    /// sentence capitalized.
    Sentence,
    /// `hello_world`.
    Snake,
    /// `hello-world`.
    Kebab,
    /// `helloWorld`.
    Camel,
    /// `HelloWorld`.
    Pascal,
    /// `HELLO_WORLD`.
    Constant,
}

/// The converted text.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CaseOutput {
    /// The text in the new case.
    text: String,
}

pub fn case(_ctx: &Ctx, input: CaseInput) -> Result<CaseOutput, ToolError> {
    Ok(CaseOutput {
        text: convert(&input.text, input.to),
    })
}

/// Converts `text` to `case`.
pub fn convert(text: &str, case: Case) -> String {
    match case {
        Case::Upper => text.to_uppercase(),
        Case::Lower => text.to_lowercase(),
        Case::Title => title(text),
        Case::Sentence => sentence(text),
        Case::Snake => words(text).join("_"),
        Case::Kebab => words(text).join("-"),
        Case::Constant => words(text)
            .iter()
            .map(|w| w.to_uppercase())
            .collect::<Vec<_>>()
            .join("_"),
        Case::Camel => {
            let mut out = String::new();
            for (i, word) in words(text).iter().enumerate() {
                if i == 0 {
                    out.push_str(word);
                } else {
                    push_capitalized(&mut out, word);
                }
            }
            out
        }
        Case::Pascal => {
            let mut out = String::new();
            for word in words(text) {
                push_capitalized(&mut out, &word);
            }
            out
        }
    }
}

/// Letters, digits and combining marks make up words.
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '’'
}

/// Splits text into lowercased words for the identifier cases. Apostrophes
/// inside a word are dropped ("don't" → "dont").
fn words(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev: Option<char> = None;
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        if is_apostrophe(c) && prev.is_some_and(is_word_char) && next.is_some_and(is_word_char) {
            continue; // joins the word; keep `prev` so case boundaries still work
        }
        if !is_word_char(c) {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev = Some(c);
            continue;
        }
        if !current.is_empty()
            && let Some(p) = prev
        {
            let lower_to_upper = (p.is_lowercase() || p.is_numeric()) && c.is_uppercase();
            let acronym_end =
                p.is_uppercase() && c.is_uppercase() && next.is_some_and(char::is_lowercase);
            if lower_to_upper || acronym_end {
                words.push(std::mem::take(&mut current));
            }
        }
        current.extend(c.to_lowercase());
        prev = Some(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn push_capitalized(out: &mut String, word: &str) {
    let mut chars = word.chars();
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
}

/// Capitalizes the first character of every word and lowercases the rest.
fn title(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev: Option<char> = None;
    let mut before_prev: Option<char> = None;
    for c in text.chars() {
        let inside_word = match prev {
            Some(p) if is_word_char(p) => true,
            Some(p) if is_apostrophe(p) => before_prev.is_some_and(is_word_char),
            _ => false,
        };
        if inside_word {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        before_prev = prev;
        prev = Some(c);
    }
    out
}

/// Lowercases everything, then capitalizes the first letter of the text and
/// of each sentence after `.`, `!` or `?` and whitespace.
fn sentence(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut capitalize = true;
    let mut after_end = false;
    for c in text.chars() {
        if is_word_char(c) {
            if capitalize {
                out.extend(c.to_uppercase());
                capitalize = false;
            } else {
                out.extend(c.to_lowercase());
            }
            after_end = false;
            continue;
        }
        if matches!(c, '.' | '!' | '?' | '…') {
            after_end = true;
        } else if c.is_whitespace() && after_end {
            capitalize = true;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_cases_split_camel_and_acronyms() {
        let text = "parseHTTPResponse v2Handler";
        assert_eq!(convert(text, Case::Snake), "parse_http_response_v2_handler");
        assert_eq!(convert(text, Case::Kebab), "parse-http-response-v2-handler");
        assert_eq!(
            convert(text, Case::Constant),
            "PARSE_HTTP_RESPONSE_V2_HANDLER"
        );
        assert_eq!(convert(text, Case::Camel), "parseHttpResponseV2Handler");
        assert_eq!(convert(text, Case::Pascal), "ParseHttpResponseV2Handler");
    }

    #[test]
    fn identifier_cases_from_prose_and_other_identifiers() {
        assert_eq!(
            convert("  Don't stop -- me now!", Case::Snake),
            "dont_stop_me_now"
        );
        assert_eq!(convert("user_id", Case::Camel), "userId");
        assert_eq!(convert("USER-ID", Case::Pascal), "UserId");
        assert_eq!(convert("Crème brûlée", Case::Kebab), "crème-brûlée");
        assert_eq!(convert("!!!", Case::Snake), "");
    }

    #[test]
    fn title_case_handles_apostrophes_and_unicode() {
        assert_eq!(
            convert("the QUICK brown fox's tail", Case::Title),
            "The Quick Brown Fox's Tail"
        );
        assert_eq!(convert("élan vital-force", Case::Title), "Élan Vital-Force");
    }

    #[test]
    fn sentence_case_capitalizes_after_terminators() {
        assert_eq!(
            convert("HELLO WORLD. how are you? fine!  ok", Case::Sentence),
            "Hello world. How are you? Fine!  Ok"
        );
        assert_eq!(
            convert("version 3.14 is out", Case::Sentence),
            "Version 3.14 is out"
        );
    }

    #[test]
    fn upper_and_lower_are_unicode_aware() {
        assert_eq!(convert("straße", Case::Upper), "STRASSE");
        assert_eq!(convert("ΑΘΗΝΑ", Case::Lower), "αθηνα");
    }

    #[test]
    fn tool_rejects_unknown_case() {
        let tool = crate::tools()
            .into_iter()
            .find(|t| t.name() == "case")
            .unwrap();
        let err = tool
            .call_json(r#"{"text": "x", "to": "sponge"}"#)
            .unwrap_err();
        assert!(err.message().contains("to"), "{err}");
        let out = tool
            .call_json(r#"{"text": "a b", "to": "constant"}"#)
            .unwrap();
        assert_eq!(out, r#"{"text":"A_B"}"#);
    }
}
