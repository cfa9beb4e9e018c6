//! Data-parallel training across processes, one per device: how gradients are summed over the
//! ranks ([`Reducer`], on the host or over NCCL), how a batch is shared among them ([`shard`]),
//! how gradients are grouped for the exchange ([`Buckets`]), and the processes themselves (the
//! [`launch`]er that starts and watches the workers, the [`relay`] between them, a worker's
//! [`Worker::join`]).
//!
//! It is a crate of its own so that the machinery of several processes stays apart from the
//! evaluation of programs: it knows tensors and the [`Backend`](tl_backend::Backend) trait, not
//! programs, and the training loop (`tl-run`) reaches it only through [`Reducer`] and
//! [`Buckets`]. The NCCL bindings themselves stay in `tl-backend` (`tl_backend::cuda::nccl`),
//! because a collective works on the CUDA backend's own stream and device memory, which that
//! crate keeps private.
#![deny(missing_docs)]
// Library code reports failures as errors; only tests may unwrap.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod buckets;
mod host_reducer;
mod launcher;
mod reducer;
pub mod relay;
mod shard;
mod worker;

pub use buckets::{Buckets, DEFAULT_BUCKET_BYTES};
pub use host_reducer::{HostExchange, HostReducer};
pub use launcher::launch;
pub use reducer::{stats_line, ExchangeStats, ReduceError, Reducer, SingleRank};
pub use shard::shard;
pub use worker::{Transport, Worker};
