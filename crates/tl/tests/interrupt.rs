//! Ctrl-C during training: twenty runs, each interrupted with SIGINT at a pseudo-random moment
//! (in a step, between steps, while a checkpoint is being written) and each resuming from the
//! checkpoint the one before left. Every interrupt must leave a checkpoint that loads, at the
//! step the log ends on, and a log whose rows run 1, 2, … without a gap or a repeat.
#![cfg(unix)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const PROGRAM: &str = "X = [[0, 0], [0, 1], [1, 0], [1, 1]]
T = [0, 1, 1, 0]
param W1[16, 2] ~ normal(0, 1)
param B1[16] = 0
param W2[16] ~ normal(0, 1)
param B2 = 0
H[e, h] = tanh(W1[h, i] X[e, i] + B1[h])
Y[e] = sig(W2[h] H[e, h] + B2)
Loss avg= (Y[e] - T[e])^2
minimize Loss with adam(lr=0.01) for 100000000 steps
";

/// The steps of a log, in order.
fn log_steps(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("log: {e}"));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("step,epoch,loss,lr,seconds"));
    lines
        .map(|l| {
            let step = l.split(',').next().unwrap_or("");
            step.parse()
                .unwrap_or_else(|_| panic!("a row that does not parse: {l:?}"))
        })
        .collect()
}

#[test]
fn twenty_interrupts_each_leave_a_resumable_checkpoint_and_a_whole_log() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let prog = dir.path().join("xor.tl");
    std::fs::write(&prog, PROGRAM).unwrap_or_else(|e| panic!("{e}"));
    let (ck, log) = (dir.path().join("ck"), dir.path().join("log.csv"));
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut last = 0;
    for run in 0..20 {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tl"));
        cmd.args(["run", "--device", "cpu", "--checkpoint-every", "7"])
            .arg("--checkpoint")
            .arg(&ck)
            .arg("--log")
            .arg(&log);
        if run > 0 {
            cmd.arg("--resume").arg(&ck);
        }
        let child = cmd
            .arg(&prog)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run tl: {e}"));
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        std::thread::sleep(Duration::from_millis(60 + state % 240));
        let killed = Command::new("kill")
            .arg("-INT")
            .arg(child.id().to_string())
            .status()
            .unwrap_or_else(|e| panic!("kill: {e}"));
        assert!(killed.success());
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "run {run}: {stderr}");
        assert!(
            stderr.contains("TL0315") && stderr.contains("--resume"),
            "{stderr}"
        );
        let saved = tl_run::checkpoint::load(&ck)
            .unwrap_or_else(|e| panic!("run {run}: the checkpoint does not load: {e}"));
        let steps = log_steps(&log);
        let expected: Vec<u64> = (1..=saved.step).collect();
        assert_eq!(
            steps, expected,
            "run {run}: the log and the checkpoint disagree"
        );
        assert!(saved.step > last, "run {run} made no progress");
        last = saved.step;
    }
    // No temporary file or folder is left beside them.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["ck", "log.csv", "xor.tl"]);
}
