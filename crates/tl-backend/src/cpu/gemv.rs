//! Matrix–vector products for contractions whose m or n group is empty (bilinear forms,
//! projections onto a vector, dot products). A GEMM kernel packs its operands for reuse that a
//! matrix–vector product never gets, so these run as bandwidth-bound loops instead: dot
//! products over contiguous rows, or scaled column sums over contiguous columns.

use super::storage::Float;
use rayon::prelude::*;

/// Work (rows × k) above which a single product is split across threads.
const PAR_WORK: usize = 1 << 16;
/// Lanes of independent accumulators in a dot product (lets the compiler vectorise).
const LANES: usize = 16;

/// A strided matrix inside a buffer: element (i, k) is `data[off + i*rs + k*cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, T> {
    /// The buffer.
    pub data: &'a [T],
    /// Index of element (0, 0).
    pub off: usize,
    /// Step between rows.
    pub rs: usize,
    /// Step between columns.
    pub cs: usize,
}

/// Whether [`gemv`] has a fast kernel for this matrix (one of its strides is 1).
pub(crate) fn supported<T>(mat: &Mat<'_, T>) -> bool {
    mat.cs == 1 || mat.rs == 1
}

/// `out[i] = Σ_k mat[i, k] · v[k]` for a matrix of `rows × v.len()` that is [`supported`].
/// `parallel` allows splitting the rows across rayon's threads.
pub(crate) fn gemv<T: Float>(mat: Mat<'_, T>, v: &[T], out: &mut [T], parallel: bool) {
    let k = v.len();
    let rows = out.len();
    let par = parallel && rows * k >= PAR_WORK && rows > 1;
    if mat.cs == 1 {
        let rows_per_task = (PAR_WORK / k.max(1)).clamp(1, rows.max(1));
        let work = |(ci, chunk): (usize, &mut [T])| {
            for (j, o) in chunk.iter_mut().enumerate() {
                let start = mat.off + (ci * rows_per_task + j) * mat.rs;
                *o = dot(&mat.data[start..start + k], v);
            }
        };
        if par {
            out.par_chunks_mut(rows_per_task).enumerate().for_each(work);
        } else {
            out.chunks_mut(rows_per_task).enumerate().for_each(work);
        }
    } else {
        // Columns are contiguous: accumulate v[k] * column k, a block of rows at a time.
        let block = if par {
            rows.div_ceil(rayon::current_num_threads().max(1))
                .clamp(256, 8192)
        } else {
            8192
        };
        let work = |(ci, chunk): (usize, &mut [T])| {
            let r0 = ci * block;
            let w = chunk.len();
            chunk.fill(T::ZERO);
            for (kk, &s) in v.iter().enumerate() {
                let start = mat.off + r0 * mat.rs + kk * mat.cs;
                let col = &mat.data[start..start + w];
                chunk.iter_mut().zip(col).for_each(|(o, &x)| *o += s * x);
            }
        };
        if par {
            out.par_chunks_mut(block).enumerate().for_each(work);
        } else {
            out.chunks_mut(block).enumerate().for_each(work);
        }
    }
}

/// A dot product with independent accumulators, combined pairwise.
#[inline]
fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::ZERO; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let mut tail = T::ZERO;
    for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    for (xa, xb) in ca.zip(cb) {
        for ((s, &x), &y) in acc.iter_mut().zip(xa).zip(xb) {
            *s += x * y;
        }
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            let hi = acc[i + width];
            acc[i] += hi;
        }
    }
    acc[0] + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testutil::{check, Rng};
    use crate::dtype::DType;

    /// Both kernels, serial and parallel, against a float64 loop over odd sizes.
    #[test]
    fn kernels_match_reference() {
        let mut rng = Rng::new(21);
        for &(rows, k) in &[
            (1, 1),
            (7, 129),
            (129, 7),
            (1, 4099),
            (3000, 33),
            (33, 3000),
        ] {
            let a32 = rng.values(rows * k + 5, DType::F32);
            let v = rng.values(k, DType::F32);
            for col_major in [false, true] {
                let (rs, cs) = if col_major { (1, rows) } else { (k, 1) };
                let want: Vec<f64> = (0..rows)
                    .map(|i| (0..k).map(|j| a32[5 + i * rs + j * cs] * v[j]).sum())
                    .collect();
                let af: Vec<f32> = a32.iter().map(|&x| x as f32).collect();
                let vf: Vec<f32> = v.iter().map(|&x| x as f32).collect();
                for parallel in [false, true] {
                    let mat = Mat {
                        data: &af[..],
                        off: 5,
                        rs,
                        cs,
                    };
                    let mut out = vec![0f32; rows];
                    gemv(mat, &vf, &mut out, parallel);
                    let got: Vec<f64> = out.iter().map(|&x| f64::from(x)).collect();
                    check("gemv f32", &got, &want, DType::F32);
                    let mat = Mat {
                        data: &a32[..],
                        off: 5,
                        rs,
                        cs,
                    };
                    let mut out = vec![0f64; rows];
                    gemv(mat, &v, &mut out, parallel);
                    check("gemv f64", &out, &want, DType::F64);
                }
            }
        }
    }
}
