//! Integer tensors: counts and sums over relations, which must be exact.
//!
//! `N = Reach(x, y)` counts tuples, `Deg[x] = Edge(x, y)` counts per group, and
//! `Paths[x, z] = Edge(x, y) Edge(y, z)` counts two-step paths. Their values are integers, and
//! a user expects them exact whatever `--dtype` the real tensors use: an f32 sum stops counting
//! at 2^24, a bf16 one at 2^8. Such a tensor is typed [`TensorKind::Integer`] here and kept in
//! 64-bit floating point by the runtime (exact up to 2^53, beyond which the runtime reports an
//! error); a real equation that reads it sees it converted to the compute type.
//!
//! A derived tensor is an integer tensor when it is not part of a recursion, has only equations
//! (no rules or facts), each projecting by sum, max or min (not `avg=`) with no normalising
//! axis, and each right-hand side is built from relations, integer tensors, integer numbers
//! and index values with `+`, `-`, juxtaposition and powers by non-negative integers, and when
//! nothing it depends on is learned (a gradient never reaches it).

use crate::program::{CheckedProgram, Definition, Expr, TensorKind};
use tl_syntax::ast::{BinOp, Projection};

/// The largest magnitude up to which every integer is exact in 64-bit floating point.
pub const EXACT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Marks the integer tensors of a checked program (its strata must be known).
pub fn mark_integers(p: &mut CheckedProgram) {
    let mut learned: Vec<bool> = p
        .tensors
        .iter()
        .map(|t| matches!(t.def, Definition::Param(_) | Definition::ImplicitParam))
        .collect();
    for stratum in &p.strata {
        // A stratum depends on a learned tensor when any member reads one (members of a
        // recursive group share their inputs' status).
        let mut reads_learned = false;
        for &t in &stratum.tensors {
            let decl = &p.tensors[t];
            for &e in &decl.equations {
                let mut reads = Vec::new();
                crate::strata::collect_reads(&p.equations[e].rhs, &mut reads);
                reads_learned |= reads.iter().any(|&(r, _)| learned[r]);
            }
            for &r in &decl.rules {
                reads_learned |= p.rules[r].body.iter().any(|a| learned[a.tensor]);
            }
            for s in p.loop_of(t).iter().flat_map(|l| &l.equations) {
                let mut reads = Vec::new();
                crate::strata::collect_reads(&s.equation.rhs, &mut reads);
                reads_learned |= reads.iter().any(|&(r, _)| learned[r]);
            }
        }
        for &t in &stratum.tensors {
            learned[t] |= reads_learned;
        }
        if stratum.recursive || reads_learned {
            continue;
        }
        for &t in &stratum.tensors {
            let decl = &p.tensors[t];
            let candidate = decl.kind == TensorKind::Real
                && matches!(decl.def, Definition::Derived)
                && decl.rules.is_empty()
                && decl.facts.is_empty()
                && !decl.equations.is_empty()
                && p.loop_of(t).is_none();
            let integral = candidate
                && decl.equations.iter().all(|&e| {
                    let eq = &p.equations[e];
                    !matches!(eq.projection, Projection::Avg)
                        && eq.norm_var.is_none()
                        && integral(&eq.rhs, p)
                });
            if integral {
                p.tensors[t].kind = TensorKind::Integer;
            }
        }
    }
}

/// Whether an expression has an integer value at every point.
fn integral(e: &Expr, p: &CheckedProgram) -> bool {
    let whole = |x: f64| x.fract() == 0.0 && x.abs() <= EXACT_LIMIT;
    match e {
        Expr::Number(x) => whole(*x),
        Expr::IndexValue(_) => true,
        Expr::Access(a) => matches!(
            p.tensors[a.tensor].kind,
            TensorKind::Relation | TensorKind::Integer
        ),
        Expr::Call(..) => false,
        Expr::Neg(x) => integral(x, p),
        Expr::Binary(BinOp::Add | BinOp::Sub | BinOp::Mul, a, b) => {
            integral(a, p) && integral(b, p)
        }
        Expr::Binary(BinOp::Pow, a, b) => {
            matches!(**b, Expr::Number(k) if whole(k) && k >= 0.0) && integral(a, p)
        }
        Expr::Binary(BinOp::Div, ..) => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::program::TensorKind;
    use tl_syntax::SourceMap;

    fn kinds(src: &str) -> Vec<(String, TensorKind)> {
        let mut sources = SourceMap::new();
        let (program, diags) =
            tl_syntax::load_source("t.tl", src, &mut sources, std::path::Path::new("."));
        assert!(diags.is_empty(), "{diags:?}");
        let checked = match crate::check(&program, &sources) {
            Ok(p) => p,
            Err(e) => panic!("{e:?}"),
        };
        checked
            .tensors
            .iter()
            .map(|t| (t.name.clone(), t.kind))
            .collect()
    }

    fn kind_of(src: &str, name: &str) -> TensorKind {
        kinds(src)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, k)| k)
            .expect("tensor exists")
    }

    #[test]
    fn counts_over_relations_are_integers() {
        let src = "E(1, 2)\nE(2, 3)\nN = E(x, y)\nDeg[x] = E(x, y)\nP[x, z] = E(x, y) E(y, z) + 2\nTwice = 2 N\n";
        assert_eq!(kind_of(src, "E"), TensorKind::Relation);
        assert_eq!(kind_of(src, "N"), TensorKind::Integer);
        assert_eq!(kind_of(src, "Deg"), TensorKind::Integer);
        assert_eq!(kind_of(src, "P"), TensorKind::Integer);
        assert_eq!(kind_of(src, "Twice"), TensorKind::Integer);
    }

    #[test]
    fn anything_real_stays_real() {
        let src = "E(1, 2)\nW = [0.5, 1, 2]\nA avg= E(x, y)\nH = E(x, y) / 2\nS = sig(E(x, y))\nM[x] = E(x, y) W[y]\nHalf = 0.5 E(x, y)\nparam V[3] ~ normal(0, 1)\nL = V[i]\n";
        for name in ["A", "H", "S", "M", "Half", "L"] {
            assert_eq!(kind_of(src, name), TensorKind::Real, "{name}");
        }
    }

    #[test]
    fn recursions_stay_real() {
        let src = "E(0, 1)\nE(1, 2)\nP[x, z] = E(x, z) + P[x, y] E(y, z)\n";
        assert_eq!(kind_of(src, "P"), TensorKind::Real);
    }
}
