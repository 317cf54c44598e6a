//! `/metrics` under a hostile tenant, over a real loopback socket: no label
//! value comes from a request, the values that come from the configuration
//! are escaped, and the number of series does not grow with traffic.

use serde_json::json;
use toolhost::ExecConfig;

use super::serve_tenancy::{ALICE, Api, config};

/// `text` with every byte but letters and digits percent-encoded.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The label values of one sample line `name{key="value",…} number`, with
/// the text format's escapes (`\\`, `\"`, `\n`) undone; `None` when the line
/// is not such a sample.
fn sample_labels(line: &str) -> Option<Vec<String>> {
    let (name, mut rest) = line.split_at(line.find(['{', ' '])?);
    if name.is_empty() || !name.chars().all(is_name_char) {
        return None;
    }
    let mut values = Vec::new();
    if let Some(mut labels) = rest.strip_prefix('{') {
        loop {
            let (key, after) = labels.split_once("=\"")?;
            if key.is_empty() || !key.chars().all(is_name_char) {
                return None;
            }
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => value.push(match chars.next()?.1 {
                        '\\' => '\\',
                        '"' => '"',
                        'n' => '\n',
                        _ => return None,
                    }),
                    (i, '"') => break i,
                    (_, c) => value.push(c),
                }
            };
            values.push(value);
            let after = &after[end + 1..];
            match after.strip_prefix(',') {
                Some(next) => labels = next,
                None => {
                    rest = after.strip_prefix('}')?;
                    break;
                }
            }
        }
    }
    rest.strip_prefix(' ')?.parse::<f64>().ok()?;
    Some(values)
}

/// Every line of `text` is a comment or a well-formed sample; the label
/// values of the samples, unescaped.
fn label_values(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .flat_map(|line| {
            sample_labels(line).unwrap_or_else(|| panic!("not a sample line: {line:?}\n{text}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_name_from_a_request_plants_no_sample() {
    let api = Api::start(ExecConfig::default(), &config("alice", "")).await;
    let planted = "calc\",tenant=\"victim\",outcome=\"ok\"} 999999\ntoolhost_calls_total{tool=\"x";
    let (status, body) = api
        .post(
            ALICE,
            &format!("/v1/tools/{}/call", percent_encode(planted)),
            "{}".into(),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let batch = json!([{"id": "a", "type": "function",
        "function": {"name": planted, "arguments": "{}"}}]);
    let (status, body) = api.post(ALICE, "/v1/tool-calls", batch.to_string()).await;
    assert_eq!(status, 200, "{body}");
    let text = api.metrics().await;
    let values = label_values(&text);
    // The planted value as a sample's value (a latency sum may well contain
    // the digits 999999 in its decimals).
    assert!(
        !text.contains("victim") && !text.lines().any(|line| line.ends_with(" 999999")),
        "a request planted a sample:\n{text}"
    );
    assert!(
        values.iter().any(|v| v == "(unknown)"),
        "unknown names count under one label:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_values_from_the_configuration_are_escaped() {
    let name = "ev\"il\\ten\nant";
    let toml_name = name
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    let api = Api::start(ExecConfig::default(), &config(&toml_name, "")).await;
    let (_, record) = api
        .call(ALICE, "calc", &json!({"expression": "40 + 2"}))
        .await;
    assert_eq!(record["outcome"], "ok", "{record}");
    let text = api.metrics().await;
    assert!(
        label_values(&text).iter().any(|v| v == name),
        "the tenant's name, escaped, labels its calls:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_unknown_names_add_no_series() {
    let api = Api::start(ExecConfig::default(), &config("alice", "")).await;
    let (status, _) = api.call(ALICE, "nosuch_first", &json!({})).await;
    assert_eq!(status, 404);
    let before = api.metrics().await;
    for batch in 0..20 {
        let calls: Vec<_> = (0..500)
            .map(|i| {
                json!({"id": format!("c{i}"), "type": "function",
                    "function": {"name": format!("nosuch_{batch}_{i}"), "arguments": "{}"}})
            })
            .collect();
        let (status, body) = api
            .post(ALICE, "/v1/tool-calls", json!(calls).to_string())
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let after = api.metrics().await;
    assert_eq!(
        after.lines().count(),
        before.lines().count(),
        "10,000 unknown names added series"
    );
    assert!(
        after.len() <= before.len() + 512,
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
}
