//! Soufflé's syntax, parsed into a small tree of its own ([`Item`]) that keeps what Tensor
//! Logic's tree cannot say directly (disjunctions, `_`, declared types, I/O directives);
//! [`super::lower`] turns it into [`crate::ast::Program`]. On an error the parser records it
//! and skips to the end of the clause (the next `.` outside parentheses, or the next
//! directive), so one run reports every broken clause.
//!
//! The subset, in EBNF (`IDENT` any name, `_` the anonymous variable):
//!
//! ```text
//! program  = { item } ;
//! item     = type | decl | io | clause ;
//! type     = ".type" IDENT ( "<:" IDENT | "=" IDENT { "|" IDENT } )
//!          | ( ".symbol_type" | ".number_type" ) IDENT ;
//! decl     = ".decl" IDENT { "," IDENT } "(" [ IDENT ":" IDENT { "," IDENT ":" IDENT } ] ")"
//!            { "btree" | "brie" | "inline" | "no_inline" | "magic" | "no_magic" } ;
//! io       = ( ".input" | ".output" ) IDENT { "," IDENT } [ "(" option { "," option } ")" ] ;
//! option   = IDENT "=" ( STRING | IDENT | INT ) ;
//! clause   = atom { "," atom } [ ":-" disj ] "." ;
//! disj     = conj { ";" conj } ;
//! conj     = literal { "," literal } ;
//! literal  = "!" atom | atom | "(" disj ")" | term CMP term ;
//! CMP      = "=" | "!=" | "<" | "<=" | ">" | ">=" ;
//! atom     = IDENT "(" [ term { "," term } ] ")" ;
//! term     = sum ;  sum = product { ( "+" | "-" ) product } ;
//! product  = unary { ( "*" | "/" | "%" ) unary } ;  unary = [ "-" ] primary ;
//! primary  = IDENT | "_" | INT | STRING | "(" term ")" | aggregate ;
//! aggregate = ( "count" | ( "sum" | "min" | "max" | "mean" ) term ) ":" ( atom | "{" disj "}" ) ;
//! ```

use super::error::SouffleError;
use super::lexer::Tok;
use crate::ast::Compare;
use crate::span::Span;

/// A name with where it is written.
pub type Name = (String, Span);

/// One top-level item of a Soufflé program.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// `.type T <: symbol` (a subtype) or `.type T = A | B` (a union).
    Type {
        /// The type's name.
        name: Name,
        /// The types it is made of: one for a subtype, several for a union.
        of: Vec<Name>,
    },
    /// `.decl r(a: T, b: U)` (one declaration per name of `.decl r, s(…)`).
    Decl {
        /// The relation.
        name: Name,
        /// Attribute names and types.
        attrs: Vec<(Name, Name)>,
    },
    /// `.input r(…)` or `.output r(…)`.
    Io {
        /// Whether it is `.output`.
        output: bool,
        /// The relation.
        name: Name,
        /// `key=value` options.
        options: Vec<(Name, Name)>,
    },
    /// A fact or rule, with one or more heads.
    Clause {
        /// The head atoms.
        heads: Vec<SAtom>,
        /// The body (`None` for a fact).
        body: Option<Body>,
        /// The whole clause.
        span: Span,
    },
}

/// `r(t1, …, tn)`.
#[derive(Clone, Debug, PartialEq)]
pub struct SAtom {
    /// The relation.
    pub name: Name,
    /// The arguments.
    pub args: Vec<Term>,
    /// The whole atom.
    pub span: Span,
}

/// An argument or operand.
#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    /// A named variable.
    Var(Name),
    /// `_`.
    Anon(Span),
    /// An integer constant.
    Int(i64, Span),
    /// A string constant.
    Str(String, Span),
    /// Arithmetic: `a + b`, `-a` (as `0 - a`), …
    Arith {
        /// The operator: `+ - * / %`.
        op: char,
        /// Left operand.
        lhs: Box<Term>,
        /// Right operand.
        rhs: Box<Term>,
        /// The whole expression.
        span: Span,
    },
    /// An aggregate: `count : { … }`, `sum x : { … }`, `min x : atom`, …
    Aggregate(Box<Aggregate>),
}

/// The parts of an aggregate term.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    /// Its keyword: `count`, `sum`, `min`, `max` or `mean`.
    pub word: String,
    /// What it adds up or compares (`x` of `sum x : …`); none for `count`.
    pub target: Option<Term>,
    /// The tuples it ranges over.
    pub body: Body,
    /// The whole term.
    pub span: Span,
}

impl Term {
    /// Where the term is written.
    pub fn span(&self) -> Span {
        match self {
            Term::Var((_, s)) | Term::Anon(s) | Term::Int(_, s) | Term::Str(_, s) => *s,
            Term::Arith { span, .. } => *span,
            Term::Aggregate(a) => a.span,
        }
    }
}

/// A rule body: conjunctions and disjunctions of literals.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// `a, b`.
    And(Vec<Body>),
    /// `a ; b`.
    Or(Vec<Body>),
    /// A positive atom.
    Atom(SAtom),
    /// `!atom`.
    Not(SAtom),
    /// `a < b`, `a = b`, …
    Compare {
        /// The comparison.
        op: Compare,
        /// Left side.
        lhs: Term,
        /// Right side.
        rhs: Term,
        /// The whole comparison.
        span: Span,
    },
}

/// Representation hints on a `.decl` that do not change what a relation holds.
const QUALIFIERS: &[&str] = &["btree", "brie", "inline", "no_inline", "magic", "no_magic"];

/// Parses a token list (ending with [`Tok::Eof`]) into items and errors.
pub fn parse(tokens: &[(Tok, Span)]) -> (Vec<Item>, Vec<SouffleError>) {
    let mut p = Parser {
        tokens,
        pos: 0,
        items: Vec::new(),
    };
    let mut errors = Vec::new();
    while !matches!(p.peek(), Tok::Eof) {
        if let Err(e) = p.item() {
            errors.push(e);
            p.recover();
        }
    }
    (p.items, errors)
}

/// The parser's state: the tokens, the position, and the items parsed so far.
pub(super) struct Parser<'t> {
    tokens: &'t [(Tok, Span)],
    pos: usize,
    items: Vec<Item>,
}

/// A parse step's result.
pub(super) type PResult<T> = Result<T, SouffleError>;

impl Parser<'_> {
    pub(super) fn peek(&self) -> &Tok {
        self.tokens.get(self.pos).map_or(&Tok::Eof, |(t, _)| t)
    }

    pub(super) fn peek_at(&self, k: usize) -> &Tok {
        self.tokens.get(self.pos + k).map_or(&Tok::Eof, |(t, _)| t)
    }

    pub(super) fn span(&self) -> Span {
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .map_or(Span::default(), |(_, s)| *s)
    }

    pub(super) fn bump(&mut self) -> (Tok, Span) {
        let t = self
            .tokens
            .get(self.pos)
            .cloned()
            .unwrap_or((Tok::Eof, Span::default()));
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    pub(super) fn is(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }

    pub(super) fn eat(&mut self, p: &str) -> bool {
        let yes = self.is(p);
        if yes {
            self.pos += 1;
        }
        yes
    }

    pub(super) fn error(&self, expected: &str) -> SouffleError {
        match self.peek() {
            Tok::Unknown(c) => SouffleError::Lexical {
                what: format!("unexpected character `{c}`"),
                span: self.span(),
            },
            Tok::Unterminated => SouffleError::Lexical {
                what: "unterminated string".into(),
                span: self.span(),
            },
            Tok::UnclosedComment => SouffleError::Lexical {
                what: "unclosed comment".into(),
                span: self.span(),
            },
            t => SouffleError::Expected {
                expected: expected.into(),
                found: t.describe(),
                span: self.span(),
            },
        }
    }

    pub(super) fn expect(&mut self, p: &str) -> PResult<Span> {
        if self.is(p) {
            Ok(self.bump().1)
        } else {
            Err(self.error(&format!("`{p}`")))
        }
    }

    fn ident(&mut self, what: &str) -> PResult<Name> {
        match self.peek().clone() {
            Tok::Ident(s) => Ok((s, self.bump().1)),
            _ => Err(self.error(what)),
        }
    }

    /// Skips past the broken item: to the next `.` outside brackets, or to a directive.
    fn recover(&mut self) {
        let mut depth = 0i32;
        loop {
            match self.peek() {
                Tok::Eof => return,
                Tok::Directive(_) | Tok::Hash(_) if depth <= 0 => return,
                Tok::Punct("(" | "{" | "[") => depth += 1,
                Tok::Punct(")" | "}" | "]") => depth -= 1,
                Tok::Punct(".") if depth <= 0 => {
                    self.pos += 1;
                    return;
                }
                _ => {}
            }
            self.pos += 1;
        }
    }

    pub(super) fn unsupported(&self, construct: &str, hint: &str, span: Span) -> SouffleError {
        SouffleError::Unsupported {
            construct: construct.into(),
            hint: hint.into(),
            span,
        }
    }

    fn item(&mut self) -> PResult<()> {
        match self.peek().clone() {
            Tok::Directive(d) => {
                let span = self.bump().1;
                match d.as_str() {
                    "type" => self.type_decl(),
                    "symbol_type" | "number_type" => {
                        let name = self.ident("a type name")?;
                        let base = if d == "symbol_type" {
                            "symbol"
                        } else {
                            "number"
                        };
                        self.items.push(Item::Type {
                            name,
                            of: vec![(base.into(), span)],
                        });
                        Ok(())
                    }
                    "decl" => self.decl(),
                    "input" | "output" => self.io(d == "output"),
                    "comp" | "init" => Err(self.unsupported(
                        &format!("components (`.{d}`)"),
                        "write the component's relations and rules out at the top level",
                        span,
                    )),
                    _ => Err(self.unsupported(
                        &format!("the directive `.{d}`"),
                        "`tl` reads `.type`, `.decl`, `.input` and `.output`; remove the directive",
                        span,
                    )),
                }
            }
            Tok::Hash(h) => {
                let span = self.bump().1;
                Err(self.unsupported(
                    &format!("the preprocessor directive `#{h}`"),
                    "run the C preprocessor first (`cpp -P prog.dl`), or paste the included file in",
                    span,
                ))
            }
            _ => self.clause(),
        }
    }

    fn type_decl(&mut self) -> PResult<()> {
        let name = self.ident("a type name")?;
        if self.eat("<:") {
            let base = self.ident("`symbol` or `number`")?;
            self.items.push(Item::Type {
                name,
                of: vec![base],
            });
            return Ok(());
        }
        self.expect("=")?;
        if self.is("[") || matches!(self.peek_at(1), Tok::Punct("{")) {
            let what = if self.is("[") {
                "record types"
            } else {
                "algebraic data types"
            };
            return Err(self.unsupported(
                what,
                "`tl` has `symbol` and `number` attributes and unions of their subtypes",
                self.span(),
            ));
        }
        let mut of = vec![self.ident("a type name")?];
        while self.eat("|") {
            of.push(self.ident("a type name")?);
        }
        self.items.push(Item::Type { name, of });
        Ok(())
    }

    fn decl(&mut self) -> PResult<()> {
        let mut names = vec![self.ident("a relation name")?];
        while self.eat(",") {
            names.push(self.ident("a relation name")?);
        }
        self.expect("(")?;
        let mut attrs = Vec::new();
        if !self.is(")") {
            loop {
                let a = self.ident("an attribute name")?;
                self.expect(":")?;
                let t = self.ident("a type")?;
                attrs.push((a, t));
                if !self.eat(",") {
                    break;
                }
            }
        }
        self.expect(")")?;
        for name in names {
            self.items.push(Item::Decl {
                name,
                attrs: attrs.clone(),
            });
        }
        // A qualifier is a word not followed by `(` (which would start the next clause).
        while let (Tok::Ident(q), false) = (
            self.peek().clone(),
            matches!(self.peek_at(1), Tok::Punct("(")),
        ) {
            let span = self.bump().1;
            if !QUALIFIERS.contains(&q.as_str()) {
                return Err(self.unsupported(
                    &format!("the relation qualifier `{q}`"),
                    "remove it (`tl` accepts `btree`, `brie`, `inline` and `magic` hints, which change nothing)",
                    span,
                ));
            }
        }
        Ok(())
    }

    fn io(&mut self, output: bool) -> PResult<()> {
        let mut names = vec![self.ident("a relation name")?];
        while self.eat(",") {
            names.push(self.ident("a relation name")?);
        }
        let mut options = Vec::new();
        if self.eat("(") {
            while !self.is(")") {
                let key = self.ident("an option name such as `filename`")?;
                self.expect("=")?;
                let value = match self.peek().clone() {
                    Tok::Str(s) | Tok::Ident(s) => (s, self.bump().1),
                    Tok::Int(n) => (n.to_string(), self.bump().1),
                    _ => return Err(self.error("the option's value, e.g. \"file.facts\"")),
                };
                options.push((key, value));
                if !self.eat(",") {
                    break;
                }
            }
            self.expect(")")?;
        }
        for name in names {
            self.items.push(Item::Io {
                output,
                name,
                options: options.clone(),
            });
        }
        Ok(())
    }

    fn clause(&mut self) -> PResult<()> {
        let start = self.span();
        let mut heads = vec![self.atom()?];
        while self.eat(",") {
            heads.push(self.atom()?);
        }
        if self.is("<=") {
            return Err(self.unsupported(
                "subsumption (`<=`)",
                "write an ordinary rule; `tl` keeps every derived tuple",
                self.span(),
            ));
        }
        let body = if self.eat(":-") {
            Some(self.disjunction(0)?)
        } else {
            None
        };
        let end = self.expect(".")?;
        if let Tok::Directive(d) = self.peek() {
            if d == "plan" {
                let span = self.bump().1;
                return Err(self.unsupported(
                    "query plans (`.plan`)",
                    "remove the `.plan`; `tl` orders joins itself",
                    span,
                ));
            }
        }
        self.items.push(Item::Clause {
            heads,
            body,
            span: start.to(end),
        });
        Ok(())
    }

    pub(super) fn atom(&mut self) -> PResult<SAtom> {
        let name = self.ident("a relation name")?;
        if let Some((Tok::Directive(_), next)) = self.tokens.get(self.pos) {
            if next.start == name.1.end {
                return Err(self.unsupported(
                    "qualified names (components)",
                    "write the component's relations out at the top level",
                    name.1.to(*next),
                ));
            }
        }
        self.expect("(")?;
        let mut args = Vec::new();
        if !self.is(")") {
            loop {
                args.push(self.term(0)?);
                if !self.eat(",") {
                    break;
                }
            }
        }
        let end = self.expect(")")?;
        Ok(SAtom {
            span: name.1.to(end),
            name,
            args,
        })
    }

    pub(super) fn disjunction(&mut self, depth: usize) -> PResult<Body> {
        let mut alts = vec![self.conjunction(depth)?];
        while self.eat(";") {
            alts.push(self.conjunction(depth)?);
        }
        Ok(if alts.len() == 1 {
            alts.remove(0)
        } else {
            Body::Or(alts)
        })
    }

    fn conjunction(&mut self, depth: usize) -> PResult<Body> {
        let mut items = vec![self.literal(depth)?];
        while self.eat(",") {
            items.push(self.literal(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Body::And(items)
        })
    }

    fn literal(&mut self, depth: usize) -> PResult<Body> {
        if depth > super::MAX_DEPTH {
            return Err(self.unsupported(
                "nesting this deep",
                "split the rule into several rules",
                self.span(),
            ));
        }
        if self.eat("!") {
            return Ok(Body::Not(self.atom()?));
        }
        if self.is("(") {
            // A parenthesised disjunction, or a comparison whose left side starts with `(`.
            let save = self.pos;
            self.bump();
            if let Ok(inner) = self.disjunction(depth + 1) {
                if self.eat(")") {
                    return Ok(inner);
                }
            }
            self.pos = save;
        }
        if let (Tok::Ident(_), Tok::Punct("(")) = (self.peek(), self.peek_at(1)) {
            if !super::terms::is_functor_word(self.peek()) {
                return Ok(Body::Atom(self.atom()?));
            }
        }
        let lhs = self.term(depth)?;
        let (op, _) = match self.peek() {
            Tok::Punct("=") => (Compare::Eq, self.bump()),
            Tok::Punct("!=") => (Compare::Ne, self.bump()),
            Tok::Punct("<") => (Compare::Lt, self.bump()),
            Tok::Punct("<=") => (Compare::Le, self.bump()),
            Tok::Punct(">") => (Compare::Gt, self.bump()),
            Tok::Punct(">=") => (Compare::Ge, self.bump()),
            _ => return Err(self.error("an atom, `!atom` or a comparison")),
        };
        let rhs = self.term(depth)?;
        Ok(Body::Compare {
            op,
            span: lhs.span().to(rhs.span()),
            lhs,
            rhs,
        })
    }
}
