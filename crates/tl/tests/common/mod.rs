//! Helpers shared by integration tests that run `tl` on a program text. Each test file uses
//! some of them.
#![allow(dead_code)]

use std::process::Command;

/// The `tl` binary: `TL_BIN` when set (a GPU machine runs these tests with a binary carried
/// there), else the one cargo built.
pub fn tl_bin() -> std::path::PathBuf {
    std::env::var_os("TL_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_tl").into())
}

/// The device the tests run on: `TL_TEST_DEVICE` when set (`cuda` on a GPU machine), else
/// `cpu`.
pub fn device() -> String {
    std::env::var("TL_TEST_DEVICE").unwrap_or_else(|_| "cpu".into())
}

/// Runs `tl run --json --device cpu ARGS` on `text` (written to `p.tl` in a fresh folder);
/// (success, standard output, standard error). Fails the test on a panic or an internal error.
/// [`tl_bin`] and [`device`] say which binary and device.
pub fn run_raw(text: &str, args: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let prog = dir.path().join("p.tl");
    std::fs::write(&prog, text).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(tl_bin())
        .args(["run", "--json", "--device", &device()])
        .args(args)
        .arg(&prog)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run tl: {e}"));
    // The notice naming the GPU a run uses is no diagnostic.
    let stderr: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("tl: using "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("please report"),
        "{stderr}"
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// [`run_raw`], with one JSON value per answer line.
pub fn run_json(text: &str, args: &[&str]) -> (bool, Vec<serde_json::Value>, String) {
    let (ok, out, err) = run_raw(text, args);
    let answers = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (ok, answers, err)
}

/// The numbers of an answer's `data`.
pub fn data(answer: &serde_json::Value) -> Vec<f64> {
    answer["data"]
        .as_array()
        .map(|s| s.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default()
}

/// The program fails with `code`, located at `line:col` of the program.
pub fn fails(text: &str, code: &str, at: &str) {
    let (ok, _, err) = run_json(text, &[]);
    assert!(!ok, "{text}");
    assert!(err.contains(code), "{text}\n{err}");
    assert!(err.contains(&format!("p.tl:{at}")), "{text}\n{err}");
}

/// A small deterministic generator (xorshift) for tests that draw random programs and data.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Runs `tl` with `args` (e.g. `run --json FILE`), which must succeed, and returns one JSON
/// value per line of its standard output.
pub fn tl_json<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Vec<serde_json::Value> {
    let out = Command::new(tl_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run tl: {e}"));
    assert!(
        out.status.success(),
        "tl {:?}: {}",
        args.iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l}: {e}")))
        .collect()
}
