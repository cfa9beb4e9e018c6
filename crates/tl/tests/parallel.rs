//! `tl run --gpus N` end to end, on the CPU (`--device cpu --gpus N` starts N CPU worker
//! processes that sum their gradients through the launcher, with the same sharding and
//! weighting code as NCCL on GPUs): N workers train to the same parameters and loss curve as one
//! process with the full batch; `--gpus 1` is bit-identical to a plain run; a failing or killed
//! worker stops the run with an error naming its rank. On a machine with a GPU, `--device cuda
//! --gpus 1` is also checked against a plain GPU run.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn tl(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tl"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("tl runs")
}

/// A two-layer network on 10 examples, batches of 4 (so the last batch of every epoch has 2
/// examples and 3 workers get uneven shards, one of them empty), `Loss {projection} …`.
fn program(projection: &str, epochs: usize) -> String {
    let x: Vec<String> = (0..10)
        .map(|e| {
            let e = e as f64;
            format!("[{}, {}, {}]", (e * 0.7).sin(), (e * 1.3).cos(), e / 10.0)
        })
        .collect();
    let t: Vec<String> = (0..10)
        .map(|e| format!("{}", (e as f64 * 0.9).sin()))
        .collect();
    format!(
        "X = [{}]\nT = [{}]\n\
         param W1[5, 3] ~ normal(0, 1)\nparam B1[5] = 0\nparam W2[5] ~ normal(0, 1)\n\
         H[e, h] = tanh(W1[h, i] X[e, i] + B1[h])\nY[e] = W2[h] H[e, h]\n\
         Loss {projection} (Y[e] - T[e])^2\n\
         minimize Loss with adam(lr=0.05) for {epochs} epochs batch e 4\n\
         W1?\nB1?\nW2?\nLoss?\n",
        x.join(", "),
        t.join(", ")
    )
}

fn numbers(v: &serde_json::Value, out: &mut Vec<f64>) {
    match v {
        serde_json::Value::Number(n) => out.push(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::Array(a) => a.iter().for_each(|x| numbers(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| numbers(x, out)),
        _ => {}
    }
}

/// Every number of the JSON answers on standard output.
fn answers(out: &Output) -> Vec<f64> {
    assert!(
        out.status.success(),
        "tl failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let j: serde_json::Value = serde_json::from_str(line).expect("JSON lines");
        numbers(&j, &mut v);
    }
    v
}

fn losses(csv: &Path) -> Vec<f64> {
    std::fs::read_to_string(csv)
        .expect("log written")
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .nth(2)
                .and_then(|x| x.parse().ok())
                .expect("a loss")
        })
        .collect()
}

fn assert_close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= 1e-9 * (1.0 + y.abs()),
            "{what}: {x} vs {y}"
        );
    }
}

#[test]
fn cpu_workers_match_one_process_with_the_full_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for projection in ["avg=", "="] {
        std::fs::write(dir.join("p.tl"), program(projection, 5)).unwrap();
        let base = ["run", "p.tl", "--json", "--dtype", "f64", "--device", "cpu"];
        let plain = tl(dir, &[&base[..], &["--log", "plain.csv"]].concat());
        let want = answers(&plain);
        let want_curve = losses(&dir.join("plain.csv"));
        assert_eq!(want_curve.len(), 15);
        for n in ["2", "3"] {
            let log = format!("n{n}.csv");
            let out = tl(dir, &[&base[..], &["--gpus", n, "--log", &log]].concat());
            assert_close(
                &answers(&out),
                &want,
                &format!("{projection} with {n} workers"),
            );
            assert_close(&losses(&dir.join(&log)), &want_curve, "loss curve");
            // Rank 0 alone prints: one set of answers.
            assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4);
        }
    }
}

#[test]
fn one_gpu_flag_is_bit_identical_to_a_plain_run() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("p.tl"), program("avg=", 3)).unwrap();
    let plain = tl(tmp.path(), &["run", "p.tl", "--json", "--device", "cpu"]);
    let one = tl(
        tmp.path(),
        &["run", "p.tl", "--json", "--device", "cpu", "--gpus", "1"],
    );
    assert!(plain.status.success() && one.status.success());
    assert_eq!(one.stdout, plain.stdout);
    if tl_backend::cuda::CudaBackend::open().is_err() {
        eprintln!("skipped the GPU half: no CUDA device");
        return;
    }
    let plain = tl(tmp.path(), &["run", "p.tl", "--json", "--device", "cuda"]);
    let one = tl(
        tmp.path(),
        &["run", "p.tl", "--json", "--device", "cuda", "--gpus", "1"],
    );
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    assert_eq!(one.stdout, plain.stdout);
}

#[test]
fn only_rank_0_checkpoints_and_a_run_resumes_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("p.tl"), program("avg=", 2)).unwrap();
    let base = [
        "run", "p.tl", "--json", "--dtype", "f64", "--device", "cpu", "--gpus", "2",
    ];
    let out = tl(
        dir,
        &[
            &base[..],
            &["--checkpoint", "ck", "--checkpoint-every", "3"],
        ]
        .concat(),
    );
    let trained = answers(&out);
    let ckpt = tl_run::checkpoint::load(&dir.join("ck")).expect("a checkpoint");
    assert_eq!(ckpt.step, 6);
    let again = tl(dir, &[&base[..], &["--resume", "ck"]].concat());
    assert_close(&answers(&again), &trained, "resumed at the last step");
}

#[test]
fn a_failing_rank_stops_every_rank_and_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    // Example 1's target makes log(…) NaN: whichever rank computes it fails.
    let text = "X = [[1, 2], [3, 4]]\nT = [1, -3]\nparam W[2] ~ normal(0, 1)\n\
                Y[e] = W[i] X[e, i]\nLoss avg= (Y[e] - T[e])^2 + log(T[e] + 1.5)\n\
                minimize Loss with sgd(lr=0.01) for 3 epochs batch e 2\n";
    std::fs::write(tmp.path().join("p.tl"), text).unwrap();
    let started = Instant::now();
    let out = tl(
        tmp.path(),
        &["run", "p.tl", "--device", "cpu", "--gpus", "2"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert!(err.contains("TL0406"), "{err}");
    assert!(
        err.contains("rank 0 of 2") || err.contains("rank 1 of 2"),
        "{err}"
    );
    assert!(err.contains("not finite") || err.contains("NaN"), "{err}");
}

#[test]
fn errors_before_launch_are_reported_once() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("p.tl"), program("avg=", 1)).unwrap();
    let out = tl(
        tmp.path(),
        &["run", "p.tl", "--device", "cpu", "--gpus", "all"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("TL0405") && err.contains("--gpus all"),
        "{err}"
    );
    let out = tl(tmp.path(), &["run", "p.tl", "--gpus", "0"]);
    assert!(!out.status.success());
    let text =
        "param W[2] ~ normal(0, 1)\nLoss = W[i] W[i]\nminimize Loss with sgd(lr=0.1) for 2 steps\n";
    std::fs::write(tmp.path().join("q.tl"), text).unwrap();
    let out = tl(
        tmp.path(),
        &["run", "q.tl", "--device", "cpu", "--gpus", "2"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no `batch` clause"), "{err}");
}

/// The children of a process (Linux: /proc/PID/task/PID/children).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn a_killed_worker_stops_the_run_and_is_named() {
    if !Path::new("/proc/self/task").exists() {
        eprintln!("skipped: no /proc");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("p.tl"), program("avg=", 100_000)).unwrap();
    let launcher = Command::new(env!("CARGO_BIN_EXE_tl"))
        .current_dir(tmp.path())
        .args(["run", "p.tl", "--device", "cpu", "--gpus", "2", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let began = Instant::now();
    let victim = loop {
        let rank1 = children(launcher.id()).into_iter().find(|&c| {
            std::fs::read(format!("/proc/{c}/cmdline"))
                .is_ok_and(|cmd| cmd.windows(9).any(|w| w == b"--rank\x001\x00"))
        });
        if let Some(pid) = rank1 {
            break pid;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "no worker started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(300));
    let workers = children(launcher.id());
    assert_eq!(workers.len(), 2, "{workers:?}");
    let killed = Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = launcher.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        began.elapsed() < Duration::from_secs(60),
        "took {:?}",
        began.elapsed()
    );
    assert!(err.contains("rank 1 of 2"), "{err}");
    for pid in workers {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z "),
            "worker {pid} still runs: {stat}"
        );
    }
}

/// A rank's side of a run whose other rank has gone: every exchange fails.
struct Abandoned;

impl tl_dist::Reducer for Abandoned {
    fn rank(&self) -> usize {
        0
    }
    fn world(&self) -> usize {
        2
    }
    fn start(
        &mut self,
        _: &dyn tl_backend::Backend,
        _: Vec<tl_backend::Tensor>,
    ) -> Result<(), tl_dist::ReduceError> {
        Err(tl_dist::ReduceError::Lost {
            rank: 1,
            detail: "its connection closed".into(),
        })
    }
    fn finish(
        &mut self,
        _: &dyn tl_backend::Backend,
    ) -> Result<Vec<Vec<tl_backend::Tensor>>, tl_dist::ReduceError> {
        Ok(Vec::new())
    }
}

/// A failed gradient exchange is error TL0307 at the `minimize`, naming the rank that stopped
/// (which rank a real run loses first is a race, so this drives the engine with a reducer that
/// fails at the first exchange).
#[test]
fn a_failed_exchange_is_tl0307_at_the_minimize() {
    use tl_syntax::ToDiagnostic;
    let text = program("avg=", 1);
    let mut sources = tl_syntax::SourceMap::new();
    let (parsed, diags) = tl_syntax::load_source("p.tl", &text, &mut sources, Path::new("."));
    assert!(diags.is_empty(), "{diags:?}");
    let checked = tl_check::check(&parsed, &sources).expect("checks");
    let plan = tl_plan::plan(&checked).expect("plans");
    let backend = tl_backend::cpu::CpuBackend::new();
    let mut engine =
        tl_run::Engine::new(&checked, &plan, &backend, Default::default()).expect("an engine");
    let mut reducer = Abandoned;
    let mut dp = tl_run::parallel::DataParallel::new(&mut reducer);
    let e = engine
        .run_parallel(&mut |_| {}, &mut tl_run::observe::Silent, &mut dp)
        .expect_err("the exchange fails");
    let d = e.to_diagnostic();
    assert_eq!(d.code, "TL0307", "{d:?}");
    assert!(d.message.contains("rank 1 stopped"), "{}", d.message);
    let minimize = text.find("minimize").expect("a minimize") as u32;
    assert_eq!(d.span.map(|s| s.start), Some(minimize), "{d:?}");
    assert!(
        d.help.is_some_and(|h| h.contains("--checkpoint")),
        "the hint says how to make the run resumable"
    );
}
