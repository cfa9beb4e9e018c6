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
//! **Buckets.** Gradients are handed to the reducer in buckets of about
//! [`DEFAULT_BUCKET_BYTES`], last parameter first (the order a backward pass finishes them), so
//! a device reducer can run one collective per bucket instead of one per tensor.
//!
//! **One rank** ([`SingleRank`]) runs the same code with weight 1 and no arithmetic on the
//! gradients, so it gives bit-identical results to a run without data parallelism.

use crate::engine::Engine;
use crate::error::RunError;
use crate::observe::{Silent, TrainObserver};
use crate::train::StepResult;
use crate::Answer;
use std::ops::Range;
use tl_backend::Calls;
use tl_backend::{Backend, BackendError, BinaryFn, DType, HostTensor, MapExpr, Tensor};
use tl_check::learn::MinimizeSpec;
pub use tl_check::loss_kind::{loss_kind, LossKind};
use tl_check::{CheckedProgram, Command, DomainId, TensorId};
use tl_syntax::Span;

/// Gradient bytes per bucket handed to the reducer at once (PyTorch DDP's default, 25 MiB).
pub const DEFAULT_BUCKET_BYTES: usize = 25 << 20;

/// Why an exchange between ranks failed. Every variant names the rank it concerns, so that the
/// user learns which worker to look at.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReduceError {
    /// Another rank stopped (its process exited or its connection closed).
    #[error("rank {rank} stopped: {detail}")]
    Lost {
        /// The rank that stopped.
        rank: usize,
        /// What was seen (exit status, closed connection).
        detail: String,
    },
    /// A collective did not complete in time.
    #[error("rank {rank} waited more than {seconds} s for {what}")]
    Timeout {
        /// The rank that gave up waiting.
        rank: usize,
        /// What it waited for.
        what: String,
        /// The limit.
        seconds: u64,
    },
    /// The ranks handed in different things (a different program, or a bug).
    #[error("rank {rank}: the ranks disagree: {detail}")]
    Mismatch {
        /// The rank that noticed.
        rank: usize,
        /// What differs.
        detail: String,
    },
    /// The communication library or channel failed.
    #[error("rank {rank}: {detail}")]
    Transport {
        /// The rank where it failed.
        rank: usize,
        /// The library's message.
        detail: String,
    },
    /// The device failed while preparing or reading back a bucket.
    #[error("rank {rank}: {error}")]
    Backend {
        /// The rank where it failed.
        rank: usize,
        /// The backend's error.
        error: BackendError,
    },
}

/// What a reducer measured of its exchanges (`tl run --comm-stats`): buckets summed, their
/// bytes on this rank, and the seconds spent exchanging them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ExchangeStats {
    /// Buckets summed.
    pub buckets: u64,
    /// Bytes of the tensors summed, on this rank.
    pub bytes: u64,
    /// Seconds the exchanges took (for NCCL: on the communication stream, including the wait
    /// for the slowest rank to join each collective).
    pub seconds: f64,
}

/// Sums tensors element-wise over every rank of a data-parallel run. The training loop only
/// talks to this trait, so the same sharding and weighting code runs over NCCL on GPUs and over
/// a host channel between CPU workers.
pub trait Reducer {
    /// This process's rank, `0..world()`; rank 0 alone prints and writes files.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn world(&self) -> usize;
    /// Starts summing one bucket over all ranks. The reducer owns the tensors until
    /// [`Reducer::finish`] hands them back summed. Every rank starts the same buckets, with the
    /// same shapes and element types, in the same order.
    fn start(&mut self, backend: &dyn Backend, bucket: Vec<Tensor>) -> Result<(), ReduceError>;
    /// Waits for every started bucket; returns the sums, bucket by bucket, in start order.
    /// Every rank receives the same values, bit for bit.
    fn finish(&mut self, backend: &dyn Backend) -> Result<Vec<Vec<Tensor>>, ReduceError>;
    /// What the exchanges so far cost, if the reducer measures it.
    fn stats(&self) -> Option<ExchangeStats> {
        None
    }
}

/// The reducer of a run with one rank: the sum over one rank is the tensor itself.
#[derive(Debug, Default)]
pub struct SingleRank {
    pending: Vec<Vec<Tensor>>,
}

impl Reducer for SingleRank {
    fn rank(&self) -> usize {
        0
    }
    fn world(&self) -> usize {
        1
    }
    fn start(&mut self, _backend: &dyn Backend, bucket: Vec<Tensor>) -> Result<(), ReduceError> {
        self.pending.push(bucket);
        Ok(())
    }
    fn finish(&mut self, _backend: &dyn Backend) -> Result<Vec<Vec<Tensor>>, ReduceError> {
        Ok(std::mem::take(&mut self.pending))
    }
}

/// Sums flat vectors of numbers over all ranks, on the host: the part of a host reducer that
/// moves data between ranks (a channel to a coordinating process, or threads in tests).
pub trait HostExchange {
    /// This process's rank.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn world(&self) -> usize;
    /// The element-wise sum of `data` over all ranks, added in rank order (so every rank gets
    /// the same bits).
    fn sum(&mut self, data: Vec<f64>) -> Result<Vec<f64>, ReduceError>;
}

/// A [`Reducer`] that downloads each bucket, sums it through a [`HostExchange`] in f64, and
/// uploads the sums in each tensor's element type. Slow, simple and exact enough for CPU
/// workers and tests; GPUs use NCCL instead.
pub struct HostReducer<X: HostExchange> {
    exchange: X,
    done: Vec<Vec<Tensor>>,
    stats: ExchangeStats,
}

impl<X: HostExchange> HostReducer<X> {
    /// A reducer over `exchange`.
    pub fn new(exchange: X) -> Self {
        HostReducer {
            exchange,
            done: Vec::new(),
            stats: ExchangeStats::default(),
        }
    }
}

impl<X: HostExchange> Reducer for HostReducer<X> {
    fn rank(&self) -> usize {
        self.exchange.rank()
    }
    fn world(&self) -> usize {
        self.exchange.world()
    }
    fn start(&mut self, backend: &dyn Backend, bucket: Vec<Tensor>) -> Result<(), ReduceError> {
        let rank = self.rank();
        let err = |error| ReduceError::Backend { rank, error };
        let mut flat = Vec::new();
        let mut parts = Vec::with_capacity(bucket.len());
        for t in &bucket {
            let host = backend.download(t).map_err(err)?;
            parts.push((host.shape.clone(), host.dtype()));
            flat.extend(host.data.to_f64());
        }
        let total = flat.len();
        let began = std::time::Instant::now();
        let sum = self.exchange.sum(flat)?;
        self.stats.buckets += 1;
        self.stats.seconds += began.elapsed().as_secs_f64();
        self.stats.bytes += bucket
            .iter()
            .map(|t| (t.numel() * t.dtype.size()) as u64)
            .sum::<u64>();
        if sum.len() != total {
            return Err(ReduceError::Mismatch {
                rank,
                detail: format!(
                    "this rank sent {total} numbers and received {} back",
                    sum.len()
                ),
            });
        }
        let mut out = Vec::with_capacity(parts.len());
        let mut at = 0;
        for (shape, dtype) in parts {
            let n: usize = shape.iter().product();
            let host = HostTensor::from_f64(shape, sum[at..at + n].to_vec(), dtype);
            at += n;
            out.push(backend.upload(&host).map_err(err)?);
        }
        self.done.push(out);
        Ok(())
    }
    fn finish(&mut self, _backend: &dyn Backend) -> Result<Vec<Vec<Tensor>>, ReduceError> {
        Ok(std::mem::take(&mut self.done))
    }
    fn stats(&self) -> Option<ExchangeStats> {
        Some(self.stats)
    }
}

/// The examples rank `rank` of `world` takes from a batch of `len`: a contiguous range, the
/// first `len % world` ranks one example longer than the others.
pub fn shard(len: usize, rank: usize, world: usize) -> Range<usize> {
    let world = world.max(1);
    let (base, extra) = (len / world, len % world);
    let start = rank * base + rank.min(extra);
    let size = base + usize::from(rank < extra);
    start.min(len)..(start + size).min(len)
}

/// A data-parallel step in progress (see [`DataParallel::begin_streaming`]): the shard's
/// weight, the bucket being filled, and the parameters of each bucket already started.
pub(crate) struct Streaming {
    weight: f64,
    bucket: Vec<(usize, Tensor)>,
    bytes: usize,
    started: Vec<Vec<usize>>,
    params: usize,
}

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
    pub(crate) fn begin_streaming(&self, params: usize, rows: (usize, usize)) -> Streaming {
        Streaming {
            weight: self.weight(rows),
            bucket: Vec::new(),
            bytes: 0,
            started: Vec::new(),
            params,
        }
    }

    /// Hands over parameter `k`'s finished gradient (weighted by the shard); a full bucket
    /// starts summing across the ranks at once, on the reducer's own stream, while the
    /// backward pass goes on. Every rank finishes the parameters in the same order (the same
    /// program), so the buckets match.
    pub(crate) fn offer(
        &mut self,
        backend: &dyn Backend,
        s: &mut Streaming,
        k: usize,
        grad: Tensor,
        span: Span,
    ) -> Result<(), RunError> {
        let rank = self.rank();
        let fail = |error: ReduceError| RunError::Parallel { error, span };
        let g = if s.weight == 1.0 {
            grad
        } else {
            let scale = MapExpr::Binary(
                BinaryFn::Mul,
                Box::new(MapExpr::Const(s.weight)),
                Box::new(MapExpr::Input(0)),
            );
            backend
                .map(&scale, &[&grad], grad.shape(), grad.dtype)
                .map_err(|error| fail(ReduceError::Backend { rank, error }))?
        };
        let bytes = g.numel() * g.dtype.size();
        if s.bytes > 0 && s.bytes + bytes > self.bucket_bytes {
            self.start_bucket(backend, s, span)?;
        }
        s.bytes += bytes;
        s.bucket.push((k, g));
        Ok(())
    }

    fn start_bucket(
        &mut self,
        backend: &dyn Backend,
        s: &mut Streaming,
        span: Span,
    ) -> Result<(), RunError> {
        let (ks, tensors): (Vec<usize>, Vec<Tensor>) =
            std::mem::take(&mut s.bucket).into_iter().unzip();
        s.bytes = 0;
        s.started.push(ks);
        self.reducer
            .start(backend, tensors)
            .map_err(|error| RunError::Parallel { error, span })
    }

    /// Ends a streamed step: the weighted local loss (a device scalar) rides in the last
    /// bucket; returns every rank's summed gradients in parameter order and the summed loss,
    /// still on the device.
    pub(crate) fn finish_streaming(
        &mut self,
        backend: &dyn Backend,
        mut s: Streaming,
        loss: &Tensor,
        span: Span,
    ) -> Result<(Vec<Tensor>, Tensor), RunError> {
        let rank = self.rank();
        let fail = |error: ReduceError| RunError::Parallel { error, span };
        let dev = |error: BackendError| fail(ReduceError::Backend { rank, error });
        let scale = MapExpr::Binary(
            BinaryFn::Mul,
            Box::new(MapExpr::Const(s.weight)),
            Box::new(MapExpr::Input(0)),
        );
        let weighted = backend.map(&scale, &[loss], &[], DType::F64).map_err(dev)?;
        let params = s.params;
        s.bucket.push((params, weighted));
        self.start_bucket(backend, &mut s, span)?;
        let sums = self.reducer.finish(backend).map_err(fail)?;
        let mut out: Vec<Option<Tensor>> = vec![None; params + 1];
        if sums.len() != s.started.len()
            || sums
                .iter()
                .zip(&s.started)
                .any(|(t, ks)| t.len() != ks.len())
        {
            return Err(fail(ReduceError::Mismatch {
                rank,
                detail: "the reducer returned a different number of tensors than it was given"
                    .into(),
            }));
        }
        for (ks, ts) in s.started.iter().zip(sums) {
            for (&k, t) in ks.iter().zip(ts) {
                out[k] = Some(t);
            }
        }
        let loss_sum = out.pop().flatten();
        match (loss_sum, out.into_iter().collect::<Option<Vec<Tensor>>>()) {
            (Some(l), Some(grads)) => Ok((grads, l)),
            _ => Err(fail(ReduceError::Mismatch {
                rank,
                detail: "a gradient was never handed to the reducer".into(),
            })),
        }
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
