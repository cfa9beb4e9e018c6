//! The everyday calls of the runtime (`map`, `reduce`, `normalize`, `cast`, `contract`, …),
//! written once over a backend's few primitives ([`Backend::kernel`],
//! [`Backend::product`]), and the compositions a backend falls back to for the kernels it
//! does not fuse itself.

use crate::kernel::{Body, Epilogue, Kernel, Product};
use crate::{rows, Backend, BackendError, DType, Index, MapExpr, NormFn, ReduceOp};
use crate::{BinaryFn, Result, RowMapArgs, Tensor};
use std::sync::Arc;

/// Runs a kernel with one output and returns that output.
fn single<B: Backend + ?Sized>(be: &B, kernel: Kernel<'_>, op: &'static str) -> Result<Tensor> {
    let mut out = be.kernel(&kernel)?;
    match out.pop() {
        Some(t) if out.is_empty() => Ok(t),
        _ => Err(BackendError::Device(format!(
            "{op}: the backend returned no single result"
        ))),
    }
}

/// The calls every backend answers, each one [`Kernel`] or [`Product`]: implemented for
/// every [`Backend`], so backends implement only the primitives.
pub trait Calls: Backend {
    /// A human name for messages, e.g. `cpu (2 threads)`.
    fn name(&self) -> String {
        self.info().name.clone()
    }

    /// Whether this backend is a GPU.
    fn is_accelerator(&self) -> bool {
        self.info().accelerator
    }

    /// Whether recordings and kernels written into existing tensors work here.
    fn can_record(&self) -> bool {
        self.info().recordable
    }

    /// A tensor of `shape` with every element `value`.
    fn full(&self, shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
        let expr = [MapExpr::Const(value)];
        single(
            self,
            Kernel::new(&[], shape, dtype, Body::Map(&expr)),
            "full",
        )
    }

    /// Evaluates a fused elementwise expression over broadcast inputs, stored as `dtype`.
    fn map(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        out_shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor> {
        let exprs = std::slice::from_ref(expr);
        single(
            self,
            Kernel::new(inputs, out_shape, dtype, Body::Map(exprs)),
            "map",
        )
    }

    /// Several elementwise expressions over the same inputs, each stored as its own tensor
    /// (an optimiser step writes a parameter and its moments), in one pass where the backend
    /// can.
    fn map_many(
        &self,
        exprs: &[MapExpr],
        inputs: &[&Tensor],
        out_shape: &[usize],
        dtype: DType,
    ) -> Result<Vec<Tensor>> {
        self.kernel(&Kernel::new(inputs, out_shape, dtype, Body::Map(exprs)))
    }

    /// Like [`Calls::map_many`], but writes each result into the matching tensor of `outs`
    /// (see [`Kernel::into`]); computed in f64 when an output is f64.
    fn map_many_into(
        &self,
        exprs: &[MapExpr],
        inputs: &[&Tensor],
        out_shape: &[usize],
        outs: &[&Tensor],
    ) -> Result<()> {
        let dtype = if outs.iter().any(|t| t.dtype == DType::F64) {
            DType::F64
        } else {
            DType::F32
        };
        let mut k = Kernel::new(inputs, out_shape, dtype, Body::Map(exprs));
        k.into = Some(outs);
        self.kernel(&k).map(drop)
    }

    /// The reduction with `op` of an elementwise expression over its last `reduced` axes.
    #[allow(clippy::too_many_arguments)]
    fn map_reduce(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        shape: &[usize],
        reduced: usize,
        op: ReduceOp,
        dtype: DType,
    ) -> Result<Tensor> {
        let axes: Vec<usize> = (shape.len().saturating_sub(reduced)..shape.len()).collect();
        let body = Body::Reduce {
            expr,
            axes: &axes,
            op,
        };
        single(self, Kernel::new(inputs, shape, dtype, body), "map_reduce")
    }

    /// Combines the elements along `axes` with `op`, removing those axes. With no axes it
    /// copies. An empty reduction yields 0.
    fn reduce(&self, input: &Tensor, axes: &[usize], op: ReduceOp) -> Result<Tensor> {
        let body = Body::Reduce {
            expr: &MapExpr::Input(0),
            axes,
            op,
        };
        let inputs = [input];
        single(
            self,
            Kernel::new(&inputs, input.shape(), input.dtype, body),
            "reduce",
        )
    }

    /// Softmax or layer norm along one axis.
    fn normalize(&self, input: &Tensor, axis: usize, func: NormFn) -> Result<Tensor> {
        let body = Body::Normalize {
            expr: &MapExpr::Input(0),
            axis,
            func,
        };
        let inputs = [input];
        single(
            self,
            Kernel::new(&inputs, input.shape(), input.dtype, body),
            "normalize",
        )
    }

    /// Softmax or layer norm along `axis` of an elementwise expression of `shape`.
    fn map_normalize(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        shape: &[usize],
        axis: usize,
        func: NormFn,
        dtype: DType,
    ) -> Result<Tensor> {
        let body = Body::Normalize { expr, axis, func };
        single(
            self,
            Kernel::new(inputs, shape, dtype, body),
            "map_normalize",
        )
    }

    /// A map whose expression also reads reductions along one axis of its inputs.
    fn map_rows(&self, args: &RowMapArgs<'_>) -> Result<Tensor> {
        let body = Body::Rows {
            expr: args.expr,
            reductions: args.reductions,
            axis: args.axis,
        };
        single(
            self,
            Kernel::new(args.inputs, args.shape, args.dtype, body),
            "map_rows",
        )
    }

    /// Converts to another element type.
    fn cast(&self, input: &Tensor, dtype: DType) -> Result<Tensor> {
        let inputs = [input];
        let expr = [MapExpr::Input(0)];
        single(
            self,
            Kernel::new(&inputs, input.shape(), dtype, Body::Map(&expr)),
            "cast",
        )
    }

    /// Pairwise einsum with the sum-product semiring (see [`Product`]).
    fn contract(
        &self,
        a: &Tensor,
        a_labels: &[u32],
        b: &Tensor,
        b_labels: &[u32],
        out_labels: &[u32],
    ) -> Result<Tensor> {
        let ab = ((a, a_labels), (b, b_labels));
        if let Some(t) = broadcast_product(self, ab.0, ab.1, out_labels, None)? {
            return Ok(t);
        }
        self.product(&Product {
            a: (a, a_labels),
            b: (b, b_labels),
            out_labels,
            epilogue: None,
        })
    }

    /// A contraction followed by an elementwise epilogue (see [`Epilogue`]).
    #[allow(clippy::too_many_arguments)]
    fn contract_map(
        &self,
        a: &Tensor,
        a_labels: &[u32],
        b: &Tensor,
        b_labels: &[u32],
        out_labels: &[u32],
        expr: &MapExpr,
        extra: &[&Tensor],
        dtype: DType,
    ) -> Result<Tensor> {
        self.product(&Product {
            a: (a, a_labels),
            b: (b, b_labels),
            out_labels,
            epilogue: Some(Epilogue { expr, extra, dtype }),
        })
    }

    /// [`Backend::gather`] with an index vector used once.
    fn gather_once(&self, input: &Tensor, index: &[i64], out_shape: &[usize]) -> Result<Tensor> {
        self.gather(input, Index::Once(index), out_shape)
    }

    /// [`Backend::gather`] with an index vector the caller keeps and reuses.
    fn gather_shared(
        &self,
        input: &Tensor,
        index: &Arc<Vec<i64>>,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        self.gather(input, Index::Shared(index), out_shape)
    }

    /// [`Backend::scatter`] with an index vector used once.
    fn scatter_once(
        &self,
        values: &Tensor,
        index: &[i64],
        out_shape: &[usize],
        op: ReduceOp,
    ) -> Result<Tensor> {
        self.scatter(values, Index::Once(index), out_shape, op)
    }

    /// [`Backend::scatter`] with an index vector the caller keeps and reuses.
    fn scatter_shared(
        &self,
        values: &Tensor,
        index: &Arc<Vec<i64>>,
        out_shape: &[usize],
        op: ReduceOp,
    ) -> Result<Tensor> {
        self.scatter(values, Index::Shared(index), out_shape, op)
    }
}

impl<B: Backend + ?Sized> Calls for B {}

/// A kernel computed from simpler ones, for the forms a backend does not fuse: a reduction
/// or normalisation of an expression as a map and then a reduction or normalisation of the
/// stored values, row reductions as reductions and then a map, several maps one by one. Each
/// step is a form every backend computes directly (one map; a reduction or normalisation of
/// a stored tensor of the kernel's shape and type), so this never calls itself without end.
pub fn composed<B: Backend + ?Sized>(be: &B, k: &Kernel<'_>) -> Result<Vec<Tensor>> {
    match (k.body, k.into) {
        (_, Some(_)) => Err(crate::not_recordable()),
        (Body::Mask { .. }, None) => Err(BackendError::Shape {
            op: "mask",
            detail: "a mask is drawn by the backend itself, not composed".into(),
        }),
        (Body::Map(exprs), None) => exprs
            .iter()
            .map(|e| be.map(e, k.inputs, k.shape, k.dtype))
            .collect(),
        (Body::Reduce { expr, axes, op }, None) => {
            let values = be.map(expr, k.inputs, k.shape, k.dtype)?;
            Ok(vec![be.reduce(&values, axes, op)?])
        }
        (Body::Normalize { expr, axis, func }, None) => {
            let values = be.map(expr, k.inputs, k.shape, k.dtype)?;
            Ok(vec![be.normalize(&values, axis, func)?])
        }
        (
            Body::Rows {
                expr,
                reductions,
                axis,
            },
            None,
        ) => Ok(vec![rows::reduce_then_map(
            be,
            &RowMapArgs {
                expr,
                inputs: k.inputs,
                reductions,
                shape: k.shape,
                axis,
                dtype: k.dtype,
            },
        )?]),
    }
}

/// The default [`Backend::non_finite_flag`]: the sum of `x·0` over each tensor (NaN exactly
/// when some element is not finite), then the sum of those sums.
pub(crate) fn non_finite_by_sums<B: Backend + ?Sized>(
    be: &B,
    tensors: &[&Tensor],
) -> Result<Tensor> {
    let zeroed = MapExpr::Binary(
        BinaryFn::Mul,
        Box::new(MapExpr::Input(0)),
        Box::new(MapExpr::Const(0.0)),
    );
    let mut parts = Vec::with_capacity(tensors.len());
    for t in tensors {
        let dtype = if t.dtype == DType::F64 {
            DType::F64
        } else {
            DType::F32
        };
        let all = t.rank();
        parts.push(be.map_reduce(&zeroed, &[t], t.shape(), all, ReduceOp::Sum, dtype)?);
    }
    let mut sum = MapExpr::Const(0.0);
    for k in 0..parts.len() {
        sum = MapExpr::Binary(BinaryFn::Add, Box::new(sum), Box::new(MapExpr::Input(k)));
    }
    let refs: Vec<&Tensor> = parts.iter().collect();
    be.map(&sum, &refs, &[], DType::F32)
}

/// A pairwise product as a program stores one: in a 16-bit program straight from the GEMM in
/// the program's type (no f32 result to convert), otherwise as [`Calls::contract`] types it.
pub fn stored_product<B: Backend + ?Sized>(
    be: &B,
    a: (&Tensor, &[u32]),
    b: (&Tensor, &[u32]),
    out_labels: &[u32],
    dtype: DType,
) -> Result<Tensor> {
    let half = matches!(dtype, DType::F16 | DType::BF16);
    if let Some(t) = broadcast_product(be, a, b, out_labels, half.then_some(dtype))? {
        return Ok(t);
    }
    let epilogue = half.then_some(Epilogue {
        expr: &MapExpr::Input(0),
        extra: &[],
        dtype,
    });
    be.product(&Product {
        a,
        b,
        out_labels,
        epilogue,
    })
}

/// A contraction in which nothing is summed (every label of either operand is kept, as in the
/// gradient `G[c] D[n, c, y, x]` of a variance) as one broadcast multiply: the same numbers
/// as the contraction (one rounding each), without packing the operands for a matrix product.
/// `None` when a label is summed, repeated or missing from the operands, or extents disagree.
/// The result is stored as `store`, or as the contraction's own type (f64 when an operand is
/// f64, else f32).
fn broadcast_product<B: Backend + ?Sized>(
    be: &B,
    a: (&Tensor, &[u32]),
    b: (&Tensor, &[u32]),
    out_labels: &[u32],
    store: Option<DType>,
) -> Result<Option<Tensor>> {
    let position = |l: &u32| out_labels.iter().position(|o| o == l);
    let (Some(pa), Some(pb)) = (
        a.1.iter().map(position).collect::<Option<Vec<usize>>>(),
        b.1.iter().map(position).collect::<Option<Vec<usize>>>(),
    ) else {
        return Ok(None);
    };
    if a.0.rank() != a.1.len() || b.0.rank() != b.1.len() {
        return Ok(None);
    }
    let mut shape = vec![0usize; out_labels.len()];
    for (t, pos) in [(a.0, &pa), (b.0, &pb)] {
        for (k, &p) in pos.iter().enumerate() {
            let e = t.shape()[k];
            if shape[p] != 0 && shape[p] != e {
                return Ok(None);
            }
            shape[p] = e;
        }
    }
    let distinct = |pos: &[usize]| {
        let mut seen = pos.to_vec();
        seen.sort_unstable();
        seen.dedup();
        seen.len() == pos.len()
    };
    if !distinct(&pa) || !distinct(&pb) || shape.contains(&0) {
        return Ok(None);
    }
    let dtype = match store {
        Some(d) => d,
        None if a.0.dtype == DType::F64 || b.0.dtype == DType::F64 => DType::F64,
        None => DType::F32,
    };
    let rank = out_labels.len();
    let (va, vb) = (
        a.0.expanded_to_rank(&pa, rank),
        b.0.expanded_to_rank(&pb, rank),
    );
    let product = MapExpr::Binary(
        BinaryFn::Mul,
        Box::new(MapExpr::Input(0)),
        Box::new(MapExpr::Input(1)),
    );
    be.map(&product, &[&va, &vb], &shape, dtype).map(Some)
}

/// A product with an epilogue as two steps, the contraction then a map (the unfused way,
/// which backends fall back to).
pub(crate) fn multiply_then_map<B: Backend + ?Sized>(be: &B, p: &Product<'_>) -> Result<Tensor> {
    let product = be.contract(p.a.0, p.a.1, p.b.0, p.b.1, p.out_labels)?;
    let Some(ep) = p.epilogue else {
        return Ok(product);
    };
    let mut inputs = Vec::with_capacity(ep.extra.len() + 1);
    inputs.push(&product);
    inputs.extend_from_slice(ep.extra);
    let shape = product.shape().to_vec();
    be.map(ep.expr, &inputs, &shape, ep.dtype)
}
