//! Terms of Soufflé's syntax: variables, `_`, constants, arithmetic, and the constructs that
//! start like a term but are outside the subset (aggregates, functors, records, ADTs).

use super::lexer::Tok;
use super::parser::{Aggregate, Body, PResult, Parser, Term};

impl Parser<'_> {
    pub(super) fn term(&mut self, depth: usize) -> PResult<Term> {
        let mut lhs = self.product(depth)?;
        while let Tok::Punct(p @ ("+" | "-")) = self.peek() {
            let op = if *p == "+" { '+' } else { '-' };
            self.bump();
            let rhs = self.product(depth)?;
            lhs = arith(op, lhs, rhs);
        }
        Ok(lhs)
    }

    pub(super) fn product(&mut self, depth: usize) -> PResult<Term> {
        let mut lhs = self.unary(depth)?;
        while let Tok::Punct(p @ ("*" | "/" | "%")) = self.peek() {
            let op = p.chars().next().unwrap_or('*');
            self.bump();
            let rhs = self.unary(depth)?;
            lhs = arith(op, lhs, rhs);
        }
        if let Tok::Punct(p @ "^") = self.peek() {
            return Err(self.unsupported(
                &format!("the operator `{p}`"),
                "`tl` has `+ - * / %` on numbers",
                self.span(),
            ));
        }
        Ok(lhs)
    }

    pub(super) fn unary(&mut self, depth: usize) -> PResult<Term> {
        if depth > super::MAX_DEPTH {
            return Err(self.unsupported("nesting this deep", "split the expression", self.span()));
        }
        if self.is("-") {
            let start = self.bump().1;
            let inner = self.unary(depth + 1)?;
            return Ok(match inner {
                Term::Int(n, s) => Term::Int(n.wrapping_neg(), start.to(s)),
                t => arith('-', Term::Int(0, start), t),
            });
        }
        self.primary(depth)
    }

    pub(super) fn primary(&mut self, depth: usize) -> PResult<Term> {
        let span = self.span();
        match self.peek().clone() {
            Tok::Underscore => Ok(Term::Anon(self.bump().1)),
            Tok::Int(n) => Ok(Term::Int(n, self.bump().1)),
            Tok::Str(s) => Ok(Term::Str(s, self.bump().1)),
            Tok::Float(f) => Err(self.unsupported(
                &format!("the float `{f}`"),
                "`tl` runs `symbol` and `number` (integer) attributes",
                span,
            )),
            Tok::Punct("(") => {
                self.bump();
                let t = self.term(depth + 1)?;
                self.expect(")")?;
                Ok(t)
            }
            Tok::Punct(p @ ("@" | "$" | "[")) => {
                let what = match p {
                    "@" => "user-defined functors (`@f(…)`)",
                    "$" => "algebraic data types (`$Branch(…)`)",
                    _ => "records (`[a, b]`)",
                };
                Err(self.unsupported(what, "`tl` runs relations of symbols and numbers", span))
            }
            Tok::Ident(w) => {
                let next = self.peek_at(1);
                if (w == "count" && matches!(next, Tok::Punct(":")))
                    || (matches!(w.as_str(), "sum" | "min" | "max" | "mean")
                        && matches!(next, Tok::Ident(_) | Tok::Underscore | Tok::Int(_)))
                {
                    return self.aggregate(w, depth);
                }
                if matches!(self.peek_at(1), Tok::Punct("(")) {
                    return Err(self.unsupported(
                        &format!("the functor `{w}(…)`"),
                        "`tl` has `+ - * / %` on numbers and no built-in functions",
                        span,
                    ));
                }
                if w == "nil" {
                    return Err(self.unsupported(
                        "records (`nil`)",
                        "`tl` runs relations of symbols and numbers",
                        span,
                    ));
                }
                Ok(Term::Var((w, self.bump().1)))
            }
            _ => Err(self.error("a variable, `_`, a number or a string")),
        }
    }

    /// An aggregate, `count : { … }`, `sum x : { … }` or `min x : atom`.
    pub(super) fn aggregate(&mut self, word: String, depth: usize) -> PResult<Term> {
        let start = self.bump().1;
        let target = if word != "count" {
            Some(self.term(depth + 1)?)
        } else {
            None
        };
        self.expect(":")?;
        let (body, end) = if self.eat("{") {
            let body = self.disjunction(depth + 1)?;
            (body, self.expect("}")?)
        } else {
            let atom = self.atom()?;
            let end = atom.span;
            (Body::Atom(atom), end)
        };
        Ok(Term::Aggregate(Box::new(Aggregate {
            word,
            target,
            body,
            span: start.to(end),
        })))
    }
}

/// Words that, followed by `(`, are Soufflé's built-in functors rather than atoms.
pub(super) fn is_functor_word(t: &Tok) -> bool {
    matches!(t, Tok::Ident(w) if matches!(w.as_str(),
        "cat" | "ord" | "strlen" | "substr" | "contains" | "match" | "to_number" | "to_string"
        | "to_float" | "to_unsigned" | "as" | "range" | "autoinc" | "max" | "min" | "lor" | "land"))
}

fn arith(op: char, lhs: Term, rhs: Term) -> Term {
    Term::Arith {
        op,
        span: lhs.span().to(rhs.span()),
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    }
}
