//! When a failed call is tried again, and after how long.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::outcome::{Outcome, ToolErrorKind};
use crate::policy::Retry;

/// True when `outcome` is worth another attempt under `rules`: a `retryable`
/// tool error, or a trap when the policy calls traps transient, and only for
/// idempotent tools unless the policy allows others.
pub(crate) fn worth_retrying(outcome: &Outcome, rules: &Retry, idempotent: bool) -> bool {
    if !idempotent && !rules.non_idempotent {
        return false;
    }
    match outcome {
        Outcome::ToolError {
            error: ToolErrorKind::Retryable,
            ..
        } => true,
        Outcome::Trap { .. } => rules.on_trap,
        _ => false,
    }
}

/// The wait before attempt `attempt` (2 for the first retry): exponential,
/// capped, with "equal jitter" (half fixed, half random) so that many calls
/// failing together do not retry together.
pub(crate) fn backoff(rules: &Retry, attempt: u32) -> Duration {
    static SEED: AtomicU64 = AtomicU64::new(0);
    let exponent = attempt.saturating_sub(2).min(20);
    let full = rules
        .backoff
        .saturating_mul(1 << exponent)
        .min(rules.max_backoff);
    let half = full / 2;
    let random = RandomState::new().hash_one(SEED.fetch_add(1, Ordering::Relaxed));
    let jitter = half.mul_f64((random % 1_000_000) as f64 / 1_000_000.0);
    half + jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Retry {
        Retry {
            attempts: 5,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            on_trap: false,
            non_idempotent: false,
        }
    }

    fn retryable() -> Outcome {
        Outcome::ToolError {
            error: ToolErrorKind::Retryable,
            message: String::new(),
        }
    }

    #[test]
    fn only_transient_failures_of_idempotent_tools() {
        let r = rules();
        assert!(worth_retrying(&retryable(), &r, true));
        assert!(!worth_retrying(&retryable(), &r, false), "not idempotent");
        assert!(worth_retrying(
            &retryable(),
            &Retry {
                non_idempotent: true,
                ..r.clone()
            },
            false
        ));
        let failed = Outcome::ToolError {
            error: ToolErrorKind::Failed,
            message: String::new(),
        };
        assert!(!worth_retrying(&failed, &r, true));
        let trap = Outcome::Trap {
            message: String::new(),
        };
        assert!(!worth_retrying(&trap, &r, true));
        assert!(worth_retrying(
            &trap,
            &Retry {
                on_trap: true,
                ..r.clone()
            },
            true
        ));
        assert!(!worth_retrying(
            &Outcome::Timeout {
                message: String::new()
            },
            &r,
            true
        ));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let r = rules();
        for _ in 0..100 {
            let first = backoff(&r, 2);
            assert!(
                first >= Duration::from_millis(50) && first <= Duration::from_millis(100),
                "{first:?}"
            );
            let third = backoff(&r, 4);
            assert!(
                third >= Duration::from_millis(150) && third <= Duration::from_millis(300),
                "{third:?}"
            );
            assert!(backoff(&r, 40) <= Duration::from_millis(300));
        }
    }
}
