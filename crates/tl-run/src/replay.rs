//! Replayed work. A full-batch training step at a fixed learning rate queues the same work
//! over the same memory every time, once the optimiser updates in place; so does a repeated
//! evaluation of a program whose data and parameters have not changed. On a backend that
//! records work (CUDA graphs), one such step or evaluation is recorded and each later one is
//! a single replay of it — for a training step, forward and backward pass, finiteness checks
//! and every parameter update, plus one read-back.
//!
//! Training: ordinary steps until the optimiser's buffers exist, one step updating in place
//! (its kernels are compiled and its memory cached outside the recording), one recorded step
//! (replayed at once), then replays. Evaluation: the first evaluation runs, the second is
//! recorded, later ones replay. Work that cannot be recorded (it reads something back, as a
//! fixpoint's convergence test does, or uploads) leaves everything as it was and runs op by
//! op from then on.

use crate::engine::Engine;
use crate::error::RunError;
pub use crate::eval_replay::{EvalReplay, RecordedEvaluation};
use crate::optim::OptimizerState;
use crate::pass_result::DevicePass;
use tl_backend::Calls;
use tl_backend::{Recording, Tensor};
use tl_check::{Definition, TensorId};
use tl_syntax::Span;

/// A recorded step and the device scalars each replay of it writes.
pub(crate) struct RecordedStep {
    recording: Recording,
    pass: DevicePass,
}

/// Where a training run stands with replaying.
pub(crate) enum Replay {
    /// Every step runs op by op (a schedule, several ranks, a profile, a backend that cannot
    /// record, or `--no-replay`; mini-batches replay per batch length, `train/batched.rs`).
    Off,
    /// The next step updates in place, unrecorded.
    Warming,
    /// The next step is recorded.
    Record,
    /// Steps replay this recording.
    Ready(RecordedStep),
}

/// What a replayed step works on.
pub(crate) struct StepTarget<'p> {
    pub(crate) loss: TensorId,
    pub(crate) params: &'p [TensorId],
    pub(crate) wanted: &'p [bool],
    pub(crate) step: u64,
    pub(crate) lr: f64,
    pub(crate) span: Span,
}

impl Engine<'_> {
    /// One training step through the replay states (see the module documentation); returns
    /// the loss. The parameters are updated in their own memory.
    pub(crate) fn replayed_step(
        &mut self,
        state: &mut Replay,
        opt: &mut OptimizerState,
        s: &StepTarget<'_>,
    ) -> Result<f64, RunError> {
        let span = s.span;
        let backend_err = |e| RunError::backend(e, span);
        self.masks.begin_step(s.step);
        self.sync_masks(span)?;
        match state {
            Replay::Ready(rec) => {
                self.backend.replay(&rec.recording).map_err(backend_err)?;
                self.masks.replayed();
                let loss = self.checked(&rec.pass, s.loss, s.params, s.step, span)?;
                opt.count_replayed_step();
                self.replayed_steps += 1;
                Ok(loss)
            }
            Replay::Record => {
                let before = opt.clone();
                if self.backend.begin_recording().is_err() {
                    *state = Replay::Off;
                    return self.step_in_place(opt, s);
                }
                let captured = self
                    .pass_on_device(s.loss, s.params, s.wanted, span)
                    .and_then(|d| {
                        let tensors = self.param_tensors(s.params, span)?;
                        opt.step_in_place(self.backend, &tensors, &d.grads, s.lr)
                            .map_err(backend_err)?;
                        Ok(d)
                    });
                let ended = self.backend.end_recording();
                match (captured, ended) {
                    (Ok(pass), Ok(recording)) => {
                        let rec = RecordedStep { recording, pass };
                        self.backend.replay(&rec.recording).map_err(backend_err)?;
                        let loss = self.checked(&rec.pass, s.loss, s.params, s.step, span)?;
                        self.replayed_steps += 1;
                        *state = Replay::Ready(rec);
                        Ok(loss)
                    }
                    _ => {
                        // Nothing recorded ran: the optimiser goes back to its state before.
                        *opt = before;
                        self.forget_capture();
                        self.masks.forget();
                        *state = Replay::Off;
                        self.step_in_place(opt, s)
                    }
                }
            }
            Replay::Warming => {
                let loss = self.step_in_place(opt, s)?;
                *state = Replay::Record;
                Ok(loss)
            }
            Replay::Off => self.step_in_place(opt, s),
        }
    }

    /// An ordinary checked pass, then the optimiser's update in place.
    fn step_in_place(
        &mut self,
        opt: &mut OptimizerState,
        s: &StepTarget<'_>,
    ) -> Result<f64, RunError> {
        let d = self.pass_on_device(s.loss, s.params, s.wanted, s.span)?;
        let loss = self.checked(&d, s.loss, s.params, s.step, s.span)?;
        let tensors = self.param_tensors(s.params, s.span)?;
        opt.step_in_place(self.backend, &tensors, &d.grads, s.lr)
            .map_err(|e| RunError::backend(e, s.span))?;
        Ok(loss)
    }

    /// The parameters' current tensors.
    fn param_tensors(&self, params: &[TensorId], span: Span) -> Result<Vec<Tensor>, RunError> {
        params.iter().map(|&p| self.dense(p, span)).collect()
    }
}

impl Engine<'_> {
    /// Evaluates every definition again from the current data and parameters, as
    /// [`Engine::evaluate_all`] after [`Engine::reset_derived`] does, but on a backend that
    /// records work the second such evaluation is recorded and later ones replay it: one
    /// launch instead of one per kernel. For repeated evaluations of a program whose data
    /// and parameters keep their memory (as `tl bench` makes); training forgets the recording.
    pub fn evaluate_again(&mut self) -> Result<(), RunError> {
        let span = Span::default();
        match std::mem::take(&mut self.eval_replay) {
            EvalReplay::Ready(rec) => {
                self.backend
                    .replay(&rec.recording)
                    .map_err(|e| RunError::backend(e, span))?;
                for (t, v) in &rec.values {
                    self.values[*t] = Some(v.clone());
                }
                self.eval_replay = EvalReplay::Ready(rec);
                self.replayed_evaluations += 1;
                Ok(())
            }
            EvalReplay::Warm if self.options.replay && self.profile.is_none() => {
                self.reset_derived();
                if self.backend.begin_recording().is_err() {
                    self.eval_replay = EvalReplay::Off;
                    return self.evaluate_all();
                }
                let evaluated = self.evaluate_all();
                match (evaluated, self.backend.end_recording()) {
                    (Ok(()), Ok(recording)) => {
                        self.backend
                            .replay(&recording)
                            .map_err(|e| RunError::backend(e, span))?;
                        let values = self
                            .program
                            .tensors
                            .iter()
                            .enumerate()
                            .filter(|(_, d)| matches!(d.def, Definition::Derived))
                            .filter_map(|(t, _)| self.values[t].clone().map(|v| (t, v)))
                            .collect();
                        self.eval_replay =
                            EvalReplay::Ready(RecordedEvaluation { recording, values });
                        self.replayed_evaluations += 1;
                        Ok(())
                    }
                    _ => {
                        self.forget_capture();
                        self.eval_replay = EvalReplay::Off;
                        self.evaluate_all()
                    }
                }
            }
            state => {
                self.eval_replay = match state {
                    EvalReplay::Cold if self.backend.can_record() => EvalReplay::Warm,
                    EvalReplay::Off | EvalReplay::Cold => EvalReplay::Off,
                    other => other,
                };
                self.reset_derived();
                self.evaluate_all()
            }
        }
    }

    /// Forgets the values a failed capture made: nothing recorded ran, so the constants and
    /// derived values it created hold nothing and are made again.
    fn forget_capture(&mut self) {
        self.constants.clear();
        self.reset_derived();
        self.traces.clear();
    }

    /// Drops a recorded evaluation (the data or parameters it read are about to change).
    pub fn forget_recorded_evaluation(&mut self) {
        self.eval_replay = EvalReplay::Cold;
    }
}
