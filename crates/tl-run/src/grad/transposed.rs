//! The gradient of a product with a read at shifted indices, as a product again. A convolution
//! `C[n, c, y, x] = K[c, d, dy, dx] X[n, d, y + dy - 1, x + dx - 1]` reads `X` through a view
//! whose gradient, taken literally, is the product `g·K` over every `(y, dy, x, dx)` — nine
//! times the size of `X` — scattered back onto `X`. Solving each shifted index for its output
//! variable (`y = u - dy + 1`) and reversing the kernel's shift axes (`dy → 2 - dy`) gives
//! the same gradient as a convolution of the incoming gradient with the reversed kernel:
//! `dX[n, d, u, v] = K[c, d, 2 - dy, 2 - dx] g[n, c, u + dy - 1, v + dx - 1]`, read through
//! the same padded views as the forward pass, with nothing of the view's size stored.

use super::*;
use crate::eval::views;
use tl_check::{Index, IndexExpr, VarInfo};
use tl_syntax::ast::IndexOp;

/// Added to a node's number in the index cache for the padded copy of its gradient.
const GRAD_PADDING: usize = usize::MAX / 4;
/// Added to a node's number in the index cache for the reversed copy of the other operand.
const REVERSED: usize = usize::MAX / 8;

/// How one axis of the source is read: `primary + Σ shifts + constant`, with every
/// coefficient 1.
struct Shifted {
    primary: usize,
    shifts: Vec<usize>,
    constant: i64,
}

/// `Σ v + c` with every coefficient 1, as (variables, constant); `None` otherwise.
fn unit_sum(e: &IndexExpr) -> Option<(Vec<usize>, i64)> {
    match e {
        IndexExpr::Var(v) => Some((vec![*v], 0)),
        IndexExpr::Const(c) => Some((Vec::new(), *c)),
        IndexExpr::Binary(IndexOp::Add, a, b) => {
            let (mut va, ca) = unit_sum(a)?;
            let (vb, cb) = unit_sum(b)?;
            va.extend(vb);
            Some((va, ca.checked_add(cb)?))
        }
        IndexExpr::Binary(IndexOp::Sub, a, b) => match &**b {
            IndexExpr::Const(c) => {
                let (va, ca) = unit_sum(a)?;
                Some((va, ca.checked_sub(*c)?))
            }
            _ => None,
        },
        _ => None,
    }
}

impl Engine<'_> {
    /// The gradient of the source of gather node `x` (of `plan`'s unfused graph), read by the
    /// product `node` with the operand `other`, from the product's gradient `g`, computed as
    /// a product of `g` (through a padded view) and `other` with its shift axes reversed.
    /// `None` when the read is not of that form (then the view's gradient is scattered).
    pub(super) fn transposed_gradient(
        &mut self,
        plan: &EquationPlan,
        (node, x, other): (usize, usize, usize),
        g: &Tensor,
        other_value: &Tensor,
        span: Span,
    ) -> Result<Option<Tensor>, RunError> {
        let nodes = &plan.graph.nodes;
        let Op::Gather { tensor, indices } = &nodes[x].op else {
            return Ok(None);
        };
        let (lg, lo) = (&nodes[node].labels, &nodes[other].labels);
        let source_shape = self.shape(*tensor);
        // Each axis: a plain variable (kept), or a shifted one (solved for).
        let mut axes: Vec<Result<usize, Shifted>> = Vec::with_capacity(indices.len());
        for ix in indices {
            axes.push(match ix {
                Index::Var(v) => Ok(*v),
                Index::Expr(e) => {
                    let Some((vars, constant)) = unit_sum(e) else {
                        return Ok(None);
                    };
                    let Some(&primary) = vars.iter().find(|v| lg.contains(v)) else {
                        return Ok(None);
                    };
                    let shifts: Vec<usize> = vars.into_iter().filter(|&v| v != primary).collect();
                    Err(Shifted {
                        primary,
                        shifts,
                        constant,
                    })
                }
                _ => return Ok(None),
            });
        }
        if !axes.iter().any(Result::is_err) {
            return Ok(None);
        }
        // Every variable is used once; shifts belong to the other operand alone.
        let mut used: Vec<usize> = Vec::new();
        for a in &axes {
            match a {
                Ok(v) => used.push(*v),
                Err(s) => {
                    used.push(s.primary);
                    used.extend(&s.shifts);
                    if s.shifts.iter().any(|v| lg.contains(v) || !lo.contains(v)) {
                        return Ok(None);
                    }
                }
            }
        }
        let mut distinct = used.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() != used.len() {
            return Ok(None);
        }
        // New variables for the shifted axes' positions, after the plan's own.
        let mut vars: Vec<VarInfo> = plan.vars.clone();
        let mut out_labels = Vec::with_capacity(axes.len());
        let mut g_index = vec![None; lg.len()];
        for (axis, a) in axes.iter().enumerate() {
            match a {
                Ok(v) => out_labels.push(*v),
                Err(s) => {
                    let u = vars.len();
                    let domain = vars[s.primary].domain;
                    vars.push(VarInfo {
                        name: format!("{}'", vars[s.primary].name),
                        domain,
                        extent: source_shape[axis],
                    });
                    out_labels.push(u);
                    // primary = u - Σ shift - c = u + Σ (n - 1 - shift) - Σ (n - 1) - c.
                    // Constants come from the program: overflow gives up the rewrite.
                    let Some(mut c) = s.constant.checked_neg() else {
                        return Ok(None);
                    };
                    let mut e = IndexExpr::Var(u);
                    for &r in &s.shifts {
                        let last = i64::try_from(vars[r].extent).unwrap_or(i64::MAX) - 1;
                        let Some(next) = c.checked_sub(last) else {
                            return Ok(None);
                        };
                        c = next;
                        e = IndexExpr::Binary(
                            IndexOp::Add,
                            Box::new(e),
                            Box::new(IndexExpr::Var(r)),
                        );
                    }
                    e = IndexExpr::Binary(IndexOp::Add, Box::new(e), Box::new(IndexExpr::Const(c)));
                    let k = lg
                        .iter()
                        .position(|&l| l == s.primary)
                        .unwrap_or(usize::MAX);
                    if let Some(slot) = g_index.get_mut(k) {
                        *slot = Some(Index::Expr(e));
                    }
                }
            }
        }
        let g_indices: Vec<Index> = lg
            .iter()
            .zip(g_index)
            .map(|(&l, ix)| ix.unwrap_or(Index::Var(l)))
            .collect();
        // The view's labels: the gradient's own but the solved ones, the new positions, the
        // shifts.
        let mut view_labels: Vec<usize> = lg
            .iter()
            .copied()
            .filter(|l| !axes.iter().any(|a| matches!(a, Err(s) if s.primary == *l)))
            .collect();
        for (a, &u) in axes.iter().zip(&out_labels) {
            if let Err(s) = a {
                view_labels.push(u);
                view_labels.extend(&s.shifts);
            }
        }
        // Every label is summed in a product of both operands or is a result's.
        let in_both = |l: &usize| lo.contains(l) || out_labels.contains(l);
        if !view_labels.iter().all(in_both)
            || !lo
                .iter()
                .all(|l| view_labels.contains(l) || out_labels.contains(l))
            || !out_labels
                .iter()
                .all(|l| view_labels.contains(l) || lo.contains(l))
        {
            return Ok(None);
        }
        let Some(view) = self.padded_read(plan, node, g, &g_indices, &view_labels, &vars, span)?
        else {
            return Ok(None);
        };
        let shifts: Vec<usize> = axes
            .iter()
            .filter_map(|a| a.as_ref().err())
            .flat_map(|s| s.shifts.iter().copied())
            .collect();
        let reversed = self.reversed(plan, other, other_value, lo, &shifts, span)?;
        let l32 = |v: &[usize]| v.iter().map(|&l| l as u32).collect::<Vec<u32>>();
        let dx = self
            .multiply(
                &view,
                &l32(&view_labels),
                &reversed,
                &l32(lo),
                &l32(&out_labels),
                self.dtype(),
            )
            .map_err(self.err(span))?;
        Ok(Some(dx))
    }

    /// `g` read at `indices` over `labels`, as a view of one zero-padded copy (or of `g`
    /// itself when no index leaves it); `None` when the read is not such a view.
    #[allow(clippy::too_many_arguments)]
    fn padded_read(
        &mut self,
        plan: &EquationPlan,
        node: usize,
        g: &Tensor,
        indices: &[Index],
        labels: &[usize],
        vars: &[VarInfo],
        span: Span,
    ) -> Result<Option<Tensor>, RunError> {
        let Some(pads) = views::padding(g, indices, vars) else {
            return Ok(views::affine_view(g, indices, labels, vars));
        };
        let shape = g.shape().to_vec();
        let padded_shape = views::padded_shape(&shape, &pads);
        let what = || format!("a padded copy {padded_shape:?} of a gradient");
        self.fits(&padded_shape, 8 + g.dtype.size(), what, span)?;
        let idx = self.cached_index(plan, false, GRAD_PADDING + node, || {
            views::pad_index(&shape, &pads)
        });
        let padded = self
            .backend
            .gather_shared(g, &idx, &padded_shape)
            .map_err(self.err(span))?;
        Ok(views::padded_view(&padded, indices, labels, vars, &pads))
    }

    /// `value` (labelled `labels`) with the axes labelled `shifts` reversed.
    fn reversed(
        &mut self,
        plan: &EquationPlan,
        node: usize,
        value: &Tensor,
        labels: &[usize],
        shifts: &[usize],
        span: Span,
    ) -> Result<Tensor, RunError> {
        let shape = value.shape().to_vec();
        let flip: Vec<bool> = labels.iter().map(|l| shifts.contains(l)).collect();
        let idx = self.cached_index(plan, false, REVERSED + node, || {
            let mut out = Vec::with_capacity(shape.iter().product());
            crate::eval::for_each_point(&shape, |point| {
                let mut flat = 0i64;
                for ((&p, &e), &f) in point.iter().zip(&shape).zip(&flip) {
                    let i = if f { e as i64 - 1 - p } else { p };
                    flat = flat * e as i64 + i;
                }
                out.push(flat);
            });
            out
        });
        self.backend
            .gather_shared(value, &idx, &shape)
            .map_err(self.err(span))
    }
}
