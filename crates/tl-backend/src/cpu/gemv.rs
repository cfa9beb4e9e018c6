//! Matrix–vector products for contractions whose m or n group is empty (bilinear forms,
//! projections onto a vector, dot products). A GEMM kernel packs its operands for reuse that a
//! matrix–vector product never gets, so these run as bandwidth-bound loops instead: dot
//! products over contiguous rows, or scaled column sums over contiguous columns.

use super::storage::Float;
use gemm::Parallelism;
use rayon::prelude::*;
use std::borrow::Cow;

/// Work (rows × k) above which a single product is split across threads.
const PAR_WORK: usize = 1 << 16;

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
        // A few tasks per thread: enough to balance, few enough that scheduling is free.
        let per_thread = rows.div_ceil(4 * rayon::current_num_threads().max(1));
        let rows_per_task = (PAR_WORK / k.max(1)).max(per_thread).clamp(1, rows.max(1));
        let row = |i: usize| {
            let start = mat.off + i * mat.rs;
            &mat.data[start..start + k]
        };
        let work = |(ci, chunk): (usize, &mut [T])| {
            let r0 = ci * rows_per_task;
            let (quads, rest) = chunk.as_chunks_mut::<4>();
            for (q, o) in quads.iter_mut().enumerate() {
                let i = r0 + 4 * q;
                *o = T::dot4([row(i), row(i + 1), row(i + 2), row(i + 3)], v);
            }
            let done = 4 * quads.len();
            for (j, o) in rest.iter_mut().enumerate() {
                *o = T::dot(row(r0 + done + j), v);
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
                T::axpy(chunk, s, &mat.data[start..start + w]);
            }
        };
        if par {
            out.par_chunks_mut(block).enumerate().for_each(work);
        } else {
            out.chunks_mut(block).enumerate().for_each(work);
        }
    }
}

/// Runs one product with an empty m or n group as a matrix–vector product, handing each
/// result to `put(i, value)`. Returns false (doing nothing) when no fast kernel applies.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matvec<T: Float>(
    a: &[T],
    b: &[T],
    (ao, a_rs, a_cs): (usize, usize, usize),
    (bo, b_rs, b_cs): (usize, usize, usize),
    (m, n, k): (usize, usize, usize),
    par: Parallelism,
    put: impl Fn(usize, T),
) -> bool {
    // n == 1: rows of A against B's column; m == 1: rows of Bᵀ against A's row.
    let (mat, vec, (voff, vs), rows) = if n == 1 {
        let mat = Mat {
            data: a,
            off: ao,
            rs: a_rs,
            cs: a_cs,
        };
        (mat, b, (bo, b_rs), m)
    } else {
        let mat = Mat {
            data: b,
            off: bo,
            rs: b_cs,
            cs: b_rs,
        };
        (mat, a, (ao, a_cs), n)
    };
    if !supported(&mat) {
        return false;
    }
    let v: Cow<[T]> = if vs == 1 {
        Cow::Borrowed(&vec[voff..voff + k])
    } else {
        Cow::Owned((0..k).map(|i| vec[voff + i * vs]).collect())
    };
    let mut out = vec![T::ZERO; rows];
    gemv(mat, &v, &mut out, matches!(par, Parallelism::Rayon(_)));
    for (i, x) in out.into_iter().enumerate() {
        put(i, x);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::fixtures::{check, Rng};
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
