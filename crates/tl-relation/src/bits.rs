//! [`Cells`]: a relation over small domains as one bit per cell, shared between threads.
//!
//! A recursive relation whose domains are small enough (2·10^4 × 2·10^4 pairs are 50 MB of
//! bits) is cheaper as a bitset than as sorted tuples: inserting a derived tuple is one atomic
//! OR whose old value says whether the tuple is new, so a round's output needs no sort, no
//! deduplication and no difference with what is known, and the known tuples are never merged
//! into a new sorted copy. A tuple's cell is its row-major index over the column extents; the
//! tuples whose first columns are fixed are one contiguous run of bits, which is how a join
//! looks them up. A second level of bits, one per 64-bit word, marks the words that are not
//! zero, so a lookup in a sparse row skips its empty words.

use crate::relation::{Relation, Value};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// A set of tuples over fixed column extents, one bit per cell, safe to insert into from many
/// threads at once.
pub(crate) struct Cells {
    extents: Vec<u64>,
    /// `strides[k]`: cells between consecutive values of column k (row-major).
    strides: Vec<u64>,
    words: Vec<AtomicU64>,
    /// Bit `w % 64` of `summary[w / 64]` is set when `words[w]` may be non-zero.
    summary: Vec<AtomicU64>,
    count: AtomicUsize,
}

impl Cells {
    /// Bytes a bitset over these extents takes, if the cell count fits in 64 bits.
    pub(crate) fn bytes_for(extents: &[u32]) -> Option<u64> {
        let cells = extents
            .iter()
            .try_fold(1u64, |a, &e| a.checked_mul(u64::from(e.max(1))))?;
        let words = cells.div_ceil(64);
        words.checked_mul(8)?.checked_add(words.div_ceil(64) * 8)
    }

    /// An empty set over `extents` (each at least 1); `None` when it cannot be allocated.
    pub(crate) fn new(extents: &[u32]) -> Option<Self> {
        let extents: Vec<u64> = extents.iter().map(|&e| u64::from(e.max(1))).collect();
        let mut strides = vec![1u64; extents.len()];
        for k in (0..extents.len().saturating_sub(1)).rev() {
            strides[k] = strides[k + 1].checked_mul(extents[k + 1])?;
        }
        let cells = extents.iter().try_fold(1u64, |a, &e| a.checked_mul(e))?;
        let n = usize::try_from(cells.div_ceil(64)).ok()?;
        let mut words = Vec::new();
        words.try_reserve_exact(n).ok()?;
        words.resize_with(n, || AtomicU64::new(0));
        let mut summary = Vec::new();
        summary.try_reserve_exact(n.div_ceil(64)).ok()?;
        summary.resize_with(n.div_ceil(64), || AtomicU64::new(0));
        Some(Cells {
            extents,
            strides,
            words,
            summary,
            count: AtomicUsize::new(0),
        })
    }

    /// Number of tuples held.
    pub(crate) fn len(&self) -> usize {
        self.count.load(Relaxed)
    }

    #[inline]
    fn cell(&self, tuple: &[Value]) -> Option<u64> {
        if let ([a, b], [ea, eb]) = (tuple, &self.extents[..]) {
            let (a, b) = (u64::from(*a), u64::from(*b));
            return (a < *ea && b < *eb).then_some(a * eb + b);
        }
        let mut flat = 0u64;
        for ((&v, &e), &s) in tuple.iter().zip(&self.extents).zip(&self.strides) {
            if u64::from(v) >= e {
                return None;
            }
            flat += u64::from(v) * s;
        }
        Some(flat)
    }

    /// Adds a tuple; true when it was not there before. Tuples outside the extents are
    /// refused (false), as for a write outside a tensor. The count of tuples held is not
    /// updated here (threads inserting at once would contend for it): the caller adds what
    /// it inserted with [`Cells::counted`].
    #[inline]
    pub(crate) fn insert(&self, tuple: &[Value]) -> bool {
        let Some(cell) = self.cell(tuple) else {
            return false;
        };
        let w = (cell / 64) as usize;
        let bit = 1u64 << (cell % 64);
        let Some(word) = self.words.get(w) else {
            return false;
        };
        // A plain read first: a known tuple costs no atomic read-modify-write.
        if word.load(Relaxed) & bit != 0 {
            return false;
        }
        let old = word.fetch_or(bit, Relaxed);
        if old & bit != 0 {
            return false;
        }
        if old == 0 {
            if let Some(s) = self.summary.get(w / 64) {
                s.fetch_or(1 << (w % 64), Relaxed);
            }
        }
        true
    }

    /// Records that `n` more tuples were inserted.
    pub(crate) fn counted(&self, n: usize) {
        self.count.fetch_add(n, Relaxed);
    }

    /// Whether the tuple is held.
    #[cfg(test)]
    fn contains(&self, tuple: &[Value]) -> bool {
        self.cell(tuple).is_some_and(|cell| {
            self.words
                .get((cell / 64) as usize)
                .is_some_and(|w| w.load(Relaxed) & (1 << (cell % 64)) != 0)
        })
    }

    /// Calls `f` with every set cell index in `[lo, hi)`, in increasing order.
    fn for_each_cell(&self, lo: u64, hi: u64, mut f: impl FnMut(u64)) {
        if lo >= hi {
            return;
        }
        let (first, last) = (lo / 64, (hi - 1) / 64);
        let mut w = first;
        while w <= last {
            // Skip runs of empty words by their summary bit.
            let (sw, sb) = ((w / 64) as usize, w % 64);
            let marks = self.summary.get(sw).map_or(0, |s| s.load(Relaxed)) >> sb;
            if marks == 0 {
                w = (w / 64 + 1) * 64;
                continue;
            }
            w += u64::from(marks.trailing_zeros());
            if w > last {
                break;
            }
            let mut m = self.words.get(w as usize).map_or(0, |x| x.load(Relaxed));
            if w == first {
                m &= u64::MAX << (lo % 64);
            }
            if w == last && !hi.is_multiple_of(64) {
                m &= u64::MAX >> (64 - hi % 64);
            }
            while m != 0 {
                f(w * 64 + u64::from(m.trailing_zeros()));
                m &= m - 1;
            }
            w += 1;
        }
    }

    /// The cells `[base, end)` of the tuples whose first columns equal `prefix` (`None`
    /// when a value lies outside its column).
    #[inline]
    pub(crate) fn prefix_cells(&self, prefix: &[Value]) -> Option<(u64, u64)> {
        let k = prefix.len().min(self.extents.len());
        let mut base = 0u64;
        for (j, &v) in prefix.iter().take(k).enumerate() {
            if u64::from(v) >= self.extents[j] {
                return None;
            }
            base += u64::from(v) * self.strides[j];
        }
        let span = if k == 0 {
            self.extents.iter().product()
        } else {
            self.strides[k - 1]
        };
        Some((base, base + span))
    }

    /// The first set cell in `[from, end)`.
    #[inline]
    pub(crate) fn next_cell(&self, from: u64, end: u64) -> Option<u64> {
        if from >= end {
            return None;
        }
        let last = (end - 1) / 64;
        let word = |w: u64| self.words.get(w as usize).map_or(0, |x| x.load(Relaxed));
        let mut w = from / 64;
        let mut m = word(w) & (u64::MAX << (from % 64));
        while m == 0 {
            w += 1;
            // On to the next word whose summary bit is set.
            loop {
                if w > last {
                    return None;
                }
                let marks = self
                    .summary
                    .get((w / 64) as usize)
                    .map_or(0, |s| s.load(Relaxed))
                    >> (w % 64);
                if marks != 0 {
                    w += u64::from(marks.trailing_zeros());
                    break;
                }
                w = (w / 64 + 1) * 64;
            }
            if w > last {
                return None;
            }
            m = word(w);
        }
        let cell = w * 64 + u64::from(m.trailing_zeros());
        (cell < end).then_some(cell)
    }

    /// The values of the columns after the first `k` of the tuple `offset` cells past the
    /// start of its prefix's cells.
    #[inline]
    pub(crate) fn decode_rest(&self, k: usize, offset: u64, out: &mut [Value]) {
        let mut r = offset;
        for (j, slot) in out.iter_mut().enumerate().rev() {
            let e = self.extents.get(k + j).copied().unwrap_or(1);
            *slot = (r % e) as Value;
            r /= e;
        }
    }

    /// The tuples as a sorted relation (row-major cell order is tuple order), written in
    /// parallel pieces straight into one buffer.
    pub(crate) fn to_relation(&self) -> Relation {
        let arity = self.extents.len();
        let total_words = self.words.len();
        // Count by fixed runs of words (on the pool only for many words), then cut the
        // output into pieces of similar tuple counts: one unless there are many tuples.
        let ranges: Vec<(usize, usize)> = (0..total_words)
            .step_by(1024)
            .map(|a| (a, (a + 1024).min(total_words)))
            .collect();
        let count = |(a, b): (usize, usize)| -> usize {
            self.words[a..b]
                .iter()
                .map(|w| w.load(Relaxed).count_ones() as usize)
                .sum()
        };
        let counts: Vec<usize> = if total_words < crate::par::SMALL {
            ranges.iter().map(|&r| count(r)).collect()
        } else {
            crate::par::map(ranges.clone(), count)
        };
        let total: usize = counts.iter().sum();
        let target = total.div_ceil(crate::par::pieces(total, 8)).max(1);
        let mut data: Vec<Value> = vec![0; total * arity];
        let mut rest: &mut [Value] = &mut data;
        let mut jobs = Vec::new();
        let (mut start, mut held) = (0, 0);
        for (k, (&(_, b), &c)) in ranges.iter().zip(&counts).enumerate() {
            held += c;
            if held >= target || k + 1 == ranges.len() {
                let (piece, tail) = rest.split_at_mut((held * arity).min(rest.len()));
                rest = tail;
                jobs.push(((start, b), piece));
                (start, held) = (b, 0);
            }
        }
        crate::par::for_each(jobs, |((a, b), piece)| {
            if let [_, width] = self.extents[..] {
                // Pairs: follow the row as cells increase, with no division per tuple.
                let mut slots = piece.chunks_exact_mut(2);
                let (mut row, mut row_start) = ((a as u64 * 64) / width, 0u64);
                row_start += row * width;
                self.for_each_cell(a as u64 * 64, b as u64 * 64, |cell| {
                    while cell >= row_start + width {
                        row += 1;
                        row_start += width;
                    }
                    if let Some(pair) = slots.next() {
                        pair[0] = row as Value;
                        pair[1] = (cell - row_start) as Value;
                    }
                });
                return;
            }
            let mut slots = piece.chunks_exact_mut(arity.max(1));
            self.for_each_cell(a as u64 * 64, b as u64 * 64, |cell| {
                if let Some(tuple) = slots.next() {
                    let mut r = cell;
                    for j in (0..arity).rev() {
                        tuple[j] = (r % self.extents[j]) as Value;
                        r /= self.extents[j];
                    }
                }
            });
        });
        if arity == 0 {
            return Relation::nullary(total > 0);
        }
        Relation::from_sorted_flat(arity, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The remaining columns of the tuples starting with `prefix`, flattened, in order.
    fn with_prefix(cells: &Cells, prefix: &[Value]) -> Vec<Value> {
        let mut out = Vec::new();
        let rest = cells.extents.len() - prefix.len();
        if let Some((base, end)) = cells.prefix_cells(prefix) {
            let mut from = base;
            while let Some(cell) = cells.next_cell(from, end) {
                let mut buf = vec![0; rest];
                cells.decode_rest(prefix.len(), cell - base, &mut buf);
                out.extend(buf);
                from = cell + 1;
            }
        }
        out
    }

    #[test]
    fn insert_lookup_and_order() {
        let cells = Cells::new(&[3, 130]).expect("allocates");
        assert!(cells.insert(&[1, 129]));
        assert!(cells.insert(&[1, 0]));
        assert!(cells.insert(&[0, 64]));
        assert!(!cells.insert(&[1, 0]), "already there");
        assert!(!cells.insert(&[3, 0]), "outside the extents");
        cells.counted(3);
        assert_eq!(cells.len(), 3);
        assert!(cells.contains(&[1, 129]) && !cells.contains(&[2, 129]));
        assert_eq!(with_prefix(&cells, &[1]), vec![0, 129]);
        assert_eq!(with_prefix(&cells, &[]), vec![0, 64, 1, 0, 1, 129]);
        assert_eq!(with_prefix(&cells, &[1, 129]), Vec::<Value>::new());
        assert_eq!(with_prefix(&cells, &[7]), Vec::<Value>::new());
        assert_eq!(
            cells.to_relation(),
            Relation::from_flat(2, vec![0, 64, 1, 0, 1, 129])
        );
    }

    #[test]
    fn matches_a_sorted_set_on_random_tuples() {
        let mut state = 99u64;
        let mut next = |m: u32| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % u64::from(m)) as u32
        };
        for extents in [vec![5u32], vec![7, 300], vec![3, 5, 70], vec![1, 4097]] {
            let cells = Cells::new(&extents).expect("allocates");
            let mut flat = Vec::new();
            for _ in 0..400 {
                let t: Vec<u32> = extents.iter().map(|&e| next(e)).collect();
                let fresh = !cells.contains(&t);
                assert_eq!(cells.insert(&t), fresh);
                cells.counted(usize::from(fresh));
                flat.extend(t);
            }
            let want = Relation::from_flat(extents.len(), flat);
            assert_eq!(cells.to_relation(), want, "{extents:?}");
            assert_eq!(cells.len(), want.len());
            // Every prefix of one column finds exactly the rows that start with it.
            for v in 0..extents[0] {
                let mut got = Vec::new();
                let rest = with_prefix(&cells, &[v]);
                if extents.len() == 1 {
                    if cells.contains(&[v]) {
                        got.push(v);
                    }
                } else {
                    for r in rest.chunks_exact(extents.len() - 1) {
                        got.push(v);
                        got.extend_from_slice(r);
                    }
                }
                let expect: Vec<u32> = want
                    .iter()
                    .filter(|r| r[0] == v)
                    .flatten()
                    .copied()
                    .collect();
                assert_eq!(got, expect);
            }
        }
    }
}
