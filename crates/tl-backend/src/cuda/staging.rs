//! A small page-locked host buffer for short read-backs. The device copies into page-locked
//! memory directly; into ordinary memory the driver first copies into a buffer of its own. A
//! training step reads back one scalar per step, so this is on every step's path.

use cudarc::driver::result as drv;

/// Bytes of the buffer: read-backs up to this size go through it.
pub(crate) const STAGING_BYTES: usize = 4096;

/// The page-locked buffer (`cuMemHostAlloc`), freed on drop.
pub(crate) struct Staging {
    ptr: *mut u8,
}

// SAFETY: the buffer is plain host memory owned by this value; the backend only touches it
// while holding the mutex it keeps the `Staging` in.
unsafe impl Send for Staging {}

impl Staging {
    /// Allocates the buffer; `None` when the driver cannot (the caller then reads back into
    /// ordinary memory).
    pub(crate) fn new() -> Option<Staging> {
        // SAFETY: a plain host allocation in the current (bound) context.
        let ptr = unsafe { drv::malloc_host(STAGING_BYTES, 0) }.ok()?;
        Some(Staging {
            ptr: ptr.cast::<u8>(),
        })
    }

    /// The buffer as `n` elements of `T` (`n·size_of::<T>() ≤ STAGING_BYTES`; the buffer is
    /// page-aligned, so aligned for any `T`).
    pub(crate) fn slice<T: Copy>(&mut self, n: usize) -> &mut [T] {
        let n = n.min(STAGING_BYTES / std::mem::size_of::<T>().max(1));
        // SAFETY: the buffer holds STAGING_BYTES bytes, is page-aligned and is borrowed
        // mutably from `self` for the slice's lifetime; `T: Copy` has no invalid bit patterns
        // for the element types read back (numbers).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.cast::<T>(), n) }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `malloc_host` and no copy into it is pending (every copy is
        // waited for before the buffer's lock is released).
        let _ = unsafe { drv::free_host(self.ptr.cast()) };
    }
}
