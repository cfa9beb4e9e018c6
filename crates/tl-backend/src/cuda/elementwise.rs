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
        let mut fused = self.fused_expr(outs, inputs, out_shape, out_ptrs, real, Walk::Elements)?;
        if !pieces::one_kernel(&fused.spec) {
            drop(fused);
            return self.elementwise_pieces(outs, inputs, out_shape, out_ptrs, real);
        }
        let spec = &mut fused.spec;
        // Four consecutive elements per thread, with wide loads and stores, where rows split
        // into fours and the wide accesses are aligned.
        let inner = match spec.rank {
            0 => 1,
            r => fused.meta[spec.inputs_at() + spec.inputs.len() + r - 1] as usize,
        };
        let grid = if spec.vectorizable(inner) && n >= 4 && spec.fours_aligned(&fused.meta) {
            spec.walk = Walk::Fours;
            grid_for(n / 4)
        } else {
            grid_for(n.div_ceil(codegen::ELEM_UNROLL))
        };
        self.launch_spec("map", spec, &fused.meta, grid)?;
        drop(fused.keep);
        Ok(())
    }

    /// A dropout mask ([`crate::Body::Mask`]) of `shape`, as `dtype`, drawn by [`Walk::Mask`].
    pub(super) fn mask(
        &self,
        shape: &[usize],
        (p, stream): (f64, u64),
        counter: &Tensor,
        dtype: DType,
    ) -> Result<Tensor> {
        let n = numel_checked(shape)?;
        let storage = self.alloc(n, dtype)?;
        if n > 0 {
            let c = self.dev("mask", counter)?;
            let counter_ptr = c.base + (counter.layout.offset * counter.dtype.size()) as u64;
            let spec = Spec {
                outs: vec![(MapExpr::Const(1.0 / (1.0 - p)), dtype)],
                inputs: vec![(DType::F64, Access::Scalar)],
                real: Real::of(dtype),
                rank: 1,
                walk: Walk::Mask,
            };
            let mut meta = spec.meta(n, &[storage.ptr()], &[counter_ptr], &[n], &[]);
            meta.extend([stream as i64, p.to_bits() as i64]);
            self.launch_spec("mask", &spec, &meta, grid_for(n))?;
            drop(c);
        }
        Ok(Self::wrap(storage, shape))
    }

    /// Launches the kernel `spec` renders with these `TlMeta` words.
    pub(super) fn launch_spec(
        &self,
        op: &'static str,
        spec: &Spec,
        meta: &[i64],
        grid: u32,
    ) -> Result<()> {
        let source = || {
            spec.source().ok_or_else(|| {
                shape_err(
                    op,
                    format!(
                        "{} inputs and {} outputs over {} axes is too many for one kernel",
                        spec.inputs.len(),
                        spec.outs.len(),
                        spec.rank
                    ),
                )
            })
        };
        self.launch(spec.key(), source, meta, grid)
    }

    /// The spec and `TlMeta` words (without the walk's own) of expressions over `inputs`
    /// broadcast onto `shape`, each written to its `out_ptrs` entry as its type, computed in
    /// `real`, walked by `walk`.
    pub(super) fn fused_expr(
        &self,
        outs: &[(MapExpr, DType)],
        inputs: &[&Tensor],
        shape: &[usize],
        out_ptrs: &[u64],
        real: Real,
        walk: Walk,
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
        let spec = Spec {
            outs: outs.to_vec(),
            inputs: access,
            real,
            rank: cshape.len(),
            walk,
        };
        let meta = spec.meta(n, out_ptrs, &ptrs, &cshape, &strided);
        Ok(FusedExpr { spec, meta, keep })
    }
}
