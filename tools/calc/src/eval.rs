//! Evaluates a parsed expression over 64-bit floats.

use std::collections::BTreeMap;

use crate::error::{CalcError, Span, did_you_mean};
use crate::functions::{self, CONSTANTS, FUNCTIONS};
use crate::parser::{BinOp, Expr, Stmt};

/// The variables in scope: the caller's, then those the statements assign.
#[derive(Debug, Default)]
pub(crate) struct Env {
    pub vars: BTreeMap<String, f64>,
}

/// How many known names an error lists.
const MAX_LISTED: usize = 20;

/// Runs the statements in order; the value is the last statement's. Returns
/// the value and the variables the statements assigned.
pub(crate) fn run(
    stmts: &[Stmt],
    env: &mut Env,
) -> Result<(f64, BTreeMap<String, f64>), CalcError> {
    let mut assigned = BTreeMap::new();
    let mut last = 0.0;
    for stmt in stmts {
        last = match stmt {
            Stmt::Assign { name, span, value } => {
                if let Some(kind) = reserved(name) {
                    return Err(CalcError::at(
                        *span,
                        format!("cannot assign to `{name}`: it is {kind}"),
                    )
                    .hint("choose another name"));
                }
                let value = eval(value, env)?;
                env.vars.insert(name.clone(), value);
                assigned.insert(name.clone(), value);
                value
            }
            Stmt::Expr(expr) => eval(expr, env)?,
        };
    }
    Ok((last, assigned))
}

/// What `name` already means, if it is a constant or a function.
pub(crate) fn reserved(name: &str) -> Option<&'static str> {
    if functions::constant(name).is_some() {
        Some("a constant")
    } else if functions::lookup(name).is_some() {
        Some("a function")
    } else {
        None
    }
}

fn eval(expr: &Expr, env: &Env) -> Result<f64, CalcError> {
    match expr {
        Expr::Num { value, .. } => Ok(*value),
        Expr::Var { name, span } => variable(name, *span, env),
        Expr::Neg { operand, .. } => Ok(-eval(operand, env)?),
        Expr::Chain { first, rest } => {
            let mut acc = eval(first, env)?;
            for (op, span, operand) in rest {
                let rhs = eval(operand, env)?;
                acc = binary(*op, acc, rhs).map_err(|m| CalcError::at(*span, m))?;
                finite(acc, op.symbol(), *span)?;
            }
            Ok(acc)
        }
        Expr::Pow { base, exponent, op } => {
            let value = functions::power(eval(base, env)?, eval(exponent, env)?)
                .map_err(|m| CalcError::at(*op, m))?;
            finite(value, "^", *op)
        }
        Expr::Factorial { operand, op } => {
            let value =
                functions::factorial(eval(operand, env)?).map_err(|m| CalcError::at(*op, m))?;
            finite(value, "!", *op)
        }
        Expr::Call {
            name,
            name_span,
            args,
            span,
        } => {
            let Some(function) = functions::lookup(name) else {
                return Err(unknown_function(name, *name_span, env));
            };
            if let Some(takes) = function.check_arity(args.len()) {
                return Err(CalcError::at(
                    *span,
                    format!("{name} takes {takes}, got {}", args.len()),
                )
                .hint(format!("usage: {}", function.usage)));
            }
            let values = args
                .iter()
                .map(|a| eval(a, env))
                .collect::<Result<Vec<_>, _>>()?;
            let value = function
                .apply(&values)
                .map_err(|m| CalcError::at(*span, m))?;
            finite(value, name, *span)
        }
    }
}

fn binary(op: BinOp, a: f64, b: f64) -> Result<f64, String> {
    Ok(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div if b == 0.0 => return Err(format!("division by zero: {a} / 0")),
        BinOp::Div => a / b,
        BinOp::Rem if b == 0.0 => return Err(format!("remainder by zero: {a} % 0")),
        BinOp::Rem => a % b,
    })
}

/// `value` if it is finite, else an error saying which operation overflowed.
fn finite(value: f64, what: &str, span: Span) -> Result<f64, CalcError> {
    if value.is_finite() {
        return Ok(value);
    }
    let message = if value.is_nan() {
        format!("`{what}` has no real result here")
    } else {
        format!("`{what}` overflows: the result is beyond ±1.8e308, the largest 64-bit float")
    };
    Err(CalcError::at(span, message))
}

fn variable(name: &str, span: Span, env: &Env) -> Result<f64, CalcError> {
    if let Some(&value) = env.vars.get(name) {
        return Ok(value);
    }
    if let Some(value) = functions::constant(name) {
        return Ok(value);
    }
    if let Some(function) = functions::lookup(name) {
        return Err(CalcError::at(span, format!("`{name}` is a function"))
            .hint(format!("call it: {}", function.usage)));
    }
    let known = env.vars.keys().map(String::as_str);
    let constants = CONSTANTS.iter().map(|(n, _)| *n);
    let mut hint = String::new();
    if let Some(close) = did_you_mean(name, known.clone().chain(constants)) {
        hint = format!("did you mean `{close}`? ");
    }
    let count = env.vars.len();
    let mut listed: Vec<&str> = known.take(MAX_LISTED).collect();
    if listed.is_empty() {
        listed.push("none");
    }
    let more = if count > MAX_LISTED {
        format!(" and {} more", count - MAX_LISTED)
    } else {
        String::new()
    };
    hint.push_str(&format!(
        "known variables: {}{more}; constants: pi, e, tau; pass values in `variables` or assign with `{name} = ...;`",
        listed.join(", ")
    ));
    Err(CalcError::at(span, format!("unknown variable `{name}`")).hint(hint))
}

fn unknown_function(name: &str, span: Span, env: &Env) -> CalcError {
    if env.vars.contains_key(name) || functions::constant(name).is_some() {
        return CalcError::at(span, format!("`{name}` is a variable, not a function"))
            .hint(format!("to multiply, write `{name} * (...)`"));
    }
    let error = CalcError::at(span, format!("unknown function `{name}`"));
    if let Some(close) = did_you_mean(name, FUNCTIONS.iter().map(|f| f.name)) {
        return error.hint(format!("did you mean `{close}`?"));
    }
    let names: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
    error.hint(format!("available: {}", names.join(", ")))
}
