//! Times square GEMMs through the CUDA backend as the engine runs a contraction: with
//! `Calls::contract_map` storing the product in the program's element type (f32 for f32 and
//! tf32, f16 or bf16 with f32 accumulation for the 16-bit types, as `torch.matmul` does).
//!
//! Build with `cargo build --release -p tl-backend --example bench_gemm_cuda`. For n in 64 …
//! 8192 and element types f32, tf32 (f32 with TF32 tensor cores allowed), f16 and bf16, it
//! times `C[i, k] = A[i, j] B[j, k]` on random n×n operands uploaded once: 3 warm-up runs, then
//! 20 timed samples, each 10 back-to-back contractions followed by one `synchronize` (so, as in
//! a program and as CUDA-event timing on the PyTorch side, the host's wait is not counted per
//! GEMM), reporting the median time per contraction. Prints one JSON line
//! per case: `{"n": ..., "dtype": ..., "ms": ..., "tflops": ...}` (`2 n³` flops per GEMM), in
//! the same format as `scripts/bench_gemm_torch.py` so `scripts/gpu-bench.sh` can compare them.
//! Exits with a message when no CUDA device is usable.

use std::process::ExitCode;
use std::time::Instant;
use tl_backend::cuda::CudaBackend;
use tl_backend::Calls;
use tl_backend::{Backend, DType, HostTensor, MapExpr, Result, Tensor};

/// Sizes of the square operands.
const SIZES: [usize; 8] = [64, 128, 256, 512, 1024, 2048, 4096, 8192];
/// Untimed runs before timing.
const WARMUP: usize = 3;
/// Timed samples; the median is reported.
const RUNS: usize = 20;
/// Contractions per timed sample.
const BURST: usize = 10;

/// Deterministic test data in [-1, 1).
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// An n×n tensor of random contents in `dtype`, on the device.
fn operand(be: &CudaBackend, n: usize, dtype: DType, seed: u64) -> Result<Tensor> {
    let t = be.upload(&HostTensor::from_f32(vec![n, n], data(n * n, seed)))?;
    if dtype == DType::F32 {
        Ok(t)
    } else {
        be.cast(&t, dtype)
    }
}

/// `C[i, k] = A[i, j] B[j, k]`, stored as the operands' type.
fn gemm(be: &CudaBackend, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (i, j, k) = (0u32, 1u32, 2u32);
    be.contract_map(
        a,
        &[i, j],
        b,
        &[j, k],
        &[i, k],
        &MapExpr::Input(0),
        &[],
        a.dtype,
    )
}

/// Median milliseconds per GEMM after warm-up.
fn time_gemm(be: &CudaBackend, a: &Tensor, b: &Tensor) -> Result<f64> {
    for _ in 0..WARMUP {
        gemm(be, a, b)?;
    }
    be.synchronize()?;
    let mut ms = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        be.synchronize()?;
        let t = Instant::now();
        for _ in 0..BURST {
            gemm(be, a, b)?;
        }
        be.synchronize()?;
        ms.push(t.elapsed().as_secs_f64() * 1e3 / BURST as f64);
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms[RUNS / 2])
}

fn bench(be: &CudaBackend) -> Result<()> {
    let cases = [
        ("f32", DType::F32, false),
        ("tf32", DType::F32, true),
        ("f16", DType::F16, false),
        ("bf16", DType::BF16, false),
    ];
    for n in SIZES {
        for (name, dtype, tf32) in cases {
            be.set_tf32(tf32);
            let a = operand(be, n, dtype, 1)?;
            let b = operand(be, n, dtype, 2)?;
            let ms = time_gemm(be, &a, &b)?;
            let tflops = 2.0 * (n as f64).powi(3) / (ms * 1e-3) / 1e12;
            println!(
                "{{\"n\": {n}, \"dtype\": \"{name}\", \"ms\": {ms:.6}, \"tflops\": {tflops:.4}}}"
            );
        }
    }
    be.set_tf32(false);
    Ok(())
}

fn main() -> ExitCode {
    let be = match CudaBackend::open() {
        Ok(be) => be,
        Err(why) => {
            eprintln!("bench_gemm_cuda: the CUDA backend is unavailable: {why}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("backend: {}", be.name());
    match bench(&be) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_gemm_cuda: {e}");
            ExitCode::FAILURE
        }
    }
}
