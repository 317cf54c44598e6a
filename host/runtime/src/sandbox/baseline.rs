//! The bare wasmtime loop the benchmark compares the executor against: a
//! store with an empty WASI context, instantiate, call `invoke`, drop. No
//! schema check, no limits, no capture, no deadline timer, no outcome record.

use wasmtime::Store;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::Engine;
use crate::bindings::{Host, Level, Tool, ToolPre, TypesHost};

pub(crate) struct BareState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for BareState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Host for BareState {
    fn log(&mut self, _: Level, _: String) {}
    fn progress(&mut self, _: u64, _: Option<u64>, _: Option<String>) {}
    fn cancelled(&mut self) -> bool {
        false
    }
}

impl TypesHost for BareState {}

/// A `toolhost:tool` component ready for bare calls: a store with an empty
/// WASI context, instantiate, call `invoke`, drop.
pub struct Baseline {
    engine: Engine,
    pre: ToolPre<BareState>,
}

impl std::fmt::Debug for Baseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Baseline").finish_non_exhaustive()
    }
}

impl Baseline {
    /// Compiles `wasm` for bare calls.
    ///
    /// # Errors
    ///
    /// When `wasm` is not a `toolhost:tool` component.
    pub fn new(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Self> {
        let component = Component::new(engine.wasmtime(), wasm)?;
        let mut linker = Linker::new(engine.wasmtime());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Tool::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        let pre = ToolPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Self {
            engine: engine.clone(),
            pre,
        })
    }

    /// One call; true when the tool returned `ok`.
    ///
    /// # Errors
    ///
    /// When the call traps.
    pub async fn call(&self, name: &str, input: &str) -> wasmtime::Result<bool> {
        Ok(self.call_output(name, input).await.is_ok())
    }

    /// One call; the output text, or an error if the tool or the call failed.
    ///
    /// # Errors
    ///
    /// When the tool fails or the call traps.
    pub async fn call_output(&self, name: &str, input: &str) -> wasmtime::Result<String> {
        let mut store = Store::new(
            self.engine.wasmtime(),
            BareState {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            },
        );
        if self.engine.config().fuel {
            store.set_fuel(u64::MAX / 2)?;
        }
        store.set_epoch_deadline(u64::MAX / 2);
        let tool = self.pre.instantiate_async(&mut store).await?;
        tool.call_invoke(&mut store, name, input)
            .await?
            .map_err(|e| wasmtime::format_err!("the tool failed: {e:?}"))
    }
}
