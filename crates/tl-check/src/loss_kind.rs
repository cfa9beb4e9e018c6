//! How a training loss combines the examples of a batch: a mean or a sum over the batch
//! index, read from the equations that project it away. Data-parallel training weighs each
//! rank's gradients by it; losses it cannot split exactly are refused here, before training.

use crate::{CheckedProgram, DomainId, Expr, Index, TensorId};
use tl_syntax::ast::{BinOp, Projection};

/// How a loss combines the examples of a batch, which decides each rank's weight (see the
/// module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// The loss averages over the batch index (`avg=`): rank `r` weighs by `b_r / B`.
    Mean,
    /// The loss sums over the batch index (`=`): every rank weighs by 1.
    Sum,
}

/// Variables an expression uses (reads' indices and index values).
fn expr_vars(e: &Expr, out: &mut Vec<usize>) {
    match e {
        Expr::Number(_) => {}
        Expr::IndexValue(v) => out.push(*v),
        Expr::Access(a) => {
            for ix in &a.indices {
                match ix {
                    Index::Var(v) | Index::Slice { var: v, .. } => out.push(*v),
                    Index::Expr(x) => x.vars(out),
                    Index::Const(_) | Index::Symbol(..) => {}
                }
            }
        }
        Expr::Call(_, args, _) => args.iter().for_each(|a| expr_vars(a, out)),
        Expr::Neg(x) => expr_vars(x, out),
        Expr::Binary(_, a, b) => {
            expr_vars(a, out);
            expr_vars(b, out);
        }
    }
}

/// The top-level terms of an expression (split at `+` and `-`).
fn terms(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Binary(BinOp::Add | BinOp::Sub, a, b) => {
            let mut v = terms(a);
            v.extend(terms(b));
            v
        }
        Expr::Neg(x) => terms(x),
        _ => vec![e],
    }
}

/// Finds how `loss` combines the examples of the batch domain `batch`, from the equations that
/// project the batch index away. Refuses losses that data parallelism cannot split exactly:
/// `max=`/`min=` over the batch, averages mixed with sums, and sums with a term that does not
/// depend on the batch.
pub fn loss_kind(p: &CheckedProgram, loss: TensorId, batch: DomainId) -> Result<LossKind, String> {
    let n = p.tensors.len();
    // Which tensors depend on the batch (have a batch axis or read such a tensor).
    let mut batchy: Vec<bool> = p.tensors.iter().map(|t| t.axes.contains(&batch)).collect();
    loop {
        let mut changed = false;
        for t in 0..n {
            if batchy[t] {
                continue;
            }
            let mut reads = Vec::new();
            for &e in &p.tensors[t].equations {
                crate::strata::collect_reads(&p.equations[e].rhs, &mut reads);
            }
            let from_rules = p.tensors[t]
                .rules
                .iter()
                .any(|&r| p.rules[r].body.iter().any(|a| batchy[a.tensor]));
            if from_rules || reads.iter().any(|&(r, _)| batchy[r]) {
                batchy[t] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let name = &p.tensors[loss].name;
    let mut seen = vec![false; n];
    let mut stack = vec![loss];
    let (mut means, mut sums) = (Vec::new(), Vec::new());
    while let Some(t) = stack.pop() {
        if std::mem::replace(&mut seen[t], true) {
            continue;
        }
        for &r in &p.tensors[t].rules {
            stack.extend(p.rules[r].body.iter().map(|a| a.tensor));
        }
        for &e in &p.tensors[t].equations {
            let eq = &p.equations[e];
            let mut reads = Vec::new();
            crate::strata::collect_reads(&eq.rhs, &mut reads);
            stack.extend(reads.iter().map(|&(r, _)| r));
            let kept: Vec<usize> = eq
                .lhs_indices
                .iter()
                .filter_map(|ix| match ix {
                    Index::Var(v) => Some(*v),
                    _ => None,
                })
                .collect();
            let reduces = eq
                .vars
                .iter()
                .enumerate()
                .any(|(v, info)| info.domain == batch && !kept.contains(&v));
            if !reduces {
                continue;
            }
            let lhs = &p.tensors[eq.lhs].name;
            match eq.projection {
                Projection::Avg => means.push(lhs.clone()),
                Projection::Assign | Projection::Add => sums.push((lhs.clone(), e)),
                Projection::Max | Projection::Min => {
                    return Err(format!(
                        "`{lhs}` takes a maximum or minimum over the batch index; \
                         a loss split across ranks must average or sum over it"
                    ))
                }
            }
        }
    }
    match (means.is_empty(), sums.is_empty()) {
        (_, true) => Ok(LossKind::Mean),
        (true, false) => {
            for &e in &p.tensors[loss].equations {
                let eq = &p.equations[e];
                for term in terms(&eq.rhs) {
                    let mut vars = Vec::new();
                    expr_vars(term, &mut vars);
                    let mut reads = Vec::new();
                    crate::strata::collect_reads(term, &mut reads);
                    let uses_batch = vars.iter().any(|&v| eq.vars[v].domain == batch)
                        || reads.iter().any(|&(r, _)| batchy[r]);
                    if !uses_batch {
                        return Err(format!(
                            "`{name}` sums over the batch index and adds a term that does not \
                             depend on the batch; split across ranks that term would count once \
                             per rank"
                        ));
                    }
                }
            }
            Ok(LossKind::Sum)
        }
        (false, false) => Err(format!(
            "`{name}` averages over the batch index in `{}` but sums over it in `{}`; a loss \
             split across ranks must do one or the other",
            means[0], sums[0].0
        )),
    }
}
