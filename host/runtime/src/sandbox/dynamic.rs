//! Calling a component's plain exported functions with JSON: the store side
//! (the typed middle is [`exports`](crate::exports)).
//!
//! The same store, limits, deadline, cancellation and outcome classification
//! as a `toolhost:tool` call ([`new_store`], [`guard`], [`finish`]); only the
//! middle differs: the JSON input is converted to component values before any
//! instance exists, the function is called with `Func::call_async`, and its
//! result is converted back to JSON.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures::future::Either;
use wasmtime::component::{InstancePre, Val};

use super::{CallInfo, Grants, Run, State, finish, guard, invoke_tool, new_store};
use crate::Engine;
use crate::bindings::ToolPre;
use crate::exports::{ExportFunc, arguments, output};
use crate::lift;
use crate::outcome::Outcome;
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
///
/// Not an `async fn`: that would keep its arguments a second time in every
/// call's future (see `Executor::call`).
pub(crate) fn invoke(
    engine: &Engine,
    pre: &Pre,
    grants: &Grants,
    limits: &Limits,
    call: CallInfo,
    name: &str,
    input: &str,
) -> impl Future<Output = Run<String>> {
    match pre {
        Pre::Tool(pre) => Either::Left(invoke_tool(engine, pre, grants, limits, call, name, input)),
        Pre::Exports(exports) => Either::Right(invoke_export(
            engine, exports, grants, limits, call, name, input,
        )),
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
    let (mut store, stderr, place) = match new_store(engine, grants, limits, call, deadline) {
        Ok(made) => made,
        Err(outcome) => return not_run(outcome),
    };
    // The result is lifted into host values whole: this budget is what
    // bounds it, aliasing lists included, before anything is copied.
    store.set_hostcall_fuel(lift::export_budget(limits));
    let result = {
        let work = std::pin::pin!(async {
            // Boxed, as for a tool's `invoke`.
            let instance = Box::pin(exports.pre.instantiate_async(&mut store)).await?;
            let f = instance.get_func(&mut store, func.index).ok_or_else(|| {
                wasmtime::format_err!("the exported function is missing from the instance")
            })?;
            let mut results = vec![Val::Bool(false); usize::from(func.result.is_some())];
            f.call_async(&mut store, &args, &mut results).await?;
            Ok(results.pop())
        });
        guard(engine, work, deadline, cancel.as_ref(), &place).await
    };
    let cap = usize::try_from(limits.max_output_bytes).unwrap_or(usize::MAX);
    let result = result.map(|returned| output(func.result.as_ref(), returned, cap));
    finish(store, result, &stderr, limits)
}
