//! Attention as one backend call: `softmax_key(expr(Q·K, extra…))·V`, the pattern of a
//! transformer's attention head once the planner has put its two equations together. A
//! backend may compute it without storing the scores (CUDA: one kernel that keeps each block
//! of scores in registers); the default composes it from contractions and a softmax, which
//! is exactly what the unfused plan evaluates.

use crate::{Backend, Calls, DType, MapExpr, NormFn, Result, Tensor};

/// The operands of [`Backend::attention`]. Labels name axes as in [`Calls::contract`].
#[derive(Clone, Copy, Debug)]
pub struct AttentionArgs<'a> {
    /// Queries, with their axis labels.
    pub q: (&'a Tensor, &'a [u32]),
    /// Keys, with their axis labels.
    pub k: (&'a Tensor, &'a [u32]),
    /// Values, with their axis labels.
    pub v: (&'a Tensor, &'a [u32]),
    /// The labels of the scores `Q·K` (every label of Q and K except those summed between
    /// them, in this order); `extra` tensors are laid out over them.
    pub scores: &'a [u32],
    /// The label the softmax runs along (a label of K and V, summed with V).
    pub key: u32,
    /// The scores' elementwise function: `Input(0)` is the product `Q·K`, `Input(k + 1)` is
    /// `extra[k]`.
    pub expr: &'a MapExpr,
    /// Other inputs of `expr`, each of the scores' rank with each axis of the scores' extent
    /// or 1 (broadcast).
    pub extra: &'a [&'a Tensor],
    /// The labels of the result (those of the scores and V, less `key`).
    pub out: &'a [u32],
    /// The program's element type.
    pub dtype: DType,
}

/// The scores, their softmax along `key`, and its product with V, one call each.
pub(crate) fn composed<B: Backend + ?Sized>(be: &B, at: &AttentionArgs<'_>) -> Result<Tensor> {
    let scores = crate::stored_product(be, at.q, at.k, at.scores, at.dtype)?;
    let axis =
        at.scores
            .iter()
            .position(|&l| l == at.key)
            .ok_or_else(|| crate::BackendError::Shape {
                op: "attention",
                detail: format!("the softmax label {} is not a label of the scores", at.key),
            })?;
    let mut inputs: Vec<&Tensor> = vec![&scores];
    inputs.extend(at.extra.iter().copied());
    let weights = be.map_normalize(
        at.expr,
        &inputs,
        scores.shape(),
        axis,
        NormFn::Softmax,
        at.dtype,
    )?;
    crate::stored_product(be, (&weights, at.scores), at.v, at.out, at.dtype)
}
