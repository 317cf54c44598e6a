//! A tool's JSON Schemas, checked at load so that validating a call can never
//! cost more than a known, small amount of host CPU and stack.
//!
//! A schema is host work sized by the tool's author: a few kB of nested
//! `$ref` + `anyOf` can make one validation take seconds and gigabytes. So a
//! schema is measured before a validator is built, and refused at load when:
//!
//! - its text is longer than [`MAX_SCHEMA_BYTES`], or nests deeper than [`MAX_NESTING`];
//! - a `$ref` is not local (`#`, `#/json/pointer` or `#anchor`), or points at no
//!   schema of the document; `$dynamicRef`, `$recursiveRef` and embedded `$id`
//!   resources are refused, because they make the reference graph depend on
//!   the input; so are anchors made by an `$id` (draft 4: `id`) with a
//!   fragment, which the validator honours only in some drafts: the
//!   references are read as the document's draft (its `$schema`) reads them,
//!   or a loop the measure missed would overflow the validator's stack;
//! - references form a cycle that does not descend into the input (it would
//!   never end);
//! - the schema, expanded by its references, would apply more than
//!   [`MAX_WORK_PER_VALUE`] keyword checks to one value of the input (the
//!   `$ref` + `anyOf` bomb: 2 branches per level and 22 levels apply 4 million);
//! - validation would nest more than [`MAX_FRAMES`] schemas deep for the
//!   deepest input JSON can hold (128 levels), which would overflow a stack.
//!
//! The expanded size is an upper bound computed on the reference graph, one
//! input level at a time, with memoised counts, so measuring is linear in the
//! schema's size times the input depth, whatever the schema. `pattern`s are
//! compiled by the linear-time `regex` engine with size limits (no
//! backtracking, no look-around), so no string can make a match slow.
//!
//! The result, [`CheckedSchema`], carries its [`CheckedSchema::work_per_byte`]:
//! the executor multiplies it by an input's length to bound the work of one
//! validation before it starts.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// The longest schema text accepted, in bytes.
pub(crate) const MAX_SCHEMA_BYTES: usize = 256 << 10;
/// The deepest nesting of schema objects inside one schema document.
pub(crate) const MAX_NESTING: usize = 64;
/// The most keyword checks one value of the input may receive, with every
/// `$ref` followed and every branch taken.
pub(crate) const MAX_WORK_PER_VALUE: u64 = 20_000;
/// The deepest validation may nest, following references and the input.
pub(crate) const MAX_FRAMES: u64 = 1_000;
/// The deepest input a call can carry: `serde_json` refuses to nest deeper
/// than 128 arrays or objects, and the leaf is one more level.
const INPUT_DEPTH: usize = 129;
/// Compiled size limits for one `pattern` (the `regex` crate's own defaults
/// are 10 MiB and 2 MiB).
const REGEX_SIZE_LIMIT: usize = 256 << 10;
const REGEX_DFA_SIZE_LIMIT: usize = 1 << 20;

/// Why a schema was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SchemaError {
    /// The text is not JSON.
    #[error("is not JSON: {0}")]
    NotJson(String),
    /// The text is JSON, but not an object.
    #[error("must be a JSON object")]
    NotObject,
    /// The text is longer than [`MAX_SCHEMA_BYTES`].
    #[error("is {bytes} bytes long; the limit is {MAX_SCHEMA_BYTES} bytes")]
    TooLarge {
        /// Its length.
        bytes: usize,
    },
    /// Schema objects nest deeper than [`MAX_NESTING`].
    #[error("nests schemas more than {MAX_NESTING} levels deep (at `{at}`)")]
    TooDeep {
        /// Where the limit was passed (a JSON pointer).
        at: String,
    },
    /// A reference the host does not follow.
    #[error("{keyword} `{reference}` at `{at}` is not accepted: {why}")]
    Reference {
        /// `$ref`, `$dynamicRef`, `$recursiveRef`, `$id` or `id`.
        keyword: &'static str,
        /// Its value.
        reference: String,
        /// Where it is (a JSON pointer).
        at: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// References that loop without descending into the input.
    #[error(
        "`$ref` at `{at}` loops back to itself without descending into the input (through allOf/anyOf/oneOf/not/if/$ref), so validation would never end"
    )]
    Cycle {
        /// A schema on the loop (a JSON pointer).
        at: String,
    },
    /// Expanded by its references, the schema applies too many checks to one value.
    #[error(
        "expanded by its `$ref`s and combinators it applies more than {MAX_WORK_PER_VALUE} keyword checks to one value of the input (the limit); share less, or nest fewer `anyOf`/`oneOf`/`allOf` levels"
    )]
    TooMuchWork,
    /// Validation would nest deeper than [`MAX_FRAMES`].
    #[error(
        "validating the deepest input would nest {frames} schemas deep, following references; the limit is {MAX_FRAMES}"
    )]
    TooManyFrames {
        /// The depth it would reach.
        frames: u64,
    },
    /// The validator could not be built: not a valid JSON Schema, or a
    /// `pattern` the linear-time regex engine does not accept.
    #[error("is not a valid JSON Schema: {0}")]
    Invalid(String),
}

/// A schema that passed every check, with its validator.
pub(crate) struct CheckedSchema {
    pub(crate) validator: jsonschema::Validator,
    /// Keyword checks one value of the input may receive, at most.
    work_per_value: u64,
}

impl std::fmt::Debug for CheckedSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedSchema")
            .field("work_per_value", &self.work_per_value)
            .finish_non_exhaustive()
    }
}

impl CheckedSchema {
    /// Parses, measures and compiles `text`.
    pub(crate) fn parse(text: &str) -> Result<(Value, Self), SchemaError> {
        if text.len() > MAX_SCHEMA_BYTES {
            return Err(SchemaError::TooLarge { bytes: text.len() });
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| SchemaError::NotJson(e.to_string()))?;
        if !value.is_object() {
            return Err(SchemaError::NotObject);
        }
        let checked = Self::from_value(&value)?;
        Ok((value, checked))
    }

    /// Measures and compiles a parsed schema.
    pub(crate) fn from_value(value: &Value) -> Result<Self, SchemaError> {
        let cost = measure(value)?;
        let validator = jsonschema::options()
            .with_pattern_options(
                jsonschema::PatternOptions::regex()
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_DFA_SIZE_LIMIT),
            )
            .build(value)
            .map_err(|e| SchemaError::Invalid(e.to_string()))?;
        Ok(Self {
            validator,
            work_per_value: cost.work,
        })
    }

    /// An upper bound on the keyword checks one byte of input costs: every
    /// value of a JSON text takes at least one byte.
    pub(crate) fn work_per_byte(&self) -> u64 {
        self.work_per_value.max(1)
    }
}

/// What measuring found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cost {
    /// Keyword checks one value of the input may receive.
    pub(crate) work: u64,
}

/// One schema of the document (an object or a boolean).
#[derive(Default)]
struct Node {
    /// Applied to the same value: allOf/anyOf/oneOf/not/if/then/else/
    /// dependentSchemas, and `$ref` once resolved.
    in_place: Vec<usize>,
    /// Applied to the values inside, all of them possibly to one value.
    inside: Vec<usize>,
    /// Applied to the values inside, at most one of each group to one value
    /// (`properties`, `prefixItems`).
    one_of_group: Vec<Vec<usize>>,
    /// Its own cost per application.
    weight: u64,
    /// `unevaluated*` evaluates its in-place schemas once more.
    unevaluated: bool,
    /// The schema it sits in (the root: itself).
    parent: usize,
    /// The JSON-pointer tokens from the parent to it, such as `properties/a`.
    /// Only these are kept: a whole pointer per schema would cost the depth
    /// times the key length for every schema, gigabytes for a schema of a
    /// few hundred kB with long keys on a deep path.
    key: String,
}

/// The JSON pointer of schema `id`, built only for messages.
fn pointer_of(nodes: &[Node], mut id: usize) -> String {
    let mut keys = Vec::new();
    while id != 0 {
        keys.push(nodes[id].key.as_str());
        id = nodes[id].parent;
    }
    keys.iter().rev().map(|key| format!("/{key}")).collect()
}

struct Walk<'a> {
    root: &'a Value,
    nodes: Vec<Node>,
    /// The schema each value of the document is, by its address.
    schemas: HashMap<*const Value, usize>,
    anchors: HashMap<&'a str, usize>,
    /// `$ref`s: the schema that has one, and its text.
    refs: Vec<(usize, &'a str)>,
    /// The keywords that name a schema's identity in the document's draft:
    /// `id` in drafts 3 and 4 (`$id` is refused there too), `$id` since.
    identities: &'static [&'static str],
    /// Whether `$anchor` makes anchors: since draft 2019-09 (the validator
    /// ignores it in earlier drafts, so the measure must too).
    named_anchors: bool,
}

/// Measures a schema document, or says why it is refused.
pub(crate) fn measure(schema: &Value) -> Result<Cost, SchemaError> {
    // The validator reads the draft from `$schema`, the latest without one.
    let draft = schema.get("$schema").and_then(Value::as_str).unwrap_or("");
    let before_2019 = ["draft-03", "draft-04", "draft-05", "draft-06", "draft-07"]
        .iter()
        .any(|name| draft.contains(name));
    let mut walk = Walk {
        root: schema,
        nodes: vec![Node::default()],
        schemas: HashMap::new(),
        anchors: HashMap::new(),
        refs: Vec::new(),
        identities: if draft.contains("draft-03") || draft.contains("draft-04") {
            &["$id", "id"]
        } else {
            &["$id"]
        },
        named_anchors: !before_2019,
    };
    let mut stack: Vec<(usize, &Value, usize)> = vec![(0, schema, 0)];
    while let Some((id, value, depth)) = stack.pop() {
        if depth > MAX_NESTING {
            return Err(SchemaError::TooDeep {
                at: pointer_of(&walk.nodes, id),
            });
        }
        walk.schemas.insert(std::ptr::from_ref(value), id);
        let Value::Object(map) = value else {
            walk.nodes[id].weight = 1;
            continue;
        };
        walk.visit(id, map, depth, &mut stack)?;
    }
    for (from, reference) in std::mem::take(&mut walk.refs) {
        let to = walk.resolve(reference, from)?;
        walk.nodes[from].in_place.push(to);
    }
    let order = in_place_order(&walk.nodes)?;
    cost(&walk.nodes, &order)
}

impl<'a> Walk<'a> {
    fn visit(
        &mut self,
        id: usize,
        map: &'a Map<String, Value>,
        depth: usize,
        stack: &mut Vec<(usize, &'a Value, usize)>,
    ) -> Result<(), SchemaError> {
        let refuse = |keyword: &'static str, reference: &Value, why: &'static str| {
            Err(SchemaError::Reference {
                keyword,
                reference: reference.as_str().unwrap_or_default().to_string(),
                at: pointer_of(&self.nodes, id),
                why,
            })
        };
        for &keyword in self.identities {
            let Some(id_value) = map.get(keyword) else {
                continue;
            };
            if depth > 0 {
                return refuse(
                    keyword,
                    id_value,
                    "embedded resources are not supported; put shared schemas in `$defs` and use local `#/...` references",
                );
            }
            let fragment = id_value
                .as_str()
                .and_then(|text| text.split_once('#'))
                .map_or("", |(_, fragment)| fragment);
            if !fragment.is_empty() {
                return refuse(
                    keyword,
                    id_value,
                    "an anchor made by an identifier's fragment is not supported; use `#/...` references",
                );
            }
        }
        for keyword in ["$dynamicRef", "$recursiveRef"] {
            if let Some(reference) = map.get(keyword) {
                return refuse(
                    if keyword == "$dynamicRef" {
                        "$dynamicRef"
                    } else {
                        "$recursiveRef"
                    },
                    reference,
                    "dynamic references are not supported; use `$ref`",
                );
            }
        }
        for keyword in ["$anchor", "$dynamicAnchor"] {
            if let Some(Value::String(name)) = map.get(keyword)
                && self.named_anchors
            {
                self.anchors.insert(name, id);
            }
        }
        if let Some(reference) = map.get("$ref") {
            let Value::String(text) = reference else {
                return refuse("$ref", reference, "it must be a string");
            };
            self.refs.push((id, text));
        }
        let mut weight: u64 = 1;
        for (keyword, value) in map {
            let mut child = |nodes: &mut Vec<Node>, key: &str, value: &'a Value| {
                let child = nodes.len();
                nodes.push(Node {
                    parent: id,
                    key: key.to_string(),
                    ..Node::default()
                });
                stack.push((child, value, depth + 1));
                child
            };
            let is_schema = |v: &Value| v.is_object() || v.is_boolean();
            match keyword.as_str() {
                "not" | "if" | "then" | "else" if is_schema(value) => {
                    let c = child(&mut self.nodes, keyword, value);
                    self.nodes[id].in_place.push(c);
                }
                "allOf" | "anyOf" | "oneOf" => {
                    for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                        let c = child(&mut self.nodes, &format!("{keyword}/{i}"), item);
                        self.nodes[id].in_place.push(c);
                    }
                }
                "dependentSchemas" | "dependencies" => {
                    for (name, item) in value.as_object().into_iter().flatten() {
                        if is_schema(item) {
                            let key = format!("{keyword}/{}", escape(name));
                            let c = child(&mut self.nodes, &key, item);
                            self.nodes[id].in_place.push(c);
                        } else if let Value::Array(names) = item {
                            weight += names.len() as u64;
                        }
                    }
                }
                "additionalProperties"
                | "unevaluatedProperties"
                | "propertyNames"
                | "additionalItems"
                | "unevaluatedItems"
                | "contains"
                | "items"
                    if is_schema(value) =>
                {
                    let c = child(&mut self.nodes, keyword, value);
                    self.nodes[id].inside.push(c);
                }
                "items" | "prefixItems" => {
                    let mut group = Vec::new();
                    for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                        group.push(child(&mut self.nodes, &format!("{keyword}/{i}"), item));
                    }
                    weight += group.len() as u64;
                    self.nodes[id].one_of_group.push(group);
                }
                "properties" | "patternProperties" => {
                    let mut group = Vec::new();
                    for (name, item) in value.as_object().into_iter().flatten() {
                        let key = format!("{keyword}/{}", escape(name));
                        group.push(child(&mut self.nodes, &key, item));
                        if keyword == "patternProperties" {
                            weight += 1 + name.len() as u64 / 8;
                        }
                    }
                    weight += group.len() as u64;
                    if keyword == "properties" {
                        self.nodes[id].one_of_group.push(group);
                    } else {
                        self.nodes[id].inside.extend(group);
                    }
                }
                "$defs" | "definitions" => {
                    for (name, item) in value.as_object().into_iter().flatten() {
                        child(
                            &mut self.nodes,
                            &format!("{keyword}/{}", escape(name)),
                            item,
                        );
                    }
                }
                "contentSchema" if is_schema(value) => {
                    child(&mut self.nodes, keyword, value);
                }
                "enum" | "required" => {
                    weight += value.as_array().map_or(0, |a| a.len() as u64);
                }
                "dependentRequired" => {
                    for names in value.as_object().into_iter().flatten().map(|(_, v)| v) {
                        weight += names.as_array().map_or(0, |a| a.len() as u64);
                    }
                }
                "pattern" => weight += value.as_str().map_or(0, |p| p.len() as u64 / 8),
                _ => {}
            }
        }
        self.nodes[id].weight = weight;
        self.nodes[id].unevaluated =
            map.contains_key("unevaluatedProperties") || map.contains_key("unevaluatedItems");
        Ok(())
    }

    /// The schema a local reference points at.
    fn resolve(&self, reference: &str, from: usize) -> Result<usize, SchemaError> {
        let refuse = |why: &'static str| SchemaError::Reference {
            keyword: "$ref",
            reference: reference.to_string(),
            at: pointer_of(&self.nodes, from),
            why,
        };
        let Some(fragment) = reference.strip_prefix('#') else {
            return Err(refuse(
                "only local references (`#`, `#/json/pointer`, `#anchor`) are followed",
            ));
        };
        let fragment = percent_decode(fragment).ok_or_else(|| refuse("bad percent-encoding"))?;
        let found = if fragment.is_empty() || fragment.starts_with('/') {
            // Only a value that is one of the document's schemas counts.
            self.root
                .pointer(&fragment)
                .and_then(|target| self.schemas.get(&std::ptr::from_ref(target)))
        } else {
            self.anchors.get(fragment.as_str())
        };
        found
            .copied()
            .ok_or_else(|| refuse("it points at no schema of this document"))
    }
}

/// The schemas in an order where every in-place child comes before its
/// parent, or the cycle that prevents one.
fn in_place_order(nodes: &[Node]) -> Result<Vec<usize>, SchemaError> {
    const NEW: u8 = 0;
    const OPEN: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; nodes.len()];
    let mut order = Vec::with_capacity(nodes.len());
    for start in 0..nodes.len() {
        if state[start] != NEW {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state[start] = OPEN;
        while let Some((node, next)) = stack.last_mut() {
            if let Some(&child) = nodes[*node].in_place.get(*next) {
                *next += 1;
                match state[child] {
                    NEW => {
                        state[child] = OPEN;
                        stack.push((child, 0));
                    }
                    OPEN => {
                        let at = pointer_of(nodes, child);
                        return Err(SchemaError::Cycle {
                            at: if at.is_empty() { "#".into() } else { at },
                        });
                    }
                    _ => {}
                }
            } else {
                state[*node] = DONE;
                order.push(*node);
                stack.pop();
            }
        }
    }
    Ok(order)
}

/// The checks one input value may receive and the deepest nesting, level by
/// level of the input: `work[d][s]` bounds the checks that one application of
/// schema `s` makes on one value `d` levels below it.
fn cost(nodes: &[Node], order: &[usize]) -> Result<Cost, SchemaError> {
    let cap = MAX_WORK_PER_VALUE + 1;
    let mut previous = vec![0u64; nodes.len()];
    let mut current = vec![0u64; nodes.len()];
    let mut frames_previous = vec![0u64; nodes.len()];
    let mut frames = vec![0u64; nodes.len()];
    let mut worst = 0u64;
    for depth in 0..=INPUT_DEPTH {
        for &id in order {
            let node = &nodes[id];
            let mut work = if depth == 0 { node.weight } else { 0 };
            let mut deepest = 0u64;
            let repeat = if node.unevaluated { 2 } else { 1 };
            for &c in &node.in_place {
                work = work.saturating_add(current[c].saturating_mul(repeat));
                deepest = deepest.max(frames[c]);
            }
            if depth > 0 {
                for &c in &node.inside {
                    work = work.saturating_add(previous[c]);
                    deepest = deepest.max(frames_previous[c]);
                }
                for group in &node.one_of_group {
                    let most = group.iter().map(|&c| previous[c]).max().unwrap_or(0);
                    work = work.saturating_add(most);
                    for &c in group {
                        deepest = deepest.max(frames_previous[c]);
                    }
                }
            }
            current[id] = work.min(cap);
            frames[id] = (deepest + 1).min(MAX_FRAMES + 1);
        }
        worst = worst.max(current[0]);
        if worst > MAX_WORK_PER_VALUE {
            return Err(SchemaError::TooMuchWork);
        }
        if frames[0] > MAX_FRAMES {
            return Err(SchemaError::TooManyFrames { frames: frames[0] });
        }
        if depth > 0 && current.iter().all(|&w| w == 0) {
            break;
        }
        std::mem::swap(&mut previous, &mut current);
        std::mem::swap(&mut frames_previous, &mut frames);
    }
    Ok(Cost { work: worst })
}

/// A JSON-pointer token.
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_string());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
#[path = "schema_tests.rs"]
pub(super) mod tests;
