//! Rules as this crate sees them: numbered slots, numbered variables and constant values.
//!
//! The runtime crate resolves relation names to slots and symbols to element indices; a rule
//! `T(x, z) <- T(x, y), E(y, z), x != z` arrives here as a head slot, argument [`Term`]s, body
//! [`Literal`]s and [`Comparison`]s. [`Rule::validate`] checks slot numbers, arities and variable
//! ids once, before evaluation, so the join code never meets an out-of-range reference.

use crate::error::RelationError;
use crate::relation::{Relation, Value};

/// An argument position: a variable (by id) or a constant element index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Term {
    /// Variable id, an index into [`Rule::var_extents`].
    Var(usize),
    /// A fixed element index.
    Const(Value),
}

pub use tl_core::Compare;

/// A body condition such as `x != y` or `n < 10`; it filters bindings, it never produces them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    /// The operator.
    pub op: Compare,
    /// Left operand.
    pub lhs: Term,
    /// Right operand.
    pub rhs: Term,
}

/// A body atom `R(args)` or `not R(args)`, referring to the relation held in `slot`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Literal {
    /// Slot of the relation.
    pub slot: usize,
    /// One term per column.
    pub args: Vec<Term>,
    /// Whether the atom is negated (then its slot must belong to a lower, complete stratum).
    pub negated: bool,
}

/// One Datalog rule (equivalently, one Boolean einsum): `head(head_args) <- body, comparisons`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Slot of the head relation.
    pub head: usize,
    /// One term per head column.
    pub head_args: Vec<Term>,
    /// Positive and negated atoms.
    pub body: Vec<Literal>,
    /// Conditions on variables and constants.
    pub comparisons: Vec<Comparison>,
    /// Extent of each variable's domain, indexed by variable id; unbound variables range over it.
    pub var_extents: Vec<u32>,
}

impl Term {
    /// The variable id, if this term is a variable.
    pub fn var(self) -> Option<usize> {
        match self {
            Term::Var(v) => Some(v),
            Term::Const(_) => None,
        }
    }
}

impl Comparison {
    /// Variables mentioned by either side.
    pub(crate) fn vars(&self) -> impl Iterator<Item = usize> {
        [self.lhs.var(), self.rhs.var()].into_iter().flatten()
    }
}

impl Rule {
    /// Checks slots, arities, variable ids and stratification against `slots`.
    ///
    /// `in_stratum(s)` tells whether slot `s` is defined by a rule of the stratum being evaluated.
    pub fn validate(
        &self,
        slots: &[Relation],
        in_stratum: impl Fn(usize) -> bool,
    ) -> Result<(), RelationError> {
        self.check_atom(slots, self.head, &self.head_args)?;
        for lit in &self.body {
            self.check_atom(slots, lit.slot, &lit.args)?;
            if lit.negated && in_stratum(lit.slot) {
                return Err(RelationError::NegationInStratum {
                    head: self.head,
                    slot: lit.slot,
                });
            }
        }
        for cmp in &self.comparisons {
            self.check_terms(&[cmp.lhs, cmp.rhs])?;
        }
        Ok(())
    }

    fn check_atom(
        &self,
        slots: &[Relation],
        slot: usize,
        args: &[Term],
    ) -> Result<(), RelationError> {
        let rel = slots.get(slot).ok_or(RelationError::UnknownSlot {
            slot,
            slots: slots.len(),
        })?;
        if rel.arity() != args.len() {
            return Err(RelationError::ArityMismatch {
                slot,
                expected: rel.arity(),
                found: args.len(),
            });
        }
        self.check_terms(args)
    }

    fn check_terms(&self, terms: &[Term]) -> Result<(), RelationError> {
        let vars = self.var_extents.len();
        match terms.iter().filter_map(|t| t.var()).find(|&v| v >= vars) {
            Some(var) => Err(RelationError::UnknownVariable {
                head: self.head,
                var,
                vars,
            }),
            None => Ok(()),
        }
    }

    /// Extent of variable `v` (0 when unknown, which makes enumeration produce nothing).
    pub(crate) fn extent(&self, v: usize) -> u32 {
        self.var_extents.get(v).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_reports_arity_and_unknown_ids() {
        let slots = vec![Relation::empty(2), Relation::empty(1)];
        let rule = |args: Vec<Term>, slot: usize| Rule {
            head: 1,
            head_args: vec![Term::Var(0)],
            body: vec![Literal {
                slot,
                args,
                negated: false,
            }],
            comparisons: vec![],
            var_extents: vec![4, 4],
        };
        let ok = rule(vec![Term::Var(0), Term::Var(1)], 0);
        assert_eq!(ok.validate(&slots, |_| false), Ok(()));
        let bad = rule(vec![Term::Var(0)], 0);
        assert_eq!(
            bad.validate(&slots, |_| false),
            Err(RelationError::ArityMismatch {
                slot: 0,
                expected: 2,
                found: 1
            })
        );
        let unknown = rule(vec![Term::Var(0), Term::Var(7)], 0);
        assert!(matches!(
            unknown.validate(&slots, |_| false),
            Err(RelationError::UnknownVariable { var: 7, .. })
        ));
        let missing = rule(vec![Term::Var(0)], 9);
        assert!(matches!(
            missing.validate(&slots, |_| false),
            Err(RelationError::UnknownSlot { slot: 9, .. })
        ));
    }
}
