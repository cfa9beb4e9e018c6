//! Fused elementwise expressions: the tree is evaluated node by node over blocks of a few
//! thousand outputs (so each node is one tight loop over a buffer), blocks in parallel. Several
//! expressions over the same inputs share each block's reads (`map_many`), and a reduction of
//! an expression folds each block as it is computed (`map_reduce`), so the expression's values
//! never reach memory whole.

use super::reduce::{fold_row, sum_f64};
use super::storage::{output, read_view, reserve, zeroed, Float};
use super::vector::{self, Operand};
use crate::check::{broadcastable, check_expr};
use crate::dtype::DType;
use crate::error::Result;
use crate::ops::{Apply1, Apply2, BinaryFn, Compute, MapExpr, ReduceOp, UnaryFn};
use crate::tensor::{Layout, Tensor};
use rayon::prelude::*;
use std::borrow::Cow;
use std::mem::MaybeUninit;

/// Outputs evaluated per block: large enough for long loops, small enough to stay in L1/L2.
const BLOCK: usize = 2048;

/// One input, read as `T`, with its strides in the output's index space (0 on broadcast axes).
struct Source<'a, T: Clone> {
    data: Cow<'a, [T]>,
    /// Strides per output axis into `data`.
    strides: Vec<usize>,
    /// Whether `data` is laid out exactly like the output (flat index = output index).
    dense: bool,
}

/// The value of one node over one block.
enum Val<'a, T> {
    /// A slice borrowed straight from a dense input.
    Slice(&'a [T]),
    /// The same value everywhere.
    Scalar(T),
    /// A freshly computed buffer.
    Buf(Vec<T>),
}

/// Evaluates `expr` over `out_shape`, computing in `T` and storing as `dtype`.
pub(crate) fn map<T: Float + Compute>(
    expr: &MapExpr,
    inputs: &[&Tensor],
    out_shape: &[usize],
    dtype: DType,
) -> Result<Tensor> {
    let mut out = map_many::<T>(std::slice::from_ref(expr), inputs, out_shape, dtype)?;
    out.pop().ok_or_else(|| crate::BackendError::Shape {
        op: "map",
        detail: "no result".into(),
    })
}

/// Evaluates every expression of `exprs` over `out_shape` in one pass over the inputs (block by
/// block, each block's inputs read once for all the expressions), computing in `T` and storing
/// each as `dtype`.
pub(crate) fn map_many<T: Float + Compute>(
    exprs: &[MapExpr],
    inputs: &[&Tensor],
    out_shape: &[usize],
    dtype: DType,
) -> Result<Vec<Tensor>> {
    for e in exprs {
        check_expr(e, inputs.len())?;
    }
    broadcastable(inputs, out_shape)?;
    let sources = sources::<T>(inputs, out_shape)?;
    let numel: usize = out_shape.iter().product();
    let mut outs: Vec<Vec<T>> = exprs
        .iter()
        .map(|_| reserve::<T>(numel))
        .collect::<Result<_>>()?;
    // Each block's slice of every output, so blocks run in parallel over all outputs at once.
    // The outputs are not zeroed up front (a pass over all of memory): each block is zeroed
    // just before it is written, while it sits in the cache.
    let mut blocks: Vec<Vec<&mut [MaybeUninit<T>]>> =
        (0..numel.div_ceil(BLOCK)).map(|_| Vec::new()).collect();
    for out in outs.iter_mut() {
        let room = out.spare_capacity_mut();
        for (b, chunk) in room[..numel].chunks_mut(BLOCK).enumerate() {
            blocks[b].push(chunk);
        }
    }
    let run = |(bi, chunks): (usize, Vec<&mut [MaybeUninit<T>]>)| {
        let start = bi * BLOCK;
        for (expr, chunk) in exprs.iter().zip(chunks) {
            eval_into(expr, &sources, out_shape, start, zeroed(chunk));
        }
    };
    if numel > BLOCK {
        blocks.into_par_iter().enumerate().for_each(run);
    } else {
        blocks.into_iter().enumerate().for_each(run);
    }
    for out in outs.iter_mut() {
        // SAFETY: every block of the first `numel` elements was zeroed (then written) above.
        unsafe { out.set_len(numel) };
    }
    Ok(outs
        .into_iter()
        .map(|o| output(out_shape, o, dtype))
        .collect())
}

/// Each input read as `T`, with its strides in the index space `out_shape`.
fn sources<'a, T: Float + Compute>(
    inputs: &[&'a Tensor],
    out_shape: &[usize],
) -> Result<Vec<Source<'a, T>>> {
    let mut sources = Vec::with_capacity(inputs.len());
    for t in inputs {
        // A stride-0 (already broadcast) axis is read once, as extent 1, and re-broadcast
        // below, so a broadcast view is never expanded in memory.
        let mut compact = t.layout.clone();
        for (n, &s) in compact.shape.iter_mut().zip(&t.layout.strides) {
            if s == 0 && *n > 1 {
                *n = 1;
            }
        }
        let data = read_view::<T>("map", t, &compact)?;
        let cshape = &compact.shape[..];
        let own = Layout::contiguous(cshape);
        let strides: Vec<usize> = own
            .strides
            .iter()
            .zip(cshape.iter().zip(out_shape))
            .map(|(&s, (&n, &o))| if n == 1 && o != 1 { 0 } else { s })
            .collect();
        let dense = cshape == out_shape;
        sources.push(Source {
            data,
            strides,
            dense,
        });
    }
    Ok(sources)
}

/// The reduction with `op` over the last `reduced` axes of `expr` over `shape`, in one pass:
/// the expression is evaluated block by block (blocks of every row in parallel) and each block
/// folded at once, so its values are never stored whole. Sums accumulate in f64, as
/// [`super::reduce`] does. Returns the elements and the kept shape.
pub(crate) fn map_reduce<T: Float + Compute>(
    expr: &MapExpr,
    inputs: &[&Tensor],
    shape: &[usize],
    reduced: usize,
    op: ReduceOp,
) -> Result<(Vec<T>, Vec<usize>)> {
    check_expr(expr, inputs.len())?;
    broadcastable(inputs, shape)?;
    let sources = sources::<T>(inputs, shape)?;
    let split = shape.len().saturating_sub(reduced);
    let out_shape = shape[..split].to_vec();
    let rows: usize = out_shape.iter().product();
    let r: usize = shape[split..].iter().product();
    if rows == 0 || r == 0 {
        return Ok((vec![T::ZERO; rows], out_shape));
    }
    let segments = r.div_ceil(BLOCK);
    let fold = |v: &[T]| match op {
        ReduceOp::Sum | ReduceOp::Mean => sum_f64(v),
        ReduceOp::Max | ReduceOp::Min => fold_row(v, op).to_f64(),
    };
    let part = |k: usize| {
        let (q, s) = (k / segments, k % segments);
        let len = BLOCK.min(r - s * BLOCK);
        match eval(expr, &sources, shape, q * r + s * BLOCK, len) {
            Val::Slice(v) => fold(&v[..len]),
            Val::Buf(b) => fold(&b),
            Val::Scalar(c) => match op {
                ReduceOp::Sum | ReduceOp::Mean => c.to_f64() * len as f64,
                ReduceOp::Max | ReduceOp::Min => c.to_f64(),
            },
        }
    };
    let parts: Vec<f64> = if rows * r > BLOCK {
        (0..rows * segments).into_par_iter().map(part).collect()
    } else {
        (0..rows * segments).map(part).collect()
    };
    let out = parts
        .chunks(segments)
        .map(|p| {
            T::from_f64(match op {
                ReduceOp::Sum => p.iter().sum(),
                ReduceOp::Mean => p.iter().sum::<f64>() / r as f64,
                ReduceOp::Max => p.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                ReduceOp::Min => p.iter().copied().fold(f64::INFINITY, f64::min),
            })
        })
        .collect();
    Ok((out, out_shape))
}

/// Evaluates one node over the outputs `start..start + len`.
fn eval<'a, T: Float + Compute>(
    expr: &MapExpr,
    sources: &'a [Source<'a, T>],
    shape: &[usize],
    start: usize,
    len: usize,
) -> Val<'a, T> {
    match expr {
        MapExpr::Const(c) => Val::Scalar(T::from_f64(*c)),
        MapExpr::Input(k) => match sources.get(*k) {
            Some(s) => load(s, shape, start, len),
            None => Val::Scalar(T::from_f64(f64::NAN)),
        },
        MapExpr::Unary(f, x) => {
            let v = eval(x, sources, shape, start, len);
            unary(*f, v, len)
        }
        MapExpr::Binary(f, a, b) => {
            let va = eval(a, sources, shape, start, len);
            let vb = eval(b, sources, shape, start, len);
            binary(*f, va, vb, len)
        }
    }
}

/// Evaluates `expr` over the outputs `start..start + out.len()` into `out`: the root's function
/// writes its results where they are kept, with no buffer of its own.
fn eval_into<T: Float + Compute>(
    expr: &MapExpr,
    sources: &[Source<'_, T>],
    shape: &[usize],
    start: usize,
    out: &mut [T],
) {
    let len = out.len();
    match expr {
        MapExpr::Unary(f, x) => {
            let v = eval(x, sources, shape, start, len);
            unary_into(*f, v, out)
        }
        MapExpr::Binary(f, a, b) => {
            let va = eval(a, sources, shape, start, len);
            let vb = eval(b, sources, shape, start, len);
            binary_into(*f, va, vb, out)
        }
        _ => match eval(expr, sources, shape, start, len) {
            Val::Slice(s) => out.copy_from_slice(s),
            Val::Scalar(c) => out.fill(c),
            Val::Buf(b) => out.copy_from_slice(&b),
        },
    }
}

impl<'a, T: Copy> Val<'a, T> {
    /// The value as a loop operand (`len` elements).
    fn operand(&self, len: usize) -> Operand<'_, T> {
        match self {
            Val::Slice(s) => Operand::Values(&s[..len]),
            Val::Scalar(c) => Operand::Scalar(*c),
            Val::Buf(b) => Operand::Values(b),
        }
    }
}

/// A value and the block it is to be written into, to which the table hands one function.
struct Into1<'a, 'o, T>(Val<'a, T>, &'o mut [T]);

impl<T: Float> Apply1<T> for Into1<'_, '_, T> {
    type Out = ();
    #[inline(always)]
    fn apply<F: Fn(T) -> T>(self, f: F) {
        let Into1(v, out) = self;
        match v.operand(out.len()) {
            Operand::Values(s) => vector::each_from(out, s, &f),
            Operand::Scalar(c) => out.fill(f(c)),
        }
    }
}

// Kept out of `eval_into`, as `unary` is out of `eval`.
#[inline(never)]
fn unary_into<T: Float + Compute>(f: UnaryFn, v: Val<'_, T>, out: &mut [T]) {
    T::apply_unary(f, Into1(v, out))
}

/// Two values and the block their results go into.
struct Into2<'a, 'b, 'o, T>(Val<'a, T>, Val<'b, T>, &'o mut [T]);

impl<T: Float> Apply2<T> for Into2<'_, '_, '_, T> {
    type Out = ();
    #[inline(always)]
    fn apply<F: Fn(T, T) -> T>(self, f: F) {
        let Into2(a, b, out) = self;
        let len = out.len();
        vector::pairs(out, a.operand(len), b.operand(len), &f)
    }
}

// Kept out of `eval_into`, as `binary` is out of `eval`.
#[inline(never)]
fn binary_into<T: Float + Compute>(f: BinaryFn, a: Val<'_, T>, b: Val<'_, T>, out: &mut [T]) {
    T::apply_binary(f, Into2(a, b, out))
}

/// Reads one input over a block: borrowed when dense, gathered through strides otherwise.
fn load<'a, T: Float>(
    s: &'a Source<'a, T>,
    shape: &[usize],
    start: usize,
    len: usize,
) -> Val<'a, T> {
    if s.dense {
        return Val::Slice(&s.data[start..start + len]);
    }
    if s.data.len() == 1 {
        return Val::Scalar(s.data[0]);
    }
    let rank = shape.len();
    let mut idx = vec![0usize; rank];
    let mut rem = start;
    let mut pos = 0usize;
    for a in (0..rank).rev() {
        idx[a] = rem % shape[a];
        rem /= shape[a];
        pos += idx[a] * s.strides[a];
    }
    let mut buf = Vec::with_capacity(len);
    let last = rank - 1;
    let (n_in, s_in) = (shape[last], s.strides[last]);
    while buf.len() < len {
        let run = (n_in - idx[last]).min(len - buf.len());
        if s_in == 0 {
            let x = s.data[pos];
            buf.extend(std::iter::repeat_n(x, run));
        } else if s_in == 1 {
            buf.extend_from_slice(&s.data[pos..pos + run]);
        } else {
            buf.extend((0..run).map(|j| s.data[pos + j * s_in]));
        }
        // Move to the start of the next row.
        pos += run * s_in;
        idx[last] += run;
        let mut a = last;
        while idx[a] == shape[a] && a > 0 {
            pos -= shape[a] * s.strides[a];
            idx[a] = 0;
            a -= 1;
            idx[a] += 1;
            pos += s.strides[a];
        }
    }
    Val::Buf(buf)
}

/// Applies `f` elementwise into a fresh or reused buffer.
#[inline(always)]
fn apply1<T: Float>(v: Val<'_, T>, len: usize, f: impl Fn(T) -> T) -> Val<'static, T> {
    match v {
        Val::Scalar(x) => Val::Scalar(f(x)),
        Val::Slice(s) => {
            let mut b = s[..len].to_vec();
            vector::each(&mut b, &f);
            Val::Buf(b)
        }
        Val::Buf(mut b) => {
            vector::each(&mut b, &f);
            Val::Buf(b)
        }
    }
}

/// A value and its length, to which the table hands one function (so each function runs
/// its own loop, which the compiler vectorises).
struct Elements<'a, T>(Val<'a, T>, usize);

impl<T: Float> Apply1<T> for Elements<'_, T> {
    type Out = Val<'static, T>;
    #[inline(always)]
    fn apply<F: Fn(T) -> T>(self, f: F) -> Val<'static, T> {
        apply1(self.0, self.1, f)
    }
}

// Kept out of the recursive `eval` (each function's loop is inlined here, which makes a
// large frame; in `eval` it would multiply by the depth of deep expressions).
#[inline(never)]
fn unary<T: Float + Compute>(f: UnaryFn, v: Val<'_, T>, len: usize) -> Val<'static, T> {
    T::apply_unary(f, Elements(v, len))
}

/// Applies `f` pairwise, reusing whichever operand already owns a buffer.
#[inline(always)]
fn apply2<T: Float>(
    a: Val<'_, T>,
    b: Val<'_, T>,
    len: usize,
    f: impl Fn(T, T) -> T,
) -> Val<'static, T> {
    match (a, b) {
        (Val::Scalar(x), Val::Scalar(y)) => Val::Scalar(f(x, y)),
        (Val::Buf(mut x), y) => {
            match y {
                Val::Scalar(c) => x.iter_mut().for_each(|p| *p = f(*p, c)),
                Val::Slice(s) => x.iter_mut().zip(s).for_each(|(p, &q)| *p = f(*p, q)),
                Val::Buf(s) => x.iter_mut().zip(&s).for_each(|(p, &q)| *p = f(*p, q)),
            }
            Val::Buf(x)
        }
        (x, Val::Buf(mut y)) => {
            match x {
                Val::Scalar(c) => y.iter_mut().for_each(|p| *p = f(c, *p)),
                Val::Slice(s) => y.iter_mut().zip(s).for_each(|(p, &q)| *p = f(q, *p)),
                Val::Buf(_) => {}
            }
            Val::Buf(y)
        }
        (Val::Slice(x), Val::Slice(y)) => Val::Buf(
            x[..len]
                .iter()
                .zip(&y[..len])
                .map(|(&p, &q)| f(p, q))
                .collect(),
        ),
        (Val::Slice(x), Val::Scalar(c)) => Val::Buf(x[..len].iter().map(|&p| f(p, c)).collect()),
        (Val::Scalar(c), Val::Slice(y)) => Val::Buf(y[..len].iter().map(|&q| f(c, q)).collect()),
    }
}

/// Two values and their length, to which the table hands one function.
struct Pairs<'a, 'b, T>(Val<'a, T>, Val<'b, T>, usize);

impl<T: Float> Apply2<T> for Pairs<'_, '_, T> {
    type Out = Val<'static, T>;
    #[inline(always)]
    fn apply<F: Fn(T, T) -> T>(self, f: F) -> Val<'static, T> {
        apply2(self.0, self.1, self.2, f)
    }
}

// Kept out of the recursive `eval`, as `unary`.
#[inline(never)]
fn binary<T: Float + Compute>(
    f: BinaryFn,
    a: Val<'_, T>,
    b: Val<'_, T>,
    len: usize,
) -> Val<'static, T> {
    T::apply_binary(f, Pairs(a, b, len))
}

#[cfg(test)]
mod tests;
