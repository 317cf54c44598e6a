//! What `toolhost bench` measures the executor against, and with: the bare
//! wasmtime loop (no limits, no checks, no capture: the floor a sandboxed
//! call cannot beat), and fresh instances held alive after a call (what each
//! call in flight costs in resident memory).

use wasmtime::Store;

use crate::Catalog;
pub use crate::sandbox::Baseline;

/// Instances kept alive by [`hold`], each after one call; dropping this
/// frees them.
pub struct Held {
    stores: Vec<Store<crate::sandbox::State>>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("instances", &self.stores.len())
            .finish()
    }
}

/// Makes `n` stores, each with a fresh instance of `tool`'s component, exactly
/// as a call would (same grants, limits and store settings); runs the tool
/// with `input` in each (a `toolhost:tool` component; other components are
/// only instantiated); and returns them alive, with every page the call
/// touched still resident.
///
/// # Errors
///
/// When `catalog` has no `tool`, or a store, instance or call fails.
pub async fn hold(catalog: &Catalog, tool: &str, input: &str, n: usize) -> anyhow::Result<Held> {
    let entry = catalog
        .entry(tool)
        .ok_or_else(|| anyhow::anyhow!("no tool `{tool}`"))?;
    let component = &entry.component;
    let stores = crate::sandbox::hold(
        catalog.engine(),
        &component.pre,
        &component.grants,
        &component.limits,
        (&entry.info.tool, input),
        n,
    )
    .await?;
    Ok(Held { stores })
}
