//! Index arguments: variables, constants, symbols, slices and index arithmetic, as they appear
//! inside `[..]`, in atoms, and (with extents and dots) on left-hand sides.

use super::{PResult, ParseError, Parser};
use crate::ast::{ExtentAnn, IndexArg, IndexExpr, IndexOp, LhsIndex};
use crate::lexer::TokenKind;

impl Parser {
    /// `index_arg = UPPER | STRING | slice | index_sum`.
    pub(super) fn index_arg(&mut self) -> PResult<IndexArg> {
        let start = self.span();
        match self.peek().clone() {
            TokenKind::Upper(name) | TokenKind::Str(name) => {
                self.bump();
                return Ok(IndexArg::Symbol { name, span: start });
            }
            TokenKind::Colon => return self.slice_rest(None, start),
            TokenKind::Star => return self.virtual_index(start),
            _ => {}
        }
        if let Some(first) = self.slice_bound_ahead() {
            return self.slice_rest(Some(first), start);
        }
        self.index_sum().map(IndexArg::Expr)
    }

    /// `virtual = "*" lower [("+" | "-") INT]` (also `INT + lower`): a step of a loop.
    fn virtual_index(&mut self, start: crate::span::Span) -> PResult<IndexArg> {
        self.bump();
        let expr = self.index_sum()?;
        let span = self.since(start);
        match step_form(&expr) {
            Some((var, offset)) => Ok(IndexArg::Virtual { var, offset, span }),
            None => Err(ParseError::VirtualIndex { span }),
        }
    }

    /// A signed integer followed by `:` starts a slice; consumes the integer when it does.
    fn slice_bound_ahead(&mut self) -> Option<i64> {
        let (negative, skip) = match self.peek() {
            TokenKind::Minus => (true, 1),
            _ => (false, 0),
        };
        let TokenKind::Number { int: Some(n), .. } = *self.nth(skip) else {
            return None;
        };
        if *self.nth(skip + 1) != TokenKind::Colon {
            return None;
        }
        for _ in 0..=skip {
            self.bump();
        }
        Some(if negative { n.saturating_neg() } else { n })
    }

    /// The rest of a slice after its start: `: [end]`.
    fn slice_rest(&mut self, start: Option<i64>, from: crate::span::Span) -> PResult<IndexArg> {
        self.expect(&TokenKind::Colon, "`:`")?;
        let end = match self.peek() {
            TokenKind::Number { .. } | TokenKind::Minus => Some(self.signed_int()?),
            _ => None,
        };
        Ok(IndexArg::Slice {
            start,
            end,
            span: self.since(from),
        })
    }

    /// An integer with an optional leading `-`.
    pub(super) fn signed_int(&mut self) -> PResult<i64> {
        let negative = self.eat(&TokenKind::Minus).is_some();
        match *self.peek() {
            TokenKind::Number { int: Some(n), .. } => {
                self.bump();
                Ok(if negative { n.saturating_neg() } else { n })
            }
            _ => Err(self.expected("an integer")),
        }
    }

    /// `index_sum = index_term { ("+" | "-") index_term }`.
    fn index_sum(&mut self) -> PResult<IndexExpr> {
        let mut lhs = self.index_term()?;
        loop {
            let op = match self.peek() {
                TokenKind::Plus => IndexOp::Add,
                TokenKind::Minus => IndexOp::Sub,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.index_term()?;
            lhs = binary(op, lhs, rhs);
        }
    }

    /// `index_term = index_un { ("*" | "/" | "%") index_un }`.
    fn index_term(&mut self) -> PResult<IndexExpr> {
        let mut lhs = self.index_unary()?;
        loop {
            let op = match self.peek() {
                TokenKind::Star => IndexOp::Mul,
                TokenKind::Slash => IndexOp::Div,
                TokenKind::Percent => IndexOp::Rem,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.index_unary()?;
            lhs = binary(op, lhs, rhs);
        }
    }

    /// `index_un = "-" index_un | lower | INT | "(" index_sum ")"`; `-` before an integer
    /// folds into the constant, before anything else it is `0 - x`.
    fn index_unary(&mut self) -> PResult<IndexExpr> {
        self.enter()?;
        let expr = self.index_unary_inner()?;
        self.leave();
        Ok(expr)
    }

    fn index_unary_inner(&mut self) -> PResult<IndexExpr> {
        let start = self.span();
        match self.peek().clone() {
            TokenKind::Minus => {
                self.bump();
                match self.index_unary()? {
                    IndexExpr::Int(n, _) => {
                        Ok(IndexExpr::Int(n.saturating_neg(), self.since(start)))
                    }
                    inner => Ok(binary(IndexOp::Sub, IndexExpr::Int(0, start), inner)),
                }
            }
            TokenKind::Lower(_) => self.lower("an index").map(IndexExpr::Var),
            TokenKind::Number { int: Some(n), .. } => {
                self.bump();
                Ok(IndexExpr::Int(n, start))
            }
            TokenKind::Number { .. } => Err(ParseError::NotAnInteger {
                found: self.peek().to_string(),
                span: start,
            }),
            TokenKind::LParen => {
                self.bump();
                let inner = self.index_sum()?;
                self.expect_close(&TokenKind::RParen, ')', start)?;
                Ok(inner)
            }
            _ => Err(self.expected("an index (a variable, an integer, a symbol or a slice)")),
        }
    }

    /// `lhs_index = index_arg ["."] [":" (INT | UPPER)] ["."]`.
    pub(super) fn lhs_index(&mut self) -> PResult<LhsIndex> {
        let arg = self.index_arg()?;
        let mut dotted = self.eat(&TokenKind::Dot).is_some();
        let extent = if self.eat(&TokenKind::Colon).is_some() {
            Some(match self.peek() {
                TokenKind::Upper(_) => ExtentAnn::Domain(self.upper("a domain name")?),
                _ => {
                    let (n, span) = self.count("an extent (an integer or a domain name)")?;
                    ExtentAnn::Size(n, span)
                }
            })
        } else {
            None
        };
        dotted |= self.eat(&TokenKind::Dot).is_some();
        Ok(LhsIndex {
            arg,
            dotted,
            extent,
        })
    }
}

/// The variable and constant of `t`, `t + c`, `c + t` or `t - c`.
fn step_form(e: &IndexExpr) -> Option<(crate::ast::Ident, i64)> {
    match e {
        IndexExpr::Var(v) => Some((v.clone(), 0)),
        IndexExpr::Binary { op, lhs, rhs, .. } => match (op, lhs.as_ref(), rhs.as_ref()) {
            (IndexOp::Add, IndexExpr::Var(v), IndexExpr::Int(c, _))
            | (IndexOp::Add, IndexExpr::Int(c, _), IndexExpr::Var(v)) => Some((v.clone(), *c)),
            (IndexOp::Sub, IndexExpr::Var(v), IndexExpr::Int(c, _)) => {
                Some((v.clone(), c.checked_neg()?))
            }
            _ => None,
        },
        IndexExpr::Int(..) => None,
    }
}

fn binary(op: IndexOp, lhs: IndexExpr, rhs: IndexExpr) -> IndexExpr {
    let span = lhs.span().to(rhs.span());
    IndexExpr::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        span,
    }
}
