//! Data-parallel training: several ranks (one process per device) run the same program from the
//! same seed, each takes its shard of every mini-batch, and their gradients are summed through a
//! [`Reducer`] so that every rank applies the same optimiser step to the same parameters.
//!
//! **Sharding.** Every rank draws the same shuffle, so all agree on the global batch of each
//! step (the `B` of `minimize … batch e B`). Rank `r` of `N` takes a contiguous slice of it
//! ([`shard`]): `B / N` examples, plus one for the first `B mod N` ranks.
//!
//! **Weights.** What the sum of the shards' gradients must equal is the gradient of the loss
//! over the whole batch, and that depends on how the loss combines examples ([`LossKind`]):
//!
//! - a mean over the batch index (`Loss avg= …e…`): the batch loss is
//!   `Σ_r (b_r / B) · L_r`, where `L_r` is the shard's own mean over its `b_r` examples, so
//!   rank `r` weighs its loss and gradients by `b_r / B`. This is exact for uneven shards (the
//!   last batch of an epoch, `B` not a multiple of `N`), and terms that do not depend on the
//!   batch (a weight penalty) are counted once, since the weights add up to 1;
//! - a sum over the batch index (`Loss = …e…`): the shards' sums add up, so every weight is 1;
//!   a term without the batch index would then count `N` times, so such losses are refused.
//!
//! The reduced loss (the same weighted sum) is what rank 0 reports, so the loss curve is the one
//! a single device would draw for the same global batch. Statistics over the batch computed
//! inside the model (an `avg=` over the batch index that feeds further equations) are taken per
//! shard, as in data-parallel training elsewhere.
//!
//! **Buckets.** Gradients are handed to the reducer in buckets ([`Buckets`]) of about
//! [`DEFAULT_BUCKET_BYTES`], last parameter first (the order a backward pass finishes them), so
//! a device reducer can run one collective per bucket instead of one per tensor.
//!
//! The reducers, shards and buckets are `tl-dist`'s; this module is the training loop's side:
//! how a `minimize` is split and weighed, and which rank answers.
//!
//! **One rank** ([`tl_dist::SingleRank`]) runs the same code with weight 1 and no arithmetic on the
//! gradients, so it gives bit-identical results to a run without data parallelism.

use crate::engine::Engine;
use crate::error::RunError;
use crate::observe::{Silent, TrainObserver};
use crate::pass_result::StepResult;
use crate::Answer;
use std::ops::Range;
use tl_backend::Calls;
use tl_backend::{Backend, Tensor};
use tl_check::learn::MinimizeSpec;
pub use tl_check::loss_kind::{loss_kind, LossKind};
use tl_check::{CheckedProgram, Command, DomainId, TensorId};
use tl_dist::{shard, Buckets, Reducer, DEFAULT_BUCKET_BYTES};
use tl_syntax::Span;

/// One rank's part in data-parallel training: its reducer and how the current `minimize`
/// weighs the shards.
pub struct DataParallel<'r> {
    reducer: &'r mut dyn Reducer,
    /// Gradient bytes per bucket handed to the reducer at once.
    pub bucket_bytes: usize,
    kind: LossKind,
}

impl<'r> DataParallel<'r> {
    /// This rank's side of a run over `reducer`.
    pub fn new(reducer: &'r mut dyn Reducer) -> Self {
        DataParallel {
            reducer,
            bucket_bytes: DEFAULT_BUCKET_BYTES,
            kind: LossKind::Mean,
        }
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.reducer.rank()
    }

    /// The number of ranks.
    pub fn world(&self) -> usize {
        self.reducer.world()
    }

    /// Whether this rank prints, writes files and checkpoints (rank 0).
    pub fn is_leader(&self) -> bool {
        self.rank() == 0
    }

    /// Checks that `spec` can be split across the ranks and settles the shards' weights.
    pub(crate) fn prepare(
        &mut self,
        program: &CheckedProgram,
        spec: &MinimizeSpec,
        batch: Option<DomainId>,
    ) -> Result<(), RunError> {
        let world = self.world();
        let name = &program.tensors[spec.loss].name;
        self.kind = match batch {
            Some(d) => loss_kind(program, spec.loss, d).map_err(|what| RunError::Unsupported {
                what: format!("cannot split `minimize {name}` across {world} ranks: {what}"),
                hint: Some("train it without `--gpus`, or average or sum the loss over the batch index".into()),
                span: spec.span,
            })?,
            None if world == 1 => LossKind::Mean,
            None => {
                return Err(RunError::Unsupported {
                    what: format!(
                        "`minimize {name}` has no `batch` clause, so there is nothing to split \
                         across {world} ranks"
                    ),
                    hint: Some(
                        "add `batch e N` (along the index of the examples) to the `minimize`, or train without `--gpus`"
                            .into(),
                    ),
                    span: spec.span,
                })
            }
        };
        Ok(())
    }

    /// The examples of a batch of `len` that this rank computes.
    pub(crate) fn shard(&self, len: usize) -> Range<usize> {
        shard(len, self.rank(), self.world())
    }

    /// The weight of this rank's shard: `rows.0` examples of a batch of `rows.1`.
    fn weight(&self, rows: (usize, usize)) -> f64 {
        match self.kind {
            LossKind::Sum => 1.0,
            LossKind::Mean if rows.1 == 0 => 1.0,
            LossKind::Mean => rows.0 as f64 / rows.1 as f64,
        }
    }

    /// Starts a step whose gradients are handed over one by one as the backward pass
    /// finishes them ([`DataParallel::offer`]), for `params` parameters computed from `rows.0`
    /// examples of a batch of `rows.1`.
    pub(crate) fn begin_streaming(&self, params: usize, rows: (usize, usize)) -> Buckets {
        Buckets::new(params, self.weight(rows), self.bucket_bytes)
    }

    /// Hands over parameter `k`'s finished gradient (see [`Buckets::offer`]).
    pub(crate) fn offer(
        &mut self,
        backend: &dyn Backend,
        s: &mut Buckets,
        k: usize,
        grad: Tensor,
        span: Span,
    ) -> Result<(), RunError> {
        s.offer(&mut *self.reducer, backend, k, grad)
            .map_err(|error| RunError::Parallel { error, span })
    }

    /// Ends a streamed step (see [`Buckets::finish`]): every rank's summed gradients in
    /// parameter order and the summed loss, still on the device.
    pub(crate) fn finish_streaming(
        &mut self,
        backend: &dyn Backend,
        s: Buckets,
        loss: &Tensor,
        span: Span,
    ) -> Result<(Vec<Tensor>, Tensor), RunError> {
        s.finish(&mut *self.reducer, backend, loss)
            .map_err(|error| RunError::Parallel { error, span })
    }
}

impl Engine<'_> {
    /// A step's result for a rank whose shard of the batch is empty: zero loss and zero
    /// gradients (its weight is 0).
    pub(crate) fn zero_step(
        &self,
        params: &[TensorId],
        span: Span,
    ) -> Result<StepResult, RunError> {
        let grads = params
            .iter()
            .map(|&p| {
                self.backend
                    .full(&self.shape(p), 0.0, self.dtype())
                    .map_err(|e| RunError::backend(e, span))
            })
            .collect::<Result<_, _>>()?;
        Ok(StepResult { loss: 0.0, grads })
    }

    /// [`Engine::run`] as one rank of a data-parallel run: every rank evaluates the program and
    /// trains in step with the others; only rank 0 answers queries (through `emit`), reports
    /// training to `observer`, writes files and checkpoints.
    pub fn run_parallel(
        &mut self,
        emit: &mut dyn FnMut(&Answer),
        observer: &mut dyn TrainObserver,
        dp: &mut DataParallel<'_>,
    ) -> Result<(), RunError> {
        let leader = dp.is_leader();
        let mut silent = Silent;
        let observer: &mut dyn TrainObserver = if leader { observer } else { &mut silent };
        self.evaluate_all()?;
        let program = self.program;
        for cmd in &program.commands {
            match cmd {
                Command::Query {
                    tensor,
                    args,
                    text,
                    span,
                } if leader => {
                    let a = self.answer(*tensor, args, text, *span)?;
                    emit(&a);
                }
                Command::Write {
                    path,
                    tensors,
                    delimiter,
                    span,
                } if leader => self.write(path, tensors, *delimiter, *span)?,
                Command::Query { .. } | Command::Write { .. } => {}
                Command::Minimize(m) => self.minimize_with(m, observer, Some(dp))?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
