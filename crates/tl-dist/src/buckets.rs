//! Gradients grouped for the exchange: the backward pass hands each parameter's gradient over
//! as soon as it is final, and a bucket of about [`DEFAULT_BUCKET_BYTES`] starts summing across
//! the ranks as soon as it is full, so the sums overlap the rest of the backward pass and a
//! device reducer runs one collective per bucket instead of one per tensor.

use crate::reducer::{ReduceError, Reducer};
use tl_backend::Calls;
use tl_backend::{Backend, BinaryFn, DType, MapExpr, Tensor};

/// Gradient bytes per bucket handed to the reducer at once (PyTorch DDP's default, 25 MiB).
pub const DEFAULT_BUCKET_BYTES: usize = 25 << 20;

/// One step's gradients on their way through a [`Reducer`]: the shard's weight, the bucket
/// being filled, and the parameters of each bucket already started.
pub struct Buckets {
    weight: f64,
    limit: usize,
    bucket: Vec<(usize, Tensor)>,
    bytes: usize,
    started: Vec<Vec<usize>>,
    params: usize,
}

/// `weight · x` as a map of one input.
fn scaled(weight: f64) -> MapExpr {
    MapExpr::Binary(
        BinaryFn::Mul,
        Box::new(MapExpr::Const(weight)),
        Box::new(MapExpr::Input(0)),
    )
}

impl Buckets {
    /// A step over `params` parameters whose gradients and loss are multiplied by `weight`
    /// before they are summed, in buckets of about `limit` bytes.
    pub fn new(params: usize, weight: f64, limit: usize) -> Self {
        Buckets {
            weight,
            limit,
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
    pub fn offer(
        &mut self,
        reducer: &mut dyn Reducer,
        backend: &dyn Backend,
        k: usize,
        grad: Tensor,
    ) -> Result<(), ReduceError> {
        let rank = reducer.rank();
        let g = if self.weight == 1.0 {
            grad
        } else {
            backend
                .map(&scaled(self.weight), &[&grad], grad.shape(), grad.dtype)
                .map_err(|error| ReduceError::Backend { rank, error })?
        };
        let bytes = g.numel() * g.dtype.size();
        if self.bytes > 0 && self.bytes + bytes > self.limit {
            self.start_bucket(reducer, backend)?;
        }
        self.bytes += bytes;
        self.bucket.push((k, g));
        Ok(())
    }

    fn start_bucket(
        &mut self,
        reducer: &mut dyn Reducer,
        backend: &dyn Backend,
    ) -> Result<(), ReduceError> {
        let (ks, tensors): (Vec<usize>, Vec<Tensor>) =
            std::mem::take(&mut self.bucket).into_iter().unzip();
        self.bytes = 0;
        self.started.push(ks);
        reducer.start(backend, tensors)
    }

    /// Ends the step: the weighted local loss (a device scalar) rides in the last bucket;
    /// returns every rank's summed gradients in parameter order and the summed loss, still on
    /// the device.
    pub fn finish(
        mut self,
        reducer: &mut dyn Reducer,
        backend: &dyn Backend,
        loss: &Tensor,
    ) -> Result<(Vec<Tensor>, Tensor), ReduceError> {
        let rank = reducer.rank();
        let weighted = backend
            .map(&scaled(self.weight), &[loss], &[], DType::F64)
            .map_err(|error| ReduceError::Backend { rank, error })?;
        let params = self.params;
        self.bucket.push((params, weighted));
        self.start_bucket(reducer, backend)?;
        let sums = reducer.finish(backend)?;
        let mut out: Vec<Option<Tensor>> = vec![None; params + 1];
        if sums.len() != self.started.len()
            || sums
                .iter()
                .zip(&self.started)
                .any(|(t, ks)| t.len() != ks.len())
        {
            return Err(ReduceError::Mismatch {
                rank,
                detail: "the reducer returned a different number of tensors than it was given"
                    .into(),
            });
        }
        for (ks, ts) in self.started.iter().zip(sums) {
            for (&k, t) in ks.iter().zip(ts) {
                out[k] = Some(t);
            }
        }
        let loss_sum = out.pop().flatten();
        match (loss_sum, out.into_iter().collect::<Option<Vec<Tensor>>>()) {
            (Some(l), Some(grads)) => Ok((grads, l)),
            _ => Err(ReduceError::Mismatch {
                rank,
                detail: "a gradient was never handed to the reducer".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reducer::SingleRank;
    use tl_backend::cpu::CpuBackend;
    use tl_backend::HostTensor;

    /// Counts the buckets a reducer is given, summing nothing (one rank).
    #[derive(Default)]
    struct Counting {
        inner: SingleRank,
        sizes: Vec<usize>,
    }

    impl Reducer for Counting {
        fn rank(&self) -> usize {
            0
        }
        fn world(&self) -> usize {
            1
        }
        fn start(&mut self, backend: &dyn Backend, bucket: Vec<Tensor>) -> Result<(), ReduceError> {
            self.sizes.push(bucket.len());
            self.inner.start(backend, bucket)
        }
        fn finish(&mut self, backend: &dyn Backend) -> Result<Vec<Vec<Tensor>>, ReduceError> {
            self.inner.finish(backend)
        }
    }

    fn values(backend: &CpuBackend, t: &Tensor) -> Vec<f64> {
        backend.download(t).unwrap().data.to_f64()
    }

    #[test]
    fn gradients_come_back_weighted_in_parameter_order() {
        let backend = CpuBackend::new();
        let up = |v: Vec<f64>| {
            let n = v.len();
            backend
                .upload(&HostTensor::from_f64(vec![n], v, DType::F64))
                .unwrap()
        };
        let mut reducer = Counting::default();
        // Two f64 elements (16 bytes) fill a bucket of 20 bytes.
        let mut b = Buckets::new(3, 0.5, 20);
        b.offer(&mut reducer, &backend, 2, up(vec![2.0, 4.0]))
            .unwrap();
        b.offer(&mut reducer, &backend, 0, up(vec![6.0])).unwrap();
        b.offer(&mut reducer, &backend, 1, up(vec![8.0])).unwrap();
        let loss = backend
            .upload(&HostTensor::from_f64(vec![], vec![10.0], DType::F64))
            .unwrap();
        let (grads, sum) = b.finish(&mut reducer, &backend, &loss).unwrap();
        assert_eq!(reducer.sizes, [1, 3]);
        let got: Vec<Vec<f64>> = grads.iter().map(|g| values(&backend, g)).collect();
        assert_eq!(got, [vec![3.0], vec![4.0], vec![1.0, 2.0]]);
        assert_eq!(values(&backend, &sum), [5.0]);
    }

    #[test]
    fn a_gradient_never_offered_is_a_mismatch() {
        let backend = CpuBackend::new();
        let mut reducer = SingleRank::default();
        let b = Buckets::new(1, 1.0, DEFAULT_BUCKET_BYTES);
        let loss = backend.full(&[], 1.0, DType::F64).unwrap();
        let e = b.finish(&mut reducer, &backend, &loss).err().unwrap();
        assert!(matches!(e, ReduceError::Mismatch { rank: 0, .. }), "{e:?}");
    }
}
