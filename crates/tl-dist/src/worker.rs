//! A worker's side of a launched run: it connects to the launcher, says which rank it is, and
//! gets its [`Reducer`]: the relay's host sums for CPU workers, NCCL for GPU workers (rank 0's
//! communicator id handed to the others through the launcher).

use crate::host_reducer::HostReducer;
use crate::reducer::{ExchangeStats, ReduceError, Reducer};
use crate::relay::{Frame, RelayExchange};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;
use tl_backend::cuda::nccl::{self, NcclComm, NcclError};
use tl_backend::cuda::CudaBackend;
use tl_backend::{Backend, Tensor};
use tl_syntax::Diagnostic;

/// How ranks exchange gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Transport {
    /// NCCL between GPUs.
    Nccl,
    /// Through the launcher, on the host (CPU workers).
    Relay,
}

/// One worker of a launched run, as the launcher described it on its command line.
#[derive(Clone, Debug)]
pub struct Worker {
    /// This process's rank, `0..world`.
    pub rank: usize,
    /// The number of ranks.
    pub world: usize,
    /// How the ranks exchange gradients.
    pub transport: Transport,
    /// The launcher's socket.
    pub coordinator: PathBuf,
    /// How long a rank waits for the others.
    pub timeout: Duration,
}

/// Sums gradients over NCCL: the [`Reducer`] of GPU workers.
struct NcclReducer<'b> {
    comm: NcclComm<'b>,
}

fn reduce_error(rank: usize, e: NcclError) -> ReduceError {
    match e {
        NcclError::Timeout { what, seconds } => ReduceError::Timeout {
            rank,
            what,
            seconds,
        },
        other => ReduceError::Transport {
            rank,
            detail: other.to_string(),
        },
    }
}

impl Reducer for NcclReducer<'_> {
    fn rank(&self) -> usize {
        self.comm.rank()
    }
    fn world(&self) -> usize {
        self.comm.world()
    }
    fn start(&mut self, _backend: &dyn Backend, bucket: Vec<Tensor>) -> Result<(), ReduceError> {
        let rank = self.rank();
        self.comm.start(bucket).map_err(|e| reduce_error(rank, e))
    }
    fn finish(&mut self, _backend: &dyn Backend) -> Result<Vec<Vec<Tensor>>, ReduceError> {
        let rank = self.rank();
        self.comm.wait().map_err(|e| reduce_error(rank, e))
    }
    fn stats(&self) -> Option<ExchangeStats> {
        let s = self.comm.stats();
        Some(ExchangeStats {
            buckets: s.groups,
            bytes: s.bytes,
            seconds: s.seconds,
        })
    }
}

fn worker_error(rank: usize, what: String, help: &str) -> Box<Diagnostic> {
    Box::new(
        Diagnostic::spanless("TL0406", format!("rank {rank}: {what}")).with_help(help.to_string()),
    )
}

impl Worker {
    /// Joins the run: connects to the launcher and returns this rank's reducer. A GPU worker
    /// (NCCL) needs its device, `cuda`; a CPU worker sums through the launcher.
    pub fn join<'b>(
        &self,
        cuda: Option<&'b CudaBackend>,
    ) -> Result<Box<dyn Reducer + 'b>, Box<Diagnostic>> {
        let rank = self.rank;
        let lost = |e: std::io::Error| {
            worker_error(
                rank,
                format!(
                    "cannot reach the launcher at {}: {e}",
                    self.coordinator.display()
                ),
                "workers are started by `tl run --gpus N`; another rank may have stopped",
            )
        };
        let mut stream = UnixStream::connect(&self.coordinator).map_err(lost)?;
        Frame::Hello(rank as u32).write(&mut stream).map_err(lost)?;
        if self.transport == Transport::Relay {
            let exchange = RelayExchange::new(stream, rank, self.world, self.timeout);
            return Ok(Box::new(HostReducer::new(exchange)));
        }
        let Some(cuda) = cuda else {
            return Err(worker_error(
                rank,
                "an NCCL worker has no GPU".into(),
                "run on a GPU machine",
            ));
        };
        let nccl_help =
            "install NCCL (PyTorch's wheels bundle it as nvidia/nccl/lib/libnccl.so.2) or \
                         point TL_NCCL_LIBRARY at libnccl.so.2";
        if !nccl::library_loads() {
            return Err(worker_error(
                rank,
                "the NCCL library does not load".into(),
                nccl_help,
            ));
        }
        let id = if rank == 0 {
            let id = nccl::unique_id().map_err(|e| worker_error(rank, e.to_string(), nccl_help))?;
            Frame::NcclId(Box::new(id))
                .write(&mut stream)
                .map_err(lost)?;
            id
        } else {
            stream.set_read_timeout(Some(self.timeout)).map_err(lost)?;
            match Frame::read(&mut stream) {
                Ok(Frame::NcclId(id)) => *id,
                Ok(other) => {
                    return Err(worker_error(
                        rank,
                        format!("unexpected message {other:?}"),
                        nccl_help,
                    ))
                }
                Err(e) => return Err(lost(e)),
            }
        };
        let comm = NcclComm::new(cuda, rank, self.world, &id, self.timeout).map_err(|e| {
            worker_error(
                rank,
                e.to_string(),
                "every rank must start; raise `--collective-timeout` if start-up is slow",
            )
        })?;
        // The launcher's connection stays open while the run lasts; when it closes, the
        // launcher has stopped, and so does this worker (rather than wait on ranks that are
        // gone).
        let _ = stream.set_read_timeout(None);
        std::thread::spawn(move || {
            let mut stream = stream;
            while Frame::read(&mut stream).is_ok() {}
            eprintln!("tl: rank {rank}: the launcher has stopped; stopping too");
            std::process::exit(1);
        });
        Ok(Box::new(NcclReducer { comm }))
    }
}
