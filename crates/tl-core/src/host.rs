//! Tensors in host memory, in a plain row-major form: what files are read into and written
//! from, what queries print, and how data moves onto and off a device.

use crate::buf::Buf;
use crate::dtype::DType;
use half::{bf16, f16};

/// Row-major element data of one host tensor, in its own element type.
#[derive(Clone, Debug, PartialEq)]
pub enum HostData {
    /// f32 elements.
    F32(Buf<f32>),
    /// f64 elements.
    F64(Buf<f64>),
    /// f16 elements.
    F16(Buf<f16>),
    /// bf16 elements.
    BF16(Buf<bf16>),
    /// Booleans as 0/1 bytes.
    Bool(Buf<u8>),
    /// i64 elements.
    I64(Buf<i64>),
}

/// A dense row-major tensor in host memory.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// Extent of each axis (empty for a scalar).
    pub shape: Vec<usize>,
    /// The elements, row-major; `len == shape.iter().product()`.
    pub data: HostData,
}

impl HostData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            HostData::F32(v) => v.len(),
            HostData::F64(v) => v.len(),
            HostData::F16(v) => v.len(),
            HostData::BF16(v) => v.len(),
            HostData::Bool(v) => v.len(),
            HostData::I64(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            HostData::F32(_) => DType::F32,
            HostData::F64(_) => DType::F64,
            HostData::F16(_) => DType::F16,
            HostData::BF16(_) => DType::BF16,
            HostData::Bool(_) => DType::Bool,
            HostData::I64(_) => DType::I64,
        }
    }

    /// Every element widened to f64.
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            HostData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            HostData::F64(v) => v.to_vec(),
            HostData::F16(v) => v.iter().map(|x| x.to_f64()).collect(),
            HostData::BF16(v) => v.iter().map(|x| x.to_f64()).collect(),
            HostData::Bool(v) => v.iter().map(|&x| f64::from(x)).collect(),
            HostData::I64(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    /// Every element converted to f32.
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            HostData::F32(v) => v.to_vec(),
            HostData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            HostData::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            HostData::BF16(v) => v.iter().map(|x| x.to_f32()).collect(),
            HostData::Bool(v) => v.iter().map(|&x| f32::from(x)).collect(),
            HostData::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The data converted to another element type (rounding to nearest; Booleans are `x != 0`).
    pub fn convert(&self, dtype: DType) -> HostData {
        if self.dtype() == dtype {
            return self.clone();
        }
        let v = self.to_f64();
        match dtype {
            DType::F32 => HostData::F32(v.iter().map(|&x| x as f32).collect()),
            DType::F64 => HostData::F64(v.into()),
            DType::F16 => HostData::F16(v.iter().map(|&x| f16::from_f64(x)).collect()),
            DType::BF16 => HostData::BF16(v.iter().map(|&x| bf16::from_f64(x)).collect()),
            DType::Bool => HostData::Bool(v.iter().map(|&x| u8::from(x != 0.0)).collect()),
            DType::I64 => HostData::I64(v.iter().map(|&x| x as i64).collect()),
        }
    }
}

impl HostTensor {
    /// A tensor from f64 values, stored as `dtype`.
    pub fn from_f64(shape: Vec<usize>, data: Vec<f64>, dtype: DType) -> Self {
        HostTensor {
            shape,
            data: HostData::F64(data.into()).convert(dtype),
        }
    }

    /// A tensor from f32 values.
    pub fn from_f32(shape: Vec<usize>, data: Vec<f32>) -> Self {
        HostTensor {
            shape,
            data: HostData::F32(data.into()),
        }
    }

    /// A scalar.
    pub fn scalar(value: f64, dtype: DType) -> Self {
        HostTensor::from_f64(Vec::new(), vec![value], dtype)
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }
}
