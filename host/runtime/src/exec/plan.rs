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
    deps: Vec<BTreeSet<usize>>,
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
        let plan = Self { steps, deps };
        plan.check_acyclic()?;
        Ok(plan)
    }

    fn check_acyclic(&self) -> Result<(), PlanError> {
        // 0 = unseen, 1 = on the path, 2 = done.
        fn visit(
            plan: &Plan,
            i: usize,
            state: &mut [u8],
            path: &mut Vec<usize>,
        ) -> Result<(), PlanError> {
            match state[i] {
                2 => return Ok(()),
                1 => {
                    let start = path.iter().position(|&p| p == i).unwrap_or(0);
                    let names: Vec<&str> = path[start..]
                        .iter()
                        .chain([&i])
                        .map(|&p| plan.steps[p].id.as_str())
                        .collect();
                    return Err(PlanError::Cycle(names.join(" -> ")));
                }
                _ => {}
            }
            state[i] = 1;
            path.push(i);
            for &dep in &plan.deps[i] {
                visit(plan, dep, state, path)?;
            }
            path.pop();
            state[i] = 2;
            Ok(())
        }
        let mut state = vec![0u8; self.steps.len()];
        for i in 0..self.steps.len() {
            visit(self, i, &mut state, &mut Vec::new())?;
        }
        Ok(())
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

/// Replaces every reference with the value it points at.
fn resolve(value: &Value, outputs: &HashMap<&str, &Value>) -> Result<Value, String> {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(from)) = map.get("$from") {
                let output = outputs
                    .get(from.as_str())
                    .ok_or_else(|| format!("step `{from}` has no output"))?;
                let pointer = map.get("pointer").and_then(Value::as_str).unwrap_or("");
                return output.pointer(pointer).cloned().ok_or_else(|| {
                    format!("the output of step `{from}` has nothing at `{pointer}`: {output}")
                });
            }
            let mut resolved = serde_json::Map::with_capacity(map.len());
            for (key, v) in map {
                resolved.insert(key.clone(), resolve(v, outputs)?);
            }
            Ok(Value::Object(resolved))
        }
        Value::Array(items) => items
            .iter()
            .map(|v| resolve(v, outputs))
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
            let dependents: Vec<usize> = (0..n).filter(|&d| plan.deps[d].contains(&i)).collect();
            for d in dependents {
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
                match resolve(&plan.steps[d].input, &outputs) {
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
                        for dd in 0..n {
                            if plan.deps[dd].contains(&d) && records[dd].is_none() {
                                skip(plan, dd, &failure, &mut records);
                            }
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

/// Marks `i` and everything that depends on it as skipped.
fn skip(plan: &Plan, i: usize, why: &str, records: &mut [Option<CallRecord>]) {
    if records[i].is_some() {
        return;
    }
    let message = format!("not run: {why}");
    records[i] = Some(CallRecord::new(
        String::new(),
        plan.steps[i].tool.clone(),
        Outcome::Skipped { message },
        Duration::ZERO,
    ));
    for d in 0..plan.steps.len() {
        if plan.deps[d].contains(&i) {
            skip(plan, d, why, records);
        }
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

    #[test]
    fn resolve_follows_pointers() {
        let out = json!({"value": 4, "list": [1, 2]});
        let outputs = HashMap::from([("a", &out)]);
        let input = json!({"x": {"$from": "a", "pointer": "/list/1"}, "all": {"$from": "a"}, "n": [ {"$from": "a", "pointer": "/value"} ]});
        assert_eq!(
            resolve(&input, &outputs).unwrap(),
            json!({"x": 2, "all": out, "n": [4]})
        );
        assert!(
            resolve(&json!({"x": {"$from": "a", "pointer": "/nope"}}), &outputs)
                .unwrap_err()
                .contains("/nope")
        );
    }
}
