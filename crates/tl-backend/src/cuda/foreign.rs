//! Device memory the CUDA backend did not allocate, and results handed to others. A tensor
//! another framework owns (a PyTorch CUDA tensor, handed over through DLPack) is read where
//! it lies, kept alive by its owner, so it never visits the host; and a result can be handed
//! back the same way, by its device address, with its memory kept until the device is idle.

use super::{CudaStorage, DevRef};
use crate::dtype::DType;
use crate::error::{BackendError, Result};
use crate::tensor::{DeviceStorage, Layout, Storage, Tensor};
use cudarc::driver::CudaContext;
use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// Device memory lent by another owner, which the storage keeps alive.
pub(super) struct ForeignStorage {
    ptr: u64,
    len: usize,
    dtype: DType,
    _owner: Box<dyn Any + Send + Sync>,
}

impl fmt::Debug for ForeignStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ForeignStorage({:#x}, {} × {})",
            self.ptr, self.len, self.dtype
        )
    }
}

impl DeviceStorage for ForeignStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The address, length and type of a device storage of either kind.
pub(super) fn storage_parts(keep: &Arc<dyn DeviceStorage>) -> Option<(u64, usize, DType)> {
    let any = keep.as_any();
    if let Some(s) = any.downcast_ref::<CudaStorage>() {
        return Some((s.ptr(), s.len(), s.dtype));
    }
    any.downcast_ref::<ForeignStorage>()
        .map(|s| (s.ptr, s.len, s.dtype))
}

/// A row-major tensor of `shape` over device memory another owner lends: `ptr` on device 0.
///
/// # Safety
/// `ptr` must be the device address (in device 0's primary context) of at least as many
/// elements of `dtype` as `shape` holds, valid and unchanged by others for as long as `owner`
/// lives, with any work that writes them finished before the tensor is read.
pub unsafe fn borrowed(
    ptr: u64,
    shape: &[usize],
    dtype: DType,
    owner: Box<dyn Any + Send + Sync>,
) -> Result<Tensor> {
    let len = crate::check::numel_checked(shape)?;
    if ptr == 0 && len > 0 {
        return Err(BackendError::Device(
            "a borrowed device tensor has no address".into(),
        ));
    }
    Ok(Tensor {
        layout: Layout::contiguous(shape),
        dtype,
        storage: Storage::Device(Arc::new(ForeignStorage {
            ptr,
            len,
            dtype,
            _owner: owner,
        })),
    })
}

/// A tensor handed to another framework by its device address: the tensor stays alive for as
/// long as the lease does, and dropping the lease waits for the device to be idle first, so
/// work the other framework queued on its own stream has finished reading it before the
/// memory can be reused.
pub struct Lease {
    tensor: Option<Tensor>,
    /// The address of the first element.
    pub ptr: u64,
}

impl Lease {
    /// Leases a row-major tensor in CUDA memory; `None` for any other (host memory, a view
    /// with another layout: pack it first).
    pub fn of(t: &Tensor) -> Option<Lease> {
        let Storage::Device(keep) = &t.storage else {
            return None;
        };
        let (base, len, dtype) = storage_parts(keep)?;
        let l = &t.layout;
        if dtype != t.dtype || !l.is_contiguous() || l.offset + l.numel() > len {
            return None;
        }
        Some(Lease {
            tensor: Some(t.clone()),
            ptr: base + (l.offset * dtype.size()) as u64,
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Without a context the tensor's memory was never reused by a later kernel anyway.
        if let Ok(ctx) = CudaContext::new(0) {
            // A failed wait leaves nothing better to do than to release the memory.
            let _ = ctx.synchronize();
        }
        self.tensor.take();
    }
}

impl DevRef {
    /// The reference to a storage of either kind, after checking its type and size.
    pub(super) fn of(op: &'static str, t: &Tensor, keep: Arc<dyn DeviceStorage>) -> Result<Self> {
        let Some((base, len, dtype)) = storage_parts(&keep) else {
            return Err(BackendError::Device(format!(
                "{op}: the CUDA backend was handed storage of another device"
            )));
        };
        if dtype != t.dtype {
            return Err(crate::check::shape_err(
                op,
                format!("tensor says {} but its storage holds {dtype}", t.dtype),
            ));
        }
        crate::check::check_layout(op, &t.layout, len)?;
        Ok(DevRef { keep, base, len })
    }
}
