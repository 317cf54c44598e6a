//! A small jq-like filter language, written by hand.
//!
//! [`lexer`] makes tokens, [`parser`] builds a [`Filter`] tree (checking calls
//! against the [`catalog`]), [`eval`] runs it over `serde_json` values with
//! [`builtins`], [`patterns`] for the regex ones and, for `del`, `path` and
//! the assignment operators, [`paths`]. Nesting in the filter is capped at
//! [`parser::MAX_DEPTH`], the work one run may do at [`eval::MAX_STEPS`], and
//! the depth of values it builds at [`value::MAX_VALUE_DEPTH`], so no filter
//! can exhaust the stack or run unbounded.

mod builtins;
mod catalog;
mod eval;
mod lexer;
mod parser;
mod paths;
mod patterns;
mod value;

use serde_json::Value;

use crate::span::{Span, underline};

pub(crate) use catalog::BUILTINS;

/// Parses `filter` and runs it on `document`: all its outputs, in order, or
/// an error message naming the column.
pub(crate) fn run(filter: &str, document: &Value) -> Result<Vec<Value>, String> {
    let tokens = lexer::lex(filter).map_err(|e| e.render(filter))?;
    let tree = parser::parse(&tokens).map_err(|e| e.render(filter))?;
    let mut interp = eval::Interp::new();
    interp.eval(&tree, document).map_err(|e| e.render(filter))
}

/// A node of a parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    /// `.`
    Identity,
    /// `..`: the input and every value inside it.
    Recurse,
    /// A constant.
    Literal(Value),
    /// `base` followed by `.name`, `[i]`, `[a:b]` and `[]` steps.
    Path { base: Box<Filter>, steps: Vec<Step> },
    /// `a | b | c`
    Pipe(Vec<Filter>),
    /// `a, b, c`
    Comma(Vec<Filter>),
    /// `a // b // c`
    Alt(Vec<Filter>),
    /// `a or b or c`
    Or(Vec<Filter>),
    /// `a and b and c`
    And(Vec<Filter>),
    /// `a == b`, `a < b`, ...
    Compare {
        op: &'static str,
        lhs: Box<Filter>,
        rhs: Box<Filter>,
        span: Span,
    },
    /// `a + b - c` or `a * b / c % d`, left to right.
    Arith {
        first: Box<Filter>,
        rest: Vec<(&'static str, Span, Filter)>,
    },
    /// `-a`
    Neg { operand: Box<Filter>, span: Span },
    /// `[f]`, or `[]`.
    Array(Option<Box<Filter>>),
    /// `{key: value, ...}`
    Object(Vec<(Key, Filter)>),
    /// `if c then a elif d then b else e end`
    If {
        branches: Vec<(Filter, Filter)>,
        otherwise: Option<Box<Filter>>,
    },
    /// `try body catch handler`, or `body?`.
    Try {
        body: Box<Filter>,
        handler: Option<Box<Filter>>,
    },
    /// A builtin, with its arguments.
    Call {
        name: String,
        args: Vec<Filter>,
        span: Span,
    },
    /// `path = value`, `path |= f`, `path += value`, ...
    Assign {
        op: &'static str,
        path: Box<Filter>,
        value: Box<Filter>,
        span: Span,
    },
}

/// One step of a [`Filter::Path`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// `.name` or `."name"` or `.["name"]`.
    Field(String, Span),
    /// `[f]`: an array index or an object key, computed from the path's input.
    Index(Filter, Span),
    /// `[from:to]`
    Slice(Option<Filter>, Option<Filter>, Span),
    /// `[]`
    Iterate(Span),
}

/// The key of an object constructor entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Key {
    Literal(String),
    Computed(Filter, Span),
}

/// A problem with a filter, at a place in it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FilterError {
    /// What `error(...)` raised, or the message as a string.
    pub value: Value,
    pub span: Option<Span>,
    pub hint: Option<String>,
    /// A limit was hit: `try` and `?` do not catch it.
    pub fatal: bool,
}

impl FilterError {
    /// A problem at `span`.
    pub fn at(span: Span, message: impl Into<String>) -> Self {
        Self {
            value: Value::String(message.into()),
            span: Some(span),
            hint: None,
            fatal: false,
        }
    }

    /// A problem with no particular place.
    pub fn general(message: impl Into<String>) -> Self {
        Self {
            value: Value::String(message.into()),
            span: None,
            hint: None,
            fatal: false,
        }
    }

    /// Adds advice, written after the column.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Marks the error as one that `try` cannot catch.
    pub fn fatal(mut self) -> Self {
        self.fatal = true;
        self
    }

    /// Places the error at `span` unless it already has a place.
    pub fn or_at(mut self, span: Span) -> Self {
        self.span.get_or_insert(span);
        self
    }

    /// The message, the column, the advice and the filter underlined.
    pub fn render(&self, source: &str) -> String {
        let mut out = match &self.value {
            Value::String(message) => message.clone(),
            other => format!("error({other})"),
        };
        if let Some(span) = self.span {
            out.push_str(&format!(" at column {}", span.column()));
        }
        if let Some(hint) = &self.hint {
            out.push_str(" — ");
            out.push_str(hint);
        }
        if let Some(span) = self.span {
            out.push('\n');
            out.push_str(&underline(source, span));
        }
        out
    }
}

#[cfg(test)]
mod tests;
