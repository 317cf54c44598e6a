//! Turns tokens into a syntax tree, with a Pratt parser.
//!
//! Binding power, loosest first: `+ -`, then `* / %`, then unary `-` and `+`,
//! then `^` (right-associative, so `-2^2` is `-(2^2)` and `2^3^2` is
//! `2^(3^2)`), then postfix `!`. Runs of `+ -` or of `* / %` become one flat
//! [`Expr::Chain`], so a long sum does not make a deep tree: the tree is only
//! as deep as the parser's recursion, which [`MAX_DEPTH`] bounds.

use crate::error::{CalcError, Span};
use crate::lexer::{Tok, Token};

/// How deeply parentheses, calls, signs and powers may nest.
pub(crate) const MAX_DEPTH: usize = 128;

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Num {
        value: f64,
        span: Span,
    },
    Var {
        name: String,
        span: Span,
    },
    Neg {
        operand: Box<Expr>,
        span: Span,
    },
    /// `first op e op e ...`, all of one precedence level, left to right.
    Chain {
        first: Box<Expr>,
        rest: Vec<(BinOp, Span, Expr)>,
    },
    Pow {
        base: Box<Expr>,
        exponent: Box<Expr>,
        op: Span,
    },
    Factorial {
        operand: Box<Expr>,
        op: Span,
    },
    Call {
        name: String,
        name_span: Span,
        args: Vec<Expr>,
        span: Span,
    },
}

/// A left-associative binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    /// Operators of one level may share a chain.
    fn level(self) -> u8 {
        match self {
            Self::Add | Self::Sub => 0,
            Self::Mul | Self::Div | Self::Rem => 1,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Rem => "%",
        }
    }
}

/// One `;`-separated statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stmt {
    Assign {
        name: String,
        span: Span,
        value: Expr,
    },
    Expr(Expr),
}

impl Expr {
    /// Where the whole expression is.
    pub fn span(&self) -> Span {
        match self {
            Self::Num { span, .. } | Self::Var { span, .. } | Self::Neg { span, .. } => *span,
            Self::Call { span, .. } => *span,
            Self::Chain { first, rest } => match rest.last() {
                Some((_, _, last)) => first.span().to(last.span()),
                None => first.span(),
            },
            Self::Pow { base, exponent, .. } => base.span().to(exponent.span()),
            Self::Factorial { operand, op } => operand.span().to(*op),
        }
    }
}

/// Parses the statements of a whole expression.
pub(crate) fn parse(tokens: &[Token]) -> Result<Vec<Stmt>, CalcError> {
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let mut stmts = Vec::new();
    loop {
        while parser.peek().tok == Tok::Semi {
            parser.pos += 1;
        }
        if parser.peek().tok == Tok::End {
            break;
        }
        stmts.push(parser.statement()?);
        match parser.peek().tok {
            Tok::Semi | Tok::End => {}
            _ => return Err(parser.unexpected("an operator, `;` or the end of the expression")),
        }
    }
    if stmts.is_empty() {
        return Err(CalcError::general("the expression is empty"));
    }
    Ok(stmts)
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

    fn peek_at(&self, ahead: usize) -> &Tok {
        self.tokens
            .get(self.pos + ahead)
            .map_or(&Tok::End, |t| &t.tok)
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if token.tok != Tok::End {
            self.pos += 1;
        }
        token
    }

    /// Enters one level of nesting, failing past [`MAX_DEPTH`].
    fn descend(&mut self) -> Result<(), CalcError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.too_deep());
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn too_deep(&self) -> CalcError {
        CalcError::at(
            self.peek().span,
            format!("the expression nests more than {MAX_DEPTH} levels deep"),
        )
    }

    fn statement(&mut self) -> Result<Stmt, CalcError> {
        if let (Tok::Ident(name), Tok::Assign) = (&self.peek().tok, self.peek_at(1)) {
            let name = name.clone();
            let span = self.bump().span;
            self.bump();
            let value = self.expr(0)?;
            return Ok(Stmt::Assign { name, span, value });
        }
        self.expr(0).map(Stmt::Expr)
    }

    /// An expression whose operators all bind at least as tightly as `min`.
    fn expr(&mut self, min: u8) -> Result<Expr, CalcError> {
        self.descend()?;
        let mut lhs = self.prefix()?;
        loop {
            let token = self.peek();
            let (op, span) = (token.tok.clone(), token.span);
            if op == Tok::Bang {
                if POSTFIX < min {
                    break;
                }
                self.bump();
                lhs = Expr::Factorial {
                    operand: Box::new(lhs),
                    op: span,
                };
                continue;
            }
            let Some((left, right)) = infix(&op) else {
                break;
            };
            if left < min {
                break;
            }
            self.bump();
            let rhs = self.expr(right)?;
            lhs = combine(lhs, &op, span, rhs);
        }
        self.depth -= 1;
        Ok(lhs)
    }

    /// Signs, a number, a name, a call or a parenthesised expression.
    fn prefix(&mut self) -> Result<Expr, CalcError> {
        let start = self.peek().span;
        match &self.peek().tok {
            Tok::Minus | Tok::Plus => {
                let mut negative = false;
                while matches!(self.peek().tok, Tok::Minus | Tok::Plus) {
                    negative ^= self.bump().tok == Tok::Minus;
                }
                let operand = self.expr(UNARY)?;
                if !negative {
                    return Ok(operand);
                }
                let span = start.to(operand.span());
                Ok(Expr::Neg {
                    operand: Box::new(operand),
                    span,
                })
            }
            &Tok::Num(value) => {
                self.bump();
                Ok(Expr::Num { value, span: start })
            }
            Tok::Ident(name) => {
                let name = name.clone();
                self.bump();
                if self.peek().tok != Tok::LParen {
                    return Ok(Expr::Var { name, span: start });
                }
                let open = self.bump().span;
                let args = self.arguments(&name, open)?;
                let close = self.bump().span;
                Ok(Expr::Call {
                    name,
                    name_span: start,
                    args,
                    span: start.to(close),
                })
            }
            Tok::LParen => {
                self.bump();
                let inner = self.expr(0)?;
                if self.peek().tok != Tok::RParen {
                    return Err(self.unclosed(start));
                }
                self.bump();
                Ok(inner)
            }
            _ => Err(self.unexpected("a number, a name, a function call or `(`")),
        }
    }

    /// The arguments of a call, up to (not past) the closing `)`.
    fn arguments(&mut self, name: &str, open: Span) -> Result<Vec<Expr>, CalcError> {
        let mut args = Vec::new();
        if self.peek().tok == Tok::RParen {
            return Ok(args);
        }
        loop {
            args.push(self.expr(0)?);
            match self.peek().tok {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RParen => return Ok(args),
                _ => return Err(self.unclosed_call(name, open)),
            }
        }
    }

    /// A `(` at `open` was not closed.
    #[cold]
    #[inline(never)]
    fn unclosed(&self, open: Span) -> CalcError {
        self.unexpected_in(&format!(
            "an operator or `)` to close the `(` at column {}",
            open.start + 1
        ))
    }

    /// The arguments of `name`, opened at `open`, were not closed.
    #[cold]
    #[inline(never)]
    fn unclosed_call(&self, name: &str, open: Span) -> CalcError {
        self.unexpected_in(&format!(
            "an operator, `,` or `)` to close the arguments of `{name}` opened at column {}",
            open.start + 1
        ))
    }

    /// The current token was not what the grammar allows here.
    #[cold]
    #[inline(never)]
    fn unexpected(&self, expected: &str) -> CalcError {
        let token = self.peek();
        let error = CalcError::at(token.span, format!("unexpected {}", token.describe()));
        match token.tok {
            Tok::End => CalcError::at(
                token.span,
                format!("expected {expected}, found the end of the expression"),
            ),
            Tok::RParen => error.hint("no `(` is open"),
            Tok::Comma => error.hint("`,` only separates the arguments of a function call"),
            Tok::Assign => {
                error.hint("an assignment must start a statement: `name = expression; ...`")
            }
            Tok::Num(_) | Tok::Ident(_) | Tok::LParen => self.missing_operator(),
            _ => error.hint(format!("expected {expected}")),
        }
    }

    /// Like [`Self::unexpected`], where a specific closer was expected.
    fn unexpected_in(&self, expected: &str) -> CalcError {
        let token = self.peek();
        match token.tok {
            Tok::Num(_) | Tok::Ident(_) | Tok::LParen => self.missing_operator(),
            _ => CalcError::at(
                token.span,
                format!("expected {expected}, found {}", token.describe()),
            ),
        }
    }

    /// Two operands in a row, as in `2x` or `3 (4)`.
    fn missing_operator(&self) -> CalcError {
        let token = self.peek();
        CalcError::at(
            token.span,
            format!("missing operator before {}", token.describe()),
        )
        .hint("implicit multiplication is not supported: write `*`, as in `2 * x`")
    }
}

/// How tightly unary `-` and `+` bind their operand.
const UNARY: u8 = 30;

/// How tightly postfix `!` binds.
const POSTFIX: u8 = 50;

/// The left and right binding power of an infix operator.
fn infix(tok: &Tok) -> Option<(u8, u8)> {
    match tok {
        Tok::Plus | Tok::Minus => Some((10, 11)),
        Tok::Star | Tok::Slash | Tok::Percent => Some((20, 21)),
        Tok::Caret => Some((41, 40)),
        _ => None,
    }
}

/// `lhs op rhs`; a `+ -` or `* / %` joins the chain `lhs` already is.
fn combine(lhs: Expr, op: &Tok, span: Span, rhs: Expr) -> Expr {
    let op = match op {
        Tok::Plus => BinOp::Add,
        Tok::Minus => BinOp::Sub,
        Tok::Star => BinOp::Mul,
        Tok::Slash => BinOp::Div,
        Tok::Percent => BinOp::Rem,
        _ => {
            return Expr::Pow {
                base: Box::new(lhs),
                exponent: Box::new(rhs),
                op: span,
            };
        }
    };
    match lhs {
        Expr::Chain { first, mut rest }
            if rest.first().is_some_and(|(o, ..)| o.level() == op.level()) =>
        {
            rest.push((op, span, rhs));
            Expr::Chain { first, rest }
        }
        lhs => Expr::Chain {
            first: Box::new(lhs),
            rest: vec![(op, span, rhs)],
        },
    }
}
