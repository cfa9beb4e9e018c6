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
    /// Largest number of bytes the relations of one stratum and their working sets may take
    /// (the memory the machine has free, or what the user allows); exceeding it is an error
    /// raised before allocating.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tuples: 1 << 31,
            max_bytes: usize::MAX,
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
    if let [head] = heads[..] {
        let base = crate::closure::closure_base(rules, head);
        let facts = slots.get(head).map_or(0, Relation::len);
        if let (Some(e), 0) = (base, facts) {
            let edges = slots.get(e).cloned().unwrap_or_default();
            let closure =
                crate::closure::transitive_closure(&edges, limits.max_tuples, limits.max_bytes)
                    .map_err(|err| err.in_slot(head))?;
            let derived = closure.len();
            if let Some(slot) = slots.get_mut(head) {
                *slot = closure;
            }
            return Ok(FixpointStats {
                iterations: 1,
                derived,
            });
        }
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
#[path = "fixpoint_tests.rs"]
mod tests;
