//! The one interface between the training loop and the ranks: a [`Reducer`] sums buckets of
//! tensors over every rank. [`SingleRank`] is the reducer of a run with one rank; the host
//! reducer, the relay and NCCL provide the others.

use tl_backend::{Backend, BackendError, Tensor};

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

/// The `--comm-stats` line: how much was all-reduced and at what bandwidth. The bus bandwidth
/// is NCCL's measure for all-reduce, the algorithm bandwidth times `2 (N - 1) / N`.
pub fn stats_line(s: &ExchangeStats, world: usize) -> String {
    let gb = s.bytes as f64 / 1e9;
    let alg = if s.seconds > 0.0 { gb / s.seconds } else { 0.0 };
    let bus = alg * 2.0 * (world.saturating_sub(1)) as f64 / world.max(1) as f64;
    format!(
        "tl: gradient all-reduce over {world} ranks: {} buckets, {gb:.3} GB in {:.3} s \
         ({alg:.1} GB/s algorithm bandwidth, {bus:.1} GB/s bus bandwidth)",
        s.buckets, s.seconds
    )
}
