//! Golden tests for diagnostics: every `examples/errors/NAME.tl` holds one mistake, and
//! `examples/errors/NAME.stderr` holds exactly what `tl run examples/errors/NAME.tl` prints on
//! standard error (colour off, run from the repository root with that relative path).
//!
//! Checks, for each program: the exit code is non-zero, standard output is empty, standard error
//! equals the checked-in `.stderr`, points at a place (`:LINE:COL`), gives a hint (`help`), and
//! shows no sign of a panic.
//!
//! After an intended change to a message, rewrite the expected files with
//! `TL_BLESS=1 cargo test --release -p tl --test errors` and review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root: the nearest folder, from the current directory upwards, that holds
/// `examples/errors` (tests run from `crates/tl` under cargo, or from the root elsewhere).
fn repo_root() -> PathBuf {
    let start = std::env::current_dir().expect("current directory");
    let mut dir: &Path = &start;
    loop {
        if dir.join("examples").join("errors").is_dir() {
            return dir.to_path_buf();
        }
        dir = dir
            .parent()
            .unwrap_or_else(|| panic!("no `examples/errors` above {}", start.display()));
    }
}

/// The programs under `examples/errors`, as paths relative to the root, sorted.
fn programs(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root.join("examples/errors"))
        .expect("examples/errors is readable")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tl"))
        .map(|n| format!("examples/errors/{n}"))
        .collect();
    out.sort();
    out
}

/// Whether `text` holds `:LINE:COL` (two runs of digits, each after a colon).
fn has_line_col(text: &str) -> bool {
    let b = text.as_bytes();
    (0..b.len()).any(|i| {
        if b[i] != b':' {
            return false;
        }
        let mut j = i + 1;
        let line_start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j == line_start || j >= b.len() || b[j] != b':' {
            return false;
        }
        let col_start = j + 1;
        let mut k = col_start;
        while k < b.len() && b[k].is_ascii_digit() {
            k += 1;
        }
        k > col_start
    })
}

#[test]
fn error_examples_match_their_expected_stderr() {
    let root = repo_root();
    let bless = std::env::var_os("TL_BLESS").is_some_and(|v| v != "0" && !v.is_empty());
    let progs = programs(&root);
    assert!(
        progs.len() >= 15,
        "expected the error examples under {}/examples/errors, found {}",
        root.display(),
        progs.len()
    );
    let mut failures = Vec::new();
    for prog in &progs {
        let out = Command::new(env!("CARGO_BIN_EXE_tl"))
            .args(["run", "--device", "cpu"])
            .arg(prog)
            .current_dir(&root)
            .env("NO_COLOR", "1")
            // Messages that state the memory limit read the same on every machine.
            .env("TL_MAX_MEMORY", "8G")
            .output()
            .expect("the tl binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let expected_path = root.join(prog.replace(".tl", ".stderr"));
        let mut problems = Vec::new();
        if out.status.success() {
            problems.push("exited with status 0".to_string());
        }
        if out.status.code().is_none() {
            problems.push(format!("killed by a signal ({:?})", out.status));
        }
        if stderr.contains("panicked at") || out.status.code() == Some(101) {
            problems.push("panicked".to_string());
        }
        if !stdout.is_empty() {
            problems.push(format!("printed on standard output:\n{stdout}"));
        }
        if !has_line_col(&stderr) {
            problems.push("standard error names no `:LINE:COL`".to_string());
        }
        if !stderr.to_lowercase().contains("help") {
            problems.push("standard error gives no `help`".to_string());
        }
        if bless {
            std::fs::write(&expected_path, &stderr).expect("write the .stderr file");
        } else {
            match std::fs::read_to_string(&expected_path) {
                Ok(expected) if expected == stderr => {}
                Ok(expected) => problems.push(format!(
                    "standard error differs from {}\n--- expected\n{expected}\n--- actual\n{stderr}",
                    expected_path.display()
                )),
                Err(e) => problems.push(format!(
                    "cannot read {} ({e}); run with TL_BLESS=1 to create it\n--- actual\n{stderr}",
                    expected_path.display()
                )),
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{prog}:\n  {}", problems.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} error examples failed:\n\n{}",
        failures.len(),
        progs.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_error_example_has_an_expected_stderr_file() {
    if std::env::var_os("TL_BLESS").is_some() {
        return;
    }
    let root = repo_root();
    for prog in programs(&root) {
        let expected = root.join(prog.replace(".tl", ".stderr"));
        assert!(expected.is_file(), "{} is missing", expected.display());
    }
}

#[test]
fn line_col_detection() {
    assert!(has_line_col("╭─[ examples/errors/a.tl:3:13 ]"));
    assert!(!has_line_col("error[TL0401]: no place"));
    assert!(!has_line_col("a:3: b"));
}
