//! Indexes: a relation re-sorted so that a chosen set of columns (the key) comes first.
//!
//! A join step looks up the rows of a literal whose bound columns equal the current binding.
//! With the key columns leading, those rows form one contiguous, binary-searchable range. When
//! the key is already a prefix of the column order (say `E(y, z)` looked up by `y`), the index
//! is the relation itself and costs nothing to build. Other keys cost one permuted copy, which
//! [`IndexCache`] keeps for the whole stratum evaluation when the relation is static, and for
//! one round when it is a version (`full`, `old`, `delta`) of a recursive relation.

use crate::bits::Cells;
use crate::join::{BodySource, Live};
use crate::relation::{Relation, Value};
use crate::rows::Rows;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;

/// A relation borrowed from the caller's slots or shared among the versions of a recursive one.
#[derive(Clone, Debug)]
pub(crate) enum RelRef<'a> {
    /// A read-only input slot, alive for the whole evaluation.
    Static(&'a Relation),
    /// A version of a recursive relation owned by the fixpoint state.
    Shared(Arc<Relation>),
}

impl Deref for RelRef<'_> {
    type Target = Relation;
    fn deref(&self) -> &Relation {
        match self {
            RelRef::Static(r) => r,
            RelRef::Shared(r) => r,
        }
    }
}

/// Which relation an index was built from; the cache key together with the key columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SourceId {
    /// A read-only slot.
    Static(usize),
    /// The current `full` of a recursive slot.
    Full(usize),
    /// `full` before the last delta was added.
    Old(usize),
    /// The last round's delta.
    Delta(usize),
    /// A recursive slot held as bits, read as it grows (its index stays valid across rounds;
    /// a sorted copy of it does not, and is cached under `Full`).
    Live(usize),
}

/// A relation arranged for lookups by the key columns (the bound columns of a join step).
#[derive(Debug)]
pub(crate) enum Index<'a> {
    /// Rows sorted with the key columns first: the rows of one key are one contiguous range.
    Sorted {
        rows: RelRef<'a>,
        /// Number of leading key columns; the others follow in their original order.
        key_len: usize,
        /// For a one-column key over a small domain, where each key's rows start
        /// (`offsets[k]..offsets[k + 1]`), so a lookup costs no search.
        offsets: Option<Vec<usize>>,
        /// For a binary relation keyed on one column, its other column in row order: the
        /// values across from one key are one contiguous slice ([`Index::targets`]).
        targets: Vec<Value>,
    },
    /// A recursive relation held as bits ([`Cells`]), keyed on its first columns.
    Bits { cells: Arc<Cells> },
    /// A binary recursive relation held as rows ([`Rows`]), keyed on its first column.
    Rows { rows: Arc<Rows> },
}

impl std::fmt::Debug for Cells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cells({} tuples)", self.len())
    }
}

impl<'a> Index<'a> {
    /// Builds an index of `rel` keyed on `key_cols` (sorted, distinct column positions).
    pub(crate) fn build(rel: RelRef<'a>, key_cols: &[usize]) -> Self {
        let mut columns = key_cols.to_vec();
        columns.extend((0..rel.arity()).filter(|c| !key_cols.contains(c)));
        let identity = columns.iter().enumerate().all(|(i, &c)| i == c);
        // Unsorted rows can be scanned (an empty key) but not searched.
        let rows = if identity && (rel.is_sorted() || key_cols.is_empty()) {
            rel
        } else {
            RelRef::Shared(Arc::new(rel.permute(&columns)))
        };
        let offsets = (key_cols.len() == 1).then(|| key_offsets(&rows)).flatten();
        let targets = if offsets.is_some() && rows.arity() == 2 {
            rows.values().iter().skip(1).step_by(2).copied().collect()
        } else {
            Vec::new()
        };
        Index::Sorted {
            rows,
            key_len: key_cols.len(),
            offsets,
            targets,
        }
    }

    /// For a binary relation indexed on one column over a small domain, the values of the
    /// other column across from `key`, in order (`None` for other indexes).
    #[inline]
    pub(crate) fn targets(&self, key: Value) -> Option<&[Value]> {
        match self {
            Index::Sorted {
                offsets: Some(offsets),
                targets,
                ..
            } if !targets.is_empty() => {
                let k = key as usize;
                Some(match (offsets.get(k), offsets.get(k + 1)) {
                    (Some(&a), Some(&b)) => targets.get(a..b).unwrap_or(&[]),
                    _ => &[],
                })
            }
            Index::Rows { rows } => Some(rows.row(key)),
            _ => None,
        }
    }

    /// Row positions `[lo, hi)` whose key columns equal `key` (sorted indexes; a bitset
    /// index has no positions and answers an empty range).
    pub(crate) fn range(&self, key: &[Value]) -> (usize, usize) {
        let Index::Sorted { rows, offsets, .. } = self else {
            return (0, 0);
        };
        if key.is_empty() {
            return (0, rows.len());
        }
        if let (Some(offsets), [k]) = (offsets, key) {
            let k = *k as usize;
            return match (offsets.get(k), offsets.get(k + 1)) {
                (Some(&a), Some(&b)) => (a, b),
                _ => (0, 0),
            };
        }
        rows.prefix_range(key)
    }

    /// The non-key part of the row at position `i` (empty when out of range).
    pub(crate) fn rest_row(&self, i: usize) -> &[Value] {
        match self {
            Index::Sorted { rows, key_len, .. } => {
                rows.row(i).and_then(|r| r.get(*key_len..)).unwrap_or(&[])
            }
            Index::Bits { .. } | Index::Rows { .. } => &[],
        }
    }

    /// The key part of the row at position `i` (empty when out of range).
    pub(crate) fn key_row(&self, i: usize) -> &[Value] {
        match self {
            Index::Sorted { rows, key_len, .. } => {
                rows.row(i).and_then(|r| r.get(..*key_len)).unwrap_or(&[])
            }
            Index::Bits { .. } | Index::Rows { .. } => &[],
        }
    }
}

/// Where each key's rows start, for rows sorted by a one-column key whose largest value is
/// not much more than the row count (else `None`: a binary search is as good).
fn key_offsets(rows: &Relation) -> Option<Vec<usize>> {
    let n = rows.len();
    let arity = rows.arity();
    let values = rows.values();
    let last = values.get(n.checked_sub(1)? * arity).copied()? as usize;
    if last > 4 * n + 1024 {
        return None;
    }
    let mut offsets = vec![0usize; last + 2];
    for i in 0..n {
        if let Some(&k) = values.get(i * arity) {
            if let Some(o) = offsets.get_mut(k as usize + 1) {
                *o += 1;
            }
        }
    }
    for k in 0..=last {
        offsets[k + 1] += offsets[k];
    }
    Some(offsets)
}

/// Indexes built during one stratum evaluation, keyed by source relation and key columns.
#[derive(Default)]
pub(crate) struct IndexCache<'a> {
    map: HashMap<(SourceId, Vec<usize>), Arc<Index<'a>>>,
}

impl<'a> IndexCache<'a> {
    /// The index of a body source on `key_cols`, built on first use. A source held as bits
    /// is looked up in place when the key is a prefix of its columns, one held as rows when
    /// the key is its first column; otherwise through a sorted copy.
    pub(crate) fn get(&mut self, src: &BodySource<'a>, key_cols: &[usize]) -> Arc<Index<'a>> {
        let prefix = key_cols.iter().enumerate().all(|(i, &c)| i == c);
        self.map
            .entry((src.id, key_cols.to_vec()))
            .or_insert_with(|| {
                Arc::new(match &src.live {
                    Some(Live::Bits(cells)) if prefix => Index::Bits {
                        cells: cells.clone(),
                    },
                    Some(Live::Rows(rows)) if key_cols == [0] => Index::Rows { rows: rows.clone() },
                    Some(Live::Bits(cells)) => {
                        Index::build(RelRef::Shared(Arc::new(cells.to_relation())), key_cols)
                    }
                    Some(Live::Rows(rows)) => {
                        Index::build(RelRef::Shared(Arc::new(rows.to_relation())), key_cols)
                    }
                    None => Index::build(src.rel.clone(), key_cols),
                })
            })
            .clone()
    }

    /// Starts a new round: `full` indexes become `old` ones (the old version of the next round
    /// is the full version of this one); delta and stale old indexes are dropped.
    pub(crate) fn next_round(&mut self) {
        let map = std::mem::take(&mut self.map);
        self.map = map
            .into_iter()
            .filter_map(|((id, cols), idx)| match id {
                SourceId::Static(_) => Some(((id, cols), idx)),
                SourceId::Live(_) if matches!(*idx, Index::Bits { .. }) => Some(((id, cols), idx)),
                // Rows change between rounds (in place, once nothing else holds them).
                SourceId::Full(s) => Some(((SourceId::Old(s), cols), idx)),
                SourceId::Old(_) | SourceId::Delta(_) | SourceId::Live(_) => None,
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_on_non_prefix_key() {
        let rel = Relation::from_flat(3, vec![1, 5, 7, 2, 5, 8, 3, 6, 9, 4, 5, 7]);
        let idx = Index::build(RelRef::Static(&rel), &[1]);
        let (lo, hi) = idx.range(&[5]);
        let got: Vec<&[Value]> = (lo..hi).map(|i| idx.rest_row(i)).collect();
        assert_eq!(got, vec![&[1, 7][..], &[2, 8], &[4, 7]]);
        assert_eq!(idx.range(&[6]), (3, 4));
        assert_eq!(idx.range(&[0]), (0, 0));
    }

    #[test]
    fn prefix_key_borrows() {
        let rel = Relation::from_flat(2, vec![1, 2, 1, 3, 2, 4]);
        let idx = Index::build(RelRef::Static(&rel), &[0]);
        assert!(matches!(
            idx,
            Index::Sorted {
                rows: RelRef::Static(_),
                ..
            }
        ));
        assert_eq!(idx.range(&[1]), (0, 2));
        assert_eq!(idx.range(&[2]), (2, 3));
        assert_eq!(idx.range(&[7]), (0, 0));
    }
}
