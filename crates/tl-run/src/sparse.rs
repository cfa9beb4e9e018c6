//! Joins with a sparse relation without expanding it. A relation stored as tuples (one too
//! large to be dense, such as tokenized text `Tok(s, p, t)` over a 30 000-token vocabulary)
//! that a plan contracts with a dense tensor, or reduces, is used tuple by tuple: the dense
//! operand is gathered at each tuple and the products are scattered onto the result, so
//! `Emb[s, p, d] = Tok(s, p, t) W[t, d]` is a row lookup costing one row per token, not a
//! product with a one-hot matrix.
//!
//! While a backward pass is being recorded the relation is expanded as before, so gradients
//! see ordinary dense values.

use crate::engine::{Engine, Value};
use crate::error::RunError;
pub use crate::sparse_cache::{SparseCountCache, SparseIndexCache};
use std::sync::Arc;
use tl_backend::Calls;
use tl_backend::{ReduceOp, Tensor};
use tl_plan::{Graph, Op};
use tl_relation::Relation;
use tl_syntax::Span;

/// The row-major strides of a shape.
fn strides(shape: &[usize]) -> Vec<i64> {
    let mut out = vec![0i64; shape.len()];
    let mut acc = 1i64;
    for (s, &n) in out.iter_mut().zip(shape).rev() {
        *s = acc;
        acc *= n as i64;
    }
    out
}

impl Engine<'_> {
    /// The relation a node loads, if it is stored as tuples and the node can be used without
    /// expanding it: a plain load, read only as an operand of contractions or of sum / max
    /// reductions, while no backward pass is being recorded.
    pub fn sparse_loads(&self, graph: &Graph) -> Vec<Option<Relation>> {
        let mut out: Vec<Option<Relation>> = vec![None; graph.nodes.len()];
        if self.record {
            return out;
        }
        for (id, node) in graph.nodes.iter().enumerate() {
            let Op::Load { tensor } = node.op else {
                continue;
            };
            let rel = match self.values.get(tensor) {
                Some(Some(Value::Sparse(rel))) => rel.clone(),
                Some(Some(Value::Device(d))) => {
                    // Counted where it lives when every use is such a count; the empty
                    // relation only stands in for the load (see `device_count`).
                    let counted = graph.nodes.iter().all(|n| match &n.op {
                        Op::Reduce { input, .. } if *input == id => {
                            device_countable(graph, n).is_some()
                        }
                        op => !reads(op, id),
                    });
                    if counted {
                        Relation::empty(2)
                    } else {
                        match d.relation(self.backend) {
                            Ok(r) => r,
                            Err(_) => continue,
                        }
                    }
                }
                _ => continue,
            };
            let rel = &rel;
            let sparse_use = |op: &Op| match op {
                Op::Contract { a, b } | Op::ContractMap { a, b, .. } if *a == id || *b == id => {
                    *a != *b
                }
                Op::Reduce { input, op } if *input == id => {
                    matches!(op, ReduceOp::Sum | ReduceOp::Max)
                }
                _ => false,
            };
            let users: Vec<&Op> = graph
                .nodes
                .iter()
                .map(|n| &n.op)
                .filter(|op| match op {
                    Op::Map { inputs, .. } | Op::MapReduce { inputs, .. } => inputs.contains(&id),
                    Op::ContractMap { a, b, inputs, .. } => {
                        *a == id || *b == id || inputs.contains(&id)
                    }
                    Op::Contract { a, b } => *a == id || *b == id,
                    Op::Reduce { input, .. } | Op::Normalize { input, .. } => *input == id,
                    _ => false,
                })
                .collect();
            let in_contract_map_inputs = graph
                .nodes
                .iter()
                .any(|n| matches!(&n.op, Op::ContractMap { inputs, .. } if inputs.contains(&id)));
            if !users.is_empty() && users.iter().all(|op| sparse_use(op)) && !in_contract_map_inputs
            {
                out[id] = Some(rel.clone());
            }
        }
        out
    }

    /// The value of node `key.1` when it loads, contracts or reduces a relation kept sparse
    /// (`sparse` from [`Engine::sparse_loads`]); `None` for every other node. A sparse load
    /// itself gets a scalar placeholder, which only its sparse users see.
    pub fn sparse_node(
        &mut self,
        graph: &Graph,
        vals: &[Option<Tensor>],
        sparse: &[Option<Relation>],
        key: (usize, usize),
        dtype: tl_backend::DType,
        span: Span,
    ) -> Result<Option<Tensor>, RunError> {
        let id = key.1;
        let node = &graph.nodes[id];
        let is_sparse = |i: usize| sparse.get(i).is_some_and(Option::is_some);
        let value = |i: usize| crate::eval::value_of(vals, i, span);
        let err = |e| RunError::backend(e, span);
        if let Some(count) = self.device_count(graph, id, dtype, span)? {
            return Ok(Some(count));
        }
        match &node.op {
            Op::Load { .. } if is_sparse(id) => {
                self.backend.full(&[], 0.0, dtype).map(Some).map_err(err)
            }
            Op::Reduce { input, op } => match &sparse.get(*input) {
                Some(Some(rel)) => self
                    .sparse_reduce(
                        key,
                        rel,
                        &graph.nodes[*input].labels,
                        &node.labels,
                        &node.shape,
                        *op,
                        dtype,
                        span,
                    )
                    .map(Some),
                _ => Ok(None),
            },
            Op::Contract { a, b } | Op::ContractMap { a, b, .. } => {
                let (r, d) = match (is_sparse(*a), is_sparse(*b)) {
                    (true, _) => (*a, *b),
                    (false, true) => (*b, *a),
                    (false, false) => return Ok(None),
                };
                let dense = if is_sparse(d) {
                    match &graph.nodes[d].op {
                        Op::Load { tensor } => self.operand(*tensor, dtype, span)?,
                        _ => value(d)?,
                    }
                } else {
                    value(d)?
                };
                let Some(Some(rel)) = sparse.get(r) else {
                    return Ok(None);
                };
                let product = self.sparse_contract(
                    key,
                    rel,
                    &graph.nodes[r].labels,
                    &dense,
                    &graph.nodes[d].labels,
                    &node.labels,
                    &node.shape,
                    span,
                )?;
                let Op::ContractMap { expr, inputs, .. } = &node.op else {
                    return Ok(Some(product));
                };
                let mut views = vec![product];
                for &i in inputs {
                    let t = value(i)?;
                    let (perm, positions) =
                        crate::eval::alignment(&graph.nodes[i].labels, &node.labels);
                    views.push(
                        t.permuted(&perm)
                            .expanded_to_rank(&positions, node.labels.len()),
                    );
                }
                let refs: Vec<&Tensor> = views.iter().collect();
                self.backend
                    .map(expr, &refs, &node.shape, dtype)
                    .map(Some)
                    .map_err(err)
            }
            _ => Ok(None),
        }
    }

    /// `Σ rel[labels_r] · dense[labels_d]` onto `out_labels` (shape `out_shape`), without
    /// expanding `rel`: one gathered element of `dense` per tuple and per value of the dense
    /// operand's own variables, scattered (summed) onto the result.
    #[allow(clippy::too_many_arguments)]
    pub fn sparse_contract(
        &mut self,
        key: (usize, usize),
        rel: &Relation,
        rel_labels: &[usize],
        dense: &Tensor,
        dense_labels: &[usize],
        out_labels: &[usize],
        out_shape: &[usize],
        span: Span,
    ) -> Result<Tensor, RunError> {
        let dense_shape = dense.shape().to_vec();
        let cache_key = (key.0, key.1);
        let (gather, scatter) = match self.sparse_cache.get(&cache_key) {
            Some((of, g, s)) if of.shares_data(rel) => (g.clone(), s.clone()),
            _ => {
                let built = sparse_indices(
                    rel,
                    rel_labels,
                    dense_labels,
                    &dense_shape,
                    out_labels,
                    out_shape,
                );
                // A scatter that puts every point in its own cell, in order (a one-hot join
                // with no padding), is left out: the gathered values are the result.
                let numel: usize = out_shape.iter().product();
                let identity = built.1.len() == numel
                    && built.1.iter().enumerate().all(|(k, &i)| i == k as i64);
                let scatter = if identity { Vec::new() } else { built.1 };
                let built = (Arc::new(built.0), Arc::new(scatter));
                self.sparse_cache
                    .insert(cache_key, (rel.clone(), built.0.clone(), built.1.clone()));
                built
            }
        };
        let be = self.backend;
        let err = |e| RunError::backend(e, span);
        let picked = be
            .gather_shared(dense, &gather, &[gather.len()])
            .map_err(err)?;
        if scatter.is_empty() && !gather.is_empty() {
            if let Some(whole) = picked.reshaped(out_shape) {
                return Ok(whole);
            }
        }
        be.scatter_shared(&picked, &scatter, out_shape, ReduceOp::Sum)
            .map_err(err)
    }

    /// A sum or max of a relation's cells onto `out_labels`, without expanding it: each tuple
    /// adds 1 (sum) or marks 1 (max) at the cell of its kept variables. The counts are made on
    /// the host in 64-bit integers, so they are exact whatever the element type, and stored in
    /// `dtype` once at the end; the result is cached per relation value, so an evaluation over
    /// unchanged data uploads nothing (and can be recorded).
    #[allow(clippy::too_many_arguments)]
    pub fn sparse_reduce(
        &mut self,
        key: (usize, usize),
        rel: &Relation,
        rel_labels: &[usize],
        out_labels: &[usize],
        out_shape: &[usize],
        op: ReduceOp,
        dtype: tl_backend::DType,
        span: Span,
    ) -> Result<Tensor, RunError> {
        let cache_key = (key.0, key.1, dtype);
        if let Some((of, hit)) = self.sparse_counts.get(&cache_key) {
            if of.shares_data(rel) {
                return Ok(hit.clone());
            }
        }
        let columns: Vec<usize> = out_labels
            .iter()
            .map(|l| rel_labels.iter().position(|r| r == l).unwrap_or(0))
            .collect();
        let mut counts = cell_counts(rel, &columns, out_shape).ok_or_else(|| {
            RunError::backend(
                tl_backend::BackendError::OutOfMemory {
                    device: "host".into(),
                    requested: out_shape.iter().fold(8usize, |a, &e| a.saturating_mul(e)),
                    free: 0,
                },
                span,
            )
        })?;
        if op == ReduceOp::Max {
            counts.iter_mut().for_each(|c| *c = (*c).min(1));
        }
        let data: Vec<f64> = counts.into_iter().map(|c| c as f64).collect();
        let host = tl_backend::HostTensor::from_f64(out_shape.to_vec(), data, dtype);
        let t = self
            .backend
            .upload(&host)
            .map_err(|e| RunError::backend(e, span))?;
        self.sparse_counts
            .insert(cache_key, (rel.clone(), t.clone()));
        Ok(t)
    }
}

/// Whether `op` reads node `id`.
fn reads(op: &Op, id: usize) -> bool {
    match op {
        Op::Map { inputs, .. } | Op::MapReduce { inputs, .. } => inputs.contains(&id),
        Op::ContractMap { a, b, inputs, .. } => *a == id || *b == id || inputs.contains(&id),
        Op::Contract { a, b } => *a == id || *b == id,
        Op::Reduce { input, .. } | Op::Normalize { input, .. } => *input == id,
        _ => false,
    }
}

/// For a sum or max of a loaded binary relation that keeps nothing or only its first column,
/// the load's node and whether the first column is kept.
fn device_countable(graph: &Graph, node: &tl_plan::Node) -> Option<(usize, bool)> {
    let Op::Reduce { input, op } = &node.op else {
        return None;
    };
    if !matches!(op, ReduceOp::Sum | ReduceOp::Max) {
        return None;
    }
    let load = graph.nodes.get(*input)?;
    if !matches!(load.op, Op::Load { .. }) || load.labels.len() != 2 {
        return None;
    }
    match node.labels[..] {
        [] => Some((*input, false)),
        [l] if l == load.labels[0] => Some((*input, true)),
        _ => None,
    }
}

impl Engine<'_> {
    /// The value of node `id` when it counts a relation held on the device
    /// ([`device_countable`]): the total is known, per-row counts come from the device.
    fn device_count(
        &self,
        graph: &Graph,
        id: usize,
        dtype: tl_backend::DType,
        span: Span,
    ) -> Result<Option<Tensor>, RunError> {
        let node = &graph.nodes[id];
        let Some((load, by_row)) = device_countable(graph, node) else {
            return Ok(None);
        };
        let Op::Load { tensor } = graph.nodes[load].op else {
            return Ok(None);
        };
        let Some(Some(Value::Device(d))) = self.values.get(tensor) else {
            return Ok(None);
        };
        let Some(device) = self.backend.paths() else {
            return Ok(None);
        };
        let max = matches!(
            node.op,
            Op::Reduce {
                op: ReduceOp::Max,
                ..
            }
        );
        let counts: Vec<u64> = if by_row {
            device
                .row_counts(&d.bits)
                .map_err(|e| RunError::backend(e, span))?
        } else {
            vec![d.bits.tuples]
        };
        let data: Vec<f64> = counts
            .iter()
            .map(|&c| if max { c.min(1) as f64 } else { c as f64 })
            .collect();
        let host = tl_backend::HostTensor::from_f64(node.shape.clone(), data, dtype);
        self.backend
            .upload(&host)
            .map(Some)
            .map_err(|e| RunError::backend(e, span))
    }
}

/// How many tuples of `rel` fall in each cell of a row-major tensor of `shape`, whose axis k
/// is the relation's column `columns[k]` (tuples outside the shape are not counted); `None`
/// when the counts cannot be allocated.
fn cell_counts(rel: &Relation, columns: &[usize], shape: &[usize]) -> Option<Vec<u64>> {
    let numel = shape.iter().try_fold(1usize, |a, &e| a.checked_mul(e))?;
    let mut counts: Vec<u64> = Vec::new();
    counts.try_reserve_exact(numel).ok()?;
    counts.resize(numel, 0);
    if columns.is_empty() {
        if let Some(c) = counts.first_mut() {
            *c = rel.len() as u64;
        }
        return Some(counts);
    }
    for tuple in rel.iter() {
        let mut flat = 0usize;
        let mut inside = true;
        for (&c, &e) in columns.iter().zip(shape) {
            let v = tuple.get(c).copied().unwrap_or(0) as usize;
            inside &= v < e;
            flat = flat * e + v;
        }
        if let (true, Some(cell)) = (inside, counts.get_mut(flat)) {
            *cell += 1;
        }
    }
    Some(counts)
}

/// The gather indices (into `dense`) and scatter indices (into the result) of a sparse join:
/// one point per tuple and per value of the variables only the dense operand has.
fn sparse_indices(
    rel: &Relation,
    rel_labels: &[usize],
    dense_labels: &[usize],
    dense_shape: &[usize],
    out_labels: &[usize],
    out_shape: &[usize],
) -> (Vec<i64>, Vec<i64>) {
    // The dense operand's own variables, with their extents, in its axis order.
    let own: Vec<(usize, usize)> = dense_labels
        .iter()
        .zip(dense_shape)
        .filter(|(l, _)| !rel_labels.contains(l))
        .map(|(&l, &e)| (l, e))
        .collect();
    let own_count: usize = own.iter().map(|&(_, e)| e).product();
    let (d_strides, o_strides) = (strides(dense_shape), strides(out_shape));
    let mut gather = Vec::with_capacity(rel.len() * own_count);
    let mut scatter = Vec::with_capacity(rel.len() * own_count);
    // Where each variable's value comes from: a tuple column, or a position among `own`.
    let source = |l: usize| -> (bool, usize) {
        match rel_labels.iter().position(|&r| r == l) {
            Some(k) => (true, k),
            None => (false, own.iter().position(|&(o, _)| o == l).unwrap_or(0)),
        }
    };
    let d_src: Vec<(bool, usize)> = dense_labels.iter().map(|&l| source(l)).collect();
    let o_src: Vec<(bool, usize)> = out_labels.iter().map(|&l| source(l)).collect();
    let mut point = vec![0usize; own.len()];
    for tuple in rel.iter() {
        point.iter_mut().for_each(|p| *p = 0);
        for _ in 0..own_count {
            let value = |(from_tuple, k): (bool, usize)| -> i64 {
                if from_tuple {
                    i64::from(tuple.get(k).copied().unwrap_or(0))
                } else {
                    point[k] as i64
                }
            };
            gather.push(
                d_src
                    .iter()
                    .zip(&d_strides)
                    .map(|(&s, st)| value(s) * st)
                    .sum(),
            );
            scatter.push(
                o_src
                    .iter()
                    .zip(&o_strides)
                    .map(|(&s, st)| value(s) * st)
                    .sum(),
            );
            for k in (0..own.len()).rev() {
                point[k] += 1;
                if point[k] < own[k].1 {
                    break;
                }
                point[k] = 0;
            }
        }
    }
    (gather, scatter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_hot_join_gathers_rows_and_scatters_them_to_their_cells() {
        // Tok(s, t) over 2 sentences: s0 -> t2, s1 -> t0; W[t, d] is 3 x 2.
        let rel = Relation::from_flat(2, vec![0, 2, 1, 0]);
        let (g, s) = sparse_indices(&rel, &[0, 1], &[1, 2], &[3, 2], &[0, 2], &[2, 2]);
        assert_eq!(g, vec![4, 5, 0, 1]);
        assert_eq!(s, vec![0, 1, 2, 3]);
    }

    #[test]
    fn variables_only_the_relation_has_are_summed_by_the_scatter() {
        // R(i, j) with out [j]: both tuples with j = 1 land on cell 1.
        let rel = Relation::from_flat(2, vec![0, 1, 2, 1]);
        let (g, s) = sparse_indices(&rel, &[0, 1], &[5], &[3], &[1, 5], &[2, 3]);
        assert_eq!(g.len(), 6);
        assert_eq!(s, vec![3, 4, 5, 3, 4, 5]);
    }
}
