//! `minimize`: gradient descent on every parameter the loss depends on. Each step evaluates
//! the program with node values kept, backpropagates from the loss (`grad`), checks the loss
//! and gradients are finite, and updates the parameters with the optimiser (`optim`) at the
//! scheduled learning rate. Mini-batches (`batch`) re-plan the program for the batch size and
//! reshuffle the examples every epoch from the run's one seeded generator.

use crate::batch::{batch_domain, Batcher};
use crate::engine::{Engine, Value};
use crate::error::RunError;
use crate::masks::Masks;
use crate::observe::{StepInfo, TrainObserver};
use crate::optim::{learning_rate, OptimizerState};
use crate::parallel::DataParallel;
use crate::pass_result::{DevicePass, StepResult};
use crate::replay::{Replay, StepTarget};
use tl_backend::Calls;
use tl_backend::{BinaryFn, DType, HostTensor, MapExpr, Tensor};
use tl_check::learn::MinimizeSpec;
use tl_check::{Definition, TensorId};
use tl_syntax::{Diagnostic, Span};

mod batched;
mod pass;

use batched::BatchedReplay;
use std::collections::HashMap;

/// The examples of batch `k` of an epoch in the order `order`, batches of `size`.
fn batch_rows(order: &[usize], k: u64, size: usize) -> &[usize] {
    let k = usize::try_from(k).unwrap_or(usize::MAX);
    let start = k.saturating_mul(size).min(order.len());
    &order[start..start.saturating_add(size).min(order.len())]
}

/// The hint of a checkpoint that does not fit the program resuming from it.
const RESUME_HINT: &str = "resume with the program (and options) that saved the checkpoint, or \
                           drop `--resume` to train from the start";

impl<'a> Engine<'a> {
    /// Tensors each tensor reads through its equations and rules.
    pub(crate) fn reads(&self, t: TensorId) -> Vec<TensorId> {
        let mut out = Vec::new();
        for &e in &self.program.tensors[t].equations {
            let mut r = Vec::new();
            tl_check::strata::collect_reads(&self.program.equations[e].rhs, &mut r);
            out.extend(r.into_iter().map(|(x, _)| x));
        }
        for &r in &self.program.tensors[t].rules {
            out.extend(self.program.rules[r].body.iter().map(|a| a.tensor));
        }
        // A tensor of a loop reads what every step of its loop reads.
        for s in self.program.loop_of(t).iter().flat_map(|l| &l.equations) {
            let mut r = Vec::new();
            tl_check::strata::collect_reads(&s.equation.rhs, &mut r);
            out.extend(r.into_iter().map(|(x, _)| x));
        }
        out
    }

    /// The parameters (declared or implicit) that `loss` depends on, in tensor order.
    pub fn learned_params(&self, loss: TensorId) -> Vec<TensorId> {
        let n = self.program.tensors.len();
        let mut seen = vec![false; n];
        let mut stack = vec![loss];
        while let Some(t) = stack.pop() {
            if std::mem::replace(&mut seen[t], true) {
                continue;
            }
            stack.extend(self.reads(t));
        }
        (0..n)
            .filter(|&t| {
                seen[t]
                    && matches!(
                        self.program.tensors[t].def,
                        Definition::Param(_) | Definition::ImplicitParam
                    )
            })
            .collect()
    }

    /// The tensors a training step recomputes: those that depend on `params`, or that draw
    /// random numbers (`dropout`), and whatever reads them.
    pub(crate) fn depends_on(&self, params: &[TensorId]) -> Vec<bool> {
        let n = self.program.tensors.len();
        let p = self.program;
        let draws = |t: TensorId| {
            p.tensors[t]
                .equations
                .iter()
                .any(|&e| p.equations.get(e).is_some_and(|eq| eq.rhs.draws()))
        };
        let mut dep: Vec<bool> = (0..n).map(|t| params.contains(&t) || draws(t)).collect();
        loop {
            let mut changed = false;
            for t in 0..n {
                if !dep[t] && self.reads(t).iter().any(|&r| dep[r]) {
                    dep[t] = true;
                    changed = true;
                }
            }
            if !changed {
                return dep;
            }
        }
    }

    /// The current value of every learned tensor (`param`s and implicit ones), by name: what
    /// a REPL session carries from one input to the next.
    pub fn learned_values(&mut self) -> Result<Vec<(String, HostTensor)>, RunError> {
        let learned: Vec<TensorId> = (0..self.program.tensors.len())
            .filter(|&t| {
                matches!(
                    self.program.tensors[t].def,
                    Definition::Param(_) | Definition::ImplicitParam
                )
            })
            .collect();
        let span = self
            .program
            .tensors
            .first()
            .map(|t| t.span)
            .unwrap_or_default();
        self.param_hosts(&learned, span)
    }

    /// Gives learned tensors the values in `values` (by name), in place of their initial
    /// ones; names the program does not learn, or whose shape changed, are skipped. Call it
    /// before [`Engine::run`], which then evaluates everything from these values.
    pub fn set_learned_values(&mut self, values: &[(String, HostTensor)]) -> Result<(), RunError> {
        for (name, host) in values {
            let Some(t) = self.program.tensors.iter().position(|d| {
                &d.name == name && matches!(d.def, Definition::Param(_) | Definition::ImplicitParam)
            }) else {
                continue;
            };
            if host.shape != self.shape(t) {
                continue;
            }
            let span = self.program.tensors[t].span;
            let host = HostTensor {
                shape: host.shape.clone(),
                data: host.data.convert(self.dtype()),
            };
            let value = self
                .backend
                .upload(&host)
                .map_err(|e| RunError::backend(e, span))?;
            self.values[t] = Some(Value::Dense(value));
        }
        Ok(())
    }

    /// Forgets every derived value so the next evaluation recomputes it.
    pub fn reset_derived(&mut self) {
        for (t, decl) in self.program.tensors.iter().enumerate() {
            if matches!(decl.def, Definition::Derived) {
                self.values[t] = None;
            }
        }
    }

    fn param_hosts(
        &self,
        params: &[TensorId],
        span: Span,
    ) -> Result<Vec<(String, HostTensor)>, RunError> {
        params
            .iter()
            .map(|&p| {
                let v = self.dense(p, span)?;
                let h = self
                    .backend
                    .download(&v)
                    .map_err(|e| RunError::backend(e, span))?;
                Ok((self.program.tensors[p].name.clone(), h))
            })
            .collect()
    }

    fn resume(
        &mut self,
        dir: &std::path::Path,
        params: &[TensorId],
        opt: &mut OptimizerState,
        span: Span,
    ) -> Result<u64, RunError> {
        let io = |e: tl_io::IoError| RunError::Io {
            message: e.to_string(),
            hint: e.hint(),
            span,
        };
        let ckpt = crate::checkpoint::load(dir).map_err(io)?;
        for (name, host) in &ckpt.params {
            let Some(&p) = params
                .iter()
                .find(|&&p| &self.program.tensors[p].name == name)
            else {
                return Err(RunError::Unsupported {
                    what: format!(
                        "the checkpoint in `{}` holds `{name}`, which this program does not learn",
                        dir.display()
                    ),
                    hint: Some(RESUME_HINT.into()),
                    span,
                });
            };
            if host.shape != self.shape(p) {
                return Err(RunError::Unsupported {
                    what: format!(
                        "`{name}` in the checkpoint has shape {:?}, the program's has {:?}",
                        host.shape,
                        self.shape(p)
                    ),
                    hint: Some(RESUME_HINT.into()),
                    span,
                });
            }
            let host = HostTensor {
                shape: host.shape.clone(),
                data: host.data.convert(self.dtype()),
            };
            self.values[p] = Some(Value::Dense(
                self.backend
                    .upload(&host)
                    .map_err(|e| RunError::backend(e, span))?,
            ));
        }
        let tensors: Vec<Tensor> = params
            .iter()
            .map(|&p| self.dense(p, span))
            .collect::<Result<_, _>>()?;
        let mut state = ckpt.optimizer.clone();
        state.push((
            crate::checkpoint::STEP.to_string(),
            HostTensor::from_f64(Vec::new(), vec![ckpt.step as f64], tl_backend::DType::I64),
        ));
        opt.load_state(self.backend, &tensors, state)
            .map_err(|what| RunError::Unsupported {
                what: format!("cannot resume from `{}`: {what}", dir.display()),
                hint: Some(RESUME_HINT.into()),
                span,
            })?;
        Ok(ckpt.step)
    }

    fn save_checkpoint(
        &self,
        dir: &std::path::Path,
        step: u64,
        minimize: u64,
        params: &[TensorId],
        opt: &OptimizerState,
        span: Span,
    ) -> Result<(), RunError> {
        let hosts = self.param_hosts(params, span)?;
        let state: Vec<(String, HostTensor)> = opt
            .state(self.backend)
            .map_err(|e| RunError::backend(e, span))?
            .into_iter()
            .filter(|(n, _)| n != crate::checkpoint::STEP)
            .collect();
        crate::checkpoint::save(dir, step, minimize, &hosts, &state).map_err(|e| RunError::Io {
            message: e.to_string(),
            hint: e.hint(),
            span,
        })
    }

    /// Runs one `minimize` command, reporting each step to `observer`.
    pub fn minimize(
        &mut self,
        spec: &MinimizeSpec,
        observer: &mut dyn TrainObserver,
    ) -> Result<(), RunError> {
        self.minimize_with(spec, observer, None)
    }

    /// Runs one `minimize` command alone (`dp` is `None`) or as one rank of a data-parallel
    /// run, computing its shard of every batch and summing gradients through `dp`; then the
    /// program's values after training.
    pub fn minimize_with(
        &mut self,
        spec: &MinimizeSpec,
        observer: &mut dyn TrainObserver,
        dp: Option<&mut DataParallel<'_>>,
    ) -> Result<(), RunError> {
        self.minimize_steps(spec, observer, dp)?;
        self.reset_derived();
        self.evaluate_all()
    }

    /// The training steps of one `minimize` command, without evaluating the program after
    /// them (`tl bench` times and profiles the steps alone).
    pub fn minimize_steps(
        &mut self,
        spec: &MinimizeSpec,
        observer: &mut dyn TrainObserver,
        mut dp: Option<&mut DataParallel<'_>>,
    ) -> Result<(), RunError> {
        let span = spec.span;
        self.forget_recorded_evaluation();
        let params = self.learned_params(spec.loss);
        if params.is_empty() {
            return Err(RunError::Unsupported {
                what: format!(
                    "`{}` depends on no `param`, so there is nothing to learn",
                    self.program.tensors[spec.loss].name
                ),
                hint: Some(
                    "declare the tensors to learn with `param` (e.g. `param W[8] ~ normal(0, 0.1)`, \
                     or `param B = 0` for a learned scalar) instead of giving them values"
                        .into(),
                ),
                span,
            });
        }
        let wanted = self.depends_on(&params);
        let mut opt = OptimizerState::new(&spec.optimizer, params.len());
        let mut batcher = match &spec.batch {
            Some((name, size)) => Some(Batcher::new(
                batch_domain(self.program, name, span)?,
                *size as usize,
            )),
            None => None,
        };
        let examples = batcher
            .as_ref()
            .map_or(1, |b| self.program.domains[b.domain].extent.max(1));
        let per_epoch = batcher.as_ref().map_or(1, |b| examples.div_ceil(b.size)) as u64;
        let total = if spec.epochs {
            spec.count * per_epoch
        } else {
            spec.count
        };
        if let Some(d) = dp.as_deref_mut() {
            d.prepare(self.program, spec, batcher.as_ref().map(|b| b.domain))?;
        }
        let ordinal = self.minimizes_started;
        self.minimizes_started += 1;
        let mut start = 0;
        if let Some(dir) = self.options.resume.clone() {
            // A checkpoint of a later `minimize` waits for it; the ones before it run again
            // (runs are deterministic), so they leave what they left the first time.
            let io = |e: tl_io::IoError| RunError::Io {
                message: e.to_string(),
                hint: e.hint(),
                span,
            };
            if crate::checkpoint::load(&dir).map_err(io)?.minimize == ordinal {
                self.options.resume = None;
                start = self.resume(&dir, &params, &mut opt, span)?;
                if start >= total {
                    self.warn(
                        Diagnostic::error(
                            "TL0316",
                            format!(
                                "the checkpoint in `{}` is at step {start} of {total}: this `minimize` had finished, so nothing is left to train",
                                dir.display()
                            ),
                            span,
                            "already trained",
                        )
                        .warning()
                        .with_help("the commands after it run on the trained parameters; drop `--resume` to train again from the start"),
                    );
                }
                start = start.min(total);
            }
        }
        // Mini-batched steps replay where a full-batch step would, and their data can be
        // copied into memory of their own: each batch length is planned now.
        let cut = batcher.as_ref().and_then(|b| self.replayable_cut(b.domain));
        let replays = self.options.replay
            && self.backend.can_record()
            && dp.is_none()
            && spec.schedule.is_none()
            && self.profile.is_none();
        let mut planned = HashMap::new();
        if let (true, Some(b), Some(_)) = (replays, batcher.as_mut(), &cut) {
            for len in [b.size.min(examples), examples % b.size] {
                if len > 0 {
                    let (p, _) = b.plan_for(self.program, self.plan.options, len, span)?;
                    planned.insert(len, p);
                }
            }
        }
        let mut batched = match (replays, cut) {
            (true, Some(cut)) => {
                let mut seeds = params.clone();
                seeds.extend(&cut);
                let wanted = self.depends_on(&seeds);
                Some(BatchedReplay::new(&planned, cut, wanted))
            }
            _ => None,
        };
        observer.start(&self.program.tensors[spec.loss].name, total);
        // An interrupt stops a run of its own cleanly; the ranks of a data-parallel run would
        // have to agree on the step, so there it ends the processes instead.
        let _interruptible = dp.is_none().then(crate::interrupt::Training::begin);
        let result = self.train_steps(
            spec,
            &params,
            &wanted,
            &mut opt,
            batcher.as_mut(),
            (start, ordinal),
            total,
            per_epoch,
            observer,
            dp,
            batched.as_mut(),
        );
        self.replayed_steps += batched.as_ref().map_or(0, BatchedReplay::replayed_steps);
        observer.finish();
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn train_steps<'h>(
        &mut self,
        spec: &MinimizeSpec,
        params: &[TensorId],
        wanted: &[bool],
        opt: &mut OptimizerState,
        mut batcher: Option<&mut Batcher>,
        (start, ordinal): (u64, u64),
        total: u64,
        per_epoch: u64,
        observer: &mut dyn TrainObserver,
        mut dp: Option<&mut DataParallel<'_>>,
        mut batched: Option<&mut BatchedReplay<'h>>,
    ) -> Result<(), RunError>
    where
        'a: 'h,
    {
        let span = spec.span;
        let leader = dp.as_ref().is_none_or(|d| d.is_leader());
        let base_lr = match spec.optimizer {
            tl_check::learn::Optimizer::Sgd { lr, .. }
            | tl_check::learn::Optimizer::Adam { lr, .. } => lr,
        };
        let mut order: Vec<usize> = Vec::new();
        let mut replay = if self.options.replay
            && self.backend.can_record()
            && batcher.is_none()
            && dp.is_none()
            && spec.schedule.is_none()
            && self.profile.is_none()
        {
            Replay::Warming
        } else {
            Replay::Off
        };
        for step in 0..total {
            let epoch = step / per_epoch;
            if let Some(b) = batcher.as_deref() {
                if step % per_epoch == 0 {
                    order = (0..self.program.domains[b.domain].extent).collect();
                    for i in (1..order.len()).rev() {
                        let j = self.rng.below(i + 1);
                        order.swap(i, j);
                    }
                }
            }
            if step < start {
                continue;
            }
            let lr = learning_rate(base_lr, spec.schedule.as_ref(), step, total);
            let target = StepTarget {
                loss: spec.loss,
                params,
                wanted,
                step: step + 1,
                lr,
                span,
            };
            let loss = if !matches!(replay, Replay::Off) && opt.can_step_in_place() {
                self.replayed_step(&mut replay, opt, &target)?
            } else if let (Some(br), Some(b), true) = (
                batched.as_deref_mut(),
                batcher.as_deref(),
                opt.can_step_in_place(),
            ) {
                let rows = batch_rows(&order, step % per_epoch, b.size);
                self.batched_step(br, b.domain, rows, opt, &target)?
            } else {
                self.step_one_by_one(
                    spec,
                    params,
                    wanted,
                    opt,
                    &mut batcher,
                    &order,
                    step,
                    per_epoch,
                    lr,
                    &mut dp,
                )?
            };
            let epochs = if spec.epochs {
                Some((epoch + 1, spec.count))
            } else {
                None
            };
            observer.step(&StepInfo {
                step: step + 1,
                total,
                epoch: epochs,
                loss,
                lr,
            });
            let stop = crate::interrupt::stop_requested() && step + 1 < total;
            let periodic =
                (step + 1) % self.options.checkpoint_every.max(1) == 0 || step + 1 == total;
            let dir = match &self.options.checkpoint {
                Some(d) => Some(d.clone()),
                None if stop => self.options.stop_checkpoint.clone(),
                None => None,
            };
            if let Some(dir) = dir.as_ref().filter(|_| leader && (periodic || stop)) {
                self.save_checkpoint(dir, step + 1, ordinal, params, opt, span)?;
            }
            if stop {
                return Err(RunError::Interrupted {
                    step: step + 1,
                    total,
                    saved: dir,
                    span,
                });
            }
        }
        Ok(())
    }

    /// One training step queued operation by operation: the pass (over this rank's share
    /// of the batch, when there is one), the gradients combined across ranks, the update.
    #[allow(clippy::too_many_arguments)]
    fn step_one_by_one(
        &mut self,
        spec: &MinimizeSpec,
        params: &[TensorId],
        wanted: &[bool],
        opt: &mut OptimizerState,
        batcher: &mut Option<&mut Batcher>,
        order: &[usize],
        step: u64,
        per_epoch: u64,
        lr: f64,
        dp: &mut Option<&mut DataParallel<'_>>,
    ) -> Result<f64, RunError> {
        let span = spec.span;
        // With several ranks, each gradient is summed across them as soon as the backward
        // pass has finished it (`pass_reduced`); a rank with no examples sends zeros.
        let result = match batcher.as_deref_mut() {
            None => match dp.as_deref_mut() {
                Some(d) => {
                    self.pass_reduced(spec.loss, params, wanted, step + 1, span, d, (1, 1))?
                }
                None => self.pass(spec.loss, params, wanted, step + 1, span)?,
            },
            Some(b) => {
                let batch = batch_rows(order, step % per_epoch, b.size);
                let mine = dp
                    .as_deref()
                    .map_or(0..batch.len(), |d| d.shard(batch.len()));
                let part = mine.start as u64;
                let rows: Vec<usize> = batch[mine].to_vec();
                // Examples this rank computes, and in the whole batch (the shard's weight).
                let rows_of = (rows.len(), batch.len());
                if rows.is_empty() {
                    match dp.as_deref_mut() {
                        Some(d) => {
                            self.zeros_reduced(spec.loss, params, step + 1, span, d, rows_of)?
                        }
                        None => self.zero_step(params, span)?,
                    }
                } else {
                    let domain = b.domain;
                    let (planned, cache) =
                        b.plan_for(self.program, self.plan.options, rows.len(), span)?;
                    let (bp, bplan) = &*planned;
                    let mut sub = Engine::bare(bp, bplan, self.backend, self.options.clone());
                    // A fresh engine per step, drawing this part's masks; the index vectors of
                    // earlier steps of this batch length are reused.
                    sub.masks = Masks::for_part(part);
                    sub.index_cache = std::mem::take(cache);
                    // A profile goes on in the batch's engine (its statements are this
                    // program's, at the same places).
                    sub.profile = self.profile.take();
                    for t in 0..self.program.tensors.len() {
                        sub.values[t] = self.batch_value(t, domain, &rows, span)?;
                    }
                    let result = match dp.as_deref_mut() {
                        Some(d) => {
                            sub.pass_reduced(spec.loss, params, wanted, step + 1, span, d, rows_of)
                        }
                        None => sub.pass(spec.loss, params, wanted, step + 1, span),
                    };
                    *cache = std::mem::take(&mut sub.index_cache);
                    self.profile = sub.profile.take();
                    result?
                }
            }
        };
        let mut tensors: Vec<Tensor> = params
            .iter()
            .map(|&p| self.dense(p, span))
            .collect::<Result<_, _>>()?;
        // Where steps can be replayed, they update in place here too, so that a run gives
        // the same numbers whether its steps are replayed or not (and `--gpus 1` the same as
        // a plain run).
        if self.backend.can_record() && opt.can_step_in_place() {
            opt.step_in_place(self.backend, &tensors, &result.grads, lr)
                .map_err(|e| RunError::backend(e, span))?;
            return Ok(result.loss);
        }
        opt.step(self.backend, &mut tensors, &result.grads, lr)
            .map_err(|e| RunError::backend(e, span))?;
        for (&p, t) in params.iter().zip(tensors) {
            self.values[p] = Some(Value::Dense(t));
        }
        Ok(result.loss)
    }
}
