//! The CUDA engine as a [`Backend`]: each primitive mapped onto the generated kernels,
//! cuBLASLt products, recordings and the memory pool of this module.

use super::*;

impl CudaBackend {
    pub(crate) fn fill_tensor(&self, shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
        let n = numel_checked(shape)?;
        let s = self.alloc(n, dtype)?;
        self.fill_value(&s, n, value)?;
        Ok(Self::wrap(s, shape))
    }

    pub(crate) fn map_one(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        out_shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor> {
        check_expr(expr, inputs.len())?;
        self.elementwise(expr, inputs, out_shape, dtype, Real::of(dtype))
    }

    pub(crate) fn map_several(
        &self,
        exprs: &[MapExpr],
        inputs: &[&Tensor],
        out_shape: &[usize],
        dtype: DType,
    ) -> Result<Vec<Tensor>> {
        for e in exprs {
            check_expr(e, inputs.len())?;
        }
        let outs: Vec<(MapExpr, DType)> = exprs.iter().map(|e| (e.clone(), dtype)).collect();
        self.elementwise_many(&outs, inputs, out_shape, Real::of(dtype))
    }

    pub(crate) fn map_into(
        &self,
        exprs: &[MapExpr],
        inputs: &[&Tensor],
        out_shape: &[usize],
        outs: &[&Tensor],
    ) -> Result<()> {
        if exprs.len() != outs.len() {
            return Err(shape_err(
                "map_many_into",
                format!("{} expressions for {} outputs", exprs.len(), outs.len()),
            ));
        }
        broadcastable(inputs, out_shape)?;
        let mut keep = Vec::with_capacity(outs.len());
        let mut typed = Vec::with_capacity(outs.len());
        for (e, t) in exprs.iter().zip(outs) {
            check_expr(e, inputs.len())?;
            if t.shape() != out_shape || !t.layout.is_contiguous() || t.layout.offset != 0 {
                return Err(shape_err(
                    "map_many_into",
                    format!(
                        "an output must be a whole row-major tensor of {out_shape:?}, not a view of {:?}",
                        t.shape()
                    ),
                ));
            }
            keep.push(self.dev("map_many_into", t)?);
            typed.push((e.clone(), t.dtype));
        }
        let real = if typed.iter().any(|(_, d)| *d == DType::F64) {
            Real::F64
        } else {
            Real::F32
        };
        let ptrs: Vec<u64> = keep.iter().map(|d| d.base).collect();
        self.elementwise_into(&typed, inputs, out_shape, &ptrs, real)
    }

    pub(crate) fn map_reduce_rows(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        shape: &[usize],
        reduced: usize,
        op: ReduceOp,
        dtype: DType,
    ) -> Result<Tensor> {
        check_expr(expr, inputs.len())?;
        broadcastable(inputs, shape)?;
        let split = shape.len().saturating_sub(reduced);
        let r: usize = shape[split..].iter().product();
        let rows: usize = shape[..split].iter().product();
        // Longer rows over several axes: the last axes first (fused, as below), then the
        // rest of the partial results (a mean of equal-sized means is the mean).
        if r > 1 << 16 && reduced >= 2 && shape[shape.len() - 1] <= 1 << 16 {
            let mut inner = 1;
            let mut k = 0;
            while k < reduced && inner * shape[shape.len() - 1 - k] <= 1 << 16 {
                inner *= shape[shape.len() - 1 - k];
                k += 1;
            }
            let partial = self.map_reduce_rows(expr, inputs, shape, k, op, dtype)?;
            let axes: Vec<usize> = (split..shape.len() - k).collect();
            return self.reduce_axes(&partial, &axes, op);
        }
        // Rows of a few thousand at most, in one warp or block each; other shapes (and empty
        // ones) map, then reduce.
        if reduced == 0 || r == 0 || rows == 0 || r > 1 << 16 {
            let values = self.map_one(expr, inputs, shape, dtype)?;
            let axes: Vec<usize> = (split..shape.len()).collect();
            return self.reduce_axes(&values, &axes, op);
        }
        let real = Real::of(dtype);
        let out = self.alloc(rows, real.dtype())?;
        let outs = [(expr.clone(), real.dtype())];
        let layout = if r <= render::WARP_ROW_MAX {
            FoldLayout::Warp
        } else {
            FoldLayout::Block
        };
        let walk = Walk::Fold { op, layout };
        let fused = self.fused_expr(&outs, inputs, shape, &[out.ptr()], real, walk)?;
        if !pieces::one_kernel(&fused.spec) {
            drop(fused);
            let values = self.map_one(expr, inputs, shape, dtype)?;
            let axes: Vec<usize> = (split..shape.len()).collect();
            return self.reduce_axes(&values, &axes, op);
        }
        let mut meta = fused.meta;
        meta.extend([rows, r, r, 1, r].map(|w| w as i64));
        self.launch_spec(
            "map_reduce",
            &fused.spec,
            &meta,
            reduce::fold_grid(layout, rows),
        )?;
        drop(fused.keep);
        Ok(Self::wrap(out, &shape[..split]))
    }

    pub(crate) fn map_normalize_rows(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        shape: &[usize],
        axis: usize,
        func: NormFn,
        dtype: DType,
    ) -> Result<Tensor> {
        check_expr(expr, inputs.len())?;
        // Normalised in the compute type, stored in a floating type.
        let dtype = match dtype {
            DType::F64 | DType::F32 | DType::F16 | DType::BF16 => dtype,
            _ => DType::F32,
        };
        let (reductions, out) = func.as_rows();
        let rows = RowMapArgs {
            expr: &out,
            inputs,
            reductions: &reductions,
            shape,
            axis,
            dtype,
        };
        self.rows_of(std::slice::from_ref(expr), &rows)
    }

    pub(crate) fn reduce_tensor(
        &self,
        input: &Tensor,
        axes: &[usize],
        op: ReduceOp,
    ) -> Result<Tensor> {
        self.reduce_axes(input, axes, op)
    }

    pub(crate) fn contract_pair(
        &self,
        a: &Tensor,
        a_labels: &[u32],
        b: &Tensor,
        b_labels: &[u32],
        out_labels: &[u32],
    ) -> Result<Tensor> {
        contract::contract(self, a, a_labels, b, b_labels, out_labels)
    }

    pub(crate) fn product_with_epilogue(
        &self,
        p: &Product<'_>,
        e: crate::kernel::Epilogue<'_>,
    ) -> Result<Tensor> {
        let ((a, a_labels), (b, b_labels), out_labels) = (p.a, p.b, p.out_labels);
        let (expr, extra, dtype) = (e.expr, e.extra, e.dtype);
        check_expr(expr, extra.len() + 1)?;
        if let Some(t) = contract::contract_epilogue(
            self, a, a_labels, b, b_labels, out_labels, expr, extra, dtype,
        )? {
            return Ok(t);
        }
        // The epilogue reads the product where cuBLASLt left it, permuting it on the way. In
        // a 16-bit program the product is stored in the program's type, as the unfused plan
        // stores it: half the bytes to write and to read back.
        let half =
            matches!(dtype, DType::F16 | DType::BF16) && a.dtype == dtype && b.dtype == dtype;
        let store = half.then_some(dtype);
        let product = contract::contract_view(self, a, a_labels, b, b_labels, out_labels, store)?;
        let mut inputs = Vec::with_capacity(extra.len() + 1);
        inputs.push(&product);
        inputs.extend_from_slice(extra);
        let shape = product.shape().to_vec();
        self.map_one(expr, &inputs, &shape, dtype)
    }

    pub(crate) fn normalize_rows(
        &self,
        input: &Tensor,
        axis: usize,
        func: NormFn,
    ) -> Result<Tensor> {
        let rank = input.rank();
        if axis >= rank {
            return Err(shape_err(
                "normalize",
                format!("axis {axis} of a rank-{rank} tensor"),
            ));
        }
        // Normalised in the compute type, stored in the input's floating type.
        let storage = match input.dtype {
            DType::F64 | DType::F32 | DType::F16 | DType::BF16 => input.dtype,
            _ => DType::F32,
        };
        let shape = input.shape().to_vec();
        self.map_normalize_rows(&MapExpr::Input(0), &[input], &shape, axis, func, storage)
    }

    pub(crate) fn cast_to(&self, input: &Tensor, dtype: DType) -> Result<Tensor> {
        let wide = matches!(input.dtype, DType::F64 | DType::I64)
            || matches!(dtype, DType::F64 | DType::Bool | DType::I64);
        let real = if wide { Real::F64 } else { Real::F32 };
        self.elementwise(&MapExpr::Input(0), &[input], input.shape(), dtype, real)
    }
}

impl Backend for CudaBackend {
    fn info(&self) -> &Info {
        &self.info
    }

    fn kernel(&self, k: &Kernel<'_>) -> Result<Vec<Tensor>> {
        let one = |t: Result<Tensor>| t.map(|t| vec![t]);
        match k.form()? {
            Form::Fill(v) => one(self.fill_tensor(k.shape, v, k.dtype)),
            Form::Convert(x) => one(self.cast_to(x, k.dtype)),
            Form::Map(expr) => one(self.map_one(expr, k.inputs, k.shape, k.dtype)),
            Form::MapMany(exprs) => self.map_several(exprs, k.inputs, k.shape, k.dtype),
            Form::MapInto(exprs, outs) => {
                self.map_into(exprs, k.inputs, k.shape, outs)?;
                Ok(Vec::new())
            }
            Form::Reduce { input, axes, op } => one(self.reduce_tensor(input, axes, op)),
            Form::MapReduce { expr, last, op } => {
                one(self.map_reduce_rows(expr, k.inputs, k.shape, last, op, k.dtype))
            }
            Form::Normalize { input, axis, func } => one(self.normalize_rows(input, axis, func)),
            Form::MapNormalize { expr, axis, func } => {
                one(self.map_normalize_rows(expr, k.inputs, k.shape, axis, func, k.dtype))
            }
            Form::Rows(args) => one(self.map_rows_call(&args)),
            Form::Mask { p, stream, counter } => {
                one(self.mask(k.shape, (p, stream), counter, k.dtype))
            }
            Form::Composed => calls::composed(self, k),
        }
    }

    fn product(&self, p: &Product<'_>) -> Result<Tensor> {
        match p.epilogue {
            None => self.contract_pair(p.a.0, p.a.1, p.b.0, p.b.1, p.out_labels),
            Some(e) => self.product_with_epilogue(p, e),
        }
    }

    fn gather(&self, input: &Tensor, index: Index<'_>, out_shape: &[usize]) -> Result<Tensor> {
        match index {
            Index::Once(v) => self.gather_with(input, v, None, out_shape),
            Index::Shared(v) => self.gather_with(input, v, Some(v), out_shape),
        }
    }

    fn scatter(
        &self,
        values: &Tensor,
        index: Index<'_>,
        out_shape: &[usize],
        op: ReduceOp,
    ) -> Result<Tensor> {
        match index {
            Index::Once(v) => self.scatter_with(values, v, None, out_shape, op),
            Index::Shared(v) => self.scatter_with(values, v, Some(v), out_shape, op),
        }
    }

    fn upload(&self, host: &HostTensor) -> Result<Tensor> {
        upload_len(host)?;
        let s = match &host.data {
            HostData::F32(v) => self.upload_slice(v, DType::F32)?,
            HostData::F64(v) => self.upload_slice(v, DType::F64)?,
            HostData::F16(v) => self.upload_slice(v, DType::F16)?,
            HostData::BF16(v) => self.upload_slice(v, DType::BF16)?,
            HostData::Bool(v) => self.upload_slice(v, DType::Bool)?,
            HostData::I64(v) => self.upload_slice(v, DType::I64)?,
        };
        Ok(Self::wrap(s, &host.shape))
    }

    fn download(&self, t: &Tensor) -> Result<HostTensor> {
        let n = numel_checked(t.shape())?;
        let r = self.dev("download", t)?;
        // A row-major view is copied straight; any other layout is packed on the device.
        let (_keep, ptr) = if t.layout.is_contiguous() {
            (r.keep, r.base + (t.layout.offset * t.dtype.size()) as u64)
        } else {
            self.packed(t, t.dtype)?
        };
        let data = match t.dtype {
            DType::F32 => HostData::F32(self.download_vec(ptr, n, 0f32)?.into()),
            DType::F64 => HostData::F64(self.download_vec(ptr, n, 0f64)?.into()),
            DType::F16 => HostData::F16(self.download_vec(ptr, n, f16::ZERO)?.into()),
            DType::BF16 => HostData::BF16(self.download_vec(ptr, n, bf16::ZERO)?.into()),
            DType::Bool => HostData::Bool(self.download_vec(ptr, n, 0u8)?.into()),
            DType::I64 => HostData::I64(self.download_vec(ptr, n, 0i64)?.into()),
        };
        Ok(HostTensor {
            shape: t.shape().to_vec(),
            data,
        })
    }

    fn non_finite_flag(&self, tensors: &[&Tensor]) -> Result<Tensor> {
        let out = self.alloc(1, DType::F32)?;
        self.fill_value(&out, 1, 0.0)?;
        // One kernel per element type, over as many whole row-major tensors as its argument
        // block holds; views are checked through a copy.
        let mut groups: Vec<(DType, Vec<(DevRef, usize)>)> = Vec::new();
        for t in tensors {
            let n = t.numel();
            if n == 0 {
                continue;
            }
            let d = if t.layout.is_contiguous() {
                let r = self.dev("non_finite_flag", t)?;
                DevRef {
                    base: r.base + (t.layout.offset * t.dtype.size()) as u64,
                    ..r
                }
            } else {
                let copy = self.cast_to(t, t.dtype)?;
                self.dev("non_finite_flag", &copy)?
            };
            match groups.iter_mut().find(|(g, _)| *g == t.dtype) {
                Some((_, list)) => list.push((d, n)),
                None => groups.push((t.dtype, vec![(d, n)])),
            }
        }
        const PER_LAUNCH: usize = 200;
        for (dtype, list) in &groups {
            let storage = match dtype {
                DType::F64 | DType::F32 | DType::F16 | DType::BF16 => *dtype,
                // Booleans and integers are always finite.
                _ => continue,
            };
            for chunk in list.chunks(PER_LAUNCH) {
                let mut meta = vec![out.ptr() as i64, chunk.len() as i64];
                for (d, n) in chunk {
                    meta.extend([d.base as i64, *n as i64]);
                }
                let most = chunk.iter().map(|(_, n)| *n).max().unwrap_or(1);
                let Some(cap) = codegen::meta_cap(meta.len()) else {
                    return Err(BackendError::Device(
                        "non_finite_flag: too many tensors for one kernel".into(),
                    ));
                };
                self.launch(
                    codegen::kernel_key(&("non_finite", storage, cap)),
                    || Ok(codegen::non_finite_source(storage, cap)),
                    &meta,
                    grid_for(most).min(2048),
                )?;
            }
        }
        drop(groups);
        Ok(Self::wrap(out, &[]))
    }

    fn begin_recording(&self) -> Result<()> {
        let mut current = lock(&self.recording);
        if current.is_some() {
            return Err(BackendError::Device(
                "a recording is already being captured".into(),
            ));
        }
        self.bind()?;
        self.stream
            .begin_capture(dsys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED)
            .map_err(|e| dev_err("starting a graph capture", e))?;
        *current = Some(self.pool.begin_recording());
        Ok(())
    }

    fn end_recording(&self) -> Result<crate::Recording> {
        let Some(id) = lock(&self.recording).take() else {
            return Err(BackendError::Device(
                "no recording is being captured".into(),
            ));
        };
        self.pool.end_recording();
        let graph = match self.stream.end_capture(dsys::CUgraphInstantiate_flags(0)) {
            Ok(Some(g)) => g,
            Ok(None) => {
                self.pool.release_recording(id);
                return Err(BackendError::Device("the capture recorded nothing".into()));
            }
            Err(e) => {
                self.pool.release_recording(id);
                return Err(dev_err("capturing a graph", e));
            }
        };
        Ok(crate::Recording {
            inner: Box::new(record::CudaRecording {
                graph: Mutex::new(record::GraphCell(graph)),
                id,
                pool: self.pool.clone(),
                ctx: self.ctx.clone(),
            }),
        })
    }

    fn replay(&self, recording: &crate::Recording) -> Result<()> {
        let Some(r) = recording.inner.downcast_ref::<record::CudaRecording>() else {
            return Err(BackendError::Device(
                "replay: the recording is not from the CUDA backend".into(),
            ));
        };
        lock(&r.graph)
            .0
            .launch()
            .map_err(|e| dev_err("launching a graph", e))
    }

    fn paths(&self) -> Option<&dyn crate::paths::PathDevice> {
        Some(self)
    }

    fn attention(&self, args: &crate::AttentionArgs<'_>) -> Result<Tensor> {
        self.attention_call(args)
    }

    fn synchronize(&self) -> Result<()> {
        self.bind()?;
        self.stream
            .synchronize()
            .map_err(|e| dev_err("waiting for the device", e))
    }

    fn memory_report(&self) -> Option<String> {
        Some(format!(
            "{}; copied to the device {}, to the host {}",
            format_memory_stats(&self.memory_stats()),
            mib(self.to_device.load(Ordering::Relaxed) as usize),
            mib(self.to_host.load(Ordering::Relaxed) as usize)
        ))
    }
}
