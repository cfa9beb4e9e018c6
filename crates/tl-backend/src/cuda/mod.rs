//! The CUDA backend: tensors live in device memory, elementwise work runs in kernels generated
//! as CUDA C and compiled with NVRTC for the device, contractions run on cuBLAS.
//!
//! Everything is loaded at run time (`cudarc` with dynamic loading), so a build of `tl`
//! without a GPU, a driver or the CUDA toolkit works and simply reports the backend as
//! unavailable ([`CudaBackend::open`]). All work, copies included, is queued on one stream of the
//! backend's own, so operations, copies and the reuse of cached memory are ordered without
//! extra events, and the stream can be captured as a CUDA graph ([`Backend::begin_recording`]).
//!
//! Semantics follow the CPU backend ([`crate::cpu`]): arithmetic runs in f64 for f64 tensors
//! and in f32 otherwise; `map` and `cast` store the requested type, the other operations
//! return their input's compute type (Boolean gathers stay Boolean).

mod alloc;
mod attention;
mod backend;
mod closure;
mod codegen;
mod compile;
mod contract;
mod elementwise;
pub mod foreign;
mod gather;
mod lt;
pub mod nccl;
mod paths;
mod pieces;
mod record;
mod reduce;
mod render;
mod rows;
mod staging;
mod transfer;

pub use alloc::MemoryStats;

use crate::check::{broadcastable, check_expr, numel_checked, reduced_axes, shape_err, upload_len};
use crate::dtype::DType;
use crate::error::{BackendError, Result};
use crate::host::{HostData, HostTensor};
use crate::kernel::{Form, Info, Kernel, Product};
use crate::ops::{MapExpr, NormFn, ReduceOp};
use crate::rows::RowMapArgs;
use crate::tensor::{DeviceStorage, Layout, Storage, Tensor};
use crate::{calls, Backend, Index};
use alloc::{AllocError, Block, Pool, RawError, RawMemory};
use codegen::Real;
use cudarc::driver::{result as drv, sys as dsys, CudaContext, CudaFunction, CudaStream};
use cudarc::driver::{LaunchConfig, PushKernelArg};
use half::{bf16, f16};
use render::{Access, FoldLayout, Spec, Walk};
use std::any::Any;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Why the CUDA backend cannot be used on this machine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// The driver library (`libcuda.so`) is not installed.
    #[error("no CUDA driver library (libcuda.so) could be loaded")]
    NoDriver,
    /// Linux shows no NVIDIA driver (no `/dev/nvidiactl`, `/dev/dxg` or `/proc/driver/nvidia`).
    #[error("no NVIDIA driver is loaded (no /dev/nvidiactl, /dev/dxg or /proc/driver/nvidia)")]
    NoKernelDriver,
    /// The runtime compiler library is not installed.
    #[error("the CUDA runtime compiler (libnvrtc.so) could not be loaded")]
    NoNvrtc,
    /// The driver works but reports no usable device.
    #[error("no CUDA device: {0}")]
    NoDevice(String),
    /// Initialisation failed for another reason.
    #[error("CUDA initialisation failed: {0}")]
    Init(String),
    /// Turned off by the environment variable [`DISABLE_ENV`].
    #[error("turned off by the environment variable TL_NO_CUDA")]
    Disabled,
}

/// The environment variable that, set to anything but nothing or `0`, hides every GPU: the
/// CUDA backend reports itself unavailable ([`Unavailable::Disabled`]) without loading any
/// library, so `--device auto` runs on the CPU and `--device cuda` fails, on any machine.
pub const DISABLE_ENV: &str = "TL_NO_CUDA";

/// Whether [`DISABLE_ENV`] turns the CUDA backend off.
pub fn disabled() -> bool {
    std::env::var_os(DISABLE_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// A device buffer holding the elements of one tensor.
#[derive(Debug)]
pub struct CudaStorage {
    block: Block,
    len: usize,
    dtype: DType,
}

impl CudaStorage {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device address of element 0.
    fn ptr(&self) -> u64 {
        self.block.ptr()
    }
}

impl DeviceStorage for CudaStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Device memory straight from the driver, for the caching allocator.
struct DriverMemory {
    ctx: Arc<CudaContext>,
}

impl RawMemory for DriverMemory {
    fn alloc(&self, bytes: usize) -> std::result::Result<u64, RawError> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| RawError::Other(format!("{e:?}")))?;
        // SAFETY: a plain allocation in the bound context; the address is only used by kernels
        // and copies of this backend while its block is alive.
        match unsafe { drv::malloc_sync(bytes) } {
            Ok(p) => Ok(p),
            Err(e) if e.0 == dsys::CUresult::CUDA_ERROR_OUT_OF_MEMORY => Err(RawError::OutOfMemory),
            Err(e) => Err(RawError::Other(format!("{e:?}"))),
        }
    }

    fn free(&self, ptr: u64) {
        if self.ctx.bind_to_thread().is_ok() {
            // SAFETY: `ptr` came from `malloc_sync` and no live tensor refers to it; queued
            // work was waited for by `synchronize`.
            let _ = unsafe { drv::free_sync(ptr) };
        }
    }

    fn synchronize(&self) {
        let _ = self.ctx.synchronize();
    }

    fn free_bytes(&self) -> usize {
        if self.ctx.bind_to_thread().is_err() {
            return 0;
        }
        drv::mem_get_info().map(|(free, _)| free).unwrap_or(0)
    }
}

/// Device copies of index vectors that callers reuse, with the host vector kept alive (so its
/// address, the key, is not reused while the entry lives) and its largest index.
struct IndexEntry {
    host: Arc<Vec<i64>>,
    device: Arc<CudaStorage>,
    max: i64,
}

/// At most this many bytes of cached index vectors; past it the cache starts over.
const INDEX_CACHE_BYTES: usize = 1 << 30;

/// cuBLASLt's handle and plans, opened by the first product (cuBLASLt is a large library:
/// programs without products, such as rules on the path engine, never load it), with its
/// scratch buffer.
struct Matmuls {
    lt: Option<lt::Lt>,
    workspace: Option<CudaStorage>,
}

/// The backend that runs every primitive on one NVIDIA GPU.
pub struct CudaBackend {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    pool: Arc<Pool>,
    matmuls: Mutex<Matmuls>,
    kernels: Mutex<HashMap<u64, CudaFunction>>,
    /// Compiled kernels by a hash of what their source depends on (see `launch_keyed`).
    keyed: Mutex<HashMap<u64, CudaFunction>>,
    /// Index vectors already on the device (see `gather_shared`).
    indices: Mutex<HashMap<usize, IndexEntry>>,
    /// NVRTC target, e.g. `compute_90`.
    target: String,
    include: Vec<String>,
    device_name: String,
    /// Name and capabilities, for [`Backend::info`].
    info: Info,
    tf32: AtomicBool,
    /// The pool's number for the recording being captured, if one is.
    recording: Mutex<Option<u64>>,
    /// Page-locked memory for short read-backs, made at the first one.
    staging: Mutex<Option<staging::Staging>>,
    /// Bytes copied from the host to the device and back, for the memory report.
    to_device: AtomicU64,
    to_host: AtomicU64,
}

impl std::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaBackend({}, {})", self.device_name, self.target)
    }
}

/// Whether an NVIDIA driver may be loaded: on Linux its kernel module shows as
/// `/dev/nvidiactl` (or `/dev/dxg` under WSL) and `/proc/driver/nvidia`; elsewhere, assumed.
fn kernel_driver_may_exist() -> bool {
    !cfg!(target_os = "linux")
        || [
            "/dev/nvidiactl",
            "/dev/nvidia0",
            "/dev/dxg",
            "/proc/driver/nvidia",
        ]
        .iter()
        .any(|p| std::path::Path::new(p).exists())
}

/// Locks a mutex, recovering from poisoning (the guarded maps stay consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A `Device` error from a driver-level failure.
fn dev_err(what: &str, e: impl std::fmt::Debug) -> BackendError {
    BackendError::Device(format!("{what}: {e:?}"))
}

/// Blocks for a grid-stride loop over `n` items.
fn grid_for(n: usize) -> u32 {
    n.div_ceil(codegen::BLOCK as usize).clamp(1, 1 << 20) as u32
}

/// An expression prepared for a fused kernel: its spec, its `TlMeta` words (but the walk's
/// own), and the
/// inputs' device memory, kept alive until the launch is queued.
struct FusedExpr {
    spec: Spec,
    meta: Vec<i64>,
    keep: Vec<DevRef>,
}

/// Folders searched for CUDA headers (passed to NVRTC when present; the generated kernels
/// include none, so a missing toolkit folder is fine).
fn include_dirs() -> Vec<String> {
    let mut v = Vec::new();
    for var in ["CUDA_PATH", "CUDA_HOME", "CUDA_ROOT"] {
        if let Ok(p) = std::env::var(var) {
            v.push(format!("{p}/include"));
        }
    }
    v.push("/usr/local/cuda/include".into());
    v.retain(|p| std::path::Path::new(p).is_dir());
    v.dedup();
    v
}

/// Where compiled PTX is kept between runs: `$TL_PTX_CACHE`, else
/// `$XDG_CACHE_HOME/tensorlogic/ptx`, else `~/.cache/tensorlogic/ptx`.
pub fn ptx_cache_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TL_PTX_CACHE") {
        return Some(PathBuf::from(p));
    }
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(x) if !x.is_empty() => PathBuf::from(x),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
    };
    Some(base.join("tensorlogic").join("ptx"))
}

/// A device view of a tensor: the storage kept alive, the address of element `[0, …]`'s
/// storage slot 0, and the storage length.
struct DevRef {
    keep: Arc<dyn DeviceStorage>,
    base: u64,
    len: usize,
}

impl CudaBackend {
    /// Opens device 0. Fails with the reason when no driver, device, NVRTC or cuBLAS is
    /// usable, or when [`DISABLE_ENV`] turns CUDA off; never panics (libraries are probed
    /// before first use, and initialisation runs under `catch_unwind`).
    pub fn open() -> std::result::Result<CudaBackend, Unavailable> {
        if disabled() {
            return Err(Unavailable::Disabled);
        }
        // Searching the library path for libcuda takes most of a millisecond; a machine whose
        // kernel shows no NVIDIA driver has no usable GPU, so `--device auto` need not search.
        if !kernel_driver_may_exist() {
            return Err(Unavailable::NoKernelDriver);
        }
        // SAFETY: each probe only tries to open the shared library and closes it again.
        if !unsafe { dsys::is_culib_present() } {
            return Err(Unavailable::NoDriver);
        }
        // SAFETY: as above.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(Unavailable::NoNvrtc);
        }
        match catch_unwind(AssertUnwindSafe(Self::init)) {
            Ok(r) => r,
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "the CUDA library panicked".into());
                Err(Unavailable::Init(msg))
            }
        }
    }

    fn init() -> std::result::Result<CudaBackend, Unavailable> {
        drv::init().map_err(|e| Unavailable::NoDevice(format!("cuInit failed ({e:?})")))?;
        let count =
            drv::device::get_count().map_err(|e| Unavailable::NoDevice(format!("{e:?}")))?;
        if count < 1 {
            return Err(Unavailable::NoDevice("the driver reports 0 devices".into()));
        }
        let ctx = CudaContext::new(0).map_err(|e| Unavailable::Init(format!("{e:?}")))?;
        let device_name = ctx
            .name()
            .map_err(|e| Unavailable::Init(format!("{e:?}")))?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| Unavailable::Init(format!("{e:?}")))?;
        let stream = ctx
            .new_stream()
            .map_err(|e| Unavailable::Init(format!("creating a stream: {e:?}")))?;
        let pool = Pool::new(
            Box::new(DriverMemory { ctx: ctx.clone() }),
            "cuda:0".to_string(),
        );
        Ok(CudaBackend {
            ctx,
            stream,
            pool,
            matmuls: Mutex::new(Matmuls {
                lt: None,
                workspace: None,
            }),
            kernels: Mutex::new(HashMap::new()),
            keyed: Mutex::new(HashMap::new()),
            indices: Mutex::new(HashMap::new()),
            // PTX for the device's virtual architecture (the driver finishes it for the
            // exact chip); NVRTC only returns PTX for `compute_*` targets.
            target: format!("compute_{major}{minor}"),
            include: include_dirs(),
            info: Info {
                name: format!("cuda:0 {device_name}"),
                accelerator: true,
                recordable: true,
            },
            device_name,
            tf32: AtomicBool::new(false),
            recording: Mutex::new(None),
            staging: Mutex::new(None),
            to_device: AtomicU64::new(0),
            to_host: AtomicU64::new(0),
        })
    }

    /// The device's name, e.g. `NVIDIA H100 80GB HBM3`.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// The NVRTC target kernels are compiled for, e.g. `compute_90`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Allows TF32 tensor cores for f32 contractions (off by default: f32 results then match
    /// the CPU to f32 rounding; with TF32, to about 1e-3).
    pub fn set_tf32(&self, on: bool) {
        self.tf32.store(on, Ordering::Relaxed);
    }

    /// Whether f32 contractions may use TF32.
    pub fn tf32(&self) -> bool {
        self.tf32.load(Ordering::Relaxed)
    }

    /// Counters of the caching allocator.
    pub fn memory_stats(&self) -> MemoryStats {
        self.pool.stats()
    }

    /// Returns every cached (unused) block to the driver.
    pub fn empty_cache(&self) {
        self.pool.empty_cache();
    }

    fn bind(&self) -> Result<()> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| dev_err("binding the CUDA context", e))
    }

    /// Queues one cuBLASLt product on the backend's stream (opening cuBLASLt the first time).
    fn matmul(&self, p: &lt::Product) -> Result<()> {
        self.bind()?;
        let mut m = lock(&self.matmuls);
        if m.lt.is_none() {
            // Loading a missing library panics inside cudarc: caught, it is an error.
            let opened = catch_unwind(lt::Lt::new)
                .unwrap_or_else(|_| Err("libcublasLt.so could not be loaded".to_string()));
            m.lt = Some(opened.map_err(|e| {
                BackendError::Device(format!(
                    "matrix products need cuBLASLt: {e} (install it with the CUDA toolkit, or run with --device cpu)"
                ))
            })?);
        }
        if m.workspace.is_none() {
            m.workspace =
                Some(self.alloc_bytes(lt::WORKSPACE_BYTES, lt::WORKSPACE_BYTES, DType::Bool)?);
        }
        let ws = m.workspace.as_ref().map_or(0, |w| w.ptr());
        let stream = self.stream.cu_stream() as cudarc::cublaslt::sys::cudaStream_t;
        let Matmuls { lt, .. } = &mut *m;
        let Some(lt) = lt.as_mut() else {
            return Err(BackendError::Device("cuBLASLt is not open".into()));
        };
        // SAFETY: the caller built `p` from live buffers of the sizes it states (see
        // `contract`), the workspace holds WORKSPACE_BYTES, and the context is bound.
        unsafe { lt.matmul(p, ws, stream) }
    }

    /// A fresh buffer of `n` elements of `dtype`.
    fn alloc(&self, n: usize, dtype: DType) -> Result<CudaStorage> {
        let bytes = n
            .checked_mul(dtype.size())
            .ok_or_else(|| BackendError::TooLarge {
                elements: n as u128,
                detail: "the byte count overflows the address space".into(),
            })?;
        self.alloc_bytes(bytes, n, dtype)
    }

    fn alloc_bytes(&self, bytes: usize, n: usize, dtype: DType) -> Result<CudaStorage> {
        match self.pool.alloc(bytes) {
            Ok(block) => Ok(CudaStorage {
                block,
                len: n,
                dtype,
            }),
            Err(AllocError::OutOfMemory { free }) => Err(BackendError::OutOfMemory {
                device: format!("{} ({})", self.pool.device(), self.device_name),
                requested: bytes,
                free,
            }),
            Err(AllocError::TooLarge) => Err(BackendError::TooLarge {
                elements: n as u128,
                detail: format!("{bytes} bytes cannot be allocated"),
            }),
            Err(AllocError::Driver(e)) => Err(BackendError::Device(format!(
                "allocating {bytes} bytes: {e}"
            ))),
        }
    }

    /// Asks the allocator for `bytes` bytes and keeps them (for tests of the out-of-memory
    /// path and of the cache): the block goes back to the cache when the storage is dropped.
    pub fn allocate_raw(&self, bytes: usize) -> Result<CudaStorage> {
        self.alloc_bytes(bytes, bytes, DType::Bool)
    }

    /// Wraps fresh storage as a row-major tensor.
    fn wrap(storage: CudaStorage, shape: &[usize]) -> Tensor {
        Tensor {
            layout: Layout::contiguous(shape),
            dtype: storage.dtype,
            storage: Storage::Device(Arc::new(storage)),
        }
    }

    /// The device storage behind a tensor (host storage is uploaded on the way), checked
    /// against the tensor's layout and type.
    fn dev(&self, op: &'static str, t: &Tensor) -> Result<DevRef> {
        let keep: Arc<dyn DeviceStorage> = match &t.storage {
            Storage::Device(d) => d.clone(),
            Storage::Host(h) => {
                let up = self.upload(&HostTensor {
                    shape: vec![h.len()],
                    data: h.as_ref().clone(),
                })?;
                match up.storage {
                    Storage::Device(d) => d,
                    Storage::Host(_) => return Err(BackendError::Device("upload failed".into())),
                }
            }
        };
        DevRef::of(op, t, keep)
    }
}

/// One line of allocator counters: in use, peak, reserved, requests, cache hits, hit rate and
/// driver allocations.
fn format_memory_stats(s: &MemoryStats) -> String {
    let hit_rate = if s.allocations == 0 {
        0.0
    } else {
        100.0 * s.cache_hits as f64 / s.allocations as f64
    };
    format!(
        "in use {}, peak {}, reserved {}, allocations {}, cache hits {} ({hit_rate:.1}% hit rate), \
         driver allocations {}",
        mib(s.in_use),
        mib(s.peak),
        mib(s.reserved),
        s.allocations,
        s.cache_hits,
        s.driver_allocations
    )
}

/// Bytes as mebibytes with one decimal, e.g. `12.5 MiB`.
fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests;
