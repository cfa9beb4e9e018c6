//! Kernels from source: the memory and disk caches, NVRTC, loading PTX, and launching with the
//! `TlMeta` argument block.

use super::*;

impl CudaBackend {
    /// The compiled kernel of a source (memory cache, then disk cache, then NVRTC).
    pub(super) fn function(&self, src: &str) -> Result<CudaFunction> {
        let key = codegen::cache_key(src, &self.target);
        if let Some(f) = lock(&self.kernels).get(&key) {
            return Ok(f.clone());
        }
        let f = self.build(src, key)?;
        lock(&self.kernels).insert(key, f.clone());
        Ok(f)
    }

    pub(super) fn load_ptx(&self, ptx: String) -> Result<CudaFunction> {
        let module = self
            .ctx
            .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
            .map_err(|e| dev_err("loading a kernel", e))?;
        module
            .load_function("tl_kernel")
            .map_err(|e| dev_err("loading a kernel", e))
    }

    pub(super) fn build(&self, src: &str, key: u64) -> Result<CudaFunction> {
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
    pub(super) fn launch(
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

    pub(super) fn launch_function(&self, f: &CudaFunction, meta: &[i64], grid: u32) -> Result<()> {
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
}
