//! Lowering of the rules that compute numbers ([`super::computed`]): arithmetic on variables
//! in heads and comparisons, and aggregates. The rule's atoms become a hidden relation
//! `computed'K` of the variables they bind, each aggregate's body a hidden relation
//! `aggregate'K`, and the rest a [`ComputedRule`] that the command line applies.

use std::collections::{HashMap, HashSet};

use super::computed::{AggregateKind, AggregateRule, ComputedRule};
use super::error::SouffleError;
use super::lower::{
    dnf, first_ungrounded, fold, ground_by_equalities, ident, var, vars_of, Base, Lit, Lowering,
};
use super::parser::{Aggregate, Body, SAtom, Term};
use super::types::{check_type, term_base};
use crate::ast::{Atom, BodyItem, IndexArg, IndexExpr, Rule, Stmt, StmtKind};
use crate::span::Span;

impl Lowering<'_> {
    /// A rule with arithmetic on variables ([`super::computed`]): its atoms and plain
    /// comparisons become the hidden relation `computed'K` of the variables they bind; the
    /// comparisons with arithmetic, those on variables only they bind, and the head are kept
    /// as a [`ComputedRule`].
    pub(super) fn computed_rule(
        &mut self,
        head: &SAtom,
        conj: &[Lit<'_>],
        grounded: &HashSet<String>,
        types: &mut HashMap<String, (Base, Span)>,
        span: Span,
    ) -> Result<Stmt, SouffleError> {
        let head_attrs: Vec<(Base, Span)> = self
            .decl(head)?
            .attrs
            .iter()
            .map(|(n, b)| (*b, n.1))
            .collect();
        for (t, &(base, at)) in head.args.iter().zip(&head_attrs) {
            if let Term::Anon(s) = t {
                return Err(SouffleError::UnderscoreInHead { span: *s });
            }
            if let Some((name, s)) = first_ungrounded(t, grounded) {
                return Err(SouffleError::Ungrounded { name, span: s });
            }
            if let Term::Aggregate(_) = t {
                self.arg(t, base, types)?;
            }
            check_type(t, base, at, types)?;
        }
        // The variables the tensor program binds: the atoms', then those plain `x = y`
        // comparisons bind from them.
        let mut bound: Vec<String> = Vec::new();
        for lit in conj {
            if let Lit::Pos(a) = lit {
                for v in vars_of(a) {
                    if !bound.contains(&v) {
                        bound.push(v);
                    }
                }
            }
        }
        let plain = |lhs: &Term, rhs: &Term, bound: &[String]| {
            let set: HashSet<String> = bound.iter().cloned().collect();
            !computes_number(lhs)
                && !computes_number(rhs)
                && first_ungrounded(lhs, &set).is_none()
                && first_ungrounded(rhs, &set).is_none()
        };
        ground_by_equalities(conj, &mut bound, true);
        let mut items = Vec::new();
        let mut checks = Vec::new();
        let mut aggregates = Vec::new();
        for lit in conj {
            match lit {
                Lit::Pos(a) => items.push(BodyItem::Atom {
                    negated: false,
                    atom: self.projected_atom(a, types)?,
                }),
                Lit::Neg(a) => {
                    let set: HashSet<String> = bound.iter().cloned().collect();
                    for t in &a.args {
                        if let Some((name, s)) = first_ungrounded(t, &set) {
                            return Err(SouffleError::Unsupported {
                                construct: format!("a negation of `{name}`, which arithmetic computes"),
                                hint: "negate a relation of the computed values instead: put the arithmetic in a rule of its own".into(),
                                span: s,
                            });
                        }
                    }
                    items.push(BodyItem::Atom {
                        negated: true,
                        atom: self.projected_atom(a, types)?,
                    });
                }
                Lit::Cmp(Body::Compare { op, lhs, rhs, span }) => {
                    for t in [lhs, rhs] {
                        if let Some((name, s)) = first_ungrounded(t, grounded) {
                            return Err(SouffleError::Ungrounded { name, span: s });
                        }
                    }
                    let base = [lhs, rhs]
                        .iter()
                        .find_map(|t| term_base(t, types))
                        .unwrap_or(Base::Number);
                    let (lhs, rhs) = (
                        self.aggregate_var(lhs, head, conj, types, &mut aggregates)?,
                        self.aggregate_var(rhs, head, conj, types, &mut aggregates)?,
                    );
                    let (lhs, rhs) = (&lhs, &rhs);
                    if plain(lhs, rhs, &bound) {
                        items.push(BodyItem::Compare {
                            op: *op,
                            lhs: self.arg(lhs, base, types)?,
                            rhs: self.arg(rhs, base, types)?,
                            span: *span,
                        });
                    } else {
                        check_type(lhs, base, *span, types)?;
                        check_type(rhs, base, *span, types)?;
                        checks.push((*op, lhs.clone(), rhs.clone()));
                    }
                }
                Lit::Cmp(_) => {}
            }
        }
        let name = format!("computed'{}", self.computed.len() + 1);
        self.computed.push(ComputedRule {
            head: head.name.0.clone(),
            args: head.args.clone(),
            body: name.clone(),
            vars: bound.clone(),
            checks,
            aggregates,
            span,
        });
        Ok(Stmt {
            kind: StmtKind::Rule(Rule {
                head: Atom {
                    name: ident(&name, head.name.1),
                    args: bound.iter().map(|v| var(v, head.span)).collect(),
                    span: head.span,
                },
                body: items,
            }),
            span,
        })
    }

    /// The term with an aggregate replaced by the hidden variable its value binds (the
    /// aggregate lowered to its relation and added to `out`); any other term as it is.
    fn aggregate_var(
        &mut self,
        t: &Term,
        head: &SAtom,
        conj: &[Lit<'_>],
        types: &mut HashMap<String, (Base, Span)>,
        out: &mut Vec<AggregateRule>,
    ) -> Result<Term, SouffleError> {
        let Term::Aggregate(agg) = t else {
            return Ok(t.clone());
        };
        let rule = self.aggregate(agg, head, conj, types)?;
        let var = Term::Var((rule.var.clone(), agg.span));
        out.push(rule);
        Ok(var)
    }

    /// An aggregate's hidden relation `aggregate'K(outer…, inner…)`, defined by one rule
    /// from its body: `outer` are the body's variables that the rest of the rule also uses
    /// (they group the tuples), `inner` the others, `_` included, so that every tuple the
    /// body ranges over is one row.
    fn aggregate(
        &mut self,
        agg: &Aggregate,
        head: &SAtom,
        conj: &[Lit<'_>],
        types: &mut HashMap<String, (Base, Span)>,
    ) -> Result<AggregateRule, SouffleError> {
        let unsupported = |construct: &str, hint: &str| SouffleError::Unsupported {
            construct: construct.into(),
            hint: hint.into(),
            span: agg.span,
        };
        let kind = match agg.word.as_str() {
            "count" => AggregateKind::Count,
            "sum" => AggregateKind::Sum,
            "min" => AggregateKind::Min,
            "max" => AggregateKind::Max,
            w => {
                return Err(unsupported(
                    &format!("the aggregate `{w}`"),
                    "`tl` has `count`, `sum`, `min` and `max` over numbers",
                ))
            }
        };
        let mut alternatives = dnf(&agg.body, agg.span)?;
        if alternatives.len() != 1 {
            return Err(unsupported(
                "a disjunction inside an aggregate",
                "aggregate over a relation that the alternatives define",
            ));
        }
        let lits = alternatives.remove(0);
        // Variables the rest of the rule uses.
        let mut outside: HashSet<String> = HashSet::new();
        head.args.iter().for_each(|t| term_vars(t, &mut outside));
        for lit in conj {
            match lit {
                Lit::Pos(a) | Lit::Neg(a) => a.args.iter().for_each(|t| term_vars(t, &mut outside)),
                Lit::Cmp(Body::Compare { lhs, rhs, .. }) => {
                    for t in [lhs, rhs] {
                        if !matches!(t, Term::Aggregate(_)) {
                            term_vars(t, &mut outside);
                        }
                    }
                }
                Lit::Cmp(_) => {}
            }
        }
        let mut items = Vec::new();
        let mut atom_vars: Vec<String> = Vec::new();
        let mut cmps = Vec::new();
        for lit in &lits {
            match lit {
                Lit::Pos(a) => {
                    self.typecheck_atom(a, types)?;
                    let atom = self.body_atom(a, types)?;
                    for arg in &atom.args {
                        if let IndexArg::Expr(IndexExpr::Var(v)) = arg {
                            if !atom_vars.contains(&v.name) {
                                atom_vars.push(v.name.clone());
                            }
                        }
                    }
                    items.push(BodyItem::Atom {
                        negated: false,
                        atom,
                    });
                }
                Lit::Neg(a) => {
                    self.typecheck_atom(a, types)?;
                    items.push(BodyItem::Atom {
                        negated: true,
                        atom: self.projected_atom(a, types)?,
                    });
                }
                Lit::Cmp(Body::Compare { op, lhs, rhs, span }) => {
                    if [lhs, rhs].iter().any(|t| matches!(t, Term::Aggregate(_))) {
                        return Err(unsupported(
                            "an aggregate inside an aggregate",
                            "compute it in a rule of its own and aggregate over that relation",
                        ));
                    }
                    cmps.push((*op, lhs, rhs, *span));
                }
                Lit::Cmp(_) => {}
            }
        }
        let grounded: HashSet<String> = atom_vars.iter().cloned().collect();
        for lit in &lits {
            if let Lit::Neg(a) = lit {
                for t in &a.args {
                    if let Some((name, s)) = first_ungrounded(t, &grounded) {
                        return Err(SouffleError::Unsupported {
                            construct: format!(
                                "`{name}` negated inside an aggregate without an atom of it there"
                            ),
                            hint: "name the variable in an atom of the aggregate's body".into(),
                            span: s,
                        });
                    }
                }
            }
        }
        // A comparison on the body's own variables is part of its relation; one with
        // arithmetic, or on a variable of the rule, filters each group's rows.
        let mut filters = Vec::new();
        let known: HashSet<String> = grounded.union(&outside).cloned().collect();
        for (op, lhs, rhs, span) in cmps {
            for t in [lhs, rhs] {
                if let Some((name, s)) = first_ungrounded(t, &known) {
                    return Err(SouffleError::Ungrounded { name, span: s });
                }
            }
            let base = [lhs, rhs]
                .iter()
                .find_map(|t| term_base(t, types))
                .unwrap_or(Base::Number);
            let own = first_ungrounded(lhs, &grounded).is_none()
                && first_ungrounded(rhs, &grounded).is_none();
            if own && !computes_number(lhs) && !computes_number(rhs) {
                items.push(BodyItem::Compare {
                    op,
                    lhs: self.arg(lhs, base, types)?,
                    rhs: self.arg(rhs, base, types)?,
                    span,
                });
            } else {
                check_type(lhs, base, span, types)?;
                check_type(rhs, base, span, types)?;
                filters.push((op, lhs.clone(), rhs.clone()));
            }
        }
        if let Some(target) = &agg.target {
            check_type(target, Base::Number, agg.span, types)?;
            if let Some((name, s)) = first_ungrounded(target, &grounded) {
                return Err(SouffleError::Ungrounded { name, span: s });
            }
        }
        let outer: Vec<String> = atom_vars
            .iter()
            .filter(|v| outside.contains(*v))
            .cloned()
            .collect();
        let inner: Vec<String> = atom_vars
            .iter()
            .filter(|v| !outside.contains(*v))
            .cloned()
            .collect();
        self.aggregates += 1;
        let name = format!("aggregate'{}", self.aggregates);
        let args = outer
            .iter()
            .chain(&inner)
            .map(|v| var(v, agg.span))
            .collect();
        self.stmts.push(Stmt {
            kind: StmtKind::Rule(Rule {
                head: Atom {
                    name: ident(&name, agg.span),
                    args,
                    span: agg.span,
                },
                body: items,
            }),
            span: agg.span,
        });
        Ok(AggregateRule {
            var: name.clone(),
            kind,
            target: agg.target.clone(),
            relation: name,
            outer,
            inner,
            filters,
            span: agg.span,
        })
    }
}

impl Lowering<'_> {
    /// Cycles through an aggregate, or through a negation in a rule that computes numbers:
    /// the settling runs would give such a program some answer, where Soufflé rejects it.
    pub(super) fn check_strata(&mut self) {
        // Who depends on whom, with whether through an aggregate or a negation.
        let mut edges: HashMap<&str, Vec<(&str, Option<&'static str>)>> = HashMap::new();
        for stmt in &self.stmts {
            if let StmtKind::Rule(r) = &stmt.kind {
                for item in &r.body {
                    if let BodyItem::Atom { negated, atom } = item {
                        let through = negated.then_some("a negation");
                        edges
                            .entry(&r.head.name.name)
                            .or_default()
                            .push((&atom.name.name, through));
                    }
                }
            }
        }
        let mut found = Vec::new();
        for c in &self.computed {
            edges.entry(&c.head).or_default().push((&c.body, None));
            for a in &c.aggregates {
                edges
                    .entry(&c.head)
                    .or_default()
                    .push((&a.relation, Some("an aggregate")));
            }
        }
        for c in &self.computed {
            // Whether the head is reached again, by a path with a negation or an aggregate.
            let mut stack: Vec<(&str, Option<&'static str>, Vec<&str>)> =
                vec![(c.head.as_str(), None, vec![c.head.as_str()])];
            let mut seen: HashSet<(&str, bool)> = HashSet::new();
            while let Some((node, through, path)) = stack.pop() {
                for &(next, how) in edges.get(node).map_or(&[][..], Vec::as_slice) {
                    let through = through.or(how);
                    let mut path = path.clone();
                    path.push(next);
                    if next == c.head && through.is_some() {
                        found.push(SouffleError::Unstratified {
                            through: through.unwrap_or("a negation"),
                            cycle: visible(&path),
                            span: c.span,
                        });
                        stack.clear();
                        break;
                    }
                    if seen.insert((next, through.is_some())) {
                        stack.push((next, through, path));
                    }
                }
            }
        }
        self.errors.extend(found);
    }
}

/// A cycle of relations as the program names them (hidden ones left out).
fn visible(path: &[&str]) -> String {
    let names: Vec<&str> = path.iter().copied().filter(|n| !n.contains('\'')).collect();
    names.join(" -> ")
}

/// The named variables of a term.
fn term_vars(t: &Term, out: &mut HashSet<String>) {
    match t {
        Term::Var((n, _)) => {
            out.insert(n.clone());
        }
        Term::Arith { lhs, rhs, .. } => {
            term_vars(lhs, out);
            term_vars(rhs, out);
        }
        _ => {}
    }
}

/// Whether a term is arithmetic on a variable (a number computed while the program runs).
pub(super) fn computes_number(t: &Term) -> bool {
    match t {
        Term::Arith { lhs, rhs, .. } => fold(t).is_none() && (has_var(lhs) || has_var(rhs)),
        _ => false,
    }
}

fn has_var(t: &Term) -> bool {
    match t {
        Term::Var(_) => true,
        Term::Arith { lhs, rhs, .. } => has_var(lhs) || has_var(rhs),
        _ => false,
    }
}
