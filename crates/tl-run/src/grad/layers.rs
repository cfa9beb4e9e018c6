//! Reverse mode through a layer recursion (`crate::layers`): the rows were computed in
//! increasing order, each from rows before it, so the gradient walks them once from the last
//! row to the first, through the node values each row plan kept on the tape. A row's
//! gradient reaches the rows it read (of the group's tensors, added into their own
//! gradients before those rows are walked) and the rows of other tensors it read (a layer's
//! weights, stacked into their tensors' gradients at the end). The cost is one backward pass
//! per row plan, as the forward pass was one evaluation per row plan.

use super::*;
use crate::engine::Value;
use tl_plan::layers::LayeredStratum;

/// Gradients by (tensor, axis, row): of the group's rows still to be walked, or of the rows
/// of other tensors the row plans read.
type RowGrads = Vec<((TensorId, usize, usize), Tensor)>;

impl Engine<'_> {
    /// Carries the gradients of a layered stratum's tensors (in `grads`) back through its
    /// rows, to the tensors its equations read.
    pub(crate) fn layered_backward(
        &mut self,
        ls: &LayeredStratum,
        grads: &mut Grads,
        wanted: &[bool],
    ) -> Result<(), RunError> {
        let n = self.program.tensors.len();
        let span = self.program.tensors[ls.order[0]].span;
        let mut tape =
            self.layer_tapes
                .remove(&ls.stratum)
                .ok_or_else(|| RunError::Unsupported {
                    what: "internal: no recorded layers for the backward pass".into(),
                    hint: None,
                    span,
                })?;
        let slot_count = self.plan.layers.slot_shapes.len();
        let mut wanted_here: Vec<bool> = (0..n + slot_count)
            .map(|k| wanted.get(k).copied().unwrap_or(false))
            .collect();
        for slot in ls.equations.iter().flat_map(|re| &re.slots) {
            let on = ls.axis_of(slot.source).is_some()
                || wanted.get(slot.source).copied().unwrap_or(false);
            if let Some(w) = slot.id.checked_sub(n).and_then(|k| wanted_here.get_mut(k)) {
                *w = on;
            }
        }
        let mut adjoint: RowGrads = Vec::new();
        for &t in &ls.order {
            let (Some(g), Some(axis)) = (grads[t].take(), ls.axis_of(t)) else {
                continue;
            };
            for r in 0..ls.rows_of(t) {
                if let Some(row) = g.selected(axis, r) {
                    adjoint.push(((t, axis, r), row));
                }
            }
        }
        let mut outside: RowGrads = Vec::new();
        for w in (0..ls.rows).rev() {
            let mut kept = tape.steps.pop().unwrap_or_default();
            for &t in ls.order.iter().rev() {
                let axis = ls.axis_of(t).unwrap_or(0);
                let Some(g) = take(&mut adjoint, (t, axis, w)) else {
                    continue;
                };
                let writers = ls.equations.iter().filter(|re| re.target == t).count();
                for (e, re) in ls.equations.iter().enumerate() {
                    if re.target != t {
                        continue;
                    }
                    let Some(v) = re.variable_at(w) else { continue };
                    let Some(trace) = kept.get_mut(e).and_then(Option::take) else {
                        continue;
                    };
                    let root = trace
                        .get(re.plan.root)
                        .cloned()
                        .ok_or_else(|| no_entry(span))?;
                    // The row's value, where the gradient must find which terms reached it.
                    let max_like = !matches!(re.plan.combine, ReduceOp::Sum | ReduceOp::Mean);
                    let scatter_max = matches!(
                        re.plan.placement,
                        Placement::Scatter {
                            op: ReduceOp::Max | ReduceOp::Min,
                            ..
                        }
                    );
                    let row_value = if (max_like && writers > 1) || scatter_max {
                        Some(self.row_value(t, axis, w, span)?)
                    } else {
                        None
                    };
                    self.traces.insert(re.plan.id, trace);
                    let g_eq = match &row_value {
                        Some(row) if max_like && writers > 1 => {
                            let value = self.place(&re.plan, root.clone())?;
                            self.backend
                                .map(
                                    &mul(input(0), equal(input(1), input(2))),
                                    &[&g, &value, row],
                                    g.shape(),
                                    self.dtype(),
                                )
                                .map_err(self.err(span))?
                        }
                        _ => g.clone(),
                    };
                    if let (Some(row), true) = (&row_value, scatter_max) {
                        self.values[re.plan.target] = Some(Value::Dense(row.clone()));
                    }
                    let g_root = self.place_backward(&re.plan, &root, &g_eq);
                    self.values[re.plan.target] = None;
                    let g_root = g_root?;
                    let mut local: Grads = vec![None; n + slot_count];
                    let back = self.graph_backward(&re.plan, g_root, &mut local, &wanted_here);
                    self.traces.remove(&re.plan.id);
                    back?;
                    for slot in &re.slots {
                        let gs = slot.id.checked_sub(n).and_then(|k| local.get_mut(k));
                        let Some(gs) = gs.and_then(Option::take) else {
                            continue;
                        };
                        let r = slot.row_at(v);
                        // A row outside its tensor read as zeros: nothing flows back.
                        let Ok(r) = usize::try_from(r) else { continue };
                        if r >= self.shape(slot.source)[slot.axis] {
                            continue;
                        }
                        let into = if ls.axis_of(slot.source).is_some() {
                            &mut adjoint
                        } else {
                            &mut outside
                        };
                        self.add_row(into, (slot.source, slot.axis, r), gs, span)?;
                    }
                    for (id, g) in local.into_iter().enumerate().take(n) {
                        if let (Some(g), Some(entry)) = (g, grads.get_mut(id)) {
                            self.accumulate(entry, g, span)?;
                        }
                    }
                }
            }
        }
        self.stack_row_grads(outside, grads, span)
    }

    /// Row `w` along `axis` of a group tensor's value.
    fn row_value(
        &self,
        t: TensorId,
        axis: usize,
        w: usize,
        span: Span,
    ) -> Result<Tensor, RunError> {
        if let Some(Some(Value::Layers { rows, .. })) = self.values.get(t) {
            if let Some(Some(row)) = rows.get(w) {
                return Ok(row.clone());
            }
        }
        self.dense(t, span)?
            .selected(axis, w)
            .ok_or_else(|| no_entry(span))
    }

    /// Adds `g` to the gradient of one row.
    fn add_row(
        &self,
        into: &mut RowGrads,
        key: (TensorId, usize, usize),
        g: Tensor,
        span: Span,
    ) -> Result<(), RunError> {
        let mut entry = take(into, key);
        self.accumulate(&mut entry, g, span)?;
        if let Some(sum) = entry {
            into.push((key, sum));
        }
        Ok(())
    }

    /// Stacks the gradients of the rows of tensors outside the group into their tensors'
    /// gradients.
    fn stack_row_grads(
        &mut self,
        rows: RowGrads,
        grads: &mut Grads,
        span: Span,
    ) -> Result<(), RunError> {
        let mut tensors: Vec<(TensorId, usize)> =
            rows.iter().map(|((t, a, _), _)| (*t, *a)).collect();
        tensors.sort_unstable();
        tensors.dedup();
        for (u, axis) in tensors {
            let mut stacked: Vec<Option<Tensor>> = vec![None; self.shape(u)[axis]];
            for ((_, _, r), g) in rows.iter().filter(|((t, a, _), _)| (*t, *a) == (u, axis)) {
                if let Some(slot) = stacked.get_mut(*r) {
                    *slot = Some(g.clone());
                }
            }
            let whole = self.stack_rows(u, axis, &stacked, span)?;
            if let Some(entry) = grads.get_mut(u) {
                self.accumulate(entry, whole, span)?;
            }
        }
        Ok(())
    }
}

/// Takes the entry for `key` out of `grads`.
fn take(grads: &mut RowGrads, key: (TensorId, usize, usize)) -> Option<Tensor> {
    let k = grads.iter().position(|(x, _)| *x == key)?;
    Some(grads.swap_remove(k).1)
}
