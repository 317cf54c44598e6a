//! The host's memory budget: how much memory the calls in flight may use
//! together. Admission reserves each call's memory cap plus a fixed
//! per-instance overhead before any instance exists, and the reservation is
//! released when the call's admission is dropped, however the call ended.
//!
//! Without it nothing bounds the sum: a thousand calls of a tool that
//! fills its 32 MiB cap would ask the host for 32 GiB at once.

use std::path::Path;
use std::sync::Arc;

use super::fair::FairPool;
use crate::outcome::Outcome;

const MIB: u64 = 1 << 20;

/// Host memory one call's instance may use besides its linear memory, in
/// MiB, reserved with its memory cap. The wasm stack runs on the call's
/// fiber and may fill it up to the engine's `max_wasm_stack` (1 MiB); the
/// store, its tables, stdout/stderr captures and the host's buffers held
/// 0.07 MiB per call in flight for a Rust guest (`toolhost bench
/// --languages`), under 1 MiB for the others. Measured with 1,000 bombs
/// through `serve`, see the README.
pub const INSTANCE_OVERHEAD_MB: u64 = 2;

/// Parses of JSON that take up to this much (as
/// [`parsed_json_size`](crate::parsed_json_size) counts) hold nothing from
/// the budget: they are part of what a connection costs, as its buffers are.
const FREE_PARSE_BYTES: usize = 1 << 20;

/// What parsing `json` must hold from the host's memory budget before it
/// starts, in bytes: what it would take parsed
/// ([`parsed_json_size`](crate::parsed_json_size), one pass; text of 1 MiB
/// can make a tree of 16 MiB), or `None` when that is at most 1 MiB.
pub fn parse_hold_bytes(json: &[u8]) -> Option<u64> {
    let parsed = crate::parsed_json_size(json);
    (parsed > FREE_PARSE_BYTES).then_some(parsed as u64)
}

/// Used when the machine's memory cannot be read (not Linux, no `/proc`).
const FALLBACK_BUDGET_MB: u64 = 4096;

/// The default memory budget: half of the machine's memory, or of the
/// process's cgroup memory limit when that is lower, in MiB. 4096 MiB where
/// neither can be read.
pub fn default_memory_budget_mb() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total(&text));
    let limit = cgroup_limit();
    match (total, limit) {
        (Some(total), Some(limit)) => total.min(limit) / MIB / 2,
        (Some(bytes), None) | (None, Some(bytes)) => bytes / MIB / 2,
        (None, None) => FALLBACK_BUDGET_MB,
    }
    .max(1)
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The memory limit of this process's cgroup (v2 `memory.max`, or v1
/// `memory.limit_in_bytes`), in bytes; `None` when unlimited or unreadable.
fn cgroup_limit() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut candidates = Vec::new();
    for line in own.lines() {
        // v2: `0::/path`; v1: `N:memory:/path`.
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        let path = path.unwrap_or("/").trim_start_matches('/');
        match controllers {
            Some("") => candidates.push(Path::new("/sys/fs/cgroup").join(path).join("memory.max")),
            Some(c) if c.split(',').any(|c| c == "memory") => candidates.push(
                Path::new("/sys/fs/cgroup/memory")
                    .join(path)
                    .join("memory.limit_in_bytes"),
            ),
            _ => {}
        }
    }
    candidates.push("/sys/fs/cgroup/memory.max".into());
    candidates.push("/sys/fs/cgroup/memory/memory.limit_in_bytes".into());
    candidates
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .filter_map(|text| parse_limit(&text))
        .min()
}

/// A cgroup limit file's value; `max` and v1's "unlimited" (a page-rounded
/// `i64::MAX`) are no limit.
fn parse_limit(text: &str) -> Option<u64> {
    let bytes: u64 = text.trim().parse().ok()?;
    (bytes < 1 << 60).then_some(bytes)
}

/// The MiB a call with a linear memory cap of `memory_bytes` reserves.
pub(crate) fn cost_mb(memory_bytes: u64) -> u64 {
    memory_bytes.div_ceil(MIB) + INSTANCE_OVERHEAD_MB
}

/// The budget as a pool whose permits are MiB, shared fairly between callers.
pub(crate) struct MemoryBudget {
    pub(crate) slots: Arc<FairPool>,
    total_mb: u64,
}

impl MemoryBudget {
    pub(crate) fn new(total_mb: u64) -> Self {
        Self {
            slots: FairPool::new(total_mb),
            total_mb,
        }
    }

    pub(crate) fn total_bytes(&self) -> u64 {
        self.total_mb * MIB
    }

    pub(crate) fn reserved_bytes(&self) -> u64 {
        (self.total_mb - self.slots.available()) * MIB
    }

    pub(crate) fn peak_bytes(&self) -> u64 {
        self.slots.peak() * MIB
    }

    /// The permits a call with `memory_bytes` of linear memory needs, or the
    /// outcome that refuses it when it could never fit.
    pub(crate) fn permits_for(&self, memory_bytes: u64) -> Result<u64, Outcome> {
        let cost = cost_mb(memory_bytes);
        if cost > self.total_mb {
            return Err(Outcome::MemoryLimit {
                message: format!(
                    "the call's memory cap of {} MiB (plus {INSTANCE_OVERHEAD_MB} MiB for its \
                     instance) is more than the host's whole memory budget of {} MiB; no \
                     instance was made. Lower the tool's `memory_mb` or raise the budget",
                    memory_bytes.div_ceil(MIB),
                    self.total_mb
                ),
            });
        }
        Ok(cost)
    }
}

/// Host memory held from the budget for work done for a caller outside any
/// call (a request's body parsed before its calls are known), given back
/// when dropped. Made by [`Executor::hold_memory`](super::Executor::hold_memory).
#[derive(Debug)]
#[must_use = "the memory is given back when the hold is dropped"]
pub struct MemoryHold {
    held: Option<(Arc<FairPool>, Box<str>, u64)>,
}

impl Drop for MemoryHold {
    fn drop(&mut self) {
        if let Some((pool, caller, permits)) = &self.held {
            pool.put_back(caller, *permits);
        }
    }
}

/// Why [`Executor::hold_memory`](super::Executor::hold_memory) held nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HoldRefused {
    /// More than the whole budget: it could never be held.
    #[error(
        "it would take about {needed_mb} MiB of host memory, more than the host's whole memory \
         budget of {budget_mb} MiB"
    )]
    TooLarge {
        /// MiB asked for.
        needed_mb: u64,
        /// The whole budget, in MiB.
        budget_mb: u64,
    },
    /// The calls in flight (or others waiting) hold the budget now.
    #[error(
        "it would take about {needed_mb} MiB of host memory, and the host's memory budget of \
         {budget_mb} MiB is taken by the calls in flight"
    )]
    Busy {
        /// MiB asked for.
        needed_mb: u64,
        /// The whole budget, in MiB.
        budget_mb: u64,
    },
}

impl MemoryBudget {
    /// Holds `bytes` (in whole MiB) for `caller` if they are free now and
    /// no call waits for the budget; never waits.
    pub(crate) fn hold(&self, caller: &str, bytes: u64) -> Result<MemoryHold, HoldRefused> {
        let needed_mb = bytes.div_ceil(MIB).max(1);
        let budget_mb = self.total_mb;
        if needed_mb > budget_mb {
            return Err(HoldRefused::TooLarge {
                needed_mb,
                budget_mb,
            });
        }
        if !self.slots.try_take(caller, needed_mb) {
            return Err(HoldRefused::Busy {
                needed_mb,
                budget_mb,
            });
        }
        Ok(MemoryHold::taken(self.slots.clone(), caller, needed_mb))
    }
}

impl MemoryHold {
    /// A hold of nothing: where there is no budget.
    pub(crate) fn none() -> Self {
        Self { held: None }
    }

    /// A hold of `permits` (MiB) that `caller` took from `pool` already.
    pub(crate) fn taken(pool: Arc<FairPool>, caller: &str, permits: u64) -> Self {
        Self {
            held: Some((pool, caller.into(), permits)),
        }
    }

    /// The MiB held.
    pub fn mib(&self) -> u64 {
        self.held.as_ref().map_or(0, |(_, _, permits)| *permits)
    }
}

/// The MiB an answer of `bytes` keeps of its call's reservation while it
/// waits for its client: whole MiB, at least one for any answer.
pub(crate) fn answer_mb(bytes: u64) -> u64 {
    bytes.div_ceil(MIB).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_is_read_in_kib() {
        let text = "MemTotal:       24683784 kB\nMemFree:        20460540 kB\n";
        assert_eq!(mem_total(text), Some(24_683_784 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn unlimited_cgroups_are_no_limit() {
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("2147483648\n"), Some(2 << 30));
    }

    #[test]
    fn the_default_is_at_most_half_the_machine() {
        let budget = default_memory_budget_mb();
        let total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| mem_total(&t));
        if let Some(total) = total {
            assert!(budget <= total / MIB / 2, "{budget}");
        }
        assert!(budget >= 1);
    }

    #[test]
    fn a_call_reserves_its_cap_and_the_overhead() {
        let budget = MemoryBudget::new(100);
        assert_eq!(budget.permits_for(32 << 20).unwrap(), 34);
        assert_eq!(budget.permits_for((32 << 20) + 1).unwrap(), 35);
        let refused = budget.permits_for(99 << 20).unwrap_err();
        assert!(matches!(refused, Outcome::MemoryLimit { .. }), "{refused}");
    }

    #[test]
    fn only_a_parse_over_a_mib_holds_the_budget() {
        assert_eq!(parse_hold_bytes(b"[0,0,0]"), None);
        let zeros = format!("[{}]", vec!["0"; 100_000].join(","));
        let parsed = crate::parsed_json_size(&zeros) as u64;
        assert!(parsed > FREE_PARSE_BYTES as u64, "{parsed}");
        assert_eq!(parse_hold_bytes(zeros.as_bytes()), Some(parsed));
    }

    #[test]
    fn a_hold_takes_whole_mib_from_the_budget_until_dropped() {
        let budget = MemoryBudget::new(10);
        let hold = budget.hold("a", (3 << 20) + 1).unwrap();
        assert_eq!(budget.reserved_bytes(), 4 << 20);
        let busy = budget.hold("b", 7 << 20).unwrap_err();
        assert_eq!(
            busy,
            HoldRefused::Busy {
                needed_mb: 7,
                budget_mb: 10
            }
        );
        let never = budget.hold("b", 11 << 20).unwrap_err();
        assert!(matches!(never, HoldRefused::TooLarge { .. }), "{never}");
        drop(hold);
        assert_eq!(budget.reserved_bytes(), 0);
        let small = budget.hold("b", 1).unwrap();
        assert_eq!(budget.reserved_bytes(), 1 << 20);
        drop(small);
        assert_eq!(budget.reserved_bytes(), 0);
    }
}
