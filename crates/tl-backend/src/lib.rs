//! Tensor storage and the compute backends behind one small trait.
//!
//! The planner and runtime lower every equation onto the primitives of [`Backend`]; the CPU
//! backend ([`cpu::CpuBackend`]) implements them with rayon and a tuned GEMM, and a GPU backend
//! implements the same trait, so a program runs unchanged on either.
#![deny(missing_docs)]

pub mod attention;
mod check;
pub mod cpu;
pub mod cuda;
mod einsum;
pub mod error;
pub mod paths;
pub mod profiled;
pub mod rows;
pub mod split;

pub use attention::AttentionArgs;
pub use error::{BackendError, Result};
pub use host::{HostData, HostTensor};
pub use ops::{BinaryFn, MapExpr, NormFn, ReduceOp, UnaryFn};
pub use rows::RowMapArgs;
pub use tensor::{Layout, Storage, Tensor};
pub use tl_core::{buf, dtype, grad_expr, host, ops, tensor};
pub use tl_core::{Buf, DType};

use std::sync::Arc;

/// The primitives every compute backend provides. Tensors passed in may have any [`Layout`]
/// (permuted or broadcast views); results are fresh, row-major tensors.
pub trait Backend: Send + Sync {
    /// A human name for messages, e.g. `cpu (2 threads)` or `cuda:0 NVIDIA H100`.
    fn name(&self) -> String;

    /// Copies a host tensor into this backend's memory (keeping its element type).
    fn upload(&self, host: &HostTensor) -> Result<Tensor>;

    /// Copies a tensor back to host memory, row-major.
    fn download(&self, tensor: &Tensor) -> Result<HostTensor>;

    /// A tensor of `shape` with every element `value`.
    fn full(&self, shape: &[usize], value: f64, dtype: DType) -> Result<Tensor>;

    /// Evaluates a fused elementwise expression. Every input has rank `out_shape.len()` and each
    /// of its axes has the output's extent or extent 1 (broadcast). Arithmetic runs in
    /// `dtype.compute()`; the result is stored as `dtype`.
    fn map(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        out_shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor>;

    /// Several elementwise expressions over the same inputs, each stored as its own tensor of
    /// `out_shape` and `dtype` (an optimiser step writes a parameter and its moments). A
    /// backend may compute them in one pass over the inputs; the default maps each in turn.
    fn map_many(
        &self,
        exprs: &[MapExpr],
        inputs: &[&Tensor],
        out_shape: &[usize],
        dtype: DType,
    ) -> Result<Vec<Tensor>> {
        exprs
            .iter()
            .map(|e| self.map(e, inputs, out_shape, dtype))
            .collect()
    }

    /// The reduction with `op` of an elementwise expression over its last `reduced` axes:
    /// `reduce(map(expr, inputs, shape, dtype), last reduced axes, op)`, as `reduce` types its
    /// result. A backend may compute it without storing the expression's values (one pass);
    /// the default maps, then reduces.
    fn map_reduce(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        shape: &[usize],
        reduced: usize,
        op: ReduceOp,
        dtype: DType,
    ) -> Result<Tensor> {
        let values = self.map(expr, inputs, shape, dtype)?;
        let axes: Vec<usize> = (shape.len().saturating_sub(reduced)..shape.len()).collect();
        self.reduce(&values, &axes, op)
    }

    /// A 0-d f32 tensor that is 0 when every element of every tensor in `tensors` is finite
    /// and NaN otherwise: the check a training step makes of all its gradients, which a
    /// backend may make in one pass over all of them. The default sums `x·0` over each tensor
    /// ([`Backend::map_reduce`]), then adds the sums.
    fn non_finite_flag(&self, tensors: &[&Tensor]) -> Result<Tensor> {
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
            parts.push(self.map_reduce(&zeroed, &[t], t.shape(), all, ReduceOp::Sum, dtype)?);
        }
        let mut sum = MapExpr::Const(0.0);
        for k in 0..parts.len() {
            sum = MapExpr::Binary(BinaryFn::Add, Box::new(sum), Box::new(MapExpr::Input(k)));
        }
        let refs: Vec<&Tensor> = parts.iter().collect();
        self.map(&sum, &refs, &[], DType::F32)
    }

    /// Combines the elements along `axes` with `op`, removing those axes. With no axes it
    /// copies. An empty reduction yields 0.
    fn reduce(&self, input: &Tensor, axes: &[usize], op: ReduceOp) -> Result<Tensor>;

    /// Pairwise einsum with the sum-product semiring: axis `k` of `a` carries label
    /// `a_labels[k]` (likewise `b`); the result has one axis per `out_labels` entry; labels absent
    /// from `out_labels` are summed. Labels are distinct within each operand. Lowered to
    /// (batched) GEMM.
    fn contract(
        &self,
        a: &Tensor,
        a_labels: &[u32],
        b: &Tensor,
        b_labels: &[u32],
        out_labels: &[u32],
    ) -> Result<Tensor>;

    /// A contraction followed by an elementwise epilogue: `expr` reads the product of `a` and
    /// `b` (as [`Backend::contract`] computes it) as `Input(0)` and `extra[k]` as
    /// `Input(k + 1)`; every extra input has the product's rank, each axis of the product's
    /// extent or 1 (broadcast). The result is stored as `dtype`. Backends fuse what they can
    /// (a bias, a residual and ReLU run inside the GEMM on CUDA); the default multiplies, then
    /// maps.
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
        multiply_then_map(
            self, a, a_labels, b, b_labels, out_labels, expr, extra, dtype,
        )
    }

    /// Softmax or layer norm along one axis.
    fn normalize(&self, input: &Tensor, axis: usize, func: NormFn) -> Result<Tensor>;

    /// Softmax or layer norm along `axis` of an elementwise expression of `shape`:
    /// `normalize(map(expr, inputs, shape, dtype), axis, func)`. A backend may compute it
    /// without storing the expression's values (the scores' scale and mask inside the softmax);
    /// the default maps, then normalises.
    fn map_normalize(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        shape: &[usize],
        axis: usize,
        func: NormFn,
        dtype: DType,
    ) -> Result<Tensor> {
        let values = self.map(expr, inputs, shape, dtype)?;
        self.normalize(&values, axis, func)
    }

    /// A map whose expression also reads reductions along one axis of its inputs
    /// ([`RowMapArgs`]): reduction `j` reduces an expression of the inputs and of the
    /// reductions before it along `axis`, and the map reads it as `Input(inputs.len() + j)`,
    /// the same value all along the axis. A backend may compute each row in one pass; the
    /// default reduces ([`Backend::map_reduce`]), then maps.
    fn map_rows(&self, args: &RowMapArgs<'_>) -> Result<Tensor> {
        rows::reduce_then_map(self, args)
    }

    /// Attention: the softmax along `key` of an elementwise function of `Q·K`, contracted
    /// with V over `key` ([`AttentionArgs`]). A backend may compute it without storing the
    /// scores; the default computes the scores, their softmax and the product one after the
    /// other, exactly as the unfused plan does.
    fn attention(&self, args: &AttentionArgs<'_>) -> Result<Tensor> {
        attention::composed(self, args)
    }

    /// `out.flat[k] = input.flat[index[k]]`, or 0 where `index[k] < 0`; `out` has `out_shape`
    /// (`index.len()` elements). Index arithmetic, slices, diagonals and constants lower to this.
    fn gather(&self, input: &Tensor, index: &[i64], out_shape: &[usize]) -> Result<Tensor>;

    /// `out.flat[index[k]] op= values.flat[k]` for every `index[k] >= 0`, over a fresh `out` of
    /// `out_shape`; cells that receive nothing are 0. (The reverse of `gather`.)
    fn scatter(
        &self,
        values: &Tensor,
        index: &[i64],
        out_shape: &[usize],
        op: ReduceOp,
    ) -> Result<Tensor>;

    /// [`Backend::gather`] with an index vector the caller keeps and reuses: a device backend
    /// may keep its own copy of the indices (keyed by the allocation, which the copy keeps
    /// alive), so repeated evaluations do not upload and check them again.
    fn gather_shared(
        &self,
        input: &Tensor,
        index: &Arc<Vec<i64>>,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        self.gather(input, index, out_shape)
    }

    /// [`Backend::scatter`] with an index vector the caller keeps and reuses (see
    /// [`Backend::gather_shared`]).
    fn scatter_shared(
        &self,
        values: &Tensor,
        index: &Arc<Vec<i64>>,
        out_shape: &[usize],
        op: ReduceOp,
    ) -> Result<Tensor> {
        self.scatter(values, index, out_shape, op)
    }

    /// Converts to another element type.
    fn cast(&self, input: &Tensor, dtype: DType) -> Result<Tensor>;

    /// Waits for all queued work to finish.
    fn synchronize(&self) -> Result<()>;

    /// Whether this backend is a GPU (the planner then keeps larger relations dense, for its
    /// matrix units).
    fn is_accelerator(&self) -> bool {
        false
    }

    /// The backend's engine for strata of path rules over binary relations ([`paths`]), if
    /// it has one (the CUDA backend); `None` (the default) leaves them to the CPU.
    fn paths(&self) -> Option<&dyn paths::PathDevice> {
        None
    }

    /// A one-line summary of device memory statistics, for backends that pool memory;
    /// `None` (the default) for backends that do not.
    fn memory_report(&self) -> Option<String> {
        None
    }

    /// Like [`Backend::map_many`], but writes each result into the matching tensor of `outs`
    /// (contiguous, of `out_shape`, any of which may also be an input: each element is read
    /// before it is written). A training step updates its parameters this way, so that a
    /// recorded step can be replayed over the same memory. Backends that cannot write in place
    /// say so with an error (the default); callers use [`Backend::can_record`] to know.
    fn map_many_into(
        &self,
        exprs: &[MapExpr],
        inputs: &[&Tensor],
        out_shape: &[usize],
        outs: &[&Tensor],
    ) -> Result<()> {
        let _ = (exprs, inputs, out_shape, outs);
        Err(not_recordable())
    }

    /// Whether [`Backend::begin_recording`], [`Backend::end_recording`], [`Backend::replay`]
    /// and [`Backend::map_many_into`] work here (a GPU queue that can be captured). The
    /// default is `false`.
    fn can_record(&self) -> bool {
        false
    }

    /// Starts recording: the work queued from now until [`Backend::end_recording`] is kept,
    /// not run, so that [`Backend::replay`] can run all of it again with one call (a CUDA
    /// graph). Memory handed out while recording stays reserved for the recording. Nothing
    /// may be read back while recording.
    fn begin_recording(&self) -> Result<()> {
        Err(not_recordable())
    }

    /// Ends the recording [`Backend::begin_recording`] started. Always ends it, also when it
    /// failed (an operation that cannot be recorded was queued), which is then the error.
    fn end_recording(&self) -> Result<Recording> {
        Err(not_recordable())
    }

    /// Queues every operation of a recording again, over the same memory.
    fn replay(&self, recording: &Recording) -> Result<()> {
        let _ = recording;
        Err(not_recordable())
    }
}

/// Recorded work of a backend ([`Backend::begin_recording`]), replayed with
/// [`Backend::replay`]. Dropping it frees what it holds (the memory it reserved returns to
/// the backend once no queued work can still use it).
pub struct Recording {
    /// The backend's own representation.
    pub inner: Box<dyn std::any::Any + Send + Sync>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recording")
    }
}

/// The error of a recording operation on a backend that cannot record.
fn not_recordable() -> BackendError {
    BackendError::Device("this backend cannot record and replay work".into())
}

/// A pairwise product as a program stores one: in a 16-bit program straight from the GEMM in
/// the program's type (no f32 result to convert), otherwise as [`Backend::contract`] types it.
pub fn stored_product<B: Backend + ?Sized>(
    be: &B,
    a: (&Tensor, &[u32]),
    b: (&Tensor, &[u32]),
    out_labels: &[u32],
    dtype: DType,
) -> Result<Tensor> {
    if matches!(dtype, DType::F16 | DType::BF16) {
        be.contract_map(
            a.0,
            a.1,
            b.0,
            b.1,
            out_labels,
            &MapExpr::Input(0),
            &[],
            dtype,
        )
    } else {
        be.contract(a.0, a.1, b.0, b.1, out_labels)
    }
}

/// [`Backend::contract_map`] as two steps, a contraction then a map (the unfused way, which
/// backends fall back to).
#[allow(clippy::too_many_arguments)]
pub(crate) fn multiply_then_map<B: Backend + ?Sized>(
    be: &B,
    a: &Tensor,
    a_labels: &[u32],
    b: &Tensor,
    b_labels: &[u32],
    out_labels: &[u32],
    expr: &MapExpr,
    extra: &[&Tensor],
    dtype: DType,
) -> Result<Tensor> {
    let product = be.contract(a, a_labels, b, b_labels, out_labels)?;
    let mut inputs = Vec::with_capacity(extra.len() + 1);
    inputs.push(&product);
    inputs.extend_from_slice(extra);
    let shape = product.shape().to_vec();
    be.map(expr, &inputs, &shape, dtype)
}
