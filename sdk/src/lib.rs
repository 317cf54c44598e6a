//! Write [toolhost](https://example.invalid/toolhost) tools in Rust.
//!
//! A tool is a plain function from a typed input to a typed output. The SDK
//! derives the JSON Schemas from the types (with [`schemars`]), turns a
//! deserialisation failure into [`ToolError::InvalidInput`] naming the field
//! that was wrong, and exports the component's `describe` and `invoke` for you.
//!
//! ```no_run
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//! use toolhost_sdk::{Ctx, Tool, ToolError};
//!
//! /// Input of `greet`.
//! #[derive(Deserialize, JsonSchema)]
//! struct Greet {
//!     /// Who to greet.
//!     name: String,
//! }
//!
//! #[derive(Serialize, JsonSchema)]
//! struct Greeting {
//!     text: String,
//! }
//!
//! fn greet(ctx: &Ctx, input: Greet) -> Result<Greeting, ToolError> {
//!     if input.name.is_empty() {
//!         return Err(ToolError::invalid_input("name must not be empty"));
//!     }
//!     ctx.info(&format!("greeting {}", input.name));
//!     Ok(Greeting { text: format!("Hello, {}!", input.name) })
//! }
//!
//! fn tools() -> Vec<Tool> {
//!     vec![Tool::new("greet", "Greet someone by name.", greet).pure()]
//! }
//!
//! toolhost_sdk::export!(tools);
//! ```
#![deny(missing_docs)]

mod ctx;
mod error;
pub mod http;
mod tool;

pub use ctx::{Ctx, Level};
pub use error::ToolError;
pub use tool::Tool;

/// The raw bindings of the `toolhost:tool` world. Not part of the public API:
/// the [`export!`] macro uses them.
#[doc(hidden)]
pub mod bindings {
    #![allow(missing_docs, unsafe_code, unused_qualifications)]
    wit_bindgen::generate!({
        world: "tool",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_tool_world",
        default_bindings_module: "::toolhost_sdk::bindings",
    });
}

#[doc(hidden)]
pub use tool::{describe as __describe, invoke as __invoke};

/// Export the tools that a function returns as this component's tools.
///
/// The argument is a path to a `fn() -> Vec<Tool>`. Use it once per crate.
#[macro_export]
macro_rules! export {
    ($tools:path) => {
        #[doc(hidden)]
        struct __ToolhostExports;

        impl $crate::bindings::Guest for __ToolhostExports {
            fn describe() -> ::std::vec::Vec<$crate::bindings::ToolSpec> {
                $crate::__describe(&$tools())
            }

            fn invoke(
                name: ::std::string::String,
                input: ::std::string::String,
            ) -> ::std::result::Result<::std::string::String, $crate::bindings::ToolError> {
                $crate::__invoke(&$tools(), &name, &input)
            }
        }

        #[allow(unsafe_code)]
        const _: () = {
            $crate::bindings::__export_tool_world!(__ToolhostExports with_types_in $crate::bindings);
        };
    };
}
