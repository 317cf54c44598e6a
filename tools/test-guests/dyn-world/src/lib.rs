//! `dyn-world`: plain functions exported at world level, no toolhost contract.
//! The host must publish each as a tool (`add`, `greet`, `divide`, `nothing`).

mod bindings {
    #![allow(unsafe_code, missing_docs, unused_qualifications)]
    wit_bindgen::generate!({ world: "dyn-world", path: "wit" });
}

struct Component;

impl bindings::Guest for Component {
    fn add(a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }

    fn greet(name: String, times: Option<u8>) -> String {
        vec![format!("Hello, {name}!"); times.unwrap_or(1).into()].join(" ")
    }

    fn divide(a: f64, b: f64) -> Result<f64, String> {
        if b == 0.0 {
            Err(format!("cannot divide {a} by zero"))
        } else {
            Ok(a / b)
        }
    }

    fn nothing() {}
}

#[allow(unsafe_code)]
const _: () = {
    bindings::export!(Component with_types_in bindings);
};
