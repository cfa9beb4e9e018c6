//! Datalog rules as Boolean einsums (the paper's semantics): the body's atoms are 0/1 factors
//! (`not A` is `1 - A`, a comparison is a 0/1 mask over its variables), every variable absent
//! from the head is summed, and the head is `step` of the sum.

use crate::graph::{NodeId, Op};
use crate::lower::Lowerer;
use tl_check::{Access, Index, Rule, TensorKind, Term, VarId};
use tl_core::{BinaryFn, MapExpr, UnaryFn};
use tl_syntax::ast::Compare;

fn term_index(t: &Term) -> Index {
    match *t {
        Term::Var(v) => Index::Var(v),
        Term::Const(c) | Term::Symbol(c) => Index::Const(i64::from(c)),
    }
}

/// The head's arguments as left-hand-side indices.
pub fn head_indices(rule: &Rule) -> Vec<Index> {
    rule.head_args.iter().map(term_index).collect()
}

fn un(f: UnaryFn, x: MapExpr) -> MapExpr {
    MapExpr::Unary(f, Box::new(x))
}

fn bin(f: BinaryFn, a: MapExpr, b: MapExpr) -> MapExpr {
    MapExpr::Binary(f, Box::new(a), Box::new(b))
}

impl Lowerer<'_> {
    fn term_value(&mut self, t: &Term) -> NodeId {
        match *t {
            Term::Var(v) => self
                .graph
                .push(Op::IndexValue(v), vec![v], vec![self.vars[v].extent]),
            Term::Const(c) | Term::Symbol(c) => {
                self.graph
                    .push(Op::Const(f64::from(c)), Vec::new(), Vec::new())
            }
        }
    }

    /// Lowers a rule body; `kinds` gives each tensor's kind, `delta` optionally replaces the
    /// tensor read by body atom `delta.0` with id `delta.1` (a semi-naive delta).
    pub fn rule_body(
        &mut self,
        rule: &Rule,
        kinds: &[TensorKind],
        delta: Option<(usize, usize)>,
    ) -> NodeId {
        let mut factors = Vec::new();
        for (k, atom) in rule.body.iter().enumerate() {
            let tensor = match delta {
                Some((pos, id)) if pos == k => id,
                _ => atom.tensor,
            };
            let access = Access {
                tensor,
                indices: atom.args.iter().map(term_index).collect(),
                span: rule.span,
            };
            let mut node = self.access(&access);
            if kinds
                .get(atom.tensor)
                .is_some_and(|k| *k != TensorKind::Relation)
            {
                node = self.map(un(UnaryFn::Step, MapExpr::Input(0)), vec![node]);
            }
            if atom.negated {
                node = self.map(
                    bin(BinaryFn::Sub, MapExpr::Const(1.0), MapExpr::Input(0)),
                    vec![node],
                );
            }
            factors.push(node);
        }
        for c in &rule.comparisons {
            let (a, b) = (self.term_value(&c.lhs), self.term_value(&c.rhs));
            let (x, y) = (MapExpr::Input(0), MapExpr::Input(1));
            // Indices are integers, so each comparison is exact as a step of a difference.
            let mask = match c.op {
                Compare::Lt => un(UnaryFn::Step, bin(BinaryFn::Sub, y, x)),
                Compare::Gt => un(UnaryFn::Step, bin(BinaryFn::Sub, x, y)),
                Compare::Le => un(
                    UnaryFn::Step,
                    bin(BinaryFn::Add, bin(BinaryFn::Sub, y, x), MapExpr::Const(0.5)),
                ),
                Compare::Ge => un(
                    UnaryFn::Step,
                    bin(BinaryFn::Add, bin(BinaryFn::Sub, x, y), MapExpr::Const(0.5)),
                ),
                Compare::Eq => un(
                    UnaryFn::Step,
                    bin(
                        BinaryFn::Sub,
                        MapExpr::Const(0.5),
                        un(UnaryFn::Abs, bin(BinaryFn::Sub, x, y)),
                    ),
                ),
                Compare::Ne => un(
                    UnaryFn::Step,
                    bin(
                        BinaryFn::Sub,
                        un(UnaryFn::Abs, bin(BinaryFn::Sub, x, y)),
                        MapExpr::Const(0.5),
                    ),
                ),
            };
            factors.push(self.map(mask, vec![a, b]));
        }
        let head_vars: Vec<VarId> = rule
            .head_args
            .iter()
            .filter_map(|t| if let Term::Var(v) = t { Some(*v) } else { None })
            .collect();
        let summed: Vec<VarId> = (0..rule.vars.len())
            .filter(|v| !head_vars.contains(v))
            .collect();
        let joined = self.contract_all(factors, &summed);
        self.map(un(UnaryFn::Step, MapExpr::Input(0)), vec![joined])
    }
}
