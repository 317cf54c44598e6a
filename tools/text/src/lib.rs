//! `text`: counts, regex find and replace, case conversion and slugs.
//!
//! Every tool here is pure: the same input always gives the same output.

mod case;
mod find;
mod pattern;
mod replace;
mod slug;
mod stats;
mod translit;

use toolhost_sdk::Tool;

fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "stats",
            "Count bytes, characters, words, lines, sentences and paragraphs in a text, and \
             list its most frequent words.",
            stats::stats,
        )
        .pure(),
        Tool::new(
            "find",
            "Find regex (or plain text) matches in a text. Returns each match with byte and \
             character offsets, line and column, and its capture groups (named ones too).",
            find::find,
        )
        .pure(),
        Tool::new(
            "replace",
            "Replace regex (or plain text) matches in a text. The replacement may use $1, \
             ${name} and $0; returns the new text and how many matches were replaced.",
            replace::replace,
        )
        .pure(),
        Tool::new(
            "case",
            "Convert text to upper, lower, title or sentence case, or to a snake_case, \
             kebab-case, camelCase, PascalCase or CONSTANT_CASE identifier.",
            case::case,
        )
        .pure(),
        Tool::new(
            "slugify",
            "Turn text such as a title into a slug for URLs or file names: accents spelled \
             in ASCII, punctuation dropped, words joined by a separator, optional max length.",
            slug::slugify,
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
            let properties = schema["properties"].as_object().unwrap();
            for (field, spec) in properties {
                assert!(
                    spec.get("description").is_some(),
                    "{}.{field} has no description",
                    tool.name()
                );
            }
        }
    }
}
