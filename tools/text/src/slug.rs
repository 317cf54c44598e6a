//! `slugify`: turn a title into a URL- and file-name-friendly slug.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, ToolError};

use crate::case::is_word_char;
use crate::translit;

/// The longest separator accepted, in characters.
const MAX_SEPARATOR_CHARS: usize = 5;

/// Input of `slugify`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlugInput {
    /// The text to turn into a slug, such as a title.
    text: String,
    /// What goes between words; default "-". Up to 5 characters, none of
    /// them a letter or digit ("" joins words directly).
    #[serde(default)]
    separator: Option<String>,
    /// The longest slug, in characters. Whole words are dropped from the end
    /// to fit; only a single word longer than this is cut. Omit for no limit.
    #[serde(default)]
    max_length: Option<u32>,
    /// Lowercase the slug. Default true.
    #[serde(default)]
    lowercase: Option<bool>,
    /// Drop letters that have no ASCII spelling here (CJK, Arabic, ...)
    /// instead of keeping them. Default false. Accented Latin, Greek and
    /// Cyrillic letters are always spelled in ASCII ("Crème" → "creme").
    #[serde(default)]
    ascii_only: bool,
}

/// The slug.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SlugOutput {
    /// The slug; empty if the text has no letters or digits to keep.
    slug: String,
    /// True when words were dropped or cut to fit `max_length`.
    truncated: bool,
}

pub fn slugify(_ctx: &Ctx, input: SlugInput) -> Result<SlugOutput, ToolError> {
    let separator = input.separator.as_deref().unwrap_or("-");
    if separator.chars().count() > MAX_SEPARATOR_CHARS || separator.chars().any(is_word_char) {
        return Err(ToolError::invalid_input(format!(
            "separator must be at most {MAX_SEPARATOR_CHARS} characters with no letters or \
             digits (like \"-\", \"_\" or \".\"), got {separator:?}"
        )));
    }
    if input.max_length == Some(0) {
        return Err(ToolError::invalid_input(
            "max_length must be at least 1; omit it for no limit",
        ));
    }
    let words = words(
        &input.text,
        input.lowercase.unwrap_or(true),
        input.ascii_only,
    );
    let (slug, truncated) = join_within(&words, separator, input.max_length.map(|m| m as usize));
    Ok(SlugOutput { slug, truncated })
}

/// Splits `text` into slug words, spelling known letters in ASCII.
fn words(text: &str, lowercase: bool, ascii_only: bool) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let joins = matches!(c, '\'' | '’')
            && i > 0
            && is_word_char(chars[i - 1])
            && chars.get(i + 1).is_some_and(|&n| is_word_char(n));
        if joins || (is_word_char(c) && !c.is_alphanumeric()) {
            continue; // inner apostrophes and combining accents vanish
        }
        if c.is_ascii_alphanumeric() {
            current.push(c);
        } else if let Some(ascii) = translit::to_ascii(c) {
            current.push_str(&ascii);
        } else if c.is_alphanumeric() && !ascii_only {
            current.push(c);
        } else if !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    if lowercase {
        for word in &mut words {
            *word = word.to_lowercase();
        }
    }
    words
}

/// Joins whole words while they fit in `max` characters; cuts the first word
/// only when even it alone does not fit.
fn join_within(words: &[String], separator: &str, max: Option<usize>) -> (String, bool) {
    let Some(max) = max else {
        return (words.join(separator), false);
    };
    let sep_len = separator.chars().count();
    let mut slug = String::new();
    let mut len = 0;
    for (i, word) in words.iter().enumerate() {
        let word_len = word.chars().count();
        let extra = if i == 0 { word_len } else { sep_len + word_len };
        if len + extra <= max {
            if i > 0 {
                slug.push_str(separator);
            }
            slug.push_str(word);
            len += extra;
            continue;
        }
        if i == 0 {
            slug = word.chars().take(max).collect();
        }
        return (slug, true);
    }
    (slug, false)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::tools;

    fn run(input: Value) -> Result<Value, toolhost_sdk::ToolError> {
        let tool = tools().into_iter().find(|t| t.name() == "slugify").unwrap();
        tool.call_json(&input.to_string())
            .map(|out| serde_json::from_str(&out).unwrap())
    }

    fn slug(input: Value) -> String {
        run(input).unwrap()["slug"].as_str().unwrap().to_owned()
    }

    #[test]
    fn strips_accents_and_punctuation() {
        assert_eq!(
            slug(json!({"text": "  Crème Brûlée: Ça Marche!  "})),
            "creme-brulee-ca-marche"
        );
        assert_eq!(
            slug(json!({"text": "Straße & Łódź — Ærø"})),
            "strasse-lodz-aero"
        );
        assert_eq!(
            slug(json!({"text": "Don't Stop Me’ Now"})),
            "dont-stop-me-now"
        );
    }

    #[test]
    fn decomposed_accents_are_dropped() {
        // "e" followed by U+0301 COMBINING ACUTE ACCENT.
        assert_eq!(slug(json!({"text": "Cafe\u{301} Noir"})), "cafe-noir");
    }

    #[test]
    fn other_scripts_are_kept_unless_ascii_only() {
        assert_eq!(slug(json!({"text": "Привет, мир"})), "privet-mir");
        assert_eq!(slug(json!({"text": "東京 Tower 2024"})), "東京-tower-2024");
        assert_eq!(
            slug(json!({"text": "東京 Tower 2024", "ascii_only": true})),
            "tower-2024"
        );
    }

    #[test]
    fn separator_and_case_options() {
        assert_eq!(
            slug(json!({"text": "Hello World", "separator": "_"})),
            "hello_world"
        );
        assert_eq!(
            slug(json!({"text": "Hello World", "lowercase": false})),
            "Hello-World"
        );
        assert_eq!(
            slug(json!({"text": "Hello World", "separator": ""})),
            "helloworld"
        );
    }

    #[test]
    fn max_length_keeps_whole_words() {
        let out = run(json!({"text": "The quick brown fox", "max_length": 14})).unwrap();
        assert_eq!(out, json!({"slug": "the-quick", "truncated": true}));
        let out = run(json!({"text": "The quick brown", "max_length": 15})).unwrap();
        assert_eq!(out, json!({"slug": "the-quick-brown", "truncated": false}));
        let out = run(json!({"text": "Supercalifragilistic word", "max_length": 5})).unwrap();
        assert_eq!(out, json!({"slug": "super", "truncated": true}));
    }

    #[test]
    fn nothing_to_keep_gives_an_empty_slug() {
        assert_eq!(slug(json!({"text": "!!! ??? 🎉"})), "");
    }

    #[test]
    fn bad_options_are_invalid_input() {
        let err = run(json!({"text": "a", "separator": "x"})).unwrap_err();
        assert!(err.message().contains("separator"), "{err}");
        let err = run(json!({"text": "a", "max_length": 0})).unwrap_err();
        assert!(err.message().contains("max_length"), "{err}");
    }
}
