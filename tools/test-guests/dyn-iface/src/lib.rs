//! `dyn-iface`: functions in exported interfaces, with WIT docs that the build
//! embeds in the component. The host publishes `geometry_distance`,
//! `geometry_centroid`, `text_convert` and `text_count`, described by the docs.

mod bindings {
    #![allow(unsafe_code, missing_docs, unused_qualifications)]
    wit_bindgen::generate!({ world: "dyn-iface", path: "wit" });
}

use bindings::exports::test::dyn_iface::{geometry, text};

struct Component;

impl geometry::Guest for Component {
    fn distance(a: geometry::Point, b: geometry::Point) -> f64 {
        (a.x - b.x).hypot(a.y - b.y)
    }

    fn centroid(points: Vec<geometry::Point>) -> Option<geometry::Point> {
        if points.is_empty() {
            return None;
        }
        let n = points.len() as f64;
        Some(geometry::Point {
            x: points.iter().map(|p| p.x).sum::<f64>() / n,
            y: points.iter().map(|p| p.y).sum::<f64>() / n,
        })
    }
}

impl text::Guest for Component {
    fn convert(text: String, style: text::LetterCase) -> String {
        match style {
            text::LetterCase::Upper => text.to_uppercase(),
            text::LetterCase::Lower => text.to_lowercase(),
            text::LetterCase::Title => text
                .split(' ')
                .map(|word| {
                    let mut chars = word.chars();
                    match chars.next() {
                        Some(first) => first
                            .to_uppercase()
                            .chain(chars.flat_map(char::to_lowercase))
                            .collect(),
                        None => String::new(),
                    }
                })
                .collect::<Vec<String>>()
                .join(" "),
        }
    }

    fn count(text: String) -> (u32, u32) {
        let words = text.split_whitespace().count();
        let chars = text.chars().count();
        (
            u32::try_from(words).unwrap_or(u32::MAX),
            u32::try_from(chars).unwrap_or(u32::MAX),
        )
    }
}

#[allow(unsafe_code)]
const _: () = {
    bindings::export!(Component with_types_in bindings);
};
