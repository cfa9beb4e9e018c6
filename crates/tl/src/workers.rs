//! `tl run --gpus N`: data-parallel training with one worker process per GPU.
//!
//! The command first checks and compiles the program itself (so mistakes are reported once),
//! then becomes the launcher: it starts N copies of itself, each with `--rank r`, one GPU
//! (`CUDA_VISIBLE_DEVICES`), NCCL's NVLink multicast off (`NCCL_NVLS_ENABLE=0`) and a folder on
//! the library path where `libnccl.so` points at the NCCL library found on this machine. Rank 0
//! prints and writes files; the others are silent unless they fail. The launcher relays rank 0's
//! NCCL id to the others and watches them: when one exits with an error, or an exchange waits
//! past `--collective-timeout`, it stops every rank and reports the one that failed.
//!
//! With `--device cpu`, `--gpus N` starts N CPU workers instead, which send their gradients to
//! the launcher to be summed ([`tl_dist::relay`]): the same sharding, weighting and bucketing
//! code as over NCCL, runnable anywhere (tests). `--gpus 1` needs no communication and runs in
//! this process with one rank.
//!
//! The machinery itself (the launcher, the relay, the reducers) is `tl-dist`'s; this module is
//! the command line's side: the flags, the role they give this process, and its backend.

use crate::device::DeviceChoice;
use std::path::PathBuf;
use std::time::Duration;
use tl_backend::cpu::CpuBackend;
use tl_backend::cuda::nccl;
use tl_backend::cuda::CudaBackend;
use tl_backend::Backend;
use tl_dist::{Reducer, SingleRank, Transport, Worker};
use tl_syntax::Diagnostic;

pub use tl_dist::launch;

/// How many GPUs `--gpus` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuCount {
    /// Every GPU the driver reports.
    All,
    /// This many (at least 1).
    Count(usize),
}

fn parse_gpus(s: &str) -> Result<GpuCount, String> {
    if s == "all" {
        return Ok(GpuCount::All);
    }
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(GpuCount::Count(n)),
        _ => Err(format!(
            "expected a number of GPUs (1 or more) or `all`, got `{s}`"
        )),
    }
}

/// The data-parallel flags of `tl run`.
#[derive(clap::Args, Clone, Debug)]
pub struct ParallelArgs {
    /// Train data-parallel on N GPUs (one worker process each, gradients summed with NCCL), or
    /// on `all` of them; with `--device cpu`, on N CPU worker processes.
    #[arg(long, value_name = "N|all", value_parser = parse_gpus)]
    pub gpus: Option<GpuCount>,
    /// Seconds a rank waits for the others (joining, and at each gradient exchange) before the
    /// run stops with an error.
    #[arg(long, value_name = "SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub collective_timeout: u64,
    /// With `--gpus N`: print how many gradient bytes were all-reduced, in how long, and the
    /// bandwidth, at the end of the run.
    #[arg(long)]
    pub comm_stats: bool,
    /// This process's rank (set by the launcher).
    #[arg(long, hide = true, requires_all = ["world", "coordinator", "transport"])]
    pub rank: Option<usize>,
    /// Number of ranks (set by the launcher).
    #[arg(long, hide = true)]
    pub world: Option<usize>,
    /// The launcher's socket (set by the launcher).
    #[arg(long, hide = true)]
    pub coordinator: Option<PathBuf>,
    /// How ranks exchange gradients (set by the launcher).
    #[arg(long, hide = true, value_enum)]
    pub transport: Option<Transport>,
}

/// What this `tl run` process does.
#[derive(Clone, Debug)]
pub enum Role {
    /// An ordinary run.
    Plain,
    /// `--gpus 1`: the data-parallel code path with one rank, in this process.
    Single,
    /// Start `world` workers and watch them.
    Launch {
        /// Number of workers.
        world: usize,
        /// How they exchange gradients.
        transport: Transport,
        /// Their collective timeout.
        timeout: Duration,
    },
    /// A worker started by the launcher.
    Worker(Worker),
}

fn gpus_error(message: String, help: &str) -> Box<Diagnostic> {
    Box::new(Diagnostic::spanless("TL0405", message).with_help(help.to_string()))
}

impl Role {
    /// The role the flags ask for. `--gpus all` and GPU counts are checked against the driver.
    pub fn of(args: &ParallelArgs, device: DeviceChoice) -> Result<Role, Box<Diagnostic>> {
        let timeout = Duration::from_secs(args.collective_timeout);
        if let Some(rank) = args.rank {
            return match (args.world, &args.coordinator, args.transport) {
                (Some(world), Some(c), Some(transport)) if rank < world => {
                    Ok(Role::Worker(Worker {
                        rank,
                        world,
                        transport,
                        coordinator: c.clone(),
                        timeout,
                    }))
                }
                _ => Err(gpus_error(
                    "`--rank` is set by `tl run --gpus N` for its workers".into(),
                    "run `tl run --gpus N FILE` instead",
                )),
            };
        }
        let Some(gpus) = args.gpus else {
            return Ok(Role::Plain);
        };
        if device == DeviceChoice::Cpu {
            return match gpus {
                GpuCount::All => Err(gpus_error(
                    "`--gpus all` with `--device cpu`: there are no GPUs to count".into(),
                    "give a number of CPU workers, e.g. `--device cpu --gpus 2`",
                )),
                GpuCount::Count(1) => Ok(Role::Single),
                GpuCount::Count(n) => Ok(Role::Launch {
                    world: n,
                    transport: Transport::Relay,
                    timeout,
                }),
            };
        }
        let flag = match gpus {
            GpuCount::All => "--gpus all".to_string(),
            GpuCount::Count(n) => format!("--gpus {n}"),
        };
        let count = nccl::device_count().map_err(|why| {
            gpus_error(
                format!("`{flag}`: no usable GPU ({why})"),
                "`--device cpu --gpus N` trains with N CPU worker processes instead",
            )
        })?;
        let n = match gpus {
            GpuCount::All => count,
            GpuCount::Count(n) => n,
        };
        if n == 0 || n > count {
            return Err(gpus_error(
                format!("`{flag}`: this machine has {count} GPU(s)"),
                "ask for at most that many, or `--gpus all`",
            ));
        }
        Ok(if n == 1 {
            Role::Single
        } else {
            Role::Launch {
                world: n,
                transport: Transport::Nccl,
                timeout,
            }
        })
    }

    /// Whether this process prints, writes files and shows training progress.
    pub fn is_leader(&self) -> bool {
        match self {
            Role::Worker(w) => w.rank == 0,
            _ => true,
        }
    }
}

/// The backend a process computes on: chosen by `--device`, or the worker's GPU.
pub enum Opened {
    /// Any backend (a plain run, `--gpus 1`, CPU workers).
    Any(Box<dyn Backend>),
    /// A GPU worker's device, kept concrete for NCCL.
    Cuda(Box<CudaBackend>),
}

impl Opened {
    /// The backend to run on.
    pub fn backend(&self) -> &dyn Backend {
        match self {
            Opened::Any(b) => b.as_ref(),
            Opened::Cuda(c) => c.as_ref(),
        }
    }
}

/// Opens the backend for `role`: a GPU worker opens the one GPU the launcher gave it.
pub fn open(device: DeviceChoice, role: &Role) -> Result<Opened, Box<Diagnostic>> {
    match role {
        Role::Worker(w) if w.transport == Transport::Nccl => match CudaBackend::open() {
            Ok(be) => Ok(Opened::Cuda(Box::new(be))),
            Err(why) => Err(Box::new(
                Diagnostic::spanless(
                    "TL0401",
                    format!("rank {}: the CUDA engine is unavailable: {why}", w.rank),
                )
                .with_help("every GPU of a `--gpus` run needs the CUDA driver, NVRTC and cuBLAS"),
            )),
        },
        Role::Worker(_) => Ok(Opened::Any(Box::new(CpuBackend::new()))),
        _ => crate::device::open(device).map(Opened::Any),
    }
}

/// The reducer of this process's rank: none for a plain run, one rank for `--gpus 1`, and for
/// a worker a connection to the launcher (and NCCL on GPUs).
pub fn connect<'a>(
    role: &Role,
    opened: &'a Opened,
) -> Result<Option<Box<dyn Reducer + 'a>>, Box<Diagnostic>> {
    match role {
        Role::Plain | Role::Launch { .. } => Ok(None),
        Role::Single => Ok(Some(Box::new(SingleRank::default()))),
        Role::Worker(w) => {
            let cuda = match opened {
                Opened::Cuda(c) => Some(c.as_ref()),
                Opened::Any(_) => None,
            };
            w.join(cuda).map(Some)
        }
    }
}
