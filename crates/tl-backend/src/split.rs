//! Elementwise expressions too large for one kernel, cut into pieces that fit.
//!
//! A device compiles each elementwise expression into one kernel, whose argument block holds a
//! pointer per input and a word per constant: a sum of five thousand terms (`X + X + … + X`)
//! does not fit. [`split`] cuts such an expression into pieces of at most [`Limits`] leaves and
//! nodes, bottom up: each piece is handed to a callback that evaluates it into a temporary
//! (a new input), and what remains is an expression that fits. The pieces are computed in the
//! same arithmetic as the whole (the callback stores them in the compute type), so the result
//! equals the fused one up to the rounding of that type, which both already round to.

use crate::error::Result;
use crate::ops::MapExpr;

/// The most one kernel's expression may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Inputs and constants (each takes argument words).
    pub leaves: usize,
    /// Inputs, constants and functions (the size of the generated code).
    pub nodes: usize,
}

/// A piece of an expression with its size.
struct Sized {
    expr: MapExpr,
    leaves: usize,
    nodes: usize,
}

impl Sized {
    fn leaf(expr: MapExpr) -> Self {
        Sized {
            expr,
            leaves: 1,
            nodes: 1,
        }
    }
}

/// Whether `expr` fits `limits` as it is.
pub fn fits(expr: &MapExpr, limits: Limits) -> bool {
    leaves(expr) <= limits.leaves && expr.size() <= limits.nodes
}

fn leaves(e: &MapExpr) -> usize {
    match e {
        MapExpr::Input(_) | MapExpr::Const(_) => 1,
        MapExpr::Unary(_, x) => leaves(x),
        MapExpr::Binary(_, a, b) => leaves(a) + leaves(b),
    }
}

/// `expr` over inputs `0..n`, rewritten to fit `limits`: every piece cut off is passed to
/// `evaluate`, which computes it (its inputs numbered as in `expr`, then the results of earlier
/// pieces from `n` on) and returns nothing; the piece's result becomes the next input number.
/// Limits below two leaves or three nodes are raised to those (a binary function of two
/// inputs must fit).
pub fn split(
    expr: &MapExpr,
    n: usize,
    limits: Limits,
    evaluate: &mut dyn FnMut(&MapExpr) -> Result<()>,
) -> Result<MapExpr> {
    let limits = Limits {
        leaves: limits.leaves.max(2),
        nodes: limits.nodes.max(3),
    };
    let mut next = n;
    Ok(shrink(expr, limits, &mut next, evaluate)?.expr)
}

/// The piece computed now as a new input.
fn cut(
    piece: Sized,
    next: &mut usize,
    evaluate: &mut dyn FnMut(&MapExpr) -> Result<()>,
) -> Result<Sized> {
    if matches!(piece.expr, MapExpr::Input(_) | MapExpr::Const(_)) {
        return Ok(piece);
    }
    evaluate(&piece.expr)?;
    let k = *next;
    *next += 1;
    Ok(Sized::leaf(MapExpr::Input(k)))
}

fn shrink(
    e: &MapExpr,
    limits: Limits,
    next: &mut usize,
    evaluate: &mut dyn FnMut(&MapExpr) -> Result<()>,
) -> Result<Sized> {
    Ok(match e {
        MapExpr::Input(_) | MapExpr::Const(_) => Sized::leaf(e.clone()),
        MapExpr::Unary(f, x) => {
            let mut x = shrink(x, limits, next, evaluate)?;
            if x.nodes + 1 > limits.nodes {
                x = cut(x, next, evaluate)?;
            }
            Sized {
                expr: MapExpr::Unary(*f, Box::new(x.expr)),
                leaves: x.leaves,
                nodes: x.nodes + 1,
            }
        }
        MapExpr::Binary(f, a, b) => {
            let mut a = shrink(a, limits, next, evaluate)?;
            let mut b = shrink(b, limits, next, evaluate)?;
            let over = |a: &Sized, b: &Sized| {
                a.leaves + b.leaves > limits.leaves || a.nodes + b.nodes + 1 > limits.nodes
            };
            // The larger side is computed first; the other too when that is not enough.
            if over(&a, &b) {
                if a.nodes >= b.nodes {
                    a = cut(a, next, evaluate)?;
                } else {
                    b = cut(b, next, evaluate)?;
                }
            }
            if over(&a, &b) {
                a = cut(a, next, evaluate)?;
                b = cut(b, next, evaluate)?;
            }
            Sized {
                expr: MapExpr::Binary(*f, Box::new(a.expr), Box::new(b.expr)),
                leaves: a.leaves + b.leaves,
                nodes: a.nodes + b.nodes + 1,
            }
        }
    })
}

/// The inputs `expr` reads, in order of first number, and `expr` with them renumbered
/// `0, 1, …` in that order: a piece is launched over only the inputs it reads.
pub fn compact(expr: &MapExpr) -> (MapExpr, Vec<usize>) {
    let mut used = Vec::new();
    collect_inputs(expr, &mut used);
    used.sort_unstable();
    used.dedup();
    let renumbered = expr.substitute(&|k| MapExpr::Input(used.binary_search(&k).unwrap_or(0)));
    (renumbered, used)
}

fn collect_inputs(e: &MapExpr, out: &mut Vec<usize>) {
    match e {
        MapExpr::Input(k) => out.push(*k),
        MapExpr::Const(_) => {}
        MapExpr::Unary(_, x) => collect_inputs(x, out),
        MapExpr::Binary(_, a, b) => {
            collect_inputs(a, out);
            collect_inputs(b, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{BinaryFn, UnaryFn};

    fn add(a: MapExpr, b: MapExpr) -> MapExpr {
        MapExpr::Binary(BinaryFn::Add, Box::new(a), Box::new(b))
    }

    /// Evaluates `expr` at one point through `split`, each piece evaluated at that point too.
    fn through_split(expr: &MapExpr, inputs: &[f64], limits: Limits) -> (f64, usize) {
        let mut values = inputs.to_vec();
        let mut pieces = 0;
        let rest = split(expr, inputs.len(), limits, &mut |piece| {
            assert!(fits(piece, limits), "a piece over the limits");
            let (compact, used) = compact(piece);
            let args: Vec<f64> = used.iter().map(|&k| values[k]).collect();
            values.push(compact.eval(&args));
            pieces += 1;
            Ok(())
        })
        .expect("splits");
        assert!(fits(&rest, limits));
        (rest.eval(&values), pieces)
    }

    #[test]
    fn a_long_sum_is_cut_into_pieces_with_the_same_value() {
        // X_0 + X_1 + … + X_4999, left to right.
        let inputs: Vec<f64> = (0..5000).map(|k| (k as f64 * 0.37).sin()).collect();
        let mut e = MapExpr::Input(0);
        for k in 1..inputs.len() {
            e = add(e, MapExpr::Input(k));
        }
        let want = e.eval(&inputs);
        let (got, pieces) = through_split(
            &e,
            &inputs,
            Limits {
                leaves: 24,
                nodes: 100,
            },
        );
        assert!(pieces > 200, "{pieces}");
        assert_eq!(got, want);
    }

    #[test]
    fn deep_functions_and_balanced_trees_fit_after_splitting() {
        // tanh(tanh(… (x0 · 2 + x1) …)) two thousand deep, and a balanced sum of constants.
        let inputs = [0.3, -0.7];
        let mut e = add(
            MapExpr::Binary(
                BinaryFn::Mul,
                Box::new(MapExpr::Input(0)),
                Box::new(MapExpr::Const(2.0)),
            ),
            MapExpr::Input(1),
        );
        for _ in 0..2000 {
            e = MapExpr::Unary(UnaryFn::Tanh, Box::new(e));
        }
        let mut level: Vec<MapExpr> = (0..256).map(|k| MapExpr::Const(k as f64 - 7.5)).collect();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|p| add(p[0].clone(), p[1].clone()))
                .collect();
        }
        let e = add(e, level.remove(0));
        let limits = Limits {
            leaves: 5,
            nodes: 9,
        };
        let (got, pieces) = through_split(&e, &inputs, limits);
        assert!(pieces > 0);
        assert_eq!(got, e.eval(&inputs));
    }

    #[test]
    fn an_expression_that_fits_is_left_alone() {
        let e = add(MapExpr::Input(1), MapExpr::Const(1.0));
        let rest = split(
            &e,
            2,
            Limits {
                leaves: 4,
                nodes: 8,
            },
            &mut |_| panic!("nothing to cut"),
        )
        .expect("fits");
        assert_eq!(rest, e);
        assert_eq!(
            compact(&e),
            (add(MapExpr::Input(0), MapExpr::Const(1.0)), vec![1])
        );
    }
}
