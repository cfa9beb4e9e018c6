//! Argument checks every backend makes the same way: layouts against storage, element counts
//! against the address space, and einsum label lists.

use crate::error::{BackendError, Result};
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
    let mut last = layout.offset;
    for (&n, &s) in layout.shape.iter().zip(&layout.strides) {
        last = (n - 1)
            .checked_mul(s)
            .and_then(|d| last.checked_add(d))
            .ok_or_else(|| shape_err(op, "layout strides overflow"))?;
    }
    if last >= len {
        return Err(shape_err(
            op,
            format!("layout reaches element {last} of a storage of {len}"),
        ));
    }
    Ok(())
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
