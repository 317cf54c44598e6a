//! WIT doc comments for a component's exports.
//!
//! A compiled component keeps its types but not its WIT's `///` comments
//! (no toolchain keeps them yet). The host finds them, in this order, in:
//! - a custom section named [`SECTION`] in the component, holding the WIT
//!   source text of its package (one document; several packages may be
//!   nested in it with `package a:b { .. }`);
//! - a file `NAME.wit` beside `NAME.wasm` (one document, likewise).
//!
//! The text form is deliberate: decoding binary WIT would need wit-parser's
//! `decoding` feature, which changes the wasmparser build that wasmtime
//! uses and so rebuilds all of wasmtime, for a section no toolchain writes.
//! For the same reason wit-parser is built without `std` (no file system
//! access of its own): the host reads the files.
//!
//! Docs are matched to exports by name: functions by their interface and
//! name, records, variants, enums and flags by their interface and the names
//! of their fields or cases.

use std::collections::HashMap;

use wit_parser::{Docs, Resolve, TypeDefKind, TypeOwner, WorldItem};

use super::shape::{Case, Shape, take};

/// The custom section that holds a component's WIT source text.
pub const SECTION: &str = "wit-source";

/// Doc comments of a WIT package, indexed for lookup.
#[derive(Debug, Default)]
pub(crate) struct WitDocs {
    /// (interface id such as `a:b/c@1.0.0`, or none at world level; function) → docs.
    funcs: HashMap<(Option<String>, String), String>,
    types: Vec<TypeDocs>,
}

#[derive(Debug)]
struct TypeDocs {
    scope: Option<String>,
    kind: Kind,
    /// The field or case names, in order.
    members: Vec<String>,
    docs: Option<String>,
    member_docs: Vec<Option<String>>,
}

impl TypeDocs {
    /// The bytes its docs add to a shape they are copied into.
    fn len(&self) -> usize {
        self.docs.as_ref().map_or(0, String::len)
            + self
                .member_docs
                .iter()
                .flatten()
                .map(String::len)
                .sum::<usize>()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Record,
    Variant,
    Enum,
    Flags,
}

impl WitDocs {
    /// Reads the docs from the WIT text in a [`SECTION`] custom section.
    pub(crate) fn from_embedded(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        Self::from_text(SECTION, text)
    }

    /// Reads the docs from a WIT document; `name` is for messages.
    pub(crate) fn from_text(name: &str, text: &str) -> Result<Self, String> {
        let mut resolve = Resolve::new();
        resolve
            .push_source(name, text)
            .map_err(|e| format!("{e:#}"))?;
        Ok(Self::index(&resolve))
    }

    fn index(resolve: &Resolve) -> Self {
        let mut docs = Self::default();
        for (id, interface) in &resolve.interfaces {
            let scope = resolve.id_of(id).or_else(|| interface.name.clone());
            for (name, func) in &interface.functions {
                docs.func(scope.clone(), name, &func.docs);
            }
        }
        for (_, world) in &resolve.worlds {
            for (key, item) in world.exports.iter().chain(&world.imports) {
                match item {
                    WorldItem::Function(func) => docs.func(None, &func.name, &func.docs),
                    // An inline `export name: interface { .. }` is exported as `name`.
                    WorldItem::Interface { id, .. } if resolve.interfaces[*id].name.is_none() => {
                        let scope = Some(resolve.name_world_key(key));
                        for (name, func) in &resolve.interfaces[*id].functions {
                            docs.func(scope.clone(), name, &func.docs);
                        }
                    }
                    _ => {}
                }
            }
        }
        for (_, ty) in &resolve.types {
            let scope = match ty.owner {
                TypeOwner::Interface(id) => resolve
                    .id_of(id)
                    .or_else(|| resolve.interfaces[id].name.clone()),
                TypeOwner::World(_) | TypeOwner::None => None,
            };
            let (kind, members): (Kind, Vec<(&str, &Docs)>) = match &ty.kind {
                TypeDefKind::Record(r) => (
                    Kind::Record,
                    r.fields
                        .iter()
                        .map(|f| (f.name.as_str(), &f.docs))
                        .collect(),
                ),
                TypeDefKind::Variant(v) => (
                    Kind::Variant,
                    v.cases.iter().map(|c| (c.name.as_str(), &c.docs)).collect(),
                ),
                TypeDefKind::Enum(e) => (
                    Kind::Enum,
                    e.cases.iter().map(|c| (c.name.as_str(), &c.docs)).collect(),
                ),
                TypeDefKind::Flags(f) => (
                    Kind::Flags,
                    f.flags.iter().map(|f| (f.name.as_str(), &f.docs)).collect(),
                ),
                _ => continue,
            };
            docs.types.push(TypeDocs {
                scope,
                kind,
                members: members.iter().map(|(name, _)| name.to_string()).collect(),
                docs: ty.docs.contents.clone(),
                member_docs: members.iter().map(|(_, d)| d.contents.clone()).collect(),
            });
        }
        docs
    }

    fn func(&mut self, scope: Option<String>, name: &str, docs: &Docs) {
        if let Some(text) = &docs.contents {
            self.funcs
                .entry((scope, name.to_string()))
                .or_insert_with(|| text.clone());
        }
    }

    /// The docs of function `name` exported at world level (`scope` none) or
    /// in the interface exported as `scope`.
    pub(crate) fn function(&self, scope: Option<&str>, name: &str) -> Option<&str> {
        self.funcs
            .get(&(scope.map(str::to_string), name.to_string()))
            .map(String::as_str)
    }

    /// Fills in the docs of `shape` and everything inside it, taking the
    /// length of each doc it copies in from `room`; false, stopping there,
    /// once `room` runs out. A shared type is a tree here, so one doc may
    /// be copied once per place the type is used: without `room`, a
    /// megabyte of docs times a type used 65,536 times.
    pub(crate) fn annotate(
        &self,
        scope: Option<&str>,
        shape: &mut Shape,
        room: &mut usize,
    ) -> bool {
        match shape {
            Shape::Record(fields, docs) => {
                let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                if let Some(found) = self.find(scope, Kind::Record, &names) {
                    if !take(room, found.len()) {
                        return false;
                    }
                    *docs = found.docs.clone();
                    for (field, member) in fields.iter_mut().zip(&found.member_docs) {
                        field.docs = member.clone();
                    }
                }
                fields
                    .iter_mut()
                    .all(|field| self.annotate(scope, &mut field.shape, room))
            }
            Shape::Variant(cases, docs) => self.cases(scope, Kind::Variant, cases, docs, room),
            Shape::Enum(cases, docs) => self.cases(scope, Kind::Enum, cases, docs, room),
            Shape::Flags(cases, docs) => self.cases(scope, Kind::Flags, cases, docs, room),
            Shape::List(inner) | Shape::FixedList(inner, _) | Shape::Option(inner) => {
                self.annotate(scope, inner, room)
            }
            Shape::Tuple(items) => items
                .iter_mut()
                .all(|item| self.annotate(scope, item, room)),
            Shape::Result(ok, err) => [ok, err]
                .into_iter()
                .flatten()
                .all(|side| self.annotate(scope, side, room)),
            _ => true,
        }
    }

    fn cases(
        &self,
        scope: Option<&str>,
        kind: Kind,
        cases: &mut [Case],
        docs: &mut Option<String>,
        room: &mut usize,
    ) -> bool {
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        if let Some(found) = self.find(scope, kind, &names) {
            if !take(room, found.len()) {
                return false;
            }
            *docs = found.docs.clone();
            for (case, member) in cases.iter_mut().zip(&found.member_docs) {
                case.docs = member.clone();
            }
        }
        cases.iter_mut().all(|case| {
            case.payload
                .as_mut()
                .is_none_or(|payload| self.annotate(scope, payload, room))
        })
    }

    /// A type of this kind and these member names: in `scope` if there is
    /// one, else anywhere in the package.
    fn find(&self, scope: Option<&str>, kind: Kind, names: &[&str]) -> Option<&TypeDocs> {
        let matches = |t: &&TypeDocs| {
            t.kind == kind
                && t.members
                    .iter()
                    .map(String::as_str)
                    .eq(names.iter().copied())
        };
        self.types
            .iter()
            .filter(matches)
            .find(|t| t.scope.as_deref() == scope)
            .or_else(|| self.types.iter().find(matches))
    }
}

/// The contents of the custom section `name` at the top level of a
/// component or module, if it has one. Nested modules are skipped whole.
pub(crate) fn custom_section<'a>(wasm: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut rest = wasm.get(8..)?;
    while let Some((&id, after)) = rest.split_first() {
        let (size, after) = leb128(after)?;
        let body = after.get(..size)?;
        rest = &after[size..];
        if id == 0 {
            let (len, body) = leb128(body)?;
            if body.get(..len)? == name.as_bytes() {
                return Some(&body[len..]);
            }
        }
    }
    None
}

fn leb128(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut value: usize = 0;
    for (i, &byte) in bytes.iter().enumerate().take(5) {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exports::shape::Field;

    const WIT: &str = r#"
package test:docs@0.1.0;

interface geometry {
    /// A point in the plane.
    record point {
        /// Across.
        x: f64,
        /// Up.
        y: f64,
    }
    /// How far apart two points are.
    distance: func(a: point, b: point) -> f64;
}

world shapes {
    /// Say hello.
    export hello: func(name: string) -> string;
    export geometry;
}
"#;

    #[test]
    fn docs_are_found_by_name() {
        let mut resolve = Resolve::new();
        resolve.push_source("docs.wit", WIT).unwrap();
        let docs = WitDocs::index(&resolve);
        assert_eq!(docs.function(None, "hello"), Some("Say hello."));
        assert_eq!(
            docs.function(Some("test:docs/geometry@0.1.0"), "distance"),
            Some("How far apart two points are.")
        );
        assert_eq!(docs.function(None, "distance"), None);
        let field = |name: &str| Field {
            name: name.into(),
            shape: Shape::F64,
            docs: None,
        };
        let mut point = Shape::Record(vec![field("x"), field("y")], None);
        assert!(docs.annotate(Some("test:docs/geometry@0.1.0"), &mut point, &mut 1024));
        let Shape::Record(fields, doc) = &point else {
            unreachable!()
        };
        assert_eq!(doc.as_deref(), Some("A point in the plane."));
        assert_eq!(fields[1].docs.as_deref(), Some("Up."));
        // Another shape does not pick them up.
        let mut other = Shape::Record(vec![field("x"), field("z")], None);
        assert!(docs.annotate(None, &mut other, &mut 1024));
        assert_eq!(other, Shape::Record(vec![field("x"), field("z")], None));
    }

    /// A record used 2^levels times in one type (each level a record of two
    /// of the level below), as the component model lets a few bytes say.
    fn doubled(levels: u32) -> Shape {
        let field = |name: &str, shape: Shape| Field {
            name: name.into(),
            shape,
            docs: None,
        };
        let mut shape = Shape::Record(vec![field("x", Shape::U8)], None);
        for _ in 0..levels {
            shape = Shape::Record(vec![field("a", shape.clone()), field("b", shape)], None);
        }
        shape
    }

    /// A doc is copied into every use of its type; the copies, and the
    /// types themselves, are counted against the room a schema has, and
    /// the counting stops there (64 KiB of docs times 1,024 uses was 64 MiB
    /// copied; 65,536 uses of a megabyte, 64 GiB).
    #[test]
    fn docs_copied_into_a_shared_type_stop_at_the_room() {
        let wit = format!(
            "package test:bomb@0.1.0;\ninterface i {{\n/// {}\nrecord leaf {{ x: u8 }}\n}}\nworld w {{ export i; }}\n",
            "d".repeat(64 << 10)
        );
        let mut resolve = Resolve::new();
        resolve.push_source("bomb.wit", &wit).unwrap();
        let docs = WitDocs::index(&resolve);
        let mut shape = doubled(10);
        let mut room = 256 << 10;
        assert!(shape.fits(&mut room.clone()));
        assert!(!docs.annotate(None, &mut shape, &mut room));
        // A few uses fit, docs and all.
        let mut small = doubled(1);
        let mut room = 256 << 10;
        assert!(docs.annotate(None, &mut small, &mut room));
        assert!(room <= (256 << 10) - 2 * (64 << 10));
        // The types alone: 2^16 uses are over the room, counted no further.
        let mut room = 256 << 10;
        assert!(!doubled(16).fits(&mut room));
        assert!(room < 16);
    }

    #[test]
    fn custom_sections_are_found_at_the_top_level() {
        let mut wasm = b"\0asm\x0d\0\x01\0".to_vec();
        // A custom section "other", then "wit-source" with body "abc".
        wasm.extend([0, 7, 5]);
        wasm.extend(b"other\x01");
        wasm.extend([0, 14, 10]);
        wasm.extend(b"wit-sourceabc");
        assert_eq!(custom_section(&wasm, SECTION), Some(&b"abc"[..]));
        assert_eq!(custom_section(&wasm, "missing"), None);
        assert_eq!(custom_section(&wasm[..20], SECTION), None);
    }
}
