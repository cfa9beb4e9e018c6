//! Gathers and scatters on the device: index vectors uploaded once and cached, and the kernels
//! that read or accumulate through them.

use super::*;

impl CudaBackend {
    /// Rejects gather/scatter indices past the end.
    /// A device copy of an index vector checked against `bound` elements: from the cache when
    /// `shared` is the caller's reusable vector, else uploaded for this call.
    pub(super) fn device_index(
        &self,
        op: &'static str,
        index: &[i64],
        shared: Option<&Arc<Vec<i64>>>,
        bound: usize,
    ) -> Result<Arc<CudaStorage>> {
        let Some(shared) = shared else {
            Self::check_indices(op, index, bound)?;
            return Ok(Arc::new(self.upload_slice(index, DType::I64)?));
        };
        let key = Arc::as_ptr(shared) as usize;
        if let Some(entry) = lock(&self.indices).get(&key) {
            if entry.max < bound as i64 || entry.max < 0 {
                return Ok(entry.device.clone());
            }
        }
        Self::check_indices(op, index, bound)?;
        let device = Arc::new(self.upload_slice(index, DType::I64)?);
        let mut cache = lock(&self.indices);
        let bytes: usize = cache.values().map(|e| e.host.len() * 8).sum();
        if bytes + index.len() * 8 > INDEX_CACHE_BYTES {
            cache.clear();
        }
        cache.insert(
            key,
            IndexEntry {
                host: shared.clone(),
                device: device.clone(),
                max: index.iter().copied().max().unwrap_or(-1),
            },
        );
        Ok(device)
    }

    pub(super) fn gather_with(
        &self,
        input: &Tensor,
        index: &[i64],
        shared: Option<&Arc<Vec<i64>>>,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        let n = numel_checked(out_shape)?;
        if index.len() != n {
            return Err(shape_err(
                "gather",
                format!("{} indices for an output of {n} elements", index.len()),
            ));
        }
        // A gather only moves elements, so it keeps their type (a 16-bit weight stays 16-bit
        // for the tensor cores).
        let dtype = input.dtype;
        let (_keep, src) = self.packed(input, dtype)?;
        let out = self.alloc(n, dtype)?;
        if n > 0 {
            let idx = self.device_index("gather", index, shared, input.numel())?;
            let meta = [n as i64, src as i64, idx.ptr() as i64, out.ptr() as i64];
            self.launch(
                codegen::kernel_key(&("gather", dtype)),
                || Ok(codegen::gather_source(dtype)),
                &meta,
                grid_for(n),
            )?;
        }
        Ok(Self::wrap(out, out_shape))
    }

    pub(super) fn scatter_with(
        &self,
        values: &Tensor,
        index: &[i64],
        shared: Option<&Arc<Vec<i64>>>,
        out_shape: &[usize],
        op: ReduceOp,
    ) -> Result<Tensor> {
        let n = numel_checked(out_shape)?;
        let real = Real::of(values.dtype);
        if index.len() != values.numel() {
            return Err(shape_err(
                "scatter",
                format!("{} indices for {} values", index.len(), values.numel()),
            ));
        }
        let (_keep, vals) = self.packed(values, real.dtype())?;
        let out = self.alloc(n, real.dtype())?;
        let init = match op {
            ReduceOp::Sum | ReduceOp::Mean => 0.0,
            ReduceOp::Max => f64::NEG_INFINITY,
            ReduceOp::Min => f64::INFINITY,
        };
        self.fill_value(&out, n, init)?;
        if n == 0 {
            return Ok(Self::wrap(out, out_shape));
        }
        let count = if op == ReduceOp::Sum {
            None
        } else {
            let c = self.alloc_bytes(n * 4, n, DType::F32)?;
            self.fill_value(&c, n, 0.0)?;
            Some(c)
        };
        let count_ptr = count.as_ref().map_or(0, |c| c.ptr());
        if !index.is_empty() {
            let idx = self.device_index("scatter", index, shared, n)?;
            let meta = [
                index.len() as i64,
                vals as i64,
                idx.ptr() as i64,
                out.ptr() as i64,
                count_ptr as i64,
            ];
            self.launch(
                codegen::kernel_key(&("scatter", op, real)),
                || Ok(codegen::scatter_source(op, real)),
                &meta,
                grid_for(index.len()),
            )?;
        }
        if count.is_some() {
            let meta = [n as i64, out.ptr() as i64, count_ptr as i64];
            self.launch(
                codegen::kernel_key(&("scatter finish", op, real)),
                || Ok(codegen::scatter_finish_source(op, real)),
                &meta,
                grid_for(n),
            )?;
        }
        Ok(Self::wrap(out, out_shape))
    }

    pub(super) fn check_indices(op: &'static str, index: &[i64], n: usize) -> Result<()> {
        if let Some(&bad) = index.iter().find(|&&i| i >= 0 && i as u64 >= n as u64) {
            return Err(shape_err(
                op,
                format!("index {bad} into a tensor of {n} elements"),
            ));
        }
        Ok(())
    }
}
