//! Matrix products through cuBLASLt.
//!
//! A product is described once per shape and element types (descriptors, layouts and the
//! algorithm the library's heuristic picks are kept and reused), operands may be stored
//! transposed (the library reads them in place, so no copy untransposes them), and an optional
//! epilogue adds a bias vector along the output's columns, adds a residual matrix and applies
//! ReLU inside the same kernel.
//!
//! cuBLASLt is column-major; a row-major `C = A·B` is computed as the column-major
//! `Cᵀ = Bᵀ·Aᵀ`, so the library's first operand is our `B`.

use crate::dtype::DType;
use crate::error::{BackendError, Result};
use cudarc::cublaslt::{result as lt, sys};
use std::collections::HashMap;
use std::ffi::c_void;
use std::mem::size_of;

/// Bytes of scratch space cuBLASLt may use (NVIDIA's recommendation for Hopper).
pub(super) const WORKSPACE_BYTES: usize = 32 << 20;

/// How the products accumulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Compute {
    /// IEEE f32 (also for f16/bf16 operands, on the tensor cores).
    F32,
    /// f32 operands on the TF32 tensor cores.
    Tf32,
    /// f64.
    F64,
}

/// One operand as stored: its device address and whether it is stored transposed (`k×m`
/// instead of `m×k` for `A`, `n×k` instead of `k×n` for `B`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Operand {
    pub ptr: u64,
    pub transposed: bool,
}

/// Work fused after the product: `relu(scale·A·B + bias[col] + residual)`, each part optional.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Epilogue {
    /// The product's factor (cuBLASLt's alpha); `None` is 1.
    pub scale: Option<f64>,
    /// A vector of `n` elements of the output type, added to every row.
    pub bias: Option<u64>,
    /// An `m×n` (per batch) row-major matrix of the output type.
    pub residual: Option<u64>,
    pub relu: bool,
}

/// `nb` row-major products `C[b] = A[b]·B[b]` of `m×k` and `k×n` matrices, stored in `out`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Product {
    pub nb: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: Operand,
    pub b: Operand,
    /// Element type of both operands.
    pub operand: DType,
    /// Element type of the result (and of bias and residual).
    pub out_type: DType,
    pub compute: Compute,
    pub epilogue: Epilogue,
    pub out: u64,
}

/// What decides a cached plan: shapes, types, transposes, epilogue kind and pointer alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    dims: [usize; 4],
    transposed: [bool; 2],
    types: [DType; 2],
    compute: Compute,
    epilogue: [bool; 3],
    align: [u32; 4],
}

/// A matmul descriptor, destroyed on drop.
struct Desc(sys::cublasLtMatmulDesc_t);

impl Drop for Desc {
    fn drop(&mut self) {
        // SAFETY: created by `create_matmul_desc`, destroyed once.
        let _ = unsafe { lt::destroy_matmul_desc(self.0) };
    }
}

/// A matrix layout, destroyed on drop.
struct MatLayout(sys::cublasLtMatrixLayout_t);

impl Drop for MatLayout {
    fn drop(&mut self) {
        // SAFETY: created by `create_matrix_layout`, destroyed once.
        let _ = unsafe { lt::destroy_matrix_layout(self.0) };
    }
}

/// A heuristic-search preference, destroyed on drop.
struct Pref(sys::cublasLtMatmulPreference_t);

impl Drop for Pref {
    fn drop(&mut self) {
        // SAFETY: created by `create_matmul_pref`, destroyed once.
        let _ = unsafe { lt::destroy_matmul_pref(self.0) };
    }
}

/// Everything one product shape needs, found once.
struct Plan {
    desc: Desc,
    layouts: [MatLayout; 4],
    algo: sys::cublasLtMatmulAlgo_t,
    workspace: usize,
}

/// The cuBLASLt handle and the plans found so far (used under the backend's lock).
pub(super) struct Lt {
    handle: sys::cublasLtHandle_t,
    plans: HashMap<Key, Plan>,
}

// SAFETY: the handle and descriptors are only used while holding the backend's mutex, with the
// context bound.
unsafe impl Send for Lt {}

impl Drop for Lt {
    fn drop(&mut self) {
        self.plans.clear();
        // SAFETY: created by `create_handle`, destroyed once, after its plans.
        let _ = unsafe { lt::destroy_handle(self.handle) };
    }
}

/// A `Device` error from a cuBLASLt status.
fn lt_err(what: &str, e: impl std::fmt::Debug) -> BackendError {
    BackendError::Device(format!("cuBLASLt {what}: {e:?}"))
}

/// The library's name for an element type.
fn data_type(d: DType) -> Result<sys::cudaDataType> {
    Ok(match d {
        DType::F32 => sys::cudaDataType::CUDA_R_32F,
        DType::F64 => sys::cudaDataType::CUDA_R_64F,
        DType::F16 => sys::cudaDataType::CUDA_R_16F,
        DType::BF16 => sys::cudaDataType::CUDA_R_16BF,
        other => {
            return Err(BackendError::Device(format!(
                "cuBLASLt cannot multiply {other} matrices"
            )))
        }
    })
}

/// The largest power of two (up to 256) dividing an address: what the heuristic may assume.
fn alignment(ptr: u64) -> u32 {
    if ptr == 0 {
        return 256;
    }
    (1u64 << ptr.trailing_zeros().min(8)) as u32
}

/// Converts a dimension or stride to the library's 64-bit types.
fn wide(x: usize) -> Result<i64> {
    i64::try_from(x).map_err(|_| BackendError::TooLarge {
        elements: x as u128,
        detail: "a matrix dimension exceeds cuBLASLt's limit".into(),
    })
}

/// Sets one attribute of a descriptor from a plain value.
///
/// # Safety
/// `desc` must be live and `T` the attribute's documented type.
unsafe fn set_desc<T>(
    desc: sys::cublasLtMatmulDesc_t,
    attr: sys::cublasLtMatmulDescAttributes_t,
    value: &T,
) -> Result<()> {
    lt::set_matmul_desc_attribute(
        desc,
        attr,
        value as *const T as *const c_void,
        size_of::<T>(),
    )
    .map_err(|e| lt_err("descriptor", e))
}

/// A column-major layout of `rows×cols` (leading dimension `rows`), batched `nb` times.
fn layout(ty: sys::cudaDataType, rows: usize, cols: usize, nb: usize) -> Result<MatLayout> {
    let l = MatLayout(
        lt::create_matrix_layout(ty, rows as u64, cols as u64, wide(rows)?)
            .map_err(|e| lt_err("layout", e))?,
    );
    if nb > 1 {
        let count = i32::try_from(nb).map_err(|_| BackendError::TooLarge {
            elements: nb as u128,
            detail: "too many stacked matrices for cuBLASLt".into(),
        })?;
        let stride =
            wide(rows)?
                .checked_mul(wide(cols)?)
                .ok_or_else(|| BackendError::TooLarge {
                    elements: (rows as u128) * (cols as u128),
                    detail: "matrix too large for cuBLASLt".into(),
                })?;
        // SAFETY: a live layout; the attributes take an i32 and an i64.
        unsafe {
            lt::set_matrix_layout_attribute(
                l.0,
                sys::cublasLtMatrixLayoutAttribute_t::CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                &count as *const i32 as *const c_void,
                size_of::<i32>(),
            )
            .map_err(|e| lt_err("layout", e))?;
            lt::set_matrix_layout_attribute(
                l.0,
                sys::cublasLtMatrixLayoutAttribute_t::CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                &stride as *const i64 as *const c_void,
                size_of::<i64>(),
            )
            .map_err(|e| lt_err("layout", e))?;
        }
    }
    Ok(l)
}

impl Lt {
    /// Loads cuBLASLt and opens a handle (a missing library panics inside cudarc; the caller
    /// catches that).
    pub(super) fn new() -> std::result::Result<Lt, String> {
        let handle = lt::create_handle().map_err(|e| format!("cuBLASLt: {e:?}"))?;
        Ok(Lt {
            handle,
            plans: HashMap::new(),
        })
    }

    /// Queues one product on `stream`, with `workspace` (of [`WORKSPACE_BYTES`]) as scratch.
    ///
    /// # Safety
    /// Every address in `p` must point to a live device buffer large enough for its matrix
    /// (per the shapes and types in `p`), the workspace likewise, and the context be bound.
    pub(super) unsafe fn matmul(
        &mut self,
        p: &Product,
        workspace: u64,
        stream: sys::cudaStream_t,
    ) -> Result<()> {
        let key = Key {
            dims: [p.nb, p.m, p.n, p.k],
            transposed: [p.a.transposed, p.b.transposed],
            types: [p.operand, p.out_type],
            compute: p.compute,
            epilogue: [
                p.epilogue.bias.is_some(),
                p.epilogue.residual.is_some(),
                p.epilogue.relu,
            ],
            align: [
                alignment(p.b.ptr),
                alignment(p.a.ptr),
                alignment(p.epilogue.residual.unwrap_or(p.out)),
                alignment(p.out),
            ],
        };
        if !self.plans.contains_key(&key) {
            let plan = self.plan(p, &key)?;
            self.plans.insert(key, plan);
        }
        let plan = self
            .plans
            .get(&key)
            .ok_or_else(|| BackendError::Device("cuBLASLt plan missing".into()))?;
        if let Some(bias) = p.epilogue.bias {
            set_desc(
                plan.desc.0,
                sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                &bias,
            )?;
        }
        let (one32, zero32, one64, zero64) = (1f32, 0f32, 1f64, 0f64);
        let scale64 = p.epilogue.scale.unwrap_or(1.0);
        let scale32 = scale64 as f32;
        let beta_one = p.epilogue.residual.is_some();
        let (alpha, beta): (*const c_void, *const c_void) = match p.compute {
            Compute::F64 => (
                &scale64 as *const f64 as _,
                if beta_one { &one64 } else { &zero64 } as *const f64 as _,
            ),
            _ => (
                &scale32 as *const f32 as _,
                if beta_one { &one32 } else { &zero32 } as *const f32 as _,
            ),
        };
        let [la, lb, lc, ld] = &plan.layouts;
        lt::matmul(
            self.handle,
            plan.desc.0,
            alpha,
            beta,
            p.b.ptr as *const c_void,
            la.0,
            p.a.ptr as *const c_void,
            lb.0,
            p.epilogue.residual.unwrap_or(p.out) as *const c_void,
            lc.0,
            p.out as *mut c_void,
            ld.0,
            &plan.algo,
            workspace as *mut c_void,
            plan.workspace,
            stream,
        )
        .map_err(|e| lt_err("matmul", e))
    }

    /// Builds the descriptors of a product and asks the heuristic for its fastest algorithm.
    fn plan(&self, p: &Product, key: &Key) -> Result<Plan> {
        let (compute, scale) = match p.compute {
            Compute::F32 => (
                sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                sys::cudaDataType::CUDA_R_32F,
            ),
            Compute::Tf32 => (
                sys::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32,
                sys::cudaDataType::CUDA_R_32F,
            ),
            Compute::F64 => (
                sys::cublasComputeType_t::CUBLAS_COMPUTE_64F,
                sys::cudaDataType::CUDA_R_64F,
            ),
        };
        let (in_ty, out_ty) = (data_type(p.operand)?, data_type(p.out_type)?);
        let desc =
            Desc(lt::create_matmul_desc(compute, scale).map_err(|e| lt_err("descriptor", e))?);
        // The library's A is our B, its B our A (see the module note).
        let (op_a, op_b) = (p.b.transposed as i32, p.a.transposed as i32);
        let epilogue = match (p.epilogue.bias.is_some(), p.epilogue.relu) {
            (true, true) => sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_RELU_BIAS,
            (true, false) => sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_BIAS,
            (false, true) => sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_RELU,
            (false, false) => sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_DEFAULT,
        };
        // SAFETY: a live descriptor; TRANSA/TRANSB take an i32 operation, EPILOGUE a u32
        // enum, BIAS_DATA_TYPE a cudaDataType.
        unsafe {
            set_desc(
                desc.0,
                sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSA,
                &op_a,
            )?;
            set_desc(
                desc.0,
                sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSB,
                &op_b,
            )?;
            set_desc(
                desc.0,
                sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_EPILOGUE,
                &(epilogue as u32),
            )?;
            if p.epilogue.bias.is_some() {
                set_desc(
                    desc.0,
                    sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                    &out_ty,
                )?;
            }
        }
        // Stored shapes, column-major: our B (k×n row-major) is n×k, or k×n when transposed.
        let a_lay = if p.b.transposed {
            layout(in_ty, p.k, p.n, p.nb)?
        } else {
            layout(in_ty, p.n, p.k, p.nb)?
        };
        let b_lay = if p.a.transposed {
            layout(in_ty, p.m, p.k, p.nb)?
        } else {
            layout(in_ty, p.k, p.m, p.nb)?
        };
        let c_lay = layout(out_ty, p.n, p.m, p.nb)?;
        let d_lay = layout(out_ty, p.n, p.m, p.nb)?;

        let pref = Pref(lt::create_matmul_pref().map_err(|e| lt_err("preference", e))?);
        let ws = WORKSPACE_BYTES as u64;
        // SAFETY: a live preference; the attributes take a u64 and u32s.
        unsafe {
            let set = |attr, v: *const c_void, n| {
                lt::set_matmul_pref_attribute(pref.0, attr, v, n)
                    .map_err(|e| lt_err("preference", e))
            };
            use sys::cublasLtMatmulPreferenceAttributes_t as A;
            set(
                A::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                &ws as *const u64 as _,
                size_of::<u64>(),
            )?;
            let attrs = [
                A::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                A::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                A::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                A::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
            ];
            for (attr, a) in attrs.into_iter().zip(&key.align) {
                set(attr, a as *const u32 as _, size_of::<u32>())?;
            }
        }
        // SAFETY: every descriptor is live.
        let found = unsafe {
            lt::get_matmul_algo_heuristic(
                self.handle,
                desc.0,
                a_lay.0,
                b_lay.0,
                c_lay.0,
                d_lay.0,
                pref.0,
            )
        }
        .map_err(|e| {
            BackendError::Device(format!(
                "cuBLASLt has no algorithm for a {}×{}×{} product of {} into {} ({e:?})",
                p.m, p.k, p.n, p.operand, p.out_type
            ))
        })?;
        Ok(Plan {
            desc,
            layouts: [a_lay, b_lay, c_lay, d_lay],
            algo: found.algo,
            workspace: found.workspaceSize.min(WORKSPACE_BYTES),
        })
    }
}
