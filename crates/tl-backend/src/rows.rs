//! Maps that read reductions of their own inputs along one axis (`Calls::map_rows`): the
//! steps of a layer norm written by hand (`Z = X - mean(X)`, `Y = G Z / sqrt(mean(Z²) + ε) +
//! B`), or a softmax written as `exp(S - max(S)) / sum(…)`, once the planner has put each
//! reduction together with the map that reads it. A backend may compute each row in one pass
//! (CUDA: one warp per row); the default reduces, then maps.

use crate::{Backend, Calls, DType, MapExpr, ReduceOp, Result, Tensor};

/// The operands of [`Calls::map_rows`].
#[derive(Clone, Copy, Debug)]
pub struct RowMapArgs<'a> {
    /// The map: `Input(k)` is `inputs[k]`, `Input(inputs.len() + j)` reduction `j`.
    pub expr: &'a MapExpr,
    /// The inputs, each of `shape`'s rank, each axis of `shape`'s extent or 1.
    pub inputs: &'a [&'a Tensor],
    /// Each reduction: its expression (of the inputs and the reductions before it) and how
    /// it reduces along `axis`.
    pub reductions: &'a [(MapExpr, ReduceOp)],
    /// The result's shape.
    pub shape: &'a [usize],
    /// The axis the reductions run along.
    pub axis: usize,
    /// The result's element type (arithmetic in its compute type).
    pub dtype: DType,
}

/// The default [`Calls::map_rows`]: each reduction in turn with [`Calls::map_reduce`] over
/// the axis moved last (reading the inputs and the reductions before it), then one
/// [`Calls::map`] reading the inputs and the reductions, each broadcast along the axis.
pub(crate) fn reduce_then_map<B: Backend + ?Sized>(
    be: &B,
    args: &RowMapArgs<'_>,
) -> Result<Tensor> {
    let RowMapArgs {
        expr,
        inputs,
        reductions,
        shape,
        axis,
        dtype,
    } = *args;
    let rank = shape.len();
    if axis >= rank {
        return Err(crate::BackendError::Shape {
            op: "map_rows",
            detail: format!("axis {axis} of a rank-{rank} map"),
        });
    }
    let last: Vec<usize> = (0..rank).filter(|&d| d != axis).chain([axis]).collect();
    let moved_shape: Vec<usize> = last.iter().map(|&d| shape[d]).collect();
    let kept: Vec<usize> = (0..rank).filter(|&d| d != axis).collect();
    // The inputs, then each reduction as it is computed (later ones may read earlier ones).
    let mut all: Vec<Tensor> = inputs.iter().map(|&t| t.clone()).collect();
    for (e, op) in reductions {
        let moved: Vec<Tensor> = all.iter().map(|t| t.permuted(&last)).collect();
        let moved_refs: Vec<&Tensor> = moved.iter().collect();
        let r = be.map_reduce(e, &moved_refs, &moved_shape, 1, *op, dtype)?;
        all.push(r.expanded_to_rank(&kept, rank));
    }
    let all: Vec<&Tensor> = all.iter().collect();
    be.map(expr, &all, shape, dtype)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::CpuBackend;
    use crate::{HostTensor, NormFn};

    /// Softmax and layer norm are their `as_rows` forms: reducing, then mapping, gives what
    /// the CPU's own normalisation gives, along every axis.
    #[test]
    fn normalisations_are_their_row_forms() -> Result<()> {
        let be = CpuBackend::new();
        let shape = [3usize, 5, 4];
        let values: Vec<f64> = (0..60)
            .map(|k| ((k * 37 % 23) as f64 - 11.0) * 0.7)
            .collect();
        let x = be.upload(&HostTensor::from_f64(shape.to_vec(), values, DType::F64))?;
        for func in [NormFn::Softmax, NormFn::LayerNorm] {
            let (reductions, expr) = func.as_rows();
            for axis in 0..3 {
                let args = RowMapArgs {
                    expr: &expr,
                    inputs: &[&x],
                    reductions: &reductions,
                    shape: &shape,
                    axis,
                    dtype: DType::F64,
                };
                let rows = be.download(&reduce_then_map(&be, &args)?)?.data.to_f64();
                let direct = be.download(&be.normalize(&x, axis, func)?)?.data.to_f64();
                for (a, b) in rows.iter().zip(&direct) {
                    assert!(
                        (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                        "{func:?} {axis}: {a} {b}"
                    );
                }
            }
        }
        Ok(())
    }
}
