//! `calc`: evaluate arithmetic expressions with functions and variables.
//!
//! A small hand-written tokenizer ([`lexer`]) and recursive-descent parser
//! ([`parser`]) over `f64`, an evaluator ([`eval`]) and a table of functions
//! ([`functions`]). Every error names the column and underlines the problem.
//! Input length and nesting depth are capped, so no expression can exhaust the
//! stack.

mod error;
mod eval;
mod functions;
mod lexer;
mod parser;
mod print;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Number;
use toolhost_sdk::{Ctx, Tool, ToolError};

use crate::eval::Env;
use crate::lexer::{is_name_char, is_name_start};

/// The longest expression accepted, in characters.
const MAX_CHARS: usize = 10_000;

/// The most variables one call may pass.
const MAX_VARIABLES: usize = 1_000;

/// Whole numbers up to this magnitude are written without a fraction.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

const DESCRIPTION: &str = "Evaluate an arithmetic expression over 64-bit floats. \
Operators: + - * / and % (remainder, sign of the left side), ^ or ** (power, right-associative, \
binds tighter than unary minus: -2^2 = -4), unary -, postfix ! (factorial), parentheses. \
Numbers: 42, 1.5, .5, 1e-3, 1_000, 0xff, 0o17, 0b101. Constants: pi, e, tau. \
Functions: sqrt cbrt abs sign exp ln log10 log2 log(x, base); sin cos tan asin acos atan atan2(y, x) \
sinh cosh tanh (radians) and degrees(x) radians(x); floor ceil trunc round(x) round(x, digits); \
min max sum mean hypot (any number of arguments); clamp(x, low, high) pow(x, y) mod(a, b) \
(floored, sign of b) factorial(n) gcd(a, b) lcm(a, b). Variables come from `variables` or from \
assignments separated by `;`, as in `r = 2; pi * r^2`. Returns the value of the last statement, the \
expression as parsed with every grouping in parentheses, and the variables it assigned. Division by \
zero, overflow and results with no real value (sqrt(-1)) are errors that name the column.";

/// What to evaluate.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CalcInput {
    /// The expression, e.g. `2 * (x + 3) ^ 2`, or statements separated by `;` whose last one
    /// gives the value, e.g. `r = 2; pi * r^2`. At most 10000 characters.
    expression: String,
    /// Values of the variables the expression uses, e.g. `{"x": 1.5}`. Names are letters,
    /// digits and `_`, not starting with a digit, and may not be a constant or function name.
    #[serde(default)]
    variables: BTreeMap<String, f64>,
}

/// The result.
#[derive(Serialize, JsonSchema)]
struct CalcOutput {
    /// The value of the last statement. Whole numbers up to 2^53 have no fractional part.
    value: Number,
    /// The expression as parsed, with parentheses around every operation, e.g.
    /// `2 * ((x + 3) ^ 2)`: check it when precedence matters.
    parsed: String,
    /// The variables assigned by `name = ...` statements, with their final values; absent if none.
    // `default` keeps it out of the schema's `required`: MCP clients check
    // `structuredContent` against the output schema.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    assigned: BTreeMap<String, Number>,
}

fn calc(ctx: &Ctx, input: CalcInput) -> Result<CalcOutput, ToolError> {
    let source = input.expression.as_str();
    let length = source.chars().count();
    if length > MAX_CHARS {
        return Err(ToolError::invalid_input(format!(
            "the expression is {length} characters long; the limit is {MAX_CHARS}"
        )));
    }
    let mut env = Env {
        vars: check_variables(input.variables)?,
    };
    let fail = |e: error::CalcError| ToolError::invalid_input(e.render(source));
    let tokens = lexer::lex(source).map_err(fail)?;
    let stmts = parser::parse(&tokens).map_err(fail)?;
    let parsed = print::statements(&stmts);
    ctx.debug(&format!("parsed: {parsed}"));
    let (value, assigned) = eval::run(&stmts, &mut env).map_err(fail)?;
    Ok(CalcOutput {
        value: number(value),
        parsed,
        assigned: assigned.into_iter().map(|(k, v)| (k, number(v))).collect(),
    })
}

/// The caller's variables, if every name is usable.
fn check_variables(vars: BTreeMap<String, f64>) -> Result<BTreeMap<String, f64>, ToolError> {
    if vars.len() > MAX_VARIABLES {
        return Err(ToolError::invalid_input(format!(
            "{} variables given; the limit is {MAX_VARIABLES}",
            vars.len()
        )));
    }
    for name in vars.keys() {
        let mut chars = name.chars();
        let valid = chars.next().is_some_and(is_name_start) && chars.all(is_name_char);
        if !valid {
            return Err(ToolError::invalid_input(format!(
                "variable name `{name}` is not a name: use letters, digits and `_`, not starting with a digit"
            )));
        }
        if let Some(kind) = eval::reserved(name) {
            return Err(ToolError::invalid_input(format!(
                "variable `{name}` clashes with {kind} of the same name; rename it"
            )));
        }
    }
    Ok(vars)
}

/// `value` as JSON: whole numbers as integers, others as floats.
fn number(value: f64) -> Number {
    if value.fract() == 0.0 && value.abs() <= MAX_EXACT {
        return Number::from(value as i64);
    }
    Number::from_f64(value).unwrap_or_else(|| Number::from(0))
}

fn tools() -> Vec<Tool> {
    vec![Tool::new("calc", DESCRIPTION, calc).pure()]
}

toolhost_sdk::export!(tools);

#[cfg(test)]
mod tests;
