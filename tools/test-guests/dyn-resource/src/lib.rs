//! `dyn-resource`: exports a resource. The host must refuse the component at
//! load, naming the resource's functions, since a resource has no JSON form.

mod bindings {
    #![allow(unsafe_code, missing_docs, unused_qualifications)]
    wit_bindgen::generate!({ world: "dyn-resource", path: "wit" });
}

use std::cell::Cell;

use bindings::exports::test::dyn_resource::counters;

struct Component;

struct Counter(Cell<u32>);

impl counters::Guest for Component {
    type Counter = Counter;

    fn version() -> String {
        "1".into()
    }
}

impl counters::GuestCounter for Counter {
    fn new(start: u32) -> Self {
        Self(Cell::new(start))
    }

    fn bump(&self) -> u32 {
        self.0.set(self.0.get() + 1);
        self.0.get()
    }
}

#[allow(unsafe_code)]
const _: () = {
    bindings::export!(Component with_types_in bindings);
};
