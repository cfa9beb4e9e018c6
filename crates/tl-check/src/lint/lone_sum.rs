//! `TL0134`: an index summed over one tensor read alone, inside a sum nested in a function or
//! a power. By the projection rule an index is summed within the smallest term holding all its
//! occurrences, so in `V[c] avg= (X[n, c] - M[c])^2` the sum over `n` is taken over `X` before
//! `M` is subtracted and the square taken: `(Σn X - M)²`, not the mean of squares a reader of
//! NumPy or PyTorch expects. Sums over a join (`sig(W[h] H[e, h] + B)`) are what the rule is
//! for and are not reported, nor are sums of a whole right-hand side (`Y[i] = X[i, j] - M[i]`).

use crate::program::{CheckedProgram, Equation, Expr, Index, IndexExpr, VarId};
use std::collections::HashMap;
use tl_syntax::ast::BinOp;
use tl_syntax::Diagnostic;

/// A warning for each index summed over a lone read inside a nested sum.
pub fn lone_sums(p: &CheckedProgram) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for eq in &p.equations {
        let mut kept = Vec::new();
        for ix in &eq.lhs_indices {
            index_vars(ix, &mut kept);
        }
        // How many reads (and uses as numbers) mention each variable.
        let mut uses: HashMap<VarId, usize> = HashMap::new();
        count_uses(&eq.rhs, &mut uses);
        visit(p, eq, &eq.rhs, false, &kept, &uses, &mut out);
    }
    out
}

/// The variables of an index.
fn index_vars(ix: &Index, out: &mut Vec<VarId>) {
    fn expr(e: &IndexExpr, out: &mut Vec<VarId>) {
        match e {
            IndexExpr::Var(v) => out.push(*v),
            IndexExpr::Const(_) => {}
            IndexExpr::Binary(_, a, b) => {
                expr(a, out);
                expr(b, out);
            }
        }
    }
    match ix {
        Index::Var(v) | Index::Slice { var: v, .. } => out.push(*v),
        Index::Expr(e) => expr(e, out),
        Index::Const(_) | Index::Symbol(..) => {}
    }
}

fn count_uses(e: &Expr, uses: &mut HashMap<VarId, usize>) {
    match e {
        Expr::Access(a) => {
            let mut vars = Vec::new();
            a.indices.iter().for_each(|ix| index_vars(ix, &mut vars));
            vars.sort_unstable();
            vars.dedup();
            for v in vars {
                *uses.entry(v).or_default() += 1;
            }
        }
        Expr::IndexValue(v) => *uses.entry(*v).or_default() += 1,
        Expr::Call(_, args, _) => args.iter().for_each(|a| count_uses(a, uses)),
        Expr::Neg(x) => count_uses(x, uses),
        Expr::Binary(_, a, b) => {
            count_uses(a, uses);
            count_uses(b, uses);
        }
        Expr::Number(_) => {}
    }
}

/// The summands of a sum (through `+`, `-` and unary minus).
fn summands<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::Binary(BinOp::Add | BinOp::Sub, a, b) => {
            summands(a, out);
            summands(b, out);
        }
        Expr::Neg(x) => summands(x, out),
        _ => out.push(e),
    }
}

/// Walks `e`; `nested` is whether it sits inside a function's argument or a product, quotient
/// or power.
fn visit(
    p: &CheckedProgram,
    eq: &Equation,
    e: &Expr,
    nested: bool,
    kept: &[VarId],
    uses: &HashMap<VarId, usize>,
    out: &mut Vec<Diagnostic>,
) {
    match e {
        Expr::Binary(BinOp::Add | BinOp::Sub, ..) | Expr::Neg(_) => {
            let mut parts = Vec::new();
            summands(e, &mut parts);
            for part in &parts {
                match part {
                    Expr::Access(a) if nested && parts.len() > 1 => {
                        let mut vars = Vec::new();
                        a.indices.iter().for_each(|ix| index_vars(ix, &mut vars));
                        vars.sort_unstable();
                        vars.dedup();
                        for v in vars {
                            if !kept.contains(&v) && uses.get(&v) == Some(&1) {
                                out.push(warning(p, eq, v, a.tensor, a.span));
                            }
                        }
                    }
                    _ => visit(p, eq, part, nested, kept, uses, out),
                }
            }
        }
        Expr::Binary(_, a, b) => {
            visit(p, eq, a, true, kept, uses, out);
            visit(p, eq, b, true, kept, uses, out);
        }
        Expr::Call(_, args, _) => args
            .iter()
            .for_each(|a| visit(p, eq, a, true, kept, uses, out)),
        Expr::Access(_) | Expr::Number(_) | Expr::IndexValue(_) => {}
    }
}

fn warning(
    p: &CheckedProgram,
    eq: &Equation,
    v: VarId,
    tensor: usize,
    span: tl_syntax::Span,
) -> Diagnostic {
    let var = eq.vars.get(v).map_or("?", |x| x.name.as_str());
    let name = p.tensors.get(tensor).map_or("?", |t| t.name.as_str());
    Diagnostic::error(
        "TL0134",
        format!(
            "`{var}` is summed over `{name}` alone, before the rest of the expression around it applies"
        ),
        span,
        format!("the sum over `{var}` is taken here"),
    )
    .warning()
    .with_help(format!(
        "an index is summed in the smallest term that holds it; if every `{var}` should go through the whole expression (a mean of squares, say), give the inner value a name first (`D[…] = {name}[…] - …`, then use `D`), or write the sum as an equation of its own if it is meant"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(text: &str) -> Vec<String> {
        let (program, errors) = tl_syntax::parse(text, tl_syntax::FileId(0));
        assert!(errors.is_empty(), "{errors:?}");
        let sources = tl_syntax::SourceMap::default();
        let p = crate::check(&program, &sources).unwrap_or_else(|e| panic!("{e:?}"));
        lone_sums(&p).into_iter().map(|d| d.message).collect()
    }

    #[test]
    fn a_lone_sum_inside_a_power_or_function_is_reported() {
        let base = "X[n: 4, c: 3] = n + c\nM[c] avg= X[n, c]\n";
        let w = warnings(&format!("{base}V[c] avg= (X[n, c] - M[c])^2\n"));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("`n` is summed over `X` alone"), "{w:?}");
        assert_eq!(
            warnings(&format!("{base}E[c] = exp(M[c] - X[n, c])\n")).len(),
            1
        );
        // What the projection rule is for, or what a whole right-hand side sums: nothing.
        for fine in [
            "D[n, c] = X[n, c] - M[c]\nV[c] avg= D[n, c] D[n, c]\n",
            "param W[3] = 1\nS[n] = sig(W[c] X[n, c] + 1)\n",
            "Y[c] = X[n, c] - M[c]\n",
            "L = (X[n, c] - X[n, c] M[c])^2\n",
        ] {
            assert!(warnings(&format!("{base}{fine}")).is_empty(), "{fine}");
        }
    }
}
