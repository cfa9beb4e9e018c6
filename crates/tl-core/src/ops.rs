//! The operations a backend computes, as data: fused elementwise expressions ([`MapExpr`])
//! over the functions of [`crate::functions`] (one table row each), reductions
//! ([`ReduceOp`]) and the normalising functions ([`NormFn`]).

pub use crate::functions::{Apply1, Apply2, BinaryFn, Compute, UnaryFn};

/// How a reduction or projection combines values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Sum.
    Sum,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
    /// Arithmetic mean.
    Mean,
}

/// A normalising function that works along one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NormFn {
    /// `softmax`, as PyTorch's.
    Softmax,
    /// `lnorm`: PyTorch's `layer_norm` without affine terms (biased variance,
    /// [`LAYER_NORM_EPS`]).
    LayerNorm,
}

impl NormFn {
    /// The normalisation as plain expressions over reductions along its axis: each element's
    /// value is `Input(0)`, reduction `j` (of its expression, over the row) is read as
    /// `Input(1 + j)` by the reductions after it and by the map, which gives the result.
    /// Softmax subtracts the row's maximum before `exp` (so large values do not overflow);
    /// layer norm divides by `sqrt(var + LAYER_NORM_EPS)` with the biased variance. A backend
    /// without a kernel of its own for a normalisation computes it from this form.
    pub fn as_rows(self) -> (Vec<(MapExpr, ReduceOp)>, MapExpr) {
        use MapExpr::{Binary, Const, Input, Unary};
        let bin = |f, a, b| Binary(f, Box::new(a), Box::new(b));
        let un = |f, a| Unary(f, Box::new(a));
        let centred = || bin(BinaryFn::Sub, Input(0), Input(1));
        match self {
            NormFn::Softmax => (
                vec![
                    (Input(0), ReduceOp::Max),
                    (un(UnaryFn::Exp, centred()), ReduceOp::Sum),
                ],
                bin(
                    BinaryFn::Mul,
                    un(UnaryFn::Exp, centred()),
                    un(UnaryFn::Recip, Input(2)),
                ),
            ),
            NormFn::LayerNorm => (
                vec![
                    (Input(0), ReduceOp::Mean),
                    (bin(BinaryFn::Mul, centred(), centred()), ReduceOp::Mean),
                ],
                bin(
                    BinaryFn::Mul,
                    centred(),
                    un(
                        UnaryFn::Recip,
                        un(
                            UnaryFn::Sqrt,
                            bin(BinaryFn::Add, Input(2), Const(LAYER_NORM_EPS)),
                        ),
                    ),
                ),
            ),
        }
    }
}

/// The ε added to the variance of `lnorm` (PyTorch's default), named once for every engine.
pub const LAYER_NORM_EPS: f64 = 1e-5;

/// The surface names of the normalising functions.
pub const NORM_NAMES: &[(&str, NormFn)] =
    &[("softmax", NormFn::Softmax), ("lnorm", NormFn::LayerNorm)];

/// A fused elementwise expression over the inputs of one backend `map` call.
#[derive(Clone, Debug, PartialEq)]
pub enum MapExpr {
    /// The k-th input tensor.
    Input(usize),
    /// A constant.
    Const(f64),
    /// A unary function of a subexpression.
    Unary(UnaryFn, Box<MapExpr>),
    /// A binary function of two subexpressions.
    Binary(BinaryFn, Box<MapExpr>, Box<MapExpr>),
}

impl MapExpr {
    /// Evaluates the expression at one point given the inputs' values there (the f64 reference).
    pub fn eval(&self, inputs: &[f64]) -> f64 {
        match self {
            MapExpr::Input(k) => inputs.get(*k).copied().unwrap_or(f64::NAN),
            MapExpr::Const(c) => *c,
            MapExpr::Unary(f, x) => f.eval(x.eval(inputs)),
            MapExpr::Binary(f, a, b) => f.eval(a.eval(inputs), b.eval(inputs)),
        }
    }

    /// The expression with every `Input(k)` replaced by `by(k)` (how fused maps are composed).
    pub fn substitute(&self, by: &dyn Fn(usize) -> MapExpr) -> MapExpr {
        match self {
            MapExpr::Input(k) => by(*k),
            MapExpr::Const(v) => MapExpr::Const(*v),
            MapExpr::Unary(f, x) => MapExpr::Unary(*f, Box::new(x.substitute(by))),
            MapExpr::Binary(f, a, b) => {
                MapExpr::Binary(*f, Box::new(a.substitute(by)), Box::new(b.substitute(by)))
            }
        }
    }

    /// How many nodes (inputs, constants and functions) the expression has.
    pub fn size(&self) -> usize {
        match self {
            MapExpr::Input(_) | MapExpr::Const(_) => 1,
            MapExpr::Unary(_, a) => 1 + a.size(),
            MapExpr::Binary(_, a, b) => 1 + a.size() + b.size(),
        }
    }

    /// How many times the expression reads input `k`.
    pub fn reads(&self, k: usize) -> usize {
        match self {
            MapExpr::Input(j) => usize::from(*j == k),
            MapExpr::Const(_) => 0,
            MapExpr::Unary(_, x) => x.reads(k),
            MapExpr::Binary(_, a, b) => a.reads(k) + b.reads(k),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_substitute_count_and_evaluate() {
        let e = MapExpr::Binary(
            BinaryFn::Mul,
            Box::new(MapExpr::Input(0)),
            Box::new(MapExpr::Unary(UnaryFn::Exp, Box::new(MapExpr::Input(0)))),
        );
        assert_eq!(e.size(), 4);
        assert_eq!(e.reads(0), 2);
        assert_eq!(e.reads(1), 0);
        let f = e.substitute(&|_| MapExpr::Const(2.0));
        assert!((f.eval(&[]) - 2.0 * 2f64.exp()).abs() < 1e-15);
        assert!(e.eval(&[]).is_nan());
    }
}
