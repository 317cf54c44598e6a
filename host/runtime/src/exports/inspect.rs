//! Any component's typed exports as tools.
//!
//! A component that does not implement `toolhost:tool` but exports plain
//! functions, at world level or in exported interfaces, still loads: each
//! function becomes a tool. A world-level `add` is the tool `add`; `add` in
//! an exported interface `a:b/math` is `math_add` (WIT names never contain
//! `_`, so the split is exact). The input is a JSON object with one key per
//! parameter, its schema derived from the parameter types (see
//! [`shape`](super::shape)); the output is the result as JSON. A result of
//! type `result<T, E>` is unwrapped: `ok` is the output, `err` becomes a
//! `tool-error` of kind `failed`.
//!
//! Exports under `wasi:` (a command's `run`, an HTTP handler) are not tools.
//! A function that passes a resource, stream or future, or that is lifted
//! `async`, cannot be called with JSON: the component is refused, naming it.

use std::collections::HashMap;

use serde_json::json;
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, ComponentExportIndex};

use super::docs::WitDocs;
use super::shape::{Shape, object_schema};
use crate::Engine;
use crate::bindings::{Behavior, ToolSpec};
use crate::catalog::MAX_SPEC_BYTES;

/// One exported function, ready to call with JSON.
#[derive(Debug)]
pub(crate) struct ExportFunc {
    /// Where the function is in the component.
    pub(crate) index: ComponentExportIndex,
    /// Its parameters, in order.
    pub(crate) params: Vec<(String, Shape)>,
    /// Its result, if it returns one.
    pub(crate) result: Option<Shape>,
}

/// Why a component's exports are not tools.
#[derive(Debug)]
pub(crate) enum InspectError {
    /// It exports no functions at all: it is of some other world.
    NoFunctions(String),
    /// Some functions cannot be called with JSON.
    Refused(String),
}

/// True if the component is meant as a `toolhost:tool` component: it exports
/// `describe` or `invoke`, or imports the host interface. Such a component is
/// held to that world and never treated as plain exports.
pub(crate) fn is_tool_world(engine: &Engine, component: &Component) -> bool {
    let ty = component.component_type();
    let engine = engine.wasmtime();
    ty.get_export(engine, "describe").is_some()
        || ty.get_export(engine, "invoke").is_some()
        || ty
            .imports(engine)
            .any(|(name, _)| name.starts_with("toolhost:tool/"))
}

/// The functions a component exports and the tool specs they make.
pub(crate) fn inspect(
    engine: &Engine,
    component: &Component,
    docs: Option<&WitDocs>,
) -> Result<(HashMap<String, ExportFunc>, Vec<ToolSpec>), InspectError> {
    let wasmtime = engine.wasmtime();
    let ty = component.component_type();
    let mut funcs = HashMap::new();
    let mut specs = Vec::new();
    let mut refused = Vec::new();
    let mut skipped = Vec::new();
    for (export, item) in ty.exports(wasmtime) {
        match item.ty {
            ComponentItem::ComponentFunc(func) => {
                let index = component.get_export_index(None, export);
                add(
                    &mut funcs,
                    &mut specs,
                    &mut refused,
                    docs,
                    None,
                    export,
                    export,
                    &func,
                    index,
                );
            }
            ComponentItem::ComponentInstance(_) if export.starts_with("wasi:") => {
                skipped.push(export.to_string());
            }
            ComponentItem::ComponentInstance(instance) => {
                let outer = component.get_export_index(None, export);
                let short = interface_name(export);
                for (name, item) in instance.exports(wasmtime) {
                    if let ComponentItem::ComponentFunc(func) = item.ty {
                        let index = outer
                            .as_ref()
                            .and_then(|outer| component.get_export_index(Some(outer), name));
                        let tool = format!("{short}_{name}");
                        add(
                            &mut funcs,
                            &mut specs,
                            &mut refused,
                            docs,
                            Some(export),
                            name,
                            &tool,
                            &func,
                            index,
                        );
                    }
                }
            }
            _ => {}
        }
    }
    if !refused.is_empty() {
        return Err(InspectError::Refused(refused.join("; ")));
    }
    if specs.is_empty() {
        let exports = if skipped.is_empty() {
            "nothing callable".to_string()
        } else {
            format!("only {}", skipped.join(", "))
        };
        return Err(InspectError::NoFunctions(format!(
            "it neither implements the toolhost:tool world (no `describe` and `invoke` exports) \
             nor exports functions to publish as tools (it exports {exports})"
        )));
    }
    Ok((funcs, specs))
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename them"
)]
fn add(
    funcs: &mut HashMap<String, ExportFunc>,
    specs: &mut Vec<ToolSpec>,
    refused: &mut Vec<String>,
    docs: Option<&WitDocs>,
    scope: Option<&str>,
    name: &str,
    tool: &str,
    func: &ComponentFunc,
    index: Option<ComponentExportIndex>,
) {
    let qualified = match scope {
        Some(scope) => format!("`{name}` in `{scope}`"),
        None => format!("`{name}`"),
    };
    if func.async_() {
        refused.push(format!(
            "function {qualified} is lifted async, which the host does not call"
        ));
        return;
    }
    // What the function's schemas may take as text, docs and all: a tool
    // spec's own cap. Counted before the schemas are built, so a type used
    // many times over (with its docs copied into each use) is refused
    // before it is expanded into text.
    let mut room = MAX_SPEC_BYTES;
    // Counts `shape` against the room, then fills in its docs from it.
    let mut sized = |shape: &mut Shape| {
        shape.fits(&mut room) && docs.is_none_or(|docs| docs.annotate(scope, shape, &mut room))
    };
    let too_large = || {
        format!(
            "function {qualified}: its types, with their docs, would make a schema of over {} KiB",
            MAX_SPEC_BYTES >> 10
        )
    };
    let mut params = Vec::new();
    for (param, ty) in func.params() {
        match Shape::of(&ty) {
            Ok(mut shape) => {
                if !sized(&mut shape) {
                    refused.push(too_large());
                    return;
                }
                params.push((param.to_string(), shape));
            }
            Err(what) => {
                refused.push(format!(
                    "function {qualified} takes {what} (parameter `{param}`), which has no JSON form"
                ));
                return;
            }
        }
    }
    let result = match func.results().next().map(|ty| Shape::of(&ty)).transpose() {
        Ok(mut shape) => {
            if shape.as_mut().is_some_and(|shape| !sized(shape)) {
                refused.push(too_large());
                return;
            }
            shape
        }
        Err(what) => {
            refused.push(format!(
                "function {qualified} returns {what}, which has no JSON form"
            ));
            return;
        }
    };
    let Some(index) = index else {
        refused.push(format!(
            "function {qualified} could not be found in the component"
        ));
        return;
    };
    let signature = signature(name, &params, result.as_ref());
    let description = match docs.and_then(|d| d.function(scope, name)) {
        Some(text) => format!("{}\n\nWIT: `{signature}`", text.trim()),
        None => match scope {
            Some(scope) => format!("Calls `{signature}` from `{scope}`."),
            None => format!("Calls `{signature}`."),
        },
    };
    let input_schema = object_schema(
        params
            .iter()
            .map(|(name, shape)| (name.as_str(), shape, &None)),
    );
    let output_schema = match &result {
        // `err` becomes a tool error, so the output is the `ok` side.
        Some(Shape::Result(ok, _)) => ok
            .as_ref()
            .map_or(json!({"type": "null"}), |ok| ok.schema()),
        Some(shape) => shape.schema(),
        None => json!({"type": "null"}),
    };
    specs.push(ToolSpec {
        name: tool.to_string(),
        description,
        input_schema: input_schema.to_string(),
        output_schema: Some(output_schema.to_string()),
        behavior: Behavior::empty(),
    });
    funcs.insert(
        tool.to_string(),
        ExportFunc {
            index,
            params,
            result,
        },
    );
}

/// `math` from `a:b/math@1.0.0`; an inline interface's own name otherwise.
fn interface_name(export: &str) -> &str {
    let name = export.rsplit_once('/').map_or(export, |(_, name)| name);
    name.split_once('@').map_or(name, |(name, _)| name)
}

fn signature(name: &str, params: &[(String, Shape)], result: Option<&Shape>) -> String {
    let params = params
        .iter()
        .map(|(name, shape)| format!("{name}: {}", shape.wit()))
        .collect::<Vec<_>>()
        .join(", ");
    match result {
        Some(result) => format!("{name}: func({params}) -> {}", result.wit()),
        None => format!("{name}: func({params})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        assert_eq!(interface_name("test:dyn/math@0.1.0"), "math");
        assert_eq!(interface_name("test:dyn/math"), "math");
        assert_eq!(interface_name("inline"), "inline");
    }

    #[test]
    fn signatures() {
        let params = vec![
            ("a".to_string(), Shape::S32),
            ("b".to_string(), Shape::List(Box::new(Shape::U8))),
        ];
        assert_eq!(
            signature("f", &params, Some(&Shape::Bool)),
            "f: func(a: s32, b: list<u8>) -> bool"
        );
        assert_eq!(signature("g", &[], None), "g: func()");
    }
}
