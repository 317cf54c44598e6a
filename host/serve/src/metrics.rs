//! Prometheus metrics for `/metrics`, in a registry owned by one server (no
//! global recorder, so several servers can share a process, as tests do).
//! Per-call series are updated as calls finish; the executor's and the
//! reloader's counters are read at scrape time.
//!
//! No label value comes from a request: a call of a name no loaded tool has
//! is counted under the tool [`UNKNOWN_TOOL`], so the series are bounded by
//! the configuration (tenants × tools loaded × outcomes), not by traffic.
//! The values that do come from the configuration or a component (tenant
//! and tool names) are escaped as the text format asks ([`Escaped`]):
//! prometheus-client writes label values as they are.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use toolhost_runtime::tenancy::Observer;
use toolhost_runtime::{CallRecord, Executor, Outcome, ReloadCounters};

/// The tool label of calls of a name no loaded tool has.
pub(crate) const UNKNOWN_TOOL: &str = "(unknown)";

/// A label value written with the text format's escapes: `\\`, `\"` and
/// `\n` for a backslash, a double quote and a line feed.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Escaped(String);

impl EncodeLabelValue for Escaped {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        use std::fmt::Write;
        let mut rest = self.0.as_str();
        while let Some(at) = rest.find(['\\', '"', '\n']) {
            encoder.write_str(&rest[..at])?;
            encoder.write_str(match rest.as_bytes()[at] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            })?;
            rest = &rest[at + 1..];
        }
        encoder.write_str(rest)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    tool: Escaped,
    tenant: Escaped,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    tool: Escaped,
    tenant: Escaped,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    tenant: Escaped,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    node: Escaped,
}

type HistogramFamily = Family<ToolLabels, Histogram, fn() -> Histogram>;

/// The server's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    executor: Arc<Executor>,
    calls: Family<CallLabels, Counter>,
    latency: HistogramFamily,
    fuel: Family<ToolLabels, Counter>,
    rejected: Family<RejectLabels, Counter>,
    pub(crate) connections: Connections,
}

/// The HTTP server's connections, kept by its accept loop.
#[derive(Clone, Default)]
pub(crate) struct Connections {
    /// Open now, shed ones still closing included.
    pub(crate) open: Gauge,
    /// The most it holds open at once (`max_connections` within the
    /// open-file limit).
    pub(crate) max: Gauge,
    /// Closed at the cap to make room for a new one.
    pub(crate) shed: Counter,
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~13 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
}

impl Metrics {
    pub(crate) fn new(executor: Arc<Executor>, reload: Option<Arc<ReloadCounters>>) -> Self {
        let mut registry = Registry::with_prefix("toolhost");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "calls",
            "Calls finished, by tool, tenant and outcome",
            calls.clone(),
        );
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "call_duration_seconds",
            "Call latency from admission to outcome",
            latency.clone(),
        );
        let fuel = Family::<ToolLabels, Counter>::default();
        registry.register(
            "fuel_used",
            "Fuel burned by guests, by tool and tenant",
            fuel.clone(),
        );
        let rejected = Family::<RejectLabels, Counter>::default();
        registry.register(
            "rejected",
            "Requests refused by a tenant quota (rate, concurrency, fuel, reading: bodies waited for)",
            rejected.clone(),
        );
        let connections = Connections::default();
        registry.register(
            "connections",
            "HTTP connections open",
            connections.open.clone(),
        );
        registry.register(
            "connections_max",
            "HTTP connections held open at most (max_connections within the open-file limit)",
            connections.max.clone(),
        );
        registry.register(
            "connections_shed",
            "HTTP connections without a request in flight closed at the cap to make room",
            connections.shed.clone(),
        );
        if let Some(shared) = executor.shared() {
            let node = Family::<NodeLabels, Gauge>::default();
            registry.register(
                "node_info",
                "This node's name (its other series are this node's own: reloads, cache, calls)",
                node.clone(),
            );
            node.get_or_create(&NodeLabels {
                node: Escaped(shared.config().node.clone()),
            })
            .set(1);
        }
        let initial = executor.catalog().stats();
        registry.register_collector(Box::new(Live {
            executor: executor.clone(),
            reload,
            initial_cache_hits: initial.cache_hits as u64,
            initial_compiled: initial.compiled as u64,
        }));
        Self {
            registry,
            executor,
            calls,
            latency,
            fuel,
            rejected,
            connections,
        }
    }

    /// Counts a finished call, under [`UNKNOWN_TOOL`] when no loaded tool
    /// has its name.
    pub(crate) fn record(&self, tenant: &str, record: &CallRecord) {
        let known = !matches!(record.outcome, Outcome::UnknownTool { .. })
            && self.executor.catalog().tool(&record.tool).is_some();
        let tool = if known { &record.tool } else { UNKNOWN_TOOL };
        let labels = ToolLabels {
            tool: Escaped(tool.to_string()),
            tenant: Escaped(tenant.to_string()),
        };
        self.latency
            .get_or_create(&labels)
            .observe(record.elapsed_ms / 1e3);
        if let Some(fuel) = record.fuel_used {
            self.fuel.get_or_create(&labels).inc_by(fuel);
        }
        let labels = CallLabels {
            tool: labels.tool,
            tenant: labels.tenant,
            outcome: record.outcome.kind(),
        };
        self.calls.get_or_create(&labels).inc();
    }

    /// Counts a request refused by a tenant quota.
    pub(crate) fn rejected(&self, tenant: &str, reason: &'static str) {
        self.rejected
            .get_or_create(&RejectLabels {
                tenant: Escaped(tenant.to_string()),
                reason,
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "could not encode metrics");
        }
        text
    }
}

/// Values read at scrape time.
#[derive(Debug)]
struct Live {
    executor: Arc<Executor>,
    reload: Option<Arc<ReloadCounters>>,
    initial_cache_hits: u64,
    initial_compiled: u64,
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> std::fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let e = &mut encoder;
        let stats = self.executor.stats();
        let catalog = self.executor.catalog();
        let load = catalog.stats();
        gauge(e, "in_flight", "Calls running now", stats.in_flight as i64)?;
        gauge(
            e,
            "queue_depth",
            "Calls waiting for a slot or a rate limit now",
            stats.queued as i64,
        )?;
        gauge(
            e,
            "memory_reserved_bytes",
            "Memory reserved by the calls in flight (their caps plus the per-instance overhead) and kept by their answers until sent",
            i64::try_from(stats.memory_reserved_bytes).unwrap_or(i64::MAX),
        )?;
        if let Some(budget) = stats.memory_budget_bytes {
            gauge(
                e,
                "memory_budget_bytes",
                "Memory the calls in flight may reserve together",
                i64::try_from(budget).unwrap_or(i64::MAX),
            )?;
        }
        counter(
            e,
            "executor_rate_limited",
            "Calls refused by a tool's rate limit, a cap or a full queue",
            stats.rate_limited,
        )?;
        counter(
            e,
            "cache_hits",
            "Calls answered from the result cache",
            stats.cache_hits,
        )?;
        counter(
            e,
            "cache_misses",
            "Cacheable calls that missed the result cache",
            stats.cache_misses,
        )?;
        counter(e, "retries", "Retries of transient failures", stats.retries)?;
        gauge(
            e,
            "tools",
            "Tools published now",
            catalog.tools().count() as i64,
        )?;
        gauge(
            e,
            "components_failed",
            "Components refused in the current catalog",
            load.failed as i64,
        )?;
        gauge(
            e,
            "components_untrusted",
            "Component versions refused by the lock file or their signature in the current catalog",
            catalog
                .failures()
                .iter()
                .filter(|f| matches!(f, toolhost_runtime::LoadError::Trust(_)))
                .count() as i64,
        )?;
        if let Some(shared) = self.executor.shared() {
            let store = shared.stats();
            gauge(
                e,
                "shared_store_up",
                "1 while the shared store (Redis) answers, 0 while it is down",
                i64::from(store.up),
            )?;
            counter(
                e,
                "shared_store_requests",
                "Requests sent to the shared store",
                store.requests,
            )?;
            counter(
                e,
                "shared_store_failures",
                "Requests to the shared store that failed or timed out",
                store.failures,
            )?;
            counter(
                e,
                "shared_quota_degraded",
                "Quota decisions made without the shared store (refused, or held locally)",
                store.degraded,
            )?;
        }
        let reload = self
            .reload
            .as_ref()
            .map(|r| r.snapshot())
            .unwrap_or_default();
        counter(
            e,
            "compile_cache_hits",
            "Components taken from the compile cache (first load and reloads)",
            self.initial_cache_hits + reload.cache_hits,
        )?;
        counter(
            e,
            "compiled",
            "Components compiled because the cache lacked them",
            self.initial_compiled + reload.compiled,
        )?;
        counter(
            e,
            "reloads",
            "Catalogs swapped in by hot reload",
            reload.reloads,
        )?;
        counter(
            e,
            "reload_rejected",
            "Component versions refused during hot reloads",
            reload.rejected,
        )?;
        Ok(())
    }
}

impl Observer for Metrics {
    fn refused(&self, tenant: &str, reason: &'static str) {
        self.rejected(tenant, reason);
    }

    fn settled(&self, tenant: &str, record: &CallRecord) {
        self.record(tenant, record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let family = Family::<ToolLabels, Counter>::default();
        let mut registry = Registry::default();
        registry.register("calls", "Calls", family.clone());
        family
            .get_or_create(&ToolLabels {
                tool: Escaped("a\\b\"c\nd} 1".into()),
                tenant: Escaped("plain".into()),
            })
            .inc();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(r#"calls_total{tool="a\\b\"c\nd} 1",tenant="plain"} 1"#),
            "{text}"
        );
        assert_eq!(text.lines().filter(|l| l.starts_with("calls")).count(), 1);
    }
}
