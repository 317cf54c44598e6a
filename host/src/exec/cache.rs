//! The result cache for pure tools: bounded by entries and bytes, with a TTL.
//!
//! Only tools the catalog calls pure are cached: declared read-only and
//! idempotent, and granted nothing that reaches outside the sandbox. The key
//! is the component's content hash, the tool, and the input as canonical JSON
//! (keys sorted), so the same question in another key order is a hit.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;
use serde_json::Value;

/// How the result cache is bounded. `max_entries = 0` turns it off.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Entries kept at most.
    pub max_entries: usize,
    /// Bytes of output (as JSON text) kept at most.
    pub max_bytes: usize,
    /// How long an entry stays valid.
    pub ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_bytes: 64 << 20,
            ttl: Duration::from_secs(300),
        }
    }
}

struct Entry {
    output: Value,
    bytes: usize,
    stored: Instant,
}

struct Inner {
    entries: LruCache<String, Entry>,
    bytes: usize,
}

pub(crate) struct ResultCache {
    inner: Mutex<Inner>,
    config: CacheConfig,
}

impl ResultCache {
    pub(crate) fn new(config: CacheConfig) -> Option<Self> {
        (config.max_entries > 0 && config.max_bytes > 0).then(|| Self {
            inner: Mutex::new(Inner {
                entries: LruCache::unbounded(),
                bytes: 0,
            }),
            config,
        })
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

    pub(crate) fn get(&self, key: &str) -> Option<Value> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = inner
            .entries
            .get(key)
            .map(|entry| entry.stored.elapsed() < self.config.ttl)?;
        if fresh {
            return inner.entries.get(key).map(|entry| entry.output.clone());
        }
        if let Some(stale) = inner.entries.pop(key) {
            inner.bytes -= stale.bytes;
        }
        None
    }

    pub(crate) fn put(&self, key: String, output: &Value) {
        let bytes = key.len() + output.to_string().len();
        if bytes > self.config.max_bytes {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = inner.entries.put(
            key,
            Entry {
                output: output.clone(),
                bytes,
                stored: Instant::now(),
            },
        ) {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
        while inner.entries.len() > self.config.max_entries || inner.bytes > self.config.max_bytes {
            match inner.entries.pop_lru() {
                Some((_, evicted)) => inner.bytes -= evicted.bytes,
                None => break,
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (inner.entries.len(), inner.bytes)
    }
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

    #[test]
    fn evicts_by_entries_and_bytes() {
        let cache = ResultCache::new(CacheConfig {
            max_entries: 2,
            max_bytes: 1000,
            ttl: Duration::from_secs(60),
        })
        .unwrap();
        for i in 0..3 {
            cache.put(format!("k{i}"), &json!(i));
        }
        assert_eq!(cache.len().0, 2);
        assert!(cache.get("k0").is_none(), "least recently used goes first");
        assert_eq!(cache.get("k2"), Some(json!(2)));

        let cache = ResultCache::new(CacheConfig {
            max_entries: 100,
            max_bytes: 50,
            ttl: Duration::from_secs(60),
        })
        .unwrap();
        cache.put("a".into(), &json!("x".repeat(30)));
        cache.put("b".into(), &json!("y".repeat(30)));
        assert_eq!(cache.len().0, 1, "bytes bound the cache too");
        assert!(cache.len().1 <= 50);
        cache.put("huge".into(), &json!("z".repeat(100)));
        assert!(
            cache.get("huge").is_none(),
            "an entry over the whole budget is not kept"
        );
    }

    #[test]
    fn entries_expire() {
        let cache = ResultCache::new(CacheConfig {
            max_entries: 10,
            max_bytes: 1000,
            ttl: Duration::ZERO,
        })
        .unwrap();
        cache.put("a".into(), &json!(1));
        assert!(cache.get("a").is_none());
        assert_eq!(cache.len(), (0, 0));
    }

    #[test]
    fn zero_entries_turns_it_off() {
        assert!(
            ResultCache::new(CacheConfig {
                max_entries: 0,
                ..CacheConfig::default()
            })
            .is_none()
        );
    }
}
