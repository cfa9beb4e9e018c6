//! Reductions over any set of axes: the input read in place, in its stored type, by rows or
//! by columns, whichever its layout makes contiguous.

use super::*;
use crate::Calls;

impl CudaBackend {
    pub(super) fn reduce_axes(
        &self,
        input: &Tensor,
        axes: &[usize],
        op: ReduceOp,
    ) -> Result<Tensor> {
        let rank = input.rank();
        let reduced = reduced_axes(rank, axes)?;
        let real = Real::of(input.dtype);
        let kept: Vec<usize> = (0..rank).filter(|&a| !reduced[a]).collect();
        let red: Vec<usize> = (0..rank).filter(|&a| reduced[a]).collect();
        let out_shape: Vec<usize> = kept.iter().map(|&a| input.shape()[a]).collect();
        let m = numel_checked(&out_shape)?;
        let r: usize = red.iter().map(|&a| input.shape()[a]).product();
        self.dev("reduce", input)?;
        if m == 0 || r == 0 {
            return self.full(&out_shape, 0.0, real.dtype());
        }
        // Floating inputs are read in their stored type; others are converted first.
        let storage = match input.dtype {
            DType::F32 | DType::F64 | DType::F16 | DType::BF16 => input.dtype,
            _ => real.dtype(),
        };
        let out = self.alloc(m, real.dtype())?;
        let rows_first: Vec<usize> = kept.iter().chain(&red).copied().collect();
        let cols_first: Vec<usize> = red.iter().chain(&kept).copied().collect();
        let by_column = input.dtype == storage
            && !input.permuted(&rows_first).layout.is_contiguous()
            && input.permuted(&cols_first).layout.is_contiguous();
        // One fold of a stored array (`Input(0)` over one contiguous input of `storage`).
        let run = |layout: FoldLayout,
                   op: ReduceOp,
                   storage: DType,
                   [outputs, r, x, out, len, chunks, count]: [usize; 7]| {
            let total = outputs / chunks * r;
            let spec = Spec::stored_fold(op, real, storage, layout);
            let mut meta = spec.meta(total, &[out as u64], &[x as u64], &[total], &[]);
            meta.extend([outputs, r, len, chunks, count].map(|v| v as i64));
            self.launch_spec("reduce", &spec, &meta, fold_grid(layout, outputs))
        };
        // A chunked first pass sums (a mean divides once, at the end).
        let first = if op == ReduceOp::Mean {
            ReduceOp::Sum
        } else {
            op
        };
        if by_column {
            // `[r, m]` as stored: a thread per column (and chunk of rows, when there are few
            // columns, so that enough threads run), partial results combined by a second pass.
            let (_keep, x) = self.packed(&input.permuted(&cols_first), storage)?;
            let x = x as usize;
            let chunks = (131_072 / m).clamp(1, r.div_ceil(32).max(1));
            let len = r.div_ceil(chunks);
            let chunks = r.div_ceil(len);
            let col = FoldLayout::Column;
            if chunks == 1 {
                run(col, op, storage, [m, r, x, out.ptr() as usize, r, 1, r])?;
            } else {
                let partial = self.alloc(m * chunks, real.dtype())?;
                let p = partial.ptr() as usize;
                run(col, first, storage, [m * chunks, r, x, p, len, chunks, r])?;
                let o = out.ptr() as usize;
                run(col, op, real.dtype(), [m, chunks, p, o, chunks, 1, r])?;
            }
            return Ok(Self::wrap(out, &out_shape));
        }
        let (_keep, x) = self.packed(&input.permuted(&rows_first), storage)?;
        let x = x as usize;
        let o = out.ptr() as usize;
        if r <= 32 {
            run(FoldLayout::PerThread, op, storage, [m, r, x, o, r, 1, r])?;
        } else if r <= render::WARP_ROW_MAX {
            run(FoldLayout::Warp, op, storage, [m, r, x, o, r, 1, r])?;
        } else {
            // Few long rows: split each row over many blocks, then combine the partial results.
            let chunks = if m < 512 && r >= 1 << 15 {
                r.div_ceil(1 << 13).min(1024)
            } else {
                1
            };
            let len = r.div_ceil(chunks);
            let block = FoldLayout::Block;
            if chunks == 1 {
                run(block, op, storage, [m, r, x, o, r, 1, r])?;
            } else {
                let partial = self.alloc(m * chunks, real.dtype())?;
                let p = partial.ptr() as usize;
                run(block, first, storage, [m * chunks, r, x, p, len, chunks, r])?;
                run(
                    FoldLayout::Warp,
                    op,
                    real.dtype(),
                    [m, chunks, p, o, chunks, 1, r],
                )?;
            }
        }
        Ok(Self::wrap(out, &out_shape))
    }
}

/// Blocks for a fold with `outputs` results.
pub(super) fn fold_grid(layout: FoldLayout, outputs: usize) -> u32 {
    match layout {
        FoldLayout::PerThread | FoldLayout::Column => grid_for(outputs),
        FoldLayout::Warp => outputs.div_ceil(codegen::BLOCK as usize / 32).min(1 << 20) as u32,
        FoldLayout::Block => outputs.min(1 << 20) as u32,
    }
}
