//! Literals: signed numbers, rectangular array literals, and file references.

use super::{PResult, ParseError, Parser};
use crate::ast::{ArrayLit, FileRef};
use crate::lexer::TokenKind;
use crate::span::Span;

/// An array literal as written, before it is checked to be rectangular.
enum Nested {
    Number(f64, Span),
    Rows(Vec<Nested>, Span),
}

impl Nested {
    fn span(&self) -> Span {
        match self {
            Nested::Number(_, span) | Nested::Rows(_, span) => *span,
        }
    }

    /// The shape implied by following the first element down.
    fn shape(&self) -> Vec<usize> {
        let mut shape = Vec::new();
        let mut node = self;
        while let Nested::Rows(items, _) = node {
            shape.push(items.len());
            match items.first() {
                Some(first) => node = first,
                None => break,
            }
        }
        shape
    }

    /// Checks that every row has the shape of its first sibling, all the way down.
    fn check(&self) -> PResult<()> {
        let Nested::Rows(items, _) = self else {
            return Ok(());
        };
        let Some(first) = items.first() else {
            return Ok(());
        };
        let want = first.shape();
        for item in items {
            if item.shape() != want {
                return Err(ParseError::RaggedArray {
                    row: item.span(),
                    first: first.span(),
                });
            }
            item.check()?;
        }
        Ok(())
    }

    fn flatten(&self, out: &mut Vec<f64>) {
        match self {
            Nested::Number(value, _) => out.push(*value),
            Nested::Rows(items, _) => items.iter().for_each(|item| item.flatten(out)),
        }
    }
}

impl Parser {
    /// `signed_num = ["-"] NUMBER`.
    pub(super) fn signed_number(&mut self) -> PResult<(f64, Span)> {
        let start = self.span();
        let negative = self.eat(&TokenKind::Minus).is_some();
        match *self.peek() {
            TokenKind::Number { value, .. } => {
                self.bump();
                let value = if negative { -value } else { value };
                Ok((value, self.since(start)))
            }
            _ => Err(self.expected("a number")),
        }
    }

    /// `array = "[" [array_elem {"," array_elem}] "]"`, checked to be rectangular and flattened
    /// in row-major order.
    pub(super) fn array(&mut self) -> PResult<ArrayLit> {
        let nested = self.nested()?;
        nested.check()?;
        let mut data = Vec::new();
        nested.flatten(&mut data);
        Ok(ArrayLit {
            shape: nested.shape(),
            data,
            span: nested.span(),
        })
    }

    fn nested(&mut self) -> PResult<Nested> {
        self.enter()?;
        let open = self.expect(&TokenKind::LBracket, "`[`")?;
        let items = self.list(open, &TokenKind::RBracket, ']', |p| {
            if *p.peek() == TokenKind::LBracket {
                p.nested()
            } else {
                p.signed_number()
                    .map(|(value, span)| Nested::Number(value, span))
            }
        })?;
        self.leave();
        Ok(Nested::Rows(items, self.since(open)))
    }

    /// A single number as a rank-0 array (for `const Lr = 0.01`), or an array literal.
    pub(super) fn number_or_array(&mut self) -> PResult<ArrayLit> {
        if *self.peek() == TokenKind::LBracket {
            return self.array();
        }
        let (value, span) = self.signed_number()?;
        Ok(ArrayLit {
            shape: Vec::new(),
            data: vec![value],
            span,
        })
    }
}

/// Splits a file string at its first `#` into a path and a tensor selector.
pub(super) fn file_ref(text: &str, span: Span) -> FileRef {
    match text.split_once('#') {
        Some((path, selector)) => FileRef {
            path: path.to_string(),
            selector: Some(selector.to_string()),
            span,
        },
        None => FileRef {
            path: text.to_string(),
            selector: None,
            span,
        },
    }
}
