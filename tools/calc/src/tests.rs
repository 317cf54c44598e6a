//! The tool as the host calls it: JSON in, JSON or an error out.

use serde_json::{Value, json};
use toolhost_sdk::ToolError;

use super::tools;

fn call(input: Value) -> Result<Value, ToolError> {
    let out = tools()[0].call_json(&input.to_string())?;
    Ok(serde_json::from_str(&out).unwrap())
}

fn value(expression: &str) -> Value {
    match call(json!({ "expression": expression })) {
        Ok(out) => out["value"].clone(),
        Err(e) => panic!("{expression}: {e}"),
    }
}

fn approx(expression: &str) -> f64 {
    value(expression).as_f64().unwrap()
}

fn error(input: Value) -> String {
    match call(input) {
        Err(ToolError::InvalidInput(message)) => message,
        other => panic!("expected invalid input, got {other:?}"),
    }
}

fn error_of(expression: &str) -> String {
    error(json!({ "expression": expression }))
}

#[test]
fn the_documented_example() {
    let out = call(json!({"expression": "2 * (x + 3) ^ 2", "variables": {"x": 1.5}})).unwrap();
    assert_eq!(out, json!({"value": 40.5, "parsed": "2 * ((x + 3) ^ 2)"}));
}

#[test]
fn arithmetic() {
    assert_eq!(value("1 + 2 * 3"), json!(7));
    assert_eq!(value("(1 + 2) * 3"), json!(9));
    assert_eq!(value("10 - 4 - 3"), json!(3));
    assert_eq!(value("2 ^ 3 ^ 2"), json!(512));
    assert_eq!(value("2 ** 10"), json!(1024));
    assert_eq!(value("-2^2"), json!(-4));
    assert_eq!(value("(-2)^2"), json!(4));
    assert_eq!(value("2^-1"), json!(0.5));
    assert_eq!(value("7 % 3"), json!(1));
    assert_eq!(value("-7 % 3"), json!(-1));
    assert_eq!(value("mod(-7, 3)"), json!(2));
    assert_eq!(value("1 / 4"), json!(0.25));
    assert_eq!(value("5!"), json!(120));
    assert_eq!(value("1e-3 * 1_000"), json!(1));
    assert_eq!(value(".5 + 0x10"), json!(16.5));
    assert_eq!(value("0.1 + 0.2"), json!(0.30000000000000004));
    assert_eq!(value("2^60"), json!(1_152_921_504_606_846_976.0));
}

#[test]
fn constants_and_functions() {
    assert_eq!(approx("pi"), std::f64::consts::PI);
    assert_eq!(approx("tau / 2"), std::f64::consts::PI);
    assert_eq!(approx("ln(e)"), 1.0);
    assert_eq!(value("sqrt(16) + cbrt(27)"), json!(7));
    assert_eq!(value("max(1, 7, 3) - min(4, 2)"), json!(5));
    assert_eq!(value("log(1000, 10)"), json!(2.9999999999999996));
    assert_eq!(value("log10(1000)"), json!(3));
    assert_eq!(value("hypot(3, 4)"), json!(5));
    assert_eq!(value("round(1.23456, 3)"), json!(1.235));
    assert_eq!(value("floor(-2.5) + ceil(2.1) + trunc(-2.7)"), json!(-2));
    assert!((approx("sin(pi / 6)") - 0.5).abs() < 1e-15);
    assert!((approx("degrees(atan2(1, 1))") - 45.0).abs() < 1e-12);
    assert_eq!(value("factorial(6) / 3!"), json!(120));
    assert_eq!(value("abs(-3) * sign(-2)"), json!(-3));
}

#[test]
fn assignments() {
    let out = call(json!({"expression": "r = 2; area = pi * r^2; area / r"})).unwrap();
    assert_eq!(out["value"], json!(2.0 * std::f64::consts::PI));
    assert_eq!(out["assigned"]["r"], json!(2));
    assert_eq!(out["parsed"], "r = 2; area = pi * (r ^ 2); area / r");
    let out = call(json!({"expression": "x = x + 1; x = x * 10;", "variables": {"x": 1}})).unwrap();
    assert_eq!(out["value"], json!(20));
    assert_eq!(out["assigned"], json!({"x": 20}));
    assert!(error_of("pi = 3").starts_with("cannot assign to `pi`: it is a constant at column 1"));
    assert!(error_of("sin = 3").contains("it is a function"));
}

#[test]
fn non_finite_results_are_invalid_input() {
    assert!(error_of("1 / 0").starts_with("division by zero: 1 / 0 at column 3"));
    assert!(error_of("1 % 0").starts_with("remainder by zero"));
    assert!(
        error_of("sqrt(-1)")
            .starts_with("sqrt of a negative number (-1) has no real value at column 1")
    );
    assert!(error_of("10 ^ 400").starts_with("`^` overflows"));
    assert!(error_of("exp(1000)").starts_with("`exp` overflows: the result is beyond ±1.8e308"));
    assert!(error_of("1e308 * 10").starts_with("`*` overflows"));
    assert!(error_of("(-8) ^ (1/3)").contains("use cbrt(x)"));
    assert!(error_of("0 ^ -1").starts_with("division by zero"));
    assert!(error_of("171!").contains("from 0 to 170"));
    assert!(error_of("ln(0)").contains("positive"));
}

#[test]
fn errors_name_the_column_and_show_the_problem() {
    assert_eq!(
        error_of("2 * (x))"),
        "unexpected `)` at column 8 — no `(` is open\n  2 * (x))\n         ^"
    );
    assert_eq!(
        error(json!({"expression": "x + y", "variables": {"x": 1}})),
        "unknown variable `y` at column 5 — known variables: x; constants: pi, e, tau; \
pass values in `variables` or assign with `y = ...;`\n  x + y\n      ^"
    );
    assert!(
        error(json!({"expression": "radius * 2", "variables": {"radious": 1}}))
            .starts_with("unknown variable `radius` at column 1 — did you mean `radious`?")
    );
    assert_eq!(
        error_of("sqrt(4, 2)"),
        "sqrt takes 1 argument, got 2 at column 1 — usage: sqrt(x)\n  sqrt(4, 2)\n  ^^^^^^^^^^"
    );
    assert!(
        error_of("sqr(4)").starts_with("unknown function `sqr` at column 1 — did you mean `sqrt`?")
    );
    assert!(error_of("frobnicate(4)").contains("available: sqrt, cbrt"));
    assert!(error_of("log(8)").contains("usage: log(x, base); ln(x) is the natural logarithm"));
    assert!(
        error_of("1 + sqrt").starts_with("`sqrt` is a function at column 5 — call it: sqrt(x)")
    );
    assert!(
        error(json!({"expression": "x(2)", "variables": {"x": 1}}))
            .starts_with("`x` is a variable, not a function at column 1")
    );
    assert!(error_of("2pi").starts_with("missing operator before `pi` at column 2"));
    assert!(error_of("").starts_with("the expression is empty"));
}

#[test]
fn bad_variables() {
    assert!(
        error(json!({"expression": "1", "variables": {"e": 2}}))
            .contains("clashes with a constant")
    );
    assert!(error(json!({"expression": "1", "variables": {"2x": 2}})).contains("is not a name"));
    assert!(error(json!({"expression": "1", "variables": {"x": "2"}})).contains("variables"));
    assert!(error(json!({"expression": "1", "extra": 1})).contains("extra"));
}

#[test]
fn hostile_input_is_refused_not_a_crash() {
    let long = "1+".repeat(5_001) + "1";
    assert!(error_of(&long).contains("the limit is 10000"));
    let deep = format!("{}1{}", "(".repeat(128), ")".repeat(128));
    assert!(error_of(&deep).contains("nests more than 128 levels deep"));
    let signs = format!("{}1", "-".repeat(9_000));
    assert_eq!(value(&signs), json!(1));
    let calls = format!("{}1{}", "abs(".repeat(128), ")".repeat(128));
    assert!(error_of(&calls).contains("nests more than"));
    let sum = format!("{}1", "1+".repeat(4_999));
    assert_eq!(value(&sum), json!(5_000));
}

#[test]
fn deepest_allowed_nesting_evaluates() {
    // The worst cases at the limit, within a test thread's 2 MiB stack even
    // unoptimised (a release build needs about a tenth of that).
    let parens = format!("{}1{}", "(".repeat(127), ")".repeat(127));
    assert_eq!(value(&parens), json!(1));
    let signs = format!("{}2{}", "abs(-(".repeat(42), "))".repeat(42));
    assert_eq!(value(&signs), json!(2));
    let calls = format!("{}-2{}", "abs(".repeat(126), ")".repeat(126));
    assert_eq!(value(&calls), json!(2));
    let towers = format!("1{}", "^1".repeat(127));
    assert_eq!(value(&towers), json!(1));
}

/// Random token soup must give a value or an error, never a panic.
#[test]
fn random_expressions_never_panic() {
    const PIECES: &[&str] = &[
        "1",
        "0",
        "2.5",
        ".5",
        "1e308",
        "1_0",
        "0x",
        "0xff",
        "x",
        "pi",
        "e",
        "(",
        ")",
        ",",
        ";",
        "=",
        "+",
        "-",
        "*",
        "/",
        "%",
        "^",
        "**",
        "!",
        "sqrt(",
        "log(",
        "max(",
        "round(",
        "mod(",
        "factorial(",
        "gcd(",
        "clamp(",
        "atan2(",
        "y",
        "$",
        " ",
        "×",
        "é",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..4000 {
        let mut expression = String::new();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        for _ in 0..(state % 12 + 1) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            expression.push_str(PIECES[(state % PIECES.len() as u64) as usize]);
        }
        let input = json!({"expression": expression, "variables": {"x": 2}});
        match call(input) {
            Ok(out) => assert!(out["value"].is_number(), "{expression}: {out}"),
            Err(ToolError::InvalidInput(_)) => {}
            Err(other) => panic!("{expression}: {other:?}"),
        }
    }
}
