//! Runs every program in `examples/` (`.tl`, or Soufflé's `.dl`, whose `.output` relations are
//! printed with `-D -`) that has a `.expected.jsonl` beside it and compares
//! `tl run --json` with the expected answers: relations exactly, numbers within a relative
//! tolerance of 1e-4 (the expected values are computed in float64 outside TensorLogic; the
//! engine computes in float32). An expected answer may carry `"tolerance": x`: every number in
//! that answer is then compared within the absolute tolerance x instead (for results of
//! training, which depend on floating-point details).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root: the nearest folder upwards holding `examples/`.
fn repo_root() -> PathBuf {
    let mut dir = std::env::current_dir().unwrap_or_default();
    loop {
        if dir.join("examples").is_dir() && dir.join("Cargo.toml").is_file() {
            return dir;
        }
        if !dir.pop() {
            return PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        }
    }
}

/// A Soufflé program (`.dl`) reads its `.facts` beside it and prints its `.output` relations
/// as query answers.
fn souffle_flags(program: &Path) -> Vec<String> {
    if program.extension().is_some_and(|x| x == "dl") {
        let dir = program.parent().unwrap_or(Path::new("."));
        vec![
            "-F".into(),
            dir.display().to_string(),
            "-D".into(),
            "-".into(),
        ]
    } else {
        Vec::new()
    }
}

fn programs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && p.file_name().is_some_and(|n| n != "errors") {
            programs(&p, out);
        } else if p.extension().is_some_and(|x| x == "tl" || x == "dl")
            && p.with_extension("expected.jsonl").is_file()
        {
            out.push(p);
        }
    }
}

/// Compares one answer with its expectation; a `"tolerance"` key in the expectation is not part
/// of the answer but sets an absolute tolerance for all of its numbers.
fn close(got: &Value, want: &Value) -> bool {
    if let Value::Object(w) = want {
        if let Some(tol) = w.get("tolerance").and_then(Value::as_f64) {
            let mut w = w.clone();
            w.remove("tolerance");
            return close_within(got, &Value::Object(w), Some(tol));
        }
    }
    close_within(got, want, None)
}

/// `tol` is an absolute tolerance; without it, numbers must agree within 1e-4 relative.
fn close_within(got: &Value, want: &Value, tol: Option<f64>) -> bool {
    match (got, want) {
        (Value::Number(g), Value::Number(w)) => {
            let (g, w) = (
                g.as_f64().unwrap_or(f64::NAN),
                w.as_f64().unwrap_or(f64::NAN),
            );
            (g - w).abs() <= tol.unwrap_or(1e-4 * w.abs().max(1.0))
        }
        (Value::Array(g), Value::Array(w)) => {
            g.len() == w.len() && g.iter().zip(w).all(|(a, b)| close_within(a, b, tol))
        }
        (Value::Object(g), Value::Object(w)) => {
            g.len() == w.len()
                && w.iter()
                    .all(|(k, v)| g.get(k).is_some_and(|x| close_within(x, v, tol)))
        }
        _ => got == want,
    }
}

#[test]
fn every_example_gives_its_expected_answers() {
    let root = repo_root();
    let mut files = Vec::new();
    programs(&root.join("examples"), &mut files);
    files.sort();
    assert!(
        files.len() >= 9,
        "expected at least 9 examples, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap_or(file);
        let out = Command::new(env!("CARGO_BIN_EXE_tl"))
            .current_dir(&root)
            .args(["run", "--json", "--device", "cpu"])
            .args(souffle_flags(rel))
            .arg(rel)
            .output();
        let Ok(out) = out else {
            failures.push(format!("{}: could not start tl", rel.display()));
            continue;
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            failures.push(format!(
                "{}: exit {:?}\n{}",
                rel.display(),
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let got: Vec<Value> = stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let expected =
            std::fs::read_to_string(file.with_extension("expected.jsonl")).unwrap_or_default();
        let want: Vec<Value> = expected
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if got.len() != want.len()
            || stdout.lines().filter(|l| !l.trim().is_empty()).count() != got.len()
        {
            failures.push(format!(
                "{}: {} answers (all JSON: {}), expected {}",
                rel.display(),
                got.len(),
                stdout.lines().count() == got.len(),
                want.len()
            ));
            continue;
        }
        for (g, w) in got.iter().zip(&want) {
            if !close(g, w) {
                failures.push(format!("{}:\n  got  {}\n  want {}", rel.display(), g, w));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} example(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
