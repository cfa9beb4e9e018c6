//! What joins and reductions with sparse relations compute once per relation value and keep
//! on the engine (see `sparse`).

use std::collections::HashMap;
use std::sync::Arc;
use tl_backend::Tensor;
use tl_relation::Relation;

/// Gather and scatter index vectors of one sparse join (an empty scatter vector: each point
/// lands in its own cell, in order), keyed by (plan address, node) and kept with the relation
/// value they were built from (which the entry keeps alive, so a later relation cannot take
/// its place unnoticed): a join over unchanged data is indexed once.
pub type SparseIndexCache = HashMap<(usize, usize), (Relation, Arc<Vec<i64>>, Arc<Vec<i64>>)>;

/// Sums and maxima of sparse relations
/// ([`Engine::sparse_reduce`](crate::Engine::sparse_reduce)), keyed like [`SparseIndexCache`]
/// and by the element type they are stored in.
pub type SparseCountCache = HashMap<(usize, usize, tl_backend::DType), (Relation, Tensor)>;
