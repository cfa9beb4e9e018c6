//! Statements that start with a tensor name or a file string: facts, rules, queries,
//! equations, data definitions and write commands.

use super::literal::file_ref;
use super::{PResult, ParseError, Parser};
use crate::ast::{
    Atom, BodyItem, Compare, DataDef, DataSource, Equation, IndexArg, IndexExpr, Lhs, LhsIndex,
    Projection, Query, Rule, StmtKind, StrLit, Tokenized, WriteCmd,
};
use crate::lexer::{Keyword, TokenKind};

impl Parser {
    /// A statement starting with an upper-case name; its form is read off its shape.
    pub(super) fn tensor_statement(&mut self) -> PResult<StmtKind> {
        if self.ends_with_question() {
            let access = self.access()?;
            self.expect(&TokenKind::Question, "`?`")?;
            return Ok(StmtKind::Query(Query { access }));
        }
        if *self.nth(1) == TokenKind::LParen {
            let head = self.atom()?;
            if self.eat(&TokenKind::Arrow).is_some() {
                return self.rule_body(head);
            }
            if *self.peek() == TokenKind::Eq && matches!(self.nth(1), TokenKind::Str(_)) {
                return self.relation_data(head);
            }
            self.eat(&TokenKind::Dot);
            if !self.at_end() {
                return Err(self.expected("`<-`, `?` or the end of the fact"));
            }
            return fact(head);
        }
        let lhs = self.lhs()?;
        let (projection, op_span) = match self.peek() {
            TokenKind::Eq => (Projection::Assign, self.span()),
            TokenKind::PlusEq => (Projection::Add, self.span()),
            TokenKind::MaxEq => (Projection::Max, self.span()),
            TokenKind::MinEq => (Projection::Min, self.span()),
            TokenKind::AvgEq => (Projection::Avg, self.span()),
            _ => return Err(self.expected("`=`, `+=`, `max=`, `min=`, `avg=` or `?`")),
        };
        self.bump();
        let source = match self.peek() {
            TokenKind::Str(_) if self.at_tokenized() => Some(self.tokenized()?),
            TokenKind::Str(text)
                if *self.nth(1) == TokenKind::Newline || *self.nth(1) == TokenKind::Eof =>
            {
                let text = text.clone();
                Some(DataSource::File(file_ref(&text, self.bump().span)))
            }
            TokenKind::LBracket => Some(DataSource::Array(self.array()?)),
            _ => None,
        };
        if let Some(source) = source {
            if projection != Projection::Assign {
                return Err(ParseError::DataProjection { span: op_span });
            }
            return Ok(StmtKind::Data(DataDef { lhs, source }));
        }
        let rhs = self.sum()?;
        Ok(StmtKind::Equation(Equation {
            lhs,
            projection,
            rhs,
        }))
    }

    /// `Tok(s, p, t) = "file"…`: a relation read from a file, its arguments naming its axes.
    fn relation_data(&mut self, head: Atom) -> PResult<StmtKind> {
        self.expect(&TokenKind::Eq, "`=`")?;
        let indices = head
            .args
            .into_iter()
            .map(|arg| LhsIndex {
                arg,
                dotted: false,
                extent: None,
            })
            .collect();
        let lhs = Lhs {
            name: head.name,
            indices: Some(indices),
            span: head.span,
        };
        let source = if self.at_tokenized() {
            self.tokenized()?
        } else {
            let (text, span) = self.string("a file name")?;
            DataSource::File(file_ref(&text, span))
        };
        if !self.at_end() {
            return Err(self.expected("the end of the statement"));
        }
        Ok(StmtKind::Data(DataDef { lhs, source }))
    }

    /// Whether a string followed by `tokenized` starts here.
    fn at_tokenized(&self) -> bool {
        matches!(self.nth(1), TokenKind::Lower(w) if w == "tokenized")
    }

    /// `tokenized = STRING "tokenized" "by" STRING {("max" | "length") INT}`.
    fn tokenized(&mut self) -> PResult<DataSource> {
        let (text, text_span) = self.string("a text file")?;
        self.bump();
        match self.peek() {
            TokenKind::Lower(w) if w == "by" => {
                self.bump();
            }
            _ => return Err(self.expected("`by` and the tokenizer file")),
        }
        let (tokenizer, tokenizer_span) =
            self.string("the tokenizer file, e.g. \"tokenizer.json\"")?;
        let mut max_length = None;
        let mut length = None;
        loop {
            let clause: &'static str = match self.peek() {
                TokenKind::Lower(w) if w == "max" => "max",
                TokenKind::Lower(w) if w == "length" => "length",
                _ => break,
            };
            let first = self.bump().span;
            let value = self.count("a number of tokens")?;
            let slot = if clause == "max" {
                &mut max_length
            } else {
                &mut length
            };
            if let Some((_, earlier)) = slot {
                return Err(ParseError::DuplicateClause {
                    clause,
                    span: first,
                    first: *earlier,
                });
            }
            *slot = Some((value.0, first.to(value.1)));
        }
        if !self.at_end() {
            return Err(self.expected("`max N`, `length N` or the end of the statement"));
        }
        Ok(DataSource::Tokenized(Tokenized {
            text: StrLit {
                value: text,
                span: text_span,
            },
            tokenizer: StrLit {
                value: tokenizer,
                span: tokenizer_span,
            },
            max_length,
            length,
            span: self.since(text_span),
        }))
    }

    /// Whether the current statement's last token is `?`.
    fn ends_with_question(&self) -> bool {
        let mut n = 0;
        let mut last = &TokenKind::Eof;
        loop {
            match self.nth(n) {
                TokenKind::Newline | TokenKind::Eof => return *last == TokenKind::Question,
                kind => last = kind,
            }
            n += 1;
        }
    }

    /// `lhs = UPPER ["[" [lhs_index {"," lhs_index}] "]"]`.
    fn lhs(&mut self) -> PResult<Lhs> {
        let name = self.upper("a tensor name")?;
        let indices = match self.eat(&TokenKind::LBracket) {
            Some(open) => Some(self.list(open, &TokenKind::RBracket, ']', Parser::lhs_index)?),
            None => None,
        };
        Ok(Lhs {
            span: self.since(name.span),
            name,
            indices,
        })
    }

    /// `atom = UPPER "(" [index_arg {"," index_arg}] ")"`.
    fn atom(&mut self) -> PResult<Atom> {
        let name = self.upper("a relation name")?;
        let open = self.expect(&TokenKind::LParen, "`(`")?;
        let args = self.list(open, &TokenKind::RParen, ')', Parser::access_arg)?;
        Ok(Atom {
            span: self.since(name.span),
            name,
            args,
        })
    }

    /// `body_item {"," body_item}` after `<-`.
    fn rule_body(&mut self, head: Atom) -> PResult<StmtKind> {
        let mut body = Vec::new();
        loop {
            body.push(self.body_item()?);
            if self.eat(&TokenKind::Comma).is_none() {
                return Ok(StmtKind::Rule(Rule { head, body }));
            }
        }
    }

    /// `body_item = ["not"] atom | index_arg cmp_op index_arg`.
    fn body_item(&mut self) -> PResult<BodyItem> {
        if self.eat_keyword(Keyword::Not).is_some() {
            let atom = self.atom()?;
            return Ok(BodyItem::Atom {
                negated: true,
                atom,
            });
        }
        if matches!(self.peek(), TokenKind::Upper(_)) && *self.nth(1) == TokenKind::LParen {
            let atom = self.atom()?;
            return Ok(BodyItem::Atom {
                negated: false,
                atom,
            });
        }
        let lhs = self.access_arg()?;
        let op = match self.peek() {
            TokenKind::EqEq => Compare::Eq,
            TokenKind::Ne => Compare::Ne,
            TokenKind::Lt => Compare::Lt,
            TokenKind::Le => Compare::Le,
            TokenKind::Gt => Compare::Gt,
            TokenKind::Ge => Compare::Ge,
            _ => return Err(self.expected("an atom such as `Parent(x, y)` or a comparison")),
        };
        self.bump();
        let rhs = self.access_arg()?;
        let span = lhs.span().to(rhs.span());
        Ok(BodyItem::Compare { op, lhs, rhs, span })
    }

    /// `write = STRING "=" UPPER {"," UPPER}`.
    pub(super) fn write(&mut self) -> PResult<StmtKind> {
        let (text, span) = self.string("a file name")?;
        self.expect(&TokenKind::Eq, "`=` and the tensors to write")?;
        let mut tensors = vec![self.upper("a tensor name")?];
        while self.eat(&TokenKind::Comma).is_some() {
            tensors.push(self.upper("a tensor name")?);
        }
        Ok(StmtKind::Write(WriteCmd {
            file: file_ref(&text, span),
            tensors,
            delimiter: None,
        }))
    }
}

/// A fact's arguments must be symbols or integers.
fn fact(atom: Atom) -> PResult<StmtKind> {
    let bad = atom.args.iter().find(|arg| {
        !matches!(
            arg,
            IndexArg::Symbol { .. } | IndexArg::Expr(IndexExpr::Int(..))
        )
    });
    if let Some(arg) = bad {
        return Err(ParseError::FactArgument {
            span: arg.span(),
            relation: atom.name.span,
        });
    }
    Ok(StmtKind::Fact(atom))
}
