//! Running a loop over a virtual index (`tl_plan::loops`): for `t = 0 … T-1`, each tensor of
//! the loop, in its order within a step, gets its value for step `t + c` from its step plans,
//! whose slots are filled with the steps and rows they read. Each tensor keeps only its value
//! before the loop and its last `keep + 1` steps, so a loop's memory does not depend on `T`.
//! After the loop, each tensor holds its last step.
//!
//! While a backward pass is recorded, each step's node values are kept on a tape instead
//! (backpropagation through time needs every step: memory then grows with `T`, as in any
//! framework), and [`Engine::loop_backward`] walks the steps in reverse.

use crate::engine::{Engine, Value};
use crate::error::RunError;
use crate::grad::Grads;
pub use crate::loop_tape::Tape;
use std::collections::{HashMap, VecDeque};
use tl_backend::Calls;
use tl_backend::{BinaryFn, HostTensor, MapExpr, ReduceOp, Tensor};
use tl_check::TensorId;
use tl_plan::loops::{LoopPlan, SlotSource, StepSlot};
use tl_syntax::Span;

/// One tensor of a running loop: its value before the loop and its latest steps.
struct Track {
    tensor: TensorId,
    head: i64,
    keep: usize,
    before: Tensor,
    /// The values of steps `last + 1 - recent.len() ..= last`, newest last.
    recent: VecDeque<Tensor>,
    last: i64,
}

impl Track {
    /// Its value at the step computed in iteration `k` (before the loop when `k < 0`).
    fn at(&self, k: i64) -> Option<Tensor> {
        if k < 0 {
            return Some(self.before.clone());
        }
        let back = usize::try_from(self.last.checked_sub(k)?).ok()?;
        let index = self.recent.len().checked_sub(back + 1)?;
        self.recent.get(index).cloned()
    }
}

fn combine(op: ReduceOp) -> MapExpr {
    let f = match op {
        ReduceOp::Max => BinaryFn::Max,
        ReduceOp::Min => BinaryFn::Min,
        ReduceOp::Sum | ReduceOp::Mean => BinaryFn::Add,
    };
    MapExpr::Binary(f, Box::new(MapExpr::Input(0)), Box::new(MapExpr::Input(1)))
}

fn internal(what: &str, span: Span) -> RunError {
    RunError::Unsupported {
        what: format!("internal: {what}"),
        hint: None,
        span,
    }
}

impl Engine<'_> {
    /// The value of a loop tensor before its loop: its data, its equations without `*`, or 0.
    fn before_loop(&mut self, lp: &LoopPlan, t: TensorId) -> Result<Tensor, RunError> {
        let span = self.program.tensors[t].span;
        let start = self.program.loops[lp.index]
            .tensor(t)
            .and_then(|x| x.initial.as_ref());
        if let Some(host) = start {
            let host = HostTensor {
                shape: host.shape.clone(),
                data: host.data.convert(self.dtype()),
            };
            return self
                .backend
                .upload(&host)
                .map_err(|e| RunError::backend(e, span));
        }
        self.compute(t)
    }

    /// Fills the slots of one step plan for iteration `t`.
    fn fill_slots(
        &mut self,
        slots: &[StepSlot],
        t: i64,
        tracks: &[Track],
        rows: &HashMap<TensorId, Tensor>,
        span: Span,
    ) -> Result<(), RunError> {
        for slot in slots {
            let value = match &slot.source {
                SlotSource::State { tensor, offset } => {
                    let track = tracks
                        .iter()
                        .find(|x| x.tensor == *tensor)
                        .ok_or_else(|| internal("a loop reads a tensor outside it", span))?;
                    let k = t
                        .checked_add(*offset)
                        .and_then(|x| x.checked_sub(track.head))
                        .ok_or_else(|| internal("step out of range", span))?;
                    track
                        .at(k)
                        .ok_or_else(|| internal("a loop step no longer kept", span))?
                }
                SlotSource::Row {
                    tensor,
                    axis,
                    offset,
                } => {
                    let whole = rows
                        .get(tensor)
                        .ok_or_else(|| internal("a row of a tensor not loaded", span))?;
                    let row = t
                        .checked_add(*offset)
                        .and_then(|r| usize::try_from(r).ok())
                        .and_then(|r| whole.selected(*axis, r));
                    match row {
                        Some(r) => r,
                        None => self
                            .backend
                            .full(&self.shape(slot.id), 0.0, self.dtype())
                            .map_err(|e| RunError::backend(e, span))?,
                    }
                }
                SlotSource::Step => self
                    .backend
                    .full(&[], t as f64, self.dtype())
                    .map_err(|e| RunError::backend(e, span))?,
            };
            if let Some(v) = self.values.get_mut(slot.id) {
                *v = Some(Value::Dense(value));
            }
        }
        Ok(())
    }

    /// Runs a loop over its steps (see the module doc).
    pub fn run_loop(&mut self, lp: &LoopPlan) -> Result<(), RunError> {
        let program = self.program;
        let l = &program.loops[lp.index];
        let span = l.span;
        let steps = l.steps();
        let mut tracks = Vec::new();
        for x in &l.tensors {
            let before = self.before_loop(lp, x.tensor)?;
            tracks.push(Track {
                tensor: x.tensor,
                head: x.head,
                keep: x.keep,
                before,
                recent: VecDeque::new(),
                last: -1,
            });
        }
        let mut rows = HashMap::new();
        for sp in &lp.equations {
            for slot in &sp.slots {
                if let SlotSource::Row { tensor, .. } = slot.source {
                    if let std::collections::hash_map::Entry::Vacant(e) = rows.entry(tensor) {
                        e.insert(self.dense(tensor, span)?);
                    }
                }
            }
        }
        let mut tape = Tape::default();
        for t in 0..steps {
            let t = i64::try_from(t).map_err(|_| internal("too many steps", span))?;
            let mut kept: Vec<Option<Vec<Tensor>>> = vec![None; lp.equations.len()];
            for k in 0..tracks.len() {
                let target = tracks[k].tensor;
                let mut acc: Option<Tensor> = None;
                for (e, sp) in lp.equations.iter().enumerate() {
                    if sp.plan.target != target {
                        continue;
                    }
                    self.fill_slots(&sp.slots, t, &tracks, &rows, sp.plan.span)?;
                    let value = self.evaluate(&sp.plan)?;
                    if self.record {
                        let key = sp.plan.id;
                        if let Some(trace) = self.traces.remove(&key) {
                            kept[e] = Some(tape.count(trace, &sp.plan.graph.nodes));
                        }
                    }
                    acc = Some(match acc {
                        None => value,
                        Some(a) => self
                            .backend
                            .map(
                                &combine(sp.plan.combine),
                                &[&a, &value],
                                value.shape(),
                                self.dtype(),
                            )
                            .map_err(|e| RunError::backend(e, sp.plan.span))?,
                    });
                }
                let track = &mut tracks[k];
                let value = match acc {
                    Some(v) => v,
                    None => track.before.clone(),
                };
                track.recent.push_back(value);
                while track.recent.len() > track.keep.saturating_add(1) {
                    track.recent.pop_front();
                }
                track.last = t;
            }
            if self.record {
                if tape.bytes > self.host_limit {
                    return Err(RunError::TooLarge {
                        what: format!(
                            "the steps of the loop of `{}` kept for backpropagation through time ({} of {steps})",
                            program.tensors[tracks.first().map_or(0, |x| x.tensor)].name,
                            t + 1
                        ),
                        bytes: tape.bytes as u128,
                        limit: self.host_limit as u128,
                        span,
                    });
                }
                tape.steps.push(kept);
            }
        }
        for sp in &lp.equations {
            for slot in &sp.slots {
                if let Some(v) = self.values.get_mut(slot.id) {
                    *v = None;
                }
            }
        }
        for track in tracks {
            let last = track.recent.back().cloned().unwrap_or(track.before);
            self.values[track.tensor] = Some(Value::Dense(last));
        }
        if self.record {
            self.loop_tapes.insert(lp.index, tape);
        } else {
            self.loop_tapes.remove(&lp.index);
        }
        Ok(())
    }

    /// Backpropagation through time: the gradients of the loop's last steps (in `grads`) are
    /// carried back step by step to the parameters and rows the steps read, and to the
    /// values before the loop.
    pub(crate) fn loop_backward(
        &mut self,
        lp: &LoopPlan,
        grads: &mut Grads,
        wanted: &[bool],
    ) -> Result<(), RunError> {
        let program = self.program;
        let l = &program.loops[lp.index];
        let span = l.span;
        let n = program.tensors.len();
        let mut tape = self
            .loop_tapes
            .remove(&lp.index)
            .ok_or_else(|| internal("no recorded loop for the backward pass", span))?;
        let steps = i64::try_from(tape.steps.len()).map_err(|_| internal("steps", span))?;
        let slot_count = self.plan.layers.slot_shapes.len();
        let mut wanted_here: Vec<bool> = (0..n + slot_count)
            .map(|k| wanted.get(k).copied().unwrap_or(false))
            .collect();
        for slot in lp.equations.iter().flat_map(|sp| &sp.slots) {
            let on = match slot.source {
                SlotSource::State { .. } => true,
                SlotSource::Row { tensor, .. } => wanted.get(tensor).copied().unwrap_or(false),
                SlotSource::Step => false,
            };
            if let Some(w) = slot.id.checked_sub(n).and_then(|k| wanted_here.get_mut(k)) {
                *w = on;
            }
        }
        // The gradient of each tensor at each step still to be walked (step -1: before the loop).
        let mut adjoint: HashMap<(TensorId, i64), Tensor> = HashMap::new();
        for x in &l.tensors {
            if let Some(g) = grads.get_mut(x.tensor).and_then(Option::take) {
                adjoint.insert((x.tensor, steps - 1), g);
            }
        }
        let mut row_grads: Vec<(TensorId, usize, usize, Tensor)> = Vec::new();
        for t in (0..steps).rev() {
            let step_tape = tape.steps.pop().unwrap_or_default();
            for x in l.tensors.iter().rev() {
                let Some(g) = adjoint.remove(&(x.tensor, t)) else {
                    continue;
                };
                for (e, sp) in lp.equations.iter().enumerate() {
                    if sp.plan.target != x.tensor {
                        continue;
                    }
                    let Some(trace) = step_tape.get(e).cloned().flatten() else {
                        continue;
                    };
                    let root = trace
                        .get(sp.plan.root)
                        .cloned()
                        .ok_or_else(|| internal("a step without its result", span))?;
                    let key = sp.plan.id;
                    self.traces.insert(key, trace);
                    let g_root = self.place_backward(&sp.plan, &root, &g)?;
                    let mut local: Grads = vec![None; n + slot_count];
                    self.graph_backward(&sp.plan, g_root, &mut local, &wanted_here)?;
                    self.traces.remove(&key);
                    for slot in &sp.slots {
                        let gs = slot.id.checked_sub(n).and_then(|k| local.get_mut(k));
                        let Some(gs) = gs.and_then(Option::take) else {
                            continue;
                        };
                        match slot.source {
                            SlotSource::State { tensor, offset } => {
                                let head = l.tensor(tensor).map_or(0, |y| y.head);
                                let k = t.saturating_add(offset).saturating_sub(head).max(-1);
                                match adjoint.remove(&(tensor, k)) {
                                    None => {
                                        adjoint.insert((tensor, k), gs);
                                    }
                                    Some(a) => {
                                        let mut sum = Some(a);
                                        self.accumulate(&mut sum, gs, span)?;
                                        if let Some(s) = sum {
                                            adjoint.insert((tensor, k), s);
                                        }
                                    }
                                }
                            }
                            SlotSource::Row {
                                tensor,
                                axis,
                                offset,
                            } => {
                                if let Ok(r) = usize::try_from(t.saturating_add(offset)) {
                                    row_grads.push((tensor, axis, r, gs));
                                }
                            }
                            SlotSource::Step => {}
                        }
                    }
                    for (id, g) in local.into_iter().enumerate().take(n) {
                        if let (Some(g), Some(entry)) = (g, grads.get_mut(id)) {
                            self.accumulate(entry, g, span)?;
                        }
                    }
                }
            }
        }
        for x in &l.tensors {
            if let Some(g) = adjoint.remove(&(x.tensor, -1)) {
                if x.initial.is_none() {
                    self.tensor_backward(x.tensor, &g, grads, wanted)?;
                }
            }
        }
        self.rows_backward(row_grads, grads, span)
    }

    /// Adds the gradients of rows that steps read (`U[t, j]`) into their tensors' gradients,
    /// assembled on the host in one pass.
    fn rows_backward(
        &mut self,
        row_grads: Vec<(TensorId, usize, usize, Tensor)>,
        grads: &mut Grads,
        span: Span,
    ) -> Result<(), RunError> {
        let mut by_tensor: Vec<TensorId> = row_grads.iter().map(|r| r.0).collect();
        by_tensor.sort_unstable();
        by_tensor.dedup();
        for u in by_tensor {
            let shape = self.shape(u);
            let cells = self.fits(
                &shape,
                8,
                || "a gradient of a tensor steps read".into(),
                span,
            )?;
            let mut data = vec![0f64; cells];
            for (_, axis, r, g) in row_grads.iter().filter(|x| x.0 == u) {
                let host = self
                    .backend
                    .download(g)
                    .map_err(|e| RunError::backend(e, span))?;
                let values = host.data.to_f64();
                let outer: usize = shape.get(..*axis).map_or(1, |s| s.iter().product());
                let extent = shape.get(*axis).copied().unwrap_or(0);
                let inner: usize = shape.get(axis + 1..).map_or(1, |s| s.iter().product());
                for o in 0..outer {
                    for i in 0..inner {
                        let to = (o * extent + r) * inner + i;
                        if let (Some(cell), Some(v)) = (data.get_mut(to), values.get(o * inner + i))
                        {
                            *cell += v;
                        }
                    }
                }
            }
            let host = HostTensor::from_f64(shape.clone(), data, self.dtype());
            let g = self
                .backend
                .upload(&host)
                .map_err(|e| RunError::backend(e, span))?;
            if let Some(entry) = grads.get_mut(u) {
                self.accumulate(entry, g, span)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tl_backend::{Backend, DType};

    fn scalar(x: f64) -> Tensor {
        let be = tl_backend::cpu::CpuBackend::new();
        be.full(&[], x, DType::F64)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_track_reads_its_kept_steps_and_its_value_before_the_loop() {
        let track = Track {
            tensor: 0,
            head: 1,
            keep: 1,
            before: scalar(-1.0),
            recent: VecDeque::from([scalar(3.0), scalar(4.0)]),
            last: 4,
        };
        let read = |k| {
            track.at(k).map(|t| {
                let be = tl_backend::cpu::CpuBackend::new();
                be.download(&t)
                    .map(|h| h.data.to_f64()[0])
                    .unwrap_or(f64::NAN)
            })
        };
        assert_eq!(read(4), Some(4.0));
        assert_eq!(read(3), Some(3.0));
        assert_eq!(read(-1), Some(-1.0));
        assert_eq!(read(2), None);
        assert_eq!(read(5), None);
    }
}
