//! The CPU backend: host-memory tensors, rayon for parallel loops and the `gemm` crate for
//! contractions.
//!
//! Arithmetic runs in f64 when a tensor's type is f64 and in f32 otherwise
//! ([`DType::compute`]). `map` stores its result as the requested type; the other operations
//! return their input's compute type (Boolean gathers stay Boolean).

mod contract;
mod copy;
#[cfg(test)]
mod fixtures;
mod gather;
mod gemv;
mod map;
mod normalize;
mod reduce;
mod simd;
mod storage;
#[cfg(test)]
mod tests_contract;
mod vector;

use crate::check::upload_len;
use crate::dtype::DType;
use crate::error::Result;
use crate::host::{HostData, HostTensor};
use crate::kernel::{Form, Info, Kernel, Product};
use crate::ops::{MapExpr, NormFn, ReduceOp};
use crate::tensor::Tensor;
use crate::{calls, Backend, Index};
use half::{bf16, f16};
use rayon::prelude::*;
use storage::{copy_raw, numel_checked, output, tensor, Float};

/// The backend that runs every primitive on the host CPU.
#[derive(Clone, Debug)]
pub struct CpuBackend {
    info: Info,
}

impl Default for CpuBackend {
    fn default() -> Self {
        CpuBackend::new()
    }
}

impl CpuBackend {
    /// A CPU backend using rayon's global thread pool (counted without starting it, as
    /// rayon will size it: `RAYON_NUM_THREADS`, else the available parallelism).
    pub fn new() -> Self {
        let threads = std::env::var("RAYON_NUM_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        CpuBackend {
            info: Info {
                name: format!("cpu ({threads} threads)"),
                accelerator: false,
                recordable: false,
            },
        }
    }

    fn fill_tensor(&self, shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
        let n = numel_checked(shape)?;
        let data = match dtype {
            DType::F32 => HostData::F32(vec![value as f32; n].into()),
            DType::F64 => HostData::F64(vec![value; n].into()),
            DType::F16 => HostData::F16(vec![f16::from_f64(value); n].into()),
            DType::BF16 => HostData::BF16(vec![bf16::from_f64(value); n].into()),
            DType::Bool => HostData::Bool(vec![u8::from(value != 0.0); n].into()),
            DType::I64 => HostData::I64(vec![value as i64; n].into()),
        };
        Ok(tensor(shape, data))
    }

    /// A dropout mask ([`crate::Body::Mask`]), element by element in parallel.
    fn mask(
        &self,
        shape: &[usize],
        p: f64,
        stream: u64,
        counter: &Tensor,
        dtype: DType,
    ) -> Result<Tensor> {
        let n = numel_checked(shape)?;
        let count = self.download(counter)?.data.to_f64();
        let key = tl_core::random::mask_key(stream, count.first().copied().unwrap_or(0.0) as u64);
        // Computed in the type's compute type, as a device computes it.
        let keep = match dtype.compute() {
            DType::F64 => 1.0 / (1.0 - p),
            _ => f64::from((1.0 / (1.0 - p)) as f32),
        };
        let values: Vec<f64> = (0..n as u64)
            .into_par_iter()
            .map(|i| {
                if tl_core::random::kept(key, i, p) {
                    keep
                } else {
                    0.0
                }
            })
            .collect();
        Ok(tensor(shape, HostData::F64(values.into()).convert(dtype)))
    }

    fn map_one(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        out_shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor> {
        numel_checked(out_shape)?;
        if dtype.compute() == DType::F64 {
            map::map::<f64>(expr, inputs, out_shape, dtype)
        } else {
            map::map::<f32>(expr, inputs, out_shape, dtype)
        }
    }

    fn map_several(
        &self,
        exprs: &[MapExpr],
        inputs: &[&Tensor],
        out_shape: &[usize],
        dtype: DType,
    ) -> Result<Vec<Tensor>> {
        numel_checked(out_shape)?;
        if dtype.compute() == DType::F64 {
            map::map_many::<f64>(exprs, inputs, out_shape, dtype)
        } else {
            map::map_many::<f32>(exprs, inputs, out_shape, dtype)
        }
    }

    fn map_reduce_rows(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        shape: &[usize],
        reduced: usize,
        op: ReduceOp,
        dtype: DType,
    ) -> Result<Tensor> {
        numel_checked(shape)?;
        if dtype.compute() == DType::F64 {
            let (v, s) = map::map_reduce::<f64>(expr, inputs, shape, reduced, op)?;
            Ok(output(&s, v, DType::F64))
        } else {
            let (v, s) = map::map_reduce::<f32>(expr, inputs, shape, reduced, op)?;
            Ok(output(&s, v, DType::F32))
        }
    }

    fn reduce_tensor(&self, input: &Tensor, axes: &[usize], op: ReduceOp) -> Result<Tensor> {
        if is_f64(input) {
            let (v, shape) = reduce::reduce::<f64>(input, axes, op)?;
            Ok(output(&shape, v, DType::F64))
        } else {
            let (v, shape) = reduce::reduce::<f32>(input, axes, op)?;
            Ok(output(&shape, v, DType::F32))
        }
    }

    fn contract_pair(
        &self,
        a: &Tensor,
        a_labels: &[u32],
        b: &Tensor,
        b_labels: &[u32],
        out_labels: &[u32],
    ) -> Result<Tensor> {
        if is_f64(a) || is_f64(b) {
            let (v, shape) = contract::contract::<f64>(a, a_labels, b, b_labels, out_labels)?;
            Ok(output(&shape, v, DType::F64))
        } else {
            let (v, shape) = contract::contract::<f32>(a, a_labels, b, b_labels, out_labels)?;
            Ok(output(&shape, v, DType::F32))
        }
    }

    fn normalize_rows(&self, input: &Tensor, axis: usize, func: NormFn) -> Result<Tensor> {
        if is_f64(input) {
            let v = normalize::normalize::<f64>(input, axis, func)?;
            Ok(output(input.shape(), v, DType::F64))
        } else {
            let v = normalize::normalize::<f32>(input, axis, func)?;
            Ok(output(input.shape(), v, DType::F32))
        }
    }

    fn cast_to(&self, input: &Tensor, dtype: DType) -> Result<Tensor> {
        let shape = input.shape();
        if input.dtype == dtype {
            return Ok(tensor(shape, copy_raw("cast", input)?));
        }
        match (input.dtype, dtype) {
            (_, DType::Bool | DType::I64) => {
                Ok(tensor(shape, copy_raw("cast", input)?.convert(dtype)))
            }
            (DType::F64 | DType::I64, _) | (_, DType::F64) => {
                Ok(output(shape, read_all::<f64>(input)?, dtype))
            }
            _ => Ok(output(shape, read_all::<f32>(input)?, dtype)),
        }
    }
}

/// Whether a tensor is computed in f64 (otherwise f32).
fn is_f64(t: &Tensor) -> bool {
    t.dtype.compute() == DType::F64
}

impl Backend for CpuBackend {
    fn info(&self) -> &Info {
        &self.info
    }

    fn upload(&self, host: &HostTensor) -> Result<Tensor> {
        upload_len(host)?;
        Ok(tensor(&host.shape, host.data.clone()))
    }

    fn download(&self, t: &Tensor) -> Result<HostTensor> {
        Ok(HostTensor {
            shape: t.shape().to_vec(),
            data: copy_raw("download", t)?,
        })
    }

    fn kernel(&self, k: &Kernel<'_>) -> Result<Vec<Tensor>> {
        let one = |t: Result<Tensor>| t.map(|t| vec![t]);
        match k.form()? {
            Form::Fill(v) => one(self.fill_tensor(k.shape, v, k.dtype)),
            Form::Convert(x) => one(self.cast_to(x, k.dtype)),
            Form::Map(expr) => one(self.map_one(expr, k.inputs, k.shape, k.dtype)),
            Form::MapMany(exprs) => self.map_several(exprs, k.inputs, k.shape, k.dtype),
            Form::MapInto(..) => Err(crate::not_recordable()),
            Form::Reduce { input, axes, op } => one(self.reduce_tensor(input, axes, op)),
            Form::MapReduce { expr, last, op } => {
                one(self.map_reduce_rows(expr, k.inputs, k.shape, last, op, k.dtype))
            }
            Form::Normalize { input, axis, func } => one(self.normalize_rows(input, axis, func)),
            Form::Mask { p, stream, counter } => {
                one(self.mask(k.shape, p, stream, counter, k.dtype))
            }
            Form::MapNormalize { .. } | Form::Rows(_) | Form::Composed => calls::composed(self, k),
        }
    }

    fn product(&self, p: &Product<'_>) -> Result<Tensor> {
        match p.epilogue {
            None => self.contract_pair(p.a.0, p.a.1, p.b.0, p.b.1, p.out_labels),
            Some(_) => calls::multiply_then_map(self, p),
        }
    }

    fn gather(&self, input: &Tensor, index: Index<'_>, out_shape: &[usize]) -> Result<Tensor> {
        let index = index.values();
        if let Some(data) = gather::gather_bool(input, index, out_shape)? {
            return Ok(tensor(out_shape, data));
        }
        if is_f64(input) {
            let v = gather::gather::<f64>(input, index, out_shape)?;
            Ok(output(out_shape, v, DType::F64))
        } else {
            let v = gather::gather::<f32>(input, index, out_shape)?;
            Ok(output(out_shape, v, DType::F32))
        }
    }

    fn scatter(
        &self,
        values: &Tensor,
        index: Index<'_>,
        out_shape: &[usize],
        op: ReduceOp,
    ) -> Result<Tensor> {
        numel_checked(out_shape)?;
        let index = index.values();
        if is_f64(values) {
            let v = gather::scatter::<f64>(values, index, out_shape, op)?;
            Ok(output(out_shape, v, DType::F64))
        } else {
            let v = gather::scatter::<f32>(values, index, out_shape, op)?;
            Ok(output(out_shape, v, DType::F32))
        }
    }

    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
}

/// Every element of a tensor's view in compute type `T`, row-major and owned.
fn read_all<T: Float>(t: &Tensor) -> Result<Vec<T>> {
    Ok(storage::read::<T>("cast", t)?.into_owned())
}

#[cfg(test)]
mod tests {
    use crate::cpu::fixtures::*;
    use crate::cpu::CpuBackend;
    use crate::dtype::DType;
    use crate::error::{BackendError, Result};
    use crate::host::{HostData, HostTensor};
    use crate::{Backend, Calls};

    #[test]
    fn upload_download_full_cast() -> Result<()> {
        let be = CpuBackend::new();
        assert!(be.name().starts_with("cpu ("));
        let h = HostTensor::from_f64(
            vec![2, 3],
            vec![1.0, -2.0, 3.5, 0.25, 5.0, -6.0],
            DType::F32,
        );
        let t = be.upload(&h)?;
        assert_eq!(be.download(&t)?, h);
        let tt = t.permuted(&[1, 0]);
        assert_eq!(fetch(&be, &tt)?.1, vec![1.0, 0.25, -2.0, 5.0, 3.5, -6.0]);
        let bad = HostTensor {
            shape: vec![4],
            data: HostData::F32(vec![1.0].into()),
        };
        assert!(matches!(be.upload(&bad), Err(BackendError::Shape { .. })));
        for dtype in DType::ALL {
            let f = be.full(&[3, 2], 2.0, dtype)?;
            assert_eq!(f.dtype, dtype);
            assert_eq!(
                fetch(&be, &f)?.1,
                vec![if dtype == DType::Bool { 1.0 } else { 2.0 }; 6]
            );
            let c = be.cast(&tt, dtype)?;
            assert_eq!(be.download(&c)?.data, be.download(&tt)?.data.convert(dtype));
        }
        be.synchronize()
    }
}
