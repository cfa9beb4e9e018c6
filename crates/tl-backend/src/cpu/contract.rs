//! Pairwise einsum lowered to batched GEMM.
//!
//! Labels are classified as batch (in both operands and the output), m (first operand and
//! output), n (second operand and output) and k (both operands, summed). Labels found in one
//! operand only and not in the output are summed out first. Each operand is then viewed as a
//! strided `(batch, m, k)` / `(batch, k, n)` stack of matrices; the GEMM takes arbitrary row and
//! column strides, so a copy is made only when a group of labels cannot be expressed by one
//! stride. The result is written straight into the output order when its strides allow.

use super::gemv::matvec;
use super::reduce::sum_axes;
use super::storage::{
    check_layout, host, numel_checked, reserve, shape_err, strided_collect, Float,
};
use crate::einsum::{groups, Pairwise};
use crate::error::Result;
use crate::tensor::{Layout, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;
use std::borrow::Cow;

/// Per-matrix work (m·n·k) below which batches run in parallel with single-threaded GEMMs.
const SMALL_GEMM: usize = 1 << 22;
/// Per-matrix work below which a lone GEMM is not worth splitting across threads.
const PAR_GEMM: usize = 1 << 15;

/// One operand as a strided view with a label per axis.
struct Operand<'a, T: Clone> {
    data: Cow<'a, [T]>,
    layout: Layout,
    labels: Vec<u32>,
}

impl<T: Float> Operand<'_, T> {
    fn axis(&self, label: u32) -> Option<usize> {
        self.labels.iter().position(|&l| l == label)
    }

    /// (extent, stride) of the labels in order, or `None` when a missing label is asked for.
    fn dims(&self, labels: &[u32]) -> Vec<(usize, usize)> {
        labels
            .iter()
            .filter_map(|&l| self.axis(l))
            .map(|a| (self.layout.shape[a], self.layout.strides[a]))
            .collect()
    }

    /// A row-major copy with axes in the order of `labels` (which must be a permutation).
    fn reordered(&self, labels: &[u32]) -> Operand<'static, T> {
        let perm: Vec<usize> = labels.iter().filter_map(|&l| self.axis(l)).collect();
        let view = self.layout.permuted(&perm);
        let data = strided_collect(&self.data, &view, |x| x);
        Operand {
            data: Cow::Owned(data),
            layout: Layout::contiguous(&view.shape),
            labels: labels.to_vec(),
        }
    }
}

/// The single (extent, stride) that walks a group of axes in order, if one exists.
fn collapse(dims: &[(usize, usize)]) -> Option<(usize, usize)> {
    let mut it = dims.iter().filter(|d| d.0 != 1);
    let Some(&(mut ext, mut stride)) = it.next() else {
        return Some((1, 1));
    };
    for &(n, s) in it {
        if stride != s * n {
            return None;
        }
        ext *= n;
        stride = s;
    }
    Some((ext, stride))
}

/// Wraps a tensor as an operand in compute type `T`, summing out labels listed in `drop`.
fn operand<'a, T: Float>(t: &'a Tensor, labels: &[u32], drop: &[u32]) -> Result<Operand<'a, T>> {
    if !drop.is_empty() {
        let axes: Vec<usize> = (0..labels.len())
            .filter(|&a| drop.contains(&labels[a]))
            .collect();
        let (v, shape) = sum_axes::<T>(t, &axes)?;
        let kept = labels
            .iter()
            .copied()
            .filter(|l| !drop.contains(l))
            .collect();
        return Ok(Operand {
            data: Cow::Owned(v),
            layout: Layout::contiguous(&shape),
            labels: kept,
        });
    }
    let data = host(t)?;
    check_layout("contract", &t.layout, data.len())?;
    Ok(match T::slice(data) {
        Some(s) => Operand {
            data: Cow::Borrowed(s),
            layout: t.layout.clone(),
            labels: labels.to_vec(),
        },
        None => Operand {
            data: Cow::Owned(T::convert_all(data, &t.layout)),
            layout: Layout::contiguous(t.shape()),
            labels: labels.to_vec(),
        },
    })
}

/// A raw pointer that may cross threads (each batch writes a disjoint block of the output).
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: the pointer is only dereferenced by `gemm` on disjoint output blocks.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above; shared references never write through the same block.
unsafe impl<T> Sync for SendPtr<T> {}

/// `out[out_labels] = sum over the other labels of a[a_labels] * b[b_labels]`, row-major.
pub(crate) fn contract<T: Float>(
    a: &Tensor,
    a_labels: &[u32],
    b: &Tensor,
    b_labels: &[u32],
    out_labels: &[u32],
) -> Result<(Vec<T>, Vec<usize>)> {
    let pw = Pairwise::new(a.shape(), a_labels, b.shape(), b_labels, out_labels)?;
    let extent = |l: u32| pw.extent(l);
    let out_shape = pw.out_shape.clone();
    let in_out = |l: &u32| out_labels.contains(l);
    let (a_drop, b_drop) = (pw.a_drop.clone(), pw.b_drop.clone());
    let mut oa = operand::<T>(a, a_labels, &a_drop)?;
    let mut ob = operand::<T>(b, b_labels, &b_drop)?;

    let (batch, ms, ns) = groups(&oa.labels, &ob.labels, out_labels);
    let k_by_a: Vec<u32> = oa.labels.iter().copied().filter(|l| !in_out(l)).collect();
    let k_by_b: Vec<u32> = ob.labels.iter().copied().filter(|l| !in_out(l)).collect();

    let numel = numel_checked(&out_shape)?;
    let kk: usize = k_by_a.iter().filter_map(|&l| extent(l)).product();
    if numel == 0 || kk == 0 {
        return Ok((vec![T::ZERO; numel], out_shape));
    }

    // Pick the order of the summed labels that both operands can walk with one stride.
    let fits = |o: &Operand<T>, ks: &[u32]| collapse(&o.dims(ks)).is_some();
    let ks = if fits(&oa, &k_by_a) && fits(&ob, &k_by_a) {
        k_by_a
    } else if fits(&ob, &k_by_b) {
        k_by_b
    } else {
        k_by_a
    };
    if !(fits(&oa, &ms) && fits(&oa, &ks)) {
        let order: Vec<u32> = batch.iter().chain(&ms).chain(&ks).copied().collect();
        oa = oa.reordered(&order);
    }
    if !(fits(&ob, &ks) && fits(&ob, &ns)) {
        let order: Vec<u32> = batch.iter().chain(&ks).chain(&ns).copied().collect();
        ob = ob.reordered(&order);
    }
    let group = |o: &Operand<T>, ls: &[u32]| collapse(&o.dims(ls)).unwrap_or((1, 1));
    let (m, a_rs) = group(&oa, &ms);
    let (k, a_cs) = group(&oa, &ks);
    let (k2, b_rs) = group(&ob, &ks);
    let (n, b_cs) = group(&ob, &ns);
    if k != k2 {
        return Err(shape_err("contract", "summed extents disagree"));
    }

    // Output strides: straight into `out` when the m and n groups collapse there.
    let out_layout = Layout::contiguous(&out_shape);
    let out_dims = |ls: &[u32]| -> Vec<(usize, usize)> {
        ls.iter()
            .filter_map(|l| out_labels.iter().position(|x| x == l))
            .map(|i| (out_layout.shape[i], out_layout.strides[i]))
            .collect()
    };
    let direct = collapse(&out_dims(&ms)).zip(collapse(&out_dims(&ns)));
    let bshape: Vec<usize> = batch.iter().filter_map(|&l| extent(l)).collect();
    let nb: usize = bshape.iter().product();
    let (dst_rs, dst_cs, dst_batch, tmp) = match direct {
        Some(((_, rs), (_, cs))) => (rs, cs, out_dims(&batch), None),
        None => {
            let tl = Layout::contiguous(&[nb, m, n]);
            let bl = Layout::contiguous(&bshape);
            let bd = bshape
                .iter()
                .zip(&bl.strides)
                .map(|(&e, &s)| (e, s * m * n));
            (n, 1, bd.collect(), Some(tl))
        }
    };
    let a_batch = oa.dims(&batch);
    let b_batch = ob.dims(&batch);
    let offset = |dims: &[(usize, usize)], mut i: usize| -> usize {
        let mut off = 0;
        for &(e, s) in dims.iter().rev() {
            off += (i % e) * s;
            i /= e;
        }
        off
    };
    // The GEMMs overwrite every element (every output label is a batch, m or n label and
    // `read_dst` is off), so the buffer is not zeroed first: zeroing a large fresh buffer
    // costs as much as a small GEMM.
    let mut buf: Vec<T> = reserve(numel)?;
    let dst_ptr = SendPtr(buf.as_mut_ptr());
    let (pa, pb) = (
        SendPtr(oa.data.as_ptr() as *mut T),
        SendPtr(ob.data.as_ptr() as *mut T),
    );
    let (a0, b0) = (oa.layout.offset, ob.layout.offset);
    let work = m.saturating_mul(n).saturating_mul(k);
    let threads = rayon::current_num_threads();
    // Work is cut into units of (batch, piece): many small products run a batch per task;
    // otherwise each product is split into one slice of its longer side per thread, and every
    // slice runs a single-threaded GEMM (measured faster than the GEMM's own threading).
    let matvec_case = m == 1 || n == 1;
    let batch_parallel = nb > 1 && (work < SMALL_GEMM || nb >= 4 * threads);
    let pieces = if matvec_case || threads < 2 || work < PAR_GEMM || batch_parallel {
        1
    } else {
        threads
    };
    let split_n = n >= m;
    let span = if split_n { n } else { m };
    let run = |unit: usize, par: bool| {
        let (bi, piece) = (unit / pieces, unit % pieces);
        let ao = a0 + offset(&a_batch, bi);
        let bo = b0 + offset(&b_batch, bi);
        let dso = offset(&dst_batch, bi);
        let (d, pa, pb) = (dst_ptr, pa, pb);
        let mode = if par {
            Parallelism::Rayon(threads)
        } else {
            Parallelism::None
        };
        if matvec_case
            && matvec(
                &oa.data,
                &ob.data,
                (ao, a_rs, a_cs),
                (bo, b_rs, b_cs),
                (m, n, k),
                mode,
                |i, x| {
                    let step = if n == 1 { dst_rs } else { dst_cs };
                    // SAFETY: `i` < the vector's length, whose elements all lie in this
                    // batch's block of the output.
                    unsafe { d.0.add(dso + i * step).write(x) }
                },
            )
        {
            return;
        }
        let (lo, hi) = (span * piece / pieces, span * (piece + 1) / pieces);
        let (mm, nn, ao, bo, dso) = if split_n {
            (m, hi - lo, ao, bo + lo * b_cs, dso + lo * dst_cs)
        } else {
            (hi - lo, n, ao + lo * a_rs, bo, dso + lo * dst_rs)
        };
        if mm == 0 || nn == 0 {
            return;
        }
        // SAFETY: every operand layout was bounds-checked (or built contiguous) so each
        // (batch, row, col) lands inside its buffer; units write disjoint output blocks
        // because every batch label is an output label and pieces split the rows/columns.
        unsafe {
            gemm::gemm(
                mm,
                nn,
                k,
                d.0.add(dso),
                dst_cs as isize,
                dst_rs as isize,
                false,
                pa.0.add(ao),
                a_cs as isize,
                a_rs as isize,
                pb.0.add(bo),
                b_cs as isize,
                b_rs as isize,
                T::ZERO,
                T::from_f64(1.0),
                false,
                false,
                false,
                Parallelism::None,
            );
        }
    };
    let units = nb * pieces;
    if threads > 1 && (pieces > 1 || batch_parallel) {
        (0..units).into_par_iter().for_each(|u| run(u, false));
    } else {
        let par = threads > 1 && work >= PAR_GEMM;
        (0..units).for_each(|u| run(u, par));
    }
    // SAFETY: the GEMMs above wrote all `numel` elements (see where `buf` is created).
    unsafe { buf.set_len(numel) };
    let Some(tl) = tmp else {
        return Ok((buf, out_shape));
    };
    {
        // Lay the (batch, m, n) result out in the output's label order.
        let mut ext = Vec::with_capacity(out_labels.len());
        let mut st = Vec::with_capacity(out_labels.len());
        let groups = [(&batch, 0usize), (&ms, 1), (&ns, 2)];
        for &l in out_labels {
            for (g, gi) in groups {
                if let Some(p) = g.iter().position(|&x| x == l) {
                    let sub: Vec<usize> = g.iter().filter_map(|&x| extent(x)).collect();
                    let inner: usize = sub[p + 1..].iter().product();
                    ext.push(sub[p]);
                    st.push(inner * tl.strides[gi]);
                }
            }
        }
        let view = Layout {
            shape: ext,
            strides: st,
            offset: 0,
        };
        Ok((strided_collect(&buf, &view, |x| x), out_shape))
    }
}
