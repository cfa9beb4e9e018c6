//! Copies between host and device memory, fills, and packing a tensor contiguous.

use super::*;

impl CudaBackend {
    /// The tensor as a row-major buffer of `dtype` (no copy when it already is one): the
    /// storage to keep alive and the address of its first element.
    pub(super) fn packed(&self, t: &Tensor, dtype: DType) -> Result<(Arc<dyn DeviceStorage>, u64)> {
        if t.dtype == dtype && t.layout.is_contiguous() {
            let r = self.dev("pack", t)?;
            let _ = r.len;
            return Ok((r.keep, r.base + (t.layout.offset * dtype.size()) as u64));
        }
        let c = self.elementwise(&MapExpr::Input(0), &[t], t.shape(), dtype, Real::of(dtype))?;
        let r = self.dev("pack", &c)?;
        Ok((r.keep, r.base))
    }

    /// Fills the first `n` elements of a buffer with `value`, in the buffer's type.
    pub(super) fn fill_value(&self, storage: &CudaStorage, n: usize, value: f64) -> Result<()> {
        let dtype = storage.dtype;
        // Integers are exact up to 2^53 only in double.
        let real = match dtype {
            DType::F64 | DType::I64 => Real::F64,
            _ => Real::F32,
        };
        let fill = [(MapExpr::Const(value), dtype)];
        self.elementwise_into(&fill, &[], &[n], &[storage.ptr()], real)
    }

    /// Copies host elements into a fresh device buffer.
    pub(super) fn upload_slice<T: Copy>(&self, v: &[T], dtype: DType) -> Result<CudaStorage> {
        if lock(&self.recording).is_some() {
            // A recorded copy would read `v`'s memory again at every replay, long after `v`
            // is gone: the recording fails instead.
            return Err(BackendError::Device(
                "host data cannot be copied to the device while recording".into(),
            ));
        }
        let s = self.alloc(v.len(), dtype)?;
        if !v.is_empty() {
            self.to_device
                .fetch_add(std::mem::size_of_val(v) as u64, Ordering::Relaxed);
            self.bind()?;
            // SAFETY: the block holds at least `size_of_val(v)` bytes. From pageable memory the
            // call returns once `v` has been staged, so `v` may go away after it; the copy is
            // ordered after the work already queued that may still use the block.
            unsafe { drv::memcpy_htod_async(s.ptr(), v, self.stream.cu_stream()) }
                .map_err(|e| dev_err("copying to the device", e))?;
        }
        Ok(s)
    }

    /// Copies `n` elements from the device into a host vector.
    pub(super) fn download_vec<T: Copy>(&self, ptr: u64, n: usize, zero: T) -> Result<Vec<T>> {
        let mut v = vec![zero; n];
        self.to_host
            .fetch_add((n * std::mem::size_of::<T>()) as u64, Ordering::Relaxed);
        if n > 0 && n * std::mem::size_of::<T>() <= staging::STAGING_BYTES {
            self.bind()?;
            let mut cell = lock(&self.staging);
            if cell.is_none() {
                *cell = staging::Staging::new();
            }
            if let Some(buf) = cell.as_mut() {
                let dst = buf.slice::<T>(n);
                // SAFETY: as below, into the page-locked buffer, which the lock keeps ours
                // until the copy has been waited for.
                unsafe { drv::memcpy_dtoh_async(dst, ptr, self.stream.cu_stream()) }
                    .map_err(|e| dev_err("copying from the device", e))?;
                self.stream
                    .synchronize()
                    .map_err(|e| dev_err("copying from the device", e))?;
                v.copy_from_slice(dst);
                return Ok(v);
            }
        }
        if n > 0 {
            self.bind()?;
            // SAFETY: `ptr` addresses at least `n` elements of `T` of a live block; the copy
            // is ordered after the work that writes it, and waited for before `v` is read.
            unsafe { drv::memcpy_dtoh_async(&mut v, ptr, self.stream.cu_stream()) }
                .map_err(|e| dev_err("copying from the device", e))?;
            self.stream
                .synchronize()
                .map_err(|e| dev_err("copying from the device", e))?;
        }
        Ok(v)
    }
}
