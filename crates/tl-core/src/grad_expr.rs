//! Derivatives of fused elementwise expressions, built from the op table's rows: the gradient
//! of a `map` is again a `map`, so backward passes run on the same kernels as forward ones.

use crate::ops::{BinaryFn, MapExpr, UnaryFn};

pub(crate) fn c(x: f64) -> MapExpr {
    MapExpr::Const(x)
}

pub(crate) fn un(f: UnaryFn, x: MapExpr) -> MapExpr {
    MapExpr::Unary(f, Box::new(x))
}

/// `a · b`, folding multiplications by 0 and 1.
pub fn mul(a: MapExpr, b: MapExpr) -> MapExpr {
    match (&a, &b) {
        (MapExpr::Const(x), _) if *x == 0.0 => c(0.0),
        (_, MapExpr::Const(y)) if *y == 0.0 => c(0.0),
        (MapExpr::Const(x), _) if *x == 1.0 => b,
        (_, MapExpr::Const(y)) if *y == 1.0 => a,
        _ => MapExpr::Binary(BinaryFn::Mul, Box::new(a), Box::new(b)),
    }
}

/// `a + b`, folding additions of 0.
pub fn add(a: MapExpr, b: MapExpr) -> MapExpr {
    match (&a, &b) {
        (MapExpr::Const(x), _) if *x == 0.0 => b,
        (_, MapExpr::Const(y)) if *y == 0.0 => a,
        _ => MapExpr::Binary(BinaryFn::Add, Box::new(a), Box::new(b)),
    }
}

pub(crate) fn sub(a: MapExpr, b: MapExpr) -> MapExpr {
    MapExpr::Binary(BinaryFn::Sub, Box::new(a), Box::new(b))
}

pub(crate) fn bin(f: BinaryFn, a: MapExpr, b: MapExpr) -> MapExpr {
    MapExpr::Binary(f, Box::new(a), Box::new(b))
}

impl MapExpr {
    /// ∂ self / ∂ Input(k), as an expression over the same inputs.
    pub fn derivative(&self, k: usize) -> MapExpr {
        match self {
            MapExpr::Input(j) => c(if *j == k { 1.0 } else { 0.0 }),
            MapExpr::Const(_) => c(0.0),
            MapExpr::Unary(f, x) => {
                let dx = x.derivative(k);
                if dx == c(0.0) {
                    return dx;
                }
                mul(f.derivative_expr((**x).clone()), dx)
            }
            MapExpr::Binary(f, a, b) => {
                let (da, db) = (a.derivative(k), b.derivative(k));
                let zero = c(0.0);
                if da == zero && db == zero {
                    // Nothing of `k` below: no copy of the operands (a sum of n terms would
                    // otherwise copy its whole tree at every node, for every input).
                    return zero;
                }
                // Sums and products need at most the other operand: copying both (as the
                // general rule does) at every ancestor of `k` would cost a copy of the whole
                // expression per input.
                match f {
                    BinaryFn::Add => return add(da, db),
                    BinaryFn::Sub => return add(da, mul(c(-1.0), db)),
                    BinaryFn::Mul => {
                        let ta = if da == zero {
                            da
                        } else {
                            mul((**b).clone(), da)
                        };
                        let tb = if db == zero {
                            db
                        } else {
                            mul((**a).clone(), db)
                        };
                        return add(ta, tb);
                    }
                    _ => {}
                }
                let (fa, fb) = f.derivative_exprs((**a).clone(), (**b).clone());
                add(
                    if da == zero { da } else { mul(fa, da) },
                    if db == zero { db } else { mul(fb, db) },
                )
            }
        }
    }

    /// Whether the expression reads input `k`.
    pub fn uses(&self, k: usize) -> bool {
        match self {
            MapExpr::Input(j) => *j == k,
            MapExpr::Const(_) => false,
            MapExpr::Unary(_, x) => x.uses(k),
            MapExpr::Binary(_, a, b) => a.uses(k) || b.uses(k),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_function() -> MapExpr {
        let x = || MapExpr::Input(0);
        let y = || MapExpr::Input(1);
        let mut e = mul(x(), y());
        for f in [
            UnaryFn::Sigmoid,
            UnaryFn::Tanh,
            UnaryFn::Gelu,
            UnaryFn::Sin,
            UnaryFn::Cos,
            UnaryFn::Exp,
            UnaryFn::Neg,
            UnaryFn::Relu,
            UnaryFn::GeluGrad,
        ] {
            e = add(e, un(f, mul(x(), y())));
        }
        let pos = || add(mul(x(), x()), c(0.5));
        for f in [UnaryFn::Log, UnaryFn::Sqrt, UnaryFn::Recip, UnaryFn::Abs] {
            e = add(e, un(f, pos()));
        }
        for f in [
            BinaryFn::Div,
            BinaryFn::Pow,
            BinaryFn::Max,
            BinaryFn::Min,
            BinaryFn::SigmoidT,
            BinaryFn::Sub,
        ] {
            e = add(e, bin(f, pos(), add(y(), c(2.0))));
        }
        e
    }

    #[test]
    fn derivatives_match_central_differences() {
        let e = every_function();
        let h = 1e-6;
        for point in [[0.3, 0.7], [-0.8, 1.3], [1.1, -0.4]] {
            for k in 0..2 {
                let mut up = point;
                let mut down = point;
                up[k] += h;
                down[k] -= h;
                let fd = (e.eval(&up) - e.eval(&down)) / (2.0 * h);
                let exact = e.derivative(k).eval(&point);
                assert!(
                    (fd - exact).abs() <= 1e-6 * fd.abs().max(1.0),
                    "input {k} at {point:?}: fd {fd} exact {exact}"
                );
            }
        }
    }
}
