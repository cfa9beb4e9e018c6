//! Tensor storage and the compute backends behind one small trait.
//!
//! The planner and runtime lower every equation onto the primitives of [`Backend`]; the CPU
//! backend ([`cpu::CpuBackend`]) implements them with rayon and a tuned GEMM, and a GPU backend
//! implements the same trait, so a program runs unchanged on either.
#![deny(missing_docs)]
// Library code reports failures as errors; only tests may unwrap.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod attention;
mod calls;
mod check;
pub mod cpu;
pub mod cuda;
pub mod devices;
mod einsum;
pub mod error;
pub mod kernel;
pub mod paths;
pub mod profiled;
pub mod rows;
pub mod split;

pub use attention::AttentionArgs;
pub use calls::{stored_product, Calls};
pub use error::{BackendError, Result};
pub use host::{HostData, HostTensor};
pub use kernel::{Body, Epilogue, Info, Kernel, Product};
pub use ops::{BinaryFn, MapExpr, NormFn, ReduceOp, UnaryFn};
pub use rows::RowMapArgs;
pub use tensor::{Layout, Storage, Tensor};
pub use tl_core::{buf, dtype, grad_expr, host, ops, random, tensor};
pub use tl_core::{Buf, DType};

use std::sync::Arc;

/// The primitives every compute backend provides: moving tensors, one fused elementwise
/// [`Kernel`], one [`Product`], attention, gathers and scatters, and recording. Tensors
/// passed in may have any [`Layout`] (permuted or broadcast views); results are fresh,
/// row-major tensors. The everyday calls (`map`, `reduce`, `cast`, `contract`, …) are
/// [`Calls`], written once over these for every backend.
pub trait Backend: Send + Sync {
    /// What this backend is: its name, whether it is a GPU, whether it can record.
    fn info(&self) -> &Info;

    /// Copies a host tensor into this backend's memory (keeping its element type).
    fn upload(&self, host: &HostTensor) -> Result<Tensor>;

    /// Copies a tensor back to host memory, row-major.
    fn download(&self, tensor: &Tensor) -> Result<HostTensor>;

    /// Runs one fused elementwise kernel ([`Kernel`]): its results, one per output (none
    /// when it writes into existing tensors).
    fn kernel(&self, kernel: &Kernel<'_>) -> Result<Vec<Tensor>>;

    /// A pairwise contraction, with its epilogue if it has one ([`Product`]). Lowered to
    /// (batched) GEMM. Without an epilogue the result is f64 when an operand is, f32
    /// otherwise.
    fn product(&self, product: &Product<'_>) -> Result<Tensor>;

    /// Attention: the softmax along `key` of an elementwise function of `Q·K`, contracted
    /// with V over `key` ([`AttentionArgs`]). A backend may compute it without storing the
    /// scores; the default computes the scores, their softmax and the product one after the
    /// other, exactly as the unfused plan does.
    fn attention(&self, args: &AttentionArgs<'_>) -> Result<Tensor> {
        attention::composed(self, args)
    }

    /// `out.flat[k] = input.flat[index[k]]`, or 0 where `index[k] < 0`; `out` has `out_shape`
    /// (`index.len()` elements). Index arithmetic, slices, diagonals and constants lower to this.
    fn gather(&self, input: &Tensor, index: Index<'_>, out_shape: &[usize]) -> Result<Tensor>;

    /// `out.flat[index[k]] op= values.flat[k]` for every `index[k] >= 0`, over a fresh `out` of
    /// `out_shape`; cells that receive nothing are 0. (The reverse of `gather`.)
    fn scatter(
        &self,
        values: &Tensor,
        index: Index<'_>,
        out_shape: &[usize],
        op: ReduceOp,
    ) -> Result<Tensor>;

    /// A 0-d f32 tensor that is 0 when every element of every tensor in `tensors` is finite
    /// and NaN otherwise: the check a training step makes of all its gradients, which a
    /// backend may make in one pass over all of them. The default sums `x·0` over each tensor,
    /// then adds the sums.
    fn non_finite_flag(&self, tensors: &[&Tensor]) -> Result<Tensor> {
        calls::non_finite_by_sums(self, tensors)
    }

    /// Waits for all queued work to finish.
    fn synchronize(&self) -> Result<()>;

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

    /// Starts recording: the work queued from now until [`Backend::end_recording`] is kept,
    /// not run, so that [`Backend::replay`] can run all of it again with one call (a CUDA
    /// graph). Memory handed out while recording stays reserved for the recording. Nothing
    /// may be read back while recording. Only where [`Info::recordable`].
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

/// The index vector of a [`Backend::gather`] or [`Backend::scatter`].
#[derive(Clone, Copy, Debug)]
pub enum Index<'a> {
    /// Used once.
    Once(&'a [i64]),
    /// Kept by the caller and reused: a device backend may keep its own copy (keyed by the
    /// allocation, which the copy keeps alive), so repeated calls do not upload and check
    /// the indices again.
    Shared(&'a Arc<Vec<i64>>),
}

impl Index<'_> {
    /// The indices.
    pub fn values(&self) -> &[i64] {
        match self {
            Index::Once(v) => v,
            Index::Shared(v) => v,
        }
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
pub(crate) fn not_recordable() -> BackendError {
    BackendError::Device("this backend cannot record and replay work".into())
}
