//! Maps that read reductions of their own inputs along one axis (`Backend::map_rows`): the
//! steps of a layer norm written by hand (`Z = X - mean(X)`, `Y = G Z / sqrt(mean(Z²) + ε) +
//! B`), or a softmax written as `exp(S - max(S)) / sum(…)`, once the planner has put each
//! reduction together with the map that reads it. A backend may compute each row in one pass
//! (CUDA: one warp per row); the default reduces, then maps.

use crate::{Backend, DType, MapExpr, ReduceOp, Result, Tensor};

/// The default [`Backend::map_rows`]: each reduction with [`Backend::map_reduce`] over the
/// axis moved last, then one [`Backend::map`] reading the inputs and the reductions, each
/// broadcast along the axis.
pub(crate) fn reduce_then_map<B: Backend + ?Sized>(
    be: &B,
    expr: &MapExpr,
    inputs: &[&Tensor],
    reductions: &[(MapExpr, ReduceOp)],
    shape: &[usize],
    axis: usize,
    dtype: DType,
) -> Result<Tensor> {
    let rank = shape.len();
    if axis >= rank {
        return Err(crate::BackendError::Shape {
            op: "map_rows",
            detail: format!("axis {axis} of a rank-{rank} map"),
        });
    }
    let last: Vec<usize> = (0..rank).filter(|&d| d != axis).chain([axis]).collect();
    let moved: Vec<Tensor> = inputs.iter().map(|t| t.permuted(&last)).collect();
    let moved_refs: Vec<&Tensor> = moved.iter().collect();
    let moved_shape: Vec<usize> = last.iter().map(|&d| shape[d]).collect();
    let kept: Vec<usize> = (0..rank).filter(|&d| d != axis).collect();
    let mut reduced = Vec::with_capacity(reductions.len());
    for (e, op) in reductions {
        let r = be.map_reduce(e, &moved_refs, &moved_shape, 1, *op, dtype)?;
        reduced.push(r.expanded_to_rank(&kept, rank));
    }
    let mut all: Vec<&Tensor> = inputs.to_vec();
    all.extend(reduced.iter());
    be.map(expr, &all, shape, dtype)
}
