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
mod closure;
mod codegen;
mod contract;
pub mod foreign;
mod lt;
pub mod nccl;
mod paths;
mod pieces;
mod record;
mod rows;
mod staging;

pub use alloc::MemoryStats;

use crate::check::{broadcastable, check_expr, numel_checked, reduced_axes, shape_err, upload_len};
use crate::dtype::DType;
use crate::error::{BackendError, Result};
use crate::host::{HostData, HostTensor};
use crate::ops::{MapExpr, NormFn, ReduceOp};
use crate::tensor::{DeviceStorage, Layout, Storage, Tensor};
use crate::Backend;
use alloc::{AllocError, Block, Pool, RawError, RawMemory};
use codegen::{Access, ElemSig, Real};
use cudarc::driver::{result as drv, sys as dsys, CudaContext, CudaFunction, CudaStream};
use cudarc::driver::{LaunchConfig, PushKernelArg};
use half::{bf16, f16};
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

/// An expression prepared for a fused kernel: its signature, its `TlMeta` words, and the
/// inputs' device memory, kept alive until the launch is queued.
struct FusedExpr {
    sig: ElemSig,
    meta: Vec<i64>,
    keep: Vec<DevRef>,
}

/// The error for an expression with more inputs than one kernel's arguments can address.
fn too_many(op: &'static str, inputs: usize) -> BackendError {
    shape_err(op, format!("{inputs} inputs is too many for one kernel"))
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

    /// The compiled kernel of a source (memory cache, then disk cache, then NVRTC).
    fn function(&self, src: &str) -> Result<CudaFunction> {
        let key = codegen::cache_key(src, &self.target);
        if let Some(f) = lock(&self.kernels).get(&key) {
            return Ok(f.clone());
        }
        let f = self.build(src, key)?;
        lock(&self.kernels).insert(key, f.clone());
        Ok(f)
    }

    fn load_ptx(&self, ptx: String) -> Result<CudaFunction> {
        let module = self
            .ctx
            .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
            .map_err(|e| dev_err("loading a kernel", e))?;
        module
            .load_function("tl_kernel")
            .map_err(|e| dev_err("loading a kernel", e))
    }

    fn build(&self, src: &str, key: u64) -> Result<CudaFunction> {
        let file = ptx_cache_dir().map(|d| (d.join(format!("{key:016x}.ptx")), d));
        if let Some((path, _)) = &file {
            if let Ok(text) = std::fs::read_to_string(path) {
                if !text.contains('\0') && text.contains("tl_kernel") {
                    if let Ok(f) = self.load_ptx(text) {
                        return Ok(f);
                    }
                }
            }
        }
        let opts = cudarc::nvrtc::CompileOptions {
            options: vec![format!("--gpu-architecture={}", self.target)],
            include_paths: self.include.clone(),
            ..Default::default()
        };
        let ptx = match cudarc::nvrtc::compile_ptx_with_opts(src, opts) {
            Ok(p) => p,
            Err(cudarc::nvrtc::CompileError::CompileError { log, .. }) => {
                return Err(BackendError::Device(format!(
                    "NVRTC could not compile a generated kernel:\n{}\n--- source ---\n{src}",
                    log.to_string_lossy()
                )))
            }
            Err(e) => return Err(dev_err("NVRTC", e)),
        };
        let bytes = ptx.as_bytes().unwrap_or_default();
        let text: String = String::from_utf8_lossy(bytes)
            .trim_end_matches('\0')
            .to_string();
        if text.contains('\0') {
            return Err(BackendError::Device("NVRTC returned malformed PTX".into()));
        }
        if let Some((path, dir)) = &file {
            // A cache that cannot be written only costs a recompilation next time.
            if std::fs::create_dir_all(dir).is_ok() {
                let tmp = dir.join(format!("{key:016x}.{}.tmp", std::process::id()));
                if std::fs::write(&tmp, &text).is_ok() && std::fs::rename(&tmp, path).is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
            }
        }
        self.load_ptx(text)
    }

    /// Launches `tl_kernel` of `src` with the `TlMeta` words `meta`.
    /// Launches the kernel known by `key` (a hash of everything its source depends on),
    /// generating its source with `source` only the first time: building kernel source for
    /// every launch would cost more host time than the launch itself.
    fn launch(
        &self,
        key: u64,
        source: impl FnOnce() -> Result<String>,
        meta: &[i64],
        grid: u32,
    ) -> Result<()> {
        let known = lock(&self.keyed).get(&key).cloned();
        let f = match known {
            Some(f) => f,
            None => {
                let f = self.function(&source()?)?;
                lock(&self.keyed).insert(key, f.clone());
                f
            }
        };
        self.launch_function(&f, meta, grid)
    }

    fn launch_function(&self, f: &CudaFunction, meta: &[i64], grid: u32) -> Result<()> {
        self.bind()?;
        let cfg = LaunchConfig {
            grid_dim: (grid.max(1), 1, 1),
            block_dim: (codegen::BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        macro_rules! go {
            ($n:literal) => {{
                let mut words = [0i64; $n];
                words[..meta.len()].copy_from_slice(meta);
                let mut b = self.stream.launch_builder(f);
                b.arg(&words);
                // SAFETY: the argument is the `TlMeta` struct of exactly this capacity the
                // kernel was generated with; every address in it belongs to a live block
                // (kept by the caller until the launch is queued; reuse is stream-ordered).
                unsafe { b.launch(cfg) }.map_err(|e| dev_err("launching a kernel", e))?;
            }};
        }
        match codegen::meta_cap(meta.len()) {
            Some(16) => go!(16),
            Some(64) => go!(64),
            Some(480) => go!(480),
            _ => {
                return Err(BackendError::Device(format!(
                    "kernel argument block of {} words is too large",
                    meta.len()
                )))
            }
        }
        Ok(())
    }

    /// Evaluates `expr` over `inputs` (any layouts, broadcast by extent 1) into a fresh
    /// row-major tensor of `out` computed in `real`.
    fn elementwise(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        out_shape: &[usize],
        out: DType,
        real: Real,
    ) -> Result<Tensor> {
        let mut v = self.elementwise_many(&[(expr.clone(), out)], inputs, out_shape, real)?;
        v.pop().ok_or_else(|| shape_err("map", "no result"))
    }

    /// Evaluates every `(expression, element type)` of `outs` over the same `inputs` in one
    /// kernel, each into a fresh row-major tensor, computed in `real`.
    fn elementwise_many(
        &self,
        outs: &[(MapExpr, DType)],
        inputs: &[&Tensor],
        out_shape: &[usize],
        real: Real,
    ) -> Result<Vec<Tensor>> {
        let n = numel_checked(out_shape)?;
        broadcastable(inputs, out_shape)?;
        let storages = outs
            .iter()
            .map(|(_, d)| self.alloc(n, *d))
            .collect::<Result<Vec<_>>>()?;
        let out_ptrs: Vec<u64> = storages.iter().map(|s| s.ptr()).collect();
        self.elementwise_into(outs, inputs, out_shape, &out_ptrs, real)?;
        Ok(storages
            .into_iter()
            .map(|s| Self::wrap(s, out_shape))
            .collect())
    }

    /// Queues the kernel of [`CudaBackend::elementwise_many`] writing row-major results of
    /// `out_shape` at `out_ptrs` (live blocks the caller keeps).
    fn elementwise_into(
        &self,
        outs: &[(MapExpr, DType)],
        inputs: &[&Tensor],
        out_shape: &[usize],
        out_ptrs: &[u64],
        real: Real,
    ) -> Result<()> {
        let n = numel_checked(out_shape)?;
        if n == 0 {
            return Ok(());
        }
        let fused = self.fused_expr(outs, inputs, out_shape, out_ptrs, real)?;
        if !pieces::one_kernel(&fused.sig, 0) {
            drop(fused);
            return self.elementwise_pieces(outs, inputs, out_shape, out_ptrs, real);
        }
        let sig = &fused.sig;
        // Four consecutive elements per thread, with wide loads and stores, where rows split
        // into fours and the wide accesses are aligned.
        let inner = match sig.rank {
            0 => 1,
            r => fused.meta[sig.inputs_at() + sig.inputs.len() + r - 1] as usize,
        };
        let vector = sig.vectorizable(inner) && n >= 4 && sig.fours_aligned(&fused.meta);
        if vector {
            let source = || {
                sig.vector_source()
                    .ok_or_else(|| too_many("map", inputs.len()))
            };
            let grid = grid_for(n / 4);
            self.launch(
                codegen::kernel_key(&("map4", sig.key())),
                source,
                &fused.meta,
                grid,
            )?;
            drop(fused.keep);
            return Ok(());
        }
        let source = || {
            sig.source().ok_or_else(|| {
                shape_err(
                    "map",
                    format!(
                        "{} inputs and {} outputs over {} axes is too many for one kernel",
                        inputs.len(),
                        outs.len(),
                        sig.rank
                    ),
                )
            })
        };
        let grid = grid_for(n.div_ceil(codegen::ELEM_UNROLL));
        self.launch(sig.key(), source, &fused.meta, grid)?;
        drop(fused.keep);
        Ok(())
    }

    /// The signature and `TlMeta` words (without a kernel's own trailing words) of
    /// expressions over `inputs` broadcast onto `shape`, each written to its `out_ptrs` entry
    /// as its type, computed in `real`: elementwise kernels, and those that fold an expression
    /// into a reduction or normalisation.
    fn fused_expr(
        &self,
        outs: &[(MapExpr, DType)],
        inputs: &[&Tensor],
        shape: &[usize],
        out_ptrs: &[u64],
        real: Real,
    ) -> Result<FusedExpr> {
        let n = numel_checked(shape)?;
        let mut keep = Vec::with_capacity(inputs.len());
        let mut ptrs = Vec::with_capacity(inputs.len());
        let mut strides = vec![Layout::contiguous(shape).strides];
        for t in inputs {
            let d = self.dev("map", t)?;
            strides.push(
                t.shape()
                    .iter()
                    .zip(&t.layout.strides)
                    .map(|(&e, &s)| if e == 1 { 0 } else { s })
                    .collect(),
            );
            ptrs.push(d.base + (t.layout.offset * t.dtype.size()) as u64);
            keep.push(d);
        }
        let (cshape, cst) = codegen::coalesce(shape, &strides);
        let mut access = Vec::with_capacity(inputs.len());
        let mut strided = Vec::new();
        for (q, t) in inputs.iter().enumerate() {
            let s = &cst[q + 1];
            let a = if s.iter().all(|&x| x == 0) {
                Access::Scalar
            } else if *s == cst[0] {
                Access::Contiguous
            } else {
                strided.push(s.clone());
                Access::Strided
            };
            access.push((t.dtype, a));
        }
        let sig = ElemSig {
            outs: outs.to_vec(),
            inputs: access,
            real,
            rank: cshape.len(),
        };
        let meta = sig.meta(n, out_ptrs, &ptrs, &cshape, &strided);
        Ok(FusedExpr { sig, meta, keep })
    }

    /// The tensor as a row-major buffer of `dtype` (no copy when it already is one): the
    /// storage to keep alive and the address of its first element.
    fn packed(&self, t: &Tensor, dtype: DType) -> Result<(Arc<dyn DeviceStorage>, u64)> {
        if t.dtype == dtype && t.layout.is_contiguous() {
            let r = self.dev("pack", t)?;
            let _ = r.len;
            return Ok((r.keep, r.base + (t.layout.offset * dtype.size()) as u64));
        }
        let c = self.elementwise(&MapExpr::Input(0), &[t], t.shape(), dtype, Real::of(dtype))?;
        let r = self.dev("pack", &c)?;
        Ok((r.keep, r.base))
    }

    /// Fills a fresh buffer of `n` elements of `dtype` with a bit pattern.
    fn fill_bits(&self, storage: &CudaStorage, n: usize, bits: u64) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let size = storage.dtype.size();
        self.launch(
            codegen::kernel_key(&("fill", size)),
            || Ok(codegen::fill_source(size)),
            &[n as i64, storage.ptr() as i64, bits as i64],
            grid_for(n),
        )
    }

    /// Copies host elements into a fresh device buffer.
    fn upload_slice<T: Copy>(&self, v: &[T], dtype: DType) -> Result<CudaStorage> {
        if lock(&self.recording).is_some() {
            // A recorded copy would read `v`'s memory again at every replay, long after `v`
            // is gone: the recording fails instead.
            return Err(BackendError::Device(
                "host data cannot be copied to the device while recording".into(),
            ));
        }
        let s = self.alloc(v.len(), dtype)?;
        if !v.is_empty() {
            self.to_device
                .fetch_add(std::mem::size_of_val(v) as u64, Ordering::Relaxed);
            self.bind()?;
            // SAFETY: the block holds at least `size_of_val(v)` bytes. From pageable memory the
            // call returns once `v` has been staged, so `v` may go away after it; the copy is
            // ordered after the work already queued that may still use the block.
            unsafe { drv::memcpy_htod_async(s.ptr(), v, self.stream.cu_stream()) }
                .map_err(|e| dev_err("copying to the device", e))?;
        }
        Ok(s)
    }

    /// Copies `n` elements from the device into a host vector.
    fn download_vec<T: Copy>(&self, ptr: u64, n: usize, zero: T) -> Result<Vec<T>> {
        let mut v = vec![zero; n];
        self.to_host
            .fetch_add((n * std::mem::size_of::<T>()) as u64, Ordering::Relaxed);
        if n > 0 && n * std::mem::size_of::<T>() <= staging::STAGING_BYTES {
            self.bind()?;
            let mut cell = lock(&self.staging);
            if cell.is_none() {
                *cell = staging::Staging::new();
            }
            if let Some(buf) = cell.as_mut() {
                let dst = buf.slice::<T>(n);
                // SAFETY: as below, into the page-locked buffer, which the lock keeps ours
                // until the copy has been waited for.
                unsafe { drv::memcpy_dtoh_async(dst, ptr, self.stream.cu_stream()) }
                    .map_err(|e| dev_err("copying from the device", e))?;
                self.stream
                    .synchronize()
                    .map_err(|e| dev_err("copying from the device", e))?;
                v.copy_from_slice(dst);
                return Ok(v);
            }
        }
        if n > 0 {
            self.bind()?;
            // SAFETY: `ptr` addresses at least `n` elements of `T` of a live block; the copy
            // is ordered after the work that writes it, and waited for before `v` is read.
            unsafe { drv::memcpy_dtoh_async(&mut v, ptr, self.stream.cu_stream()) }
                .map_err(|e| dev_err("copying from the device", e))?;
            self.stream
                .synchronize()
                .map_err(|e| dev_err("copying from the device", e))?;
        }
        Ok(v)
    }

    /// Rejects gather/scatter indices past the end.
    /// A device copy of an index vector checked against `bound` elements: from the cache when
    /// `shared` is the caller's reusable vector, else uploaded for this call.
    fn device_index(
        &self,
        op: &'static str,
        index: &[i64],
        shared: Option<&Arc<Vec<i64>>>,
        bound: usize,
    ) -> Result<Arc<CudaStorage>> {
        let Some(shared) = shared else {
            Self::check_indices(op, index, bound)?;
            return Ok(Arc::new(self.upload_slice(index, DType::I64)?));
        };
        let key = Arc::as_ptr(shared) as usize;
        if let Some(entry) = lock(&self.indices).get(&key) {
            if entry.max < bound as i64 || entry.max < 0 {
                return Ok(entry.device.clone());
            }
        }
        Self::check_indices(op, index, bound)?;
        let device = Arc::new(self.upload_slice(index, DType::I64)?);
        let mut cache = lock(&self.indices);
        let bytes: usize = cache.values().map(|e| e.host.len() * 8).sum();
        if bytes + index.len() * 8 > INDEX_CACHE_BYTES {
            cache.clear();
        }
        cache.insert(
            key,
            IndexEntry {
                host: shared.clone(),
                device: device.clone(),
                max: index.iter().copied().max().unwrap_or(-1),
            },
        );
        Ok(device)
    }

    fn gather_with(
        &self,
        input: &Tensor,
        index: &[i64],
        shared: Option<&Arc<Vec<i64>>>,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        let n = numel_checked(out_shape)?;
        if index.len() != n {
            return Err(shape_err(
                "gather",
                format!("{} indices for an output of {n} elements", index.len()),
            ));
        }
        // A gather only moves elements, so it keeps their type (a 16-bit weight stays 16-bit
        // for the tensor cores).
        let dtype = input.dtype;
        let (_keep, src) = self.packed(input, dtype)?;
        let out = self.alloc(n, dtype)?;
        if n > 0 {
            let idx = self.device_index("gather", index, shared, input.numel())?;
            let meta = [n as i64, src as i64, idx.ptr() as i64, out.ptr() as i64];
            self.launch(
                codegen::kernel_key(&("gather", dtype)),
                || Ok(codegen::gather_source(dtype)),
                &meta,
                grid_for(n),
            )?;
        }
        Ok(Self::wrap(out, out_shape))
    }

    fn scatter_with(
        &self,
        values: &Tensor,
        index: &[i64],
        shared: Option<&Arc<Vec<i64>>>,
        out_shape: &[usize],
        op: ReduceOp,
    ) -> Result<Tensor> {
        let n = numel_checked(out_shape)?;
        let real = Real::of(values.dtype);
        if index.len() != values.numel() {
            return Err(shape_err(
                "scatter",
                format!("{} indices for {} values", index.len(), values.numel()),
            ));
        }
        let (_keep, vals) = self.packed(values, real.dtype())?;
        let out = self.alloc(n, real.dtype())?;
        let init = match op {
            ReduceOp::Sum | ReduceOp::Mean => 0.0,
            ReduceOp::Max => f64::NEG_INFINITY,
            ReduceOp::Min => f64::INFINITY,
        };
        self.fill_bits(&out, n, bits_of(init, real.dtype()))?;
        if n == 0 {
            return Ok(Self::wrap(out, out_shape));
        }
        let count = if op == ReduceOp::Sum {
            None
        } else {
            let c = self.alloc_bytes(n * 4, n, DType::F32)?;
            self.fill_bits(&c, n, 0)?;
            Some(c)
        };
        let count_ptr = count.as_ref().map_or(0, |c| c.ptr());
        if !index.is_empty() {
            let idx = self.device_index("scatter", index, shared, n)?;
            let meta = [
                index.len() as i64,
                vals as i64,
                idx.ptr() as i64,
                out.ptr() as i64,
                count_ptr as i64,
            ];
            self.launch(
                codegen::kernel_key(&("scatter", op, real)),
                || Ok(codegen::scatter_source(op, real)),
                &meta,
                grid_for(index.len()),
            )?;
        }
        if count.is_some() {
            let meta = [n as i64, out.ptr() as i64, count_ptr as i64];
            self.launch(
                codegen::kernel_key(&("scatter finish", op, real)),
                || Ok(codegen::scatter_finish_source(op, real)),
                &meta,
                grid_for(n),
            )?;
        }
        Ok(Self::wrap(out, out_shape))
    }

    fn check_indices(op: &'static str, index: &[i64], n: usize) -> Result<()> {
        if let Some(&bad) = index.iter().find(|&&i| i >= 0 && i as u64 >= n as u64) {
            return Err(shape_err(
                op,
                format!("index {bad} into a tensor of {n} elements"),
            ));
        }
        Ok(())
    }
}

/// The bit pattern of `value` stored as `dtype`.
fn bits_of(value: f64, dtype: DType) -> u64 {
    match dtype {
        DType::F32 => u64::from((value as f32).to_bits()),
        DType::F64 => value.to_bits(),
        DType::F16 => u64::from(f16::from_f64(value).to_bits()),
        DType::BF16 => u64::from(bf16::from_f64(value).to_bits()),
        DType::Bool => u64::from(value != 0.0),
        DType::I64 => (value as i64) as u64,
    }
}

impl Backend for CudaBackend {
    fn name(&self) -> String {
        format!("cuda:0 {}", self.device_name)
    }

    fn upload(&self, host: &HostTensor) -> Result<Tensor> {
        upload_len(host)?;
        let s = match &host.data {
            HostData::F32(v) => self.upload_slice(v, DType::F32)?,
            HostData::F64(v) => self.upload_slice(v, DType::F64)?,
            HostData::F16(v) => self.upload_slice(v, DType::F16)?,
            HostData::BF16(v) => self.upload_slice(v, DType::BF16)?,
            HostData::Bool(v) => self.upload_slice(v, DType::Bool)?,
            HostData::I64(v) => self.upload_slice(v, DType::I64)?,
        };
        Ok(Self::wrap(s, &host.shape))
    }

    fn download(&self, t: &Tensor) -> Result<HostTensor> {
        let n = numel_checked(t.shape())?;
        let r = self.dev("download", t)?;
        // A row-major view is copied straight; any other layout is packed on the device.
        let (_keep, ptr) = if t.layout.is_contiguous() {
            (r.keep, r.base + (t.layout.offset * t.dtype.size()) as u64)
        } else {
            self.packed(t, t.dtype)?
        };
        let data = match t.dtype {
            DType::F32 => HostData::F32(self.download_vec(ptr, n, 0f32)?.into()),
            DType::F64 => HostData::F64(self.download_vec(ptr, n, 0f64)?.into()),
            DType::F16 => HostData::F16(self.download_vec(ptr, n, f16::ZERO)?.into()),
            DType::BF16 => HostData::BF16(self.download_vec(ptr, n, bf16::ZERO)?.into()),
            DType::Bool => HostData::Bool(self.download_vec(ptr, n, 0u8)?.into()),
            DType::I64 => HostData::I64(self.download_vec(ptr, n, 0i64)?.into()),
        };
        Ok(HostTensor {
            shape: t.shape().to_vec(),
            data,
        })
    }

    fn full(&self, shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
        let n = numel_checked(shape)?;
        let s = self.alloc(n, dtype)?;
        self.fill_bits(&s, n, bits_of(value, dtype))?;
        Ok(Self::wrap(s, shape))
    }

    fn map(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        out_shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor> {
        check_expr(expr, inputs.len())?;
        self.elementwise(expr, inputs, out_shape, dtype, Real::of(dtype))
    }

    fn map_many(
        &self,
        exprs: &[MapExpr],
        inputs: &[&Tensor],
        out_shape: &[usize],
        dtype: DType,
    ) -> Result<Vec<Tensor>> {
        for e in exprs {
            check_expr(e, inputs.len())?;
        }
        let outs: Vec<(MapExpr, DType)> = exprs.iter().map(|e| (e.clone(), dtype)).collect();
        self.elementwise_many(&outs, inputs, out_shape, Real::of(dtype))
    }

    fn map_many_into(
        &self,
        exprs: &[MapExpr],
        inputs: &[&Tensor],
        out_shape: &[usize],
        outs: &[&Tensor],
    ) -> Result<()> {
        if exprs.len() != outs.len() {
            return Err(shape_err(
                "map_many_into",
                format!("{} expressions for {} outputs", exprs.len(), outs.len()),
            ));
        }
        broadcastable(inputs, out_shape)?;
        let mut keep = Vec::with_capacity(outs.len());
        let mut typed = Vec::with_capacity(outs.len());
        for (e, t) in exprs.iter().zip(outs) {
            check_expr(e, inputs.len())?;
            if t.shape() != out_shape || !t.layout.is_contiguous() || t.layout.offset != 0 {
                return Err(shape_err(
                    "map_many_into",
                    format!(
                        "an output must be a whole row-major tensor of {out_shape:?}, not a view of {:?}",
                        t.shape()
                    ),
                ));
            }
            keep.push(self.dev("map_many_into", t)?);
            typed.push((e.clone(), t.dtype));
        }
        let real = if typed.iter().any(|(_, d)| *d == DType::F64) {
            Real::F64
        } else {
            Real::F32
        };
        let ptrs: Vec<u64> = keep.iter().map(|d| d.base).collect();
        self.elementwise_into(&typed, inputs, out_shape, &ptrs, real)
    }

    fn can_record(&self) -> bool {
        true
    }

    fn non_finite_flag(&self, tensors: &[&Tensor]) -> Result<Tensor> {
        let out = self.alloc(1, DType::F32)?;
        self.fill_bits(&out, 1, 0)?;
        // One kernel per element type, over as many whole row-major tensors as its argument
        // block holds; views are checked through a copy.
        let mut groups: Vec<(DType, Vec<(DevRef, usize)>)> = Vec::new();
        for t in tensors {
            let n = t.numel();
            if n == 0 {
                continue;
            }
            let d = if t.layout.is_contiguous() {
                let r = self.dev("non_finite_flag", t)?;
                DevRef {
                    base: r.base + (t.layout.offset * t.dtype.size()) as u64,
                    ..r
                }
            } else {
                let copy = self.cast(t, t.dtype)?;
                self.dev("non_finite_flag", &copy)?
            };
            match groups.iter_mut().find(|(g, _)| *g == t.dtype) {
                Some((_, list)) => list.push((d, n)),
                None => groups.push((t.dtype, vec![(d, n)])),
            }
        }
        const PER_LAUNCH: usize = 200;
        for (dtype, list) in &groups {
            let storage = match dtype {
                DType::F64 | DType::F32 | DType::F16 | DType::BF16 => *dtype,
                // Booleans and integers are always finite.
                _ => continue,
            };
            for chunk in list.chunks(PER_LAUNCH) {
                let mut meta = vec![out.ptr() as i64, chunk.len() as i64];
                for (d, n) in chunk {
                    meta.extend([d.base as i64, *n as i64]);
                }
                let most = chunk.iter().map(|(_, n)| *n).max().unwrap_or(1);
                let Some(cap) = codegen::meta_cap(meta.len()) else {
                    return Err(BackendError::Device(
                        "non_finite_flag: too many tensors for one kernel".into(),
                    ));
                };
                self.launch(
                    codegen::kernel_key(&("non_finite", storage, cap)),
                    || Ok(codegen::non_finite_source(storage, cap)),
                    &meta,
                    grid_for(most).min(2048),
                )?;
            }
        }
        drop(groups);
        Ok(Self::wrap(out, &[]))
    }

    fn begin_recording(&self) -> Result<()> {
        let mut current = lock(&self.recording);
        if current.is_some() {
            return Err(BackendError::Device(
                "a recording is already being captured".into(),
            ));
        }
        self.bind()?;
        self.stream
            .begin_capture(dsys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED)
            .map_err(|e| dev_err("starting a graph capture", e))?;
        *current = Some(self.pool.begin_recording());
        Ok(())
    }

    fn end_recording(&self) -> Result<crate::Recording> {
        let Some(id) = lock(&self.recording).take() else {
            return Err(BackendError::Device(
                "no recording is being captured".into(),
            ));
        };
        self.pool.end_recording();
        let graph = match self.stream.end_capture(dsys::CUgraphInstantiate_flags(0)) {
            Ok(Some(g)) => g,
            Ok(None) => {
                self.pool.release_recording(id);
                return Err(BackendError::Device("the capture recorded nothing".into()));
            }
            Err(e) => {
                self.pool.release_recording(id);
                return Err(dev_err("capturing a graph", e));
            }
        };
        Ok(crate::Recording {
            inner: Box::new(record::CudaRecording {
                graph: Mutex::new(record::GraphCell(graph)),
                id,
                pool: self.pool.clone(),
                ctx: self.ctx.clone(),
            }),
        })
    }

    fn replay(&self, recording: &crate::Recording) -> Result<()> {
        let Some(r) = recording.inner.downcast_ref::<record::CudaRecording>() else {
            return Err(BackendError::Device(
                "replay: the recording is not from the CUDA backend".into(),
            ));
        };
        lock(&r.graph)
            .0
            .launch()
            .map_err(|e| dev_err("launching a graph", e))
    }

    fn map_reduce(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        shape: &[usize],
        reduced: usize,
        op: ReduceOp,
        dtype: DType,
    ) -> Result<Tensor> {
        check_expr(expr, inputs.len())?;
        broadcastable(inputs, shape)?;
        let split = shape.len().saturating_sub(reduced);
        let r: usize = shape[split..].iter().product();
        let rows: usize = shape[..split].iter().product();
        // Longer rows over several axes: the last axes first (fused, as below), then the
        // rest of the partial results (a mean of equal-sized means is the mean).
        if r > 1 << 16 && reduced >= 2 && shape[shape.len() - 1] <= 1 << 16 {
            let mut inner = 1;
            let mut k = 0;
            while k < reduced && inner * shape[shape.len() - 1 - k] <= 1 << 16 {
                inner *= shape[shape.len() - 1 - k];
                k += 1;
            }
            let partial = self.map_reduce(expr, inputs, shape, k, op, dtype)?;
            let axes: Vec<usize> = (split..shape.len() - k).collect();
            return self.reduce(&partial, &axes, op);
        }
        // Rows of a few thousand at most, in one warp or block each; other shapes (and empty
        // ones) map, then reduce.
        if reduced == 0 || r == 0 || rows == 0 || r > 1 << 16 {
            let values = self.map(expr, inputs, shape, dtype)?;
            let axes: Vec<usize> = (split..shape.len()).collect();
            return self.reduce(&values, &axes, op);
        }
        let real = Real::of(dtype);
        let out = self.alloc(rows, real.dtype())?;
        let outs = [(expr.clone(), real.dtype())];
        let fused = self.fused_expr(&outs, inputs, shape, &[out.ptr()], real)?;
        if !pieces::one_kernel(&fused.sig, 1) {
            drop(fused);
            let values = self.map(expr, inputs, shape, dtype)?;
            let axes: Vec<usize> = (split..shape.len()).collect();
            return self.reduce(&values, &axes, op);
        }
        let mut meta = fused.meta;
        meta.push(r as i64);
        let warp = r <= codegen::WARP_ROW_MAX;
        let per_block = if warp {
            codegen::BLOCK as usize / 32
        } else {
            1
        };
        let sig = &fused.sig;
        self.launch(
            codegen::kernel_key(&("map_reduce", sig.key(), op, warp)),
            || {
                sig.reduce_source(op, warp)
                    .ok_or_else(|| too_many("map_reduce", inputs.len()))
            },
            &meta,
            rows.div_ceil(per_block).min(1 << 20) as u32,
        )?;
        drop(fused.keep);
        Ok(Self::wrap(out, &shape[..split]))
    }

    fn map_normalize(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        shape: &[usize],
        axis: usize,
        func: NormFn,
        dtype: DType,
    ) -> Result<Tensor> {
        check_expr(expr, inputs.len())?;
        broadcastable(inputs, shape)?;
        let storage = match dtype {
            DType::F64 | DType::F32 | DType::F16 | DType::BF16 => dtype,
            _ => DType::F32,
        };
        let n = numel_checked(shape)?;
        if axis >= shape.len() || n == 0 {
            let values = self.map(expr, inputs, shape, dtype)?;
            return self.normalize(&values, axis, func);
        }
        let len = shape[axis];
        let inner: usize = shape[axis + 1..].iter().product();
        let rows = n / len;
        let out = self.alloc(n, storage)?;
        let outs = [(expr.clone(), storage)];
        let fused = self.fused_expr(&outs, inputs, shape, &[out.ptr()], Real::of(storage))?;
        // Two more words, and a stride per strided input.
        if !pieces::one_kernel(&fused.sig, 2 + inputs.len()) {
            drop(fused);
            let values = self.map(expr, inputs, shape, dtype)?;
            return self.normalize(&values, axis, func);
        }
        let mut meta = fused.meta;
        meta.extend([len as i64, inner as i64]);
        // Each strided input's step along the normalised axis.
        for (t, (_, access)) in inputs.iter().zip(&fused.sig.inputs) {
            if *access == Access::Strided {
                let step = if t.shape()[axis] == 1 {
                    0
                } else {
                    t.layout.strides[axis]
                };
                meta.push(step as i64);
            }
        }
        let warp = len <= codegen::WARP_ROW_MAX;
        let cached = codegen::row_cache(len);
        let per_block = if warp {
            codegen::BLOCK as usize / 32
        } else {
            1
        };
        let sig = &fused.sig;
        // Rows contiguous along the axis, of a length divisible by four, move four elements
        // per lane with wide accesses (when those are aligned).
        let wide = inner == 1 && cached >= 4 && len.is_multiple_of(4) && sig.fours_aligned(&meta);
        self.launch(
            codegen::kernel_key(&(
                "map_normalize",
                sig.key(),
                func,
                storage,
                warp,
                cached,
                wide,
            )),
            || {
                sig.normalize_source(func, storage, warp, cached, wide)
                    .ok_or_else(|| too_many("map_normalize", inputs.len()))
            },
            &meta,
            rows.div_ceil(per_block).min(1 << 20) as u32,
        )?;
        drop(fused.keep);
        Ok(Self::wrap(out, shape))
    }

    fn reduce(&self, input: &Tensor, axes: &[usize], op: ReduceOp) -> Result<Tensor> {
        let rank = input.rank();
        let reduced = reduced_axes(rank, axes)?;
        let real = Real::of(input.dtype);
        let kept: Vec<usize> = (0..rank).filter(|&a| !reduced[a]).collect();
        let red: Vec<usize> = (0..rank).filter(|&a| reduced[a]).collect();
        let out_shape: Vec<usize> = kept.iter().map(|&a| input.shape()[a]).collect();
        let m = numel_checked(&out_shape)?;
        let r: usize = red.iter().map(|&a| input.shape()[a]).product();
        self.dev("reduce", input)?;
        if m == 0 || r == 0 {
            return self.full(&out_shape, 0.0, real.dtype());
        }
        // Floating inputs are read in their stored type; others are converted first.
        let storage = match input.dtype {
            DType::F32 | DType::F64 | DType::F16 | DType::BF16 => input.dtype,
            _ => real.dtype(),
        };
        let out = self.alloc(m, real.dtype())?;
        let rows_first: Vec<usize> = kept.iter().chain(&red).copied().collect();
        let cols_first: Vec<usize> = red.iter().chain(&kept).copied().collect();
        let by_column = input.dtype == storage
            && !input.permuted(&rows_first).layout.is_contiguous()
            && input.permuted(&cols_first).layout.is_contiguous();
        let run = |layout: codegen::ReduceLayout,
                   op: ReduceOp,
                   storage: DType,
                   [outputs, r, x, out, len, chunks, count]: [usize; 7]| {
            let meta = [outputs, r, x, out, len, chunks, count].map(|v| v as i64);
            let grid = match layout {
                codegen::ReduceLayout::PerThread | codegen::ReduceLayout::Column => {
                    grid_for(outputs)
                }
                codegen::ReduceLayout::Warp => {
                    outputs.div_ceil(codegen::BLOCK as usize / 32).min(1 << 20) as u32
                }
                codegen::ReduceLayout::Block => outputs.min(1 << 20) as u32,
            };
            self.launch(
                codegen::kernel_key(&("reduce", op, real, storage, layout)),
                || Ok(codegen::reduce_source(op, real, storage, layout)),
                &meta,
                grid,
            )
        };
        // A chunked first pass sums (a mean divides once, at the end).
        let first = if op == ReduceOp::Mean {
            ReduceOp::Sum
        } else {
            op
        };
        if by_column {
            // `[r, m]` as stored: a thread per column (and chunk of rows, when there are few
            // columns, so that enough threads run), partial results combined by a second pass.
            let (_keep, x) = self.packed(&input.permuted(&cols_first), storage)?;
            let x = x as usize;
            let chunks = (131_072 / m).clamp(1, r.div_ceil(32).max(1));
            let len = r.div_ceil(chunks);
            let chunks = r.div_ceil(len);
            let col = codegen::ReduceLayout::Column;
            if chunks == 1 {
                run(col, op, storage, [m, r, x, out.ptr() as usize, r, 1, r])?;
            } else {
                let partial = self.alloc(m * chunks, real.dtype())?;
                let p = partial.ptr() as usize;
                run(col, first, storage, [m * chunks, r, x, p, len, chunks, r])?;
                let o = out.ptr() as usize;
                run(col, op, real.dtype(), [m, chunks, p, o, chunks, 1, r])?;
            }
            return Ok(Self::wrap(out, &out_shape));
        }
        let (_keep, x) = self.packed(&input.permuted(&rows_first), storage)?;
        let x = x as usize;
        let o = out.ptr() as usize;
        if r <= 32 {
            run(
                codegen::ReduceLayout::PerThread,
                op,
                storage,
                [m, r, x, o, r, 1, r],
            )?;
        } else if r <= codegen::WARP_ROW_MAX {
            run(
                codegen::ReduceLayout::Warp,
                op,
                storage,
                [m, r, x, o, r, 1, r],
            )?;
        } else {
            // Few long rows: split each row over many blocks, then combine the partial results.
            let chunks = if m < 512 && r >= 1 << 15 {
                r.div_ceil(1 << 13).min(1024)
            } else {
                1
            };
            let len = r.div_ceil(chunks);
            let block = codegen::ReduceLayout::Block;
            if chunks == 1 {
                run(block, op, storage, [m, r, x, o, r, 1, r])?;
            } else {
                let partial = self.alloc(m * chunks, real.dtype())?;
                let p = partial.ptr() as usize;
                run(block, first, storage, [m * chunks, r, x, p, len, chunks, r])?;
                run(
                    codegen::ReduceLayout::Warp,
                    op,
                    real.dtype(),
                    [m, chunks, p, o, chunks, 1, r],
                )?;
            }
        }
        Ok(Self::wrap(out, &out_shape))
    }

    fn contract(
        &self,
        a: &Tensor,
        a_labels: &[u32],
        b: &Tensor,
        b_labels: &[u32],
        out_labels: &[u32],
    ) -> Result<Tensor> {
        contract::contract(self, a, a_labels, b, b_labels, out_labels)
    }

    fn is_accelerator(&self) -> bool {
        true
    }

    fn paths(&self) -> Option<&dyn crate::paths::PathDevice> {
        Some(self)
    }

    fn contract_map(
        &self,
        a: &Tensor,
        a_labels: &[u32],
        b: &Tensor,
        b_labels: &[u32],
        out_labels: &[u32],
        expr: &MapExpr,
        extra: &[&Tensor],
        dtype: DType,
    ) -> Result<Tensor> {
        check_expr(expr, extra.len() + 1)?;
        if let Some(t) = contract::contract_epilogue(
            self, a, a_labels, b, b_labels, out_labels, expr, extra, dtype,
        )? {
            return Ok(t);
        }
        // The epilogue reads the product where cuBLASLt left it, permuting it on the way. In
        // a 16-bit program the product is stored in the program's type, as the unfused plan
        // stores it: half the bytes to write and to read back.
        let half =
            matches!(dtype, DType::F16 | DType::BF16) && a.dtype == dtype && b.dtype == dtype;
        let store = half.then_some(dtype);
        let product = contract::contract_view(self, a, a_labels, b, b_labels, out_labels, store)?;
        let mut inputs = Vec::with_capacity(extra.len() + 1);
        inputs.push(&product);
        inputs.extend_from_slice(extra);
        let shape = product.shape().to_vec();
        self.map(expr, &inputs, &shape, dtype)
    }

    fn normalize(&self, input: &Tensor, axis: usize, func: NormFn) -> Result<Tensor> {
        let rank = input.rank();
        if axis >= rank {
            return Err(shape_err(
                "normalize",
                format!("axis {axis} of a rank-{rank} tensor"),
            ));
        }
        // Normalised in the compute type, stored in the input's floating type.
        let storage = match input.dtype {
            DType::F64 | DType::F32 | DType::F16 | DType::BF16 => input.dtype,
            _ => DType::F32,
        };
        let real = Real::of(storage);
        let shape = input.shape();
        let numel = numel_checked(shape)?;
        let n = shape[axis];
        let inner: usize = shape[axis + 1..].iter().product();
        let outer: usize = shape[..axis].iter().product();
        let (_keep, x) = self.packed(input, storage)?;
        let out = self.alloc(numel, storage)?;
        if numel > 0 {
            let rows = outer * inner;
            let meta = [
                rows as i64,
                n as i64,
                inner as i64,
                x as i64,
                out.ptr() as i64,
            ];
            let warp = n <= codegen::WARP_ROW_MAX;
            let cached = codegen::row_cache(n);
            let per_block = if warp {
                codegen::BLOCK as usize / 32
            } else {
                1
            };
            self.launch(
                codegen::kernel_key(&("normalize", func, real, storage, warp, cached)),
                || Ok(codegen::normalize_source(func, real, storage, warp, cached)),
                &meta,
                rows.div_ceil(per_block).min(1 << 20) as u32,
            )?;
        }
        Ok(Self::wrap(out, shape))
    }

    fn map_rows(&self, args: &crate::RowMapArgs<'_>) -> Result<Tensor> {
        self.map_rows_call(args)
    }

    fn attention(&self, args: &crate::AttentionArgs<'_>) -> Result<Tensor> {
        self.attention_call(args)
    }

    fn gather(&self, input: &Tensor, index: &[i64], out_shape: &[usize]) -> Result<Tensor> {
        self.gather_with(input, index, None, out_shape)
    }

    fn gather_shared(
        &self,
        input: &Tensor,
        index: &Arc<Vec<i64>>,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        self.gather_with(input, index, Some(index), out_shape)
    }

    fn scatter(
        &self,
        values: &Tensor,
        index: &[i64],
        out_shape: &[usize],
        op: ReduceOp,
    ) -> Result<Tensor> {
        self.scatter_with(values, index, None, out_shape, op)
    }

    fn scatter_shared(
        &self,
        values: &Tensor,
        index: &Arc<Vec<i64>>,
        out_shape: &[usize],
        op: ReduceOp,
    ) -> Result<Tensor> {
        self.scatter_with(values, index, Some(index), out_shape, op)
    }

    fn cast(&self, input: &Tensor, dtype: DType) -> Result<Tensor> {
        let wide = matches!(input.dtype, DType::F64 | DType::I64)
            || matches!(dtype, DType::F64 | DType::Bool | DType::I64);
        let real = if wide { Real::F64 } else { Real::F32 };
        self.elementwise(&MapExpr::Input(0), &[input], input.shape(), dtype, real)
    }

    fn synchronize(&self) -> Result<()> {
        self.bind()?;
        self.stream
            .synchronize()
            .map_err(|e| dev_err("waiting for the device", e))
    }

    fn memory_report(&self) -> Option<String> {
        Some(format!(
            "{}; copied to the device {}, to the host {}",
            format_memory_stats(&self.memory_stats()),
            mib(self.to_device.load(Ordering::Relaxed) as usize),
            mib(self.to_host.load(Ordering::Relaxed) as usize)
        ))
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
mod tests {
    use super::*;

    #[test]
    fn open_never_panics() {
        match CudaBackend::open() {
            Ok(be) => assert!(be.name().starts_with("cuda:0")),
            Err(why) => assert!(!why.to_string().is_empty()),
        }
    }

    #[test]
    fn memory_report_line() {
        let s = MemoryStats {
            in_use: 3 << 20,
            peak: 5 << 20,
            reserved: 6 << 20,
            allocations: 200,
            cache_hits: 150,
            driver_allocations: 50,
        };
        assert_eq!(
            format_memory_stats(&s),
            "in use 3.0 MiB, peak 5.0 MiB, reserved 6.0 MiB, allocations 200, cache hits 150 \
             (75.0% hit rate), driver allocations 50"
        );
        let empty = MemoryStats {
            in_use: 0,
            peak: 0,
            reserved: 0,
            allocations: 0,
            cache_hits: 0,
            driver_allocations: 0,
        };
        assert!(format_memory_stats(&empty).contains("(0.0% hit rate)"));
    }

    #[test]
    fn fill_patterns() {
        assert_eq!(bits_of(1.0, DType::F32), 0x3f80_0000);
        assert_eq!(bits_of(1.0, DType::F16), 0x3c00);
        assert_eq!(bits_of(1.0, DType::BF16), 0x3f80);
        assert_eq!(bits_of(2.0, DType::Bool), 1);
        assert_eq!(bits_of(-1.0, DType::I64), u64::MAX);
        assert_eq!(
            bits_of(f64::NEG_INFINITY, DType::F64),
            0xfff0_0000_0000_0000
        );
    }

    #[test]
    fn cache_dir_follows_the_environment() {
        if std::env::var_os("TL_PTX_CACHE").is_none() {
            if let Some(d) = ptx_cache_dir() {
                assert!(d.ends_with("tensorlogic/ptx"));
            }
        }
    }
}
