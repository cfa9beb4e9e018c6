//! Row kernels on CUDA: maps that read reductions along one axis (`Calls::map_rows`: a layer
//! norm or softmax written by hand), and softmax and layer norm themselves, which are the
//! same thing ([`NormFn::as_rows`]). One warp walks each row (a block, for rows longer than
//! [`WARP_ROW_MAX`]), reduces it once per reduction (shuffles combine the lanes; a later
//! reduction may read an earlier one, as a variance reads its mean), then writes the map: one
//! kernel and one round trip through memory instead of reductions, broadcast maps and the
//! intermediates between them. A row short enough stays in registers between the passes.

use super::render::{row_cache, RowWalk, WARP_ROW_MAX};
use super::*;
use crate::rows::RowMapArgs;

impl CudaBackend {
    /// [`Calls::map_rows`](crate::Calls::map_rows): the row walk with the inputs as the
    /// values.
    pub(crate) fn map_rows_call(&self, args: &RowMapArgs<'_>) -> Result<Tensor> {
        let values: Vec<MapExpr> = (0..args.inputs.len()).map(MapExpr::Input).collect();
        self.rows_of(&values, args)
    }

    /// The row walk over `args.shape`: `values` (expressions over `args.inputs`) at every
    /// element, `args.reductions` along `args.axis` over them, and `args.expr` of the values
    /// (`Input(v)`) and the reductions (`Input(values.len() + j)`) stored as `args.dtype`.
    /// What does not fit one kernel's arguments computes the values, then reduces and maps.
    pub(crate) fn rows_of(&self, values: &[MapExpr], args: &RowMapArgs<'_>) -> Result<Tensor> {
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
            return Err(shape_err(
                "map_rows",
                format!("axis {axis} of a rank-{rank} map"),
            ));
        }
        for v in values {
            check_expr(v, inputs.len())?;
        }
        for (j, (e, _)) in reductions.iter().enumerate() {
            check_expr(e, values.len() + j)?;
        }
        check_expr(expr, values.len() + reductions.len())?;
        broadcastable(inputs, shape)?;
        let numel = numel_checked(shape)?;
        let out = self.alloc(numel, dtype)?;
        if numel == 0 {
            return Ok(CudaBackend::wrap(out, shape));
        }
        // The same view passed twice (a row read by two of the map's steps) is read once.
        let mut distinct: Vec<&Tensor> = Vec::new();
        let mut at = Vec::with_capacity(inputs.len());
        for t in inputs {
            let same =
                |u: &&Tensor| u.dtype == t.dtype && u.layout == t.layout && same_storage(u, t);
            at.push(match distinct.iter().position(same) {
                Some(k) => k,
                None => {
                    distinct.push(t);
                    distinct.len() - 1
                }
            });
        }
        let values: Vec<MapExpr> = values
            .iter()
            .map(|v| v.substitute(&|j| MapExpr::Input(at[j])))
            .collect();
        let len = shape[axis];
        let inner: usize = shape[axis + 1..].iter().product();
        let rows = numel / len;
        let block = len > WARP_ROW_MAX;
        let walk = Walk::Rows(RowWalk {
            cached: if block {
                0
            } else {
                row_cache(len, values.len())
            },
            values: values.clone(),
            reductions: reductions.to_vec(),
            block,
            wide: false,
        });
        let outs = [(expr.clone(), dtype)];
        let real = Real::of(dtype);
        let mut fused = self.fused_expr(&outs, &distinct, shape, &[out.ptr()], real, walk)?;
        if !pieces::one_kernel(&fused.spec) {
            drop(fused);
            let typed: Vec<(MapExpr, DType)> =
                values.iter().map(|v| (v.clone(), real.dtype())).collect();
            let computed = self.elementwise_many(&typed, &distinct, shape, real)?;
            let refs: Vec<&Tensor> = computed.iter().collect();
            let args = RowMapArgs {
                inputs: &refs,
                ..*args
            };
            return crate::rows::reduce_then_map(self, &args);
        }
        let mut meta = fused.meta;
        meta.extend([len as i64, inner as i64]);
        // Each strided input's step along the row.
        for (t, (_, access)) in distinct.iter().zip(&fused.spec.inputs) {
            if *access == Access::Strided {
                let step = if t.shape()[axis] == 1 {
                    0
                } else {
                    t.layout.strides[axis]
                };
                meta.push(step as i64);
            }
        }
        // Rows contiguous along the axis, of a length divisible by four, move four elements
        // per lane with wide accesses (when those are aligned).
        let aligned = fused.spec.fours_aligned(&meta);
        if let Walk::Rows(w) = &mut fused.spec.walk {
            w.wide = inner == 1 && w.cached >= 4 && len.is_multiple_of(4) && aligned;
        }
        let grid = if block {
            rows.min(1 << 20)
        } else {
            rows.div_ceil(codegen::BLOCK as usize / 32).min(1 << 20)
        };
        self.launch_spec("map_rows", &fused.spec, &meta, grid as u32)?;
        drop(fused.keep);
        Ok(CudaBackend::wrap(out, shape))
    }
}

/// Whether two tensors are views of the same storage.
fn same_storage(a: &Tensor, b: &Tensor) -> bool {
    match (&a.storage, &b.storage) {
        (Storage::Device(x), Storage::Device(y)) => Arc::ptr_eq(x, y),
        (Storage::Host(x), Storage::Host(y)) => Arc::ptr_eq(x, y),
        _ => false,
    }
}
