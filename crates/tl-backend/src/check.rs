//! Argument checks every backend makes the same way: layouts against storage, element counts
//! against the address space, and einsum label lists.

use crate::error::{BackendError, Result};
use crate::ops::MapExpr;
use crate::tensor::Layout;

/// A `Shape` error for `op`.
pub(crate) fn shape_err(op: &'static str, detail: impl Into<String>) -> BackendError {
    BackendError::Shape {
        op,
        detail: detail.into(),
    }
}

/// The number of elements of `shape`, or a `TooLarge` error when it overflows.
pub(crate) fn numel_checked(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .ok_or_else(|| BackendError::TooLarge {
            elements: shape.iter().map(|&n| n as u128).product(),
            detail: "the element count overflows the address space".into(),
        })
}

/// Checks that every element the layout can address lies inside storage of `len` elements.
pub(crate) fn check_layout(op: &'static str, layout: &Layout, len: usize) -> Result<()> {
    if layout.shape.len() != layout.strides.len() {
        return Err(shape_err(
            op,
            "layout has different numbers of extents and strides",
        ));
    }
    if layout.numel() == 0 {
        return Ok(());
    }
    let last = last_element(layout).ok_or_else(|| shape_err(op, "layout strides overflow"))?;
    if last >= len {
        return Err(shape_err(
            op,
            format!("layout reaches element {last} of a storage of {len}"),
        ));
    }
    Ok(())
}

/// The storage index of the last element a non-empty layout addresses; `None` when it
/// overflows.
pub(crate) fn last_element(layout: &Layout) -> Option<usize> {
    layout
        .shape
        .iter()
        .zip(&layout.strides)
        .try_fold(layout.offset, |last, (&n, &s)| {
            n.saturating_sub(1).checked_mul(s)?.checked_add(last)
        })
}

/// Checks a label list against its tensor's rank and for repeats.
pub(crate) fn check_labels(what: &str, labels: &[u32], rank: usize) -> Result<()> {
    if labels.len() != rank {
        return Err(shape_err(
            "contract",
            format!("{what} has {} labels for rank {rank}", labels.len()),
        ));
    }
    for (i, l) in labels.iter().enumerate() {
        if labels[..i].contains(l) {
            return Err(shape_err("contract", format!("{what} repeats label {l}")));
        }
    }
    Ok(())
}

/// Which axes of a rank-`rank` tensor a reduction removes; out-of-range or repeated axes are
/// errors.
pub(crate) fn reduced_axes(rank: usize, axes: &[usize]) -> Result<Vec<bool>> {
    let mut reduced = vec![false; rank];
    for &a in axes {
        if a >= rank {
            return Err(shape_err(
                "reduce",
                format!("axis {a} of a rank-{rank} tensor"),
            ));
        }
        if reduced[a] {
            return Err(shape_err("reduce", format!("axis {a} listed twice")));
        }
        reduced[a] = true;
    }
    Ok(reduced)
}

/// Checks that every input of a `map` has the output's rank and, on each axis, its extent or 1.
pub(crate) fn broadcastable(inputs: &[&crate::tensor::Tensor], out_shape: &[usize]) -> Result<()> {
    let rank = out_shape.len();
    for (i, t) in inputs.iter().enumerate() {
        if t.rank() != rank {
            return Err(shape_err(
                "map",
                format!("input {i} has rank {}, the output {rank}", t.rank()),
            ));
        }
        for (a, (&e, &o)) in t.shape().iter().zip(out_shape).enumerate() {
            if e != o && e != 1 {
                return Err(shape_err(
                    "map",
                    format!("input {i} axis {a} has extent {e}, the output {o}"),
                ));
            }
        }
    }
    Ok(())
}

/// The element count of a host tensor, checked against its data.
pub(crate) fn upload_len(host: &crate::host::HostTensor) -> Result<usize> {
    let n = numel_checked(&host.shape)?;
    if host.data.len() != n {
        return Err(shape_err(
            "upload",
            format!(
                "shape {:?} needs {n} elements, the data has {}",
                host.shape,
                host.data.len()
            ),
        ));
    }
    Ok(n)
}

/// Rejects references to inputs that were not passed.
pub(crate) fn check_expr(expr: &MapExpr, n: usize) -> Result<()> {
    match expr {
        MapExpr::Input(k) if *k >= n => Err(shape_err(
            "map",
            format!("expression reads input {k} of {n}"),
        )),
        MapExpr::Input(_) | MapExpr::Const(_) => Ok(()),
        MapExpr::Unary(_, x) => check_expr(x, n),
        MapExpr::Binary(_, a, b) => {
            check_expr(a, n)?;
            check_expr(b, n)
        }
    }
}
