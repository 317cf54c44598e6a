//! Writes a parsed expression back out, with every grouping explicit.

use crate::parser::{Expr, Stmt};

/// The statements as parsed, joined by `; `.
pub(crate) fn statements(stmts: &[Stmt]) -> String {
    let mut out = String::new();
    for (i, stmt) in stmts.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        match stmt {
            Stmt::Assign { name, value, .. } => {
                out.push_str(name);
                out.push_str(" = ");
                expr(value, &mut out, true);
            }
            Stmt::Expr(value) => expr(value, &mut out, true),
        }
    }
    out
}

/// A number as it would be typed: `0.001`, `1e+300`, `42`.
pub(crate) fn number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-6..1e16).contains(&magnitude) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

/// Writes `e`; an operation that is not `top` gets parentheses.
fn expr(e: &Expr, out: &mut String, top: bool) {
    let atomic = matches!(e, Expr::Num { .. } | Expr::Var { .. } | Expr::Call { .. });
    if !top && !atomic {
        out.push('(');
    }
    match e {
        Expr::Num { value, .. } => out.push_str(&number(*value)),
        Expr::Var { name, .. } => out.push_str(name),
        Expr::Neg { operand, .. } => {
            out.push('-');
            expr(operand, out, false);
        }
        Expr::Chain { first, rest } => {
            expr(first, out, false);
            for (op, _, operand) in rest {
                out.push(' ');
                out.push_str(op.symbol());
                out.push(' ');
                expr(operand, out, false);
            }
        }
        Expr::Pow { base, exponent, .. } => {
            expr(base, out, false);
            out.push_str(" ^ ");
            expr(exponent, out, false);
        }
        Expr::Factorial { operand, .. } => {
            expr(operand, out, false);
            out.push('!');
        }
        Expr::Call { name, args, .. } => {
            out.push_str(name);
            out.push('(');
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                expr(arg, out, true);
            }
            out.push(')');
        }
    }
    if !top && !atomic {
        out.push(')');
    }
}

#[cfg(test)]
mod tests {
    use crate::lexer::lex;
    use crate::parser::{MAX_DEPTH, parse};

    fn parsed(source: &str) -> String {
        super::statements(&parse(&lex(source).unwrap()).unwrap())
    }

    fn error(source: &str) -> String {
        parse(&lex(source).unwrap()).unwrap_err().render(source)
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(parsed("1 + 2 * 3"), "1 + (2 * 3)");
        assert_eq!(parsed("1 - 2 - 3"), "1 - 2 - 3");
        assert_eq!(parsed("(1 - 2) - 3"), "1 - 2 - 3");
        assert_eq!(parsed("1 + 2 * 3 + 4 * 5 * 6"), "1 + (2 * 3) + (4 * 5 * 6)");
        assert_eq!(parsed("1 - (2 - 3)"), "1 - (2 - 3)");
        assert_eq!(parsed("2 * (x + 3) ^ 2"), "2 * ((x + 3) ^ 2)");
        assert_eq!(parsed("2^3^2"), "2 ^ (3 ^ 2)");
        assert_eq!(parsed("-2^2"), "-(2 ^ 2)");
        assert_eq!(parsed("2^-1"), "2 ^ (-1)");
        assert_eq!(parsed("2^-1*3"), "(2 ^ (-1)) * 3");
        assert_eq!(parsed("-3!"), "-(3!)");
        assert_eq!(parsed("2^3!"), "2 ^ (3!)");
        assert_eq!(parsed("--x"), "x");
        assert_eq!(parsed("+-x"), "-x");
        assert_eq!(parsed("a * -b"), "a * (-b)");
        assert_eq!(parsed("7 % 3 / 2"), "7 % 3 / 2");
    }

    #[test]
    fn calls_statements_and_numbers() {
        assert_eq!(parsed("max(1, 2 + 3, min())"), "max(1, 2 + 3, min())");
        assert_eq!(parsed("r = 2; pi * r^2;"), "r = 2; pi * (r ^ 2)");
        assert_eq!(parsed("1e-3 + 1_000 + 1e300"), "0.001 + 1000 + 1e300");
    }

    #[test]
    fn unbalanced_parentheses() {
        assert_eq!(
            error("(1 + 2))"),
            "unexpected `)` at column 8 — no `(` is open\n  (1 + 2))\n         ^"
        );
        assert_eq!(
            error("(1 + 2"),
            "expected an operator or `)` to close the `(` at column 1, found the end of the expression at column 7\n  (1 + 2\n        ^"
        );
        assert!(error("sqrt(2").contains("to close the arguments of `sqrt` opened at column 5"));
        assert!(error("()").starts_with("unexpected `)` at column 2"));
    }

    #[test]
    fn missing_operands_and_operators() {
        assert!(
            error("2 +")
                .starts_with("expected a number, a name, a function call or `(`, found the end")
        );
        assert!(error("* 2").starts_with("unexpected `*` at column 1"));
        assert!(
            error("2x")
                .starts_with("missing operator before `x` at column 2 — implicit multiplication")
        );
        assert!(error("2 (3)").starts_with("missing operator before `(` at column 3"));
        assert!(error("max(1 2)").starts_with("missing operator before a number at column 7"));
        assert!(error("1, 2").starts_with("unexpected `,` at column 2"));
        assert!(error("1 + x = 2").starts_with("unexpected `=` at column 7"));
        assert_eq!(error(" ; ;"), "the expression is empty");
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = format!(
            "{}1{}",
            "(".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        );
        assert_eq!(parsed(&ok), "1");
        let deep = format!("{}1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(error(&deep).starts_with("the expression nests more than 128 levels deep"));
        let powers = format!("2{}", "^2".repeat(MAX_DEPTH + 1));
        assert!(error(&powers).contains("nests more than"));
        // Long flat chains are fine: they do not nest.
        let chain = format!("{}1", "1-".repeat(5000));
        assert!(parsed(&chain).starts_with("1 - 1 - 1"));
    }
}
