//! NCCL collectives over the CUDA backend's tensors, for data-parallel training with one
//! process per GPU.
//!
//! NCCL is reached through cudarc's `nccl` module, loaded at run time like the rest of CUDA, so
//! nothing here is needed to build. cudarc panics when a library it loads is missing, so callers
//! probe first ([`library_loads`]); cudarc looks for `libnccl.so` by name, while NCCL installs
//! as `libnccl.so.2` (PyTorch's wheels put it in `site-packages/nvidia/nccl/lib/`), so
//! [`find_library`] locates the file and the launcher puts a folder with a `libnccl.so` link to
//! it on the workers' library path.
//!
//! A [`NcclComm`] sums buckets of gradients with one grouped `ncclAllReduce` per bucket, on a
//! stream of its own that waits for the compute stream, so buckets are reduced while the
//! device goes on with other work. Every wait is bounded: communicator set-up and collectives
//! give up after a timeout, and an asynchronous NCCL error (a peer that vanished) is reported
//! instead of waited on. NVLink multicast (NVLS) is left to the launcher to switch off
//! (`NCCL_NVLS_ENABLE=0`); nothing here creates multicast objects.

use super::CudaBackend;
use crate::dtype::DType;
use crate::ops::MapExpr;
use crate::tensor::{Storage, Tensor};
use crate::Calls;
use cudarc::driver::{CudaEvent, CudaStream};
use cudarc::nccl::{result as nres, sys as nsys};
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Environment variable naming the NCCL library file to use (e.g.
/// `/opt/nccl/lib/libnccl.so.2`); it takes precedence over the search of [`find_library`].
pub const LIBRARY_ENV: &str = "TL_NCCL_LIBRARY";

/// Why an NCCL operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NcclError {
    /// No NCCL library was found or it does not load.
    #[error("the NCCL library (libnccl.so.2) was not found; looked in: {searched}")]
    NotFound {
        /// The places searched.
        searched: String,
    },
    /// An NCCL or CUDA call returned an error.
    #[error("{call} failed: {detail}")]
    Call {
        /// The call.
        call: &'static str,
        /// NCCL's own description of the error.
        detail: String,
    },
    /// Set-up or a collective did not complete within the timeout.
    #[error("{what} did not complete within {seconds} s")]
    Timeout {
        /// What was waited for.
        what: String,
        /// The limit.
        seconds: u64,
    },
    /// A tensor NCCL cannot reduce (an element type it has no sum for).
    #[error("cannot all-reduce a tensor of {0}")]
    Unsupported(DType),
}

/// Whether the NCCL library loads under the names cudarc tries. Must be true before any other
/// function of this module is called.
pub fn library_loads() -> bool {
    // SAFETY: only tries to open the shared library and closes it again.
    unsafe { nsys::is_culib_present() }
}

/// The folders searched for `libnccl.so.2`, in order: the folder of `$TL_NCCL_LIBRARY`'s file,
/// `$LD_LIBRARY_PATH`, `nvidia/nccl/lib` under python3's site-packages folders (PyTorch's
/// wheels), then the usual system folders.
fn search_folders() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("LD_LIBRARY_PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    let python = std::process::Command::new("python3")
        .args([
            "-c",
            "import site, sys; print('\\n'.join(site.getsitepackages() + [site.getusersitepackages()] + sys.path))",
        ])
        .stderr(std::process::Stdio::null())
        .output();
    if let Ok(out) = python {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let line = line.trim();
            if !line.is_empty() {
                dirs.push(Path::new(line).join("nvidia/nccl/lib"));
            }
        }
    }
    for d in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/lib",
        "/usr/local/cuda/lib64",
        "/opt/conda/lib",
    ] {
        dirs.push(PathBuf::from(d));
    }
    let mut seen = Vec::new();
    dirs.retain(|d| {
        let keep = !seen.contains(d);
        seen.push(d.clone());
        keep
    });
    dirs
}

/// Finds the NCCL library file: `$TL_NCCL_LIBRARY` if set (it must exist), else the first
/// `libnccl.so.2` or `libnccl.so` in the folders of [`search_folders`]. The error lists every
/// place looked at.
pub fn find_library() -> Result<PathBuf, NcclError> {
    if let Some(p) = std::env::var_os(LIBRARY_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(NcclError::NotFound {
                searched: format!("${LIBRARY_ENV} = {} (no such file)", p.display()),
            })
        };
    }
    let dirs = search_folders();
    for d in &dirs {
        for name in ["libnccl.so.2", "libnccl.so"] {
            let p = d.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(NcclError::NotFound {
        searched: format!(
            "${LIBRARY_ENV} (unset), {}",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// The number of CUDA devices the driver reports (what `--gpus all` means); the reason when
/// the driver does not load or has none.
pub fn device_count() -> Result<usize, super::Unavailable> {
    if super::disabled() {
        return Err(super::Unavailable::Disabled);
    }
    // SAFETY: only tries to open the shared library and closes it again.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(super::Unavailable::NoDriver);
    }
    let count = catch_unwind(|| {
        cudarc::driver::result::init()
            .and_then(|()| cudarc::driver::result::device::get_count())
            .map_err(|e| format!("{e:?}"))
    })
    .map_err(|_| super::Unavailable::Init("the CUDA driver library panicked".into()))?
    .map_err(super::Unavailable::NoDevice)?;
    Ok(count.max(0) as usize)
}

/// NCCL's description of an error code.
fn describe(e: &nres::NcclError) -> String {
    // SAFETY: ncclGetErrorString returns a static, NUL-terminated string for any code.
    let text = unsafe { CStr::from_ptr(nsys::ncclGetErrorString(e.0)) };
    format!("{} ({:?})", text.to_string_lossy(), e.0)
}

fn call_err(call: &'static str, e: nres::NcclError) -> NcclError {
    NcclError::Call {
        call,
        detail: describe(&e),
    }
}

/// A fresh identifier for a new communicator: made by rank 0 and handed to the others (128
/// opaque bytes).
pub fn unique_id() -> Result<[u8; 128], NcclError> {
    let id = catch_unwind(nres::get_uniqueid)
        .map_err(|_| NcclError::Call {
            call: "ncclGetUniqueId",
            detail: "the NCCL library could not be loaded".into(),
        })?
        .map_err(|e| call_err("ncclGetUniqueId", e))?;
    Ok(id.internal.map(|c| c as u8))
}

/// Collectives a [`NcclComm`] ran: groups, bytes reduced on this rank, and seconds on the
/// communication stream (from the moment the inputs were ready, so it includes the wait for
/// the slowest rank).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CollectiveStats {
    /// All-reduce groups run.
    pub groups: u64,
    /// Bytes reduced on this rank.
    pub bytes: u64,
    /// Seconds on the communication stream.
    pub seconds: f64,
}

/// A bucket being reduced: events around its group, and its tensors.
struct Inflight {
    began: CudaEvent,
    done: CudaEvent,
    bytes: u64,
    tensors: Vec<Tensor>,
}

/// A communicator handle that may move to the set-up thread and back.
struct RawComm(nsys::ncclComm_t);

// SAFETY: an NCCL communicator may be used from any thread, one call at a time; it is only used
// by its owner after set-up returns it.
unsafe impl Send for RawComm {}

/// One rank's NCCL communicator on the CUDA backend's device, with the buckets in flight.
pub struct NcclComm<'b> {
    backend: &'b CudaBackend,
    comm: nsys::ncclComm_t,
    stream: Arc<CudaStream>,
    rank: usize,
    world: usize,
    timeout: Duration,
    inflight: Vec<Inflight>,
    stats: CollectiveStats,
}

impl std::fmt::Debug for NcclComm<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NcclComm(rank {} of {})", self.rank, self.world)
    }
}

impl<'b> NcclComm<'b> {
    /// Joins the communicator `id` as `rank` of `world` on `backend`'s device. Waits at most
    /// `timeout` for the other ranks to join. [`library_loads`] must be true.
    pub fn new(
        backend: &'b CudaBackend,
        rank: usize,
        world: usize,
        id: &[u8; 128],
        timeout: Duration,
    ) -> Result<Self, NcclError> {
        let cuda = |call: &'static str| {
            move |e: cudarc::driver::DriverError| NcclError::Call {
                call,
                detail: format!("{e:?}"),
            }
        };
        let stream = backend.ctx.new_stream().map_err(cuda("cuStreamCreate"))?;
        let (nranks, me) = match (i32::try_from(world), i32::try_from(rank)) {
            (Ok(n), Ok(r)) if r < n => (n, r),
            _ => {
                return Err(NcclError::Call {
                    call: "ncclCommInitRank",
                    detail: format!("rank {rank} of {world} is out of range"),
                })
            }
        };
        let uid = nsys::ncclUniqueId {
            internal: id.map(|b| b as ::core::ffi::c_char),
        };
        // Set-up blocks until every rank has joined, so it runs on a thread of its own and is
        // abandoned (with the process, which then exits with the error) if it takes too long.
        let ctx = backend.ctx.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let r = catch_unwind(AssertUnwindSafe(|| {
                ctx.bind_to_thread().map_err(|e| NcclError::Call {
                    call: "cuCtxSetCurrent",
                    detail: format!("{e:?}"),
                })?;
                let mut comm = std::mem::MaybeUninit::uninit();
                // SAFETY: `comm` is written by NCCL on success; the id came from
                // ncclGetUniqueId on rank 0.
                unsafe { nres::comm_init_rank(comm.as_mut_ptr(), nranks, uid, me) }
                    .map_err(|e| call_err("ncclCommInitRank", e))?;
                // SAFETY: initialised by the successful call above.
                Ok(RawComm(unsafe { comm.assume_init() }))
            }))
            .unwrap_or_else(|_| {
                Err(NcclError::Call {
                    call: "ncclCommInitRank",
                    detail: "the NCCL library could not be loaded".into(),
                })
            });
            let _ = tx.send(r);
        });
        let comm = match rx.recv_timeout(timeout) {
            Ok(r) => r?.0,
            Err(_) => {
                return Err(NcclError::Timeout {
                    what: format!("joining the NCCL communicator of {world} ranks"),
                    seconds: timeout.as_secs(),
                })
            }
        };
        Ok(NcclComm {
            backend,
            comm,
            stream,
            rank,
            world,
            timeout,
            inflight: Vec::new(),
            stats: CollectiveStats::default(),
        })
    }

    /// This rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn world(&self) -> usize {
        self.world
    }

    /// What the collectives waited for so far cost.
    pub fn stats(&self) -> CollectiveStats {
        self.stats
    }

    /// A tensor's device buffer if the tensor owns all of it, row-major from element 0 (so it
    /// may be reduced in place); else a fresh copy that does.
    fn exclusive(&self, t: Tensor) -> Result<Tensor, NcclError> {
        let owned = match &t.storage {
            Storage::Device(d) => {
                Arc::strong_count(d) == 1
                    && t.layout.offset == 0
                    && t.layout == crate::tensor::Layout::contiguous(&t.layout.shape)
                    && d.as_any()
                        .downcast_ref::<super::CudaStorage>()
                        .is_some_and(|s| s.len == t.numel())
            }
            Storage::Host(_) => false,
        };
        if owned {
            return Ok(t);
        }
        self.backend
            .map(&MapExpr::Input(0), &[&t], t.shape(), t.dtype)
            .map_err(|e| NcclError::Call {
                call: "copying a gradient for NCCL",
                detail: e.to_string(),
            })
    }

    /// Starts summing `tensors` over all ranks, in place, as one NCCL group, once the work
    /// already queued on the compute stream has produced them. [`NcclComm::wait`] returns them.
    pub fn start(&mut self, tensors: Vec<Tensor>) -> Result<(), NcclError> {
        let tensors = tensors
            .into_iter()
            .map(|t| self.exclusive(t))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ops = Vec::with_capacity(tensors.len());
        for t in &tensors {
            let dtype = match t.dtype {
                DType::F32 => nsys::ncclDataType_t::ncclFloat32,
                DType::F64 => nsys::ncclDataType_t::ncclFloat64,
                DType::F16 => nsys::ncclDataType_t::ncclFloat16,
                DType::BF16 => nsys::ncclDataType_t::ncclBfloat16,
                DType::I64 => nsys::ncclDataType_t::ncclInt64,
                other => return Err(NcclError::Unsupported(other)),
            };
            let r = self
                .backend
                .dev("all_reduce", t)
                .map_err(|e| NcclError::Call {
                    call: "ncclAllReduce",
                    detail: e.to_string(),
                })?;
            ops.push((r.base, t.numel(), dtype));
        }
        let cuda = |call: &'static str| {
            move |e: cudarc::driver::DriverError| NcclError::Call {
                call,
                detail: format!("{e:?}"),
            }
        };
        let produced = self
            .backend
            .stream
            .record_event(None)
            .map_err(cuda("cuEventRecord"))?;
        self.stream
            .wait(&produced)
            .map_err(cuda("cuStreamWaitEvent"))?;
        // Timed events (cudarc's default disables timing) around the group, for `stats`.
        let timed = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
        let began = self
            .stream
            .record_event(timed)
            .map_err(cuda("cuEventRecord"))?;
        nres::group_start().map_err(|e| call_err("ncclGroupStart", e))?;
        let mut failed = None;
        for &(ptr, count, dtype) in &ops {
            // SAFETY: `ptr` is the start of a live device buffer of `count` elements of
            // `dtype`, owned by `tensors` (kept in `inflight` until the reduction is waited for).
            let r = unsafe {
                nres::all_reduce(
                    ptr as *const _,
                    ptr as *mut _,
                    count,
                    dtype,
                    nsys::ncclRedOp_t::ncclSum,
                    self.comm,
                    self.stream.cu_stream() as _,
                )
            };
            if let Err(e) = r {
                failed = Some(call_err("ncclAllReduce", e));
                break;
            }
        }
        let ended = nres::group_end().map_err(|e| call_err("ncclGroupEnd", e));
        if let Some(e) = failed {
            return Err(e);
        }
        ended?;
        let done = self
            .stream
            .record_event(timed)
            .map_err(cuda("cuEventRecord"))?;
        let bytes = tensors
            .iter()
            .map(|t| (t.numel() * t.dtype.size()) as u64)
            .sum();
        self.inflight.push(Inflight {
            began,
            done,
            bytes,
            tensors,
        });
        Ok(())
    }

    /// An asynchronous error NCCL reported for the communicator (a peer that vanished).
    fn async_error(&self) -> Option<NcclError> {
        let mut state = nsys::ncclResult_t::ncclSuccess;
        // SAFETY: a live communicator and a valid out-pointer.
        let r = unsafe { nsys::ncclCommGetAsyncError(self.comm, &mut state) };
        let bad = |x: nsys::ncclResult_t| {
            !matches!(
                x,
                nsys::ncclResult_t::ncclSuccess | nsys::ncclResult_t::ncclInProgress
            )
        };
        let code = if bad(r) { r } else { state };
        bad(code).then(|| NcclError::Call {
            call: "an NCCL collective",
            detail: describe(&nres::NcclError(code)),
        })
    }

    /// Waits for every started bucket (at most the timeout for each) and returns the summed
    /// tensors, bucket by bucket. Later work on the compute stream is ordered after them.
    pub fn wait(&mut self) -> Result<Vec<Vec<Tensor>>, NcclError> {
        let mut out = Vec::with_capacity(self.inflight.len());
        for Inflight {
            began: start,
            done,
            bytes,
            tensors,
        } in std::mem::take(&mut self.inflight)
        {
            let began = Instant::now();
            let mut spins = 0u32;
            loop {
                match done.try_is_complete() {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => {
                        return Err(NcclError::Call {
                            call: "waiting for an NCCL collective",
                            detail: format!("{e:?}"),
                        })
                    }
                }
                if let Some(e) = self.async_error() {
                    return Err(e);
                }
                if began.elapsed() > self.timeout {
                    return Err(NcclError::Timeout {
                        what: format!(
                            "an all-reduce of {} gradient tensors across {} ranks",
                            tensors.len(),
                            self.world
                        ),
                        seconds: self.timeout.as_secs(),
                    });
                }
                spins += 1;
                if spins < 2000 {
                    std::hint::spin_loop();
                } else {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            self.stats.groups += 1;
            self.stats.bytes += bytes;
            self.stats.seconds += f64::from(start.elapsed_ms(&done).unwrap_or(0.0)) / 1e3;
            self.backend
                .stream
                .wait(&done)
                .map_err(|e| NcclError::Call {
                    call: "cuStreamWaitEvent",
                    detail: format!("{e:?}"),
                })?;
            out.push(tensors);
        }
        Ok(out)
    }
}

impl Drop for NcclComm<'_> {
    fn drop(&mut self) {
        // Abort rather than finalise: it never waits for peers, which may be gone.
        // SAFETY: the communicator is live and dropped once, here.
        let _ = catch_unwind(AssertUnwindSafe(|| unsafe { nres::comm_abort(self.comm) }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_named_by_the_variable_is_an_error_naming_it() {
        // Only this test sets the variable in this test binary.
        std::env::set_var(LIBRARY_ENV, "/no/such/folder/libnccl.so.2");
        let e = find_library().unwrap_err();
        std::env::remove_var(LIBRARY_ENV);
        assert!(
            e.to_string().contains("/no/such/folder/libnccl.so.2"),
            "{e}"
        );
        assert!(e.to_string().contains("not found"), "{e}");
    }

    #[test]
    fn probing_never_panics() {
        // On a machine without NCCL this is false; with NCCL on the loader's path, true.
        let _ = library_loads();
        let _ = device_count();
    }
}
