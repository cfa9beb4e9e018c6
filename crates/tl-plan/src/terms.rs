//! Where each index is summed: docs/language.md §3's projection rule. The right-hand side, every
//! parenthesised sum and every function argument is a sum of terms; an index absent from the
//! left-hand side is summed in the smallest term holding all its occurrences. Term ids are
//! assigned in one fixed traversal order, which [`crate::lower`] repeats.

use std::collections::HashMap;
use tl_check::{Expr, VarId};
use tl_syntax::ast::BinOp;

/// Identifies a term by its position in the traversal (0 is the whole right-hand side).
pub type TermId = usize;

/// A factor of a term: an expression, taken as its reciprocal after `/`.
pub struct Factor<'e> {
    /// The factor.
    pub expr: &'e Expr,
    /// Whether it divides.
    pub recip: bool,
}

/// Splits a sum into its terms with their signs.
pub fn split_sum(e: &Expr) -> Vec<(f64, &Expr)> {
    let mut out = Vec::new();
    fn go<'e>(e: &'e Expr, sign: f64, out: &mut Vec<(f64, &'e Expr)>) {
        match e {
            Expr::Binary(BinOp::Add, a, b) => {
                go(a, sign, out);
                go(b, sign, out);
            }
            Expr::Binary(BinOp::Sub, a, b) => {
                go(a, sign, out);
                go(b, -sign, out);
            }
            other => out.push((sign, other)),
        }
    }
    go(e, 1.0, &mut out);
    out
}

/// Splits a term into its factors and an overall sign.
pub fn split_factors(e: &Expr) -> (f64, Vec<Factor<'_>>) {
    let mut out = Vec::new();
    let mut sign = 1.0;
    fn go<'e>(e: &'e Expr, recip: bool, sign: &mut f64, out: &mut Vec<Factor<'e>>) {
        match e {
            Expr::Binary(BinOp::Mul, a, b) => {
                go(a, recip, sign, out);
                go(b, recip, sign, out);
            }
            Expr::Binary(BinOp::Div, a, b) => {
                go(a, recip, sign, out);
                go(b, !recip, sign, out);
            }
            Expr::Neg(x) => {
                *sign = -*sign;
                go(x, recip, sign, out);
            }
            other => out.push(Factor { expr: other, recip }),
        }
    }
    go(e, false, &mut sign, &mut out);
    (sign, out)
}

/// Whether an expression is a sum (so it starts new terms when nested).
pub fn is_sum(e: &Expr) -> bool {
    matches!(e, Expr::Binary(BinOp::Add | BinOp::Sub, _, _))
}

/// The variables summed at each term, for an equation whose left-hand side keeps `kept`.
pub fn summation_sites(rhs: &Expr, kept: &[VarId]) -> HashMap<TermId, Vec<VarId>> {
    let mut paths: HashMap<VarId, Vec<TermId>> = HashMap::new();
    let mut walker = Walker {
        next: 1,
        paths: &mut paths,
    };
    walker.sum(rhs, &mut vec![0]);
    let mut sites: HashMap<TermId, Vec<VarId>> = HashMap::new();
    let mut vars: Vec<_> = paths
        .into_iter()
        .filter(|(v, _)| !kept.contains(v))
        .collect();
    vars.sort_unstable_by_key(|(v, _)| *v);
    for (v, path) in vars {
        sites.entry(*path.last().unwrap_or(&0)).or_default().push(v);
    }
    sites
}

struct Walker<'a> {
    next: TermId,
    paths: &'a mut HashMap<VarId, Vec<TermId>>,
}

impl Walker<'_> {
    fn sum(&mut self, e: &Expr, path: &mut Vec<TermId>) {
        for (_, t) in split_sum(e) {
            let id = self.next;
            self.next += 1;
            path.push(id);
            self.term(t, path);
            path.pop();
        }
    }

    fn term(&mut self, e: &Expr, path: &mut Vec<TermId>) {
        for f in split_factors(e).1 {
            self.factor(f.expr, path);
        }
    }

    fn occurs(&mut self, v: VarId, path: &[TermId]) {
        match self.paths.get_mut(&v) {
            None => {
                self.paths.insert(v, path.to_vec());
            }
            Some(common) => {
                let n = common.iter().zip(path).take_while(|(a, b)| a == b).count();
                common.truncate(n);
            }
        }
    }

    fn factor(&mut self, e: &Expr, path: &mut Vec<TermId>) {
        match e {
            Expr::Access(a) => {
                let mut vs = Vec::new();
                for ix in &a.indices {
                    crate::lower::index_vars(ix, &mut vs);
                }
                for v in vs {
                    self.occurs(v, path);
                }
            }
            Expr::IndexValue(v) => self.occurs(*v, path),
            Expr::Call(_, args, _) => args.iter().for_each(|a| self.sum(a, path)),
            Expr::Binary(BinOp::Pow, b, x) => {
                for y in [b, x] {
                    if is_sum(y) {
                        self.sum(y, path)
                    } else {
                        self.term(y, path)
                    }
                }
            }
            Expr::Binary(BinOp::Add | BinOp::Sub, _, _) => self.sum(e, path),
            Expr::Binary(_, _, _) | Expr::Neg(_) => self.term(e, path),
            Expr::Number(_) => {}
        }
    }
}
