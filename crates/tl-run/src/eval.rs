//! Evaluates one equation plan on the backend: nodes in order, each input viewed (permuted and
//! broadcast, no copies) onto the node's labels, and the root laid onto the target's shape.

use crate::engine::Engine;
use crate::error::RunError;
use std::sync::Arc;
use tl_backend::{DType, HostData, HostTensor, MapExpr, Tensor};
use tl_check::{Index, VarInfo};
use tl_plan::{EquationPlan, Graph, Op, Placement};
use tl_syntax::Span;

/// Row-major points over `extents`, calling `f` with each point's coordinates.
fn for_each_point(extents: &[usize], mut f: impl FnMut(&[i64])) {
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
            let (perm, positions) = alignment(&graph.nodes[i].labels, onto);
            Ok(t.permuted(&perm).expanded_to_rank(&positions, onto.len()))
        })
        .collect()
}

impl Engine<'_> {
    /// A pairwise product ([`tl_backend::Backend::contract`]); in a 16-bit program it is
    /// stored in the program's type straight from the GEMM (no f32 result to convert).
    pub(crate) fn multiply(
        &self,
        a: &Tensor,
        la: &[u32],
        b: &Tensor,
        lb: &[u32],
        lo: &[u32],
    ) -> Result<Tensor, tl_backend::BackendError> {
        let dtype = self.dtype();
        if matches!(dtype, DType::F16 | DType::BF16) {
            self.backend
                .contract_map(a, la, b, lb, lo, &MapExpr::Input(0), &[], dtype)
        } else {
            self.backend.contract(a, la, b, lb, lo)
        }
    }

    fn cached_index(
        &mut self,
        plan: &EquationPlan,
        fused: bool,
        node: usize,
        build: impl FnOnce() -> Vec<i64>,
    ) -> Arc<Vec<i64>> {
        // Plans are 8-byte aligned, so the low bit of the address can tell the fused graph's
        // nodes from the unfused one's.
        let key = (
            plan as *const EquationPlan as usize | usize::from(fused),
            node,
        );
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
            self.traces
                .insert(plan as *const EquationPlan as usize, vals);
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
        let dtype = self.dtype();
        let err = |e| RunError::backend(e, span);
        let mut vals: Vec<Option<Tensor>> = vec![None; graph.nodes.len()];
        let sparse = self.sparse_loads(graph);
        let plan_key = plan as *const EquationPlan as usize | usize::from(fused);
        for (id, node) in graph.nodes.iter().enumerate() {
            let get = |vals: &[Option<Tensor>], i: usize| value_of(vals, i, span);
            if let Some(value) = self.sparse_node(graph, &vals, &sparse, (plan_key, id), span)? {
                vals[id] = Some(value);
                continue;
            }
            if let Some(value) = self.layer_row_node(plan, graph, id, span)? {
                vals[id] = Some(value);
                continue;
            }
            let value = match &node.op {
                Op::Load { tensor } => self.dense(*tensor, span)?,
                Op::Gather { tensor, indices } => {
                    let source = self.dense(*tensor, span)?;
                    let shape = source.shape().to_vec();
                    let idx = self.cached_index(plan, fused, id, || {
                        index_vector(&plan.vars, &node.labels, indices, &shape)
                    });
                    be.gather_shared(&source, &idx, &node.shape).map_err(err)?
                }
                Op::Const(c) => match self.constants.get(&(c.to_bits(), dtype)) {
                    Some(t) => t.clone(),
                    None => {
                        let t = be.full(&[], *c, dtype).map_err(err)?;
                        self.constants.insert((c.to_bits(), dtype), t.clone());
                        t
                    }
                },
                Op::IndexValue(v) => {
                    let n = plan.vars[*v].extent;
                    let host = HostTensor {
                        shape: vec![n],
                        data: HostData::F64((0..n).map(|x| x as f64).collect()).convert(dtype),
                    };
                    be.upload(&host).map_err(err)?
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
                    self.multiply(&ta, &la, &tb, &lb, &lo).map_err(err)?
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
                    let reduced = over.len() - node.labels.len();
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
                let labels = plan.graph.nodes[plan.root].labels.clone();
                let idx = self.cached_index(plan, false, usize::MAX, || {
                    index_vector(&plan.vars, &labels, indices, &shape)
                });
                be.scatter_shared(&root, &idx, &shape, *op).map_err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_orders_axes_by_target_position() {
        let (perm, pos) = alignment(&[5, 2], &[2, 7, 5]);
        assert_eq!(perm, vec![1, 0]);
        assert_eq!(pos, vec![0, 2]);
    }

    #[test]
    fn index_vector_marks_reads_outside_as_negative() {
        let vars = vec![VarInfo {
            name: "i".into(),
            domain: 0,
            extent: 3,
        }];
        let e = tl_check::IndexExpr::Binary(
            tl_syntax::ast::IndexOp::Add,
            Box::new(tl_check::IndexExpr::Var(0)),
            Box::new(tl_check::IndexExpr::Const(1)),
        );
        assert_eq!(
            index_vector(&vars, &[0], &[Index::Expr(e)], &[3]),
            vec![1, 2, -1]
        );
    }
}
