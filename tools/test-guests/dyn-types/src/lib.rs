//! `dyn-types`: every WIT value type through plain exported functions, plus
//! functions that misbehave, so the host's tests can round-trip values and
//! check that limits and outcomes apply as to `toolhost:tool` components.

mod bindings {
    #![allow(unsafe_code, missing_docs, unused_qualifications)]
    wit_bindgen::generate!({ world: "dyn-types", path: "wit" });
}

use bindings::exports::test::dyn_types::{harm, values};

struct Component;

impl values::Guest for Component {
    fn echo(value: values::Everything) -> values::Everything {
        value
    }

    fn area(shape: values::Shape) -> Result<f64, String> {
        match shape {
            values::Shape::Circle(r) => Ok(std::f64::consts::PI * r * r),
            values::Shape::Rect((w, h)) => Ok(w * h),
            values::Shape::Empty => Err("an empty shape has no area".into()),
        }
    }

    fn missing(granted: values::Permissions) -> values::Permissions {
        values::Permissions::all() - granted
    }
}

impl harm::Guest for Component {
    fn spin() {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    fn grow(mb: u32) -> u64 {
        let mut block = vec![0u8; mb as usize * 1024 * 1024];
        for i in (0..block.len()).step_by(4096) {
            block[i] = 1;
        }
        std::hint::black_box(&block)
            .iter()
            .map(|&b| u64::from(b))
            .sum::<u64>()
            * 4096
    }

    fn crash(message: String) {
        panic!("{message}");
    }
}

#[allow(unsafe_code)]
const _: () = {
    bindings::export!(Component with_types_in bindings);
};
