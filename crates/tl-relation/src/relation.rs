//! [`Relation`]: an immutable, sorted, deduplicated set of tuples of one arity.
//!
//! Tuples are stored flat and row-major in one shared `Vec<Value>`, so a relation of a million
//! pairs is one allocation of two million `u32`s, and a copy of a relation shares it. Set operations are linear merges. Arities 1 to 4 are
//! processed as fixed-size arrays (`[Value; N]`), which the compiler compares and moves quickly;
//! larger arities fall back to row slices.

use crate::error::RelationError;
use rayon::prelude::*;
use std::sync::Arc;

/// One argument value: an element index within its axis's domain.
pub type Value = u32;

/// An immutable, sorted, deduplicated set of tuples of one arity, stored flat row-major.
///
/// This is the sparse form of a Boolean tensor: a tuple is present exactly when its cell is 1.
/// A nullary relation (arity 0) holds either no tuple (false) or the empty tuple (true).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Relation {
    arity: usize,
    rows: usize,
    data: Arc<Vec<Value>>,
    /// False only for the distinct but unsorted deltas of the fixpoint loop
    /// ([`Relation::from_distinct`]), which are scanned, never searched or merged.
    sorted: bool,
}

/// Runs `$body` with `$rows` bound to the rows of `$data` typed by arity (`[Value; N]` for small
/// arities, `&[Value]` otherwise), and turns the resulting `Vec` of rows back into flat values.
macro_rules! with_rows {
    ($arity:expr, [$($data:ident),*], |$($rows:ident),*| $body:expr) => {
        match $arity {
            1 => { $(let $rows: &[Value] = &$data[..];)* let out: Vec<Value> = $body; out }
            2 => { $(let $rows = $data.as_chunks::<2>().0;)* let out: Vec<[Value; 2]> = $body; out.into_flattened() }
            3 => { $(let $rows = $data.as_chunks::<3>().0;)* let out: Vec<[Value; 3]> = $body; out.into_flattened() }
            4 => { $(let $rows = $data.as_chunks::<4>().0;)* let out: Vec<[Value; 4]> = $body; out.into_flattened() }
            n => {
                $(let owned: Vec<&[Value]> = $data.chunks_exact(n.max(1)).collect(); let $rows = &owned[..];)*
                let out: Vec<&[Value]> = $body;
                out.concat()
            }
        }
    };
}

impl Relation {
    /// The relation of the given arity with no tuples (an all-zero tensor).
    pub fn empty(arity: usize) -> Self {
        Relation {
            arity,
            rows: 0,
            data: Arc::default(),
            sorted: true,
        }
    }

    /// The nullary relation holding the empty tuple (the Boolean scalar `true`).
    pub fn unit() -> Self {
        Relation {
            arity: 0,
            rows: 1,
            data: Arc::default(),
            sorted: true,
        }
    }

    /// Builds a relation from flat row-major values, sorting and deduplicating the rows.
    ///
    /// A trailing partial row (when `values.len()` is not a multiple of `arity`) is dropped;
    /// use [`Relation::try_from_flat`] to have it reported instead. For arity 0 the result is empty.
    pub fn from_flat(arity: usize, mut values: Vec<Value>) -> Self {
        if arity == 0 {
            return Relation::empty(0);
        }
        values.truncate(values.len() - values.len() % arity);
        let data = sort_dedup(arity, values);
        Relation {
            arity,
            rows: data.len() / arity,
            data: Arc::new(data),
            sorted: true,
        }
    }

    /// Like [`Relation::from_flat`], but reports a ragged buffer as an error.
    pub fn try_from_flat(arity: usize, values: Vec<Value>) -> Result<Self, RelationError> {
        let ragged = if arity == 0 {
            !values.is_empty()
        } else {
            !values.len().is_multiple_of(arity)
        };
        if ragged {
            return Err(RelationError::RaggedValues {
                arity,
                len: values.len(),
            });
        }
        Ok(Relation::from_flat(arity, values))
    }

    /// Wraps values already sorted and deduplicated (internal producers guarantee this).
    pub(crate) fn from_sorted_flat(arity: usize, data: Vec<Value>) -> Self {
        let rows = data.len().checked_div(arity).unwrap_or(0);
        Relation {
            arity,
            rows,
            data: Arc::new(data),
            sorted: true,
        }
    }

    /// Wraps distinct tuples in no particular order: a round's new tuples, which the
    /// fixpoint loop only scans. Anything that searches or merges sorts them first
    /// ([`Relation::is_sorted`] tells).
    pub(crate) fn from_distinct(arity: usize, data: Vec<Value>) -> Self {
        let rows = data.len().checked_div(arity).unwrap_or(0);
        Relation {
            arity,
            rows,
            data: Arc::new(data),
            sorted: rows <= 1,
        }
    }

    /// Whether the tuples are in sorted order (every relation outside the fixpoint loop is).
    pub(crate) fn is_sorted(&self) -> bool {
        self.sorted
    }

    /// A nullary relation that is `true` when `present`.
    pub(crate) fn nullary(present: bool) -> Self {
        if present {
            Relation::unit()
        } else {
            Relation::empty(0)
        }
    }

    /// Whether `other` is this very value (a copy sharing its tuple buffer): a check in
    /// constant time, for caches of what was computed from a relation.
    pub fn shares_data(&self, other: &Relation) -> bool {
        Arc::ptr_eq(&self.data, &other.data) && self.arity == other.arity && self.rows == other.rows
    }

    /// Number of arguments of every tuple.
    pub fn arity(&self) -> usize {
        self.arity
    }

    /// Number of tuples.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether the relation holds no tuple.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The flat, row-major values (length `len() * arity()`).
    pub fn values(&self) -> &[Value] {
        &self.data
    }

    /// The tuple at position `i` in sorted order, if any.
    pub fn row(&self, i: usize) -> Option<&[Value]> {
        if i >= self.rows {
            return None;
        }
        self.data.get(i * self.arity..(i + 1) * self.arity)
    }

    /// The tuples in sorted (lexicographic) order.
    pub fn iter(&self) -> impl Iterator<Item = &[Value]> {
        (0..self.rows).map(move |i| self.row(i).unwrap_or(&[]))
    }

    /// Whether `tuple` is in the relation (binary search).
    pub fn contains(&self, tuple: &[Value]) -> bool {
        if tuple.len() != self.arity {
            return false;
        }
        if self.arity == 0 {
            return self.rows > 0;
        }
        let pos = self.lower_bound(tuple);
        self.row(pos) == Some(tuple)
    }

    /// First row position whose first `prefix.len()` values are not less than `prefix`.
    pub(crate) fn lower_bound(&self, prefix: &[Value]) -> usize {
        let k = prefix.len().min(self.arity);
        partition_rows(self.rows, |i| {
            self.data.get(i * self.arity..i * self.arity + k) < Some(prefix)
        })
    }

    /// Row range `[lo, hi)` whose first `prefix.len()` values equal `prefix`.
    pub(crate) fn prefix_range(&self, prefix: &[Value]) -> (usize, usize) {
        let k = prefix.len().min(self.arity);
        let lo = self.lower_bound(prefix);
        let hi = lo
            + partition_rows(self.rows - lo, |j| {
                let i = lo + j;
                self.data.get(i * self.arity..i * self.arity + k) == Some(prefix)
            });
        (lo, hi)
    }

    /// The set union of two relations of the same arity (a linear merge; the arity of `self` wins).
    pub fn union(&self, other: &Relation) -> Relation {
        if self.arity == 0 {
            return Relation::nullary(self.rows > 0 || other.rows > 0);
        }
        if other.is_empty() || other.arity != self.arity {
            return self.clone();
        }
        if self.is_empty() {
            return other.clone();
        }
        let (a, b) = (&self.data[..], &other.data[..]);
        let data = with_rows!(self.arity, [a, b], |ra, rb| merge_union(ra, rb));
        Relation::from_sorted_flat(self.arity, data)
    }

    /// The tuples of `self` that are not in `other`.
    pub fn difference(&self, other: &Relation) -> Relation {
        if self.arity == 0 {
            return Relation::nullary(self.rows > 0 && other.rows == 0);
        }
        if other.is_empty() || self.is_empty() || other.arity != self.arity {
            return self.clone();
        }
        let (a, b) = (&self.data[..], &other.data[..]);
        let data = with_rows!(self.arity, [a, b], |ra, rb| set_difference(ra, rb));
        Relation::from_sorted_flat(self.arity, data)
    }

    /// The union of two relations known to share no tuple, merged in parallel.
    pub(crate) fn union_disjoint(&self, other: &Relation) -> Relation {
        if self.arity != 2 || other.arity != 2 || self.is_empty() || other.is_empty() {
            return self.union(other);
        }
        let (a, b) = (self.data.as_chunks::<2>().0, other.data.as_chunks::<2>().0);
        Relation::from_sorted_flat(2, par_merge_disjoint(a, b).into_flattened())
    }

    /// Reorders the columns (`columns[k]` is the source column of output column `k`) and re-sorts.
    pub(crate) fn permute(&self, columns: &[usize]) -> Relation {
        let mut values = Vec::with_capacity(self.rows * columns.len());
        for row in self.iter() {
            values.extend(columns.iter().map(|&c| row.get(c).copied().unwrap_or(0)));
        }
        Relation::from_flat(columns.len(), values)
    }
}

/// Number of leading positions in `0..n` satisfying the monotone predicate `less`.
fn partition_rows(n: usize, less: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if less(mid) {
            lo = mid + 1
        } else {
            hi = mid
        }
    }
    lo
}

/// Sorts flat rows and removes duplicates (parallel sort for large inputs).
fn sort_dedup(arity: usize, mut values: Vec<Value>) -> Vec<Value> {
    fn sort_rows<T: Ord + Send>(rows: &mut [T]) -> usize {
        if rows.len() > 1 << 15 {
            rows.par_sort_unstable()
        } else {
            rows.sort_unstable()
        }
        let mut kept = 0;
        for i in 0..rows.len() {
            if i == 0 || rows[i] != rows[kept - 1] {
                rows.swap(kept, i);
                kept += 1;
            }
        }
        kept
    }
    let kept = match arity {
        1 => sort_rows(&mut values[..]),
        2 => sort_rows(values.as_chunks_mut::<2>().0),
        3 => sort_rows(values.as_chunks_mut::<3>().0),
        4 => sort_rows(values.as_chunks_mut::<4>().0),
        n => {
            let mut rows: Vec<Vec<Value>> = values.chunks_exact(n).map(<[Value]>::to_vec).collect();
            let kept = sort_rows(&mut rows[..]);
            rows.truncate(kept);
            values = rows.concat();
            kept
        }
    };
    values.truncate(kept * arity);
    values
}

/// The union of two disjoint sorted row sequences, merged in parallel pieces written in place.
///
/// Piece k takes `a`'s rows from the k-th split point and `b`'s rows from the first row not
/// below that point's value. As the inputs are disjoint, the piece's output starts at the sum of
/// the two start positions, so every piece writes its own slice of the output.
fn par_merge_disjoint<T: Ord + Copy + Default + Send + Sync>(a: &[T], b: &[T]) -> Vec<T> {
    if a.len() + b.len() < 1 << 18 || a.is_empty() {
        return merge_union(a, b);
    }
    let pieces = rayon::current_num_threads() * 4;
    let mut cuts: Vec<(usize, usize)> = (0..pieces)
        .map(|k| {
            let ai = k * a.len() / pieces;
            let bi = a.get(ai).map_or(b.len(), |v| b.partition_point(|x| x < v));
            (ai, if k == 0 { 0 } else { bi })
        })
        .collect();
    cuts.push((a.len(), b.len()));
    let mut out = vec![T::default(); a.len() + b.len()];
    let mut rest = &mut out[..];
    let mut jobs = Vec::with_capacity(pieces);
    for w in cuts.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        let len = (hi.0 - lo.0) + (hi.1 - lo.1);
        let (piece, tail) = rest.split_at_mut(len.min(rest.len()));
        rest = tail;
        jobs.push((
            a.get(lo.0..hi.0).unwrap_or(&[]),
            b.get(lo.1..hi.1).unwrap_or(&[]),
            piece,
        ));
    }
    jobs.into_par_iter().for_each(|(pa, pb, piece)| {
        let (mut i, mut j) = (0, 0);
        for slot in piece.iter_mut() {
            match (pa.get(i), pb.get(j)) {
                (Some(&x), Some(&y)) if x < y => {
                    *slot = x;
                    i += 1
                }
                (_, Some(&y)) => {
                    *slot = y;
                    j += 1
                }
                (Some(&x), None) => {
                    *slot = x;
                    i += 1
                }
                (None, None) => break,
            }
        }
    });
    out
}

/// Merges two sorted, deduplicated row sequences into their sorted union.
fn merge_union<T: Ord + Copy>(a: &[T], b: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        match x.cmp(&y) {
            std::cmp::Ordering::Less => {
                out.push(x);
                i += 1
            }
            std::cmp::Ordering::Greater => {
                out.push(y);
                j += 1
            }
            std::cmp::Ordering::Equal => {
                out.push(x);
                i += 1;
                j += 1
            }
        }
    }
    out.extend_from_slice(a.get(i..).unwrap_or(&[]));
    out.extend_from_slice(b.get(j..).unwrap_or(&[]));
    out
}

/// The rows of sorted `a` absent from sorted `b`; gallops through `b` when it is much larger.
fn set_difference<T: Ord + Copy>(a: &[T], b: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len());
    if b.len() > 16 * a.len() {
        let mut rest = b;
        for &x in a {
            let pos = rest.partition_point(|y| *y < x);
            rest = rest.get(pos..).unwrap_or(&[]);
            if rest.first() != Some(&x) {
                out.push(x);
            }
        }
        return out;
    }
    let mut j = 0;
    for &x in a {
        while b.get(j).is_some_and(|y| *y < x) {
            j += 1;
        }
        if b.get(j) != Some(&x) {
            out.push(x);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_flat_sorts_and_dedups() {
        let r = Relation::from_flat(2, vec![3, 1, 1, 2, 3, 1, 1, 0, 9]);
        assert_eq!(r.len(), 3);
        let rows: Vec<&[Value]> = r.iter().collect();
        assert_eq!(rows, vec![&[1, 0][..], &[1, 2], &[3, 1]]);
        assert!(r.contains(&[1, 2]) && !r.contains(&[2, 1]) && !r.contains(&[1]));
        assert!(matches!(
            Relation::try_from_flat(2, vec![1, 2, 3]),
            Err(RelationError::RaggedValues { .. })
        ));
    }

    #[test]
    fn set_operations_all_arities() {
        for arity in [1usize, 2, 3, 4, 5] {
            let a: Vec<Value> = (0..arity as u32 * 6).map(|x| x % 7).collect();
            let b: Vec<Value> = (0..arity as u32 * 4).map(|x| (x * 3) % 7).collect();
            let (ra, rb) = (Relation::from_flat(arity, a), Relation::from_flat(arity, b));
            let u = ra.union(&rb);
            let d = ra.difference(&rb);
            for t in ra.iter().chain(rb.iter()) {
                assert!(u.contains(t));
                assert_eq!(d.contains(t), ra.contains(t) && !rb.contains(t));
            }
            assert_eq!(u.len(), d.len() + rb.len());
            let sorted: Vec<&[Value]> = u.iter().collect();
            assert!(sorted.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn parallel_disjoint_union_matches_merge() {
        let evens: Vec<Value> = (0..400_000u32).flat_map(|i| [i / 7, 2 * i]).collect();
        let odds: Vec<Value> = (0..300_000u32).flat_map(|i| [i / 5, 2 * i + 1]).collect();
        let (a, b) = (Relation::from_flat(2, evens), Relation::from_flat(2, odds));
        assert_eq!(a.union_disjoint(&b), a.union(&b));
        assert_eq!(b.union_disjoint(&a), a.union(&b));
    }

    #[test]
    fn nullary_relations() {
        let t = Relation::unit();
        let f = Relation::empty(0);
        assert!(t.contains(&[]) && !f.contains(&[]));
        assert_eq!(t.union(&f), t);
        assert_eq!(t.difference(&t), f);
        assert_eq!(t.iter().count(), 1);
    }
}
