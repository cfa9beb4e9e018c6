//! A loop over a virtual index runs in memory that does not grow with its number of steps: the
//! process's peak resident memory after 200 000 steps is within a few megabytes of its peak
//! after 2 000, where keeping every step of the 128-wide state would take 100 MB more. (One
//! test in its own binary, so no other test moves the peak; Linux only, through
//! `/proc/self/status`.)

mod common;

use common::planned;
use tl_backend::cpu::CpuBackend;
use tl_run::{Engine, RunOptions};

/// The process's peak resident memory in bytes (`VmHWM`), where the system reports it.
fn peak_rss() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn run(steps: usize) {
    let text = format!(
        "param W[128, 128] ~ normal(0, 0.05)\nS[i, *t+1: {steps}] = tanh(W[i, j] S[j, *t] + 0.1)\nY = S[i]"
    );
    let (checked, plan) = planned(&text);
    let backend = CpuBackend::new();
    let mut engine = Engine::new(&checked, &plan, &backend, RunOptions::default()).expect("starts");
    engine.evaluate_all().expect("runs");
}

#[test]
fn peak_memory_is_flat_in_the_number_of_steps() {
    run(2_000);
    let Some(short) = peak_rss() else {
        eprintln!("skipped: no /proc/self/status");
        return;
    };
    run(200_000);
    let long = peak_rss().unwrap_or(short);
    let grown = long.saturating_sub(short);
    assert!(
        grown < 8 << 20,
        "peak memory grew by {grown} bytes from 2 000 to 200 000 steps"
    );
}
