//! Running calls: look the tool up, check the input against its schema
//! before any instance exists, take a slot of the instance pool, run the
//! call in its sandbox and settle one [`CallRecord`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, ToolEntry};
use crate::outcome::{CallRecord, Outcome};
use crate::policy::Limits;
use crate::sandbox::{self, CallInfo, GuestEvents};

/// Per-call overrides and hooks. The defaults change nothing.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// Replaces the policy's timeout.
    pub timeout: Option<Duration>,
    /// Replaces the policy's fuel budget.
    pub fuel: Option<u64>,
    /// Replaces the policy's memory cap, in MiB (at most the engine's ceiling).
    pub memory_mb: Option<u64>,
    /// Cancelling this token stops the call.
    pub cancel: Option<CancellationToken>,
    /// Where the guest's log lines and progress go.
    pub events: Option<GuestEvents>,
}

impl CallOptions {
    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the fuel budget.
    pub fn fuel(mut self, fuel: u64) -> Self {
        self.fuel = Some(fuel);
        self
    }

    /// Sets the memory cap in MiB.
    pub fn memory_mb(mut self, memory_mb: u64) -> Self {
        self.memory_mb = Some(memory_mb);
        self
    }

    /// Lets `cancel` stop the call.
    pub fn cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = Some(cancel);
        self
    }
}

/// Runs calls against a catalog. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Executor {
    catalog: Arc<Catalog>,
    slots: Arc<Semaphore>,
    next_id: AtomicU64,
    id_prefix: u32,
}

impl Executor {
    /// An executor over `catalog`, allowing as many calls in flight as the
    /// engine's instance pool holds.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        let slots = Arc::new(Semaphore::new(
            catalog.engine().config().max_instances as usize,
        ));
        let id_prefix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() ^ std::process::id().rotate_left(16));
        Self {
            catalog,
            slots,
            next_id: AtomicU64::new(1),
            id_prefix,
        }
    }

    /// The catalog this executor runs.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Calls holding an instance slot right now.
    pub fn in_flight(&self) -> usize {
        self.catalog.engine().config().max_instances as usize - self.slots.available_permits()
    }

    fn call_id(&self) -> String {
        format!(
            "{:08x}-{:06x}",
            self.id_prefix,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Runs one call of `tool` with `input`, JSON text of an object.
    pub async fn call(&self, tool: &str, input: &str, options: CallOptions) -> CallRecord {
        let start = Instant::now();
        let call_id = self.call_id();
        let mut fuel_used = None;
        let mut memory_peak = None;
        let outcome = match self.prepare(tool, input, &options) {
            Err(outcome) => outcome,
            Ok((entry, limits)) => {
                let run = self.run(entry, &limits, &call_id, input, options).await;
                fuel_used = run.fuel_used;
                memory_peak = run.memory_peak;
                run.result
                    .map_or_else(|outcome| outcome, |output| Outcome::Ok { output })
            }
        };
        let mut record = CallRecord::new(call_id, tool.to_string(), outcome, start.elapsed());
        record.fuel_used = fuel_used;
        record.memory_peak_bytes = memory_peak;
        record
    }

    /// Runs one call with `input` as a JSON value.
    pub async fn call_value(&self, tool: &str, input: &Value, options: CallOptions) -> CallRecord {
        self.call(tool, &input.to_string(), options).await
    }

    /// Everything checked before any instance exists.
    fn prepare(
        &self,
        tool: &str,
        input: &str,
        options: &CallOptions,
    ) -> Result<(&ToolEntry, Limits), Outcome> {
        let Some(entry) = self.catalog.entry(tool) else {
            let suggestions = self.catalog.suggest(tool);
            let message = if suggestions.is_empty() {
                format!("no tool named `{tool}` is loaded")
            } else {
                format!(
                    "no tool named `{tool}` is loaded; did you mean {}?",
                    quote_list(&suggestions)
                )
            };
            return Err(Outcome::UnknownTool { message });
        };
        let value: Value = serde_json::from_str(input).map_err(|e| Outcome::InvalidInput {
            message: format!("the input is not valid JSON: {e}"),
        })?;
        if !value.is_object() {
            return Err(Outcome::InvalidInput {
                message: format!("the input must be a JSON object, not {}", kind_of(&value)),
            });
        }
        let errors: Vec<String> = entry
            .validator
            .iter_errors(&value)
            .take(5)
            .map(|error| {
                let path = error.instance_path().to_string();
                if path.is_empty() {
                    error.to_string()
                } else {
                    format!("at `{path}`: {error}")
                }
            })
            .collect();
        if !errors.is_empty() {
            return Err(Outcome::InvalidInput {
                message: format!(
                    "the input does not match the schema of `{tool}`: {}",
                    errors.join("; ")
                ),
            });
        }
        let mut limits = entry.component.limits.clone();
        if let Some(timeout) = options.timeout {
            limits.timeout = timeout;
        }
        if let Some(fuel) = options.fuel {
            limits.fuel = fuel;
        }
        if let Some(mb) = options.memory_mb {
            let max = self.catalog.engine().config().max_memory_mb;
            if !(1..=max).contains(&mb) {
                return Err(Outcome::InvalidInput {
                    message: format!("memory cap must be from 1 to {max} MiB, got {mb}"),
                });
            }
            limits.memory_bytes = mb << 20;
        }
        Ok((entry, limits))
    }

    async fn run(
        &self,
        entry: &ToolEntry,
        limits: &Limits,
        call_id: &str,
        input: &str,
        options: CallOptions,
    ) -> sandbox::Run<Value> {
        let not_run = |result| sandbox::Run {
            result: Err(result),
            fuel_used: None,
            memory_peak: None,
        };
        let cancel = options.cancel;
        let permit = match (self.slots.try_acquire(), &cancel) {
            (Ok(permit), _) => Ok(permit),
            (Err(_), None) => self.slots.acquire().await,
            (Err(_), Some(cancel)) => tokio::select! {
                permit = self.slots.acquire() => permit,
                () = cancel.cancelled() => return not_run(Outcome::Cancelled { message: "cancelled while waiting for a free instance slot".into() }),
            },
        };
        let Ok(_permit) = permit else {
            return not_run(Outcome::Trap {
                message: "the executor is shutting down".into(),
            });
        };
        let call = CallInfo {
            call_id: call_id.to_string(),
            tool: entry.name.clone(),
            cancel,
            events: options.events,
        };
        let component = &entry.component;
        let run = sandbox::invoke(
            self.catalog.engine(),
            &component.pre,
            &component.grants,
            limits,
            call,
            &entry.info.tool,
            input,
        )
        .await;
        let result = run.result.and_then(|text| {
            if text.len() as u64 > limits.max_output_bytes {
                return Err(Outcome::OutputTooLarge {
                    message: format!(
                        "the output is {} bytes, over the limit of {} bytes",
                        text.len(),
                        limits.max_output_bytes
                    ),
                });
            }
            serde_json::from_str(&text).map_err(|e| Outcome::Trap {
                message: format!("the tool broke its contract: its output is not valid JSON ({e})"),
            })
        });
        sandbox::Run {
            result,
            fuel_used: run.fuel_used,
            memory_peak: run.memory_peak,
        }
    }
}

fn quote_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
