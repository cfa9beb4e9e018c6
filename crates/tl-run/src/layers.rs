//! Running a layer recursion (`tl_plan::layers`) one row at a time: for each row of the layer
//! axis in increasing order, each tensor of the group, in same-row dependency order, is
//! computed from its row plans, whose slots are filled with the rows they read (views of
//! data tensors, or rows computed earlier). Every equation therefore runs once per layer,
//! and the group costs one pass per layer instead of a fixpoint's pass per round.
//!
//! The group's tensors are kept as rows ([`Value::Layers`]); a read of one constant row (the
//! last layer's output, say) takes that row as it is, and any other use stacks the rows into
//! one tensor. While a backward pass is recorded, every row plan's node values are kept on a
//! tape, which the backward pass (`grad/layers.rs`) walks from the last row to the first.

use crate::engine::{Engine, Value};
use crate::error::RunError;
use crate::loop_tape::Tape;
use tl_backend::Calls;
use tl_backend::{BinaryFn, MapExpr, ReduceOp, Tensor};
use tl_check::{Index, TensorId};
use tl_plan::layers::LayeredStratum;
use tl_plan::{EquationPlan, Graph, Op};
use tl_syntax::Span;

impl Engine<'_> {
    /// Evaluates a layered recursive stratum row by row.
    pub fn layered(&mut self, ls: &LayeredStratum) -> Result<(), RunError> {
        let span = self.program.tensors[ls.order[0]].span;
        let err = |e| RunError::backend(e, span);
        let mut rows: Vec<(TensorId, Vec<Option<Tensor>>)> = ls
            .order
            .iter()
            .map(|&t| (t, vec![None; ls.rows_of(t)]))
            .collect();
        let row_of = |rows: &[(TensorId, Vec<Option<Tensor>>)], t: TensorId, r: usize| {
            rows.iter()
                .find(|(u, _)| *u == t)
                .and_then(|(_, rs)| rs.get(r).cloned().flatten())
        };
        let mut tape = Tape::default();
        for w in 0..ls.rows {
            self.masks.layer = w as u64 + 1;
            let mut kept: Vec<Option<Vec<Tensor>>> = vec![None; ls.equations.len()];
            for &t in &ls.order {
                let mut acc: Option<Tensor> = None;
                for (e, re) in ls.equations.iter().enumerate() {
                    if re.target != t {
                        continue;
                    }
                    let Some(v) = re.variable_at(w) else { continue };
                    // A row plan spliced into its reader's fused plan runs only while a
                    // backward pass is recorded (which reads the unfused plans).
                    if v < 0 || v >= re.extent as i64 || (re.plan.inlined && !self.record) {
                        continue;
                    }
                    let slots = if self.record {
                        &re.slots
                    } else {
                        &re.fused_slots
                    };
                    for slot in slots {
                        let r = slot.row_at(v);
                        let extent = self.shape(slot.source)[slot.axis] as i64;
                        let row = if r < 0 || r >= extent {
                            None
                        } else if ls.axis_of(slot.source).is_some() {
                            row_of(&rows, slot.source, r as usize)
                        } else {
                            self.dense(slot.source, span)?
                                .selected(slot.axis, r as usize)
                        };
                        let row = match row {
                            Some(x) => x,
                            None => self
                                .backend
                                .full(&self.shape(slot.id), 0.0, self.dtype())
                                .map_err(err)?,
                        };
                        self.values[slot.id] = Some(Value::Dense(row));
                    }
                    let value = self.evaluate(&re.plan)?;
                    if self.record {
                        if let Some(trace) = self.traces.remove(&re.plan.id) {
                            kept[e] = Some(tape.count(trace, &re.plan.graph.nodes));
                        }
                    }
                    acc = Some(match acc {
                        None => value,
                        Some(a) => {
                            let f = match re.plan.combine {
                                ReduceOp::Max => BinaryFn::Max,
                                ReduceOp::Min => BinaryFn::Min,
                                ReduceOp::Sum | ReduceOp::Mean => BinaryFn::Add,
                            };
                            let expr = MapExpr::Binary(
                                f,
                                Box::new(MapExpr::Input(0)),
                                Box::new(MapExpr::Input(1)),
                            );
                            self.backend
                                .map(&expr, &[&a, &value], value.shape(), self.dtype())
                                .map_err(err)?
                        }
                    });
                }
                if let Some(slot) = rows
                    .iter_mut()
                    .find(|(u, _)| *u == t)
                    .and_then(|(_, rs)| rs.get_mut(w))
                {
                    *slot = acc;
                }
            }
            if self.record {
                if tape.bytes > self.host_limit {
                    return Err(RunError::TooLarge {
                        what: format!(
                            "the layers of `{}` kept for the backward pass ({} of {})",
                            self.program.tensors[ls.order[0]].name,
                            w + 1,
                            ls.rows
                        ),
                        bytes: tape.bytes as u128,
                        limit: self.host_limit as u128,
                        span,
                    });
                }
                tape.steps.push(kept);
            }
        }
        self.masks.layer = 0;
        for re in &ls.equations {
            for slot in re.slots.iter().chain(&re.fused_slots) {
                self.values[slot.id] = None;
            }
        }
        for (t, rs) in rows {
            let axis = ls.axis_of(t).unwrap_or(0);
            self.values[t] = Some(Value::Layers { axis, rows: rs });
        }
        if self.record {
            self.layer_tapes.insert(ls.stratum, tape);
        } else {
            self.layer_tapes.remove(&ls.stratum);
        }
        Ok(())
    }

    /// One tensor from its rows along `axis` (rows nothing wrote are 0).
    pub fn stack_rows(
        &self,
        t: TensorId,
        axis: usize,
        rows: &[Option<Tensor>],
        span: Span,
    ) -> Result<Tensor, RunError> {
        let err = |e| RunError::backend(e, span);
        let shape = self.shape(t);
        let mut acc: Option<Tensor> = None;
        for (r, row) in rows.iter().enumerate() {
            let Some(row) = row else { continue };
            let index = row_positions(&shape, axis, r);
            let placed = self
                .backend
                .scatter_once(row, &index, &shape, ReduceOp::Sum)
                .map_err(err)?;
            acc = Some(match acc {
                None => placed,
                Some(a) => self
                    .backend
                    .map(
                        &MapExpr::Binary(
                            BinaryFn::Add,
                            Box::new(MapExpr::Input(0)),
                            Box::new(MapExpr::Input(1)),
                        ),
                        &[&a, &placed],
                        &shape,
                        self.dtype(),
                    )
                    .map_err(err)?,
            });
        }
        match acc {
            Some(a) => Ok(a),
            None => self.backend.full(&shape, 0.0, self.dtype()).map_err(err),
        }
    }

    /// The value of node `id` when it reads one constant row of a tensor kept as rows: that
    /// row itself (or a gather from it), without stacking the rows. `None` for other nodes.
    pub fn layer_row_node(
        &mut self,
        plan: &EquationPlan,
        graph: &Graph,
        id: usize,
        span: Span,
    ) -> Result<Option<Tensor>, RunError> {
        let node = &graph.nodes[id];
        let Op::Gather { tensor, indices } = &node.op else {
            return Ok(None);
        };
        let Some(Some(Value::Layers { axis, rows })) = self.values.get(*tensor) else {
            return Ok(None);
        };
        let Some(Index::Const(c)) = indices.get(*axis) else {
            return Ok(None);
        };
        let mut rest = indices.clone();
        rest.remove(*axis);
        let mut row_shape = self.shape(*tensor);
        row_shape.remove(*axis);
        let row = usize::try_from(*c)
            .ok()
            .and_then(|c| rows.get(c).cloned().flatten());
        let err = |e| RunError::backend(e, span);
        let row = match row {
            Some(r) => r,
            None => self
                .backend
                .full(&row_shape, 0.0, self.dtype())
                .map_err(err)?,
        };
        let direct = rest.len() == node.labels.len()
            && rest
                .iter()
                .zip(&node.labels)
                .all(|(ix, l)| *ix == Index::Var(*l));
        if direct {
            return Ok(Some(row));
        }
        let index = crate::eval::index_vector(&plan.vars, &node.labels, &rest, &row_shape);
        self.backend
            .gather_once(&row, &index, &node.shape)
            .map(Some)
            .map_err(err)
    }
}

/// The flat position in a tensor of `shape` of each element of its row `r` along `axis`.
fn row_positions(shape: &[usize], axis: usize, r: usize) -> Vec<i64> {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let extent = shape[axis];
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        let base = (o * extent + r) * inner;
        out.extend((base..base + inner).map(|x| x as i64));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::row_positions;

    #[test]
    fn row_positions_walk_one_row_of_the_layer_axis() {
        assert_eq!(row_positions(&[2, 3, 2], 1, 1), vec![2, 3, 8, 9]);
        assert_eq!(row_positions(&[3, 2], 0, 2), vec![4, 5]);
    }
}
