//! Reading tensors of any layout and element type as flat f32/f64 buffers, and wrapping
//! computed buffers back into fresh row-major tensors.

pub(crate) use crate::check::{check_layout, numel_checked, shape_err};
use crate::dtype::DType;
use crate::error::{BackendError, Result};
use crate::host::HostData;
use crate::tensor::{Layout, Storage, Tensor};
use half::{bf16, f16};
use rayon::prelude::*;
use std::borrow::Cow;
use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};
use std::sync::Arc;

pub(crate) use super::copy::strided_collect;

/// The two compute types (f32 and f64), so every kernel is written once.
pub(crate) trait Float:
    Copy
    + Send
    + Sync
    + Debug
    + PartialOrd
    + Default
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
{
    /// The storage type holding this compute type.
    const DTYPE: DType;
    /// Additive identity.
    const ZERO: Self;
    /// Largest value (the identity of `min`).
    const INF: Self;
    /// Rounds from f64.
    fn from_f64(x: f64) -> Self;
    /// Widens to f64.
    fn to_f64(self) -> f64;
    /// Converts a count.
    fn from_usize(n: usize) -> Self;
    /// The elements of `data` when they are stored as this type.
    fn slice(data: &HostData) -> Option<&[Self]>;
    /// Wraps computed elements as host data of this type.
    fn into_host(v: Vec<Self>) -> HostData;
    /// `e^x`, branch-free (`tl_core::math`), so loops over it vectorise.
    fn exp(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Larger of two (NaN-ignoring like `f32::max`).
    fn max(self, o: Self) -> Self;
    /// Smaller of two.
    fn min(self, o: Self) -> Self;
    /// Converts every element of any storage type to this type.
    fn convert_all(data: &HostData, layout: &Layout) -> Vec<Self>;
    /// Σ a[i]·b[i] (vectorised; see [`super::simd`]).
    fn dot(a: &[Self], b: &[Self]) -> Self;
    /// `o[i] += s · x[i]` (vectorised; see [`super::simd`]).
    fn axpy(o: &mut [Self], s: Self, x: &[Self]);
    /// Four rows dotted with one vector (vectorised; see [`super::simd`]).
    fn dot4(rows: [&[Self]; 4], v: &[Self]) -> [Self; 4];
}

macro_rules! impl_float {
    ($t:ty, $dt:expr, $variant:ident, $dot:ident, $axpy:ident, $dot4:ident, $exp:path) => {
        impl Float for $t {
            #[inline]
            fn dot4(rows: [&[Self]; 4], v: &[Self]) -> [Self; 4] {
                super::simd::$dot4(rows, v)
            }
            #[inline]
            fn dot(a: &[Self], b: &[Self]) -> Self {
                super::simd::$dot(a, b)
            }
            #[inline]
            fn axpy(o: &mut [Self], s: Self, x: &[Self]) {
                super::simd::$axpy(o, s, x)
            }
            const DTYPE: DType = $dt;
            const ZERO: Self = 0.0;
            const INF: Self = <$t>::INFINITY;
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_usize(n: usize) -> Self {
                n as $t
            }
            fn slice(data: &HostData) -> Option<&[Self]> {
                match data {
                    HostData::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn into_host(v: Vec<Self>) -> HostData {
                HostData::$variant(v.into())
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn max(self, o: Self) -> Self {
                <$t>::max(self, o)
            }
            #[inline(always)]
            fn min(self, o: Self) -> Self {
                <$t>::min(self, o)
            }
            fn convert_all(data: &HostData, layout: &Layout) -> Vec<Self> {
                match data {
                    HostData::F32(v) => strided_collect(v, layout, |x| x as $t),
                    HostData::F64(v) => strided_collect(v, layout, |x| x as $t),
                    HostData::F16(v) => strided_collect(v, layout, |x: f16| x.to_f32() as $t),
                    HostData::BF16(v) => strided_collect(v, layout, |x: bf16| x.to_f32() as $t),
                    HostData::Bool(v) => strided_collect(v, layout, |x: u8| x as $t),
                    HostData::I64(v) => strided_collect(v, layout, |x: i64| x as $t),
                }
            }
        }
    };
}

impl_float!(
    f32,
    DType::F32,
    F32,
    dot_f32,
    axpy_f32,
    dot4_f32,
    tl_core::math::exp_f32
);
impl_float!(
    f64,
    DType::F64,
    F64,
    dot_f64,
    axpy_f64,
    dot4_f64,
    tl_core::math::exp_f64
);

/// The host data behind a tensor, or a `Device` error for storage of another backend.
pub(crate) fn host(t: &Tensor) -> Result<&Arc<HostData>> {
    match &t.storage {
        Storage::Host(h) => Ok(h),
        Storage::Device(_) => Err(BackendError::Device(
            "the CPU backend was handed a tensor in device memory; download it first".into(),
        )),
    }
}

/// A tensor's elements in row-major order as compute type `T`: borrowed when the storage
/// already holds `T` contiguously, converted or gathered otherwise.
pub(crate) fn read<'a, T: Float>(op: &'static str, t: &'a Tensor) -> Result<Cow<'a, [T]>> {
    read_view(op, t, &t.layout)
}

/// Like [`read`], but through another layout over the same storage (e.g. with broadcast
/// axes shrunk to extent 1).
pub(crate) fn read_view<'a, T: Float>(
    op: &'static str,
    t: &'a Tensor,
    layout: &Layout,
) -> Result<Cow<'a, [T]>> {
    let data = host(t)?;
    check_layout(op, layout, data.len())?;
    if let Some(s) = T::slice(data) {
        if layout.is_contiguous() {
            let n = layout.numel();
            return Ok(Cow::Borrowed(&s[layout.offset..layout.offset + n]));
        }
    }
    Ok(Cow::Owned(T::convert_all(data, layout)))
}

/// Converts computed elements to storage of `dtype` (Booleans are `x != 0`).
pub(crate) fn to_host<T: Float>(v: Vec<T>, dtype: DType) -> HostData {
    if dtype == T::DTYPE {
        return T::into_host(v);
    }
    let it = v.par_iter();
    match dtype {
        DType::F32 => HostData::F32(it.map(|&x| x.to_f64() as f32).collect()),
        DType::F64 => HostData::F64(it.map(|&x| x.to_f64()).collect()),
        DType::F16 => HostData::F16(it.map(|&x| f16::from_f64(x.to_f64())).collect()),
        DType::BF16 => HostData::BF16(it.map(|&x| bf16::from_f64(x.to_f64())).collect()),
        DType::Bool => HostData::Bool(it.map(|&x| u8::from(x != T::ZERO)).collect()),
        DType::I64 => HostData::I64(it.map(|&x| x.to_f64() as i64).collect()),
    }
}

/// A fresh row-major tensor over host data (whose length must match the shape).
pub(crate) fn tensor(shape: &[usize], data: HostData) -> Tensor {
    Tensor {
        layout: Layout::contiguous(shape),
        dtype: data.dtype(),
        storage: Storage::Host(Arc::new(data)),
    }
}

/// A fresh row-major tensor from computed elements, stored as `dtype`.
pub(crate) fn output<T: Float>(shape: &[usize], v: Vec<T>, dtype: DType) -> Tensor {
    tensor(shape, to_host(v, dtype))
}

/// The row-major elements of a tensor's view in its own element type: the storage itself
/// (shared, not copied) when the view is all of it in order, else a copy.
pub(crate) fn copy_raw(op: &'static str, t: &Tensor) -> Result<HostData> {
    let data = host(t)?;
    check_layout(op, &t.layout, data.len())?;
    let l = &t.layout;
    if l.offset == 0 && l.is_contiguous() && l.numel() == data.len() {
        return Ok(data.as_ref().clone());
    }
    Ok(match data.as_ref() {
        HostData::F32(v) => HostData::F32(strided_collect(v, l, |x| x).into()),
        HostData::F64(v) => HostData::F64(strided_collect(v, l, |x| x).into()),
        HostData::F16(v) => HostData::F16(strided_collect(v, l, |x| x).into()),
        HostData::BF16(v) => HostData::BF16(strided_collect(v, l, |x| x).into()),
        HostData::Bool(v) => HostData::Bool(strided_collect(v, l, |x| x).into()),
        HostData::I64(v) => HostData::I64(strided_collect(v, l, |x| x).into()),
    })
}

/// A block of not yet initialised elements, set to zero.
pub(crate) fn zeroed<T: Float>(chunk: &mut [std::mem::MaybeUninit<T>]) -> &mut [T] {
    let len = chunk.len();
    let ptr = chunk.as_mut_ptr().cast::<T>();
    // SAFETY: `ptr` points to `len` writable elements of `T`; the compute types (f32, f64) are
    // plain floats for which all-zero bytes are the value 0, so after the write the block is
    // initialised, and the returned slice borrows `chunk` exclusively.
    unsafe {
        std::ptr::write_bytes(ptr, 0, len);
        std::slice::from_raw_parts_mut(ptr, len)
    }
}

/// An empty buffer with room for `numel` elements, or an `OutOfMemory` error instead of the
/// allocator aborting the process.
pub(crate) fn reserve<T>(numel: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(numel)
        .map_err(|_| BackendError::OutOfMemory {
            device: "cpu".into(),
            requested: numel.saturating_mul(std::mem::size_of::<T>()),
            free: 0,
        })?;
    Ok(v)
}
