//! [`Rows`]: a binary relation as one sorted list of second values per first value.
//!
//! A recursion over a large domain with a sparse result (same generation over a deep tree:
//! 5·10^5 pairs out of 4·10^8 cells) is too sparse for bits and runs for hundreds of rounds,
//! each adding a few tuples. Sorted tuples would be merged into a new copy of everything known
//! every round; here a round's candidates are sorted by first value (counting, no comparison
//! sort), and each first value's few candidates are merged into its own list, so a round
//! costs what it adds, not what is known. The lists are also the index on the first column:
//! the second values of one first value are one contiguous sorted slice.

use crate::relation::{Relation, Value};
use rayon::prelude::*;

/// A binary relation held as sorted, distinct second values per first value.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rows {
    rows: Vec<Vec<Value>>,
    count: usize,
}

impl Rows {
    /// The relation `rel` (binary, sorted) with room for first values below `extent`.
    pub(crate) fn new(rel: &Relation, extent: u32) -> Self {
        let mut rows = vec![Vec::new(); extent as usize];
        for t in rel.values().chunks_exact(2) {
            if let Some(row) = rows.get_mut(t[0] as usize) {
                row.push(t[1]);
            }
        }
        Rows {
            rows,
            count: rel.len(),
        }
    }

    /// Number of tuples.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Bytes held (each list's values and header).
    pub(crate) fn bytes(&self) -> usize {
        self.count * 4 + self.rows.len() * std::mem::size_of::<Vec<Value>>()
    }

    /// The second values of the tuples whose first value is `v`, sorted.
    #[inline]
    pub(crate) fn row(&self, v: Value) -> &[Value] {
        self.rows.get(v as usize).map_or(&[], Vec::as_slice)
    }

    /// Adds the candidate pairs of `parts` (flat, possibly repeated or already held) and
    /// returns the pairs that were new, sorted. A round of few candidates costs what they
    /// cost (a sort of them alone); a large one a counting pass over the rows, in parallel.
    pub(crate) fn insert(&mut self, parts: &[Vec<Value>]) -> Vec<Value> {
        let total: usize = parts.iter().map(|p| p.len() / 2).sum();
        let n = self.rows.len();
        let mut out = Vec::new();
        if total < n {
            // Pairs as one 64-bit key each (first value high), so the sort compares integers.
            let mut cand: Vec<u64> = parts
                .iter()
                .flat_map(|p| p.as_chunks::<2>().0.iter())
                .filter(|t| (t[0] as usize) < n)
                .map(|t| u64::from(t[0]) << 32 | u64::from(t[1]))
                .collect();
            cand.sort_unstable();
            cand.dedup();
            let (mut values, mut new) = (Vec::new(), Vec::new());
            for group in cand.chunk_by(|a, b| a >> 32 == b >> 32) {
                let r = (group[0] >> 32) as Value;
                values.clear();
                values.extend(group.iter().map(|&t| t as Value));
                if let Some(row) = self.rows.get_mut(r as usize) {
                    new.clear();
                    merge_new(row, &values, &mut new);
                    for &v in &new {
                        out.push(r);
                        out.push(v);
                    }
                }
            }
        } else {
            // Counting sort of the candidates by first value.
            let mut starts = vec![0usize; n + 1];
            for t in parts.iter().flat_map(|p| p.chunks_exact(2)) {
                if let Some(s) = starts.get_mut(t[0] as usize + 1) {
                    *s += 1;
                }
            }
            for k in 0..n {
                starts[k + 1] += starts[k];
            }
            let mut grouped = vec![0 as Value; starts[n]];
            let mut fill = starts.clone();
            for t in parts.iter().flat_map(|p| p.chunks_exact(2)) {
                if let Some(f) = fill.get_mut(t[0] as usize) {
                    if let Some(slot) = grouped.get_mut(*f) {
                        *slot = t[1];
                    }
                    *f += 1;
                }
            }
            // Rows are independent: large rounds merge them in parallel.
            let merge = |(r, row): (usize, &mut Vec<Value>)| {
                let cand = grouped.get(starts[r]..starts[r + 1]).unwrap_or(&[]);
                if cand.is_empty() {
                    return None;
                }
                let mut cand = cand.to_vec();
                cand.sort_unstable();
                cand.dedup();
                let mut new = Vec::new();
                merge_new(row, &cand, &mut new);
                (!new.is_empty()).then_some((r as Value, new))
            };
            let fresh: Vec<(Value, Vec<Value>)> = if total > 1 << 16 {
                self.rows
                    .par_iter_mut()
                    .enumerate()
                    .filter_map(merge)
                    .collect()
            } else {
                self.rows.iter_mut().enumerate().filter_map(merge).collect()
            };
            for (r, vs) in fresh {
                for v in vs {
                    out.push(r);
                    out.push(v);
                }
            }
        }
        self.count += out.len() / 2;
        out
    }

    /// The tuples as a sorted relation.
    pub(crate) fn to_relation(&self) -> Relation {
        let mut data = Vec::with_capacity(2 * self.count);
        for (r, row) in self.rows.iter().enumerate() {
            for &v in row {
                data.push(r as Value);
                data.push(v);
            }
        }
        Relation::from_sorted_flat(2, data)
    }
}

/// Merges sorted distinct `cand` into sorted distinct `row` in place (from the back, so
/// nothing moves twice and no second list is allocated), appending to `new` the values of
/// `cand` that `row` did not hold.
fn merge_new(row: &mut Vec<Value>, cand: &[Value], new: &mut Vec<Value>) {
    let start = new.len();
    if row.is_empty() {
        row.extend_from_slice(cand);
        new.extend_from_slice(cand);
        return;
    }
    new.extend(cand.iter().filter(|c| row.binary_search(c).is_err()));
    let added = new.get(start..).unwrap_or(&[]);
    if added.is_empty() {
        return;
    }
    let (m, k) = (row.len(), added.len());
    row.resize(m + k, 0);
    let (mut i, mut j, mut w) = (m, k, m + k);
    while j > 0 {
        w -= 1;
        if i > 0 && row[i - 1] > added[j - 1] {
            row[w] = row[i - 1];
            i -= 1;
        } else {
            row[w] = added[j - 1];
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insertion_reports_exactly_the_new_pairs_in_order() {
        let start = Relation::from_flat(2, vec![0, 5, 2, 1, 2, 7]);
        let mut rows = Rows::new(&start, 4);
        let fresh = rows.insert(&[vec![2, 7, 3, 0, 2, 3], vec![0, 5, 2, 3, 0, 1]]);
        assert_eq!(fresh, vec![0, 1, 2, 3, 3, 0]);
        assert_eq!(rows.len(), 6);
        assert_eq!(rows.row(2), &[1, 3, 7]);
        assert_eq!(rows.row(9), &[] as &[Value]);
        assert_eq!(
            rows.to_relation(),
            Relation::from_flat(2, vec![0, 5, 2, 1, 2, 7, 0, 1, 2, 3, 3, 0])
        );
        assert!(rows.insert(&[vec![2, 7]]).is_empty());
        // A large round (more candidates than rows) takes the counting path.
        let many: Vec<Value> = (0..64).flat_map(|i| [i % 4, (i * 7) % 11]).collect();
        let before = rows.len();
        let fresh = rows.insert(std::slice::from_ref(&many));
        let want = Relation::from_flat(2, many).difference(&start);
        assert_eq!(fresh.len() / 2 + before, rows.len());
        for t in want.iter() {
            assert!(rows.row(t[0]).contains(&t[1]));
        }
    }
}
