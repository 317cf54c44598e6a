//! `stats`: counts of bytes, characters, words, lines, sentences and
//! paragraphs, and the most frequent words.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, ToolError};

/// Top words listed when `top` is not given.
const DEFAULT_TOP: u32 = 10;
/// The most top words one call may ask for.
const MAX_TOP: u32 = 1000;

/// A word: letters, digits and marks, joined by single inner apostrophes or
/// hyphens ("don't", "well-known").
static WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[\p{L}\p{N}\p{M}]+(?:['’\-][\p{L}\p{N}\p{M}]+)*").expect("valid word regex")
});

/// The end of a sentence: terminators, then closing quotes or brackets, then
/// whitespace or the end of the text.
static SENTENCE_END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:[.!?…]+["'”’)\]]*(?:\s|$)|[。！？]+)"#).expect("valid sentence regex")
});

/// Input of `stats`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsInput {
    /// The text to measure.
    text: String,
    /// How many of the most frequent words to list, 0 to 1000; default 10.
    /// 0 lists none.
    #[serde(default)]
    top: Option<u32>,
    /// Leave words shorter than this many characters out of `top_words`
    /// (use 4 or so to skip "the", "and", ...). Default 1.
    #[serde(default)]
    min_word_length: Option<u32>,
}

/// Counts for the text.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StatsOutput {
    /// Length in UTF-8 bytes.
    bytes: usize,
    /// Length in Unicode characters (code points).
    chars: usize,
    /// Words: runs of letters, digits and marks; inner apostrophes and
    /// hyphens join ("don't" and "well-known" are one word each).
    words: usize,
    /// Distinct words, ignoring case.
    unique_words: usize,
    /// Lines; a final newline does not start another line. Empty text has 0.
    lines: usize,
    /// Lines that are empty or only whitespace.
    blank_lines: usize,
    /// Characters in the longest line (without its line ending).
    longest_line_chars: usize,
    /// Sentences, by a heuristic: text ending at `.`, `!`, `?` or `…` followed
    /// by whitespace (or at `。！？`), plus trailing text with no terminator.
    /// Abbreviations like "Dr." count as sentence ends.
    sentences: usize,
    /// Paragraphs: blocks of non-blank lines separated by blank lines.
    paragraphs: usize,
    /// Mean word length in characters, rounded to 2 decimals (0 with no words).
    average_word_chars: f64,
    /// The most frequent words, lowercased, most frequent first (ties in
    /// alphabetical order).
    top_words: Vec<WordCount>,
}

/// A word and how often it occurs.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WordCount {
    /// The word, lowercased.
    word: String,
    /// How many times it occurs, ignoring case.
    count: usize,
}

pub fn stats(_ctx: &Ctx, input: StatsInput) -> Result<StatsOutput, ToolError> {
    let top = input.top.unwrap_or(DEFAULT_TOP);
    if top > MAX_TOP {
        return Err(ToolError::invalid_input(format!(
            "top must be at most {MAX_TOP}, got {top}"
        )));
    }
    let min_len = input.min_word_length.unwrap_or(1) as usize;
    let text = input.text.as_str();

    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut words = 0usize;
    let mut word_chars = 0usize;
    for m in WORD.find_iter(text) {
        words += 1;
        word_chars += m.as_str().chars().count();
        *counts.entry(m.as_str().to_lowercase()).or_default() += 1;
    }

    let mut lines = 0;
    let mut blank_lines = 0;
    let mut longest_line_chars = 0;
    let mut paragraphs = 0;
    let mut in_paragraph = false;
    for line in text.lines() {
        lines += 1;
        longest_line_chars = longest_line_chars.max(line.chars().count());
        if line.trim().is_empty() {
            blank_lines += 1;
            in_paragraph = false;
        } else if !in_paragraph {
            paragraphs += 1;
            in_paragraph = true;
        }
    }

    let mut top_words: Vec<WordCount> = counts
        .iter()
        .filter(|(word, _)| word.chars().count() >= min_len)
        .map(|(word, &count)| WordCount {
            word: word.clone(),
            count,
        })
        .collect();
    top_words.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.word.cmp(&b.word)));
    top_words.truncate(top as usize);

    let average_word_chars = if words == 0 {
        0.0
    } else {
        (word_chars as f64 / words as f64 * 100.0).round() / 100.0
    };
    Ok(StatsOutput {
        bytes: text.len(),
        chars: text.chars().count(),
        words,
        unique_words: counts.len(),
        lines,
        blank_lines,
        longest_line_chars,
        sentences: count_sentences(text),
        paragraphs,
        average_word_chars,
        top_words,
    })
}

/// Counts the pieces between sentence ends that hold at least one word.
fn count_sentences(text: &str) -> usize {
    SENTENCE_END
        .split(text)
        .filter(|piece| WORD.is_match(piece))
        .count()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::tools;

    fn run(input: Value) -> Result<Value, toolhost_sdk::ToolError> {
        let tool = tools().into_iter().find(|t| t.name() == "stats").unwrap();
        tool.call_json(&input.to_string())
            .map(|out| serde_json::from_str(&out).unwrap())
    }

    #[test]
    fn counts_a_small_document() {
        let text =
            "Hello, world! Don't panic.\nIt's well-known.\n\n  \nSecond paragraph here?\nYes";
        let out = run(json!({"text": text})).unwrap();
        assert_eq!(out["bytes"], text.len());
        assert_eq!(out["chars"], text.chars().count());
        assert_eq!(out["words"], 10);
        assert_eq!(out["lines"], 6);
        assert_eq!(out["blank_lines"], 2);
        assert_eq!(out["paragraphs"], 2);
        assert_eq!(out["sentences"], 5);
        assert_eq!(out["longest_line_chars"], 26);
    }

    #[test]
    fn empty_text_is_all_zero() {
        let out = run(json!({"text": ""})).unwrap();
        for key in [
            "bytes",
            "chars",
            "words",
            "lines",
            "sentences",
            "paragraphs",
            "unique_words",
        ] {
            assert_eq!(out[key], 0, "{key}");
        }
        assert_eq!(out["average_word_chars"], 0.0);
        assert_eq!(out["top_words"], json!([]));
    }

    #[test]
    fn unicode_counts_chars_not_bytes() {
        let out = run(json!({"text": "naïve café 東京"})).unwrap();
        assert_eq!(out["chars"], 13);
        assert_eq!(out["bytes"], 19);
        assert_eq!(out["words"], 3);
    }

    #[test]
    fn top_words_ignore_case_and_break_ties_alphabetically() {
        let out = run(json!({"text": "The cat and the dog. THE end, and cat.", "top": 3})).unwrap();
        assert_eq!(
            out["top_words"],
            json!([
                {"word": "the", "count": 3},
                {"word": "and", "count": 2},
                {"word": "cat", "count": 2},
            ])
        );
        assert_eq!(out["unique_words"], 5);
    }

    #[test]
    fn min_word_length_filters_top_words() {
        let out =
            run(json!({"text": "a a a tree tree of", "top": 5, "min_word_length": 3})).unwrap();
        assert_eq!(out["top_words"], json!([{"word": "tree", "count": 2}]));
    }

    #[test]
    fn sentences_handle_quotes_and_ellipses() {
        let out = run(json!({"text": "He said \"stop.\" Then nothing… 3.14 is pi"})).unwrap();
        assert_eq!(out["sentences"], 3);
    }

    #[test]
    fn crlf_lines_count_once() {
        let out = run(json!({"text": "a\r\nb\r\n"})).unwrap();
        assert_eq!(out["lines"], 2);
        assert_eq!(out["longest_line_chars"], 1);
    }

    #[test]
    fn too_many_top_words_is_invalid() {
        let err = run(json!({"text": "x", "top": 1001})).unwrap_err();
        assert!(err.message().contains("top"), "{err}");
    }
}
