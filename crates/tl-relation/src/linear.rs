//! The fast path for linear recursion: `H(u, w) <- D(u, y), S(y, w)` with `D` a delta.
//!
//! This is the step of a left-linear transitive closure, and the most common recursive join.
//! The general planner would produce every candidate pair, sort them all and subtract `full`.
//! Here the delta is processed one source `u` at a time (it is sorted by `u`): the successors of
//! all its `y`s are marked in a bitset over the `w` domain, the tuples `full` already holds for
//! `u` are cleared, and the remaining bits are emitted in order. The output is therefore sorted,
//! deduplicated and disjoint from `full` without any global sort. Sources are split into chunks
//! that rayon processes in parallel, each with its own bitset.

use crate::index::Index;
use crate::relation::{Relation, Value};

/// Adjacency of the stepping relation: the `w`s of key `y` are `targets[offsets[y]..offsets[y + 1]]`.
struct Adjacency {
    offsets: Vec<usize>,
    targets: Vec<Value>,
}

impl Adjacency {
    fn new(step: &Index<'_>) -> Self {
        let (lo, hi) = step.range(&[]);
        let mut offsets = Vec::new();
        let mut targets = Vec::with_capacity(hi - lo);
        for i in lo..hi {
            let (Some(&y), Some(&w)) = (step.key_row(i).first(), step.rest_row(i).first()) else {
                continue;
            };
            let y = y as usize;
            while offsets.len() <= y {
                offsets.push(targets.len());
            }
            targets.push(w);
        }
        offsets.push(targets.len());
        Adjacency { offsets, targets }
    }

    fn successors(&self, y: Value) -> &[Value] {
        let y = y as usize;
        match (self.offsets.get(y), self.offsets.get(y + 1)) {
            (Some(&a), Some(&b)) => self.targets.get(a..b).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// Computes `{(u, w) | (u, y) ∈ delta, (y, w) ∈ step} \ full`, sorted and deduplicated.
///
/// `delta` and `full` must be binary; `step` must be a binary relation indexed on `y`.
pub(crate) fn delta_step(delta: &Relation, step: &Index<'_>, full: &Relation) -> Relation {
    let adj = Adjacency::new(step);
    let pairs = delta.values().as_chunks::<2>().0;
    let full_pairs = full.values().as_chunks::<2>().0;
    // Chunk boundaries on changes of `u`, so that each source is handled by one task.
    let target = crate::par::chunk(pairs.len(), 64, 16);
    let mut bounds = vec![0];
    let mut pos = target;
    while pos < pairs.len() {
        while pos < pairs.len() && pairs.get(pos).map(|p| p[0]) == pairs.get(pos - 1).map(|p| p[0])
        {
            pos += 1;
        }
        bounds.push(pos);
        pos += target;
    }
    bounds.push(pairs.len());
    bounds.dedup();
    let spans: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
    let pieces: Vec<Vec<Value>> = crate::par::map_adaptive(spans, |(a, b)| {
        let chunk = pairs.get(a..b).unwrap_or(&[]);
        let mut bits: Vec<u64> = Vec::new();
        let mut out = Vec::new();
        for group in chunk.chunk_by(|p, q| p[0] == q[0]) {
            let Some(&[u, _]) = group.first() else {
                continue;
            };
            extend_source(u, group, &adj, full_pairs, &mut bits, &mut out);
        }
        out
    });
    Relation::from_sorted_flat(2, pieces.concat())
}

/// Handles one source `u`: marks successors, clears known tuples, emits the rest in order.
fn extend_source(
    u: Value,
    group: &[[Value; 2]],
    adj: &Adjacency,
    full: &[[Value; 2]],
    bits: &mut Vec<u64>,
    out: &mut Vec<Value>,
) {
    let (mut lo_w, mut hi_w) = (usize::MAX, 0);
    for &[_, y] in group {
        for &w in adj.successors(y) {
            let word = (w >> 6) as usize;
            if word >= bits.len() {
                bits.resize(word + 1, 0);
            }
            if let Some(b) = bits.get_mut(word) {
                *b |= 1 << (w & 63);
            }
            lo_w = lo_w.min(word);
            hi_w = hi_w.max(word);
        }
    }
    if lo_w > hi_w {
        return;
    }
    // Tuples (u, w) already in `full`, restricted to the window of marked words.
    let lo_v = (lo_w as u64 * 64).min(u64::from(Value::MAX)) as Value;
    let start = full.partition_point(|p| *p < [u, lo_v]);
    for &[fu, fw] in full.get(start..).unwrap_or(&[]) {
        let word = (fw >> 6) as usize;
        if fu != u || word > hi_w {
            break;
        }
        if let Some(b) = bits.get_mut(word) {
            *b &= !(1 << (fw & 63));
        }
    }
    for word in lo_w..=hi_w {
        let Some(b) = bits.get_mut(word) else { break };
        let mut m = std::mem::take(b);
        while m != 0 {
            out.push(u);
            out.push(((word as u64) << 6 | u64::from(m.trailing_zeros())) as Value);
            m &= m - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::RelRef;

    #[test]
    fn step_matches_definition() {
        let delta = Relation::from_flat(2, vec![0, 1, 0, 2, 3, 1]);
        let edges = Relation::from_flat(2, vec![1, 5, 1, 200, 2, 5, 2, 0]);
        let full = Relation::from_flat(2, vec![0, 1, 0, 2, 0, 5, 3, 1]);
        let idx = Index::build(RelRef::Static(&edges), &[0]);
        let got = delta_step(&delta, &idx, &full);
        assert_eq!(
            got,
            Relation::from_flat(2, vec![0, 0, 0, 200, 3, 5, 3, 200])
        );
    }
}
