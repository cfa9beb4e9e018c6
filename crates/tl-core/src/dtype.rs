//! Element types of tensors.

use std::fmt;

/// The element type of a tensor's storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float (the default real type).
    F32,
    /// 64-bit float.
    F64,
    /// IEEE half precision (stored; computed in f32).
    F16,
    /// bfloat16 (stored; computed in f32).
    BF16,
    /// Boolean, one byte per element (0 or 1).
    Bool,
    /// 64-bit signed integer.
    I64,
}

impl DType {
    /// Every element type, for code and tests that go through all of them.
    pub const ALL: [DType; 6] = [
        DType::F32,
        DType::F64,
        DType::F16,
        DType::BF16,
        DType::Bool,
        DType::I64,
    ];

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::F16 | DType::BF16 => 2,
            DType::Bool => 1,
        }
    }

    /// The type arithmetic on this type is carried out in: f64 for f64, f32 for everything else.
    pub fn compute(self) -> DType {
        match self {
            DType::F64 => DType::F64,
            _ => DType::F32,
        }
    }

    /// Parses a `--dtype` value.
    pub fn parse(s: &str) -> Option<DType> {
        match s {
            "f32" | "float32" => Some(DType::F32),
            "f64" | "float64" => Some(DType::F64),
            "f16" | "float16" | "half" => Some(DType::F16),
            "bf16" | "bfloat16" => Some(DType::BF16),
            _ => None,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::Bool => "bool",
            DType::I64 => "i64",
        })
    }
}
