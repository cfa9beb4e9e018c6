//! Layer-indexed recursion: a recursive group whose tensors all carry a layer axis, where each
//! equation writes row `l + c` and reads the group's tensors at rows `l + c'` with `c' <= c`,
//! is evaluated one row at a time instead of as a fixpoint. A transformer written as
//!
//! ```text
//! X[0, p, d] = Emb[p, d]
//! H[l, p, d] = f(X[l, p, d], W[l, …])
//! X[l+1, p, d] = H[l, p, d]
//! ```
//!
//! then costs one pass per layer (O(L)), where a fixpoint would recompute every layer in each
//! of its L rounds.
//!
//! Each equation of the group gets a *row plan*: the same equation with the layer axis taken
//! out of every access that uses the layer variable. Those accesses read *slots*, extra tensor
//! ids (past the program's tensors and their semi-naive deltas) that the engine fills with
//! one row of the tensor before evaluating the row plan for one value of the layer variable.
//! Rows are computed in increasing order; within a row, the group's tensors follow their
//! same-row dependencies, which must be acyclic.

use crate::error::PlanError;
use crate::{plan_equation, EquationPlan};
use std::collections::HashMap;
use tl_check::{
    Access, CheckedProgram, Equation, Expr, Index, IndexExpr, TensorId, TensorKind, VarId,
};
use tl_syntax::ast::IndexOp;

/// Which row of a layer axis an index names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Row {
    /// The layer variable plus a constant: `l`, `l+1`, `l-1`.
    Offset(i64),
    /// A constant row: `0`.
    Fixed(i64),
}

/// One row of a tensor, given to a row plan as a tensor of its own.
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    /// The tensor id the row plan reads (at or past twice the program's tensor count).
    pub id: TensorId,
    /// The tensor the row is taken from.
    pub source: TensorId,
    /// The axis taken out.
    pub axis: usize,
    /// Which row.
    pub row: Row,
}

/// An equation of a layered group, planned for one row at a time.
#[derive(Clone, Debug)]
pub struct RowEquation {
    /// The equation, in the checked program's list.
    pub equation: usize,
    /// The tensor it defines.
    pub target: TensorId,
    /// The row it writes.
    pub head: Row,
    /// How many values the layer variable takes (1 for a fixed head).
    pub extent: usize,
    /// The plan; its target is a slot shaped like one row of `target`.
    pub plan: EquationPlan,
    /// The rows it reads.
    pub slots: Vec<Slot>,
    /// The rows its fused plan reads: `slots`, less those of equations spliced into it
    /// ([`crate::inline`]), plus theirs.
    pub fused_slots: Vec<Slot>,
}

/// A recursive stratum evaluated one layer row at a time.
#[derive(Clone, Debug)]
pub struct LayeredStratum {
    /// The stratum, in the checked program's list.
    pub stratum: usize,
    /// The layer axis of each tensor of the group, and how many rows it holds.
    pub axes: Vec<(TensorId, usize, usize)>,
    /// The number of rows: the longest layer axis of the group's tensors.
    pub rows: usize,
    /// The group's tensors in the order they are computed within a row.
    pub order: Vec<TensorId>,
    /// Every equation of the group.
    pub equations: Vec<RowEquation>,
}

impl RowEquation {
    /// The value of the layer variable with which the equation writes row `w`, if it writes
    /// that row at all (the range of the variable is checked by the caller).
    pub fn variable_at(&self, w: usize) -> Option<i64> {
        let w = i64::try_from(w).ok()?;
        match self.head {
            Row::Offset(c) => Some(w - c),
            Row::Fixed(c) if c == w => Some(0),
            Row::Fixed(_) => None,
        }
    }
}

impl Slot {
    /// The row the slot reads when the layer variable is `v`.
    pub fn row_at(&self, v: i64) -> i64 {
        match self.row {
            Row::Offset(c) => v + c,
            Row::Fixed(c) => c,
        }
    }
}

impl LayeredStratum {
    /// The layer axis of a tensor of the group.
    pub fn axis_of(&self, t: TensorId) -> Option<usize> {
        self.axes.iter().find(|(u, ..)| *u == t).map(|&(_, a, _)| a)
    }

    /// How many rows a tensor of the group holds (its layer axis's extent).
    pub fn rows_of(&self, t: TensorId) -> usize {
        self.axes
            .iter()
            .find(|(u, ..)| *u == t)
            .map_or(0, |&(.., n)| n)
    }
}

/// The layered strata of a program, and the shapes of the slots their row plans read.
#[derive(Clone, Debug, Default)]
pub struct Layers {
    /// One entry per recursive stratum that runs layer by layer.
    pub strata: Vec<LayeredStratum>,
    /// The shape of slot `k` ([`crate::TensorRef::Slot`]) at index k.
    pub slot_shapes: Vec<Vec<usize>>,
}

impl Layers {
    /// The layered plan of stratum `s`, if it runs layer by layer.
    pub fn stratum(&self, s: usize) -> Option<&LayeredStratum> {
        self.strata.iter().find(|l| l.stratum == s)
    }
}

/// The variable and offset of an index of the form `l`, `l + c`, `c + l`, `l - c`, or a
/// constant `c` (no variable).
fn row_form(ix: &Index) -> Option<(Option<VarId>, i64)> {
    fn expr(e: &IndexExpr) -> Option<(Option<VarId>, i64)> {
        match e {
            IndexExpr::Var(v) => Some((Some(*v), 0)),
            IndexExpr::Const(c) => Some((None, *c)),
            IndexExpr::Binary(op, a, b) => {
                let ((va, ca), (vb, cb)) = (expr(a)?, expr(b)?);
                match (op, va, vb) {
                    (IndexOp::Add, v, None) | (IndexOp::Add, None, v) => {
                        Some((v, ca.checked_add(cb)?))
                    }
                    (IndexOp::Sub, v, None) => Some((v, ca.checked_sub(cb)?)),
                    _ => None,
                }
            }
        }
    }
    match ix {
        Index::Var(v) => Some((Some(*v), 0)),
        Index::Const(c) => Some((None, *c)),
        Index::Expr(e) => expr(e),
        Index::Slice { .. } | Index::Symbol(..) => None,
    }
}

fn uses(ix: &Index, v: VarId) -> bool {
    let mut vars = Vec::new();
    crate::lower::index_vars(ix, &mut vars);
    vars.contains(&v)
}

/// Builds row equations, handing out slot ids.
struct Builder<'a> {
    p: &'a CheckedProgram,
    shapes: &'a [Vec<usize>],
    group: &'a [TensorId],
    axes: &'a HashMap<TensorId, usize>,
    slot_shapes: Vec<Vec<usize>>,
}

/// What rewriting one equation found: the row equation's slots and its same-row reads.
struct Rewrite {
    slots: Vec<Slot>,
    same_row: Vec<TensorId>,
}

impl Builder<'_> {
    fn slot(&mut self, source: TensorId, axis: usize, row: Row) -> Slot {
        let mut shape = self.shapes[source].clone();
        shape.remove(axis);
        let id = crate::TensorRef::Slot(self.slot_shapes.len()).id(self.p.tensors.len());
        self.slot_shapes.push(shape);
        Slot {
            id,
            source,
            axis,
            row,
        }
    }

    /// The access with the layer axis taken out, reading a slot; `None` if the access uses
    /// the layer variable in a way a row cannot express.
    fn access(
        &mut self,
        a: &Access,
        head: (Option<VarId>, i64),
        rw: &mut Rewrite,
    ) -> Option<Access> {
        let (var, head_c) = head;
        let axis = match self.axes.get(&a.tensor) {
            Some(&axis) if self.group.contains(&a.tensor) => {
                let (v, c) = row_form(a.indices.get(axis)?)?;
                if v != var || c > head_c {
                    return None;
                }
                if c == head_c {
                    rw.same_row.push(a.tensor);
                }
                axis
            }
            _ => {
                let Some(l) = var else {
                    return Some(a.clone());
                };
                let using: Vec<usize> = (0..a.indices.len())
                    .filter(|&k| a.indices.get(k).is_some_and(|ix| uses(ix, l)))
                    .collect();
                match using.as_slice() {
                    [] => return Some(a.clone()),
                    [k] if a
                        .indices
                        .get(*k)
                        .and_then(row_form)
                        .is_some_and(|(v, _)| v == Some(l)) =>
                    {
                        *k
                    }
                    _ => return None,
                }
            }
        };
        if let Some(l) = var {
            if a.indices
                .iter()
                .enumerate()
                .any(|(k, ix)| k != axis && uses(ix, l))
            {
                return None;
            }
        }
        let (_, c) = row_form(a.indices.get(axis)?)?;
        let row = if var.is_some() {
            Row::Offset(c)
        } else {
            Row::Fixed(c)
        };
        let slot = self.slot(a.tensor, axis, row);
        let mut indices = a.indices.clone();
        indices.remove(axis);
        let access = Access {
            tensor: slot.id,
            indices,
            span: a.span,
        };
        rw.slots.push(slot);
        Some(access)
    }

    fn expr(&mut self, e: &Expr, head: (Option<VarId>, i64), rw: &mut Rewrite) -> Option<Expr> {
        Some(match e {
            Expr::Number(x) => Expr::Number(*x),
            Expr::IndexValue(v) if head.0 == Some(*v) => return None,
            Expr::IndexValue(v) => Expr::IndexValue(*v),
            Expr::Access(a) => Expr::Access(self.access(a, head, rw)?),
            Expr::Call(f, args, span) => Expr::Call(
                *f,
                args.iter()
                    .map(|x| self.expr(x, head, rw))
                    .collect::<Option<_>>()?,
                *span,
            ),
            Expr::Neg(x) => Expr::Neg(Box::new(self.expr(x, head, rw)?)),
            Expr::Binary(op, a, b) => Expr::Binary(
                *op,
                Box::new(self.expr(a, head, rw)?),
                Box::new(self.expr(b, head, rw)?),
            ),
        })
    }

    /// The row form of equation `k` (defining a tensor of the group), with the tensors of
    /// the group it reads in the same row.
    fn equation(&mut self, k: usize) -> Option<(Equation, Row, usize, Rewrite)> {
        let eq = &self.p.equations[k];
        let axis = *self.axes.get(&eq.lhs)?;
        let head = row_form(eq.lhs_indices.get(axis)?)?;
        if let Some(l) = head.0 {
            let elsewhere = eq
                .lhs_indices
                .iter()
                .enumerate()
                .any(|(j, ix)| j != axis && uses(ix, l));
            if elsewhere || eq.norm_var == Some(l) {
                return None;
            }
        }
        let mut rw = Rewrite {
            slots: Vec::new(),
            same_row: Vec::new(),
        };
        let rhs = self.expr(&eq.rhs, head, &mut rw)?;
        let target = self.slot(eq.lhs, axis, Row::Fixed(0));
        let mut lhs_indices = eq.lhs_indices.clone();
        lhs_indices.remove(axis);
        let row_eq = Equation {
            lhs: target.id,
            lhs_indices,
            norm_var: eq.norm_var,
            projection: eq.projection,
            rhs,
            vars: eq.vars.clone(),
            span: eq.span,
        };
        let (row, extent) = match head {
            (Some(l), c) => (Row::Offset(c), eq.vars[l].extent),
            (None, c) => (Row::Fixed(c), 1),
        };
        Some((row_eq, row, extent, rw))
    }
}

/// The layer axis of each tensor of a group: for every tensor, the first axis that each of its
/// equations indexes in row form, with the layer variable in at least one of them.
fn layer_axes(p: &CheckedProgram, group: &[TensorId]) -> Option<HashMap<TensorId, usize>> {
    let mut axes = HashMap::new();
    for &t in group {
        let decl = &p.tensors[t];
        let rank = decl.axes.len();
        let axis = (0..rank).find(|&a| {
            let forms: Vec<_> = decl
                .equations
                .iter()
                .map(|&e| p.equations[e].lhs_indices.get(a).and_then(row_form))
                .collect();
            forms.iter().all(Option::is_some)
                && forms.iter().any(|f| matches!(f, Some((Some(_), _))))
        })?;
        axes.insert(t, axis);
    }
    Some(axes)
}

/// The layered plan of one recursive stratum, or `None` when it is not a layer recursion.
fn layered_stratum(
    p: &CheckedProgram,
    shapes: &[Vec<usize>],
    index: usize,
    slot_shapes: &mut Vec<Vec<usize>>,
) -> Result<Option<LayeredStratum>, PlanError> {
    let group = &p.strata[index].tensors;
    let plain = group.iter().all(|&t| {
        let d = &p.tensors[t];
        d.kind == TensorKind::Real && d.rules.is_empty() && d.facts.is_empty()
    });
    if !plain {
        return Ok(None);
    }
    let Some(axes) = layer_axes(p, group) else {
        return Ok(None);
    };
    // Tensors of the group may hold different numbers of rows (`X[l+1] = Y[l]` gives `X` one
    // more than `Y`): the recursion runs over the most, and each tensor keeps its own.
    let rows = group
        .iter()
        .map(|&t| shapes[t][axes[&t]])
        .max()
        .unwrap_or(0);
    let mut builder = Builder {
        p,
        shapes,
        group,
        axes: &axes,
        slot_shapes: std::mem::take(slot_shapes),
    };
    let first_slot = builder.slot_shapes.len();
    let mut rewritten = Vec::new();
    let mut same_row: HashMap<TensorId, Vec<TensorId>> = HashMap::new();
    for &t in group {
        for &k in &p.tensors[t].equations {
            match builder.equation(k) {
                Some((eq, head, extent, rw)) => {
                    same_row.entry(t).or_default().extend(rw.same_row);
                    rewritten.push((k, t, eq, head, extent, rw.slots));
                }
                None => {
                    builder.slot_shapes.truncate(first_slot);
                    *slot_shapes = builder.slot_shapes;
                    return Ok(None);
                }
            }
        }
    }
    let Some(order) = same_row_order(group, &same_row) else {
        builder.slot_shapes.truncate(first_slot);
        *slot_shapes = builder.slot_shapes;
        return Ok(None);
    };
    *slot_shapes = builder.slot_shapes;
    // Slots and delta ids all get shapes, so the row plans can be lowered over them.
    let n = p.tensors.len();
    let mut all_shapes: Vec<Vec<usize>> = shapes[..n].to_vec();
    all_shapes.extend_from_slice(&shapes[..n]);
    all_shapes.extend(slot_shapes.iter().cloned());
    let mut equations = Vec::new();
    for (equation, target, eq, head, extent, slots) in rewritten {
        let plan = plan_equation(p, &all_shapes, &eq)?;
        equations.push(RowEquation {
            equation,
            target,
            head,
            extent,
            plan,
            fused_slots: slots.clone(),
            slots,
        });
    }
    let layered = LayeredStratum {
        stratum: index,
        axes: group
            .iter()
            .map(|&t| (t, axes[&t], shapes[t][axes[&t]]))
            .collect(),
        rows,
        order,
        equations,
    };
    Ok(Some(layered))
}

/// The group's tensors ordered so that each comes after those it reads in the same row;
/// `None` when those reads form a cycle.
fn same_row_order(
    group: &[TensorId],
    reads: &HashMap<TensorId, Vec<TensorId>>,
) -> Option<Vec<TensorId>> {
    let mut order = Vec::new();
    let mut state: HashMap<TensorId, u8> = HashMap::new();
    fn visit(
        t: TensorId,
        reads: &HashMap<TensorId, Vec<TensorId>>,
        state: &mut HashMap<TensorId, u8>,
        order: &mut Vec<TensorId>,
    ) -> bool {
        match state.get(&t) {
            Some(2) => return true,
            Some(1) => return false,
            _ => {}
        }
        state.insert(t, 1);
        for &u in reads.get(&t).map_or(&[][..], Vec::as_slice) {
            if !visit(u, reads, state, order) {
                return false;
            }
        }
        state.insert(t, 2);
        order.push(t);
        true
    }
    for &t in group {
        if !visit(t, reads, &mut state, &mut order) {
            return None;
        }
    }
    Some(order)
}

/// Finds every recursive stratum that is a layer recursion and plans it row by row.
pub fn plan_layers(p: &CheckedProgram, shapes: &[Vec<usize>]) -> Result<Layers, PlanError> {
    let mut layers = Layers::default();
    for (index, s) in p.strata.iter().enumerate() {
        // A loop over a virtual index is recursive too, but runs as a loop (`crate::loops`).
        if !s.recursive || s.tensors.iter().any(|&t| p.loop_of(t).is_some()) {
            continue;
        }
        if let Some(l) = layered_stratum(p, shapes, index, &mut layers.slot_shapes)? {
            layers.strata.push(l);
        }
    }
    Ok(layers)
}
