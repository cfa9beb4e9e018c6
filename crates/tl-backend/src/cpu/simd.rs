//! Hand-vectorised inner loops for the bandwidth-bound kernels (dot products and scaled
//! column sums of matrix–vector products).
//!
//! The crate is compiled for baseline x86-64, and even inside `#[target_feature]` functions the
//! auto-vectoriser keeps to 128-bit vectors for these loops, reaching under half the cache
//! bandwidth. So with AVX-512 present (checked at run time) these use explicit 512-bit FMAs
//! with several independent accumulators; elsewhere a portable multi-accumulator loop.

/// Independent accumulators in the portable dot product.
const LANES: usize = 16;

/// Portable dot product with several accumulators, combined pairwise.
fn dot_portable<T>(a: &[T], b: &[T]) -> T
where
    T: Copy + Default + std::ops::Add<Output = T> + std::ops::Mul<Output = T>,
{
    let mut acc = [T::default(); LANES];
    let (ca, ra) = a.as_chunks::<LANES>();
    let (cb, rb) = b.as_chunks::<LANES>();
    for (xa, xb) in ca.iter().zip(cb) {
        for i in 0..LANES {
            acc[i] = acc[i] + xa[i] * xb[i];
        }
    }
    let mut tail = T::default();
    for (&x, &y) in ra.iter().zip(rb) {
        tail = tail + x * y;
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] = acc[i] + acc[i + width];
        }
    }
    acc[0] + tail
}

/// Whether the explicit AVX-512 kernels can run here.
#[inline]
fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The AVX-512 versions of `dot` and `axpy` for one element type (`W` lanes per register).
#[cfg(target_arch = "x86_64")]
macro_rules! avx512_kernels {
    ($t:ty, $dot:ident, $axpy:ident, $dot4:ident, $w:expr, $set0:ident, $load:ident,
     $store:ident, $fmadd:ident, $add:ident, $reduce:ident, $splat:ident) => {
        /// Four dot products against one vector at once: four memory streams keep more
        /// loads in flight than one, and each load of `v` serves four rows.
        #[target_feature(enable = "avx512f")]
        pub(super) fn $dot4(rows: [&[$t]; 4], v: &[$t]) -> [$t; 4] {
            const W: usize = $w;
            let n = rows.iter().fold(v.len(), |n, r| n.min(r.len()));
            let p = rows.map(|r| r.as_ptr());
            let pv = v.as_ptr();
            let mut acc = [[$set0(); 4]; 2];
            let mut i = 0;
            while i + 2 * W <= n {
                for (h, acc) in acc.iter_mut().enumerate() {
                    let o = i + h * W;
                    // SAFETY: o + W <= n, inside `v` and every row.
                    let x = unsafe { $load(pv.add(o)) };
                    for (s, pr) in acc.iter_mut().zip(&p) {
                        // SAFETY: as above.
                        *s = $fmadd(unsafe { $load(pr.add(o)) }, x, *s);
                    }
                }
                i += 2 * W;
            }
            let mut out = [0.0; 4];
            for (r, o) in out.iter_mut().enumerate() {
                *o = $reduce($add(acc[0][r], acc[1][r]));
                for k in i..n {
                    *o += rows[r][k] * v[k];
                }
            }
            out
        }

        /// Σ a[i]·b[i] with four independent 512-bit accumulators.
        #[target_feature(enable = "avx512f")]
        pub(super) fn $dot(a: &[$t], b: &[$t]) -> $t {
            const W: usize = $w;
            let n = a.len().min(b.len());
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            let mut acc = [$set0(); 4];
            let mut i = 0;
            while i + 4 * W <= n {
                for (j, s) in acc.iter_mut().enumerate() {
                    // SAFETY: i + j·W + W <= n, inside both slices.
                    let (x, y) = unsafe { ($load(pa.add(i + j * W)), $load(pb.add(i + j * W))) };
                    *s = $fmadd(x, y, *s);
                }
                i += 4 * W;
            }
            while i + W <= n {
                // SAFETY: i + W <= n, inside both slices.
                let (x, y) = unsafe { ($load(pa.add(i)), $load(pb.add(i))) };
                acc[0] = $fmadd(x, y, acc[0]);
                i += W;
            }
            let mut total = $reduce($add($add(acc[0], acc[1]), $add(acc[2], acc[3])));
            for k in i..n {
                total += a[k] * b[k];
            }
            total
        }

        /// `o[i] += s · x[i]`, one 512-bit FMA per register of elements.
        #[target_feature(enable = "avx512f")]
        pub(super) fn $axpy(o: &mut [$t], s: $t, x: &[$t]) {
            const W: usize = $w;
            let n = o.len().min(x.len());
            let (po, px) = (o.as_mut_ptr(), x.as_ptr());
            let sv = $splat(s);
            let mut i = 0;
            while i + W <= n {
                // SAFETY: i + W <= n, inside both slices; `o` is borrowed mutably.
                unsafe { $store(po.add(i), $fmadd($load(px.add(i)), sv, $load(po.add(i)))) };
                i += W;
            }
            for k in i..n {
                o[k] += s * x[k];
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The AVX-512 kernels; callers must have checked for AVX-512F.
    use std::arch::x86_64::*;

    avx512_kernels!(
        f32,
        dot_f32,
        axpy_f32,
        dot4_f32,
        16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_reduce_add_ps,
        _mm512_set1_ps
    );
    avx512_kernels!(
        f64,
        dot_f64,
        axpy_f64,
        dot4_f64,
        8,
        _mm512_setzero_pd,
        _mm512_loadu_pd,
        _mm512_storeu_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd,
        _mm512_reduce_add_pd,
        _mm512_set1_pd
    );
}

/// The dispatching entry points for one element type.
macro_rules! entry_points {
    ($t:ty, $dot:ident, $axpy:ident, $dot4:ident) => {
        /// Four dot products of rows against one vector (over the shortest length).
        pub(crate) fn $dot4(rows: [&[$t]; 4], v: &[$t]) -> [$t; 4] {
            #[cfg(target_arch = "x86_64")]
            if avx512() {
                // SAFETY: AVX-512F was detected on this CPU.
                return unsafe { x86::$dot4(rows, v) };
            }
            rows.map(|r| dot_portable(r, v))
        }

        /// Σ a[i]·b[i] over the shorter length.
        pub(crate) fn $dot(a: &[$t], b: &[$t]) -> $t {
            #[cfg(target_arch = "x86_64")]
            if avx512() {
                // SAFETY: AVX-512F was detected on this CPU.
                return unsafe { x86::$dot(a, b) };
            }
            dot_portable(a, b)
        }

        /// `o[i] += s · x[i]` over the shorter length.
        pub(crate) fn $axpy(o: &mut [$t], s: $t, x: &[$t]) {
            #[cfg(target_arch = "x86_64")]
            if avx512() {
                // SAFETY: AVX-512F was detected on this CPU.
                return unsafe { x86::$axpy(o, s, x) };
            }
            o.iter_mut().zip(x).for_each(|(o, &x)| *o += s * x);
        }
    };
}

entry_points!(f32, dot_f32, axpy_f32, dot4_f32);
entry_points!(f64, dot_f64, axpy_f64, dot4_f64);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::fixtures::{check, Rng};
    use crate::dtype::DType;

    /// Every entry point (the AVX-512 path where the CPU has it) and the portable loop agree
    /// with a float64 reference at lengths around the vector widths.
    #[test]
    fn kernels_match_reference() {
        let mut rng = Rng::new(31);
        for n in [0usize, 1, 7, 15, 16, 17, 31, 33, 63, 64, 65, 129, 1000] {
            let rows: Vec<Vec<f64>> = (0..4).map(|_| rng.values(n, DType::F32)).collect();
            let v = rng.values(n, DType::F32);
            let want: Vec<f64> = rows
                .iter()
                .map(|r| r.iter().zip(&v).map(|(a, b)| a * b).sum())
                .collect();
            let r32: Vec<Vec<f32>> = rows
                .iter()
                .map(|r| r.iter().map(|&x| x as f32).collect())
                .collect();
            let v32: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            let to64 = |x: [f32; 4]| x.map(f64::from).to_vec();
            let q = dot4_f32([&r32[0], &r32[1], &r32[2], &r32[3]], &v32);
            check("dot4_f32", &to64(q), &want, DType::F32);
            let single: Vec<f64> = r32.iter().map(|r| f64::from(dot_f32(r, &v32))).collect();
            check("dot_f32", &single, &want, DType::F32);
            let portable: Vec<f64> = r32
                .iter()
                .map(|r| f64::from(dot_portable(r, &v32)))
                .collect();
            check("dot_portable", &portable, &want, DType::F32);
            let q = dot4_f64([&rows[0], &rows[1], &rows[2], &rows[3]], &v);
            check("dot4_f64", &q, &want, DType::F64);
            let single: Vec<f64> = rows.iter().map(|r| dot_f64(r, &v)).collect();
            check("dot_f64", &single, &want, DType::F64);

            let mut o32 = r32[0].clone();
            axpy_f32(&mut o32, 0.5, &v32);
            let mut o64 = rows[0].clone();
            axpy_f64(&mut o64, 0.5, &v);
            let want: Vec<f64> = rows[0].iter().zip(&v).map(|(a, b)| a + 0.5 * b).collect();
            check(
                "axpy_f32",
                &o32.iter().map(|&x| f64::from(x)).collect::<Vec<_>>(),
                &want,
                DType::F32,
            );
            check("axpy_f64", &o64, &want, DType::F64);
        }
    }
}
