//! Right-hand-side expressions (docs/language.md §3): sums, products by `*` and by juxtaposition,
//! unary minus, powers, function calls, and tensor accesses.

use super::{PResult, ParseError, Parser};
use crate::ast::{Access, AccessStyle, BinOp, Expr, ExprKind, IndexArg};
use crate::lexer::TokenKind;

impl Parser {
    /// `sum = term { ("+" | "-") term }`, as a balanced tree (see [`balanced`]).
    pub(super) fn sum(&mut self) -> PResult<Expr> {
        let mut items = vec![(false, self.term()?)];
        loop {
            let inverse = match self.peek() {
                TokenKind::Plus => false,
                TokenKind::Minus => true,
                _ => return Ok(balanced(items, BinOp::Add, BinOp::Sub)),
            };
            self.bump();
            items.push((inverse, self.term()?));
        }
    }

    /// `term = factor { ("*" | "/" | juxtaposition) factor }`, as a balanced tree.
    fn term(&mut self) -> PResult<Expr> {
        let mut items = vec![(false, self.factor()?)];
        loop {
            let inverse = match self.peek() {
                TokenKind::Star => {
                    self.bump();
                    false
                }
                TokenKind::Slash => {
                    self.bump();
                    true
                }
                _ if self.starts_primary() => false,
                _ => return Ok(balanced(items, BinOp::Mul, BinOp::Div)),
            };
            items.push((inverse, self.factor()?));
        }
    }

    /// Whether the next token can start a juxtaposed factor (a lower-case name is an index
    /// value or a function call).
    fn starts_primary(&self) -> bool {
        matches!(
            self.peek(),
            TokenKind::Upper(_)
                | TokenKind::Number { .. }
                | TokenKind::LParen
                | TokenKind::Lower(_)
        )
    }

    /// `factor = "-" factor | power`.
    fn factor(&mut self) -> PResult<Expr> {
        self.enter()?;
        let expr = match self.eat(&TokenKind::Minus) {
            Some(minus) => {
                let inner = self.factor()?;
                Expr {
                    span: minus.to(inner.span),
                    kind: ExprKind::Neg(Box::new(inner)),
                }
            }
            None => self.power()?,
        };
        self.leave();
        Ok(expr)
    }

    /// `power = primary ["^" factor]`.
    fn power(&mut self) -> PResult<Expr> {
        let base = self.primary()?;
        if self.eat(&TokenKind::Caret).is_none() {
            return Ok(base);
        }
        let exponent = self.factor()?;
        Ok(binary(BinOp::Pow, base, exponent))
    }

    /// `primary = NUMBER | access | lower "(" args ")" | "(" sum ")"`.
    fn primary(&mut self) -> PResult<Expr> {
        let start = self.span();
        match self.peek().clone() {
            TokenKind::Number { value, .. } => {
                self.bump();
                Ok(Expr {
                    kind: ExprKind::Number(value),
                    span: start,
                })
            }
            TokenKind::Upper(_) => {
                let access = self.access()?;
                let span = access.span;
                Ok(Expr {
                    kind: ExprKind::Access(access),
                    span,
                })
            }
            TokenKind::Lower(name) => {
                if *self.nth(1) != TokenKind::LParen {
                    self.bump();
                    return Ok(Expr {
                        kind: ExprKind::Index(crate::ast::Ident { name, span: start }),
                        span: start,
                    });
                }
                let func = self.lower("a function name")?;
                let open = self.bump().span;
                let args = self.list(open, &TokenKind::RParen, ')', Parser::sum)?;
                Ok(Expr {
                    kind: ExprKind::Call { func, args },
                    span: self.since(start),
                })
            }
            TokenKind::LParen => {
                self.bump();
                let inner = self.sum()?;
                self.expect_close(&TokenKind::RParen, ')', start)?;
                Ok(Expr {
                    kind: inner.kind,
                    span: self.since(start),
                })
            }
            _ => Err(self.expected("an expression")),
        }
    }

    /// `access = UPPER ["[" index_args "]" | "(" index_args ")"]`.
    pub(super) fn access(&mut self) -> PResult<Access> {
        let name = self.upper("a tensor name")?;
        let (style, close_kind, close) = match self.peek() {
            TokenKind::LBracket => (AccessStyle::Bracket, TokenKind::RBracket, ']'),
            TokenKind::LParen => (AccessStyle::Paren, TokenKind::RParen, ')'),
            _ => {
                return Ok(Access {
                    span: name.span,
                    name,
                    style: AccessStyle::Bare,
                    args: Vec::new(),
                })
            }
        };
        let open = self.bump().span;
        let args = self.list(open, &close_kind, close, Parser::access_arg)?;
        Ok(Access {
            span: self.since(name.span),
            name,
            style,
            args,
        })
    }

    /// An index argument outside a left-hand side, where `.` and `: extent` are not allowed.
    pub(super) fn access_arg(&mut self) -> PResult<IndexArg> {
        let arg = self.index_arg()?;
        if matches!(self.peek(), TokenKind::Dot | TokenKind::Colon) {
            return Err(ParseError::MisplacedAnnotation {
                span: arg.span().to(self.span()),
            });
        }
        Ok(arg)
    }
}

/// A chain `x0 ∘ x1 ∘ … ∘ xn` of one level (`+`/`-`, or `*`/`/`), each item with whether it is
/// subtracted (divided), as a balanced tree of depth log2(n) rather than a left-deep one of
/// depth n: a sum of 10^5 terms must not make every later pass recurse 10^5 deep. Adjacent
/// groups are combined pairwise, left to right, keeping the items' order; a group whose
/// first item is inverted stays inverted (`-a + b` is `-(a - b)`, `-a - b` is `-(a + b)`),
/// and the first item of a chain never is. The value is the same (sums and products
/// regroup); only floating-point rounding may differ, as it does for any summation order.
fn balanced(items: Vec<(bool, Expr)>, op: BinOp, inverse_op: BinOp) -> Expr {
    let mut level = items;
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        let mut it = level.into_iter();
        while let Some((inv_a, a)) = it.next() {
            match it.next() {
                Some((inv_b, b)) => {
                    let how = if inv_a == inv_b { op } else { inverse_op };
                    next.push((inv_a, binary(how, a, b)));
                }
                None => next.push((inv_a, a)),
            }
        }
        level = next;
    }
    level.pop().map(|(_, e)| e).unwrap_or_else(|| Expr {
        kind: ExprKind::Number(0.0),
        span: crate::span::Span::default(),
    })
}

fn binary(op: BinOp, lhs: Expr, rhs: Expr) -> Expr {
    let span = lhs.span.to(rhs.span);
    Expr {
        kind: ExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
        span,
    }
}
