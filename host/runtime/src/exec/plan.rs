//! Plans: a small DAG of steps. A step's input may reference an earlier
//! step's output with `{"$from": "step", "pointer": "/json/pointer"}` anywhere
//! in it (the pointer is optional: without it the whole output). Independent
//! steps run in parallel, dependents wait, and a failed step makes its
//! dependents `skipped`, naming the step and how it failed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::task::JoinSet;

use super::{CallOptions, Executor};
use crate::outcome::{CallRecord, Outcome};

/// One step of a plan.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Step {
    /// The step's id, unique in the plan.
    pub id: String,
    /// The public tool name.
    pub tool: String,
    /// The input object; may hold `{"$from": …}` references.
    #[serde(default = "empty_object")]
    pub input: Value,
    /// Steps to wait for besides the referenced ones.
    #[serde(default)]
    pub after: Vec<String>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl Step {
    /// A step `id` calling `tool` with `input`.
    pub fn new(id: impl Into<String>, tool: impl Into<String>, input: Value) -> Self {
        Self {
            id: id.into(),
            tool: tool.into(),
            input,
            after: Vec::new(),
        }
    }
}

/// Why a plan was refused before anything ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// Two steps share an id.
    #[error("two steps are named `{0}`")]
    Duplicate(String),
    /// A step refers to a step that does not exist.
    #[error("step `{step}` refers to `{missing}`, which is not a step of this plan")]
    Unknown {
        /// The step.
        step: String,
        /// The missing id.
        missing: String,
    },
    /// The steps depend on each other in a circle.
    #[error("steps depend on each other in a cycle: {0}")]
    Cycle(String),
    /// A `$from` reference is malformed.
    #[error("step `{step}`: {message}")]
    BadReference {
        /// The step.
        step: String,
        /// What is wrong.
        message: String,
    },
}

/// A checked plan, ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    steps: Vec<Step>,
    /// The steps each step waits for.
    deps: Vec<BTreeSet<usize>>,
    /// The steps that wait for each step.
    dependents: Vec<Vec<usize>>,
}

/// The record of every step, in plan order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PlanResult {
    /// `(step id, record)` in the order the plan lists them.
    pub steps: Vec<(String, CallRecord)>,
}

impl PlanResult {
    /// The record of step `id`.
    pub fn step(&self, id: &str) -> Option<&CallRecord> {
        self.steps
            .iter()
            .find(|(step, _)| step == id)
            .map(|(_, record)| record)
    }
}

impl Plan {
    /// Checks the steps: unique ids, known references, no cycles.
    pub fn new(steps: Vec<Step>) -> Result<Self, PlanError> {
        let mut index = HashMap::new();
        for (i, step) in steps.iter().enumerate() {
            if index.insert(step.id.clone(), i).is_some() {
                return Err(PlanError::Duplicate(step.id.clone()));
            }
        }
        let mut deps = Vec::with_capacity(steps.len());
        for step in &steps {
            let mut names = BTreeSet::new();
            references(&step.input, &mut names).map_err(|message| PlanError::BadReference {
                step: step.id.clone(),
                message,
            })?;
            names.extend(step.after.iter().cloned());
            let mut set = BTreeSet::new();
            for name in names {
                let &dep = index.get(&name).ok_or_else(|| PlanError::Unknown {
                    step: step.id.clone(),
                    missing: name.clone(),
                })?;
                set.insert(dep);
            }
            deps.push(set);
        }
        let mut dependents = vec![Vec::new(); steps.len()];
        for (step, deps) in deps.iter().enumerate() {
            for &dep in deps {
                dependents[dep].push(step);
            }
        }
        let plan = Self {
            steps,
            deps,
            dependents,
        };
        plan.check_acyclic()?;
        Ok(plan)
    }

    /// Takes away the steps nothing blocks, then those they unblock, and so
    /// on (without recursion: a chain may be any length). Steps left wait
    /// on each other in a cycle, which is named.
    fn check_acyclic(&self) -> Result<(), PlanError> {
        let mut waiting: Vec<usize> = self.deps.iter().map(BTreeSet::len).collect();
        let mut free: Vec<usize> = (0..waiting.len()).filter(|&i| waiting[i] == 0).collect();
        while let Some(step) = free.pop() {
            for &dependent in &self.dependents[step] {
                waiting[dependent] -= 1;
                if waiting[dependent] == 0 {
                    free.push(dependent);
                }
            }
        }
        let Some(first) = waiting.iter().position(|&n| n > 0) else {
            return Ok(());
        };
        // Every step left waits on another step left: follow them from the
        // first until one comes round again.
        let mut path = vec![first];
        let mut at = HashMap::from([(first, 0)]);
        loop {
            let last = path[path.len() - 1];
            let Some(next) = self.deps[last].iter().copied().find(|&d| waiting[d] > 0) else {
                return Ok(()); // not reached: a step left has a step left to wait on
            };
            if let Some(&start) = at.get(&next) {
                let names: Vec<&str> = path[start..]
                    .iter()
                    .chain([&next])
                    .map(|&p| self.steps[p].id.as_str())
                    .collect();
                return Err(PlanError::Cycle(names.join(" -> ")));
            }
            at.insert(next, path.len());
            path.push(next);
        }
    }

    /// The steps, in plan order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
}

/// Collects the step ids `$from` references name.
fn references(value: &Value, names: &mut BTreeSet<String>) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            if let Some(from) = map.get("$from") {
                let from = from
                    .as_str()
                    .ok_or("`$from` must be a step id (a string)")?;
                if map.keys().any(|k| k != "$from" && k != "pointer") {
                    return Err(format!(
                        "a `$from` reference may only have `$from` and `pointer`, got {}",
                        Value::Object(map.clone())
                    ));
                }
                if let Some(pointer) = map.get("pointer") {
                    let pointer = pointer
                        .as_str()
                        .ok_or("`pointer` must be a JSON Pointer string")?;
                    if !(pointer.is_empty() || pointer.starts_with('/')) {
                        return Err(format!(
                            "`pointer` {pointer:?} must be empty or start with `/`"
                        ));
                    }
                }
                names.insert(from.to_string());
                return Ok(());
            }
            map.values().try_for_each(|v| references(v, names))
        }
        Value::Array(items) => items.iter().try_for_each(|v| references(v, names)),
        _ => Ok(()),
    }
}

/// What the references of one step's input may copy in: the input, once
/// resolved, goes to the tool only if it is at most the executor's
/// `max_input_bytes` as text, so no more is ever copied (an output
/// referenced a thousand times is refused, not copied a thousand times).
struct Budget<'a> {
    left: usize,
    max: usize,
    /// The size of each value referenced so far, as JSON text.
    sizes: HashMap<(&'a str, &'a str), usize>,
}

impl<'a> Budget<'a> {
    fn new(max: usize) -> Self {
        Self {
            left: max,
            max,
            sizes: HashMap::new(),
        }
    }

    /// Takes the size of `value`, referenced as `from` and `pointer`.
    fn take(&mut self, from: &'a str, pointer: &'a str, value: &Value) -> Result<(), String> {
        let size = *self
            .sizes
            .entry((from, pointer))
            .or_insert_with(|| json_len(value));
        self.left = self.left.checked_sub(size).ok_or_else(|| {
            format!(
                "its input, with the outputs it references copied in, would be over the limit of {} bytes",
                self.max
            )
        })?;
        Ok(())
    }
}

/// The length of `value` as JSON text, counted without writing it.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a sink that takes everything cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Replaces every reference with the value it points at, within `budget`.
fn resolve<'a>(
    value: &'a Value,
    outputs: &HashMap<&str, &Value>,
    budget: &mut Budget<'a>,
) -> Result<Value, String> {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(from)) = map.get("$from") {
                let output = outputs
                    .get(from.as_str())
                    .ok_or_else(|| format!("step `{from}` has no output"))?;
                let pointer = map.get("pointer").and_then(Value::as_str).unwrap_or("");
                let found = output.pointer(pointer).ok_or_else(|| {
                    format!("the output of step `{from}` has nothing at `{pointer}`")
                })?;
                budget.take(from, pointer, found)?;
                return Ok(found.clone());
            }
            let mut resolved = serde_json::Map::with_capacity(map.len());
            for (key, v) in map {
                resolved.insert(key.clone(), resolve(v, outputs, budget)?);
            }
            Ok(Value::Object(resolved))
        }
        Value::Array(items) => items
            .iter()
            .map(|v| resolve(v, outputs, budget))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

impl Executor {
    /// Runs a plan: every step whose dependencies are done starts at once.
    pub async fn run_plan(self: &Arc<Self>, plan: &Plan, options: CallOptions) -> PlanResult {
        let n = plan.steps.len();
        let mut records: Vec<Option<CallRecord>> = vec![None; n];
        let mut waiting: Vec<usize> = plan.deps.iter().map(BTreeSet::len).collect();
        let mut running = JoinSet::new();
        let start = |i: usize, input: Value, running: &mut JoinSet<(usize, CallRecord)>| {
            let executor = self.clone();
            let (tool, options) = (plan.steps[i].tool.clone(), options.clone());
            // Boxed: a call's future is kilobytes, which spawning would copy.
            running.spawn(Box::pin(async move {
                (i, executor.call_value(&tool, &input, options).await)
            }));
        };
        for (i, step) in plan.steps.iter().enumerate() {
            if waiting[i] == 0 {
                start(i, step.input.clone(), &mut running);
            }
        }
        while let Some(joined) = running.join_next().await {
            let Ok((i, record)) = joined else { continue };
            let ok = record.outcome.is_ok();
            let failure =
                (!ok).then(|| format!("step `{}` ended in {}", plan.steps[i].id, record.outcome));
            records[i] = Some(record);
            for &d in &plan.dependents[i] {
                if records[d].is_some() {
                    continue;
                }
                if let Some(failure) = &failure {
                    skip(plan, d, failure, &mut records);
                    continue;
                }
                waiting[d] -= 1;
                if waiting[d] > 0 {
                    continue;
                }
                let outputs: HashMap<&str, &Value> = plan.deps[d]
                    .iter()
                    .filter_map(|&p| {
                        records[p]
                            .as_ref()
                            .and_then(|r| r.outcome.output())
                            .map(|o| (plan.steps[p].id.as_str(), o))
                    })
                    .collect();
                let mut budget = Budget::new(self.config.max_input_bytes);
                match resolve(&plan.steps[d].input, &outputs, &mut budget) {
                    Ok(input) => start(d, input, &mut running),
                    Err(message) => {
                        let record = CallRecord::new(
                            String::new(),
                            plan.steps[d].tool.clone(),
                            Outcome::InvalidInput {
                                message: format!("step `{}`: {message}", plan.steps[d].id),
                            },
                            Duration::ZERO,
                        );
                        records[d] = Some(record);
                        let failure =
                            format!("step `{}` could not resolve its input", plan.steps[d].id);
                        for &dd in &plan.dependents[d] {
                            skip(plan, dd, &failure, &mut records);
                        }
                    }
                }
            }
        }
        let steps = plan
            .steps
            .iter()
            .zip(records)
            .map(|(step, record)| {
                let record = record.unwrap_or_else(|| {
                    CallRecord::new(
                        String::new(),
                        step.tool.clone(),
                        Outcome::Skipped {
                            message: "the plan ended before this step ran".into(),
                        },
                        Duration::ZERO,
                    )
                });
                (step.id.clone(), record)
            })
            .collect();
        PlanResult { steps }
    }
}

/// Marks `i` and everything that depends on it as skipped (without
/// recursion: a chain may be any length).
fn skip(plan: &Plan, i: usize, why: &str, records: &mut [Option<CallRecord>]) {
    let message = format!("not run: {why}");
    let mut left = vec![i];
    while let Some(step) = left.pop() {
        if records[step].is_some() {
            continue;
        }
        records[step] = Some(CallRecord::new(
            String::new(),
            plan.steps[step].tool.clone(),
            Outcome::Skipped {
                message: message.clone(),
            },
            Duration::ZERO,
        ));
        left.extend(&plan.dependents[step]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_become_dependencies() {
        let plan = Plan::new(vec![
            Step::new("a", "calc", json!({"expression": "1+1"})),
            Step::new("b", "calc", json!({"expression": "x*2", "variables": {"x": {"$from": "a", "pointer": "/value"}}})),
        ])
        .unwrap();
        assert_eq!(plan.deps[1], BTreeSet::from([0]));
    }

    #[test]
    fn bad_plans_are_refused() {
        let step = |id: &str, from: &str| Step::new(id, "t", json!({"x": {"$from": from}}));
        assert_eq!(
            Plan::new(vec![step("a", "b"), step("b", "a")]).unwrap_err(),
            PlanError::Cycle("a -> b -> a".into())
        );
        assert!(matches!(
            Plan::new(vec![step("a", "zzz")]),
            Err(PlanError::Unknown { .. })
        ));
        assert!(matches!(
            Plan::new(vec![step("a", "a")]),
            Err(PlanError::Cycle(_))
        ));
        let dup = vec![
            Step::new("a", "t", json!({})),
            Step::new("a", "t", json!({})),
        ];
        assert_eq!(
            Plan::new(dup).unwrap_err(),
            PlanError::Duplicate("a".into())
        );
        let bad = Step::new("a", "t", json!({"x": {"$from": 3}}));
        assert!(matches!(
            Plan::new(vec![bad]),
            Err(PlanError::BadReference { .. })
        ));
    }

    /// A step after each step, far longer than a thread's stack would
    /// take in recursion; and such a chain closed into a cycle, named.
    #[test]
    fn a_chain_of_any_length_is_checked_without_recursion() {
        let chain = |n: usize, closed: bool| {
            (0..n)
                .map(|i| {
                    let from = if i == 0 && closed {
                        n - 1
                    } else {
                        i.saturating_sub(1)
                    };
                    let input = if i == 0 && !closed {
                        json!({})
                    } else {
                        json!({"x": {"$from": format!("s{from}")}})
                    };
                    Step::new(format!("s{i}"), "t", input)
                })
                .collect::<Vec<_>>()
        };
        let plan = Plan::new(chain(300_000, false)).unwrap();
        assert_eq!(plan.dependents[0], [1]);
        let Err(PlanError::Cycle(names)) = Plan::new(chain(300_000, true)) else {
            panic!("a closed chain is a cycle");
        };
        assert!(
            names.starts_with("s0 -> s299999 -> s299998"),
            "{}",
            &names[..40]
        );
        assert!(names.ends_with("s1 -> s0"));
    }

    /// An output referenced many times is counted once per reference and
    /// refused past the budget before it is copied that many times; its
    /// size is measured once.
    #[test]
    fn references_copy_in_at_most_the_budget() {
        let out = json!({"text": "x".repeat(1000)});
        let outputs = HashMap::from([("a", &out)]);
        let input = json!({"x": vec![json!({"$from": "a"}); 100]});
        let mut budget = Budget::new(50_000);
        let error = resolve(&input, &outputs, &mut budget).unwrap_err();
        assert!(error.contains("50000 bytes"), "{error}");
        assert_eq!(budget.sizes.len(), 1);
        let mut budget = Budget::new(200_000);
        let resolved = resolve(&input, &outputs, &mut budget).unwrap();
        assert_eq!(resolved["x"].as_array().unwrap().len(), 100);
        assert_eq!(budget.left, 200_000 - 100 * json_len(&out));
        assert_eq!(json_len(&out), out.to_string().len());
    }

    #[test]
    fn resolve_follows_pointers() {
        let out = json!({"value": 4, "list": [1, 2]});
        let outputs = HashMap::from([("a", &out)]);
        let input = json!({"x": {"$from": "a", "pointer": "/list/1"}, "all": {"$from": "a"}, "n": [ {"$from": "a", "pointer": "/value"} ]});
        assert_eq!(
            resolve(&input, &outputs, &mut Budget::new(1 << 20)).unwrap(),
            json!({"x": 2, "all": out, "n": [4]})
        );
        let nowhere = json!({"x": {"$from": "a", "pointer": "/nope"}});
        assert!(
            resolve(&nowhere, &outputs, &mut Budget::new(1 << 20))
                .unwrap_err()
                .contains("/nope")
        );
    }
}
