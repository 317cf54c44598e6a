//! `slow-describe`: a component whose `describe` never returns.
//!
//! Not a shipped tool. `describe` loops forever (a `black_box` counter keeps
//! the optimiser from removing the loop). The host must give up on loading it
//! within its load deadline (epoch interruption or fuel), report a clear load
//! error, and stay healthy. `invoke` is never reached.

mod bindings {
    #![allow(unsafe_code, unused_qualifications, reason = "generated bindings")]
    wit_bindgen::generate!({ world: "tool", path: "../../../wit" });
}

use bindings::{Guest, ToolError, ToolSpec};

struct Component;

impl Guest for Component {
    fn describe() -> Vec<ToolSpec> {
        let mut counter: u64 = 0;
        loop {
            counter = std::hint::black_box(counter.wrapping_add(1));
        }
    }

    fn invoke(name: String, _input: String) -> Result<String, ToolError> {
        Err(ToolError::Failed(format!(
            "slow-describe publishes no tools, so there is no `{name}`"
        )))
    }
}

#[allow(
    unsafe_code,
    reason = "the export macro defines the component's exported functions"
)]
const _: () = {
    bindings::export!(Component with_types_in bindings);
};
