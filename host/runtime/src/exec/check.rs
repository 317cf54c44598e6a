//! Checking a call's input or a tool's output against its schema, bounded
//! like work inside the guest.
//!
//! The catalog measured every schema at load ([`CheckedSchema::work_per_byte`]),
//! so the work of one check is bounded by the value's length times that
//! figure before it starts. A value whose bound is over [`MAX_WORK`] is
//! refused unchecked. A check small enough to cost less than handing it to
//! another thread ([`INLINE_WORK`]) runs in place; any other runs on a
//! blocking thread, at most one per core at once, and the call waits for it
//! only until its deadline: then the call ends `timeout` and the host moves
//! on, while the abandoned check finishes within its bound and frees its slot.
//! So no schema and no input can stall the async workers, `/healthz` or
//! another call.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::catalog::CheckedSchema;

/// The most keyword checks one validation may make (measured: well under a
/// second for the costliest schema the catalog accepts).
pub(crate) const MAX_WORK: u64 = 1 << 26;
/// Checks bounded by this much work run in place, on the calling task, if
/// their errors are cheap too (see [`FEW_ERRORS_WORK`]).
const INLINE_WORK: u64 = 1 << 14;
/// Up to this many checks per value, errors are cheap enough to report
/// several and to build on the calling task. Measured: an error costs about
/// 10 µs per check it reports on, against 5 ns per check for `is_valid`, and
/// `iter_errors` builds the errors of every array item before the first.
/// The most errors reported, and the longest text kept of each.
const MAX_ERRORS: usize = 5;
const FEW_ERRORS_WORK: u64 = 64;
const MAX_ERROR_BYTES: usize = 400;

/// Why a value was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// It does not match: up to [`MAX_ERRORS`] errors, each naming its place.
    Invalid(Vec<String>),
    /// It is too long to check against this schema.
    TooLarge {
        /// Its length.
        bytes: usize,
        /// The longest value this schema is checked on.
        max_bytes: u64,
    },
    /// The deadline passed before the check finished.
    Timeout,
    /// The check itself failed (a bug, not bad input).
    Failed(String),
}

/// The blocking threads schema checks may use.
#[derive(Debug)]
pub(crate) struct SchemaChecks {
    slots: Arc<Semaphore>,
}

impl SchemaChecks {
    /// At most `threads` checks run at once off the async workers.
    pub(crate) fn new(threads: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(threads.max(1))),
        }
    }

    /// Checks `value` (whose JSON text is `bytes` long) against `schema`
    /// before `deadline`; gives the value back when it matches.
    pub(crate) async fn check(
        &self,
        schema: &Arc<CheckedSchema>,
        value: Value,
        bytes: usize,
        deadline: Instant,
    ) -> Result<Value, Refusal> {
        let per_byte = schema.work_per_byte();
        let work = (bytes.max(1) as u64).saturating_mul(per_byte);
        if work > MAX_WORK {
            return Err(Refusal::TooLarge {
                bytes,
                max_bytes: MAX_WORK / per_byte,
            });
        }
        if work <= INLINE_WORK && per_byte <= FEW_ERRORS_WORK {
            return validate(schema, value);
        }
        if Instant::now() >= deadline {
            return Err(Refusal::Timeout);
        }
        let slot = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| Refusal::Timeout)?
            .map_err(|e| Refusal::Failed(e.to_string()))?;
        let schema = schema.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            validate(&schema, value)
        });
        match tokio::time::timeout_at(deadline, task).await {
            Err(_) => Err(Refusal::Timeout),
            Ok(Err(join)) => Err(Refusal::Failed(format!("the check stopped: {join}"))),
            Ok(Ok(result)) => result,
        }
    }
}

/// `is_valid` first: it stops at the first failure and builds nothing. Only
/// then the error, which is far costlier per check (an `anyOf` error holds
/// the errors of every branch), so only the first is built for a value
/// whose checks may be many.
fn validate(schema: &CheckedSchema, value: Value) -> Result<Value, Refusal> {
    if schema.validator.is_valid(&value) {
        return Ok(value);
    }
    let describe = |error: jsonschema::ValidationError<'_>| {
        let path = error.instance_path().to_string();
        let text = shorten(error.to_string());
        if path.is_empty() {
            text
        } else {
            format!("at `{path}`: {text}")
        }
    };
    let errors = if schema.work_per_byte() <= FEW_ERRORS_WORK {
        schema
            .validator
            .iter_errors(&value)
            .take(MAX_ERRORS)
            .map(describe)
            .collect()
    } else {
        schema
            .validator
            .validate(&value)
            .err()
            .map(describe)
            .into_iter()
            .collect()
    };
    Err(Refusal::Invalid(errors))
}

/// `text` cut to [`MAX_ERROR_BYTES`] at a character boundary: an error
/// quotes the value, which may be the whole input.
fn shorten(mut text: String) -> String {
    if text.len() > MAX_ERROR_BYTES {
        let mut end = MAX_ERROR_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(value: Value) -> Arc<CheckedSchema> {
        Arc::new(CheckedSchema::from_value(&value).unwrap())
    }

    fn later() -> Instant {
        Instant::now() + std::time::Duration::from_secs(60)
    }

    #[tokio::test]
    async fn matching_values_come_back_and_others_name_their_errors() {
        let checks = SchemaChecks::new(1);
        let s = schema(json!({"type": "object", "properties": {"a": {"type": "integer"}}}));
        let ok = checks.check(&s, json!({"a": 1}), 7, later()).await;
        assert_eq!(ok, Ok(json!({"a": 1})));
        let Err(Refusal::Invalid(errors)) = checks.check(&s, json!({"a": "x"}), 9, later()).await
        else {
            panic!("not refused");
        };
        assert!(errors[0].starts_with("at `/a`"), "{errors:?}");
    }

    #[tokio::test]
    async fn long_values_are_checked_off_the_task_and_huge_ones_not_at_all() {
        let checks = SchemaChecks::new(1);
        let s = schema(
            json!({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}}}),
        );
        let items: Vec<Value> = (0..20_000).map(Value::from).collect();
        let value = json!({"a": items});
        let bytes = value.to_string().len();
        assert!(bytes as u64 * s.work_per_byte() > INLINE_WORK);
        assert_eq!(
            checks.check(&s, value.clone(), bytes, later()).await,
            Ok(value)
        );
        let refused = checks.check(&s, json!({}), usize::MAX / 2, later()).await;
        assert!(
            matches!(refused, Err(Refusal::TooLarge { .. })),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn a_passed_deadline_ends_the_wait() {
        let checks = SchemaChecks::new(1);
        let s = schema(json!({"type": "object"}));
        let value = json!({"a": "x".repeat(100_000)});
        let refused = checks.check(&s, value, 100_010, Instant::now()).await;
        assert_eq!(refused, Err(Refusal::Timeout));
    }

    #[test]
    fn long_errors_are_cut_at_a_character() {
        let text = shorten("é".repeat(1000));
        assert!(text.len() <= MAX_ERROR_BYTES + 3);
        assert!(text.ends_with('…'));
    }
}
