//! The built-in functions and constants.

use std::f64::consts;

/// The constants, by name. `π` is another name for `pi`.
pub(crate) const CONSTANTS: &[(&str, f64)] = &[
    ("pi", consts::PI),
    ("π", consts::PI),
    ("e", consts::E),
    ("tau", consts::TAU),
];

/// How many arguments a function takes.
#[derive(Debug, Clone, Copy)]
enum Arity {
    Exact(usize),
    Between(usize, usize),
    AtLeast(usize),
}

/// A built-in function: its name, arity and how to call it.
#[derive(Debug)]
pub(crate) struct Function {
    pub name: &'static str,
    arity: Arity,
    pub usage: &'static str,
}

const fn f(name: &'static str, arity: Arity, usage: &'static str) -> Function {
    Function { name, arity, usage }
}

/// Every built-in function.
pub(crate) const FUNCTIONS: &[Function] = &[
    f("sqrt", Arity::Exact(1), "sqrt(x)"),
    f("cbrt", Arity::Exact(1), "cbrt(x)"),
    f("abs", Arity::Exact(1), "abs(x)"),
    f("sign", Arity::Exact(1), "sign(x)"),
    f("exp", Arity::Exact(1), "exp(x)"),
    f("ln", Arity::Exact(1), "ln(x)"),
    f("log10", Arity::Exact(1), "log10(x)"),
    f("log2", Arity::Exact(1), "log2(x)"),
    f(
        "log",
        Arity::Exact(2),
        "log(x, base); ln(x) is the natural logarithm",
    ),
    f("sin", Arity::Exact(1), "sin(x), x in radians"),
    f("cos", Arity::Exact(1), "cos(x), x in radians"),
    f("tan", Arity::Exact(1), "tan(x), x in radians"),
    f("asin", Arity::Exact(1), "asin(x)"),
    f("acos", Arity::Exact(1), "acos(x)"),
    f("atan", Arity::Exact(1), "atan(x)"),
    f("atan2", Arity::Exact(2), "atan2(y, x)"),
    f("sinh", Arity::Exact(1), "sinh(x)"),
    f("cosh", Arity::Exact(1), "cosh(x)"),
    f("tanh", Arity::Exact(1), "tanh(x)"),
    f("degrees", Arity::Exact(1), "degrees(radians)"),
    f("radians", Arity::Exact(1), "radians(degrees)"),
    f("floor", Arity::Exact(1), "floor(x)"),
    f("ceil", Arity::Exact(1), "ceil(x)"),
    f("trunc", Arity::Exact(1), "trunc(x)"),
    f(
        "round",
        Arity::Between(1, 2),
        "round(x) or round(x, digits)",
    ),
    f("min", Arity::AtLeast(1), "min(a, b, ...)"),
    f("max", Arity::AtLeast(1), "max(a, b, ...)"),
    f("sum", Arity::AtLeast(1), "sum(a, b, ...)"),
    f("mean", Arity::AtLeast(1), "mean(a, b, ...)"),
    f("clamp", Arity::Exact(3), "clamp(x, low, high)"),
    f("pow", Arity::Exact(2), "pow(x, y)"),
    f("hypot", Arity::AtLeast(1), "hypot(a, b, ...)"),
    f("mod", Arity::Exact(2), "mod(a, b)"),
    f("factorial", Arity::Exact(1), "factorial(n)"),
    f("gcd", Arity::Exact(2), "gcd(a, b)"),
    f("lcm", Arity::Exact(2), "lcm(a, b)"),
];

/// The largest `n` whose factorial is a finite 64-bit float.
const MAX_FACTORIAL: f64 = 170.0;

/// Integers above this are not all exactly representable.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// The function named `name`.
pub(crate) fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// The constant named `name`.
pub(crate) fn constant(name: &str) -> Option<f64> {
    CONSTANTS.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
}

impl Function {
    /// `None` if `count` arguments are right, else what the function takes.
    pub fn check_arity(&self, count: usize) -> Option<String> {
        let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
        match self.arity {
            Arity::Exact(n) if count != n => Some(format!("{n} {}", plural(n))),
            Arity::Between(lo, hi) if count < lo || count > hi => {
                Some(format!("{lo} or {hi} arguments"))
            }
            Arity::AtLeast(n) if count < n => Some(format!("at least {n} {}", plural(n))),
            _ => None,
        }
    }

    /// Applies the function to arguments of the right number. An `Err` says
    /// why the arguments are outside the function's domain.
    pub fn apply(&self, args: &[f64]) -> Result<f64, String> {
        let x = args.first().copied().unwrap_or(f64::NAN);
        let y = args.get(1).copied().unwrap_or(f64::NAN);
        let value = match self.name {
            "sqrt" if x < 0.0 => {
                return Err(format!("sqrt of a negative number ({x}) has no real value"));
            }
            "sqrt" => x.sqrt(),
            "cbrt" => x.cbrt(),
            "abs" => x.abs(),
            "sign" if x == 0.0 => 0.0,
            "sign" => x.signum(),
            "exp" => x.exp(),
            "ln" | "log10" | "log2" if x <= 0.0 => {
                return Err(format!(
                    "{} is only defined for positive numbers, got {x}",
                    self.name
                ));
            }
            "ln" => x.ln(),
            "log10" => x.log10(),
            "log2" => x.log2(),
            "log" if x <= 0.0 => {
                return Err(format!("log is only defined for positive numbers, got {x}"));
            }
            "log" if y <= 0.0 || y == 1.0 => {
                return Err(format!(
                    "the base of log must be positive and not 1, got {y}"
                ));
            }
            "log" => x.ln() / y.ln(),
            "sin" => x.sin(),
            "cos" => x.cos(),
            "tan" => x.tan(),
            "asin" | "acos" if !(-1.0..=1.0).contains(&x) => {
                return Err(format!(
                    "{} is only defined from -1 to 1, got {x}",
                    self.name
                ));
            }
            "asin" => x.asin(),
            "acos" => x.acos(),
            "atan" => x.atan(),
            "atan2" => x.atan2(y),
            "sinh" => x.sinh(),
            "cosh" => x.cosh(),
            "tanh" => x.tanh(),
            "degrees" => x.to_degrees(),
            "radians" => x.to_radians(),
            "floor" => x.floor(),
            "ceil" => x.ceil(),
            "trunc" => x.trunc(),
            "round" if args.len() == 1 => x.round(),
            "round" => round_to(x, y)?,
            "min" => args.iter().copied().fold(f64::INFINITY, f64::min),
            "max" => args.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            "sum" => args.iter().sum(),
            "mean" => mean(args),
            "clamp" if args[1] > args[2] => {
                return Err(format!(
                    "clamp needs low <= high, got low {} and high {}",
                    args[1], args[2]
                ));
            }
            "clamp" => x.clamp(args[1], args[2]),
            "pow" => return power(x, y),
            "hypot" => args.iter().copied().fold(0.0, f64::hypot),
            "mod" => floored_mod(x, y)?,
            "factorial" => factorial(x)?,
            "gcd" => gcd(whole("gcd", x)?, whole("gcd", y)?),
            "lcm" => {
                let (a, b) = (whole("lcm", x)?, whole("lcm", y)?);
                if a == 0.0 || b == 0.0 {
                    0.0
                } else {
                    (a / gcd(a, b) * b).abs()
                }
            }
            _ => return Err(format!("`{}` is not implemented", self.name)),
        };
        Ok(value)
    }
}

/// `x` raised to `y`, with a clear error where the real result does not exist.
pub(crate) fn power(x: f64, y: f64) -> Result<f64, String> {
    if x < 0.0 && y.fract() != 0.0 {
        return Err(format!(
            "a negative number to a fractional power has no real value ({x} ^ {y}); use cbrt(x) for cube roots"
        ));
    }
    if x == 0.0 && y < 0.0 {
        return Err(format!("division by zero: 0 ^ {y}"));
    }
    Ok(x.powf(y))
}

/// The arithmetic mean, without overflowing on the way when the sum would.
fn mean(args: &[f64]) -> f64 {
    let count = args.len() as f64;
    let sum: f64 = args.iter().sum();
    if sum.is_finite() {
        sum / count
    } else {
        args.iter().map(|a| a / count).sum()
    }
}

/// `x` rounded to `digits` decimal places (negative: to tens, hundreds...).
fn round_to(x: f64, digits: f64) -> Result<f64, String> {
    if digits.fract() != 0.0 || !(-15.0..=15.0).contains(&digits) {
        return Err(format!(
            "round's digits must be a whole number from -15 to 15, got {digits}"
        ));
    }
    let scale = 10f64.powi(digits as i32);
    let scaled = x * scale;
    if !scaled.is_finite() || scaled.abs() >= MAX_EXACT {
        return Ok(x);
    }
    Ok(scaled.round() / scale)
}

/// The remainder of `a / b` with the sign of `b`.
pub(crate) fn floored_mod(a: f64, b: f64) -> Result<f64, String> {
    if b == 0.0 {
        return Err("mod by zero".to_string());
    }
    let r = a % b;
    Ok(if r != 0.0 && (r < 0.0) != (b < 0.0) {
        r + b
    } else {
        r
    })
}

/// `n!` for a whole `n` from 0 to 170.
pub(crate) fn factorial(n: f64) -> Result<f64, String> {
    if n.fract() != 0.0 || !(0.0..=MAX_FACTORIAL).contains(&n) {
        return Err(format!(
            "factorial needs a whole number from 0 to 170, got {n}"
        ));
    }
    Ok((2..=n as u32).fold(1.0, |acc, k| acc * f64::from(k)))
}

/// `x` if it is a whole number small enough to be exact.
fn whole(name: &str, x: f64) -> Result<f64, String> {
    if x.fract() != 0.0 || x.abs() > MAX_EXACT {
        return Err(format!("{name} needs whole numbers up to 2^53, got {x}"));
    }
    Ok(x)
}

fn gcd(a: f64, b: f64) -> f64 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0.0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: &[f64]) -> Result<f64, String> {
        let function = lookup(name).unwrap();
        assert_eq!(function.check_arity(args.len()), None);
        function.apply(args)
    }

    #[test]
    fn every_function_is_implemented() {
        for function in FUNCTIONS {
            let args = match function.arity {
                Arity::Exact(n) | Arity::Between(n, _) | Arity::AtLeast(n) => vec![1.0; n],
            };
            let result = function.apply(&args);
            assert!(
                !matches!(&result, Err(m) if m.contains("not implemented")),
                "{}",
                function.name
            );
        }
    }

    #[test]
    fn values() {
        assert_eq!(call("sign", &[0.0]), Ok(0.0));
        assert_eq!(call("sign", &[-3.0]), Ok(-1.0));
        assert_eq!(call("log", &[8.0, 2.0]), Ok(3.0));
        assert_eq!(call("round", &[2.5]), Ok(3.0));
        assert_eq!(call("round", &[-2.5]), Ok(-3.0));
        assert_eq!(call("round", &[2.34567, 2.0]), Ok(2.35));
        assert_eq!(call("round", &[1234.0, -2.0]), Ok(1200.0));
        assert_eq!(call("round", &[1e300, 5.0]), Ok(1e300));
        assert_eq!(call("min", &[3.0, -1.0, 2.0]), Ok(-1.0));
        assert_eq!(call("max", &[3.0, -1.0, 2.0]), Ok(3.0));
        assert_eq!(call("mean", &[1.0, 2.0, 6.0]), Ok(3.0));
        assert_eq!(call("mean", &[f64::MAX, f64::MAX]), Ok(f64::MAX));
        assert_eq!(call("hypot", &[3.0, 4.0]), Ok(5.0));
        assert_eq!(call("hypot", &[2.0, 3.0, 6.0]), Ok(7.0));
        assert_eq!(call("mod", &[-7.0, 3.0]), Ok(2.0));
        assert_eq!(call("mod", &[7.0, -3.0]), Ok(-2.0));
        assert_eq!(call("mod", &[6.0, 3.0]), Ok(0.0));
        assert_eq!(call("factorial", &[0.0]), Ok(1.0));
        assert_eq!(call("factorial", &[10.0]), Ok(3_628_800.0));
        assert!(call("factorial", &[170.0]).unwrap().is_finite());
        assert_eq!(call("gcd", &[12.0, -18.0]), Ok(6.0));
        assert_eq!(call("lcm", &[4.0, 6.0]), Ok(12.0));
        assert_eq!(call("lcm", &[0.0, 6.0]), Ok(0.0));
        assert_eq!(call("clamp", &[5.0, 0.0, 3.0]), Ok(3.0));
        assert_eq!(call("degrees", &[consts::PI]), Ok(180.0));
        assert_eq!(call("atan2", &[1.0, 0.0]), Ok(consts::FRAC_PI_2));
    }

    #[test]
    fn domain_errors() {
        assert!(call("sqrt", &[-1.0]).unwrap_err().contains("negative"));
        assert!(call("ln", &[0.0]).unwrap_err().contains("positive"));
        assert!(call("log", &[8.0, 1.0]).unwrap_err().contains("base"));
        assert!(call("asin", &[2.0]).unwrap_err().contains("-1 to 1"));
        assert!(call("factorial", &[171.0]).is_err());
        assert!(call("factorial", &[2.5]).is_err());
        assert!(call("factorial", &[-1.0]).is_err());
        assert!(call("mod", &[1.0, 0.0]).is_err());
        assert!(call("gcd", &[1.5, 2.0]).is_err());
        assert!(call("round", &[1.0, 0.5]).is_err());
        assert!(call("clamp", &[1.0, 3.0, 2.0]).is_err());
        assert!(power(-8.0, 1.0 / 3.0).unwrap_err().contains("cbrt"));
        assert_eq!(power(-2.0, 3.0), Ok(-8.0));
        assert!(power(0.0, -1.0).unwrap_err().contains("division by zero"));
    }

    #[test]
    fn arity_messages() {
        assert_eq!(
            lookup("sqrt").unwrap().check_arity(2).as_deref(),
            Some("1 argument")
        );
        assert_eq!(
            lookup("log").unwrap().check_arity(1).as_deref(),
            Some("2 arguments")
        );
        assert_eq!(
            lookup("round").unwrap().check_arity(3).as_deref(),
            Some("1 or 2 arguments")
        );
        assert_eq!(
            lookup("max").unwrap().check_arity(0).as_deref(),
            Some("at least 1 argument")
        );
        assert_eq!(lookup("max").unwrap().check_arity(9), None);
    }
}
