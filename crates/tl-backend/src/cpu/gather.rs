//! Gather and scatter through flat (row-major) indices: the primitives that index arithmetic,
//! slices, diagonals and projections lower to.

use super::storage::{check_layout, host, numel_checked, read, shape_err, strided_collect, Float};
use crate::error::Result;
use crate::host::HostData;
use crate::ops::ReduceOp;
use crate::tensor::Tensor;
use rayon::prelude::*;

/// Indices per parallel task.
const GRAIN: usize = 1 << 15;

/// Checks that `index` fills `out_shape` and returns the element count.
fn check_index(op: &'static str, index: &[i64], out_shape: &[usize]) -> Result<usize> {
    let n = numel_checked(out_shape)?;
    if index.len() != n {
        return Err(shape_err(
            op,
            format!("{} indices for an output of {n} elements", index.len()),
        ));
    }
    Ok(n)
}

/// `out[k] = src[index[k]]` (0 where negative), erroring on indices past the end.
fn gather_slice<S: Copy + Send + Sync + Default>(src: &[S], index: &[i64]) -> Result<Vec<S>> {
    if let Some(&bad) = index
        .iter()
        .find(|&&i| i >= 0 && i as u64 >= src.len() as u64)
    {
        return Err(shape_err(
            "gather",
            format!("index {bad} into a tensor of {} elements", src.len()),
        ));
    }
    let pick = |&i: &i64| {
        if i < 0 {
            S::default()
        } else {
            src[i as usize]
        }
    };
    Ok(if index.len() >= GRAIN {
        index.par_iter().map(pick).collect()
    } else {
        index.iter().map(pick).collect()
    })
}

/// Gathers Boolean data as Booleans (no arithmetic, so no reason to widen).
pub(crate) fn gather_bool(
    t: &Tensor,
    index: &[i64],
    out_shape: &[usize],
) -> Result<Option<HostData>> {
    check_index("gather", index, out_shape)?;
    let data = host(t)?;
    let HostData::Bool(v) = data.as_ref() else {
        return Ok(None);
    };
    check_layout("gather", &t.layout, v.len())?;
    let flat = strided_collect(v, &t.layout, |x| x);
    Ok(Some(HostData::Bool(gather_slice(&flat, index)?.into())))
}

/// Gathers in compute type `T`.
pub(crate) fn gather<T: Float>(t: &Tensor, index: &[i64], out_shape: &[usize]) -> Result<Vec<T>> {
    check_index("gather", index, out_shape)?;
    let src = read::<T>("gather", t)?;
    gather_slice(&src, index)
}

/// Scatters `values` into a fresh zero tensor of `out_shape`, combining collisions with `op`.
pub(crate) fn scatter<T: Float>(
    values: &Tensor,
    index: &[i64],
    out_shape: &[usize],
    op: ReduceOp,
) -> Result<Vec<T>> {
    let vals = read::<T>("scatter", values)?;
    if index.len() != vals.len() {
        return Err(shape_err(
            "scatter",
            format!("{} indices for {} values", index.len(), vals.len()),
        ));
    }
    let n: usize = out_shape.iter().product();
    if let Some(&bad) = index.iter().find(|&&i| i >= 0 && i as u64 >= n as u64) {
        return Err(shape_err(
            "scatter",
            format!("index {bad} into an output of {n} elements"),
        ));
    }
    let pairs = index
        .iter()
        .zip(vals.iter())
        .filter(|(&i, _)| i >= 0)
        .map(|(&i, &v)| (i as usize, v));
    let mut out = vec![T::ZERO; n];
    match op {
        ReduceOp::Sum => pairs.for_each(|(i, v)| out[i] += v),
        ReduceOp::Mean => {
            let mut count = vec![0usize; n];
            pairs.for_each(|(i, v)| {
                out[i] += v;
                count[i] += 1;
            });
            for (o, &c) in out.iter_mut().zip(&count) {
                if c > 0 {
                    *o = *o / T::from_usize(c);
                }
            }
        }
        ReduceOp::Max | ReduceOp::Min => {
            let mut hit = vec![false; n];
            let max = op == ReduceOp::Max;
            pairs.for_each(|(i, v)| {
                out[i] = match (hit[i], max) {
                    (false, _) => v,
                    (true, true) => out[i].max(v),
                    (true, false) => out[i].min(v),
                };
                hit[i] = true;
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::cpu::fixtures::*;
    use crate::cpu::CpuBackend;
    use crate::dtype::DType;
    use crate::error::{BackendError, Result};
    use crate::host::{HostData, HostTensor};
    use crate::ops::ReduceOp;
    use crate::{Backend, Calls};

    #[test]
    fn gather_and_scatter_match_reference() -> Result<()> {
        let be = CpuBackend::new();
        let mut rng = Rng::new(13);
        for dtype in FLOATS {
            for shape in SHAPES {
                let (t, d) = input(&mut rng, shape, dtype);
                let n = d.len();
                let m = 1 + rng.below(2 * n + 3);
                let index: Vec<i64> = (0..m)
                    .map(|_| rng.below(n + 2) as i64 - 1)
                    .map(|i| i.min(n as i64 - 1))
                    .collect();
                let want: Vec<f64> = index
                    .iter()
                    .map(|&i| if i < 0 { 0.0 } else { d[i as usize] })
                    .collect();
                let g = be.gather_once(&t, &index, &[m])?;
                assert_eq!(g.dtype, dtype);
                check("gather", &fetch(&be, &g)?.1, &want, dtype);
                // Scatter the gathered values back with every combining op.
                let (vals, vd) = input(&mut rng, &[m], dtype);
                for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Mean] {
                    let mut cells: Vec<Vec<f64>> = vec![Vec::new(); n];
                    for (&i, &v) in index.iter().zip(&vd) {
                        if i >= 0 {
                            cells[i as usize].push(v);
                        }
                    }
                    let want: Vec<f64> = cells
                        .iter()
                        .map(|c| match (c.is_empty(), op) {
                            (true, _) => 0.0,
                            (_, ReduceOp::Sum) => c.iter().sum(),
                            (_, ReduceOp::Mean) => c.iter().sum::<f64>() / c.len() as f64,
                            (_, ReduceOp::Max) => c.iter().fold(f64::MIN, |a, &b| a.max(b)),
                            (_, ReduceOp::Min) => c.iter().fold(f64::MAX, |a, &b| a.min(b)),
                        })
                        .collect();
                    let s = be.scatter_once(&vals, &index, shape, op)?;
                    let (ss, sv) = fetch(&be, &s)?;
                    assert_eq!(&ss[..], *shape);
                    check(&format!("scatter {op:?}"), &sv, &want, dtype);
                }
            }
        }
        let b = be.upload(&HostTensor {
            shape: vec![3],
            data: HostData::Bool(vec![1, 0, 1].into()),
        })?;
        let g = be.gather_once(&b, &[2, -1, 1, 0], &[2, 2])?;
        assert_eq!(
            be.download(&g)?.data,
            HostData::Bool(vec![1, 0, 0, 1].into())
        );
        let x = tensor(&[3], &[1.0, 2.0, 3.0], DType::F32);
        assert!(matches!(
            be.gather_once(&x, &[3], &[1]),
            Err(BackendError::Shape { .. })
        ));
        assert!(matches!(
            be.gather_once(&x, &[0, 1], &[1]),
            Err(BackendError::Shape { .. })
        ));
        assert!(matches!(
            be.scatter_once(&x, &[0, 1, 5], &[4], ReduceOp::Sum),
            Err(BackendError::Shape { .. })
        ));
        Ok(())
    }
}
