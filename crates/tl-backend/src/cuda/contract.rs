//! Pairwise einsum on the device: labels in one operand only are summed out with `reduce`,
//! each operand is read in place when it already is a row-major `(batch, m, k)` /
//! `(batch, k, n)` stack (or the transpose of one) of the compute type, else packed by one
//! generated copy kernel; cuBLASLt multiplies the stacks, and the `(batch, m, n)` result is
//! permuted into the output's label order when it is not already in it.
//!
//! Two f16 (or two bf16) operands are packed as 16-bit and multiplied on the tensor cores with
//! f32 accumulation and an f32 result (as the CPU backend computes them);
//! f64 runs in f64. f32 uses plain FP32 unless [`super::CudaBackend::set_tf32`] allows TF32.

use super::codegen::Real;
use super::{lt, numel_checked, CudaBackend};
use crate::dtype::DType;
use crate::einsum::{groups, Pairwise};
use crate::error::Result;
use crate::ops::{BinaryFn, MapExpr, ReduceOp, UnaryFn};
use crate::tensor::{DeviceStorage, Tensor};
use crate::Calls;
use std::sync::Arc;

/// Sums out `drop` labels of an operand, returning the tensor and its remaining labels.
fn summed(
    be: &CudaBackend,
    t: &Tensor,
    labels: &[u32],
    drop: &[u32],
) -> Result<(Tensor, Vec<u32>)> {
    if drop.is_empty() {
        return Ok((t.clone(), labels.to_vec()));
    }
    let axes: Vec<usize> = (0..labels.len())
        .filter(|&a| drop.contains(&labels[a]))
        .collect();
    let kept = labels
        .iter()
        .copied()
        .filter(|l| !drop.contains(l))
        .collect();
    Ok((be.reduce(t, &axes, ReduceOp::Sum)?, kept))
}

/// The axis permutation putting `labels` (a subset order of `have`) first to last.
fn perm_of(have: &[u32], order: &[u32]) -> Vec<usize> {
    order
        .iter()
        .filter_map(|l| have.iter().position(|x| x == l))
        .collect()
}

/// Stacks of matrices ready for one cuBLASLt call: each operand's storage kept alive, and the
/// product's description.
struct Prepared {
    keep: [Arc<dyn DeviceStorage>; 2],
    product: lt::Product,
    c_labels: Vec<u32>,
    c_shape: Vec<usize>,
    /// How many trailing axes of the result are its matrix columns.
    cols: usize,
}

/// An operand as the product reads it: in place when it is already a row-major stack in
/// `batch, first, second` order (or transposed, `batch, second, first`) and of type `dtype`,
/// else packed into the first order by one copy kernel.
fn operand(
    be: &CudaBackend,
    t: &Tensor,
    labels: &[u32],
    order: [&[u32]; 3],
    dtype: DType,
) -> Result<(Arc<dyn DeviceStorage>, lt::Operand)> {
    let [batch, first, second] = order;
    let straight: Vec<u32> = batch.iter().chain(first).chain(second).copied().collect();
    let view = t.permuted(&perm_of(labels, &straight));
    if t.dtype == dtype && !view.layout.is_contiguous() {
        let swapped: Vec<u32> = batch.iter().chain(second).chain(first).copied().collect();
        let tv = t.permuted(&perm_of(labels, &swapped));
        if tv.layout.is_contiguous() {
            let (keep, ptr) = be.packed(&tv, dtype)?;
            return Ok((
                keep,
                lt::Operand {
                    ptr,
                    transposed: true,
                },
            ));
        }
    }
    let (keep, ptr) = be.packed(&view, dtype)?;
    Ok((
        keep,
        lt::Operand {
            ptr,
            transposed: false,
        },
    ))
}

/// The compute type of a product: f64 when either operand is f64, else f32.
fn product_real(a: DType, b: DType) -> Real {
    if Real::of(a) == Real::F64 || Real::of(b) == Real::F64 {
        Real::F64
    } else {
        Real::F32
    }
}

/// The element type both operands are multiplied in. Two f16 (or two bf16) operands stay
/// 16-bit for the tensor cores, accumulating in f32; two Boolean ones (relations) run there
/// too: 0 and 1 are exact in f16, and counts of paths are exact in the f32 accumulator up to
/// 2^24 and positive beyond. Anything else is multiplied in the compute type `real`.
fn operand_type(a: DType, b: DType, real: Real) -> DType {
    match (a, b) {
        (DType::F16, DType::F16) | (DType::Bool, DType::Bool) if real == Real::F32 => DType::F16,
        (DType::BF16, DType::BF16) => DType::BF16,
        _ => real.dtype(),
    }
}

/// Lays out `a·b` for cuBLASLt. The result's rows are the labels of `a` or of `b`, whichever
/// puts the product directly in `out_labels`' order when one does.
fn prepare(
    be: &CudaBackend,
    a: (&Tensor, &[u32]),
    b: (&Tensor, &[u32]),
    out_labels: &[u32],
    extent: &dyn Fn(u32) -> Option<usize>,
    out_type: DType,
) -> Result<Prepared> {
    let (batch, ms, ns) = groups(a.1, b.1, out_labels);
    let ks: Vec<u32> =
        a.1.iter()
            .copied()
            .filter(|l| !out_labels.contains(l))
            .collect();
    let prod = |ls: &[u32]| -> usize { ls.iter().filter_map(|&l| extent(l)).product() };
    let cat =
        |x: &[u32], y: &[u32]| -> Vec<u32> { batch.iter().chain(x).chain(y).copied().collect() };
    let real = Real::of(out_type);
    let operand_type = operand_type(a.0.dtype, b.0.dtype, real);
    let swap = cat(&ns, &ms) == out_labels && cat(&ms, &ns) != out_labels;
    let (lhs, rhs, rows, cols) = if swap {
        (b, a, &ns, &ms)
    } else {
        (a, b, &ms, &ns)
    };
    let (keep_l, op_l) = operand(be, lhs.0, lhs.1, [&batch, rows, &ks], operand_type)?;
    let (keep_r, op_r) = operand(be, rhs.0, rhs.1, [&batch, &ks, cols], operand_type)?;
    let c_labels = cat(rows, cols);
    let c_shape = c_labels.iter().filter_map(|&l| extent(l)).collect();
    let compute = match real {
        Real::F64 => lt::Compute::F64,
        Real::F32 if operand_type == DType::F32 && be.tf32() => lt::Compute::Tf32,
        Real::F32 => lt::Compute::F32,
    };
    Ok(Prepared {
        cols: cols.len(),
        keep: [keep_l, keep_r],
        product: lt::Product {
            nb: prod(&batch),
            m: prod(rows),
            n: prod(cols),
            k: prod(&ks),
            a: op_l,
            b: op_r,
            operand: operand_type,
            out_type,
            compute,
            epilogue: lt::Epilogue::default(),
            out: 0,
        },
        c_labels,
        c_shape,
    })
}

pub(super) fn contract(
    be: &CudaBackend,
    a: &Tensor,
    a_labels: &[u32],
    b: &Tensor,
    b_labels: &[u32],
    out_labels: &[u32],
) -> Result<Tensor> {
    let product = contract_view(be, a, a_labels, b, b_labels, out_labels, None)?;
    if product.layout.is_contiguous() {
        return Ok(product);
    }
    let real = Real::of(product.dtype);
    be.elementwise(
        &MapExpr::Input(0),
        &[&product],
        product.shape(),
        product.dtype,
        real,
    )
}

/// The product of [`contract`] as the cuBLASLt result viewed in the output's label order
/// (a permuted view when the product's own order differs), so that a consumer reading it
/// elementwise does the permutation in its own pass. It is stored in the compute type, or in
/// `store` when given (a 16-bit program's type, as its unfused products are).
pub(super) fn contract_view(
    be: &CudaBackend,
    a: &Tensor,
    a_labels: &[u32],
    b: &Tensor,
    b_labels: &[u32],
    out_labels: &[u32],
    store: Option<DType>,
) -> Result<Tensor> {
    let pw = Pairwise::new(a.shape(), a_labels, b.shape(), b_labels, out_labels)?;
    let extent = |l: u32| pw.extent(l);
    let out_shape = pw.out_shape.clone();
    let real = product_real(a.dtype, b.dtype);
    let (ta, la) = summed(be, a, a_labels, &pw.a_drop)?;
    let (tb, lb) = summed(be, b, b_labels, &pw.b_drop)?;
    let numel = numel_checked(&out_shape)?;
    let k_empty = la
        .iter()
        .any(|l| !out_labels.contains(l) && extent(*l) == Some(0));
    if numel == 0 || k_empty {
        return be.full(&out_shape, 0.0, real.dtype());
    }
    let stored = store.unwrap_or(real.dtype());
    let mut prep = prepare(be, (&ta, &la), (&tb, &lb), out_labels, &extent, stored)?;
    let c = be.alloc(numel, stored)?;
    prep.product.out = c.ptr();
    be.matmul(&prep.product)?;
    drop(prep.keep);

    let ct = CudaBackend::wrap(c, &prep.c_shape);
    if prep.c_labels == out_labels {
        return Ok(ct);
    }
    Ok(ct.permuted(&perm_of(&prep.c_labels, out_labels)))
}

/// `relu?(c·Input(0) + Input(j) + …)` (`c` a constant, 1 when absent): whether the epilogue
/// applies ReLU, the product's scale `c` (cuBLASLt's alpha), and the inputs added to the
/// product. `None` for any other expression.
fn epilogue_terms(expr: &MapExpr) -> Option<(bool, f64, Vec<usize>)> {
    fn sum(e: &MapExpr, out: &mut Vec<usize>, scale: &mut f64) -> bool {
        match e {
            MapExpr::Input(k) => {
                out.push(*k);
                true
            }
            MapExpr::Binary(BinaryFn::Mul, a, b) => match (&**a, &**b) {
                (MapExpr::Input(0), MapExpr::Const(c)) | (MapExpr::Const(c), MapExpr::Input(0)) => {
                    out.push(0);
                    *scale = *c;
                    true
                }
                _ => false,
            },
            MapExpr::Binary(BinaryFn::Add, a, b) => sum(a, out, scale) && sum(b, out, scale),
            _ => false,
        }
    }
    let (relu, body) = match expr {
        MapExpr::Unary(UnaryFn::Relu, x) => (true, &**x),
        e => (false, e),
    };
    let mut terms = Vec::new();
    let mut scale = 1.0;
    if !sum(body, &mut terms, &mut scale) || terms.iter().filter(|&&k| k == 0).count() != 1 {
        return None;
    }
    terms.retain(|&k| k != 0);
    Some((relu, scale, terms))
}

/// The address of a bias: a tensor that varies only along the result's last `cols` axes,
/// holding every element of them row-major (the epilogue reads a whole column vector, so a
/// value broadcast along those axes, such as a scalar, is not one). `None` when `t` is not one.
fn bias_address(
    be: &CudaBackend,
    t: &Tensor,
    out_shape: &[usize],
    cols: usize,
    dtype: DType,
) -> Option<(Arc<dyn DeviceStorage>, u64)> {
    let rank = t.rank();
    if t.dtype != dtype || cols > rank || cols > out_shape.len() {
        return None;
    }
    let l = &t.layout;
    let outer_broadcast = (0..rank - cols).all(|a| l.shape[a] == 1 || l.strides[a] == 0);
    let mut want = 1usize;
    for (a, &extent) in (rank - cols..rank)
        .zip(&out_shape[out_shape.len() - cols..])
        .rev()
    {
        if l.shape[a] != extent || (extent > 1 && l.strides[a] != want) {
            return None;
        }
        want *= extent;
    }
    if !outer_broadcast {
        return None;
    }
    let r = be.dev("epilogue", t).ok()?;
    Some((r.keep, r.base + (l.offset * dtype.size()) as u64))
}

/// `expr(a·b, extra…)` with the epilogue inside the GEMM, when `expr` is
/// `relu?(c·product + bias + residual)` with a bias along the result's columns and a residual
/// laid out like the result, all of type `dtype`, and the product needs no permutation.
/// `None` when it does not fit; the caller then multiplies and maps separately.
#[allow(clippy::too_many_arguments)]
pub(super) fn contract_epilogue(
    be: &CudaBackend,
    a: &Tensor,
    a_labels: &[u32],
    b: &Tensor,
    b_labels: &[u32],
    out_labels: &[u32],
    expr: &MapExpr,
    extra: &[&Tensor],
    dtype: DType,
) -> Result<Option<Tensor>> {
    let Some((relu, scale, terms)) = epilogue_terms(expr) else {
        return Ok(None);
    };
    if !matches!(dtype, DType::F32 | DType::F16 | DType::BF16 | DType::F64) || terms.len() > 2 {
        return Ok(None);
    }
    let pw = Pairwise::new(a.shape(), a_labels, b.shape(), b_labels, out_labels)?;
    if !pw.a_drop.is_empty() || !pw.b_drop.is_empty() {
        return Ok(None);
    }
    let extent = |l: u32| pw.extent(l);
    let numel = numel_checked(&pw.out_shape)?;
    let real = product_real(a.dtype, b.dtype);
    if numel == 0 || Real::of(dtype) != real {
        return Ok(None);
    }
    // cuBLASLt stores a 16-bit result only from 16-bit operands.
    let narrow = matches!(dtype, DType::F16 | DType::BF16);
    if narrow && operand_type(a.dtype, b.dtype, Real::of(dtype)) != dtype {
        return Ok(None);
    }
    // The epilogue writes the result in place, so the product must come out in the result's
    // order (one of the two orientations `prepare` picks from); checked before any packing.
    let (batch, ms, ns) = groups(a_labels, b_labels, out_labels);
    let in_order = |x: &[u32], y: &[u32]| batch.iter().chain(x).chain(y).eq(out_labels.iter());
    if !in_order(&ms, &ns) && !in_order(&ns, &ms) {
        return Ok(None);
    }
    let mut prep = prepare(be, (a, a_labels), (b, b_labels), out_labels, &extent, dtype)?;
    if prep.c_labels != out_labels || prep.product.k == 0 {
        return Ok(None);
    }
    let mut keep = Vec::new();
    for &k in &terms {
        let Some(t) = extra.get(k - 1) else {
            return Ok(None);
        };
        if t.shape() != pw.out_shape.as_slice()
            && prep.product.epilogue.bias.is_none()
            && prep.product.nb == 1
        {
            match bias_address(be, t, &pw.out_shape, prep.cols, dtype) {
                Some((k, ptr)) => {
                    keep.push(k);
                    prep.product.epilogue.bias = Some(ptr);
                }
                None => return Ok(None),
            }
        } else if t.shape() == pw.out_shape.as_slice()
            && t.layout.is_contiguous()
            && t.dtype == dtype
            && prep.product.epilogue.residual.is_none()
        {
            let (k, ptr) = be.packed(t, dtype)?;
            keep.push(k);
            prep.product.epilogue.residual = Some(ptr);
        } else {
            return Ok(None);
        }
    }
    prep.product.epilogue.relu = relu;
    prep.product.epilogue.scale = (scale != 1.0).then_some(scale);
    let c = be.alloc(numel, dtype)?;
    prep.product.out = c.ptr();
    be.matmul(&prep.product)?;
    drop((prep.keep, keep));
    Ok(Some(CudaBackend::wrap(c, &prep.c_shape)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(f: BinaryFn, a: MapExpr, b: MapExpr) -> MapExpr {
        MapExpr::Binary(f, Box::new(a), Box::new(b))
    }

    #[test]
    fn epilogue_terms_find_the_scale_bias_and_relu() {
        use MapExpr::{Const, Input};
        let scaled = bin(BinaryFn::Mul, Const(0.5), Input(0));
        assert_eq!(epilogue_terms(&scaled), Some((false, 0.5, vec![])));
        let e = MapExpr::Unary(
            UnaryFn::Relu,
            Box::new(bin(BinaryFn::Add, Input(2), scaled.clone())),
        );
        assert_eq!(epilogue_terms(&e), Some((true, 0.5, vec![2])));
        assert_eq!(
            epilogue_terms(&bin(BinaryFn::Add, Input(0), Input(1))),
            Some((false, 1.0, vec![1]))
        );
        // The product twice, a scaled input other than the product, or a product of inputs:
        // not a cuBLASLt epilogue.
        assert_eq!(epilogue_terms(&bin(BinaryFn::Add, Input(0), scaled)), None);
        assert_eq!(
            epilogue_terms(&bin(BinaryFn::Mul, Input(1), Const(2.0))),
            None
        );
        assert_eq!(
            epilogue_terms(&bin(BinaryFn::Mul, Input(0), Input(1))),
            None
        );
    }
}
