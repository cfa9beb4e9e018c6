//! Reads of a tensor at affine indices (`W[l, 32*h + k, i]`, `X[n, y + dy - 1]`) as strided
//! views instead of gathers: no index vector is built and no data moves, or, where the indices
//! step past the tensor's edges (a convolution's "same" padding), one zero-padded copy of the
//! tensor is made and viewed.

use tl_backend::Tensor;
use tl_check::{Index, IndexExpr, VarInfo};

/// `Σ coef[v]·v + c` for an index expression that is affine in its variables (sums,
/// differences and products by constants); `None` for anything else.
fn affine(e: &IndexExpr) -> Option<(Vec<(usize, i64)>, i64)> {
    use tl_syntax::ast::IndexOp;
    fn scale(t: (Vec<(usize, i64)>, i64), k: i64) -> Option<(Vec<(usize, i64)>, i64)> {
        let terms =
            t.0.into_iter()
                .map(|(v, c)| Some((v, c.checked_mul(k)?)))
                .collect::<Option<_>>()?;
        Some((terms, t.1.checked_mul(k)?))
    }
    fn add(
        a: (Vec<(usize, i64)>, i64),
        b: (Vec<(usize, i64)>, i64),
    ) -> Option<(Vec<(usize, i64)>, i64)> {
        let mut terms = a.0;
        for (v, c) in b.0 {
            match terms.iter_mut().find(|(u, _)| *u == v) {
                Some(t) => t.1 = t.1.checked_add(c)?,
                None => terms.push((v, c)),
            }
        }
        Some((terms, a.1.checked_add(b.1)?))
    }
    match e {
        IndexExpr::Var(v) => Some((vec![(*v, 1)], 0)),
        IndexExpr::Const(c) => Some((Vec::new(), *c)),
        IndexExpr::Binary(op, a, b) => {
            let (a, b) = (affine(a)?, affine(b)?);
            match op {
                IndexOp::Add => add(a, b),
                IndexOp::Sub => add(a, scale(b, -1)?),
                IndexOp::Mul if a.0.is_empty() => scale(b, a.1),
                IndexOp::Mul if b.0.is_empty() => scale(a, b.1),
                _ => None,
            }
        }
    }
}

/// A read `source[indices]` over the points of `labels` as a strided view of `source`, when
/// every index is affine in the variables with non-negative coefficients and stays inside its
/// axis at every point (`W[l, 32*h + k, i]` is `W` seen as `[l, h, k, i]`; `W[0, d]` one row):
/// no data moves and no index vector is built. `None` when a gather is needed.
pub(crate) fn affine_view(
    source: &Tensor,
    indices: &[Index],
    labels: &[usize],
    vars: &[VarInfo],
) -> Option<Tensor> {
    shifted_view(source, indices, labels, vars, &vec![0; indices.len()])
}

/// [`affine_view`] with `shift[axis]` added to every index along each axis (the margin a
/// padded copy of the source puts before its data).
fn shifted_view(
    source: &Tensor,
    indices: &[Index],
    labels: &[usize],
    vars: &[VarInfo],
    shift: &[i64],
) -> Option<Tensor> {
    if indices.len() != source.rank() || shift.len() != indices.len() {
        return None;
    }
    let mut strides = vec![0usize; labels.len()];
    let mut offset = source.layout.offset;
    for (axis, ix) in indices.iter().enumerate() {
        let (terms, c) = affine_index(ix)?;
        let c = c.checked_add(shift[axis])?;
        // Coefficients are non-negative, so the smallest index is `c` (every variable at 0).
        let (lo, mut hi) = (c, c);
        for &(v, coef) in &terms {
            let n = vars.get(v)?.extent as i64;
            if coef < 0 || n == 0 {
                return None;
            }
            hi = hi.checked_add(coef.checked_mul(n - 1)?)?;
        }
        let extent = source.layout.shape[axis] as i64;
        if lo < 0 || hi >= extent {
            return None;
        }
        let step = source.layout.strides[axis];
        offset += usize::try_from(c).ok()? * step;
        for (v, coef) in terms {
            let k = labels.iter().position(|&l| l == v)?;
            strides[k] += usize::try_from(coef).ok()? * step;
        }
    }
    let shape: Vec<usize> = labels
        .iter()
        .map(|&v| vars.get(v).map(|x| x.extent))
        .collect::<Option<_>>()?;
    Some(Tensor {
        layout: tl_backend::Layout {
            shape,
            strides,
            offset,
        },
        dtype: source.dtype,
        storage: source.storage.clone(),
    })
}

/// An index as `Σ coef[v]·v + c`, when it is affine.
fn affine_index(ix: &Index) -> Option<(Vec<(usize, i64)>, i64)> {
    match ix {
        Index::Var(v) => Some((vec![(*v, 1)], 0)),
        Index::Const(c) => Some((Vec::new(), *c)),
        Index::Slice { var, start } => Some((vec![(*var, 1)], *start)),
        Index::Expr(e) => affine(e),
        Index::Symbol(..) => None,
    }
}

/// The zero padding that makes a read a view: for each axis of the source, how many cells
/// before and after its data the read's affine indices reach (coefficients non-negative).
/// `None` when some index is not affine, or when no axis needs padding (then
/// [`affine_view`] applies or a gather is needed), or when a margin exceeds its axis's extent
/// (a mostly empty copy: the gather is cheaper).
pub(crate) fn padding(
    source: &Tensor,
    indices: &[Index],
    vars: &[VarInfo],
) -> Option<Vec<(usize, usize)>> {
    if indices.len() != source.rank() {
        return None;
    }
    let mut pads = Vec::with_capacity(indices.len());
    for (axis, ix) in indices.iter().enumerate() {
        let (terms, c) = affine_index(ix)?;
        let (mut lo, mut hi) = (c, c);
        for &(v, coef) in &terms {
            let n = vars.get(v)?.extent as i64;
            if coef < 0 || n == 0 {
                return None;
            }
            hi = hi.checked_add(coef.checked_mul(n - 1)?)?;
        }
        lo = lo.min(0);
        let extent = source.shape()[axis] as i64;
        let before = usize::try_from(-lo).ok()?;
        let after = usize::try_from((hi - (extent - 1)).max(0)).ok()?;
        if before.max(after) > source.shape()[axis] {
            return None;
        }
        pads.push((before, after));
    }
    pads.iter().any(|&(b, a)| b + a > 0).then_some(pads)
}

/// The extents of a tensor of `shape` padded by `pads`.
pub(crate) fn padded_shape(shape: &[usize], pads: &[(usize, usize)]) -> Vec<usize> {
    shape
        .iter()
        .zip(pads)
        .map(|(&e, &(b, a))| e + b + a)
        .collect()
}

/// The gather that pads a row-major tensor of `shape`: for each cell of the padded tensor,
/// the flat index of the source cell it holds, or -1 in the margins.
pub(crate) fn pad_index(shape: &[usize], pads: &[(usize, usize)]) -> Vec<i64> {
    let padded = padded_shape(shape, pads);
    let mut out = Vec::with_capacity(padded.iter().product());
    super::for_each_point(&padded, |point| {
        let mut flat = 0i64;
        for ((&p, &e), &(before, _)) in point.iter().zip(shape).zip(pads) {
            let i = p - before as i64;
            if i < 0 || i >= e as i64 {
                out.push(-1);
                return;
            }
            flat = flat * e as i64 + i;
        }
        out.push(flat);
    });
    out
}

/// The read as a view of `padded`, the source padded by `pads`.
pub(crate) fn padded_view(
    padded: &Tensor,
    indices: &[Index],
    labels: &[usize],
    vars: &[VarInfo],
    pads: &[(usize, usize)],
) -> Option<Tensor> {
    let shift: Vec<i64> = pads.iter().map(|&(b, _)| b as i64).collect();
    shifted_view(padded, indices, labels, vars, &shift)
}

/// A placement that pools (`P[n, y / 2, x / 2] max= H[n, y, x]`) as a view of the root and
/// the axes to reduce: an axis whose index is `v / k` (with `v`'s extent a multiple of `k`)
/// splits into `v / k` and `v mod k`, and the `mod` parts are reduced. Every left-hand index
/// must be a plain variable or such a quotient, each of the root's variables used once, and
/// the result must have the target's shape; `None` otherwise (the scatter places it).
pub(crate) fn pooled(
    root: &Tensor,
    labels: &[usize],
    indices: &[Index],
    vars: &[VarInfo],
    target: &[usize],
) -> Option<(Tensor, Vec<usize>)> {
    use tl_syntax::ast::IndexOp;
    if indices.len() != target.len() || root.rank() != labels.len() {
        return None;
    }
    let (mut shape, mut strides) = (Vec::new(), Vec::new());
    let (mut inner_shape, mut inner_strides) = (Vec::new(), Vec::new());
    let mut used = vec![false; labels.len()];
    for (ix, &extent) in indices.iter().zip(target) {
        let (v, k) = match ix {
            Index::Var(v) => (*v, 1),
            Index::Expr(IndexExpr::Binary(IndexOp::Div, a, b)) => match (&**a, &**b) {
                (IndexExpr::Var(v), IndexExpr::Const(k)) if *k > 1 => {
                    (*v, usize::try_from(*k).ok()?)
                }
                _ => return None,
            },
            _ => return None,
        };
        let axis = labels.iter().position(|&l| l == v)?;
        if std::mem::replace(&mut used[axis], true) {
            return None;
        }
        let (e, s) = (root.shape()[axis], root.layout.strides[axis]);
        if vars.get(v)?.extent != e || !e.is_multiple_of(k) || e / k != extent {
            return None;
        }
        shape.push(e / k);
        strides.push(s.checked_mul(k)?);
        if k > 1 {
            inner_shape.push(k);
            inner_strides.push(s);
        }
    }
    if inner_shape.is_empty() || used.contains(&false) {
        return None;
    }
    let axes: Vec<usize> = (shape.len()..shape.len() + inner_shape.len()).collect();
    shape.extend(inner_shape);
    strides.extend(inner_strides);
    let view = Tensor {
        layout: tl_backend::Layout {
            shape,
            strides,
            offset: root.layout.offset,
        },
        dtype: root.dtype,
        storage: root.storage.clone(),
    };
    Some((view, axes))
}
