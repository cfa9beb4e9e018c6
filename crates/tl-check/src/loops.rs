//! Virtual indices (the paper's `*t`): a tensor written at a step, `S[i, *t+1] = …`, is
//! computed by a loop over `t = 0 … T-1` that keeps only the steps it still reads, so memory
//! does not grow with `T`.
//!
//! The tensor's axes are those written without `*`; after the loop it holds the value of its
//! last step. The equations that write a step are not in [`CheckedProgram::equations`]: each
//! is a [`StepEquation`] of a [`Loop`]. In a step equation the left-hand side, and every read
//! of a tensor of the same loop, carry one index more than the tensor has axes: the last,
//! `t + c`, names the step (`S[j, *t]` reads `S` at step `t`). Tensors that read each other at
//! steps are one loop, and run one step at a time: at step `t` a tensor written at `*t+c`
//! gets its value for step `t + c`, after the tensors it reads at that same step. A read of a
//! step before the first one a tensor computes gives its value before the loop: its data, its
//! equations without `*`, else 0.

use crate::error::CheckError;
use crate::program::{CheckedProgram, Equation, Expr, Index, IndexExpr, TensorId, VarId};
use std::collections::HashMap;
use tl_core::HostTensor;
use tl_syntax::ast::IndexOp;
use tl_syntax::Span;

/// An equation that writes a tensor at a step of its loop.
#[derive(Clone, Debug)]
pub struct StepEquation {
    /// The equation; its left-hand side and its reads of the loop's tensors end with the step
    /// index `t + c`.
    pub equation: Equation,
    /// The step variable `t`.
    pub var: VarId,
}

impl StepEquation {
    /// The constant `c` of the step `t + c` it writes.
    pub fn head(&self) -> i64 {
        self.equation
            .lhs_indices
            .last()
            .and_then(|ix| step_offset(ix, self.var))
            .unwrap_or(0)
    }

    /// The number of steps: the extent of the step variable.
    pub fn steps(&self) -> usize {
        self.equation.vars.get(self.var).map_or(0, |v| v.extent)
    }
}

/// The constant `c` of an index `t + c` over step variable `var`.
pub fn step_offset(ix: &Index, var: VarId) -> Option<i64> {
    match ix {
        Index::Var(v) if *v == var => Some(0),
        Index::Expr(IndexExpr::Binary(IndexOp::Add, a, b)) => match (a.as_ref(), b.as_ref()) {
            (IndexExpr::Var(v), IndexExpr::Const(c)) if *v == var => Some(*c),
            _ => None,
        },
        _ => None,
    }
}

/// The constant `c` of an index `t + c`, `c + t` or `t - c` over step variable `var`: a row
/// of a tensor that steps read one at a time (`U[t, j]`).
pub fn step_row(ix: &Index, var: VarId) -> Option<i64> {
    let Index::Expr(IndexExpr::Binary(op, a, b)) = ix else {
        return step_offset(ix, var);
    };
    match (op, a.as_ref(), b.as_ref()) {
        (IndexOp::Add, IndexExpr::Var(v), IndexExpr::Const(c))
        | (IndexOp::Add, IndexExpr::Const(c), IndexExpr::Var(v))
            if *v == var =>
        {
            Some(*c)
        }
        (IndexOp::Sub, IndexExpr::Var(v), IndexExpr::Const(c)) if *v == var => c.checked_neg(),
        _ => None,
    }
}

/// Adds the variables an index uses to `out`.
pub fn index_vars(ix: &Index, out: &mut Vec<VarId>) {
    match ix {
        Index::Var(v) | Index::Slice { var: v, .. } => out.push(*v),
        Index::Expr(e) => e.vars(out),
        Index::Const(_) | Index::Symbol(..) => {}
    }
}

/// The step index `t + c` as a resolved index.
pub fn step_index(var: VarId, offset: i64) -> Index {
    if offset == 0 {
        Index::Var(var)
    } else {
        Index::Expr(IndexExpr::Binary(
            IndexOp::Add,
            Box::new(IndexExpr::Var(var)),
            Box::new(IndexExpr::Const(offset)),
        ))
    }
}

/// One tensor of a loop.
#[derive(Clone, Debug)]
pub struct LoopTensor {
    /// The tensor.
    pub tensor: TensorId,
    /// The constant `c` of the step `t + c` its equations write.
    pub head: i64,
    /// How many steps before the current one are still read (0: only the newest value).
    pub keep: usize,
    /// Its data, when it has some: its value before the loop.
    pub initial: Option<HostTensor>,
}

/// Tensors written at steps that read each other, computed together one step at a time.
#[derive(Clone, Debug)]
pub struct Loop {
    /// The tensors, in the order they are computed within a step.
    pub tensors: Vec<LoopTensor>,
    /// The equations that write them.
    pub equations: Vec<StepEquation>,
    /// The first of them.
    pub span: Span,
}

impl Loop {
    /// The number of steps `T`.
    pub fn steps(&self) -> usize {
        self.equations.first().map_or(0, StepEquation::steps)
    }

    /// The entry of tensor `t`.
    pub fn tensor(&self, t: TensorId) -> Option<&LoopTensor> {
        self.tensors.iter().find(|x| x.tensor == t)
    }
}

impl CheckedProgram {
    /// The loop that computes tensor `t`, if a virtual index writes it.
    pub fn loop_of(&self, t: TensorId) -> Option<&Loop> {
        self.loops.iter().find(|l| l.tensor(t).is_some())
    }
}

/// Every read of an expression with its indices.
fn accesses<'e>(e: &'e Expr, out: &mut Vec<&'e crate::program::Access>) {
    match e {
        Expr::Access(a) => out.push(a),
        Expr::Call(_, args, _) => args.iter().for_each(|a| accesses(a, out)),
        Expr::Neg(x) => accesses(x, out),
        Expr::Binary(_, a, b) => {
            accesses(a, out);
            accesses(b, out);
        }
        Expr::Number(_) | Expr::IndexValue(_) => {}
    }
}

/// A read at a step: the tensor, the constant of its step, where.
struct StepRead {
    tensor: TensorId,
    offset: i64,
    span: Span,
}

/// The reads of a step equation at a step (those with one index more than the tensor's axes).
fn step_reads(eq: &StepEquation, ranks: &[usize]) -> Vec<StepRead> {
    let mut all = Vec::new();
    accesses(&eq.equation.rhs, &mut all);
    all.into_iter()
        .filter(|a| Some(a.indices.len()) == ranks.get(a.tensor).map(|r| r + 1))
        .map(|a| StepRead {
            tensor: a.tensor,
            offset: a
                .indices
                .last()
                .and_then(|ix| step_offset(ix, eq.var))
                .unwrap_or(0),
            span: a.span,
        })
        .collect()
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// Groups step equations into loops and checks that each can run step by step. `initial`
/// holds the data of tensors written at steps; `names` every tensor's name.
pub fn build_loops(
    steps: Vec<StepEquation>,
    mut initial: HashMap<TensorId, HostTensor>,
    names: &[String],
    ranks: &[usize],
) -> Result<Vec<Loop>, Vec<CheckError>> {
    let mut errors = Vec::new();
    let name = |t: TensorId| names.get(t).cloned().unwrap_or_default();
    // The step each tensor is written at: every equation of one tensor must agree.
    let mut heads: HashMap<TensorId, (i64, Span)> = HashMap::new();
    for eq in &steps {
        let (head, span) = (eq.head(), eq.equation.span);
        match heads.get(&eq.equation.lhs) {
            Some(&(h, first)) if h != head => errors.push(CheckError::LoopMismatch {
                what: format!(
                    "`{}` is written at step `{}` here and at `{}` elsewhere",
                    name(eq.equation.lhs),
                    show_step(head),
                    show_step(h)
                ),
                span,
                first,
                hint: "write every step equation of one tensor at the same step, e.g. `*t+1`"
                    .into(),
            }),
            Some(_) => {}
            None => {
                heads.insert(eq.equation.lhs, (head, span));
            }
        }
    }
    // Tensors that read each other at steps are one loop.
    let mut parent: Vec<usize> = (0..names.len()).collect();
    for eq in &steps {
        for r in step_reads(eq, ranks) {
            if !heads.contains_key(&r.tensor) {
                continue;
            }
            let (a, b) = (
                find(&mut parent, eq.equation.lhs),
                find(&mut parent, r.tensor),
            );
            parent[a] = b;
        }
    }
    let mut groups: Vec<(usize, Vec<StepEquation>)> = Vec::new();
    for eq in steps {
        let root = find(&mut parent, eq.equation.lhs);
        match groups.iter_mut().find(|(r, _)| *r == root) {
            Some((_, g)) => g.push(eq),
            None => groups.push((root, vec![eq])),
        }
    }
    let mut loops = Vec::new();
    for (_, equations) in groups {
        match one_loop(equations, &heads, &mut initial, &name, ranks) {
            Ok(l) => loops.push(l),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(loops)
    } else {
        Err(errors)
    }
}

fn show_step(c: i64) -> String {
    match c {
        0 => "*t".into(),
        c if c > 0 => format!("*t+{c}"),
        c => format!("*t{c}"),
    }
}

/// Checks one group of step equations and orders its tensors within a step.
fn one_loop(
    equations: Vec<StepEquation>,
    heads: &HashMap<TensorId, (i64, Span)>,
    initial: &mut HashMap<TensorId, HostTensor>,
    name: &dyn Fn(TensorId) -> String,
    ranks: &[usize],
) -> Result<Loop, Vec<CheckError>> {
    let mut errors = Vec::new();
    let span = equations
        .first()
        .map(|e| e.equation.span)
        .unwrap_or_default();
    let steps = equations.first().map_or(0, StepEquation::steps);
    let mut members: Vec<TensorId> = Vec::new();
    for eq in &equations {
        if !members.contains(&eq.equation.lhs) {
            members.push(eq.equation.lhs);
        }
        if eq.steps() != steps {
            errors.push(CheckError::LoopMismatch {
                what: format!(
                    "one loop runs {steps} steps here and {} there",
                    eq.steps()
                ),
                span: eq.equation.span,
                first: span,
                hint: "tensors that read each other at steps share one loop: index their step variables with the same number of steps".into(),
            });
        }
    }
    let head_of = |t: TensorId| heads.get(&t).map_or(0, |h| h.0);
    let mut keep: HashMap<TensorId, usize> = HashMap::new();
    // Same-step reads: tensor -> the tensors it reads at the step they are computed.
    let mut same: HashMap<TensorId, Vec<(TensorId, Span)>> = HashMap::new();
    for eq in &equations {
        let x = eq.equation.lhs;
        let mut plain = Vec::new();
        accesses(&eq.equation.rhs, &mut plain);
        for a in plain {
            let rank = ranks.get(a.tensor).copied().unwrap_or(0);
            if members.contains(&a.tensor) && a.indices.len() == rank {
                errors.push(CheckError::VirtualMisplaced {
                    what: format!(
                        "inside its loop, `{}` has a value per step, not one value",
                        name(a.tensor)
                    ),
                    span: a.span,
                    hint: format!(
                        "read it at a step: `{}[…, *t]` is its value at step t",
                        name(a.tensor)
                    ),
                });
            }
        }
        errors.extend(step_uses(eq, ranks, name));
        for r in step_reads(eq, ranks) {
            let (cy, cx) = (head_of(r.tensor), head_of(x));
            let ahead = r.offset - cy;
            if ahead > 0 {
                errors.push(CheckError::StepOrder {
                    what: format!(
                        "`{}` is read at a step its loop has not computed yet",
                        name(r.tensor)
                    ),
                    span: r.span,
                    hint: format!(
                        "at step t, `{0}` is known up to `{0}[…, {1}]`; read that step or an earlier one",
                        name(r.tensor),
                        show_step(cy)
                    ),
                });
            } else if ahead == 0 && r.tensor == x && r.offset == cx {
                errors.push(CheckError::StepOrder {
                    what: format!(
                        "`{}` reads its own value at the step it writes",
                        name(x)
                    ),
                    span: r.span,
                    hint: format!(
                        "a recurrence writes the next step from this one: `{0}[…, *t+1] = f({0}[…, *t])`",
                        name(x)
                    ),
                });
            } else if ahead == 0 {
                same.entry(x).or_default().push((r.tensor, r.span));
            } else {
                let k = keep.entry(r.tensor).or_default();
                *k = (*k).max(usize::try_from(-ahead).unwrap_or(usize::MAX));
            }
        }
    }
    let order = match step_order(&members, &same) {
        Ok(o) => o,
        Err((cycle, at)) => {
            let names: Vec<String> = cycle.iter().map(|&t| name(t)).collect();
            errors.push(CheckError::StepOrder {
                what: format!(
                    "the tensors of one step read each other in a cycle: {}",
                    names.join(" -> ")
                ),
                span: at,
                hint: "read one of them at the step before (`*t` instead of `*t+1`)".into(),
            });
            members.clone()
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let tensors = order
        .into_iter()
        .map(|t| LoopTensor {
            tensor: t,
            head: head_of(t),
            keep: keep.get(&t).copied().unwrap_or(0),
            initial: initial.remove(&t),
        })
        .collect();
    Ok(Loop {
        tensors,
        equations,
        span,
    })
}

/// Errors for reads that use the step variable other than as one row `t + c` of one axis (or,
/// for a read at a step, other than in the step).
fn step_uses(
    eq: &StepEquation,
    ranks: &[usize],
    name: &dyn Fn(TensorId) -> String,
) -> Vec<CheckError> {
    let mut all = Vec::new();
    accesses(&eq.equation.rhs, &mut all);
    let mut errors = Vec::new();
    for a in all {
        let stepped = Some(a.indices.len()) == ranks.get(a.tensor).map(|r| r + 1);
        let plain = if stepped {
            &a.indices[..a.indices.len().saturating_sub(1)]
        } else {
            &a.indices[..]
        };
        let using: Vec<&Index> = plain
            .iter()
            .filter(|ix| {
                let mut vs = Vec::new();
                index_vars(ix, &mut vs);
                vs.contains(&eq.var)
            })
            .collect();
        let fine = match using[..] {
            [] => true,
            [ix] => !stepped && step_row(ix, eq.var).is_some(),
            _ => false,
        };
        if !fine {
            let t = eq
                .equation
                .vars
                .get(eq.var)
                .map_or("t", |v| v.name.as_str());
            errors.push(CheckError::VirtualMisplaced {
                what: format!("the step `{t}` indexes `{}` in a way a step cannot read", name(a.tensor)),
                span: a.span,
                hint: format!("a step reads one row of a tensor: `{t}` or `{t}` plus a constant, on one axis (`U[{t}, j]`, `U[{t}+1, j]`)"),
            });
        }
    }
    errors
}

/// The loop's tensors ordered so each comes after those it reads at the same step; a cycle is
/// returned with the span of one of its reads.
fn step_order(
    members: &[TensorId],
    same: &HashMap<TensorId, Vec<(TensorId, Span)>>,
) -> Result<Vec<TensorId>, (Vec<TensorId>, Span)> {
    // Iterative depth-first search: 0 unseen, 1 on the path, 2 done.
    let mut state: HashMap<TensorId, u8> = HashMap::new();
    let mut order = Vec::new();
    for &root in members {
        if state.get(&root).copied().unwrap_or(0) == 2 {
            continue;
        }
        let mut path: Vec<(TensorId, usize)> = vec![(root, 0)];
        state.insert(root, 1);
        while let Some(&mut (t, ref mut next)) = path.last_mut() {
            let reads = same.get(&t).map_or(&[][..], Vec::as_slice);
            if let Some(&(u, span)) = reads.get(*next) {
                *next += 1;
                match state.get(&u).copied().unwrap_or(0) {
                    0 => {
                        state.insert(u, 1);
                        path.push((u, 0));
                    }
                    1 => {
                        let from = path.iter().position(|(p, _)| *p == u).unwrap_or(0);
                        let mut cycle: Vec<TensorId> =
                            path[from..].iter().map(|(p, _)| *p).collect();
                        cycle.push(u);
                        return Err((cycle, span));
                    }
                    _ => {}
                }
                continue;
            }
            state.insert(t, 2);
            order.push(t);
            path.pop();
        }
    }
    Ok(order)
}

/// Checks, once strata are known, that each loop is a stratum of its own: a tensor outside
/// the loop that reads the loop's result and that the loop reads would need the result before
/// the loop ends. Also rejects a value before the loop that reads the loop's result.
pub fn check_loop_strata(p: &CheckedProgram) -> Vec<CheckError> {
    let mut errors = Vec::new();
    for l in &p.loops {
        let members: Vec<TensorId> = l.tensors.iter().map(|x| x.tensor).collect();
        for &t in &members {
            for &e in &p.tensors[t].equations {
                let mut reads = Vec::new();
                crate::strata::collect_reads(&p.equations[e].rhs, &mut reads);
                if let Some(&(r, span)) = reads.iter().find(|(r, _)| members.contains(r)) {
                    errors.push(CheckError::StepOrder {
                        what: format!(
                            "the value of `{}` before its loop reads `{}`, which the same loop computes",
                            p.tensors[t].name, p.tensors[r].name
                        ),
                        span,
                        hint: "start the loop from tensors computed before it (data, parameters, other equations)".into(),
                    });
                }
            }
        }
        let Some(first) = members.first() else {
            continue;
        };
        let Some(stratum) = p.strata.iter().find(|s| s.tensors.contains(first)) else {
            continue;
        };
        if let Some(&extra) = stratum.tensors.iter().find(|t| !members.contains(t)) {
            errors.push(CheckError::StepOrder {
                what: format!(
                    "`{}` reads the result of the loop of `{}`, and the loop reads `{}`",
                    p.tensors[extra].name,
                    p.tensors[*first].name,
                    p.tensors[extra].name
                ),
                span: l.span,
                hint: "a loop's result is known only after its last step; inside the loop, read its tensors at a step (`S[…, *t]`)".into(),
            });
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_back_from_indices() {
        assert_eq!(step_offset(&step_index(2, 1), 2), Some(1));
        assert_eq!(step_offset(&step_index(2, 0), 2), Some(0));
        assert_eq!(step_offset(&step_index(2, -1), 2), Some(-1));
        assert_eq!(step_offset(&Index::Var(1), 2), None);
    }

    #[test]
    fn a_step_order_follows_same_step_reads_and_finds_cycles() {
        let span = Span::default();
        let mut same = HashMap::new();
        same.insert(2, vec![(1, span)]);
        same.insert(1, vec![(0, span)]);
        assert_eq!(step_order(&[2, 1, 0], &same), Ok(vec![0, 1, 2]));
        same.insert(0, vec![(2, span)]);
        let (cycle, _) = step_order(&[2, 1, 0], &same).unwrap_err();
        assert_eq!(cycle.first(), cycle.last());
        assert_eq!(cycle.len(), 4);
    }

    #[test]
    fn steps_print_as_written() {
        assert_eq!(show_step(1), "*t+1");
        assert_eq!(show_step(0), "*t");
        assert_eq!(show_step(-2), "*t-2");
    }
}
