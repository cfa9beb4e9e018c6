//! Elementwise kernels over tensors of any layout: one generated kernel per fused expression,
//! its inputs broadcast by extent 1, into fresh or given outputs.

use super::*;

impl CudaBackend {
    /// Evaluates `expr` over `inputs` (any layouts, broadcast by extent 1) into a fresh
    /// row-major tensor of `out` computed in `real`.
    pub(super) fn elementwise(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        out_shape: &[usize],
        out: DType,
        real: Real,
    ) -> Result<Tensor> {
        let mut v = self.elementwise_many(&[(expr.clone(), out)], inputs, out_shape, real)?;
        v.pop().ok_or_else(|| shape_err("map", "no result"))
    }

    /// Evaluates every `(expression, element type)` of `outs` over the same `inputs` in one
    /// kernel, each into a fresh row-major tensor, computed in `real`.
    pub(super) fn elementwise_many(
        &self,
        outs: &[(MapExpr, DType)],
        inputs: &[&Tensor],
        out_shape: &[usize],
        real: Real,
    ) -> Result<Vec<Tensor>> {
        let n = numel_checked(out_shape)?;
        broadcastable(inputs, out_shape)?;
        let storages = outs
            .iter()
            .map(|(_, d)| self.alloc(n, *d))
            .collect::<Result<Vec<_>>>()?;
        let out_ptrs: Vec<u64> = storages.iter().map(|s| s.ptr()).collect();
        self.elementwise_into(outs, inputs, out_shape, &out_ptrs, real)?;
        Ok(storages
            .into_iter()
            .map(|s| Self::wrap(s, out_shape))
            .collect())
    }

    /// Queues the kernel of [`CudaBackend::elementwise_many`] writing row-major results of
    /// `out_shape` at `out_ptrs` (live blocks the caller keeps).
    pub(super) fn elementwise_into(
        &self,
        outs: &[(MapExpr, DType)],
        inputs: &[&Tensor],
        out_shape: &[usize],
        out_ptrs: &[u64],
        real: Real,
    ) -> Result<()> {
        let n = numel_checked(out_shape)?;
        if n == 0 {
            return Ok(());
        }
        let fused = self.fused_expr(outs, inputs, out_shape, out_ptrs, real)?;
        if !pieces::one_kernel(&fused.sig, 0) {
            drop(fused);
            return self.elementwise_pieces(outs, inputs, out_shape, out_ptrs, real);
        }
        let sig = &fused.sig;
        // Four consecutive elements per thread, with wide loads and stores, where rows split
        // into fours and the wide accesses are aligned.
        let inner = match sig.rank {
            0 => 1,
            r => fused.meta[sig.inputs_at() + sig.inputs.len() + r - 1] as usize,
        };
        let vector = sig.vectorizable(inner) && n >= 4 && sig.fours_aligned(&fused.meta);
        if vector {
            let source = || {
                sig.vector_source()
                    .ok_or_else(|| too_many("map", inputs.len()))
            };
            let grid = grid_for(n / 4);
            self.launch(
                codegen::kernel_key(&("map4", sig.key())),
                source,
                &fused.meta,
                grid,
            )?;
            drop(fused.keep);
            return Ok(());
        }
        let source = || {
            sig.source().ok_or_else(|| {
                shape_err(
                    "map",
                    format!(
                        "{} inputs and {} outputs over {} axes is too many for one kernel",
                        inputs.len(),
                        outs.len(),
                        sig.rank
                    ),
                )
            })
        };
        let grid = grid_for(n.div_ceil(codegen::ELEM_UNROLL));
        self.launch(sig.key(), source, &fused.meta, grid)?;
        drop(fused.keep);
        Ok(())
    }

    /// The signature and `TlMeta` words (without a kernel's own trailing words) of
    /// expressions over `inputs` broadcast onto `shape`, each written to its `out_ptrs` entry
    /// as its type, computed in `real`: elementwise kernels, and those that fold an expression
    /// into a reduction or normalisation.
    pub(super) fn fused_expr(
        &self,
        outs: &[(MapExpr, DType)],
        inputs: &[&Tensor],
        shape: &[usize],
        out_ptrs: &[u64],
        real: Real,
    ) -> Result<FusedExpr> {
        let n = numel_checked(shape)?;
        let mut keep = Vec::with_capacity(inputs.len());
        let mut ptrs = Vec::with_capacity(inputs.len());
        let mut strides = vec![Layout::contiguous(shape).strides];
        for t in inputs {
            let d = self.dev("map", t)?;
            strides.push(
                t.shape()
                    .iter()
                    .zip(&t.layout.strides)
                    .map(|(&e, &s)| if e == 1 { 0 } else { s })
                    .collect(),
            );
            ptrs.push(d.base + (t.layout.offset * t.dtype.size()) as u64);
            keep.push(d);
        }
        let (cshape, cst) = codegen::coalesce(shape, &strides);
        let mut access = Vec::with_capacity(inputs.len());
        let mut strided = Vec::new();
        for (q, t) in inputs.iter().enumerate() {
            let s = &cst[q + 1];
            let a = if s.iter().all(|&x| x == 0) {
                Access::Scalar
            } else if *s == cst[0] {
                Access::Contiguous
            } else {
                strided.push(s.clone());
                Access::Strided
            };
            access.push((t.dtype, a));
        }
        let sig = ElemSig {
            outs: outs.to_vec(),
            inputs: access,
            real,
            rank: cshape.len(),
        };
        let meta = sig.meta(n, out_ptrs, &ptrs, &cshape, &strided);
        Ok(FusedExpr { sig, meta, keep })
    }
}
