//! Calling a component's plain exported functions with JSON.
//!
//! The same store, limits, deadline, cancellation and outcome classification
//! as a `toolhost:tool` call ([`new_store`], [`guard`], [`finish`]); only the
//! middle differs: the JSON input is converted to component values before any
//! instance exists, the function is called with `Func::call_async`, and its
//! result is converted back to JSON.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use wasmtime::component::{InstancePre, Val};

use super::{CallInfo, Grants, Run, State, finish, guard, invoke_tool, lift, new_store};
use crate::Engine;
use crate::bindings::ToolPre;
use crate::catalog::dynamic::ExportFunc;
use crate::catalog::shape::Shape;
use crate::catalog::values::{Json, as_text, fields_to_vals};
use crate::outcome::{Outcome, ToolErrorKind};
use crate::policy::Limits;

/// How a loaded component is instantiated and called.
#[derive(Clone)]
pub(crate) enum Pre {
    /// A `toolhost:tool` component: `describe` and `invoke`.
    Tool(ToolPre<State>),
    /// Any other component: its exported functions, by tool name.
    Exports(Arc<Exports>),
}

/// A component whose exported functions are the tools.
pub(crate) struct Exports {
    pub(crate) pre: InstancePre<State>,
    pub(crate) funcs: HashMap<String, ExportFunc>,
}

/// Runs tool `name` of a loaded component with `input` (JSON object text),
/// whichever kind the component is. The output is JSON text.
pub(crate) async fn invoke(
    engine: &Engine,
    pre: &Pre,
    grants: &Grants,
    limits: &Limits,
    call: CallInfo,
    name: &str,
    input: &str,
) -> Run<String> {
    match pre {
        Pre::Tool(pre) => invoke_tool(engine, pre, grants, limits, call, name, input).await,
        Pre::Exports(exports) => {
            invoke_export(engine, exports, grants, limits, call, name, input).await
        }
    }
}

fn not_run(outcome: Outcome) -> Run<String> {
    Run {
        result: Err(outcome),
        fuel_used: None,
        memory_peak: None,
    }
}

async fn invoke_export(
    engine: &Engine,
    exports: &Exports,
    grants: &Grants,
    limits: &Limits,
    call: CallInfo,
    name: &str,
    input: &str,
) -> Run<String> {
    let Some(func) = exports.funcs.get(name) else {
        return not_run(Outcome::UnknownTool {
            message: format!("the component exports no function for tool `{name}`"),
        });
    };
    let args = match arguments(func, input) {
        Ok(args) => args,
        Err(message) => return not_run(Outcome::InvalidInput { message }),
    };
    let deadline = Instant::now() + limits.timeout;
    let cancel = call.cancel.clone();
    let (mut store, stderr) = match new_store(engine, grants, limits, call, deadline) {
        Ok(made) => made,
        Err(outcome) => return not_run(outcome),
    };
    // The result is lifted into host values whole: this budget is what
    // bounds it, aliasing lists included, before anything is copied.
    store.set_hostcall_fuel(lift::export_budget(limits));
    let result = {
        let work = async {
            let instance = exports.pre.instantiate_async(&mut store).await?;
            let f = instance.get_func(&mut store, func.index).ok_or_else(|| {
                wasmtime::format_err!("the exported function is missing from the instance")
            })?;
            let mut results = vec![Val::Bool(false); usize::from(func.result.is_some())];
            f.call_async(&mut store, &args, &mut results).await?;
            Ok(results.pop())
        };
        guard(work, deadline, cancel.as_ref()).await
    };
    let cap = usize::try_from(limits.max_output_bytes).unwrap_or(usize::MAX);
    let result = result.map(|returned| output(func.result.as_ref(), returned, cap));
    finish(store, result, &stderr, limits)
}

/// The call's arguments, in parameter order, from the input object.
fn arguments(func: &ExportFunc, input: &str) -> Result<Vec<Val>, String> {
    let value: Value =
        serde_json::from_str(input).map_err(|e| format!("the input is not valid JSON: {e}"))?;
    let object = value
        .as_object()
        .ok_or_else(|| "the input must be a JSON object with one key per parameter".to_string())?;
    let fields = func
        .params
        .iter()
        .map(|(name, shape)| (name.as_str(), shape));
    let vals = fields_to_vals(fields, object, "").map_err(|e| e.to_string())?;
    Ok(vals.into_iter().map(|(_, val)| val).collect())
}

/// The output text of a returned value, refused past `cap` bytes while it is
/// written straight from the lifted value (no JSON tree is built); the `err`
/// of a `result` return is a tool error whose message is the error value (as
/// text if it is a string, else as JSON), cut to `cap`.
fn output(shape: Option<&Shape>, returned: Option<Val>, cap: usize) -> Result<String, Outcome> {
    let value = match (shape, returned.as_ref()) {
        (Some(Shape::Result(..)), Some(Val::Result(Ok(ok)))) => ok.as_deref(),
        (Some(Shape::Result(..)), Some(Val::Result(Err(err)))) => {
            let message = match err.as_deref() {
                Some(value) => as_text(value).unwrap_or_else(|| {
                    lift::json_text(&Json(value), cap).unwrap_or_else(|_| {
                        format!(
                            "the function returned an error value over the limit of {cap} bytes"
                        )
                    })
                }),
                None => "the function returned an error".to_string(),
            };
            return Err(Outcome::ToolError {
                error: ToolErrorKind::Failed,
                message: lift::cap_text(message, cap),
            });
        }
        (_, value) => value,
    };
    match value {
        Some(value) => lift::json_text(&Json(value), cap),
        None => lift::json_text(&Value::Null, cap),
    }
}
