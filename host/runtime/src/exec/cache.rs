//! The result cache for pure tools: one partition per caller (tenant key),
//! each bounded by entries and bytes, with a TTL.
//!
//! Only tools the catalog calls pure are cached: declared read-only and
//! idempotent, and granted nothing that reaches outside the sandbox. The key
//! is the component's content hash, the tool, and the input as canonical JSON
//! (keys sorted), so the same question in another key order is a hit.
//!
//! A caller is answered only from its own calls: its partition is its own,
//! so it never hits (and so never times) another caller's entry, and no
//! caller's entries evict another's. A hit is no free pass either: it
//! replays what the call it repeats cost ([`Hit::replay`]) against the
//! caller's own limits, so a hit ends as that call would end under them
//! (`out-of-fuel`, `output-too-large`, …), and its fuel is charged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::keys::{owned, probe};
use crate::outcome::Outcome;
use crate::policy::Limits;
use crate::shared::{CacheBounds, Shared};

/// How the result cache is bounded. `max_entries = 0` turns it off.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Entries kept at most, per caller.
    pub max_entries: usize,
    /// Bytes of output (as JSON text) kept at most, per caller.
    pub max_bytes: usize,
    /// How long an entry stays valid.
    pub ttl: Duration,
    /// Callers with a partition at most; past it, the calls of a new
    /// caller are not cached (they run, and leave no entry).
    pub max_callers: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_bytes: 64 << 20,
            ttl: Duration::from_secs(300),
            max_callers: 1024,
        }
    }
}

/// A stored answer and what the call that produced it cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Hit {
    /// The output as the guest wrote it (valid JSON), parsed again on a
    /// hit: kept as text, an entry is one allocation to store, copy and
    /// evict, where a parsed value is a tree of them (a miss stores one
    /// and evicts another, both under the cache's lock).
    pub(crate) output: Box<RawValue>,
    /// The output's length as the guest wrote it, in bytes.
    pub(crate) output_bytes: u64,
    /// Fuel the call burned, when fuel was counted.
    pub(crate) fuel: Option<u64>,
    /// The largest linear memory the call reached, in bytes.
    pub(crate) memory_peak: Option<u64>,
    /// How long the guest ran.
    pub(crate) ran_for: Duration,
}

/// What replaying a hit under a caller's limits gives.
#[derive(Debug)]
pub(crate) struct Replay {
    pub(crate) outcome: Outcome,
    /// Fuel to charge: what the call burned, or all the caller's budget
    /// when that is less (as a call that ran out would burn).
    pub(crate) fuel: Option<u64>,
}

impl Hit {
    /// Ends the hit as the call it repeats would end under `limits` (the
    /// caller's, after its ceilings and what its fuel quota granted).
    pub(crate) fn replay(self, limits: &Limits) -> Replay {
        let refuse = |outcome, fuel| Replay { outcome, fuel };
        if let Some(fuel) = self.fuel
            && fuel > limits.fuel
        {
            let message = format!(
                "the tool used its whole fuel budget of {} and was stopped",
                limits.fuel
            );
            return refuse(Outcome::OutOfFuel { message }, Some(limits.fuel));
        }
        if self.memory_peak.unwrap_or(0) > limits.memory_bytes {
            let message = format!(
                "the tool tried to grow its memory past the cap of {} MiB and was stopped",
                limits.memory_bytes >> 20
            );
            return refuse(Outcome::MemoryLimit { message }, self.fuel);
        }
        if self.ran_for > limits.timeout {
            let message = format!(
                "deadline of {} ms passed; the call was stopped",
                limits.timeout.as_millis()
            );
            return refuse(Outcome::Timeout { message }, self.fuel);
        }
        if self.output_bytes > limits.max_output_bytes {
            let message = format!(
                "the output is {} bytes, over the limit of {} bytes",
                self.output_bytes, limits.max_output_bytes
            );
            return refuse(Outcome::OutputTooLarge { message }, self.fuel);
        }
        if let Err(outcome) = crate::lift::check_parsed_size(self.output.get(), limits) {
            return refuse(outcome, self.fuel);
        }
        let outcome = match serde_json::from_str(self.output.get()) {
            Ok(output) => Outcome::Ok { output },
            // Stored text parsed when it was stored (a shared entry, when
            // it was read); should it not now, the answer is a trap.
            Err(e) => Outcome::Trap {
                message: format!("the cached answer could not be read: {e}"),
            },
        };
        Replay {
            outcome,
            fuel: self.fuel,
        }
    }
}

struct Entry {
    hit: Hit,
    bytes: usize,
    stored: Instant,
}

/// One caller's entries.
struct Partition {
    entries: LruCache<String, Entry>,
    bytes: usize,
}

pub(crate) struct ResultCache {
    partitions: Mutex<HashMap<String, Partition>>,
    config: CacheConfig,
    /// The second level, shared with other nodes: same partitions (one per
    /// caller), same bounds, each entry under the hash of its key.
    shared: Option<Arc<Shared>>,
}

impl ResultCache {
    pub(crate) fn new(config: CacheConfig, shared: Option<Arc<Shared>>) -> Option<Self> {
        (config.max_entries > 0 && config.max_bytes > 0 && config.max_callers > 0).then(|| Self {
            partitions: Mutex::new(HashMap::new()),
            config,
            shared,
        })
    }

    /// `caller`'s entry for `key` in the shared cache: another node's
    /// answer to the same caller. Not kept here (its age is the store's).
    pub(crate) async fn get_shared(&self, caller: &str, key: &str, limits: &Limits) -> Option<Hit> {
        let shared = self.shared.as_ref()?;
        let bytes = shared.cache_get(caller, &shared_key(key)).await?;
        read_shared(&bytes, limits)
    }

    pub(crate) fn key(component_hash: &str, tool: &str, input: &Value) -> String {
        let mut key = String::with_capacity(component_hash.len() + tool.len() + 64);
        key.push_str(component_hash);
        key.push('\0');
        key.push_str(tool);
        key.push('\0');
        write_canonical(input, &mut key);
        key
    }

    /// `caller`'s fresh entry for `key`, if it has one.
    pub(crate) fn get(&self, caller: &str, key: &str) -> Option<Hit> {
        let caller = probe(caller);
        let mut partitions = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        let partition = partitions.get_mut(caller)?;
        let fresh = partition
            .entries
            .get(key)
            .map(|entry| entry.stored.elapsed() < self.config.ttl)?;
        if fresh {
            return partition.entries.get(key).map(|entry| entry.hit.clone());
        }
        if let Some(stale) = partition.entries.pop(key) {
            partition.bytes -= stale.bytes;
        }
        None
    }

    /// Keeps `hit` as `caller`'s answer for `key`, evicting only `caller`'s
    /// least recently used entries to stay in bounds.
    pub(crate) fn put(&self, caller: &str, key: String, hit: Hit) {
        let bytes = key.len() + usize::try_from(hit.output_bytes).unwrap_or(usize::MAX);
        if bytes > self.config.max_bytes {
            return;
        }
        if let Some(shared) = &self.shared
            && let Ok(value) = serde_json::to_vec(&hit)
        {
            let bounds = CacheBounds {
                ttl: self.config.ttl,
                max_entries: self.config.max_entries as u64,
                max_bytes: self.config.max_bytes as u64,
            };
            shared.cache_put(caller, &shared_key(&key), value, bounds);
        }
        let caller = probe(caller);
        let mut partitions = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        if !partitions.contains_key(caller) && partitions.len() >= self.config.max_callers {
            partitions.retain(|_, p| !p.entries.is_empty());
            if partitions.len() >= self.config.max_callers {
                return;
            }
        }
        if !partitions.contains_key(caller) {
            partitions.insert(
                owned(caller),
                Partition {
                    entries: LruCache::unbounded(),
                    bytes: 0,
                },
            );
        }
        let Some(partition) = partitions.get_mut(caller) else {
            return;
        };
        let entry = Entry {
            hit,
            bytes,
            stored: Instant::now(),
        };
        if let Some(old) = partition.entries.put(key, entry) {
            partition.bytes -= old.bytes;
        }
        partition.bytes += bytes;
        while partition.entries.len() > self.config.max_entries
            || partition.bytes > self.config.max_bytes
        {
            match partition.entries.pop_lru() {
                Some((_, evicted)) => partition.bytes -= evicted.bytes,
                None => break,
            }
        }
    }

    #[cfg(test)]
    fn len(&self, caller: &str) -> (usize, usize) {
        let partitions = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        partitions
            .get(caller)
            .map_or((0, 0), |p| (p.entries.len(), p.bytes))
    }
}

/// An entry as another node stored it, if it reads as one whose output
/// parses (raw text is read without the parser's depth limit): anything
/// else is a miss, and the call runs. An output too large for `limits`
/// once parsed is not parsed here: its replay refuses it, as the call
/// would be refused.
fn read_shared(bytes: &[u8], limits: &Limits) -> Option<Hit> {
    let hit: Hit = serde_json::from_slice(bytes).ok()?;
    if crate::lift::check_parsed_size(hit.output.get(), limits).is_ok() {
        serde_json::from_str::<Value>(hit.output.get()).ok()?;
    }
    Some(hit)
}

/// A cache key as the shared store names it: its hash (a key holds the
/// whole input).
fn shared_key(key: &str) -> String {
    blake3::hash(key.as_bytes()).to_hex().to_string()
}

/// JSON with object keys sorted, whatever order they arrived in.
pub(crate) fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `value` as canonical JSON text: object keys sorted at every level, no
/// spaces. Two inputs that mean the same have the same canonical text.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_deeply() {
        let a = json!({"b": 1, "a": {"y": [1, {"d": 2, "c": 3}], "x": null}});
        let b: Value =
            serde_json::from_str(r#"{"a": {"x": null, "y": [1, {"c": 3, "d": 2}]}, "b": 1}"#)
                .unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(
            canonical(&a),
            r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#
        );
        assert_ne!(canonical(&json!([1, 2])), canonical(&json!([2, 1])));
    }

    fn hit(output: Value) -> Hit {
        Hit {
            output_bytes: output.to_string().len() as u64,
            output: RawValue::from_string(output.to_string()).unwrap(),
            fuel: Some(1000),
            memory_peak: Some(1 << 20),
            ran_for: Duration::from_millis(1),
        }
    }

    fn cache(max_entries: usize, max_bytes: usize, ttl: Duration) -> ResultCache {
        ResultCache::new(
            CacheConfig {
                max_entries,
                max_bytes,
                ttl,
                max_callers: 2,
            },
            None,
        )
        .unwrap()
    }

    #[test]
    fn evicts_by_entries_and_bytes() {
        let cache = cache(2, 1000, Duration::from_secs(60));
        for i in 0..3 {
            cache.put("c", format!("k{i}"), hit(json!(i)));
        }
        assert_eq!(cache.len("c").0, 2);
        assert!(
            cache.get("c", "k0").is_none(),
            "least recently used goes first"
        );
        assert_eq!(cache.get("c", "k2").unwrap().output.get(), "2");

        let cache = self::cache(100, 50, Duration::from_secs(60));
        cache.put("c", "a".into(), hit(json!("x".repeat(30))));
        cache.put("c", "b".into(), hit(json!("y".repeat(30))));
        assert_eq!(cache.len("c").0, 1, "bytes bound the cache too");
        assert!(cache.len("c").1 <= 50);
        cache.put("c", "huge".into(), hit(json!("z".repeat(100))));
        assert!(
            cache.get("c", "huge").is_none(),
            "an entry over the whole budget is not kept"
        );
    }

    #[test]
    fn callers_neither_share_nor_evict_each_others_entries() {
        let cache = cache(1, 1000, Duration::from_secs(60));
        cache.put("alice", "k".into(), hit(json!("alice's")));
        assert!(
            cache.get("bob", "k").is_none(),
            "bob never hits alice's entry"
        );
        cache.put("bob", "other".into(), hit(json!("bob's")));
        assert_eq!(
            cache.get("alice", "k").unwrap().output.get(),
            r#""alice's""#
        );
        cache.put("carol", "k".into(), hit(json!("carol's")));
        assert!(
            cache.get("carol", "k").is_none(),
            "past max_callers a new caller is not cached"
        );
        assert_eq!(
            cache.get("alice", "k").unwrap().output.get(),
            r#""alice's""#
        );
    }

    #[test]
    fn a_replayed_hit_ends_as_the_call_would_under_the_callers_limits() {
        let ok = hit(json!(1)).replay(&Limits::default());
        assert!(matches!(ok.outcome, Outcome::Ok { .. }) && ok.fuel == Some(1000));
        let narrow = |change: fn(&mut Limits)| {
            let mut limits = Limits::default();
            change(&mut limits);
            hit(json!("over nine bytes")).replay(&limits)
        };
        let starved = narrow(|l| l.fuel = 400);
        assert_eq!(
            (starved.outcome.kind(), starved.fuel),
            ("out-of-fuel", Some(400))
        );
        assert_eq!(
            narrow(|l| l.max_output_bytes = 9).outcome.kind(),
            "output-too-large"
        );
        assert_eq!(
            narrow(|l| l.memory_bytes = 1000).outcome.kind(),
            "memory-limit"
        );
        assert_eq!(
            narrow(|l| l.timeout = Duration::ZERO).outcome.kind(),
            "timeout"
        );
        // A list that a narrower memory cap could not hold parsed.
        let zeros = hit(Value::Array(vec![json!(0); 100_000]));
        let small = Limits {
            memory_bytes: 1 << 20,
            ..Limits::default()
        };
        assert_eq!(
            zeros.clone().replay(&small).outcome.kind(),
            "output-too-large"
        );
        assert_eq!(zeros.replay(&Limits::default()).outcome.kind(), "ok");
    }

    #[test]
    fn a_replayed_hit_answers_what_the_guest_wrote() {
        let text = r#"{"b": [1, 2.5, "x"], "a": {"c": null}}"#;
        let mut stored = hit(json!(0));
        stored.output = RawValue::from_string(text.to_string()).unwrap();
        let replay = stored.replay(&Limits::default());
        let Outcome::Ok { output } = replay.outcome else {
            panic!("a hit under its own limits answers: {:?}", replay.outcome);
        };
        assert_eq!(output, serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn a_shared_entry_whose_output_does_not_parse_is_a_miss() {
        let entry = |output: &str| {
            format!(
                r#"{{"output":{output},"output_bytes":1,"fuel":null,"memory_peak":null,"ran_for":{{"secs":0,"nanos":1}}}}"#
            )
        };
        let limits = Limits::default();
        let hit =
            read_shared(entry(r#"{"a": [1]}"#).as_bytes(), &limits).expect("a good entry is read");
        assert_eq!(hit.output.get(), r#"{"a": [1]}"#);
        // Raw text is read without a depth limit; the parser has one.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(read_shared(entry(&deep).as_bytes(), &limits).is_none());
        assert!(read_shared(b"{\"output\": not json", &limits).is_none());
        // Too large to parse under a small cap: read unparsed, refused on replay.
        let small = Limits {
            memory_bytes: 1 << 20,
            ..Limits::default()
        };
        let large = format!(
            "[{}{}0{}]",
            "[".repeat(200),
            "0,".repeat(100_000),
            "]".repeat(200)
        );
        let hit = read_shared(entry(&large).as_bytes(), &small).expect("read unparsed");
        assert_eq!(hit.replay(&small).outcome.kind(), "output-too-large");
    }

    #[test]
    fn entries_expire() {
        let cache = cache(10, 1000, Duration::ZERO);
        cache.put("c", "a".into(), hit(json!(1)));
        assert!(cache.get("c", "a").is_none());
        assert_eq!(cache.len("c"), (0, 0));
    }

    #[test]
    fn zero_entries_turns_it_off() {
        assert!(
            ResultCache::new(
                CacheConfig {
                    max_entries: 0,
                    ..CacheConfig::default()
                },
                None
            )
            .is_none()
        );
    }
}
