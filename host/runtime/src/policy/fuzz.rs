//! Property-based fuzzing of policy files: the TOML, host patterns, rates,
//! secret templates and guest directories. Run with `cargo test --lib fuzz`
//! (see [`crate::fuzzing`] for the long mode).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use toolhost_fuzz::check;

/// Values a policy key might be given, sensible or not.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0_u64..2_000_000).prop_map(|n| n.to_string()),
        Just("0".to_string()),
        Just("99999999999999999999".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<f64>().prop_map(|x| format!("{x:?}")),
        "\\PC{0,12}".prop_map(|s| format!("{s:?}")),
        "[0-9_]{1,6}/(s|min|h|sec|x| s|)".prop_map(|s| format!("{s:?}")),
        host_pattern_text().prop_map(|s| format!("{s:?}")),
        prop::collection::vec("\\PC{0,8}", 0..4).prop_map(|v| format!("{v:?}")),
        Just("\"wait\"".to_string()),
        Just("\"reject\"".to_string()),
        Just("{ header = \"Authorization\", value = \"Bearer ${env:KEY}\" }".to_string()),
    ]
}

const SECTIONS: &[&str] = &[
    "",
    "[limits]",
    "[limits.http]",
    "[capabilities]",
    "[capabilities.read_dirs]",
    "[retry]",
    "[secrets]",
    "[secrets.\"api.example.com\"]",
];

const KEYS: &[&str] = &[
    "timeout_ms",
    "fuel",
    "memory_mb",
    "max_output_kb",
    "max_concurrency",
    "rate",
    "burst",
    "on_limit",
    "max_response_kb",
    "max_requests",
    "wall_clock",
    "env",
    "http",
    "allow_private",
    "attempts",
    "backoff_ms",
    "max_backoff_ms",
    "on_trap",
    "non_idempotent",
    "header",
    "value",
    "\"/data\"",
    "\"/data/x\"",
    "\"rel\"",
    "\"/a/../b\"",
    "\"api.example.com\"",
    "surprise",
];

/// Policy-shaped TOML: sections and `key = value` lines drawn from the real
/// vocabulary with values of every type.
fn policy_text() -> impl Strategy<Value = String> {
    let line = (
        prop::option::weighted(0.2, prop::sample::select(SECTIONS)),
        prop::sample::select(KEYS),
        toml_value(),
    )
        .prop_map(|(section, key, value)| match section {
            Some(section) => format!("{section}\n{key} = {value}\n"),
            None => format!("{key} = {value}\n"),
        });
    prop::collection::vec(line, 0..12).prop_map(|lines| lines.concat())
}

/// Text in the shape of host patterns, valid or almost.
fn host_pattern_text() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        Just(""),
        Just("http://"),
        Just("https://"),
        Just("ftp://"),
        Just("://")
    ];
    let host = prop_oneof![
        "[a-z0-9-]{1,8}(\\.[a-z0-9-]{1,8}){0,3}\\.?",
        "\\*\\.[a-zA-Z0-9-]{1,8}\\.[a-z]{2,3}",
        Just("*".to_string()),
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        "\\[[0-9a-f:]{0,12}\\]?",
        "\\PC{1,6}",
    ];
    let port = prop_oneof![
        Just(String::new()),
        Just(":*".to_string()),
        any::<u16>().prop_map(|p| format!(":{p}")),
        "\\PC{0,4}".prop_map(|p| format!(":{p}")),
    ];
    (scheme, host, port).prop_map(|(s, h, p)| format!("{s}{h}{p}"))
}

/// A policy built field by field, as the TOML serializer will write it.
fn policy() -> impl Strategy<Value = Policy> {
    let small = || prop::option::of(0_u64..=i64::MAX as u64);
    let limits = (
        (small(), small(), small(), small()),
        prop::option::of(any::<u32>()),
        prop::option::of("\\PC{0,10}"),
        prop::option::of(any::<u32>()),
        prop::option::of(prop_oneof![Just(OnLimit::Wait), Just(OnLimit::Reject)]),
        (small(), small(), prop::option::of(any::<u32>())),
    )
        .prop_map(
            |(
                (timeout_ms, fuel, memory_mb, max_output_kb),
                max_concurrency,
                rate,
                burst,
                on_limit,
                (max_response_kb, http_timeout_ms, max_requests),
            )| LimitsPatch {
                timeout_ms,
                fuel,
                memory_mb,
                max_output_kb,
                max_concurrency,
                rate,
                burst,
                on_limit,
                http: HttpLimitsPatch {
                    max_response_kb,
                    timeout_ms: http_timeout_ms,
                    max_requests,
                },
            },
        );
    let capabilities = (
        any::<bool>(),
        prop::collection::vec("\\PC{0,8}", 0..3),
        prop::collection::vec(host_pattern_text(), 0..3),
        any::<bool>(),
        prop::collection::btree_map("/?\\PC{0,8}", "\\PC{0,8}", 0..3),
    )
        .prop_map(
            |(wall_clock, env, http, allow_private, read_dirs)| Capabilities {
                wall_clock,
                env,
                http,
                allow_private,
                read_dirs,
            },
        );
    let retry = (
        prop::option::of(any::<u32>()),
        small(),
        small(),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(attempts, backoff_ms, max_backoff_ms, on_trap, non_idempotent)| RetryPatch {
                attempts,
                backoff_ms,
                max_backoff_ms,
                on_trap,
                non_idempotent,
            },
        );
    let secrets = prop::collection::btree_map(
        host_pattern_text(),
        (
            "\\PC{0,10}",
            "\\PC{0,6}(\\$\\{(env|file):\\PC{0,6}\\})?\\PC{0,4}",
        )
            .prop_map(|(header, value)| Secret { header, value }),
        0..3,
    );
    (limits, capabilities, retry, secrets).prop_map(|(limits, capabilities, retry, secrets)| {
        Policy {
            limits,
            capabilities,
            retry,
            secrets,
        }
    })
}

/// What every validated policy's limits must respect, whatever its text.
fn assert_capped(policy: &Policy, max_memory_mb: u64) -> Result<(), TestCaseError> {
    let base = Limits::default();
    let limits = policy.limits(&base);
    prop_assert!(limits.timeout <= Duration::from_millis(MAX_TIMEOUT_MS));
    prop_assert!(limits.timeout > Duration::ZERO);
    prop_assert!(limits.fuel > 0);
    prop_assert!(limits.memory_bytes <= (max_memory_mb << 20).max(base.memory_bytes));
    prop_assert!(limits.max_output_bytes <= (MAX_OUTPUT_KB << 10).max(base.max_output_bytes));
    prop_assert!(limits.max_output_bytes > 0);
    prop_assert!(limits.max_concurrency > 0);
    prop_assert!(limits.http.max_response_bytes <= MAX_RESPONSE_KB << 10);
    prop_assert!(limits.http.timeout <= Duration::from_millis(MAX_TIMEOUT_MS));
    prop_assert!(limits.http.max_requests <= MAX_REQUESTS);
    prop_assert!((1..=10).contains(&limits.retry.attempts));
    prop_assert!(limits.retry.max_backoff >= limits.retry.backoff);
    if let Some(rate) = limits.rate {
        prop_assert!(rate.count > 0 && rate.burst > 0);
    }
    // Every pattern that validated is kept for matching.
    prop_assert_eq!(policy.http_patterns().len(), policy.capabilities.http.len());
    Ok(())
}

#[test]
fn fuzz_policy_text_parses_or_is_refused_and_valid_limits_stay_capped() {
    check(
        "policy text",
        512,
        (policy_text(), 1_u64..=4096),
        |(text, max_memory_mb)| {
            let path = Path::new("fuzz.toml");
            let Ok(policy) = Policy::parse(&text, path) else {
                return Ok(());
            };
            match policy.validate(path, max_memory_mb) {
                Ok(()) => assert_capped(&policy, max_memory_mb),
                Err(PolicyError::Invalid { key, reason, .. }) => {
                    prop_assert!(!key.is_empty() && !reason.is_empty());
                    Ok(())
                }
                Err(other) => Err(TestCaseError::fail(format!("unexpected {other}"))),
            }
        },
    );
}

#[test]
fn fuzz_policy_round_trips_through_toml() {
    check("policy round trip", 256, policy(), |policy| {
        let path = Path::new("fuzz.toml");
        let text = toml::to_string(&policy).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = Policy::parse(&text, path).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &policy, "{}", text);
        let (first, second) = (policy.validate(path, 512), back.validate(path, 512));
        prop_assert_eq!(first.is_ok(), second.is_ok());
        if first.is_ok() {
            assert_capped(&policy, 512)?;
        }
        Ok(())
    });
}

#[test]
fn fuzz_host_patterns_parse_or_say_why_and_match_what_they_name() {
    let input = prop_oneof![host_pattern_text(), "\\PC{0,24}", any::<String>()];
    check("host patterns", 1024, input, |text| {
        match HostPattern::parse(&text) {
            Err(why) => prop_assert!(why.contains("is not a host pattern"), "{}", why),
            Ok(pattern) => {
                prop_assert_eq!(pattern.as_str(), text.as_str());
                // A pattern with an exact host and port allows exactly that target.
                let rest = text.split_once("://").map_or(text.as_str(), |(_, r)| r);
                if let Some((host, port)) = rest.rsplit_once(':')
                    && let Ok(port) = port.parse::<u16>()
                    && !host.contains('*')
                    && let Some(target) = Target::new(Scheme::Https, host, Some(port))
                    && !text.starts_with("http://")
                {
                    prop_assert!(pattern.allows(&target), "{} vs {}", text, target);
                    let other = Target {
                        port: port.wrapping_add(1).max(1),
                        ..target.clone()
                    };
                    prop_assert!(other.port == port || !pattern.allows(&other));
                }
            }
        }
        Ok(())
    });
}

#[test]
fn fuzz_wildcards_never_match_the_bare_domain_or_a_lookalike() {
    let label = "[a-z0-9]{1,10}";
    check(
        "wildcards",
        512,
        (label, label, label),
        |(sub, name, tld)| {
            let pattern = HostPattern::parse(&format!("*.{name}.{tld}")).unwrap();
            let allows = |host: String| {
                let target = Target::new(Scheme::Https, &host, None).unwrap();
                pattern.allows(&target)
            };
            let below = allows(format!("{sub}.{name}.{tld}"));
            let below_upper = allows(format!("{sub}.{name}.{tld}.").to_uppercase());
            let bare = allows(format!("{name}.{tld}"));
            let glued = allows(format!("{sub}{name}.{tld}"));
            // `name.tld.sub` is a host below `*.name.tld` only when all
            // three labels are one (`5.5.5` under `*.5.5`).
            let after = allows(format!("{name}.{tld}.{sub}")) && !(sub == name && name == tld);
            prop_assert!(below && below_upper);
            prop_assert!(!bare && !glued && !after);
            Ok(())
        },
    );
}

#[test]
fn fuzz_rates_parse_to_what_they_say() {
    let written = (
        1_u32..,
        prop::sample::select(&["s", "sec", "second", "m", "min", "minute", "h", "hour"][..]),
        prop::option::of(any::<u32>()),
    );
    check(
        "rates",
        512,
        (written, "\\PC{0,16}"),
        |((count, unit, burst), junk)| {
            let _ = parse_rate(&junk, burst);
            let rate = parse_rate(&format!(" {count} / {unit} "), burst);
            match burst {
                Some(0) => prop_assert!(rate.is_err()),
                _ => {
                    let rate = rate.map_err(TestCaseError::fail)?;
                    prop_assert_eq!(rate.count, count);
                    prop_assert_eq!(rate.burst, burst.unwrap_or(count));
                    let secs = match unit.chars().next() {
                        Some('s') => 1,
                        Some('m') => 60,
                        _ => 3600,
                    };
                    prop_assert_eq!(rate.per, Duration::from_secs(secs));
                }
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_secret_templates_and_guest_dirs_never_panic() {
    let template = prop_oneof![
        "\\PC{0,6}(\\$\\{(env|file|vault|):?\\PC{0,6}\\}?){0,3}\\PC{0,4}",
        any::<String>()
    ];
    let header = prop_oneof![
        Just("Authorization".to_string()),
        Just("Host".to_string()),
        "\\PC{0,10}"
    ];
    let dirs = prop::collection::vec(prop_oneof!["(/[a-z.]{0,4}){0,4}/?", "\\PC{0,8}"], 0..4);
    check(
        "secrets and dirs",
        1024,
        (header, template, dirs),
        |(header, value, dirs)| {
            let secret = Secret { header, value };
            if let Err((field, why)) = secret::check(&secret) {
                prop_assert!(field == "header" || field == "value");
                prop_assert!(!why.is_empty());
            } else {
                let templated = secret.value.contains("${env:") || secret.value.contains("${file:");
                prop_assert!(templated);
            }
            let all: BTreeMap<String, String> =
                dirs.iter().map(|d| (d.clone(), String::new())).collect();
            for guest in all.keys() {
                if check_guest_dir(guest, all.keys()).is_ok() {
                    prop_assert!(guest.starts_with('/') && !guest.ends_with('/'));
                    prop_assert!(
                        !guest
                            .split('/')
                            .skip(1)
                            .any(|p| p.is_empty() || p == "." || p == "..")
                    );
                }
            }
            Ok(())
        },
    );
}
