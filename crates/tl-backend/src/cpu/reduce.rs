//! Reductions (sum, max, min, mean) over any set of axes.
//!
//! The input is viewed as `[kept…, reduced…]`. When that view is row-major, each output is one
//! contiguous run; when `[reduced…, kept…]` is row-major instead, whole rows are accumulated
//! into the output; anything else is first copied into the `[kept…, reduced…]` order.

use super::storage::{check_layout, host, Float};
use crate::check::reduced_axes;
use crate::error::Result;
use crate::ops::ReduceOp;
use crate::tensor::Tensor;
use rayon::prelude::*;
use std::borrow::Cow;

/// Elements per parallel task.
const GRAIN: usize = 1 << 15;

/// Reduces `t` over `axes`, returning the row-major elements and the kept shape.
pub(crate) fn reduce<T: Float>(
    t: &Tensor,
    axes: &[usize],
    op: ReduceOp,
) -> Result<(Vec<T>, Vec<usize>)> {
    let rank = t.rank();
    let reduced = reduced_axes(rank, axes)?;
    let kept: Vec<usize> = (0..rank).filter(|&a| !reduced[a]).collect();
    let red: Vec<usize> = (0..rank).filter(|&a| reduced[a]).collect();
    let out_shape: Vec<usize> = kept.iter().map(|&a| t.shape()[a]).collect();
    let m: usize = out_shape.iter().product();
    let r: usize = red.iter().map(|&a| t.shape()[a]).product();

    let data = host(t)?;
    check_layout("reduce", &t.layout, data.len())?;
    if m == 0 {
        return Ok((Vec::new(), out_shape));
    }
    if r == 0 {
        return Ok((vec![T::ZERO; m], out_shape));
    }
    let kr: Vec<usize> = kept.iter().chain(&red).copied().collect();
    let rk: Vec<usize> = red.iter().chain(&kept).copied().collect();
    let view_kr = t.layout.permuted(&kr);
    let view_rk = t.layout.permuted(&rk);
    let src = T::slice(data);
    let mut out = vec![T::ZERO; m];
    match src {
        Some(s) if view_rk.is_contiguous() && !view_kr.is_contiguous() => {
            let s = &s[t.layout.offset..t.layout.offset + m * r];
            reduce_columns(s, &mut out, r, op);
        }
        _ => {
            let flat: Cow<[T]> = match src {
                Some(s) if view_kr.is_contiguous() => {
                    Cow::Borrowed(&s[t.layout.offset..t.layout.offset + m * r])
                }
                _ => Cow::Owned(T::convert_all(data, &view_kr)),
            };
            reduce_rows(&flat, &mut out, r, op);
        }
    }
    Ok((out, out_shape))
}

/// `out[i] = op(rows[i*r .. (i+1)*r])`.
fn reduce_rows<T: Float>(flat: &[T], out: &mut [T], r: usize, op: ReduceOp) {
    let per_task = (GRAIN / r).max(1);
    let work = |(ci, chunk): (usize, &mut [T])| {
        for (j, o) in chunk.iter_mut().enumerate() {
            let i = ci * per_task + j;
            *o = fold_row(&flat[i * r..(i + 1) * r], op);
        }
    };
    let threads = rayon::current_num_threads();
    if out.len() < threads && r >= 4 * GRAIN && threads > 1 {
        // Few long rows: split each row across the threads instead.
        for (i, o) in out.iter_mut().enumerate() {
            *o = fold_row_parallel(&flat[i * r..(i + 1) * r], op);
        }
    } else if out.len() * r >= 2 * GRAIN && out.len() > 1 {
        out.par_chunks_mut(per_task).enumerate().for_each(work);
    } else {
        out.chunks_mut(per_task).enumerate().for_each(work);
    }
}

/// [`fold_row`] of one long run, in parallel pieces combined in a fixed order.
fn fold_row_parallel<T: Float>(row: &[T], op: ReduceOp) -> T {
    let pieces = row.par_chunks(GRAIN);
    match op {
        ReduceOp::Sum | ReduceOp::Mean => {
            let parts: Vec<f64> = pieces
                .map(|c| lanes(c, 0.0f64, |a, b| a + b.to_f64(), |a, b| a + b))
                .collect();
            let total: f64 = parts.iter().sum();
            let n = if op == ReduceOp::Mean {
                row.len() as f64
            } else {
                1.0
            };
            T::from_f64(total / n)
        }
        ReduceOp::Max | ReduceOp::Min => {
            let parts: Vec<T> = pieces.map(|c| fold_row(c, op)).collect();
            parts.into_iter().fold(
                if op == ReduceOp::Max { -T::INF } else { T::INF },
                |a, b| {
                    if op == ReduceOp::Max {
                        a.max(b)
                    } else {
                        a.min(b)
                    }
                },
            )
        }
    }
}

/// One contiguous run reduced with several accumulators (vectorises). Sums accumulate in
/// f64 so f32 results are correctly rounded even when the terms cancel.
#[inline]
pub(crate) fn fold_row<T: Float>(row: &[T], op: ReduceOp) -> T {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => {
            let v = sum_f64(row);
            let v = if op == ReduceOp::Mean {
                v / row.len() as f64
            } else {
                v
            };
            T::from_f64(v)
        }
        ReduceOp::Max => lanes(row, -T::INF, |a, b| a.max(b), |a, b| a.max(b)),
        ReduceOp::Min => lanes(row, T::INF, |a, b| a.min(b), |a, b| a.min(b)),
    }
}

/// The sum of a run, accumulated in f64 as every sum here is.
pub(crate) fn sum_f64<T: Float>(row: &[T]) -> f64 {
    lanes(row, 0.0f64, |a, b| a + b.to_f64(), |a, b| a + b)
}

/// Folds a run into 16 independent accumulators, then combines them pairwise.
#[inline(always)]
fn lanes<T: Float, A: Copy>(row: &[T], init: A, f: impl Fn(A, T) -> A, g: impl Fn(A, A) -> A) -> A {
    const L: usize = 16;
    let mut acc = [init; L];
    let (chunks, rest) = row.as_chunks::<L>();
    for c in chunks {
        for i in 0..L {
            acc[i] = f(acc[i], c[i]);
        }
    }
    let mut total = init;
    for &x in rest {
        total = f(total, x);
    }
    let mut width = L;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] = g(acc[i], acc[i + width]);
        }
    }
    g(acc[0], total)
}

/// `out[j] = op over i of cols[i*m + j]` (the reduced axes lead), parallel over column blocks.
fn reduce_columns<T: Float>(flat: &[T], out: &mut [T], r: usize, op: ReduceOp) {
    let m = out.len();
    let cols = (GRAIN / r).clamp(64, 4096);
    let work = |(ci, chunk): (usize, &mut [T])| {
        let j0 = ci * cols;
        let w = chunk.len();
        let rows = (0..r).map(|i| &flat[i * m + j0..i * m + j0 + w]);
        match op {
            ReduceOp::Sum | ReduceOp::Mean => {
                let mut acc = vec![0.0f64; w];
                for row in rows {
                    acc.iter_mut().zip(row).for_each(|(a, &x)| *a += x.to_f64());
                }
                let scale = if op == ReduceOp::Mean {
                    1.0 / r as f64
                } else {
                    1.0
                };
                for (o, a) in chunk.iter_mut().zip(acc) {
                    *o = T::from_f64(a * scale);
                }
            }
            ReduceOp::Max | ReduceOp::Min => {
                let max = op == ReduceOp::Max;
                chunk.fill(if max { -T::INF } else { T::INF });
                for row in rows {
                    if max {
                        chunk.iter_mut().zip(row).for_each(|(o, &x)| *o = o.max(x));
                    } else {
                        chunk.iter_mut().zip(row).for_each(|(o, &x)| *o = o.min(x));
                    }
                }
            }
        }
    };
    if m * r >= 2 * GRAIN && m > cols {
        out.par_chunks_mut(cols).enumerate().for_each(work);
    } else {
        out.chunks_mut(cols).enumerate().for_each(work);
    }
}

/// Sums `t` over the given axes into a row-major buffer in `T` (for contractions that must
/// first drop labels appearing in one operand only).
pub(crate) fn sum_axes<T: Float>(t: &Tensor, axes: &[usize]) -> Result<(Vec<T>, Vec<usize>)> {
    reduce::<T>(t, axes, ReduceOp::Sum)
}

#[cfg(test)]
mod tests {
    use crate::cpu::fixtures::*;
    use crate::cpu::CpuBackend;
    use crate::dtype::DType;
    use crate::error::{BackendError, Result};
    use crate::ops::ReduceOp;
    use crate::Calls;

    #[test]
    fn reduce_matches_reference() -> Result<()> {
        let be = CpuBackend::new();
        let mut rng = Rng::new(11);
        for dtype in FLOATS {
            for shape in SHAPES
                .iter()
                .chain(&[&[129usize, 300][..], &[300, 129][..]])
            {
                let r = shape.len();
                for mask in 0..(1usize << r) {
                    let axes: Vec<usize> = (0..r).filter(|a| mask >> a & 1 == 1).collect();
                    let (t, d) = input(&mut rng, shape, dtype);
                    let kept: Vec<usize> = (0..r).filter(|a| !axes.contains(a)).collect();
                    let oshape: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
                    for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Mean] {
                        let m: usize = oshape.iter().product();
                        let mut acc: Vec<Vec<f64>> = vec![Vec::new(); m];
                        for (i, &v) in d.iter().enumerate() {
                            let idx = unravel(i, shape);
                            let o: Vec<usize> = kept.iter().map(|&a| idx[a]).collect();
                            acc[ravel(&o, &oshape)].push(v);
                        }
                        let want: Vec<f64> = acc
                            .iter()
                            .map(|v| match op {
                                ReduceOp::Sum => v.iter().sum(),
                                ReduceOp::Mean => v.iter().sum::<f64>() / v.len() as f64,
                                ReduceOp::Max => v.iter().fold(f64::MIN, |a, &b| a.max(b)),
                                ReduceOp::Min => v.iter().fold(f64::MAX, |a, &b| a.min(b)),
                            })
                            .collect();
                        let got = be.reduce(&t, &axes, op)?;
                        assert_eq!(got.dtype, dtype);
                        let (gs, gv) = fetch(&be, &got)?;
                        assert_eq!(gs, oshape);
                        check(
                            &format!("reduce {op:?} {shape:?} {axes:?}"),
                            &gv,
                            &want,
                            dtype,
                        );
                    }
                }
            }
        }
        let e = tensor(&[3, 0], &[], DType::F16);
        let (s, v) = fetch(&be, &be.reduce(&e, &[1], ReduceOp::Max)?)?;
        assert_eq!((s, v), (vec![3], vec![0.0; 3]));
        assert!(matches!(
            be.reduce(&e, &[2], ReduceOp::Sum),
            Err(BackendError::Shape { .. })
        ));
        Ok(())
    }

    /// A long run reduced in parallel pieces (the few-outputs path).
    #[test]
    fn long_rows_reduce_in_parallel() -> Result<()> {
        let be = CpuBackend::new();
        let mut rng = Rng::new(14);
        for dtype in FLOATS {
            let n = 300_007;
            let (t, d) = input(&mut rng, &[n], dtype);
            for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Mean] {
                let sum: f64 = d.iter().sum();
                let want = match op {
                    ReduceOp::Sum => sum,
                    ReduceOp::Mean => sum / n as f64,
                    ReduceOp::Max => d.iter().fold(f64::MIN, |a, &b| a.max(b)),
                    ReduceOp::Min => d.iter().fold(f64::MAX, |a, &b| a.min(b)),
                };
                let (_, got) = fetch(&be, &be.reduce(&t, &[0], op)?)?;
                check(&format!("long {op:?}"), &got, &[want], dtype);
            }
        }
        Ok(())
    }
}
