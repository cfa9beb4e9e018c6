//! The semi-naive fixpoint loop for one stratum.

use crate::bits::Cells;
use crate::chain::Chain;
use crate::error::RelationError;
use crate::index::{Index, IndexCache, RelRef, SourceId};
use crate::join::{BodySource, Live, Plan, Produced, Target};
use crate::linear::delta_step;
use crate::relation::{Relation, Value};
use crate::rows::Rows;
use crate::rule::{Rule, Term};
use std::sync::Arc;

mod rounds;
use rounds::*;

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
    /// Whether recursive relations may grow in place, as bits or rows, where that is cheaper
    /// (`false` keeps them sorted tuples, merged every round: the reference form).
    pub in_place: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tuples: 1 << 31,
            max_bytes: usize::MAX,
            in_place: true,
        }
    }
}

/// What the fixpoint loop did, for diagnostics, benchmarks and `--profile`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FixpointStats {
    /// Number of rounds run (the first round evaluates every rule on the initial contents).
    pub iterations: usize,
    /// Number of tuples added to the head relations beyond their initial facts.
    pub derived: usize,
    /// Per rule, in the order given.
    pub rules: Vec<RuleStats>,
    /// How each head relation was held while it was derived, by slot.
    pub forms: Vec<(usize, Form)>,
}

/// The work of one rule in one stratum evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleStats {
    /// How many times a variant of it was evaluated (one per recursive atom per round).
    pub runs: usize,
    /// Tuples it produced: the new ones when its head grows as bits, else every tuple it
    /// derived before duplicates were removed.
    pub tuples: usize,
    /// Time spent evaluating it.
    pub time: std::time::Duration,
}

/// How a head relation is held while a stratum is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// Sorted tuples, merged each round.
    Tuples,
    /// One bit per cell.
    Bits,
    /// A sorted list per first value.
    Rows,
    /// Computed whole as a transitive closure, without rounds.
    Closure,
}

impl std::fmt::Display for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Form::Tuples => "sorted tuples",
            Form::Bits => "bits",
            Form::Rows => "rows",
            Form::Closure => "closure",
        })
    }
}

/// Bitsets up to this size are always used for a head relation; larger ones once its tuples
/// would take half the bitset's size.
const BITS_ALWAYS: u64 = 32 << 20;

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
///
/// Instead of sorted tuples, `full` may grow in place ([`Live`]). Over small domains it is
/// bits ([`Cells`]): rule outputs go straight into them, an insertion telling whether the
/// tuple is new, so `fresh` holds only new tuples and nothing is sorted or merged. A binary
/// relation over a large domain is rows ([`Rows`]): a round's outputs are merged into the
/// lists of the first values they touch, at a cost proportional to what they add. Either way
/// reads of `old` read the growing relation, a superset, which can only find a derivation
/// twice, never miss one.
struct Recursive {
    full: Arc<Relation>,
    live: Option<Live>,
    /// The initial facts: what the first round reads (bits would already show that round's
    /// own output, which the second round then joins again as its delta).
    facts: Arc<Relation>,
    /// The extent of each column, and the bytes its bits would take (if they fit in memory).
    extents: Vec<u32>,
    bits_bytes: Option<u64>,
    old: Arc<Relation>,
    delta: Arc<Relation>,
    /// Outputs of this round, with whether each is already known to be disjoint from `full`.
    next: Vec<(Relation, bool)>,
    /// This round's new tuples (bits) or candidate tuples (rows), flat.
    fresh: Vec<Vec<Value>>,
    keep_old: bool,
}

impl Recursive {
    fn new(facts: Relation, extents: Vec<u32>, keep_old: bool, limits: &Limits) -> Self {
        let arity = facts.arity();
        let max_bytes = limits.max_bytes;
        let bits_bytes =
            Cells::bytes_for(&extents).filter(|&b| limits.in_place && b <= (max_bytes / 2) as u64);
        let rows_bytes = extents
            .first()
            .map_or(u64::MAX, |&e| u64::from(e).saturating_mul(24));
        let facts = Arc::new(facts);
        let mut rec = Recursive {
            full: facts.clone(),
            live: None,
            facts,
            extents,
            bits_bytes,
            old: Arc::new(Relation::empty(arity)),
            delta: Arc::new(Relation::empty(arity)),
            next: Vec::new(),
            fresh: Vec::new(),
            keep_old,
        };
        if bits_bytes.is_some_and(|b| b <= BITS_ALWAYS) {
            rec.move_into_bits();
        } else if limits.in_place && arity == 2 && rows_bytes <= (max_bytes / 4) as u64 {
            let rows = Rows::new(&rec.full, rec.extents.first().copied().unwrap_or(0));
            rec.live = Some(Live::Rows(Arc::new(rows)));
            rec.full = Arc::new(Relation::empty(2));
        }
        rec
    }

    fn arity(&self) -> usize {
        self.extents.len()
    }

    fn len(&self) -> usize {
        match &self.live {
            Some(Live::Bits(c)) => c.len(),
            Some(Live::Rows(r)) => r.len(),
            None => self.full.len(),
        }
    }

    /// How the relation is held now.
    fn form(&self) -> Form {
        match &self.live {
            Some(Live::Bits(_)) => Form::Bits,
            Some(Live::Rows(_)) => Form::Rows,
            None => Form::Tuples,
        }
    }

    /// The bits the head is held as, if it is.
    fn bits(&self) -> Option<Arc<Cells>> {
        match &self.live {
            Some(Live::Bits(c)) => Some(c.clone()),
            _ => None,
        }
    }

    /// Moves the relation into bits (when they can be allocated).
    fn move_into_bits(&mut self) {
        // A nullary relation stays a relation: its one tuple has no values, so a round's
        // output of it could not tell a new tuple from none (it read as no change, and the
        // rules reading it never ran again).
        if self.arity() == 0 {
            return;
        }
        let Some(cells) = Cells::new(&self.extents) else {
            return;
        };
        if let Some(Live::Rows(rows)) = &self.live {
            self.full = Arc::new(rows.to_relation());
        }
        let arity = self.arity().max(1);
        let chunks: Vec<&[Value]> = self.full.values().chunks(arity * 4096).collect();
        let inserted: usize = crate::par::map(chunks, |chunk| {
            chunk
                .chunks_exact(arity)
                .filter(|t| cells.insert(t))
                .count()
        })
        .into_iter()
        .sum();
        cells.counted(inserted);
        self.live = Some(Live::Bits(Arc::new(cells)));
        self.full = Arc::new(Relation::empty(self.arity()));
        self.old = Arc::new(Relation::empty(self.arity()));
    }

    /// Folds this round's outputs in; returns the number of new tuples. Nothing else may
    /// hold the rows then (they are updated in place).
    fn advance(&mut self, slot: usize, limit: usize) -> Result<usize, RelationError> {
        let too_many = |tuples| RelationError::TooManyTuples {
            slot,
            tuples,
            limit,
        };
        match &mut self.live {
            Some(Live::Bits(_)) => {
                let fresh = std::mem::take(&mut self.fresh);
                // A nullary relation has no first column to group by.
                let first = self.extents.first().copied().unwrap_or(0);
                let values = group_by_first(&fresh, self.arity(), first);
                self.delta = Arc::new(Relation::from_distinct(self.arity(), values));
                if self.len() > limit {
                    return Err(too_many(self.len()));
                }
                return Ok(self.delta.len());
            }
            Some(Live::Rows(rows)) => {
                let mut parts = std::mem::take(&mut self.fresh);
                parts.extend(
                    std::mem::take(&mut self.next)
                        .into_iter()
                        .map(|(r, _)| r.values().to_vec()),
                );
                let rows = Arc::make_mut(rows);
                let fresh = rows.insert(&parts);
                let (held, bytes) = (rows.len(), rows.bytes() as u64);
                self.delta = Arc::new(Relation::from_sorted_flat(2, fresh));
                if held > limit {
                    return Err(too_many(held));
                }
                // Once the rows take half the space of bits, bits are cheaper from here on.
                if self
                    .bits_bytes
                    .is_some_and(|b| bytes.saturating_mul(2) >= b)
                {
                    self.move_into_bits();
                }
                return Ok(self.delta.len());
            }
            None => {}
        }
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
            return Err(too_many(tuples));
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
        // Once the tuples take half the space of bits, bits are cheaper from here on.
        let tuple_bytes = (self.full.len() as u64).saturating_mul(self.arity() as u64 * 8);
        if self.bits_bytes.is_some_and(|b| tuple_bytes >= b) {
            self.move_into_bits();
        }
        Ok(added)
    }

    /// The final relation.
    fn finish(self) -> Relation {
        match self.live {
            Some(Live::Bits(cells)) => cells.to_relation(),
            Some(Live::Rows(rows)) => rows.to_relation(),
            None => Arc::try_unwrap(self.full).unwrap_or_else(|shared| (*shared).clone()),
        }
    }
}

/// The tuples of `parts` (flat, distinct) ordered by their first column, by counting, so a
/// join reading them in order finds the rows of one first value together (the rows its
/// output lands in stay in cache). Tuples keep their order within one first value.
fn group_by_first(parts: &[Vec<Value>], arity: usize, extent: u32) -> Vec<Value> {
    let total: usize = parts.iter().map(Vec::len).sum();
    if arity < 2 || total <= arity {
        return parts.concat();
    }
    let mut starts = vec![0usize; extent as usize + 1];
    for t in parts.iter().flat_map(|p| p.chunks_exact(arity)) {
        if let Some(s) = starts.get_mut(t[0] as usize + 1) {
            *s += 1;
        }
    }
    for k in 0..extent as usize {
        starts[k + 1] += starts[k];
    }
    let mut out = vec![0; total];
    for t in parts.iter().flat_map(|p| p.chunks_exact(arity)) {
        if let Some(s) = starts.get_mut(t[0] as usize) {
            if let Some(slot) = out.get_mut(*s * arity..(*s + 1) * arity) {
                slot.copy_from_slice(t);
            }
            *s += 1;
        }
    }
    out
}

/// The extent of each column of `head`: what its rules' variables range over, or past the
/// largest constant or fact.
fn head_extents(rules: &[Rule], head: usize, facts: &Relation) -> Vec<u32> {
    let arity = facts.arity();
    let mut extents = vec![1u32; arity];
    for rule in rules.iter().filter(|r| r.head == head) {
        for (e, t) in extents.iter_mut().zip(&rule.head_args) {
            let x = match *t {
                Term::Var(v) => rule.extent(v),
                Term::Const(c) => c.saturating_add(1),
            };
            *e = (*e).max(x);
        }
    }
    for t in facts.iter() {
        for (e, &v) in extents.iter_mut().zip(t) {
            *e = (*e).max(v.saturating_add(1));
        }
    }
    extents
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
    let started = std::time::Instant::now();
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
            // The closure's time and tuples are the recursive rule's (the first, if several).
            let mut stats = vec![RuleStats::default(); rules.len()];
            let rec = rules
                .iter()
                .position(|r| r.body.iter().any(|l| l.slot == head));
            if let Some(s) = rec.and_then(|k| stats.get_mut(k)) {
                *s = RuleStats {
                    runs: 1,
                    tuples: derived,
                    time: started.elapsed(),
                };
            }
            return Ok(FixpointStats {
                iterations: 1,
                derived,
                rules: stats,
                forms: vec![(head, Form::Closure)],
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
        let extents = head_extents(rules, h, &facts);
        state.push((h, Recursive::new(facts, extents, keep_old, limits)));
    }
    let result = run_rounds(rules, slots, &heads, &mut state, limits);
    for (h, rec) in state {
        if let Some(slot) = slots.get_mut(h) {
            *slot = rec.finish();
        }
    }
    result
}

#[cfg(test)]
#[path = "fixpoint_tests.rs"]
mod tests;
