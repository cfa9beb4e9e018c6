//! The semi-naive fixpoint loop for one stratum.

use crate::error::RelationError;
use crate::index::{Index, IndexCache, RelRef, SourceId};
use crate::join::{BodySource, Plan};
use crate::linear::delta_step;
use crate::relation::Relation;
use crate::rule::{Rule, Term};
use std::sync::Arc;

/// Resource limits for one stratum evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest number of tuples any relation (or one rule's output) may hold; exceeding it is an
    /// error rather than an out-of-memory abort.
    pub max_tuples: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tuples: 1 << 31,
        }
    }
}

/// What the fixpoint loop did, for diagnostics and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FixpointStats {
    /// Number of rounds run (the first round evaluates every rule on the initial contents).
    pub iterations: usize,
    /// Number of tuples added to the head relations beyond their initial facts.
    pub derived: usize,
}

/// The semi-naive state of one recursive relation (a head of the stratum).
///
/// A tuple lives through three stages: produced this round (`next`), new in the last round
/// (`delta`), and settled (`old`). Between rounds these invariants hold:
/// - `full` holds every tuple derived so far, initial facts included;
/// - `delta ⊆ full` holds the tuples first derived in the last round;
/// - `old = full \ delta` is `full` as it was before the last round's delta was added (kept
///   only when some rule has two or more recursive literals, as only those variants read it);
/// - `next` collects this round's rule outputs, which may repeat known tuples.
///
/// [`Recursive::advance`] turns `next \ full` into the new `delta`, the current `full` into
/// `old`, and `full ∪ delta` into the new `full`. A rule whose body has recursive literals at
/// positions `p_1 < … < p_k` runs k times per round; run `i` reads `delta` at `p_i`, `old` at the
/// positions before it and `full` at those after, so every new combination of tuples (one with
/// at least one delta tuple) is joined exactly once and `old × old` never is.
struct Recursive {
    full: Arc<Relation>,
    old: Arc<Relation>,
    delta: Arc<Relation>,
    /// Outputs of this round, with whether each is already known to be disjoint from `full`.
    next: Vec<(Relation, bool)>,
    keep_old: bool,
}

impl Recursive {
    /// Folds this round's outputs in; returns the number of new tuples.
    fn advance(&mut self, slot: usize, limit: usize) -> Result<usize, RelationError> {
        let outputs = std::mem::take(&mut self.next);
        let disjoint = outputs.iter().all(|(_, d)| *d);
        let mut produced = outputs.into_iter().map(|(r, _)| r);
        let first = produced
            .next()
            .unwrap_or_else(|| Relation::empty(self.full.arity()));
        let all = produced.fold(first, |acc, r| acc.union(&r));
        let delta = if disjoint {
            all
        } else {
            all.difference(&self.full)
        };
        let tuples = self.full.len() + delta.len();
        if tuples > limit {
            return Err(RelationError::TooManyTuples {
                slot,
                tuples,
                limit,
            });
        }
        let added = delta.len();
        let full = if delta.is_empty() {
            self.full.clone()
        } else {
            Arc::new(self.full.union_disjoint(&delta))
        };
        let previous = std::mem::replace(&mut self.full, full);
        self.old = if self.keep_old {
            previous
        } else {
            Arc::new(Relation::empty(0))
        };
        self.delta = Arc::new(delta);
        Ok(added)
    }
}

/// Evaluates one stratum: `slots[h]` for every head h of `rules` starts with its facts (maybe
/// empty) and ends holding the least fixpoint; other slots are read-only inputs.
///
/// Negated literals must refer to slots outside this stratum (complete lower strata). On error
/// the head slots hold what had been derived so far.
pub fn evaluate_stratum(
    rules: &[Rule],
    slots: &mut [Relation],
    limits: &Limits,
) -> Result<FixpointStats, RelationError> {
    let mut heads: Vec<usize> = rules.iter().map(|r| r.head).collect();
    heads.sort_unstable();
    heads.dedup();
    for rule in rules {
        rule.validate(slots, |s| heads.binary_search(&s).is_ok())?;
    }
    let keep_old = rules
        .iter()
        .any(|r| recursive_positions(r, &heads).len() >= 2);
    let mut state: Vec<(usize, Recursive)> = Vec::new();
    for &h in &heads {
        let Some(slot) = slots.get_mut(h) else {
            continue;
        };
        let facts = std::mem::take(slot);
        let arity = facts.arity();
        let rec = Recursive {
            full: Arc::new(facts),
            old: Arc::new(Relation::empty(arity)),
            delta: Arc::new(Relation::empty(arity)),
            next: Vec::new(),
            keep_old,
        };
        state.push((h, rec));
    }
    let result = run_rounds(rules, slots, &heads, &mut state, limits);
    for (h, rec) in state {
        if let Some(slot) = slots.get_mut(h) {
            *slot = Arc::try_unwrap(rec.full).unwrap_or_else(|shared| (*shared).clone());
        }
    }
    result
}

/// Positions of the positive body literals whose relation is defined in this stratum.
fn recursive_positions(rule: &Rule, heads: &[usize]) -> Vec<usize> {
    (0..rule.body.len())
        .filter(|&i| {
            rule.body
                .get(i)
                .is_some_and(|l| !l.negated && heads.binary_search(&l.slot).is_ok())
        })
        .collect()
}

/// The version of a recursive relation read at one body position.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    Old,
    Delta,
    Full,
}

fn run_rounds(
    rules: &[Rule],
    statics: &[Relation],
    heads: &[usize],
    state: &mut [(usize, Recursive)],
    limits: &Limits,
) -> Result<FixpointStats, RelationError> {
    let mut cache = IndexCache::default();
    let mut stats = FixpointStats::default();
    let find =
        |state: &[(usize, Recursive)], slot: usize| state.iter().position(|(h, _)| *h == slot);
    loop {
        let first_round = stats.iterations == 0;
        for rule in rules {
            let rec_pos = recursive_positions(rule, heads);
            let variants: Vec<Option<usize>> = if first_round {
                vec![None]
            } else {
                rec_pos.iter().map(|&p| Some(p)).collect()
            };
            for delta_at in variants {
                let mut sources = Vec::with_capacity(rule.body.len());
                let mut empty_delta = false;
                for (i, lit) in rule.body.iter().enumerate() {
                    let source = match find(state, lit.slot).and_then(|k| state.get(k)) {
                        Some((_, rec)) if !lit.negated => {
                            let version = match delta_at {
                                None => Version::Full,
                                Some(d) if i == d => Version::Delta,
                                Some(d) if i < d => Version::Old,
                                Some(_) => Version::Full,
                            };
                            let (id, rel) = match version {
                                Version::Old => (SourceId::Old(lit.slot), rec.old.clone()),
                                Version::Delta => (SourceId::Delta(lit.slot), rec.delta.clone()),
                                Version::Full => (SourceId::Full(lit.slot), rec.full.clone()),
                            };
                            empty_delta |= version == Version::Delta && rel.is_empty();
                            BodySource {
                                id,
                                rel: RelRef::Shared(rel),
                            }
                        }
                        _ => {
                            let rel = statics
                                .get(lit.slot)
                                .map(RelRef::Static)
                                .unwrap_or_else(|| RelRef::Shared(Arc::new(Relation::empty(0))));
                            BodySource {
                                id: SourceId::Static(lit.slot),
                                rel,
                            }
                        }
                    };
                    sources.push(source);
                }
                if empty_delta {
                    continue;
                }
                let Some(k) = find(state, rule.head) else {
                    continue;
                };
                let head_full = state
                    .get(k)
                    .map(|(_, r)| r.full.clone())
                    .unwrap_or_default();
                let output = match delta_at.and_then(|d| linear_shape(rule, d)) {
                    Some((d, other, key_col)) => match (sources.get(d), sources.get(other)) {
                        (Some(delta), Some(step)) => {
                            let index: Arc<Index<'_>> =
                                cache.get(step.id, step.rel.clone(), &[key_col]);
                            (delta_step(&delta.rel, &index, &head_full), true)
                        }
                        _ => continue,
                    },
                    None => {
                        let plan = Plan::new(rule, &sources, delta_at, &mut cache);
                        (plan.execute(rule.head, limits.max_tuples)?, false)
                    }
                };
                if let Some((_, rec)) = state.get_mut(k) {
                    rec.next.push(output);
                }
            }
        }
        stats.iterations += 1;
        let mut changed = false;
        for (slot, rec) in state.iter_mut() {
            let added = rec.advance(*slot, limits.max_tuples)?;
            stats.derived += added;
            changed |= added > 0;
        }
        if !changed {
            return Ok(stats);
        }
        cache.next_round();
    }
}

/// Recognises `H(u, w) <- D(u, y), S(y, w)` (S's columns in either order) with `D` at `delta_at`:
/// returns `(delta position, other position, key column of S)`.
fn linear_shape(rule: &Rule, delta_at: usize) -> Option<(usize, usize, usize)> {
    if rule.body.len() != 2 || !rule.comparisons.is_empty() || rule.body.iter().any(|l| l.negated) {
        return None;
    }
    let other = 1 - delta_at.min(1);
    let (d, s) = (rule.body.get(delta_at)?, rule.body.get(other)?);
    let (&[Term::Var(u), Term::Var(y)], &[Term::Var(hu), Term::Var(w)]) =
        (&d.args[..], &rule.head_args[..])
    else {
        return None;
    };
    let key_col = match s.args[..] {
        [Term::Var(a), Term::Var(b)] if a == y && b == w => 0,
        [Term::Var(a), Term::Var(b)] if b == y && a == w => 1,
        _ => return None,
    };
    (u != y && w != y && w != u && hu == u).then_some((delta_at, other, key_col))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{CmpOp, Comparison, Literal};
    use crate::Value;

    fn v(i: usize) -> Term {
        Term::Var(i)
    }
    fn lit(slot: usize, args: Vec<Term>) -> Literal {
        Literal {
            slot,
            args,
            negated: false,
        }
    }
    fn not(slot: usize, args: Vec<Term>) -> Literal {
        Literal {
            slot,
            args,
            negated: true,
        }
    }
    fn rule(head: usize, head_args: Vec<Term>, body: Vec<Literal>, extents: Vec<u32>) -> Rule {
        Rule {
            head,
            head_args,
            body,
            comparisons: vec![],
            var_extents: extents,
        }
    }
    fn pairs(values: &[Value]) -> Relation {
        Relation::from_flat(2, values.to_vec())
    }
    fn eval(rules: &[Rule], slots: &mut [Relation]) -> FixpointStats {
        match evaluate_stratum(rules, slots, &Limits::default()) {
            Ok(stats) => stats,
            Err(e) => panic!("evaluation failed: {e}"),
        }
    }

    /// Parent facts: 0→1, 1→2, 2→3, 1→4.
    fn parents() -> Relation {
        pairs(&[0, 1, 1, 2, 2, 3, 1, 4])
    }

    #[test]
    fn ancestor_left_linear() {
        // Anc(x, y) <- Par(x, y).  Anc(x, z) <- Anc(x, y), Par(y, z).
        let rules = [
            rule(
                1,
                vec![v(0), v(1)],
                vec![lit(0, vec![v(0), v(1)])],
                vec![5, 5],
            ),
            rule(
                1,
                vec![v(0), v(2)],
                vec![lit(1, vec![v(0), v(1)]), lit(0, vec![v(1), v(2)])],
                vec![5, 5, 5],
            ),
        ];
        let mut slots = vec![parents(), Relation::empty(2)];
        let stats = eval(&rules, &mut slots);
        assert_eq!(
            slots[1],
            pairs(&[0, 1, 0, 2, 0, 3, 0, 4, 1, 2, 1, 3, 1, 4, 2, 3])
        );
        assert_eq!(stats.derived, 8);
    }

    #[test]
    fn ancestor_right_linear_and_nonlinear_agree() {
        let right = rule(
            1,
            vec![v(0), v(2)],
            vec![lit(0, vec![v(0), v(1)]), lit(1, vec![v(1), v(2)])],
            vec![5; 3],
        );
        let nonlinear = rule(
            1,
            vec![v(0), v(2)],
            vec![lit(1, vec![v(0), v(1)]), lit(1, vec![v(1), v(2)])],
            vec![5; 3],
        );
        let base = rule(
            1,
            vec![v(0), v(1)],
            vec![lit(0, vec![v(0), v(1)])],
            vec![5, 5],
        );
        let mut a = vec![parents(), Relation::empty(2)];
        let mut b = vec![parents(), Relation::empty(2)];
        eval(&[base.clone(), right], &mut a);
        eval(&[base, nonlinear], &mut b);
        assert_eq!(a[1], b[1]);
        assert_eq!(a[1].len(), 8);
    }

    #[test]
    fn same_generation() {
        // Sg(x, y) <- Par(p, x), Par(p, y), x != y.  Sg(x, y) <- Par(a, x), Sg(a, b), Par(b, y).
        let mut sibling = rule(
            1,
            vec![v(0), v(1)],
            vec![lit(0, vec![v(2), v(0)]), lit(0, vec![v(2), v(1)])],
            vec![6; 3],
        );
        sibling.comparisons.push(Comparison {
            op: CmpOp::Ne,
            lhs: v(0),
            rhs: v(1),
        });
        let cousins = rule(
            1,
            vec![v(0), v(1)],
            vec![
                lit(0, vec![v(2), v(0)]),
                lit(1, vec![v(2), v(3)]),
                lit(0, vec![v(3), v(1)]),
            ],
            vec![6; 4],
        );
        // 0 has children 1, 2; 1 has child 3; 2 has child 4; 4 has child 5.
        let mut slots = vec![pairs(&[0, 1, 0, 2, 1, 3, 2, 4, 4, 5]), Relation::empty(2)];
        eval(&[sibling, cousins], &mut slots);
        assert_eq!(slots[1], pairs(&[1, 2, 2, 1, 3, 4, 4, 3]));
    }

    #[test]
    fn negation_across_strata() {
        // Stratum 1: Reach(x) <- Start(x).  Reach(y) <- Reach(x), E(x, y).
        // Stratum 2: Unreached(x) <- not Reach(x)   (x ranges over the domain 0..5).
        let e = pairs(&[0, 1, 1, 2, 3, 4]);
        let mut slots = vec![
            e,
            Relation::from_flat(1, vec![0]),
            Relation::empty(1),
            Relation::empty(1),
        ];
        let s1 = [
            rule(2, vec![v(0)], vec![lit(1, vec![v(0)])], vec![5]),
            rule(
                2,
                vec![v(1)],
                vec![lit(2, vec![v(0)]), lit(0, vec![v(0), v(1)])],
                vec![5, 5],
            ),
        ];
        eval(&s1, &mut slots);
        assert_eq!(slots[2], Relation::from_flat(1, vec![0, 1, 2]));
        let s2 = [rule(3, vec![v(0)], vec![not(2, vec![v(0)])], vec![5])];
        eval(&s2, &mut slots);
        assert_eq!(slots[3], Relation::from_flat(1, vec![3, 4]));
        // Negating a relation of the same stratum is rejected.
        let bad = [rule(
            3,
            vec![v(0)],
            vec![lit(1, vec![v(0)]), not(3, vec![v(0)])],
            vec![5],
        )];
        assert!(matches!(
            evaluate_stratum(&bad, &mut slots, &Limits::default()),
            Err(RelationError::NegationInStratum { .. })
        ));
    }

    #[test]
    fn comparisons_and_constants() {
        // Big(y) <- E(2, y), y > 1.   Pair(x, 7) <- E(x, y), x < y, y = 4.
        let e = pairs(&[2, 0, 2, 3, 2, 4, 1, 4, 5, 4]);
        let mut big = rule(
            1,
            vec![v(0)],
            vec![lit(0, vec![Term::Const(2), v(0)])],
            vec![8],
        );
        big.comparisons.push(Comparison {
            op: CmpOp::Gt,
            lhs: v(0),
            rhs: Term::Const(1),
        });
        let mut pair = rule(
            2,
            vec![v(0), Term::Const(7)],
            vec![lit(0, vec![v(0), v(1)])],
            vec![8, 8],
        );
        pair.comparisons.push(Comparison {
            op: CmpOp::Lt,
            lhs: v(0),
            rhs: v(1),
        });
        pair.comparisons.push(Comparison {
            op: CmpOp::Eq,
            lhs: v(1),
            rhs: Term::Const(4),
        });
        let mut slots = vec![e, Relation::empty(1), Relation::empty(2)];
        eval(&[big, pair], &mut slots);
        assert_eq!(slots[1], Relation::from_flat(1, vec![3, 4]));
        assert_eq!(slots[2], pairs(&[1, 7, 2, 7]));
    }

    #[test]
    fn head_only_variables_range_over_domain() {
        // Row(x, j) <- A(x).  Next(y) <- y = x + ...: use Eq with a bound var: Same(x, y) <- A(x), y = x.
        let mut slots = vec![
            Relation::from_flat(1, vec![1, 3]),
            Relation::empty(2),
            Relation::empty(2),
        ];
        let row = rule(1, vec![v(0), v(1)], vec![lit(0, vec![v(0)])], vec![4, 3]);
        let mut same = rule(2, vec![v(0), v(1)], vec![lit(0, vec![v(0)])], vec![4, 2]);
        same.comparisons.push(Comparison {
            op: CmpOp::Eq,
            lhs: v(1),
            rhs: v(0),
        });
        eval(&[row, same], &mut slots);
        assert_eq!(slots[1], pairs(&[1, 0, 1, 1, 1, 2, 3, 0, 3, 1, 3, 2]));
        // y = x binds y directly but stays inside y's domain 0..2.
        assert_eq!(slots[2], pairs(&[1, 1]));
        // No positive literal at all: All(x, y) <- x != y over 0..3.
        let mut all = rule(0, vec![v(0), v(1)], vec![], vec![3, 3]);
        all.comparisons.push(Comparison {
            op: CmpOp::Ne,
            lhs: v(0),
            rhs: v(1),
        });
        let mut slots = vec![Relation::empty(2)];
        eval(&[all], &mut slots);
        assert_eq!(slots[0].len(), 6);
    }

    #[test]
    fn repeated_variables() {
        // Loop(x) <- E(x, x).  Tri(x) <- E(x, y), E(y, x).
        let e = pairs(&[0, 0, 1, 2, 2, 1, 2, 3, 3, 3]);
        let loops = rule(1, vec![v(0)], vec![lit(0, vec![v(0), v(0)])], vec![4]);
        let back = rule(
            2,
            vec![v(0)],
            vec![lit(0, vec![v(0), v(1)]), lit(0, vec![v(1), v(0)])],
            vec![4, 4],
        );
        let mut slots = vec![e, Relation::empty(1), Relation::empty(1)];
        eval(&[loops, back], &mut slots);
        assert_eq!(slots[1], Relation::from_flat(1, vec![0, 3]));
        assert_eq!(slots[2], Relation::from_flat(1, vec![0, 1, 2, 3]));
    }

    #[test]
    fn errors_for_limits_and_arity() {
        let rules = [
            rule(
                1,
                vec![v(0), v(1)],
                vec![lit(0, vec![v(0), v(1)])],
                vec![5, 5],
            ),
            rule(
                1,
                vec![v(0), v(2)],
                vec![lit(1, vec![v(0), v(1)]), lit(0, vec![v(1), v(2)])],
                vec![5; 3],
            ),
        ];
        let mut slots = vec![parents(), Relation::empty(2)];
        let err = evaluate_stratum(&rules, &mut slots, &Limits { max_tuples: 5 });
        assert!(
            matches!(
                err,
                Err(RelationError::TooManyTuples {
                    slot: 1,
                    limit: 5,
                    ..
                })
            ),
            "{err:?}"
        );
        let bad = [rule(
            1,
            vec![v(0)],
            vec![lit(0, vec![v(0), v(1)])],
            vec![5, 5],
        )];
        let err = evaluate_stratum(&bad, &mut slots, &Limits::default());
        assert_eq!(
            err,
            Err(RelationError::ArityMismatch {
                slot: 1,
                expected: 2,
                found: 1
            })
        );
    }
}
