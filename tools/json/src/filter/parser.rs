//! Builds a [`Filter`] from tokens, by recursive descent.
//!
//! Precedence, loosest first, as in jq: `|`, `,`, `//`, the assignments
//! (`=`, `|=`, `+=`, ...), `or`, `and`, comparisons, `+ -`, `* / %`, unary
//! `-`, then postfix `.name`, `[...]` and `?`. Runs of one operator become one
//! flat node, so the tree is only as deep as the parser's recursion, which
//! [`MAX_DEPTH`] bounds.

use serde_json::Value;

use super::lexer::{Tok, Token};
use super::{BUILTINS, Filter, FilterError, Key, Step, catalog};
use crate::span::{Span, did_you_mean};

/// How deeply brackets, calls and prefix operators may nest.
pub(crate) const MAX_DEPTH: usize = 64;

/// Words that are part of the grammar, not builtins.
const KEYWORDS: &[&str] = &[
    "and", "or", "if", "then", "elif", "else", "end", "try", "catch", "true", "false", "null",
];

/// jq words this language does not have.
const UNSUPPORTED: &[&str] = &[
    "reduce", "foreach", "def", "as", "label", "import", "include", "input", "inputs", "env",
];

const ASSIGNMENTS: &[&str] = &["=", "|=", "+=", "-=", "*=", "/=", "%=", "//="];
const COMPARISONS: &[&str] = &["==", "!=", "<", "<=", ">", ">="];

// Binary operator precedence, loosest first.
const PIPE: u8 = 1;
const COMMA: u8 = 2;
const ALTERNATIVE: u8 = 3;
const ASSIGNMENT: u8 = 4;
const OR: u8 = 5;
const AND: u8 = 6;
const COMPARISON: u8 = 7;
const SUM: u8 = 8;
const PRODUCT: u8 = 9;

/// The precedence of `tok` as a binary operator, if it is one.
fn precedence(tok: &Tok) -> Option<u8> {
    match tok {
        Tok::Op("|") => Some(PIPE),
        Tok::Op(",") => Some(COMMA),
        Tok::Op("//") => Some(ALTERNATIVE),
        Tok::Op(op) if ASSIGNMENTS.contains(op) => Some(ASSIGNMENT),
        Tok::Ident(word) if word == "or" => Some(OR),
        Tok::Ident(word) if word == "and" => Some(AND),
        Tok::Op(op) if COMPARISONS.contains(op) => Some(COMPARISON),
        Tok::Op("+" | "-") => Some(SUM),
        Tok::Op("*" | "/" | "%") => Some(PRODUCT),
        _ => None,
    }
}

/// The text of a binary operator token.
fn operator(tok: &Tok) -> &'static str {
    match tok {
        Tok::Op(op) => op,
        Tok::Ident(word) if word == "or" => "or",
        _ => "and",
    }
}

/// Parses a whole filter.
pub(crate) fn parse(tokens: &[Token]) -> Result<Filter, FilterError> {
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    if parser.peek().tok == Tok::End {
        return Err(
            FilterError::general("the filter is empty").hint("use `.` for the whole document")
        );
    }
    let filter = parser.pipe()?;
    if parser.peek().tok != Tok::End {
        return Err(parser.unexpected("an operator or the end of the filter"));
    }
    Ok(filter)
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // `lex` always ends the tokens with `End`, and nothing moves past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if token.tok != Tok::End {
            self.pos += 1;
        }
        token
    }

    /// Consumes the operator `op` if it is next.
    fn eat(&mut self, op: &str) -> bool {
        let found = self.peek().is(op);
        if found {
            self.bump();
        }
        found
    }

    /// Consumes the keyword `word` if it is next.
    fn eat_word(&mut self, word: &str) -> bool {
        let found = matches!(&self.peek().tok, Tok::Ident(w) if w == word);
        if found {
            self.bump();
        }
        found
    }

    /// Consumes `op`, or fails saying what it would close.
    fn expect(&mut self, op: &str, context: &str) -> Result<Span, FilterError> {
        if self.peek().is(op) {
            return Ok(self.bump().span);
        }
        Err(self.unexpected(&format!("`{op}` {context}")))
    }

    /// Enters one level of nesting, failing past [`MAX_DEPTH`].
    fn descend(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::at(
                self.peek().span,
                format!("the filter nests more than {MAX_DEPTH} levels deep"),
            ));
        }
        Ok(())
    }

    /// A whole filter: `a | b, c // d ...`.
    fn pipe(&mut self) -> Result<Filter, FilterError> {
        self.binary(PIPE)
    }

    /// An object value: like [`Self::pipe`], but a `,` ends it, since commas
    /// separate the entries.
    fn object_value(&mut self) -> Result<Filter, FilterError> {
        let mut items = vec![self.binary(ALTERNATIVE)?];
        while self.eat("|") {
            items.push(self.binary(ALTERNATIVE)?);
        }
        Ok(many(items, Filter::Pipe))
    }

    /// Operators binding at least as tightly as `min`, by precedence
    /// climbing. A run of one n-ary operator (`|`, `,`, `//`, `or`, `and`)
    /// becomes one node, and so does a run of `+ -` or of `* / %`.
    fn binary(&mut self, min: u8) -> Result<Filter, FilterError> {
        self.descend()?;
        let mut lhs = self.unary()?;
        loop {
            let token = self.peek();
            let Some(prec) = precedence(&token.tok).filter(|&p| p >= min) else {
                break;
            };
            let (op, span) = (operator(&token.tok), token.span);
            self.bump();
            let rhs = self.binary(prec + 1)?;
            lhs = match prec {
                PIPE => join(lhs, rhs, Filter::Pipe),
                COMMA => join(lhs, rhs, Filter::Comma),
                ALTERNATIVE => join(lhs, rhs, Filter::Alt),
                OR => join(lhs, rhs, Filter::Or),
                AND => join(lhs, rhs, Filter::And),
                ASSIGNMENT => Filter::Assign {
                    op,
                    path: Box::new(lhs),
                    value: Box::new(rhs),
                    span,
                },
                COMPARISON => Filter::Compare {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                    span,
                },
                _ => chain(lhs, op, span, rhs),
            };
            if matches!(prec, ASSIGNMENT | COMPARISON) && precedence(&self.peek().tok) == Some(prec)
            {
                let what = if prec == COMPARISON {
                    "comparisons"
                } else {
                    "assignments"
                };
                return Err(FilterError::at(self.peek().span, format!("{what} do not chain"))
                    .hint("combine comparisons with `and`, e.g. `.x > 1 and .x < 5`; use parentheses or `|` between assignments"));
            }
        }
        self.depth -= 1;
        Ok(lhs)
    }

    /// `-a`, or a postfix term.
    fn unary(&mut self) -> Result<Filter, FilterError> {
        if !self.peek().is("-") {
            return self.postfix();
        }
        let span = self.bump().span;
        self.descend()?;
        let operand = self.unary()?;
        self.depth -= 1;
        if let Filter::Literal(Value::Number(n)) = &operand
            && let Some(x) = n.as_f64()
        {
            return Ok(Filter::Literal(
                super::value::number(-x).unwrap_or(Value::Null),
            ));
        }
        Ok(Filter::Neg {
            operand: Box::new(operand),
            span,
        })
    }

    /// A term followed by `.name`, `."name"`, `[...]` and `?`.
    fn postfix(&mut self) -> Result<Filter, FilterError> {
        let mut base = self.term()?;
        let mut steps = Vec::new();
        let mut wraps = 0;
        loop {
            let token = self.peek().clone();
            match &token.tok {
                Tok::Field(name) => {
                    self.bump();
                    steps.push(Step::Field(name.clone(), token.span));
                }
                Tok::Dot if self.next_is_str() => {
                    self.bump();
                    let (name, span) = self.string()?;
                    steps.push(Step::Field(name, token.span.to(span)));
                }
                Tok::Dot if self.tokens.get(self.pos + 1).is_some_and(|t| t.is("[")) => {
                    self.bump();
                }
                Tok::Op("[") => steps.push(self.bracket()?),
                Tok::Op("?") => {
                    self.bump();
                    self.descend()?;
                    wraps += 1;
                    let body = path(base, std::mem::take(&mut steps));
                    base = Filter::Try {
                        body: Box::new(body),
                        handler: None,
                    };
                }
                _ => break,
            }
        }
        self.depth -= wraps;
        Ok(path(base, steps))
    }

    fn next_is_str(&self) -> bool {
        self.tokens
            .get(self.pos + 1)
            .is_some_and(|t| matches!(t.tok, Tok::Str(_)))
    }

    fn string(&mut self) -> Result<(String, Span), FilterError> {
        let token = self.bump();
        match token.tok {
            Tok::Str(s) => Ok((s, token.span)),
            _ => Err(FilterError::at(token.span, "expected a string")),
        }
    }

    /// `[]`, `[f]`, `[a:b]`, `[a:]` or `[:b]`, after a term.
    fn bracket(&mut self) -> Result<Step, FilterError> {
        let open = self.bump().span;
        let step = if self.peek().is("]") {
            Step::Iterate(open.to(self.bump().span))
        } else if self.eat(":") {
            let to = self.pipe()?;
            let close = self.expect("]", "to close the slice")?;
            Step::Slice(None, Some(to), open.to(close))
        } else {
            let index = self.pipe()?;
            if self.eat(":") {
                let to = if self.peek().is("]") {
                    None
                } else {
                    Some(self.pipe()?)
                };
                let close = self.expect("]", "to close the slice")?;
                Step::Slice(Some(index), to, open.to(close))
            } else {
                let close = self.expect(
                    "]",
                    &format!("to close the `[` at column {}", open.column()),
                )?;
                match index {
                    Filter::Literal(Value::String(name)) => Step::Field(name, open.to(close)),
                    index => Step::Index(index, open.to(close)),
                }
            }
        };
        Ok(step)
    }

    /// A value, a path start, a bracketed filter, a constructor, `if`, `try`
    /// or a builtin call.
    fn term(&mut self) -> Result<Filter, FilterError> {
        let token = self.peek().clone();
        match token.tok {
            Tok::Dot if self.next_is_str() => {
                self.bump();
                let (name, span) = self.string()?;
                Ok(path(
                    Filter::Identity,
                    vec![Step::Field(name, token.span.to(span))],
                ))
            }
            Tok::Dot => {
                self.bump();
                Ok(Filter::Identity)
            }
            Tok::DotDot => {
                self.bump();
                Ok(Filter::Recurse)
            }
            Tok::Field(name) => {
                self.bump();
                Ok(path(Filter::Identity, vec![Step::Field(name, token.span)]))
            }
            Tok::Num(n) => {
                self.bump();
                Ok(Filter::Literal(
                    super::value::number(n).unwrap_or(Value::Null),
                ))
            }
            Tok::Str(s) => {
                self.bump();
                Ok(Filter::Literal(Value::String(s)))
            }
            Tok::Op("(") => {
                self.bump();
                let inner = self.pipe()?;
                self.expect(
                    ")",
                    &format!("to close the `(` at column {}", token.span.column()),
                )?;
                Ok(inner)
            }
            Tok::Op("[") => {
                self.bump();
                if self.eat("]") {
                    return Ok(Filter::Array(None));
                }
                let inner = self.pipe()?;
                self.expect(
                    "]",
                    &format!("to close the `[` at column {}", token.span.column()),
                )?;
                Ok(Filter::Array(Some(Box::new(inner))))
            }
            Tok::Op("{") => self.object(),
            Tok::Ident(word) => self.word(&word, token.span),
            _ => {
                Err(self.unexpected("a filter: `.`, `.name`, a value, `[`, `{`, `(` or a function"))
            }
        }
    }

    /// A term that starts with a name: a keyword or a builtin call.
    fn word(&mut self, word: &str, span: Span) -> Result<Filter, FilterError> {
        match word {
            "true" | "false" | "null" => {
                self.bump();
                Ok(Filter::Literal(match word {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => Value::Null,
                }))
            }
            "if" => self.conditional(),
            "try" => {
                self.bump();
                self.descend()?;
                let body = self.postfix()?;
                let handler = if self.eat_word("catch") {
                    Some(Box::new(self.postfix()?))
                } else {
                    None
                };
                self.depth -= 1;
                Ok(Filter::Try {
                    body: Box::new(body),
                    handler,
                })
            }
            w if UNSUPPORTED.contains(&w) => Err(FilterError::at(
                span,
                format!("`{w}` is not supported in this filter language"),
            )
            .hint("see the tool description for what is")),
            w if KEYWORDS.contains(&w) => Err(self.unexpected("a filter")),
            _ => self.call(word, span),
        }
    }

    /// `if c then a (elif c then a)* (else b)? end`
    fn conditional(&mut self) -> Result<Filter, FilterError> {
        let open = self.bump().span;
        let mut branches = Vec::new();
        let mut otherwise = None;
        // Each branch nests one level deeper when it runs.
        let entered = self.depth;
        loop {
            self.descend()?;
            let condition = self.pipe()?;
            if !self.eat_word("then") {
                return Err(self.unexpected("`then`"));
            }
            branches.push((condition, self.pipe()?));
            if self.eat_word("elif") {
                continue;
            }
            if self.eat_word("else") {
                otherwise = Some(Box::new(self.pipe()?));
            }
            if self.eat_word("end") {
                break;
            }
            return Err(self.unexpected(&format!(
                "`elif`, `else` or `end` to close the `if` at column {}",
                open.column()
            )));
        }
        self.depth = entered;
        Ok(Filter::If {
            branches,
            otherwise,
        })
    }

    /// A builtin, with `(a; b)` arguments if it takes any.
    fn call(&mut self, name: &str, span: Span) -> Result<Filter, FilterError> {
        self.bump();
        let mut args = Vec::new();
        let mut end = span;
        if self.eat("(") {
            loop {
                args.push(self.pipe()?);
                if self.eat(";") {
                    continue;
                }
                end = self.expect(")", &format!("or `;` to close the arguments of `{name}`"))?;
                break;
            }
        }
        let span = span.to(end);
        let Some(builtin) = catalog::lookup(name) else {
            return Err(self.unknown_function(name, span));
        };
        if !builtin.arities.contains(&args.len()) {
            let takes = match builtin.arities {
                [0] => "no arguments".to_string(),
                [1] => "1 argument".to_string(),
                [n] => format!("{n} arguments"),
                many => format!(
                    "{} arguments",
                    many.iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            };
            return Err(FilterError::at(
                span,
                format!("`{name}` takes {takes}, got {}", args.len()),
            )
            .hint(format!("usage: {}", builtin.usage)));
        }
        Ok(Filter::Call {
            name: name.to_string(),
            args,
            span,
        })
    }

    fn unknown_function(&self, name: &str, span: Span) -> FilterError {
        let error = FilterError::at(span, format!("unknown function `{name}`"));
        // `.foo-bar` reads as `.foo - bar`: suggest quoting the key.
        let before = |k: usize| self.pos.checked_sub(k).and_then(|i| self.tokens.get(i));
        if let (Some(minus), Some(field)) = (before(2), before(3))
            && minus.is("-")
            && minus.span.end == span.start
            && let Tok::Field(key) = &field.tok
            && field.span.end == minus.span.start
        {
            return error.hint(format!(
                "a key with `-` must be quoted: `.[\"{key}-{name}\"]`"
            ));
        }
        if let Some(close) = did_you_mean(name, BUILTINS.iter().map(|b| b.name)) {
            return error.hint(format!("did you mean `{close}`?"));
        }
        error.hint("the tool description lists the builtins; to read a key write `.name`")
    }

    /// `{a, "b": f, (k): v, c: d}`
    fn object(&mut self) -> Result<Filter, FilterError> {
        let open = self.bump().span;
        let mut entries = Vec::new();
        while !self.peek().is("}") {
            let token = self.bump();
            let key = match token.tok {
                Tok::Ident(name) => Key::Literal(name),
                Tok::Str(s) => Key::Literal(s),
                Tok::Op("(") => {
                    let key = self.pipe()?;
                    let close = self.expect(")", "to close the computed key")?;
                    Key::Computed(key, token.span.to(close))
                }
                tok => {
                    // Step back onto the token, to name it (`bump` stays on `End`).
                    if tok != Tok::End {
                        self.pos -= 1;
                    }
                    return Err(self.unexpected("an object key: a name, a string or `(filter)`"));
                }
            };
            let value = if self.eat(":") {
                self.object_value()?
            } else {
                match &key {
                    Key::Literal(name) => path(
                        Filter::Identity,
                        vec![Step::Field(name.clone(), token.span)],
                    ),
                    Key::Computed(..) => {
                        return Err(self.unexpected("`:` and a value for the computed key"));
                    }
                }
            };
            entries.push((key, value));
            if !self.eat(",") {
                break;
            }
        }
        self.expect(
            "}",
            &format!("to close the `{{` at column {}", open.column()),
        )?;
        Ok(Filter::Object(entries))
    }

    /// The current token was not what the grammar allows here.
    fn unexpected(&self, expected: &str) -> FilterError {
        let token = self.peek();
        if token.tok == Tok::End {
            return FilterError::at(
                token.span,
                format!("expected {expected}, found the end of the filter"),
            );
        }
        FilterError::at(token.span, format!("unexpected {}", token.describe()))
            .hint(format!("expected {expected}"))
    }
}

/// `lhs` and `rhs` joined by an n-ary operator, extending `lhs` if it is
/// already a node of that operator.
fn join(lhs: Filter, rhs: Filter, node: fn(Vec<Filter>) -> Filter) -> Filter {
    match (node(Vec::new()), lhs) {
        (Filter::Pipe(_), Filter::Pipe(mut items))
        | (Filter::Comma(_), Filter::Comma(mut items))
        | (Filter::Alt(_), Filter::Alt(mut items))
        | (Filter::Or(_), Filter::Or(mut items))
        | (Filter::And(_), Filter::And(mut items)) => {
            items.push(rhs);
            node(items)
        }
        (_, lhs) => node(vec![lhs, rhs]),
    }
}

/// `lhs op rhs` for `+ - * / %`, extending `lhs` if it is a chain of the
/// same precedence.
fn chain(lhs: Filter, op: &'static str, span: Span, rhs: Filter) -> Filter {
    let level = |op: &str| matches!(op, "+" | "-");
    match lhs {
        Filter::Arith { first, mut rest }
            if rest.first().is_some_and(|(o, ..)| level(o) == level(op)) =>
        {
            rest.push((op, span, rhs));
            Filter::Arith { first, rest }
        }
        lhs => Filter::Arith {
            first: Box::new(lhs),
            rest: vec![(op, span, rhs)],
        },
    }
}

/// One filter, or the node joining several.
fn many(mut items: Vec<Filter>, join: fn(Vec<Filter>) -> Filter) -> Filter {
    if items.len() == 1 {
        items.pop().unwrap_or(Filter::Identity)
    } else {
        join(items)
    }
}

/// `base` with `steps`, or `base` alone.
fn path(base: Filter, mut steps: Vec<Step>) -> Filter {
    if steps.is_empty() {
        return base;
    }
    match base {
        Filter::Path {
            base,
            steps: mut first,
        } => {
            first.append(&mut steps);
            Filter::Path { base, steps: first }
        }
        base => Filter::Path {
            base: Box::new(base),
            steps,
        },
    }
}
