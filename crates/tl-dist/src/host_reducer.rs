//! Reduction on the host: each bucket is downloaded, summed through a [`HostExchange`] (the
//! relay between CPU workers, or threads in tests) in f64, and uploaded again.

use crate::reducer::{ExchangeStats, ReduceError, Reducer};
use tl_backend::{Backend, HostTensor, Tensor};

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
