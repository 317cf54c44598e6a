//! Instances held after a call, for the benchmarks: what each call in flight
//! costs in resident memory at most, measured on the real call path's stores.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::Store;

use super::{CallInfo, Grants, Pre, State, new_store};
use crate::Engine;
use crate::policy::Limits;

/// Makes `n` stores, each with a fresh instance of the component, exactly as
/// a call would; runs `invoke(name, input)` in each (a `toolhost:tool`
/// component; other components are only instantiated); and returns them
/// alive, with every page the call touched still resident.
pub(crate) async fn hold(
    engine: &Engine,
    pre: &Pre,
    grants: &Grants,
    limits: &Limits,
    (name, input): (&str, &str),
    n: usize,
) -> wasmtime::Result<Vec<Store<State>>> {
    let mut stores = Vec::with_capacity(n);
    for i in 0..n {
        let call = CallInfo {
            call_id: Arc::from(format!("hold-{i}")),
            tool: Arc::from("hold"),
            cancel: None,
            events: None,
            audit: None,
        };
        let (mut store, _, _) = new_store(
            engine,
            grants,
            limits,
            call,
            Instant::now() + limits.timeout,
        )
        .map_err(|outcome| wasmtime::format_err!("could not make a store: {outcome}"))?;
        // The epoch ticks while guest code may run, so the deadline holds.
        let _busy = engine.busy();
        match pre {
            Pre::Tool(pre) => {
                let tool = pre.instantiate_async(&mut store).await?;
                let _ = tool.call_invoke(&mut store, name, input).await?;
            }
            Pre::Exports(exports) => drop(exports.pre.instantiate_async(&mut store).await?),
        }
        stores.push(store);
    }
    Ok(stores)
}
