//! What one fused call of a backend computes, as data: a [`Kernel`] (elementwise
//! expressions over broadcast inputs, optionally normalised or reduced along axes, or reading
//! reductions of their own rows) and a [`Product`] (a pairwise contraction with an optional
//! elementwise epilogue). Every map, reduction, normalisation, cast and fill the planner
//! emits is one `Kernel`, so a backend has one entry point for all of them and a wrapper
//! (profiling, recording) has one method to wrap.

use crate::{BackendError, DType, MapExpr, NormFn, ReduceOp, Result, RowMapArgs, Tensor};

/// What a backend is, for messages and for the planner's choices.
#[derive(Clone, Debug)]
pub struct Info {
    /// A human name for messages, e.g. `cpu (2 threads)` or `cuda:0 NVIDIA H100`.
    pub name: String,
    /// Whether the backend is a GPU (the planner then keeps larger relations dense, for its
    /// matrix units).
    pub accelerator: bool,
    /// Whether [`crate::Backend::begin_recording`], `end_recording`, `replay` and kernels
    /// written into existing tensors ([`Kernel::into`]) work here.
    pub recordable: bool,
}

/// One fused elementwise kernel. Every input has the rank of `shape`, each of its axes of
/// `shape`'s extent or 1 (broadcast), in any layout. Arithmetic runs in `dtype.compute()`.
#[derive(Clone, Copy, Debug)]
pub struct Kernel<'a> {
    /// The tensors the expressions read as `Input(k)`.
    pub inputs: &'a [&'a Tensor],
    /// The shape the expressions are evaluated over.
    pub shape: &'a [usize],
    /// The type the values are computed in (its compute type) and stored as.
    pub dtype: DType,
    /// What is computed.
    pub body: Body<'a>,
    /// For [`Body::Map`]: write the results into these tensors (contiguous, of `shape`,
    /// any of which may also be an input: each element is read before it is written)
    /// instead of fresh ones, so that a recorded step replays over the same memory. Only
    /// backends whose [`Info::recordable`] is true accept it.
    pub into: Option<&'a [&'a Tensor]>,
}

/// The computation of a [`Kernel`].
#[derive(Clone, Copy, Debug)]
pub enum Body<'a> {
    /// Each expression stored as its own tensor of the kernel's shape and type. One
    /// expression `Input(0)` over an input of the kernel's shape is a conversion (exact
    /// between integer types); `Const(v)` over no inputs is a fill.
    Map(&'a [MapExpr]),
    /// The reduction with `op` of the expression's values over `axes` (removed from the
    /// result). An empty reduction yields 0. Typed as the reductions of a backend type their
    /// results: f64 for f64, f32 otherwise.
    Reduce {
        /// The values reduced.
        expr: &'a MapExpr,
        /// The axes reduced, ascending.
        axes: &'a [usize],
        /// How values combine.
        op: ReduceOp,
    },
    /// Softmax or layer norm along `axis` of the expression's values: the [`Body::Rows`]
    /// of [`NormFn::as_rows`], named so that a backend may run its own loop for it.
    Normalize {
        /// The values normalised.
        expr: &'a MapExpr,
        /// The axis normalised along.
        axis: usize,
        /// Which normalisation.
        func: NormFn,
    },
    /// A map that also reads reductions along `axis`: reduction `j` reduces its expression
    /// (of the inputs and the reductions before it) along `axis`, and `expr` reads it as
    /// `Input(inputs.len() + j)`, the same value all along the axis. The steps of a layer
    /// norm or softmax written by hand become one of these.
    Rows {
        /// The map.
        expr: &'a MapExpr,
        /// Each reduction's expression and how it reduces.
        reductions: &'a [(MapExpr, ReduceOp)],
        /// The axis the reductions run along.
        axis: usize,
    },
    /// A dropout mask: each element 0 with probability `p`, else `1 / (1 - p)`, drawn by
    /// [`tl_core::random`] from `stream`, a counter and the element's row-major position. The
    /// one input is the counter, an `f64` scalar holding an integer (the training step), so
    /// a recorded step draws fresh masks when the counter advances.
    Mask {
        /// The dropout rate, in [0, 1).
        p: f64,
        /// The stream (the run's seed, the statement, the mask).
        stream: u64,
    },
}

impl<'a> Kernel<'a> {
    /// A kernel computing `body` over `inputs`, into fresh tensors.
    pub fn new(inputs: &'a [&'a Tensor], shape: &'a [usize], dtype: DType, body: Body<'a>) -> Self {
        Kernel {
            inputs,
            shape,
            dtype,
            body,
            into: None,
        }
    }

    /// How many tensors the kernel yields.
    pub fn outputs(&self) -> usize {
        match self.body {
            Body::Map(exprs) => exprs.len(),
            _ => 1,
        }
    }

    /// The one input this kernel converts to its type, when it is a plain conversion (see
    /// [`Body::Map`]).
    pub fn conversion(&self) -> Option<&'a Tensor> {
        match (self.body, self.inputs) {
            (Body::Map([MapExpr::Input(0)]), [x]) if x.shape() == self.shape => Some(x),
            _ => None,
        }
    }

    /// The value this kernel fills its result with, when it is a plain fill.
    pub fn fill(&self) -> Option<f64> {
        match (self.body, self.inputs) {
            (Body::Map([MapExpr::Const(v)]), []) => Some(*v),
            _ => None,
        }
    }

    /// Which of the forms backends compute directly this kernel is. Every backend reads a
    /// kernel through this one classification, so they agree on what each form means.
    pub fn form(&self) -> Result<Form<'a>> {
        // The kernel's one input, when it has the kernel's shape (not broadcast).
        let whole = match self.inputs {
            [x] if x.shape() == self.shape => Some(*x),
            _ => None,
        };
        Ok(match (self.body, self.into) {
            (Body::Map(exprs), Some(outs)) => Form::MapInto(exprs, outs),
            (_, Some(_)) => {
                return Err(BackendError::Shape {
                    op: "kernel",
                    detail: "only maps write into existing tensors".into(),
                })
            }
            (Body::Map(_), None) => match (self.fill(), self.conversion(), self.body) {
                (Some(v), ..) => Form::Fill(v),
                (None, Some(x), _) => Form::Convert(x),
                (.., Body::Map([expr])) => Form::Map(expr),
                (.., Body::Map(exprs)) => Form::MapMany(exprs),
                _ => Form::Composed,
            },
            (Body::Reduce { expr, axes, op }, None) => match (expr, whole) {
                (MapExpr::Input(0), Some(input)) => Form::Reduce { input, axes, op },
                _ => {
                    let rank = self.shape.len();
                    let n = axes.len();
                    if n <= rank && axes.iter().copied().eq(rank - n..rank) {
                        Form::MapReduce { expr, last: n, op }
                    } else {
                        Form::Composed
                    }
                }
            },
            (Body::Normalize { expr, axis, func }, None) => match (expr, whole) {
                (MapExpr::Input(0), Some(input)) if input.dtype == self.dtype => {
                    Form::Normalize { input, axis, func }
                }
                _ => Form::MapNormalize { expr, axis, func },
            },
            (Body::Mask { p, stream }, None) => match self.inputs {
                [counter] if counter.dtype == DType::F64 && counter.numel() == 1 => {
                    Form::Mask { p, stream, counter }
                }
                _ => {
                    return Err(BackendError::Shape {
                        op: "mask",
                        detail: "a mask reads one f64 scalar, its counter".into(),
                    })
                }
            },
            (
                Body::Rows {
                    expr,
                    reductions,
                    axis,
                },
                None,
            ) => Form::Rows(RowMapArgs {
                expr,
                inputs: self.inputs,
                reductions,
                shape: self.shape,
                axis,
                dtype: self.dtype,
            }),
        })
    }
}

/// The forms of [`Kernel`] backends compute directly ([`Kernel::form`]); a backend hands
/// the forms it does not fuse to `calls::composed`.
#[derive(Clone, Copy, Debug)]
pub enum Form<'a> {
    /// Every element `value`.
    Fill(f64),
    /// The input converted to the kernel's type (exact between integer types).
    Convert(&'a Tensor),
    /// One expression.
    Map(&'a MapExpr),
    /// Several expressions over the same inputs.
    MapMany(&'a [MapExpr]),
    /// Expressions written into existing tensors.
    MapInto(&'a [MapExpr], &'a [&'a Tensor]),
    /// A stored tensor reduced over any axes.
    Reduce {
        /// The tensor.
        input: &'a Tensor,
        /// The axes reduced.
        axes: &'a [usize],
        /// How values combine.
        op: ReduceOp,
    },
    /// An expression reduced over its last `last` axes.
    MapReduce {
        /// The values reduced.
        expr: &'a MapExpr,
        /// How many trailing axes are reduced.
        last: usize,
        /// How values combine.
        op: ReduceOp,
    },
    /// A stored tensor of the kernel's type normalised along one axis.
    Normalize {
        /// The tensor.
        input: &'a Tensor,
        /// The axis.
        axis: usize,
        /// Which normalisation.
        func: NormFn,
    },
    /// An expression normalised along one axis.
    MapNormalize {
        /// The values normalised.
        expr: &'a MapExpr,
        /// The axis.
        axis: usize,
        /// Which normalisation.
        func: NormFn,
    },
    /// A map reading reductions of its rows.
    Rows(RowMapArgs<'a>),
    /// A dropout mask ([`Body::Mask`]).
    Mask {
        /// The dropout rate.
        p: f64,
        /// The stream.
        stream: u64,
        /// The counter, an f64 scalar.
        counter: &'a Tensor,
    },
    /// Anything else (an expression reduced over axes that are not the last ones).
    Composed,
}

/// A pairwise einsum with the sum-product semiring, optionally followed by an elementwise
/// epilogue. Axis `k` of `a` carries label `a_labels[k]` (likewise `b`); the result has one
/// axis per `out_labels` entry; labels absent from `out_labels` are summed. Labels are
/// distinct within each operand.
#[derive(Clone, Copy, Debug)]
pub struct Product<'a> {
    /// The left operand and its labels.
    pub a: (&'a Tensor, &'a [u32]),
    /// The right operand and its labels.
    pub b: (&'a Tensor, &'a [u32]),
    /// The result's labels.
    pub out_labels: &'a [u32],
    /// An elementwise function of the product, applied before it is stored.
    pub epilogue: Option<Epilogue<'a>>,
}

/// What a [`Product`] applies to its result: `expr` reads the product as `Input(0)` and
/// `extra[k]` as `Input(k + 1)`; every extra input has the product's rank, each axis of the
/// product's extent or 1. The result is stored as `dtype`. Backends fuse what they can (a
/// bias, a residual and ReLU run inside the GEMM on CUDA).
#[derive(Clone, Copy, Debug)]
pub struct Epilogue<'a> {
    /// The function of the product.
    pub expr: &'a MapExpr,
    /// The other tensors it reads.
    pub extra: &'a [&'a Tensor],
    /// The stored type.
    pub dtype: DType,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::CpuBackend;
    use crate::{Backend, HostTensor};

    #[test]
    fn kernels_read_as_the_forms_backends_compute() -> Result<()> {
        let be = CpuBackend::new();
        let up = |shape: &[usize]| {
            let n = shape.iter().product();
            be.upload(&HostTensor::from_f64(
                shape.to_vec(),
                vec![1.5; n],
                DType::F32,
            ))
        };
        let (x, row) = (up(&[3, 4])?, up(&[1, 4])?);
        let (whole, bcast) = ([&x], [&row]);
        let shape = [3usize, 4];
        let id = [MapExpr::Input(0)];
        let exp = MapExpr::Unary(crate::UnaryFn::Exp, Box::new(MapExpr::Input(0)));
        let form = |inputs, body| Kernel::new(inputs, &shape, DType::F32, body).form();
        assert!(matches!(
            Kernel::new(&[], &shape, DType::F32, Body::Map(&[MapExpr::Const(2.0)])).form()?,
            Form::Fill(v) if v == 2.0
        ));
        assert!(matches!(form(&whole, Body::Map(&id))?, Form::Convert(_)));
        // A broadcast input is mapped, not converted or reduced as stored.
        assert!(matches!(form(&bcast, Body::Map(&id))?, Form::Map(_)));
        let reduce = |expr, axes| Body::Reduce {
            expr,
            axes,
            op: ReduceOp::Sum,
        };
        let first = reduce(&id[0], &[0]);
        assert!(matches!(form(&whole, first)?, Form::Reduce { .. }));
        assert!(matches!(
            form(&bcast, reduce(&id[0], &[1]))?,
            Form::MapReduce { last: 1, .. }
        ));
        assert!(matches!(form(&whole, reduce(&exp, &[0]))?, Form::Composed));
        let norm = Body::Normalize {
            expr: &id[0],
            axis: 1,
            func: NormFn::Softmax,
        };
        assert!(matches!(form(&whole, norm)?, Form::Normalize { .. }));
        // Normalising into another type first converts.
        let f64_norm = Kernel::new(&whole, &shape, DType::F64, norm).form()?;
        assert!(matches!(f64_norm, Form::MapNormalize { .. }));
        let mut into = Kernel::new(&whole, &shape, DType::F32, first);
        into.into = Some(&whole);
        assert!(into.form().is_err());
        Ok(())
    }
}
