//! `tl bench`: the JSON it prints for an evaluation and for a training step, the per-statement
//! table of `--profile`, and a clear error for a file that does not exist.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The repository root (examples live there).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tl"))
        .arg("bench")
        .args(["--device", "cpu", "--warmup", "1", "--runs", "3"])
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run tl: {e}"))
}

/// The one JSON object `--json` prints.
fn json_of(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tl bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn an_evaluation_is_timed_and_profiled_by_statement() {
    let out = bench(&["--json", "--profile", "examples/einsum.tl"]);
    let v = json_of(&out);
    assert_eq!(v["what"], "evaluation");
    assert_eq!(v["runs"], 3);
    assert!(v["median_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{v}");
    // The CPU records nothing, and a profile never replays: every run ran op by op.
    assert_eq!(v["replayed"], 0, "{v}");
    let table = String::from_utf8_lossy(&out.stderr);
    assert!(table.contains("ms/run"), "{table}");
    // The matrix product statement is listed with its file and line, evaluated once per run.
    let line = table
        .lines()
        .find(|l| l.contains("C[i, k] = A[i, j] B[j, k]"))
        .unwrap_or_else(|| panic!("no row for C:\n{table}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols.get(2), Some(&"1.0"), "evaluations per run: {line}");
    assert_eq!(cols.get(3), Some(&"examples/einsum.tl:12"), "{line}");
    // The backend calls are listed too: that product is one 2x3 by 3x2 contraction per run.
    assert!(table.contains("backend call"), "{table}");
    let call = table
        .lines()
        .find(|l| l.contains("contract 2x3:f32[0, 2] 3x2:f32[2, 1] -> [0, 1]"))
        .unwrap_or_else(|| panic!("no row for C's product:\n{table}"));
    let cols: Vec<&str> = call.split_whitespace().collect();
    assert_eq!(cols.get(2), Some(&"1.0"), "calls per run: {call}");
}

#[test]
fn a_training_step_is_timed() {
    let v = json_of(&bench(&["--json", "examples/learning/xor.tl"]));
    assert_eq!(v["what"], "training step");
    assert_eq!(v["runs"], 3);
    assert!(v["median_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{v}");
}

#[test]
fn a_missing_file_is_an_error() {
    let out = bench(&["examples/no_such_program.tl"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no_such_program.tl"), "{err}");
}
