//! Test fixtures: a seeded generator, tensors built as permuted/broadcast/offset views, and
//! norm-wise error checks against float64 references.

use crate::dtype::DType;
use crate::error::Result;
use crate::host::{HostData, HostTensor};
use crate::tensor::{Layout, Storage, Tensor};
use crate::Backend;

use std::sync::Arc;

/// SplitMix64: small, seeded, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A nonzero value in ±[0.1, 2), rounded to `dtype`.
    pub fn value(&mut self, dtype: DType) -> f64 {
        let mag = 0.1 + 1.9 * self.unit();
        let x = if self.next_u64() & 1 == 0 { mag } else { -mag };
        round_to(x, dtype)
    }

    pub fn values(&mut self, n: usize, dtype: DType) -> Vec<f64> {
        (0..n).map(|_| self.value(dtype)).collect()
    }

    /// A random permutation of 0..n.
    pub fn perm(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.below(i + 1);
            p.swap(i, j);
        }
        p
    }
}

/// `x` rounded to the precision of `dtype`.
pub fn round_to(x: f64, dtype: DType) -> f64 {
    HostData::F64(vec![x].into()).convert(dtype).to_f64()[0]
}

/// Row-major strides of a shape.
pub fn strides_of(shape: &[usize]) -> Vec<usize> {
    Layout::contiguous(shape).strides
}

/// The multi-index of flat position `i`.
pub fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for a in (0..shape.len()).rev() {
        idx[a] = i % shape[a];
        i /= shape[a];
    }
    idx
}

/// The flat position of a multi-index.
pub fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(strides_of(shape)).map(|(&i, s)| i * s).sum()
}

/// A contiguous tensor of the given logical contents.
pub fn tensor(shape: &[usize], data: &[f64], dtype: DType) -> Tensor {
    let host = HostTensor::from_f64(shape.to_vec(), data.to_vec(), dtype);
    Tensor {
        layout: Layout::contiguous(shape),
        dtype,
        storage: Storage::Host(Arc::new(host.data)),
    }
}

/// A tensor with the given logical contents whose storage holds the axes in the order `phys`
/// (axis k of storage is logical axis `phys[k]`), after a few padding elements.
pub fn permuted_view(shape: &[usize], data: &[f64], dtype: DType, phys: &[usize]) -> Tensor {
    const PAD: usize = 3;
    let pshape: Vec<usize> = phys.iter().map(|&a| shape[a]).collect();
    let n = data.len();
    let mut stored = vec![7.0; PAD + n];
    for (j, slot) in stored[PAD..].iter_mut().enumerate() {
        let pidx = unravel(j, &pshape);
        let mut idx = vec![0; shape.len()];
        for (k, &a) in phys.iter().enumerate() {
            idx[a] = pidx[k];
        }
        *slot = data[ravel(&idx, shape)];
    }
    let mut layout = Layout::contiguous(&pshape);
    layout.offset = PAD;
    // Logical axis a is storage axis position_of(a in phys).
    let inv: Vec<usize> = (0..shape.len())
        .map(|a| phys.iter().position(|&p| p == a).unwrap_or(0))
        .collect();
    Tensor {
        layout: layout.permuted(&inv),
        dtype,
        storage: Storage::Host(Arc::new(HostData::F64(stored.into()).convert(dtype))),
    }
}

/// A view of `shape` whose axes in `bcast` are stride-0 repeats of a smaller tensor.
/// Returns the view and its logical contents.
pub fn broadcast_view(
    rng: &mut Rng,
    shape: &[usize],
    bcast: &[usize],
    dtype: DType,
) -> (Tensor, Vec<f64>) {
    let small: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(a, &n)| if bcast.contains(&a) { 1 } else { n })
        .collect();
    let sdata = rng.values(small.iter().product(), dtype);
    let mut t = tensor(&small, &sdata, dtype);
    for &a in bcast {
        t.layout.shape[a] = shape[a];
        t.layout.strides[a] = 0;
    }
    let n: usize = shape.iter().product();
    let full = (0..n)
        .map(|i| {
            let mut idx = unravel(i, shape);
            for &a in bcast {
                idx[a] = 0;
            }
            sdata[ravel(&idx, &small)]
        })
        .collect();
    (t, full)
}

/// Downloads any tensor as f64 values with its shape.
pub fn fetch(be: &dyn Backend, t: &Tensor) -> Result<(Vec<usize>, Vec<f64>)> {
    let h = be.download(t)?;
    Ok((h.shape.clone(), h.data.to_f64()))
}

/// Norm-wise relative error ‖got − want‖ / ‖want‖ (absolute when `want` is all zero).
pub fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    let num: f64 = got.iter().zip(want).map(|(g, w)| (g - w) * (g - w)).sum();
    let den: f64 = want.iter().map(|w| w * w).sum();
    if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    }
}

/// The tolerance for results computed in `dtype`'s compute type.
pub fn tol(dtype: DType) -> f64 {
    if dtype == DType::F64 {
        1e-12
    } else {
        1e-5
    }
}

/// Asserts ‖got − want‖ ≤ tol · ‖scale‖, where `scale` is the same computation on absolute
/// values (|A|·|B| for a product): the norm-wise bound a floating-point sum of products can
/// meet even when its terms cancel, which no relative bound on the result itself can.
pub fn check_scaled(what: &str, got: &[f64], want: &[f64], scale: &[f64], dtype: DType) {
    let num: f64 = got.iter().zip(want).map(|(g, w)| (g - w) * (g - w)).sum();
    let den: f64 = scale.iter().map(|w| w * w).sum();
    let e = if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    };
    assert!(
        e <= tol(dtype),
        "{what}: scaled error {e:e} (dtype {dtype})"
    );
}

/// Asserts a result matches its reference within the dtype's tolerance.
pub fn check(what: &str, got: &[f64], want: &[f64], dtype: DType) {
    let e = rel_err(got, want);
    assert!(
        e <= tol(dtype),
        "{what}: relative error {e:e} (dtype {dtype})"
    );
}

/// Shapes every op is checked at (odd sizes, unit axes, a scalar).
pub const SHAPES: &[&[usize]] = &[
    &[1],
    &[7],
    &[129],
    &[7, 129],
    &[129, 1, 7],
    &[3, 7, 5, 2],
    &[],
];
/// The two compute types.
pub const FLOATS: [DType; 2] = [DType::F32, DType::F64];
/// A contiguous or randomly permuted tensor of random contents.
pub fn input(rng: &mut Rng, shape: &[usize], dtype: DType) -> (Tensor, Vec<f64>) {
    let d = rng.values(shape.iter().product(), dtype);
    let t = if rng.below(2) == 0 {
        tensor(shape, &d, dtype)
    } else {
        let p = rng.perm(shape.len());
        permuted_view(shape, &d, dtype, &p)
    };
    (t, d)
}
