//! Policies that do not parse, validate or resolve stop only their own tool,
//! with a message naming the file, the key and the problem; `review_dir`
//! (behind `toolhost policy check`) reports the same, and what the others
//! are granted, never a secret's value.

use std::path::Path;

use toolhost::{EngineConfig, Limits, LoadError, review_dir};
use toolhost_artifacts as artifacts;

use crate::common::{block_on, load_dir};

/// Each case: file stem, policy text, what the refusal must mention.
const BAD: &[(&str, &str, &[&str])] = &[
    (
        "unknown_key",
        "[capabilities]\nhttp = [\"api.example.com\"]\nnetwork = true\n",
        &["unknown_key.toml", "network"],
    ),
    (
        "bad_pattern",
        "[capabilities]\nhttp = [\"api.example.com\", \"exa mple.com/path\"]\n",
        &["bad_pattern.toml", "capabilities.http", "exa mple.com/path"],
    ),
    (
        "missing_secret",
        "[capabilities]\nhttp = [\"api.example.com\"]\n[secrets]\n\"api.example.com\" = { header = \"Authorization\", value = \"Bearer ${env:TOOLHOST_TEST_SURELY_UNSET_KEY}\" }\n",
        &[
            "missing_secret.toml",
            "secrets.\"api.example.com\".value",
            "TOOLHOST_TEST_SURELY_UNSET_KEY",
            "not set",
        ],
    ),
    (
        "literal_secret",
        "[secrets]\n\"api.example.com\" = { header = \"Authorization\", value = \"Bearer hunter2\" }\n",
        &["literal_secret.toml", "secrets.\"api.example.com\".value"],
    ),
    (
        "bad_http_limit",
        "[limits.http]\nmax_response_kb = 0\n",
        &["bad_http_limit.toml", "limits.http.max_response_kb"],
    ),
    (
        "bad_guest_dir",
        "[capabilities]\nread_dirs = { \"data\" = \".\" }\n",
        &["bad_guest_dir.toml", "capabilities.read_dirs", "absolute"],
    ),
];

const GOOD: &str = "[capabilities]\nhttp = [\"*.example.com\", \"http://localhost:*\"]\nenv = [\"LANG\"]\nread_dirs = { \"/data\" = \".\" }\n\n[limits.http]\nmax_requests = 3\n\n[secrets]\n\"api.example.com\" = { header = \"X-Key\", value = \"${env:CARGO_PKG_NAME}\" }\n";

fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let put = |stem: &str, policy: Option<&str>| {
        std::fs::copy(artifacts::TRIVIAL, dir.path().join(format!("{stem}.wasm"))).unwrap();
        if let Some(policy) = policy {
            std::fs::write(dir.path().join(format!("{stem}.toml")), policy).unwrap();
        }
    };
    put("plain", None);
    put("granted", Some(GOOD));
    for (stem, policy, _) in BAD {
        put(stem, Some(policy));
    }
    dir
}

#[test]
fn a_bad_policy_stops_only_its_tool_and_names_the_problem() {
    let dir = folder();
    let path = dir.path().to_path_buf();
    let executor = block_on(async move { load_dir(&path).await });
    let catalog = executor.catalog();
    let loaded: Vec<&str> = catalog.tools().map(|t| t.name.as_str()).collect();
    assert_eq!(loaded, ["granted__echo", "plain__echo"]);
    assert_eq!(catalog.failures().len(), BAD.len());
    for (stem, _, mentions) in BAD {
        let failure = catalog
            .failures()
            .iter()
            .find(|f| f.path().file_stem().is_some_and(|s| s == *stem))
            .unwrap_or_else(|| panic!("{stem} was not refused: {:?}", catalog.failures()));
        assert!(matches!(failure, LoadError::Policy(_)), "{stem}: {failure}");
        let message = failure.to_string();
        for mention in *mentions {
            assert!(
                message.contains(mention),
                "{stem}: {message:?} lacks {mention:?}"
            );
        }
    }
}

#[test]
fn review_lists_grants_and_refusals_without_secret_values() {
    let dir = folder();
    let reviews = review_dir(
        dir.path(),
        EngineConfig::default().max_memory_mb,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(reviews.len(), BAD.len() + 2);
    let refused: Vec<&str> = reviews
        .iter()
        .filter(|r| r.result.is_err())
        .map(|r| r.tool.as_str())
        .collect();
    assert_eq!(refused.len(), BAD.len(), "{refused:?}");

    let plain = reviews.iter().find(|r| r.tool == "plain").unwrap();
    assert!(plain.policy.is_none());
    assert!(plain.result.as_ref().unwrap().is_nothing());

    let granted = reviews.iter().find(|r| r.tool == "granted").unwrap();
    let g = granted.result.as_ref().unwrap();
    assert_eq!(g.http, ["*.example.com", "http://localhost:*"]);
    assert!(!g.allow_private);
    assert_eq!(g.env, ["LANG"]);
    assert_eq!(g.read_dirs.len(), 1);
    assert_eq!(g.read_dirs[0].0, "/data");
    assert_eq!(g.read_dirs[0].1, dir.path().canonicalize().unwrap());
    assert_eq!(
        g.secrets,
        [("api.example.com".to_string(), "X-Key".to_string())]
    );
    assert_eq!(g.limits.http.max_requests, 3);
    let json = g.to_json().to_string();
    assert!(
        !json.contains(env!("CARGO_PKG_NAME")),
        "a secret value leaked: {json}"
    );
    assert!(json.contains("X-Key"), "{json}");
}

#[test]
fn the_bundled_policies_are_valid() {
    let reviews = review_dir(
        Path::new(artifacts::TOOLS_DIR),
        EngineConfig::default().max_memory_mb,
        &Limits::default(),
    )
    .unwrap();
    assert!(!reviews.is_empty());
    for review in &reviews {
        assert!(
            review.result.is_ok(),
            "{}: {:?}",
            review.tool,
            review.result
        );
    }
}
