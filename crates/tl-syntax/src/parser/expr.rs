//! Right-hand-side expressions (docs/language.md §3): sums, products by `*` and by juxtaposition,
//! unary minus, powers, function calls, and tensor accesses.

use super::{PResult, ParseError, Parser};
use crate::ast::{Access, AccessStyle, BinOp, Expr, ExprKind, IndexArg};
use crate::lexer::TokenKind;

impl Parser {
    /// `sum = term { ("+" | "-") term }`.
    pub(super) fn sum(&mut self) -> PResult<Expr> {
        let mut lhs = self.term()?;
        loop {
            let op = match self.peek() {
                TokenKind::Plus => BinOp::Add,
                TokenKind::Minus => BinOp::Sub,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.term()?;
            lhs = binary(op, lhs, rhs);
        }
    }

    /// `term = factor { ("*" | "/" | juxtaposition) factor }`.
    fn term(&mut self) -> PResult<Expr> {
        let mut lhs = self.factor()?;
        loop {
            let op = match self.peek() {
                TokenKind::Star => {
                    self.bump();
                    BinOp::Mul
                }
                TokenKind::Slash => {
                    self.bump();
                    BinOp::Div
                }
                _ if self.starts_primary() => BinOp::Mul,
                _ => return Ok(lhs),
            };
            let rhs = self.factor()?;
            lhs = binary(op, lhs, rhs);
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
