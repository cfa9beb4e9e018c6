//! Plans for loops over a virtual index (`tl_check::loops`): each step equation becomes a
//! *step plan*, the equation for one value of the step variable `t`. Every read the step
//! changes is a *slot*, an extra tensor id (numbered after the layer recursions' slots) that
//! the engine fills before evaluating the plan at step `t`:
//!
//! - a read of a tensor of the loop at a step, `S[j, *t]`, is the slot holding `S` at that
//!   step (shaped like `S`);
//! - a read of another tensor at a row of the step, `U[t, j]` or `U[t+1, j]`, is the slot
//!   holding that row (`U` without that axis);
//! - the step used as a number, `t`, is a scalar slot.
//!
//! The plan writes the tensor itself (a step's value has the tensor's shape), so its
//! placement and element type are the tensor's.

use crate::error::PlanError;
use crate::{plan_equation, EquationPlan};
use tl_check::loops::{step_offset, step_row};
use tl_check::{Access, CheckedProgram, Equation, Expr, Index, StepEquation, TensorId, VarId};

/// What a slot of a step plan holds at step `t`.
#[derive(Clone, Debug, PartialEq)]
pub enum SlotSource {
    /// A tensor of the loop at step `t + offset`.
    State {
        /// The tensor.
        tensor: TensorId,
        /// The constant added to the step.
        offset: i64,
    },
    /// Row `t + offset` of a tensor along one axis (zeros outside the axis).
    Row {
        /// The tensor.
        tensor: TensorId,
        /// The axis the step indexes.
        axis: usize,
        /// The constant added to the step.
        offset: i64,
    },
    /// The step number `t`, as a scalar.
    Step,
}

/// One slot of a step plan.
#[derive(Clone, Debug, PartialEq)]
pub struct StepSlot {
    /// The tensor id the plan reads it as (past the program's tensors and deltas).
    pub id: TensorId,
    /// What it holds.
    pub source: SlotSource,
}

/// A step equation planned for one step at a time.
#[derive(Clone, Debug)]
pub struct StepPlan {
    /// The plan; its target is the tensor the equation writes.
    pub plan: EquationPlan,
    /// The slots it reads.
    pub slots: Vec<StepSlot>,
}

/// A loop of the checked program, planned.
#[derive(Clone, Debug)]
pub struct LoopPlan {
    /// The loop, in [`CheckedProgram::loops`].
    pub index: usize,
    /// The stratum its tensors make up.
    pub stratum: usize,
    /// One plan per step equation, in the loop's order.
    pub equations: Vec<StepPlan>,
}

/// Rewrites one step equation's reads into slots, handing out slot ids.
struct Builder<'a> {
    shapes: &'a [Vec<usize>],
    members: Vec<TensorId>,
    var: VarId,
    first_id: usize,
    slot_shapes: &'a mut Vec<Vec<usize>>,
    slots: Vec<StepSlot>,
}

impl Builder<'_> {
    fn slot(&mut self, source: SlotSource, shape: Vec<usize>) -> TensorId {
        let id = self.first_id + self.slot_shapes.len();
        self.slot_shapes.push(shape);
        self.slots.push(StepSlot { id, source });
        id
    }

    fn access(&mut self, a: &Access) -> Access {
        let shape = self.shapes.get(a.tensor).cloned().unwrap_or_default();
        let stepped = self.members.contains(&a.tensor) && a.indices.len() == shape.len() + 1;
        if stepped {
            let offset = a
                .indices
                .last()
                .and_then(|ix| step_offset(ix, self.var))
                .unwrap_or(0);
            let mut indices = a.indices.clone();
            indices.pop();
            let tensor = a.tensor;
            let id = self.slot(SlotSource::State { tensor, offset }, shape);
            return Access {
                tensor: id,
                indices,
                span: a.span,
            };
        }
        let row = a
            .indices
            .iter()
            .enumerate()
            .find_map(|(k, ix)| step_row(ix, self.var).map(|c| (k, c)));
        let Some((axis, offset)) = row else {
            return a.clone();
        };
        let mut indices = a.indices.clone();
        indices.remove(axis);
        let mut row_shape = shape;
        if axis < row_shape.len() {
            row_shape.remove(axis);
        }
        let tensor = a.tensor;
        let id = self.slot(
            SlotSource::Row {
                tensor,
                axis,
                offset,
            },
            row_shape,
        );
        Access {
            tensor: id,
            indices,
            span: a.span,
        }
    }

    fn expr(&mut self, e: &Expr) -> Expr {
        match e {
            Expr::Number(x) => Expr::Number(*x),
            Expr::IndexValue(v) if *v == self.var => {
                let id = self.slot(SlotSource::Step, Vec::new());
                Expr::Access(Access {
                    tensor: id,
                    indices: Vec::new(),
                    span: tl_syntax::Span::default(),
                })
            }
            Expr::IndexValue(v) => Expr::IndexValue(*v),
            Expr::Access(a) => Expr::Access(self.access(a)),
            Expr::Call(f, args, span) => {
                Expr::Call(*f, args.iter().map(|x| self.expr(x)).collect(), *span)
            }
            Expr::Neg(x) => Expr::Neg(Box::new(self.expr(x))),
            Expr::Binary(op, a, b) => {
                Expr::Binary(*op, Box::new(self.expr(a)), Box::new(self.expr(b)))
            }
        }
    }
}

/// The equation of one step: the step index dropped from the left-hand side, reads that the
/// step changes turned into slots.
fn step_equation(builder: &mut Builder, s: &StepEquation) -> Equation {
    let mut lhs_indices: Vec<Index> = s.equation.lhs_indices.clone();
    lhs_indices.pop();
    Equation {
        lhs: s.equation.lhs,
        lhs_indices,
        norm_var: s.equation.norm_var,
        projection: s.equation.projection,
        rhs: builder.expr(&s.equation.rhs),
        vars: s.equation.vars.clone(),
        span: s.equation.span,
    }
}

/// Plans every loop of the program; slot shapes are appended to `slot_shapes` (shared with
/// the layer recursions, so slot `2 n + k` has shape `slot_shapes[k]`).
pub fn plan_loops(
    p: &CheckedProgram,
    shapes: &[Vec<usize>],
    slot_shapes: &mut Vec<Vec<usize>>,
) -> Result<Vec<LoopPlan>, PlanError> {
    let n = p.tensors.len();
    let mut out = Vec::new();
    for (index, l) in p.loops.iter().enumerate() {
        let members: Vec<TensorId> = l.tensors.iter().map(|x| x.tensor).collect();
        let Some(stratum) = p
            .strata
            .iter()
            .position(|s| members.iter().any(|t| s.tensors.contains(t)))
        else {
            continue;
        };
        let mut rewritten = Vec::new();
        for s in &l.equations {
            let mut builder = Builder {
                shapes,
                members: members.clone(),
                var: s.var,
                first_id: crate::TensorRef::Slot(0).id(n),
                slot_shapes: &mut *slot_shapes,
                slots: Vec::new(),
            };
            let eq = step_equation(&mut builder, s);
            let slots = builder.slots;
            rewritten.push((eq, slots));
        }
        let mut all_shapes: Vec<Vec<usize>> = shapes[..n].to_vec();
        all_shapes.extend_from_slice(&shapes[..n]);
        all_shapes.extend(slot_shapes.iter().cloned());
        let mut equations = Vec::new();
        for (eq, slots) in rewritten {
            let plan = plan_equation(p, &all_shapes, &eq)?;
            equations.push(StepPlan { plan, slots });
        }
        out.push(LoopPlan {
            index,
            stratum,
            equations,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(text: &str) -> CheckedProgram {
        let (program, errors) = tl_syntax::parse(text, tl_syntax::FileId(0));
        assert!(errors.is_empty(), "{errors:?}");
        let sources = tl_syntax::SourceMap::default();
        tl_check::check(&program, &sources).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn an_rnn_step_reads_the_state_and_one_row_of_the_input() {
        let p = checked(
            "W = [[0.5, 0], [0, 0.5]]\nU = [[1, 2], [3, 4], [5, 6]]\nS[i, *t+1] = tanh(W[i, j] S[j, *t] + U[t, i])\nS?",
        );
        let shapes: Vec<Vec<usize>> = (0..p.tensors.len()).map(|t| p.shape(t)).collect();
        let mut slot_shapes = Vec::new();
        let loops = plan_loops(&p, &shapes, &mut slot_shapes).unwrap_or_default();
        let [l] = &loops[..] else {
            panic!("one loop expected, got {}", loops.len());
        };
        let s = p.tensor_named("S").unwrap_or(0);
        let u = p.tensor_named("U").unwrap_or(0);
        let [step] = &l.equations[..] else {
            panic!("one step equation expected");
        };
        let sources: Vec<&SlotSource> = step.slots.iter().map(|x| &x.source).collect();
        assert_eq!(
            sources,
            vec![
                &SlotSource::State {
                    tensor: s,
                    offset: 0
                },
                &SlotSource::Row {
                    tensor: u,
                    axis: 0,
                    offset: 0
                }
            ]
        );
        assert_eq!(slot_shapes, vec![vec![2], vec![2]]);
        assert_eq!(step.plan.target, s);
        assert_eq!(p.loops[0].steps(), 3);
    }

    #[test]
    fn the_step_as_a_number_is_a_scalar_slot() {
        let p = checked("C[*t+1: 4] = C[*t] + t\nC?");
        let shapes: Vec<Vec<usize>> = (0..p.tensors.len()).map(|t| p.shape(t)).collect();
        let mut slot_shapes = Vec::new();
        let loops = plan_loops(&p, &shapes, &mut slot_shapes).unwrap_or_default();
        let slots = &loops[0].equations[0].slots;
        assert!(slots.iter().any(|x| x.source == SlotSource::Step));
        assert!(slot_shapes.contains(&Vec::new()));
    }
}
