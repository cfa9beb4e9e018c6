//! The parser: tokens to the syntax tree of [`crate::ast`], with error recovery.
//!
//! Each statement is one logical line (the lexer drops line breaks inside brackets and after
//! operators). The form of a statement is decided by its shape: its first token, whether it
//! holds `<-`, whether it ends with `?`, and what follows its left-hand side. On an error the
//! parser records it, skips to the next statement, and goes on, so one run reports every
//! broken statement of a file.
//!
//! The grammar (docs/language.md §1–§3), in EBNF. `UPPER` and `lower` are names by the case of their
//! first letter, `INT` is a number written without `.` or exponent, `NL` ends a statement.
//!
//! ```text
//! program    = { [ stmt ] NL } ;
//! stmt       = import | param | const | domain | minimize | write
//!            | query | rule | fact | equation | data ;
//! import     = "import" STRING ;
//! param      = "param" UPPER [ "[" [ dim { "," dim } ] "]" ]
//!              [ "~" call | "=" signed_num ] ;
//! dim        = INT | UPPER ;
//! const      = "const" UPPER "=" ( signed_num | array ) ;
//! domain     = "domain" UPPER "=" ( INT | "{" [ member { "," member } ] "}" ) ;
//! member     = UPPER | STRING ;
//! minimize   = "minimize" UPPER "with" call "for" INT ( "steps" | "epochs" )
//!              { "batch" lower INT | "schedule" call } ;
//! call       = lower [ "(" [ call_arg { "," call_arg } ] ")" ] ;
//! call_arg   = [ lower "=" ] arg_value ;
//! arg_value  = signed_num | "true" | "false" | UPPER | lower ;
//! write      = STRING "=" UPPER { "," UPPER } ;
//! query      = access "?" ;
//! rule       = atom "<-" body_item { "," body_item } ;
//! body_item  = [ "not" ] atom | index_arg cmp_op index_arg ;
//! cmp_op     = "==" | "!=" | "<" | "<=" | ">" | ">=" ;
//! fact       = atom [ "." ] ;                       (* constant arguments only *)
//! atom       = UPPER "(" [ index_arg { "," index_arg } ] ")" ;
//! equation   = lhs proj sum ;
//! data       = ( lhs | atom ) "=" ( STRING | tokenized ) | lhs "=" array ;
//! tokenized  = STRING "tokenized" "by" STRING { ( "max" | "length" ) INT } ;
//! proj       = "=" | "+=" | "max=" | "min=" | "avg=" ;
//! lhs        = UPPER [ "[" [ lhs_index { "," lhs_index } ] "]" ] ;
//! lhs_index  = index_arg [ "." ] [ ":" ( INT | UPPER ) ] [ "." ] ;
//! index_arg  = UPPER | STRING | slice | index_sum ;
//! slice      = [ signed_int ] ":" [ signed_int ] ;
//! index_sum  = index_term { ( "+" | "-" ) index_term } ;
//! index_term = index_un { ( "*" | "/" | "%" ) index_un } ;
//! index_un   = "-" index_un | lower | INT | "(" index_sum ")" ;
//! sum        = term { ( "+" | "-" ) term } ;
//! term       = factor { ( "*" | "/" | (* juxtaposition *) ) factor } ;
//! factor     = "-" factor | power ;
//! power      = primary [ "^" factor ] ;
//! primary    = NUMBER | access | lower "(" [ sum { "," sum } ] ")" | "(" sum ")" ;
//! access     = UPPER [ "[" [ index_arg { "," index_arg } ] "]"
//!                    | "(" [ index_arg { "," index_arg } ] ")" ] ;
//! array      = "[" [ array_elem { "," array_elem } ] "]" ;
//! array_elem = signed_num | array ;
//! signed_num = [ "-" ] NUMBER ;
//! ```
//!
//! Juxtaposition: a factor directly followed by something that starts a primary (an upper-case
//! name, a number, `(`, or a function call) is a product, `BinOp::Mul`.

mod decl;
mod error;
mod expr;
mod index;
mod literal;
#[cfg(test)]
mod recovery_tests;
mod stmt;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod virtual_tests;

pub use error::ParseError;

use crate::ast::{Ident, Program, Stmt};
use crate::lexer::{lex, Keyword, Token, TokenKind};
use crate::span::{FileId, Span};

/// Parses one source file. Never fails as a whole: the statements that parse are returned
/// together with an error for each one that does not.
pub fn parse(text: &str, file: FileId) -> (Program, Vec<ParseError>) {
    let (tokens, mut errors) = lex(text, file);
    let end = text.len();
    let mut parser = Parser {
        tokens,
        pos: 0,
        eof: Token {
            kind: TokenKind::Eof,
            span: Span::new(file, end, end),
        },
        depth: 0,
    };
    let mut program = Program::default();
    while *parser.peek() != TokenKind::Eof {
        if *parser.peek() == TokenKind::Newline {
            parser.bump();
            continue;
        }
        match parser.statement() {
            Ok(stmt) => program.stmts.push(stmt),
            Err(err) => {
                errors.push(err);
                parser.skip_statement();
            }
        }
    }
    errors.sort_by_key(|e| e.span().start);
    (program, errors)
}

type PResult<T> = Result<T, ParseError>;

/// A cursor over the tokens of one file.
struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    eof: Token,
    /// How deeply nested the current construct is, bounded so that no input overflows the stack.
    depth: usize,
}

/// The deepest nesting of parentheses, minus signs or array brackets accepted.
pub(crate) const MAX_DEPTH: usize = 200;

impl Parser {
    fn token(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&self.eof)
    }

    fn peek(&self) -> &TokenKind {
        &self.token().kind
    }

    fn nth(&self, n: usize) -> &TokenKind {
        self.tokens
            .get(self.pos + n)
            .map_or(&self.eof.kind, |t| &t.kind)
    }

    fn span(&self) -> Span {
        self.token().span
    }

    /// The span of the last token consumed.
    fn prev_span(&self) -> Span {
        match self.pos.checked_sub(1).and_then(|i| self.tokens.get(i)) {
            Some(t) => t.span,
            None => self.eof.span,
        }
    }

    /// From `start` to the end of the last token consumed.
    fn since(&self, start: Span) -> Span {
        start.to(self.prev_span())
    }

    fn bump(&mut self) -> Token {
        let token = self.token().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    fn at_end(&self) -> bool {
        matches!(self.peek(), TokenKind::Newline | TokenKind::Eof)
    }

    fn eat(&mut self, kind: &TokenKind) -> Option<Span> {
        if self.peek() == kind {
            Some(self.bump().span)
        } else {
            None
        }
    }

    fn eat_keyword(&mut self, keyword: Keyword) -> Option<Span> {
        self.eat(&TokenKind::Keyword(keyword))
    }

    fn expected(&self, what: &str) -> ParseError {
        ParseError::Expected {
            expected: what.to_string(),
            found: self.peek().to_string(),
            span: self.span(),
        }
    }

    fn expect(&mut self, kind: &TokenKind, what: &str) -> PResult<Span> {
        self.eat(kind).ok_or_else(|| self.expected(what))
    }

    fn expect_keyword(&mut self, keyword: Keyword) -> PResult<Span> {
        self.eat_keyword(keyword)
            .ok_or_else(|| self.expected(&format!("`{}`", keyword.as_str())))
    }

    /// Expects the bracket closing the one at `open`.
    fn expect_close(&mut self, kind: &TokenKind, close: char, open: Span) -> PResult<Span> {
        self.eat(kind).ok_or_else(|| ParseError::Unclosed {
            close,
            found: self.peek().to_string(),
            span: self.span(),
            open,
        })
    }

    fn upper(&mut self, what: &str) -> PResult<Ident> {
        match self.peek() {
            TokenKind::Upper(name) => {
                let name = name.clone();
                let span = self.bump().span;
                Ok(Ident { name, span })
            }
            _ => Err(self.expected(what)),
        }
    }

    fn lower(&mut self, what: &str) -> PResult<Ident> {
        match self.peek() {
            TokenKind::Lower(name) => {
                let name = name.clone();
                let span = self.bump().span;
                Ok(Ident { name, span })
            }
            _ => Err(self.expected(what)),
        }
    }

    /// A non-negative integer such as an extent or a step count.
    fn count(&mut self, what: &str) -> PResult<(u64, Span)> {
        match *self.peek() {
            TokenKind::Number { int: Some(n), .. } => {
                let span = self.bump().span;
                u64::try_from(n)
                    .map(|n| (n, span))
                    .map_err(|_| ParseError::NotAnInteger {
                        found: n.to_string(),
                        span,
                    })
            }
            TokenKind::Number { .. } | TokenKind::Minus => Err(ParseError::NotAnInteger {
                found: self.peek().to_string(),
                span: self.span(),
            }),
            _ => Err(self.expected(what)),
        }
    }

    /// Comma-separated items up to the closing bracket `close_kind`; the opening bracket has
    /// been consumed and is at `open`.
    fn list<T>(
        &mut self,
        open: Span,
        close_kind: &TokenKind,
        close: char,
        mut item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        let mut items = Vec::new();
        if self.eat(close_kind).is_some() {
            return Ok(items);
        }
        loop {
            items.push(item(self)?);
            if self.eat(&TokenKind::Comma).is_none() {
                self.expect_close(close_kind, close, open)?;
                return Ok(items);
            }
        }
    }

    /// Enters one level of nesting; `leave` undoes it. After an error the count is reset at
    /// the next statement, so an early return needs no `leave`.
    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::TooDeep { span: self.span() });
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn skip_statement(&mut self) {
        while !self.at_end() {
            self.bump();
        }
    }

    fn statement(&mut self) -> PResult<Stmt> {
        self.depth = 0;
        let start = self.span();
        let kind = match self.peek() {
            TokenKind::Keyword(Keyword::Import) => self.import()?,
            TokenKind::Keyword(Keyword::Param) => self.param()?,
            TokenKind::Keyword(Keyword::Const) => self.constant()?,
            TokenKind::Keyword(Keyword::Domain) => self.domain()?,
            TokenKind::Keyword(Keyword::Minimize) => self.minimize()?,
            TokenKind::Str(_) => self.write()?,
            TokenKind::Upper(_) => self.tensor_statement()?,
            TokenKind::Lower(name) => {
                return Err(ParseError::LowercaseTensor {
                    name: name.clone(),
                    span: self.span(),
                })
            }
            _ => return Err(self.expected("a statement")),
        };
        if !self.at_end() {
            return Err(self.expected("the end of the statement"));
        }
        Ok(Stmt {
            kind,
            span: self.since(start),
        })
    }
}
