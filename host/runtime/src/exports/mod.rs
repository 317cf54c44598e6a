//! Plain-export components: any component's typed exported functions as
//! tools, for components that do not implement `toolhost:tool`.
//!
//! - [`inspect`]: which exports are tools, and their specs;
//! - [`shape`]: WIT types as shapes, and the JSON Schemas of those shapes;
//! - [`values`]: JSON arguments to component values and results back to JSON;
//! - [`docs`]: the WIT doc comments a component carries, as descriptions;
//! - [`call`]: the typed middle of a call (arguments in, output text out).
//!
//! The catalog loads such components through [`inspect`]; the sandbox runs
//! their calls in the same store, limits and deadline as any other call and
//! uses [`call`] for the typed part. Nothing here makes a store.

mod call;
mod docs;
#[cfg(test)]
mod fuzz;
mod inspect;
pub(crate) mod shape;
mod values;

pub(crate) use self::call::{arguments, output};
pub use self::docs::SECTION;
pub(crate) use self::docs::{WitDocs, custom_section};
pub(crate) use self::inspect::{ExportFunc, InspectError, inspect, is_tool_world};
