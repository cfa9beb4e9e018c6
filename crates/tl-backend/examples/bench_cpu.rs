//! Times f32 GEMM and einsum contractions through `Calls::contract` on the CPU backend.
//!
//! Run with `cargo run --release -p tl-backend --example bench_cpu`. Prints one JSON line per
//! case: `{"case": ..., "median_s": ..., "runs": ...}` (median of many runs after warm-up), in
//! the same format as `scripts/bench_numpy.py` so `scripts/bench-cpu.sh` can compare them.

use std::time::{Duration, Instant};
use tl_backend::cpu::CpuBackend;
use tl_backend::{Backend, Calls, HostTensor, Result, Tensor};

/// Deterministic nonzero test data in ±[0.1, 1.1).
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 40) as f32 / (1u64 << 24) as f32;
            if s & 1 == 0 {
                0.1 + u
            } else {
                -0.1 - u
            }
        })
        .collect()
}

/// An uploaded f32 tensor of random contents.
fn rand(be: &CpuBackend, shape: &[usize], seed: u64) -> Result<Tensor> {
    let n = shape.iter().product();
    be.upload(&HostTensor::from_f32(shape.to_vec(), data(n, seed)))
}

/// Median seconds of `f` after warm-up: at least 7 timed runs, more while under ~1.5 s.
fn time(mut f: impl FnMut() -> Result<()>) -> Result<(f64, usize)> {
    for _ in 0..3 {
        f()?;
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 7 || (start.elapsed() < Duration::from_millis(1500) && times.len() < 200) {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times.len()))
}

fn report(case: &str, r: (f64, usize)) {
    println!(
        "{{\"case\": \"{case}\", \"median_s\": {:.6e}, \"runs\": {}}}",
        r.0, r.1
    );
}

fn main() -> Result<()> {
    let be = CpuBackend::new();
    eprintln!("backend: {}", be.name());
    let (i, j, k, l) = (0u32, 1u32, 2u32, 3u32);
    for n in [256usize, 512, 1024, 2048] {
        let a = rand(&be, &[n, n], 1)?;
        let b = rand(&be, &[n, n], 2)?;
        let r = time(|| be.contract(&a, &[i, j], &b, &[j, k], &[i, k]).map(drop))?;
        report(&format!("gemm {n}"), r);
    }

    let a = rand(&be, &[32, 256, 256], 3)?;
    let b = rand(&be, &[32, 256, 256], 4)?;
    let r = time(|| {
        be.contract(&a, &[l, i, j], &b, &[l, j, k], &[l, i, k])
            .map(drop)
    })?;
    report("bij,bjk->bik (b=32, 256)", r);

    let x = rand(&be, &[4096], 5)?;
    let m = rand(&be, &[4096, 4096], 6)?;
    let y = rand(&be, &[4096], 7)?;
    let r = time(|| {
        let my = be.contract(&m, &[i, j], &y, &[j], &[i])?;
        be.contract(&x, &[i], &my, &[i], &[]).map(drop)
    })?;
    report("i,ij,j-> (n=4096)", r);

    let a = rand(&be, &[512, 512], 8)?;
    let b = rand(&be, &[512, 512], 9)?;
    let c = rand(&be, &[512, 512], 10)?;
    let r = time(|| {
        let ab = be.contract(&a, &[i, j], &b, &[j, k], &[i, k])?;
        be.contract(&ab, &[i, k], &c, &[k, l], &[i, l]).map(drop)
    })?;
    report("ij,jk,kl->il (512)", r);

    let a = rand(&be, &[4096, 256], 11)?;
    let b = rand(&be, &[4096, 256], 12)?;
    let r = time(|| be.contract(&a, &[i, j], &b, &[i, k], &[j, k]).map(drop))?;
    report("ij,ik->jk (4096x256)", r);

    let q = rand(&be, &[8, 512, 64], 13)?;
    let kk = rand(&be, &[8, 512, 64], 14)?;
    let r = time(|| {
        be.contract(&q, &[l, i, k], &kk, &[l, j, k], &[l, i, j])
            .map(drop)
    })?;
    report("hpd,hqd->hpq (8, 512, 64)", r);
    Ok(())
}
