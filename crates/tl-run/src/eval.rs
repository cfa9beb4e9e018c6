//! Evaluates one equation plan on the backend: nodes in order, each input viewed (permuted and
//! broadcast, no copies) onto the node's labels, and the root laid onto the target's shape.

use crate::engine::Engine;
use crate::error::RunError;
use std::sync::Arc;
use tl_backend::Calls;
use tl_backend::{HostData, HostTensor, Tensor};
use tl_check::{Index, VarInfo};
use tl_plan::{EquationPlan, Graph, Op, Placement};
use tl_syntax::Span;

/// Row-major points over `extents`, calling `f` with each point's coordinates.
pub(crate) fn for_each_point(extents: &[usize], mut f: impl FnMut(&[i64])) {
    let n: usize = extents.iter().product();
    let mut point = vec![0i64; extents.len()];
    for _ in 0..n {
        f(&point);
        for k in (0..extents.len()).rev() {
            point[k] += 1;
            if (point[k] as usize) < extents[k] {
                break;
            }
            point[k] = 0;
        }
    }
}

/// For each point over `labels`, the flat index into a tensor of `shape` that `indices` pick,
/// or -1 when it falls outside.
pub fn index_vector(
    vars: &[VarInfo],
    labels: &[usize],
    indices: &[Index],
    shape: &[usize],
) -> Vec<i64> {
    let extents: Vec<usize> = labels.iter().map(|&v| vars[v].extent).collect();
    let mut assignment = vec![0i64; vars.len()];
    let mut out = Vec::with_capacity(extents.iter().product());
    for_each_point(&extents, |point| {
        for (&v, &x) in labels.iter().zip(point) {
            assignment[v] = x;
        }
        let mut flat = 0i64;
        let mut inside = true;
        for (ix, &e) in indices.iter().zip(shape) {
            let i = match ix {
                Index::Var(v) => assignment[*v],
                Index::Const(c) => *c,
                Index::Expr(expr) => expr.eval(&assignment).unwrap_or(-1),
                Index::Slice { var, start } => start + assignment[*var],
                Index::Symbol(..) => -1,
            };
            inside &= i >= 0 && (i as usize) < e;
            flat = flat * e as i64 + i;
        }
        out.push(if inside { flat } else { -1 });
    });
    out
}

/// Where axis k of a tensor labelled `from` goes among `to`, as a permutation to apply and the
/// target positions (both sorted by target position).
pub(crate) fn alignment(from: &[usize], to: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<(usize, usize)> = from
        .iter()
        .enumerate()
        .map(|(k, l)| (to.iter().position(|t| t == l).unwrap_or(usize::MAX), k))
        .collect();
    order.sort_unstable();
    (
        order.iter().map(|&(_, k)| k).collect(),
        order.iter().map(|&(p, _)| p).collect(),
    )
}

/// Labels as the backend takes them.
fn labels32(labels: &[usize]) -> Vec<u32> {
    labels.iter().map(|&l| l as u32).collect()
}

/// The value computed for node `i`.
pub(crate) fn value_of(vals: &[Option<Tensor>], i: usize, span: Span) -> Result<Tensor, RunError> {
    vals.get(i).cloned().flatten().ok_or_else(|| {
        RunError::backend(
            tl_backend::BackendError::Shape {
                op: "plan",
                detail: format!("node %{i} has no value"),
            },
            span,
        )
    })
}

/// The values of `inputs`, each permuted and broadcast onto the labels `onto`.
fn aligned(
    graph: &Graph,
    vals: &[Option<Tensor>],
    inputs: &[usize],
    onto: &[usize],
    span: Span,
) -> Result<Vec<Tensor>, RunError> {
    inputs
        .iter()
        .map(|&i| {
            let t = value_of(vals, i, span)?;
            let labels = &graph.nodes[i].labels;
            if t.rank() != labels.len() || labels.iter().any(|l| !onto.contains(l)) {
                return Err(RunError::backend(
                    tl_backend::BackendError::Shape {
                        op: "plan",
                        detail: format!(
                            "node %{i} has rank {} but {} labels",
                            t.rank(),
                            labels.len()
                        ),
                    },
                    span,
                ));
            }
            let (perm, positions) = alignment(&graph.nodes[i].labels, onto);
            Ok(t.permuted(&perm).expanded_to_rank(&positions, onto.len()))
        })
        .collect()
}

impl Engine<'_> {
    /// A pairwise product ([`tl_backend::Calls::contract`]); in a 16-bit program it is
    /// stored in the program's type straight from the GEMM (no f32 result to convert).
    pub(crate) fn multiply(
        &self,
        a: &Tensor,
        la: &[u32],
        b: &Tensor,
        lb: &[u32],
        lo: &[u32],
        dtype: tl_backend::DType,
    ) -> Result<Tensor, tl_backend::BackendError> {
        tl_backend::stored_product(self.backend, (a, la), (b, lb), lo, dtype)
    }

    /// The index vector of node `node` of `plan`'s fused or unfused graph (`usize::MAX`: its
    /// placement), built once per engine: the one place that keys the index cache.
    pub(crate) fn cached_index(
        &mut self,
        plan: &EquationPlan,
        fused: bool,
        node: usize,
        build: impl FnOnce() -> Vec<i64>,
    ) -> Arc<Vec<i64>> {
        // The low bit tells the fused graph's nodes from the unfused one's.
        let key = (2 * plan.id + usize::from(fused), node);
        self.index_cache
            .entry(key)
            .or_insert_with(|| Arc::new(build()))
            .clone()
    }

    /// Evaluates a plan; the result has the target's shape. While `self.record` is on, every
    /// node's value is kept in `self.traces` for the backward pass.
    pub fn evaluate(&mut self, plan: &EquationPlan) -> Result<Tensor, RunError> {
        if self.profile.is_none() {
            return self.evaluate_now(plan);
        }
        let sync = |e: &Self| {
            e.backend
                .synchronize()
                .map_err(|err| RunError::backend(err, plan.span))
        };
        sync(self)?;
        let start = std::time::Instant::now();
        let out = self.evaluate_now(plan)?;
        sync(self)?;
        if let Some(p) = self.profile.as_mut() {
            let e = p.entry(plan.span).or_default();
            e.0 += start.elapsed();
            e.1 += 1;
        }
        Ok(out)
    }

    fn evaluate_now(&mut self, plan: &EquationPlan) -> Result<Tensor, RunError> {
        self.evaluations += 1;
        let vals = self.node_values(plan)?;
        let root = if self.record {
            plan.root
        } else {
            plan.fused_root
        };
        let root = vals.get(root).cloned().ok_or_else(|| {
            RunError::backend(
                tl_backend::BackendError::Shape {
                    op: "plan",
                    detail: "no root".into(),
                },
                plan.span,
            )
        })?;
        let out = self.place(plan, root);
        if self.record {
            self.traces.insert(plan.id, vals);
        }
        out
    }

    /// The value of every node of a plan, in order: of its unfused graph while recording for
    /// a backward pass (which needs every intermediate value), else of its fused graph.
    pub fn node_values(&mut self, plan: &EquationPlan) -> Result<Vec<Tensor>, RunError> {
        let fused = !self.record;
        let graph = if fused { &plan.fused } else { &plan.graph };
        let span = plan.span;
        let be = self.backend;
        let err = |e| RunError::backend(e, span);
        let mut vals: Vec<Option<Tensor>> = vec![None; graph.nodes.len()];
        let sparse = self.sparse_loads(graph);
        let plan_key = 2 * plan.id + usize::from(fused);
        let host_results = !be.is_accelerator();
        for (id, node) in graph.nodes.iter().enumerate() {
            let dtype = self.dtype_in(node.precision);
            if host_results && !matches!(node.op, Op::Load { .. }) {
                // Every result is a fresh host tensor: too large is an error, not an abort.
                let shape = &node.shape;
                self.fits(
                    shape,
                    dtype.size(),
                    || format!("an intermediate result {shape:?} of this statement"),
                    span,
                )?;
            }
            let get = |vals: &[Option<Tensor>], i: usize| value_of(vals, i, span);
            if let Some(value) =
                self.sparse_node(graph, &vals, &sparse, (plan_key, id), dtype, span)?
            {
                vals[id] = Some(value);
                continue;
            }
            if let Some(value) = self.layer_row_node(plan, graph, id, span)? {
                vals[id] = Some(value);
                continue;
            }
            let value = match &node.op {
                Op::Load { tensor } => self.operand(*tensor, dtype, span)?,
                Op::Gather { tensor, indices } => {
                    let source = self.operand(*tensor, dtype, span)?;
                    if let Some(view) = affine_view(&source, indices, &node.labels, &plan.vars) {
                        vals[id] = Some(view);
                        continue;
                    }
                    let shape = source.shape().to_vec();
                    // Past the edges only by a margin (a convolution's padding): one padded
                    // copy of the source, read as a view.
                    if let Some(pads) = views::padding(&source, indices, &plan.vars) {
                        let padded_shape = views::padded_shape(&shape, &pads);
                        // The copy and its index vector (8 bytes a cell) are budgeted first.
                        let per = 8 + source.dtype.size();
                        let what = || format!("a padded copy {padded_shape:?} of a read");
                        self.fits(&padded_shape, per, what, span)?;
                        let idx = self.cached_index(plan, fused, PADDING + id, || {
                            views::pad_index(&shape, &pads)
                        });
                        let padded = be
                            .gather_shared(&source, &idx, &padded_shape)
                            .map_err(err)?;
                        let (labels, vars) = (&node.labels, &plan.vars);
                        if let Some(v) = views::padded_view(&padded, indices, labels, vars, &pads) {
                            vals[id] = Some(v);
                            continue;
                        }
                    }
                    let idx = self.cached_index(plan, fused, id, || {
                        index_vector(&plan.vars, &node.labels, indices, &shape)
                    });
                    be.gather_shared(&source, &idx, &node.shape).map_err(err)?
                }
                // A training step (a recorded forward pass) draws a fresh mask; everything
                // else sees 1, and dropout is the identity.
                Op::DropMask { p } if self.record => {
                    self.dropout_mask((plan.id, id), &node.shape, *p, dtype, span)?
                }
                Op::Const(_) | Op::DropMask { .. } => {
                    let c = match &node.op {
                        Op::Const(c) => *c,
                        _ => 1.0,
                    };
                    let scalar = match self.constants.get(&(c.to_bits(), dtype)) {
                        Some(t) => t.clone(),
                        None => {
                            let t = be.full(&[], c, dtype).map_err(err)?;
                            self.constants.insert((c.to_bits(), dtype), t.clone());
                            t
                        }
                    };
                    // A constant with labels (a fused map of a constant) is that constant at
                    // every point of its shape.
                    scalar.broadcast_scalar(&node.shape).unwrap_or(scalar)
                }
                Op::IndexValue(v) => {
                    let n = plan.vars[*v].extent;
                    match self.index_values.get(&(n, dtype)) {
                        Some(t) => t.clone(),
                        None => {
                            let host = HostTensor {
                                shape: vec![n],
                                data: HostData::F64((0..n).map(|x| x as f64).collect())
                                    .convert(dtype),
                            };
                            let t = be.upload(&host).map_err(err)?;
                            self.index_values.insert((n, dtype), t.clone());
                            t
                        }
                    }
                }
                Op::Map { expr, inputs } => {
                    let views = aligned(graph, &vals, inputs, &node.labels, span)?;
                    let refs: Vec<&Tensor> = views.iter().collect();
                    be.map(expr, &refs, &node.shape, dtype).map_err(err)?
                }
                Op::Contract { a, b } => {
                    let (ta, tb) = (get(&vals, *a)?, get(&vals, *b)?);
                    let (la, lb) = (
                        labels32(&graph.nodes[*a].labels),
                        labels32(&graph.nodes[*b].labels),
                    );
                    let lo = labels32(&node.labels);
                    self.multiply(&ta, &la, &tb, &lb, &lo, dtype).map_err(err)?
                }
                Op::ContractMap { a, b, expr, inputs } => {
                    let (ta, tb) = (get(&vals, *a)?, get(&vals, *b)?);
                    let (la, lb) = (
                        labels32(&graph.nodes[*a].labels),
                        labels32(&graph.nodes[*b].labels),
                    );
                    let views = aligned(graph, &vals, inputs, &node.labels, span)?;
                    let refs: Vec<&Tensor> = views.iter().collect();
                    be.contract_map(
                        &ta,
                        &la,
                        &tb,
                        &lb,
                        &labels32(&node.labels),
                        expr,
                        &refs,
                        dtype,
                    )
                    .map_err(err)?
                }
                Op::MapReduce {
                    expr,
                    inputs,
                    over,
                    over_shape,
                    op,
                } => {
                    let views = aligned(graph, &vals, inputs, over, span)?;
                    let refs: Vec<&Tensor> = views.iter().collect();
                    let reduced = over.len().saturating_sub(node.labels.len());
                    be.map_reduce(expr, &refs, over_shape, reduced, *op, dtype)
                        .map_err(err)?
                }
                Op::Reduce { input, op } => {
                    let t = get(&vals, *input)?;
                    let axes: Vec<usize> = graph.nodes[*input]
                        .labels
                        .iter()
                        .enumerate()
                        .filter(|(_, l)| !node.labels.contains(l))
                        .map(|(k, _)| k)
                        .collect();
                    be.reduce(&t, &axes, *op).map_err(err)?
                }
                Op::MapNormalize {
                    expr,
                    inputs,
                    axis,
                    func,
                } => {
                    let views = aligned(graph, &vals, inputs, &node.labels, span)?;
                    let refs: Vec<&Tensor> = views.iter().collect();
                    let pos = node.labels.iter().position(|l| l == axis).unwrap_or(0);
                    be.map_normalize(expr, &refs, &node.shape, pos, *func, dtype)
                        .map_err(err)?
                }
                Op::MapRows {
                    expr,
                    inputs,
                    reductions,
                    axis,
                } => {
                    let views = aligned(graph, &vals, inputs, &node.labels, span)?;
                    let refs: Vec<&Tensor> = views.iter().collect();
                    let pos = node.labels.iter().position(|l| l == axis).unwrap_or(0);
                    be.map_rows(&tl_backend::RowMapArgs {
                        expr,
                        inputs: &refs,
                        reductions,
                        shape: &node.shape,
                        axis: pos,
                        dtype,
                    })
                    .map_err(err)?
                }
                Op::Attention {
                    q,
                    k,
                    v,
                    expr,
                    inputs,
                    scores,
                    key,
                } => {
                    let (tq, tk, tv) = (get(&vals, *q)?, get(&vals, *k)?, get(&vals, *v)?);
                    let (lq, lk, lv) = (
                        labels32(&graph.nodes[*q].labels),
                        labels32(&graph.nodes[*k].labels),
                        labels32(&graph.nodes[*v].labels),
                    );
                    let views = aligned(graph, &vals, inputs, scores, span)?;
                    let extra: Vec<&Tensor> = views.iter().collect();
                    let ls = labels32(scores);
                    let lo = labels32(&node.labels);
                    be.attention(&tl_backend::AttentionArgs {
                        q: (&tq, &lq),
                        k: (&tk, &lk),
                        v: (&tv, &lv),
                        scores: &ls,
                        key: *key as u32,
                        expr,
                        extra: &extra,
                        out: &lo,
                        dtype,
                    })
                    .map_err(err)?
                }
                Op::Normalize { input, axis, func } => {
                    let t = get(&vals, *input)?;
                    let pos = graph.nodes[*input]
                        .labels
                        .iter()
                        .position(|l| l == axis)
                        .unwrap_or(0);
                    be.normalize(&t, pos, *func).map_err(err)?
                }
            };
            vals[id] = Some(value);
        }
        vals.into_iter()
            .enumerate()
            .map(|(i, v)| {
                v.ok_or_else(|| {
                    RunError::backend(
                        tl_backend::BackendError::Shape {
                            op: "plan",
                            detail: format!("node %{i} has no value"),
                        },
                        span,
                    )
                })
            })
            .collect()
    }

    /// Lays a plan's root value onto its target's shape.
    pub fn place(&mut self, plan: &EquationPlan, root: Tensor) -> Result<Tensor, RunError> {
        let span = plan.span;
        let err = |e| RunError::backend(e, span);
        let be = self.backend;
        match &plan.placement {
            Placement::Direct => Ok(root),
            Placement::Scatter { indices, op } => {
                let shape = self.shape(plan.target);
                if !be.is_accelerator() {
                    let name = self.name_of(plan.target);
                    let bytes = root.dtype.size();
                    self.fits(&shape, bytes, || format!("`{name}` {shape:?}"), span)?;
                }
                let labels = plan.graph.nodes[plan.root].labels.clone();
                // Pooling: the root viewed with each pooled axis split, the windows reduced.
                if let Some((view, axes)) =
                    views::pooled(&root, &labels, indices, &plan.vars, &shape)
                {
                    return be.reduce(&view, &axes, *op).map_err(err);
                }
                let idx = self.cached_index(plan, false, usize::MAX, || {
                    index_vector(&plan.vars, &labels, indices, &shape)
                });
                be.scatter_shared(&root, &idx, &shape, *op).map_err(err)
            }
        }
    }
}

pub(crate) mod views;
pub(crate) use views::affine_view;

/// Added to a node's number in the index cache for the gather that pads its source.
const PADDING: usize = usize::MAX / 2;

#[cfg(test)]
mod tests;
