//! The one `bindgen!` of the `toolhost:tool` world. Only what the rest of the
//! crate uses is re-exported.

mod generated {
    wasmtime::component::bindgen!({
        world: "tool",
        path: "../../wit",
        exports: { default: async },
    });
}

pub(crate) use generated::toolhost::tool::host::{Host, Level};
pub(crate) use generated::toolhost::tool::types::{
    Behavior, Host as TypesHost, ToolError, ToolSpec,
};
pub(crate) use generated::{Tool, ToolPre};
