//! Indexes: a relation re-sorted so that a chosen set of columns (the key) comes first.
//!
//! A join step looks up the rows of a literal whose bound columns equal the current binding.
//! With the key columns leading, those rows form one contiguous, binary-searchable range. When
//! the key is already a prefix of the column order (say `E(y, z)` looked up by `y`), the index
//! is the relation itself and costs nothing to build. Other keys cost one permuted copy, which
//! [`IndexCache`] keeps for the whole stratum evaluation when the relation is static, and for
//! one round when it is a version (`full`, `old`, `delta`) of a recursive relation.

use crate::relation::{Relation, Value};
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
}

/// A relation whose rows are sorted by the key columns first.
#[derive(Debug)]
pub(crate) struct Index<'a> {
    rows: RelRef<'a>,
    /// Number of leading key columns; the others follow in their original order.
    key_len: usize,
}

impl<'a> Index<'a> {
    /// Builds an index of `rel` keyed on `key_cols` (sorted, distinct column positions).
    pub(crate) fn build(rel: RelRef<'a>, key_cols: &[usize]) -> Self {
        let mut columns = key_cols.to_vec();
        columns.extend((0..rel.arity()).filter(|c| !key_cols.contains(c)));
        let identity = columns.iter().enumerate().all(|(i, &c)| i == c);
        let rows = if identity {
            rel
        } else {
            RelRef::Shared(Arc::new(rel.permute(&columns)))
        };
        Index {
            rows,
            key_len: key_cols.len(),
        }
    }

    /// The non-key parts of the rows whose key columns equal `key`, in sorted order.
    pub(crate) fn lookup<'s>(&'s self, key: &[Value]) -> impl Iterator<Item = &'s [Value]> + 's {
        let (lo, hi) = self.range(key);
        (lo..hi).map(move |i| self.rest_row(i))
    }

    /// Row positions `[lo, hi)` whose key columns equal `key`.
    pub(crate) fn range(&self, key: &[Value]) -> (usize, usize) {
        if key.is_empty() {
            (0, self.rows.len())
        } else {
            self.rows.prefix_range(key)
        }
    }

    /// The non-key part of the row at position `i` (empty when out of range).
    pub(crate) fn rest_row(&self, i: usize) -> &[Value] {
        self.rows
            .row(i)
            .and_then(|r| r.get(self.key_len..))
            .unwrap_or(&[])
    }

    /// The key part of the row at position `i` (empty when out of range).
    pub(crate) fn key_row(&self, i: usize) -> &[Value] {
        self.rows
            .row(i)
            .and_then(|r| r.get(..self.key_len))
            .unwrap_or(&[])
    }
}

/// Indexes built during one stratum evaluation, keyed by source relation and key columns.
#[derive(Default)]
pub(crate) struct IndexCache<'a> {
    map: HashMap<(SourceId, Vec<usize>), Arc<Index<'a>>>,
}

impl<'a> IndexCache<'a> {
    /// The index of `rel` (identified by `id`) on `key_cols`, built on first use.
    pub(crate) fn get(
        &mut self,
        id: SourceId,
        rel: RelRef<'a>,
        key_cols: &[usize],
    ) -> Arc<Index<'a>> {
        self.map
            .entry((id, key_cols.to_vec()))
            .or_insert_with(|| Arc::new(Index::build(rel, key_cols)))
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
                SourceId::Full(s) => Some(((SourceId::Old(s), cols), idx)),
                SourceId::Old(_) | SourceId::Delta(_) => None,
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
        let got: Vec<&[Value]> = idx.lookup(&[5]).collect();
        assert_eq!(got, vec![&[1, 7][..], &[2, 8], &[4, 7]]);
        assert_eq!(idx.range(&[6]), (3, 4));
        assert_eq!(idx.lookup(&[0]).count(), 0);
    }

    #[test]
    fn prefix_key_borrows() {
        let rel = Relation::from_flat(2, vec![1, 2, 1, 3, 2, 4]);
        let idx = Index::build(RelRef::Static(&rel), &[0]);
        assert!(matches!(idx.rows, RelRef::Static(_)));
        assert_eq!(idx.lookup(&[1]).count(), 2);
    }
}
