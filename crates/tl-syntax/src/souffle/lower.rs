//! Soufflé items to Tensor Logic statements: declarations resolved to symbol or number
//! attributes, disjunctions expanded into one rule per alternative, `_` renamed, Soufflé's
//! safety rules checked (every variable grounded by a positive atom), and `.input`/`.output`
//! turned into data statements and writes (or queries, for `-D -`).
//!
//! Two kinds of hidden relation keep the meaning exact; their names end with a prime, which a
//! Soufflé program cannot write, so they never clash with the program's own:
//! - `!r(x, _)` means "no tuple of `r` starts with `x`", but a Tensor Logic variable found only
//!   in a negated atom ranges over its domain (`not R(x, y)` for some `y`). So the `_`
//!   positions are projected away first: `r'x_(x) <- r(x, y)`, and the rule reads
//!   `!r'x_(x)`. A positive atom with `_` reads the same projection, so that a join never
//!   enumerates the positions nobody reads (`r(x, y) :- e(x, _), e(_, y).` joins the distinct
//!   `x` with the distinct `y`, not every pair of tuples).
//! - Soufflé has one symbol table and one number type for the whole program, so a relation
//!   that holds no tuple still has attributes with values to range over. One rule per attribute
//!   of every relation, `symbol'(x) <- r(x, _)`, puts every attribute of a type into one
//!   domain, as the checker unifies the axes a variable joins.

use std::collections::{HashMap, HashSet};

use super::arith::computes_number;
use super::computed::{ComputedRule, MAX_NUMBER, MIN_NUMBER};
use super::error::SouffleError;
use super::parser::{Body, Item, SAtom, Term};
use super::types::{check_type, term_base};
use super::Options;
use crate::ast::{Atom, BodyItem, Ident, IndexArg, IndexExpr, Program, Rule, Stmt, StmtKind};
use crate::span::Span;

/// Most rules one clause may expand into (disjunctions multiply).
const MAX_ALTERNATIVES: usize = 4096;

/// The two kinds of value an attribute holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Base {
    Symbol,
    Number,
}

impl Base {
    pub(super) fn name(self) -> &'static str {
        match self {
            Base::Symbol => "symbol",
            Base::Number => "number",
        }
    }
}

/// A declared relation.
pub(super) struct Decl {
    pub(super) attrs: Vec<(super::parser::Name, Base)>,
    pub(super) span: Span,
}

/// One literal of a conjunction.
#[derive(Clone)]
pub(super) enum Lit<'a> {
    /// A positive atom.
    Pos(&'a SAtom),
    /// A negated atom.
    Neg(&'a SAtom),
    /// A comparison.
    Cmp(&'a Body),
}

/// Lowers parsed items into a program and the rules that compute numbers, with every error
/// found.
pub fn lower(items: &[Item], options: &Options) -> (Program, Vec<ComputedRule>, Vec<SouffleError>) {
    let mut l = Lowering {
        options,
        types: HashMap::new(),
        decls: HashMap::new(),
        order: Vec::new(),
        stmts: Vec::new(),
        errors: Vec::new(),
        fresh: 0,
        helpers: HashSet::new(),
        defined: HashSet::new(),
        computed: Vec::new(),
        aggregates: 0,
    };
    l.collect_types(items);
    l.collect_decls(items);
    for item in items {
        if let Item::Clause { heads, body, span } = item {
            if let Err(e) = l.clause(heads, body.as_ref(), *span) {
                l.errors.push(e);
            }
        }
    }
    l.check_strata();
    let mut inputs = HashSet::new();
    for item in items {
        if let Item::Io {
            output,
            name,
            options,
        } = item
        {
            let result = if *output {
                l.output(name, options)
            } else if !inputs.insert(name.0.clone()) {
                Err(SouffleError::BadOption {
                    what: format!("`.input {}` given twice", name.0),
                    hint: "keep one `.input` per relation".into(),
                    span: name.1,
                })
            } else {
                l.input(name, options)
            };
            if let Err(e) = result {
                l.errors.push(e);
            }
        }
    }
    l.universes();
    (Program { stmts: l.stmts }, l.computed, l.errors)
}

/// The state of one lowering: what is declared, and the statements made so far.
pub(super) struct Lowering<'o> {
    pub(super) options: &'o Options,
    pub(super) types: HashMap<String, Result<Base, Span>>,
    pub(super) decls: HashMap<String, Decl>,
    pub(super) order: Vec<String>,
    pub(super) stmts: Vec<Stmt>,
    pub(super) errors: Vec<SouffleError>,
    pub(super) fresh: usize,
    pub(super) helpers: HashSet<String>,
    /// Relations with facts or rules in the program.
    pub(super) defined: HashSet<String>,
    /// Rules that compute numbers ([`super::computed`]).
    pub(super) computed: Vec<ComputedRule>,
    /// Aggregates lowered so far (numbering their hidden relations).
    pub(super) aggregates: usize,
}

pub(super) fn ident(name: &str, span: Span) -> Ident {
    Ident {
        name: name.to_string(),
        span,
    }
}

pub(super) fn var(name: &str, span: Span) -> IndexArg {
    IndexArg::Expr(IndexExpr::Var(ident(name, span)))
}

impl Lowering<'_> {
    fn collect_decls(&mut self, items: &[Item]) {
        for item in items {
            let Item::Decl { name, attrs } = item else {
                continue;
            };
            if let Some(first) = self.decls.get(&name.0) {
                self.errors.push(SouffleError::Duplicate {
                    kind: "relation",
                    name: name.0.clone(),
                    span: name.1,
                    first: first.span,
                });
                continue;
            }
            let mut resolved = Vec::new();
            let mut seen: HashMap<&str, Span> = HashMap::new();
            for (attr, ty) in attrs {
                if let Some(&first) = seen.get(attr.0.as_str()) {
                    self.errors.push(SouffleError::Duplicate {
                        kind: "attribute",
                        name: attr.0.clone(),
                        span: attr.1,
                        first,
                    });
                }
                seen.insert(&attr.0, attr.1);
                // An attribute whose type is in error still counts, as a symbol, so that
                // the relation's arity is known and one mistake gives one message.
                let base = self.base_of(ty).unwrap_or(Base::Symbol);
                resolved.push((attr.clone(), base));
            }
            self.order.push(name.0.clone());
            self.decls.insert(
                name.0.clone(),
                Decl {
                    attrs: resolved,
                    span: name.1,
                },
            );
        }
    }

    /// The declaration of a relation named in the program (`TL0033` without one).
    pub(super) fn declared(&self, name: &super::parser::Name) -> Result<&Decl, SouffleError> {
        self.decls
            .get(&name.0)
            .ok_or_else(|| SouffleError::Undeclared {
                kind: "relation",
                name: name.0.clone(),
                span: name.1,
            })
    }

    pub(super) fn decl(&self, atom: &SAtom) -> Result<&Decl, SouffleError> {
        let decl = self.declared(&atom.name)?;
        if decl.attrs.len() != atom.args.len() {
            return Err(SouffleError::Arity {
                relation: atom.name.0.clone(),
                expected: decl.attrs.len(),
                found: atom.args.len(),
                span: atom.span,
                decl: decl.span,
            });
        }
        Ok(decl)
    }

    pub(super) fn fresh_var(&mut self) -> String {
        self.fresh += 1;
        format!("_{}'", self.fresh)
    }

    fn clause(
        &mut self,
        heads: &[SAtom],
        body: Option<&Body>,
        span: Span,
    ) -> Result<(), SouffleError> {
        let alternatives = match body {
            None => vec![Vec::new()],
            Some(b) => dnf(b, span)?,
        };
        for head in heads {
            self.decl(head)?;
            self.defined.insert(head.name.0.clone());
            for conj in &alternatives {
                let stmt = self.rule(head, conj, body.is_some(), span)?;
                self.stmts.push(stmt);
            }
        }
        Ok(())
    }

    fn rule(
        &mut self,
        head: &SAtom,
        conj: &[Lit<'_>],
        has_body: bool,
        span: Span,
    ) -> Result<Stmt, SouffleError> {
        let mut types: HashMap<String, (Base, Span)> = HashMap::new();
        let mut grounded: HashSet<String> = HashSet::new();
        for lit in conj {
            match lit {
                Lit::Pos(a) => {
                    self.typecheck_atom(a, &mut types)?;
                    grounded.extend(vars_of(a));
                }
                Lit::Neg(a) => self.typecheck_atom(a, &mut types)?,
                Lit::Cmp(_) => {}
            }
        }
        let mut order: Vec<String> = grounded.iter().cloned().collect();
        ground_by_equalities(conj, &mut order, false);
        grounded.extend(order);
        let computes = head.args.iter().any(computes_number)
            || conj.iter().any(|lit| match lit {
                Lit::Cmp(Body::Compare { lhs, rhs, .. }) => [lhs, rhs]
                    .iter()
                    .any(|t| computes_number(t) || matches!(t, Term::Aggregate(_))),
                _ => false,
            });
        if computes && has_body {
            return self.computed_rule(head, conj, &grounded, &mut types, span);
        }
        let ungrounded = |t: &Term| first_ungrounded(t, &grounded);
        let head_attrs: Vec<(Base, Span)> = self
            .decl(head)?
            .attrs
            .iter()
            .map(|(n, b)| (*b, n.1))
            .collect();
        let mut head_args = Vec::new();
        for (t, &(base, at)) in head.args.iter().zip(&head_attrs) {
            if let Term::Anon(s) = t {
                return Err(SouffleError::UnderscoreInHead { span: *s });
            }
            if let Some((name, s)) = ungrounded(t) {
                return Err(SouffleError::Ungrounded { name, span: s });
            }
            check_type(t, base, at, &mut types)?;
            head_args.push(self.arg(t, base, &mut types)?);
        }
        let mut items = Vec::new();
        for lit in conj {
            match lit {
                Lit::Pos(a) => items.push(BodyItem::Atom {
                    negated: false,
                    atom: self.projected_atom(a, &mut types)?,
                }),
                Lit::Neg(a) => {
                    for t in &a.args {
                        if let Some((name, s)) = ungrounded(t) {
                            return Err(SouffleError::Ungrounded { name, span: s });
                        }
                    }
                    items.push(BodyItem::Atom {
                        negated: true,
                        atom: self.projected_atom(a, &mut types)?,
                    });
                }
                Lit::Cmp(Body::Compare { op, lhs, rhs, span }) => {
                    for t in [lhs, rhs] {
                        if let Some((name, s)) = ungrounded(t) {
                            return Err(SouffleError::Ungrounded { name, span: s });
                        }
                    }
                    let base = [lhs, rhs]
                        .iter()
                        .find_map(|t| term_base(t, &types))
                        .unwrap_or(Base::Number);
                    items.push(BodyItem::Compare {
                        op: *op,
                        lhs: self.arg(lhs, base, &mut types)?,
                        rhs: self.arg(rhs, base, &mut types)?,
                        span: *span,
                    });
                }
                Lit::Cmp(_) => {}
            }
        }
        let atom = Atom {
            name: ident(&head.name.0, head.name.1),
            args: head_args,
            span: head.span,
        };
        let kind = if has_body {
            StmtKind::Rule(Rule {
                head: atom,
                body: items,
            })
        } else {
            StmtKind::Fact(atom)
        };
        Ok(Stmt { kind, span })
    }

    /// Records the type of each variable of an atom, checking constants and earlier uses.
    pub(super) fn typecheck_atom(
        &mut self,
        a: &SAtom,
        types: &mut HashMap<String, (Base, Span)>,
    ) -> Result<(), SouffleError> {
        let bases: Vec<(Base, Span)> = self.decl(a)?.attrs.iter().map(|(n, b)| (*b, n.1)).collect();
        for (t, (base, at)) in a.args.iter().zip(bases) {
            check_type(t, base, at, types)?;
        }
        Ok(())
    }

    pub(super) fn body_atom(
        &mut self,
        a: &SAtom,
        types: &mut HashMap<String, (Base, Span)>,
    ) -> Result<Atom, SouffleError> {
        let bases: Vec<Base> = self.decl(a)?.attrs.iter().map(|x| x.1).collect();
        let mut args = Vec::new();
        for (t, base) in a.args.iter().zip(bases) {
            args.push(match t {
                Term::Anon(s) => {
                    let v = self.fresh_var();
                    var(&v, *s)
                }
                _ => self.arg(t, base, types)?,
            });
        }
        Ok(Atom {
            name: ident(&a.name.0, a.name.1),
            args,
            span: a.span,
        })
    }

    /// `r(x, _)` or `!r(x, _)`: reads the projection of `r` onto its named positions (see the
    /// module doc); an atom without `_` as it is.
    pub(super) fn projected_atom(
        &mut self,
        a: &SAtom,
        types: &mut HashMap<String, (Base, Span)>,
    ) -> Result<Atom, SouffleError> {
        if !a.args.iter().any(|t| matches!(t, Term::Anon(_))) {
            return self.body_atom(a, types);
        }
        let pattern: String = a
            .args
            .iter()
            .map(|t| if matches!(t, Term::Anon(_)) { '_' } else { 'x' })
            .collect();
        let helper = format!("{}'{pattern}", a.name.0);
        let vars: Vec<String> = (0..a.args.len()).map(|_| self.fresh_var()).collect();
        if self.helpers.insert(helper.clone()) {
            let head_args = a
                .args
                .iter()
                .zip(&vars)
                .filter(|(t, _)| !matches!(t, Term::Anon(_)))
                .map(|(_, v)| var(v, a.span))
                .collect();
            let body_args = vars.iter().map(|v| var(v, a.span)).collect();
            self.stmts.push(Stmt {
                kind: StmtKind::Rule(Rule {
                    head: Atom {
                        name: ident(&helper, a.name.1),
                        args: head_args,
                        span: a.span,
                    },
                    body: vec![BodyItem::Atom {
                        negated: false,
                        atom: Atom {
                            name: ident(&a.name.0, a.name.1),
                            args: body_args,
                            span: a.span,
                        },
                    }],
                }),
                span: a.span,
            });
        }
        let full = self.body_atom(a, types)?;
        let args = full
            .args
            .into_iter()
            .zip(&a.args)
            .filter(|(_, t)| !matches!(t, Term::Anon(_)))
            .map(|(x, _)| x)
            .collect();
        Ok(Atom {
            name: ident(&helper, a.name.1),
            args,
            span: a.span,
        })
    }

    /// One argument: a variable, or a constant of the attribute's type.
    pub(super) fn arg(
        &mut self,
        t: &Term,
        base: Base,
        types: &mut HashMap<String, (Base, Span)>,
    ) -> Result<IndexArg, SouffleError> {
        check_type(t, base, t.span(), types)?;
        match t {
            Term::Var((name, s)) => Ok(var(name, *s)),
            Term::Str(v, s) => Ok(IndexArg::Symbol {
                name: v.clone(),
                span: *s,
            }),
            Term::Anon(s) => Ok(var(&self.fresh_var(), *s)),
            Term::Aggregate(agg) => Err(SouffleError::Unsupported {
                construct: format!("the aggregate `{}` as an argument", agg.word),
                hint: "bind its value to a variable in the body: `n = count : { … }`".into(),
                span: agg.span,
            }),
            Term::Int(..) | Term::Arith { .. } => match fold(t) {
                Some(n) if (MIN_NUMBER..=MAX_NUMBER).contains(&n) => {
                    Ok(IndexArg::Expr(IndexExpr::Int(n, t.span())))
                }
                Some(n) => Err(SouffleError::Unsupported {
                    construct: format!("the number {n}"),
                    hint: format!("`tl` stores numbers from {MIN_NUMBER} to {MAX_NUMBER}"),
                    span: t.span(),
                }),
                None => Err(SouffleError::Unsupported {
                    construct: "arithmetic on variables inside a body atom".into(),
                    hint: "name the value with a variable and compare: `b(y), y = x + 1`".into(),
                    span: t.span(),
                }),
            },
        }
    }
}

/// Adds to `bound` the variables that `x = term` comparisons ground from it, repeatedly, in
/// order; with `plain_only`, only through comparisons without arithmetic on variables or
/// aggregates (those the tensor program itself can do).
pub(super) fn ground_by_equalities(conj: &[Lit<'_>], bound: &mut Vec<String>, plain_only: bool) {
    let skip = |t: &Term| {
        plain_only && (super::arith::computes_number(t) || matches!(t, Term::Aggregate(_)))
    };
    loop {
        let before = bound.len();
        for lit in conj {
            let Lit::Cmp(Body::Compare {
                op: crate::ast::Compare::Eq,
                lhs,
                rhs,
                ..
            }) = lit
            else {
                continue;
            };
            if skip(lhs) || skip(rhs) {
                continue;
            }
            for (a, b) in [(lhs, rhs), (rhs, lhs)] {
                let set: HashSet<String> = bound.iter().cloned().collect();
                if let Term::Var((name, _)) = a {
                    if !set.contains(name) && term_grounded(b, &set) {
                        bound.push(name.clone());
                    }
                }
            }
        }
        if bound.len() == before {
            break;
        }
    }
}

/// The body as a disjunction of conjunctions.
pub(super) fn dnf(b: &Body, span: Span) -> Result<Vec<Vec<Lit<'_>>>, SouffleError> {
    Ok(match b {
        Body::Atom(a) => vec![vec![Lit::Pos(a)]],
        Body::Not(a) => vec![vec![Lit::Neg(a)]],
        Body::Compare { .. } => vec![vec![Lit::Cmp(b)]],
        Body::Or(alts) => {
            let mut out = Vec::new();
            for a in alts {
                out.extend(dnf(a, span)?);
                if out.len() > MAX_ALTERNATIVES {
                    return Err(too_many(span));
                }
            }
            out
        }
        Body::And(items) => {
            let mut out: Vec<Vec<Lit<'_>>> = vec![Vec::new()];
            for item in items {
                let alts = dnf(item, span)?;
                if out.len().saturating_mul(alts.len()) > MAX_ALTERNATIVES {
                    return Err(too_many(span));
                }
                out = out
                    .iter()
                    .flat_map(|prefix| {
                        alts.iter().map(move |alt| {
                            let mut c = prefix.clone();
                            c.extend(alt.iter().cloned());
                            c
                        })
                    })
                    .collect();
            }
            out
        }
    })
}

fn too_many(span: Span) -> SouffleError {
    SouffleError::Unsupported {
        construct: format!("a body with more than {MAX_ALTERNATIVES} alternatives"),
        hint: "split the disjunctions into rules for intermediate relations".into(),
        span,
    }
}

pub(super) fn vars_of(a: &SAtom) -> impl Iterator<Item = String> + '_ {
    a.args.iter().filter_map(|t| match t {
        Term::Var((n, _)) => Some(n.clone()),
        _ => None,
    })
}

pub(super) fn term_grounded(t: &Term, grounded: &HashSet<String>) -> bool {
    first_ungrounded(t, grounded).is_none() && !matches!(t, Term::Anon(_))
}

pub(super) fn first_ungrounded(t: &Term, grounded: &HashSet<String>) -> Option<(String, Span)> {
    match t {
        Term::Var((n, s)) if !grounded.contains(n) => Some((n.clone(), *s)),
        Term::Arith { lhs, rhs, .. } => {
            first_ungrounded(lhs, grounded).or_else(|| first_ungrounded(rhs, grounded))
        }
        _ => None,
    }
}

/// The value of arithmetic on constants (`None` when a variable is involved, on division by
/// zero or on overflow).
pub(super) fn fold(t: &Term) -> Option<i64> {
    match t {
        Term::Int(n, _) => Some(*n),
        Term::Arith { op, lhs, rhs, .. } => super::computed::arith(*op, fold(lhs)?, fold(rhs)?),
        _ => None,
    }
}
