//! Pairwise einsum on the device: labels in one operand only are summed out with `reduce`,
//! each operand is packed (one generated copy kernel) into a row-major `(batch, m, k)` /
//! `(batch, k, n)` stack in the compute type, cuBLAS multiplies the stacks, and the
//! `(batch, m, n)` result is permuted into the output's label order.
//!
//! Two f16 (or two bf16) operands are packed as 16-bit and multiplied on the tensor cores with
//! f32 accumulation and an f32 result (as the CPU backend computes them);
//! f64 runs on DGEMM. f32 uses plain FP32 unless [`super::CudaBackend::set_tf32`] allows TF32.

use super::codegen::Real;
use super::{dev_err, numel_checked, CudaBackend};
use crate::dtype::DType;
use crate::einsum::{groups, Pairwise};
use crate::error::{BackendError, Result};
use crate::ops::{MapExpr, ReduceOp};
use crate::tensor::Tensor;
use crate::Backend;
use cudarc::cublas::sys::{
    cublasComputeType_t, cublasGemmAlgo_t, cublasOperation_t, cudaDataType_t,
};
use std::ffi::c_void;

/// Converts a GEMM dimension to cuBLAS's `int`.
fn dim(x: usize) -> Result<i32> {
    i32::try_from(x).map_err(|_| BackendError::TooLarge {
        elements: x as u128,
        detail: "a matrix dimension exceeds cuBLAS's 32-bit limit".into(),
    })
}

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

pub(super) fn contract(
    be: &CudaBackend,
    a: &Tensor,
    a_labels: &[u32],
    b: &Tensor,
    b_labels: &[u32],
    out_labels: &[u32],
) -> Result<Tensor> {
    let pw = Pairwise::new(a.shape(), a_labels, b.shape(), b_labels, out_labels)?;
    let extent = |l: u32| pw.extent(l);
    let out_shape = pw.out_shape.clone();
    let in_out = |l: &u32| out_labels.contains(l);
    let (a_drop, b_drop) = (pw.a_drop.clone(), pw.b_drop.clone());
    let real = if Real::of(a.dtype) == Real::F64 || Real::of(b.dtype) == Real::F64 {
        Real::F64
    } else {
        Real::F32
    };
    let (ta, la) = summed(be, a, a_labels, &a_drop)?;
    let (tb, lb) = summed(be, b, b_labels, &b_drop)?;

    let (batch, ms, ns) = groups(&la, &lb, out_labels);
    let ks: Vec<u32> = la.iter().copied().filter(|l| !in_out(l)).collect();

    let numel = numel_checked(&out_shape)?;
    let prod = |ls: &[u32]| -> usize { ls.iter().filter_map(|&l| extent(l)).product() };
    let (nb, m, n, k) = (prod(&batch), prod(&ms), prod(&ns), prod(&ks));
    if numel == 0 || k == 0 {
        return be.full(&out_shape, 0.0, real.dtype());
    }

    let a_order: Vec<u32> = batch.iter().chain(&ms).chain(&ks).copied().collect();
    let b_order: Vec<u32> = batch.iter().chain(&ks).chain(&ns).copied().collect();
    // Two f16 (or two bf16) operands stay 16-bit for the tensor cores, accumulating in f32.
    let operand = match (a.dtype, b.dtype) {
        (DType::F16, DType::F16) => DType::F16,
        (DType::BF16, DType::BF16) => DType::BF16,
        _ => real.dtype(),
    };
    let (_ka, pa) = be.packed(&ta.permuted(&perm_of(&la, &a_order)), operand)?;
    let (_kb, pb) = be.packed(&tb.permuted(&perm_of(&lb, &b_order)), operand)?;
    let c = be.alloc(nb * m * n, real.dtype())?;
    gemm(be, real, operand, nb, m, n, k, pa, pb, c.ptr())?;

    let c_labels: Vec<u32> = batch.iter().chain(&ms).chain(&ns).copied().collect();
    let c_shape: Vec<usize> = c_labels.iter().filter_map(|&l| extent(l)).collect();
    let ct = CudaBackend::wrap(c, &c_shape);
    if c_labels == out_labels {
        return Ok(ct);
    }
    let view = ct.permuted(&perm_of(&c_labels, out_labels));
    be.elementwise(&MapExpr::Input(0), &[&view], &out_shape, real.dtype(), real)
}

/// Row-major `C[b] = A[b] · B[b]` for `nb` stacked `m×k` and `k×n` matrices, as the
/// column-major product `Cᵀ = Bᵀ · Aᵀ` cuBLAS computes. `A` and `B` hold `operand` elements
/// (the compute type, or f16/bf16 with an f32 result); `C` holds the compute type.
#[allow(clippy::too_many_arguments)]
fn gemm(
    be: &CudaBackend,
    real: Real,
    operand: DType,
    nb: usize,
    m: usize,
    n: usize,
    k: usize,
    a: u64,
    b: u64,
    c: u64,
) -> Result<()> {
    let (mi, ni, ki, bi) = (dim(m)?, dim(n)?, dim(k)?, dim(nb)?);
    let stride = |x: usize, y: usize| -> Result<i64> {
        x.checked_mul(y)
            .and_then(|v| i64::try_from(v).ok())
            .ok_or_else(|| BackendError::TooLarge {
                elements: (x as u128) * (y as u128),
                detail: "matrix too large for cuBLAS".into(),
            })
    };
    let (sa, sb, sc) = (stride(m, k)?, stride(k, n)?, stride(m, n)?);
    be.bind()?;
    let handle = super::lock(&be.blas);
    let (one32, zero32, one64, zero64) = (1f32, 0f32, 1f64, 0f64);
    let (ty, compute, alpha, beta) = match real {
        Real::F64 => (
            cudaDataType_t::CUDA_R_64F,
            cublasComputeType_t::CUBLAS_COMPUTE_64F,
            &one64 as *const f64 as *const c_void,
            &zero64 as *const f64 as *const c_void,
        ),
        Real::F32 => (
            cudaDataType_t::CUDA_R_32F,
            if be.tf32() {
                cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32
            } else {
                cublasComputeType_t::CUBLAS_COMPUTE_32F
            },
            &one32 as *const f32 as *const c_void,
            &zero32 as *const f32 as *const c_void,
        ),
    };
    let (in_ty, compute) = match operand {
        DType::F16 => (
            cudaDataType_t::CUDA_R_16F,
            cublasComputeType_t::CUBLAS_COMPUTE_32F,
        ),
        DType::BF16 => (
            cudaDataType_t::CUDA_R_16BF,
            cublasComputeType_t::CUBLAS_COMPUTE_32F,
        ),
        _ => (ty, compute),
    };
    // SAFETY: `a`, `b` and `c` address live device buffers of nb·m·k, nb·k·n elements of
    // `operand` and nb·m·n elements of the compute type; alpha/beta point to host scalars of that type (cuBLAS's
    // default host pointer mode); leading dimensions equal the row lengths.
    unsafe {
        cudarc::cublas::result::gemm_strided_batched_ex(
            handle.0,
            cublasOperation_t::CUBLAS_OP_N,
            cublasOperation_t::CUBLAS_OP_N,
            ni,
            mi,
            ki,
            alpha,
            b as *const c_void,
            in_ty,
            ni,
            sb,
            a as *const c_void,
            in_ty,
            ki,
            sa,
            beta,
            c as *mut c_void,
            ty,
            ni,
            sc,
            bi,
            compute,
            cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
    }
    .map_err(|e| dev_err("cuBLAS GEMM", e))
}
