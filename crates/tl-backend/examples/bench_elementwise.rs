//! Times every elementwise function of the op table through `Calls::map` on the CPU
//! backend, f32 and f64, over 2^22 values (inputs in ±[0.1, 1.1), |x| + 0.5 for the
//! functions defined only for positive arguments).
//!
//! Run with `cargo run --release -p tl-backend --example bench_elementwise`. Prints one JSON
//! line per case, `{"case": ..., "median_s": ..., "runs": ...}` (median after warm-up).

use std::time::{Duration, Instant};
use tl_backend::cpu::CpuBackend;
use tl_backend::{Backend, BinaryFn, Calls, DType, HostTensor, MapExpr, Result, UnaryFn};

/// Deterministic nonzero data in ±[0.1, 1.1).
fn data(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 40) as f64 / (1u64 << 24) as f64;
            if s & 1 == 0 {
                0.1 + u
            } else {
                -0.1 - u
            }
        })
        .collect()
}

/// Median seconds of `f` after warm-up: at least 9 timed runs, more while under ~1 s.
fn time(mut f: impl FnMut() -> Result<()>) -> Result<(f64, usize)> {
    for _ in 0..2 {
        f()?;
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 9 || (start.elapsed() < Duration::from_millis(1000) && times.len() < 100) {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times.len()))
}

fn main() -> Result<()> {
    let be = CpuBackend::new();
    eprintln!("backend: {}", be.name());
    let n = 1usize << 22;
    let x = data(n, 1);
    let y = data(n, 2);
    for dtype in [DType::F32, DType::F64] {
        let up = |v: &[f64]| -> Result<_> {
            be.upload(&HostTensor::from_f64(vec![n], v.to_vec(), dtype))
        };
        let positive: Vec<f64> = x.iter().map(|v| v.abs() + 0.5).collect();
        let (tx, tp, ty) = (up(&x)?, up(&positive)?, up(&y)?);
        let input = || Box::new(MapExpr::Input(0));
        for f in UnaryFn::ALL.iter() {
            let arg = if matches!(f, UnaryFn::Log | UnaryFn::Sqrt) {
                &tp
            } else {
                &tx
            };
            let e = MapExpr::Unary(*f, input());
            let r = time(|| be.map(&e, &[arg], &[n], dtype).map(drop))?;
            report(&format!("{f:?} {dtype}"), r);
        }
        for f in BinaryFn::ALL.iter() {
            let a = if *f == BinaryFn::Pow { &tp } else { &tx };
            let e = MapExpr::Binary(*f, input(), Box::new(MapExpr::Input(1)));
            let r = time(|| be.map(&e, &[a, &ty], &[n], dtype).map(drop))?;
            report(&format!("{f:?} {dtype}"), r);
        }
    }
    Ok(())
}

fn report(case: &str, r: (f64, usize)) {
    println!(
        "{{\"case\": \"{case}\", \"median_s\": {:.6e}, \"runs\": {}}}",
        r.0, r.1
    );
}
