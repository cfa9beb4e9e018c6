//! Statements introduced by a keyword: `import`, `param`, `const`, `domain` and `minimize`,
//! with the named calls (`normal(0, 1)`, `adam(lr=0.05)`) they use.

use super::{PResult, ParseError, Parser};
use crate::ast::{
    ArgValue, Batch, Call, CallArg, ConstDecl, DimSpec, DomainDecl, DomainMembers, Duration, Ident,
    Init, Minimize, ParamDecl, StmtKind, StrLit,
};
use crate::lexer::{Keyword, TokenKind};
use crate::span::Span;

impl Parser {
    /// `import = "import" STRING`.
    pub(super) fn import(&mut self) -> PResult<StmtKind> {
        self.expect_keyword(Keyword::Import)?;
        let (value, span) = self.string("the file to import, as a string")?;
        Ok(StmtKind::Import(StrLit { value, span }))
    }

    pub(super) fn string(&mut self, what: &str) -> PResult<(String, Span)> {
        match self.peek() {
            TokenKind::Str(value) => {
                let value = value.clone();
                Ok((value, self.bump().span))
            }
            _ => Err(self.expected(what)),
        }
    }

    /// `param = "param" UPPER ["[" dims "]"] ["~" call | "=" signed_num]`.
    pub(super) fn param(&mut self) -> PResult<StmtKind> {
        self.expect_keyword(Keyword::Param)?;
        let name = self.upper("the parameter's name")?;
        let mut dims = Vec::new();
        if let Some(open) = self.eat(&TokenKind::LBracket) {
            dims = self.list(open, &TokenKind::RBracket, ']', |p| match p.peek() {
                TokenKind::Upper(_) => p.upper("a domain name").map(DimSpec::Domain),
                _ => {
                    let (n, span) = p.count("an extent (an integer or a domain name)")?;
                    Ok(DimSpec::Size(n, span))
                }
            })?;
        }
        let init = if self.eat(&TokenKind::Tilde).is_some() {
            Some(Init::Random(
                self.call("an initialiser such as `normal(0, 1)`")?,
            ))
        } else if self.eat(&TokenKind::Eq).is_some() {
            let (value, span) = self.signed_number()?;
            Some(Init::Constant(value, span))
        } else {
            None
        };
        Ok(StmtKind::Param(ParamDecl { name, dims, init }))
    }

    /// `const = "const" UPPER "=" (signed_num | array)`.
    pub(super) fn constant(&mut self) -> PResult<StmtKind> {
        self.expect_keyword(Keyword::Const)?;
        let name = self.upper("the constant's name")?;
        self.expect(&TokenKind::Eq, "`=`")?;
        let value = self.number_or_array()?;
        Ok(StmtKind::Const(ConstDecl { name, value }))
    }

    /// `domain = "domain" UPPER "=" (INT | "{" members "}")`.
    pub(super) fn domain(&mut self) -> PResult<StmtKind> {
        self.expect_keyword(Keyword::Domain)?;
        let name = self.upper("the domain's name")?;
        self.expect(&TokenKind::Eq, "`=`")?;
        let members = if let Some(open) = self.eat(&TokenKind::LBrace) {
            let symbols = self.list(open, &TokenKind::RBrace, '}', |p| match p.peek() {
                TokenKind::Upper(name) | TokenKind::Str(name) => {
                    let name = name.clone();
                    Ok((name, p.bump().span))
                }
                _ => Err(p.expected("a symbol such as `Alice` or \"New York\"")),
            })?;
            DomainMembers::Symbols(symbols)
        } else {
            let (n, span) = self.count("`{` or the number of elements")?;
            DomainMembers::Range(n, span)
        };
        Ok(StmtKind::Domain(DomainDecl { name, members }))
    }

    /// `minimize = "minimize" UPPER "with" call "for" INT ("steps" | "epochs")
    /// {"batch" lower INT | "schedule" call}`.
    pub(super) fn minimize(&mut self) -> PResult<StmtKind> {
        self.expect_keyword(Keyword::Minimize)?;
        let loss = self.upper("the loss tensor's name")?;
        self.expect_keyword(Keyword::With)?;
        let optimizer = self.call("an optimiser such as `adam(lr=0.01)`")?;
        let for_span = self.expect_keyword(Keyword::For)?;
        let (n, _) = self.count("the number of steps or epochs")?;
        let duration = if self.eat_keyword(Keyword::Steps).is_some() {
            Duration::Steps(n, self.since(for_span))
        } else if self.eat_keyword(Keyword::Epochs).is_some() {
            Duration::Epochs(n, self.since(for_span))
        } else {
            return Err(self.expected("`steps` or `epochs`"));
        };
        let mut batch: Option<Batch> = None;
        let mut schedule: Option<(Call, Span)> = None;
        while !self.at_end() {
            let start = self.span();
            if self.eat_keyword(Keyword::Batch).is_some() {
                if let Some(first) = &batch {
                    return Err(duplicate("batch", start, first.span));
                }
                let index = self.lower("the example index, e.g. `e`")?;
                let (size, _) = self.count("the batch size")?;
                batch = Some(Batch {
                    index,
                    size,
                    span: self.since(start),
                });
            } else if self.eat_keyword(Keyword::Schedule).is_some() {
                if let Some((_, first)) = &schedule {
                    return Err(duplicate("schedule", start, *first));
                }
                let call = self.call("a schedule such as `cosine(warmup=50)`")?;
                schedule = Some((call, self.since(start)));
            } else {
                return Err(self.expected("`batch`, `schedule` or the end of the statement"));
            }
        }
        Ok(StmtKind::Minimize(Minimize {
            loss,
            optimizer,
            duration,
            batch,
            schedule: schedule.map(|(call, _)| call),
        }))
    }

    /// `call = lower ["(" [call_arg {"," call_arg}] ")"]`.
    fn call(&mut self, what: &str) -> PResult<Call> {
        let name = self.lower(what)?;
        let mut args = Vec::new();
        if let Some(open) = self.eat(&TokenKind::LParen) {
            args = self.list(open, &TokenKind::RParen, ')', Parser::call_arg)?;
        }
        Ok(Call {
            span: self.since(name.span),
            name,
            args,
        })
    }

    /// `call_arg = [lower "="] arg_value`; `max=`, `min=` and `avg=` lex as one token and are
    /// split back into a keyword and `=` here.
    fn call_arg(&mut self) -> PResult<CallArg> {
        let start = self.span();
        let fused = match self.peek() {
            TokenKind::MaxEq => Some("max"),
            TokenKind::MinEq => Some("min"),
            TokenKind::AvgEq => Some("avg"),
            _ => None,
        };
        let name = if let Some(word) = fused {
            self.bump();
            let span = Span::new(
                start.file,
                start.range().start,
                start.range().end.saturating_sub(1),
            );
            Some(Ident {
                name: word.to_string(),
                span,
            })
        } else if matches!(self.peek(), TokenKind::Lower(_)) && *self.nth(1) == TokenKind::Eq {
            let key = self.lower("an option name")?;
            self.bump();
            Some(key)
        } else {
            None
        };
        let value = match self.peek() {
            TokenKind::Keyword(Keyword::True) => {
                self.bump();
                ArgValue::Bool(true)
            }
            TokenKind::Keyword(Keyword::False) => {
                self.bump();
                ArgValue::Bool(false)
            }
            TokenKind::Upper(_) => ArgValue::Name(self.upper("a value")?),
            TokenKind::Lower(_) => ArgValue::Name(self.lower("a value")?),
            TokenKind::Number { .. } | TokenKind::Minus => {
                ArgValue::Number(self.signed_number()?.0)
            }
            _ => return Err(self.expected("a number, `true`, `false` or a name")),
        };
        Ok(CallArg {
            name,
            value,
            span: self.since(start),
        })
    }
}

fn duplicate(clause: &'static str, span: Span, first: Span) -> ParseError {
    ParseError::DuplicateClause {
        clause,
        span,
        first,
    }
}
