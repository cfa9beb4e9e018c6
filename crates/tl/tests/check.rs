//! `tl check --dump-plan`: the plans it prints say which equations are spliced into their
//! readers, and the reader's fused plan shows what they became; every example's plan is a
//! checked-in snapshot (`crates/tl/tests/plans/`, rewritten by
//! `TL_BLESS=1 cargo test -p tl --test check`).

use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn the_plan_dump_marks_spliced_equations() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_tl"))
        .args(["check", "--dump-plan", "examples/attention/attention.tl"])
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tl: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // Q, K, V and A are read only by the next equation: each is spliced into its reader.
    for (k, name) in ["Q", "K", "V", "A"].iter().enumerate() {
        let header = format!("plan {k} → {name} (Direct) (spliced into its readers):");
        assert!(text.contains(&header), "no `{header}` in:\n{text}");
    }
    // Out is queried, so it keeps its plan, and its fused plan ends in one attention node.
    let out_plan = text
        .split("plan 4 → Out (Direct):")
        .nth(1)
        .unwrap_or_else(|| panic!("no plan for Out in:\n{text}"));
    assert!(out_plan.contains("= attention softmax("), "{out_plan}");
}

/// Runs `tl run` on a program text; returns (stdout, stderr).
fn run_text(text: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let prog = dir.path().join("p.tl");
    std::fs::write(&prog, text).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(env!("CARGO_BIN_EXE_tl"))
        .args(["run", "--device", "cpu"])
        .arg(&prog)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run tl: {e}"));
    assert!(out.status.success());
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_misspelt_tensor_that_nothing_trains_is_warned_about() {
    let (_, err) = run_text("X = [1, 2]\nW[i: 2, j: 2] = 0.5\nY[i: 2] = Wt[i, j] X[j]\nY?\n");
    assert!(
        err.contains("TL0117") && err.contains("`Wt` is never defined"),
        "{err}"
    );
    assert!(err.contains("did you mean `W`?"), "{err}");
    // Trained by a `minimize`, an implicit param is what the program means: no warning.
    let (_, err) = run_text(
        "X = [1, 2]\nT = [3]\nY[o: 1] = V[o, j] X[j]\nLoss = (Y[o] - T[o])^2\nminimize Loss with sgd(lr=0.1) for 3 steps\n",
    );
    assert!(!err.contains("TL0117"), "{err}");
}

/// The repository root.
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every program under `dir` (`.tl`, and Soufflé's `.dl`), recursively, but for
/// `examples/errors`, whose programs exist to fail, and folders with a `fetch.sh`, whose data
/// (a downloaded model) the repository does not hold.
fn programs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    if dir.join("fetch.sh").is_file() {
        return;
    }
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && p.file_name().is_some_and(|n| n != "errors") {
            programs(&p, out);
        } else if p.extension().is_some_and(|x| x == "tl" || x == "dl") {
            out.push(p);
        }
    }
}

/// What `tl check --dump-plan` prints for a program (its path relative to the root), or why
/// it printed nothing to compare.
fn dump(root: &Path, rel: &Path) -> Result<String, String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tl"));
    cmd.args(["check", "--dump-plan"]);
    if rel.extension().is_some_and(|x| x == "dl") {
        // A Soufflé program reads its `.facts` beside it.
        cmd.arg("-F").arg(rel.parent().unwrap_or(Path::new(".")));
    }
    let out = cmd
        .arg(rel)
        .current_dir(root)
        .env("NO_COLOR", "1")
        .output()
        .map_err(|e| format!("cannot run tl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "exit {:?}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("not UTF-8: {e}"))
}

/// A short diff of two texts: the first differing line and the changed block around it, as
/// `-` (expected) and `+` (actual) lines with their line numbers.
fn diff(expected: &str, actual: &str) -> String {
    let (want, got): (Vec<&str>, Vec<&str>) =
        (expected.lines().collect(), actual.lines().collect());
    let head = want.iter().zip(&got).take_while(|(a, b)| a == b).count();
    let tail = want[head..]
        .iter()
        .rev()
        .zip(got[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    const SHOWN: usize = 20;
    let mut out = format!("@@ line {} @@\n", head + 1);
    let removed = &want[head..want.len() - tail];
    let added = &got[head..got.len() - tail];
    for (k, l) in removed.iter().enumerate().take(SHOWN) {
        out += &format!("-{:>5} {l}\n", head + k + 1);
    }
    if removed.len() > SHOWN {
        out += &format!("- … {} more lines\n", removed.len() - SHOWN);
    }
    for (k, l) in added.iter().enumerate().take(SHOWN) {
        out += &format!("+{:>5} {l}\n", head + k + 1);
    }
    if added.len() > SHOWN {
        out += &format!("+ … {} more lines\n", added.len() - SHOWN);
    }
    out
}

/// Snapshots of the planner: for every program in `examples/` (but those [`programs`] leaves
/// out),
/// `crates/tl/tests/plans/PATH.plan` holds exactly what `tl check --dump-plan PATH` prints
/// (PATH relative to the repository root, Soufflé programs given `-F` their folder). The plan
/// must also be the same on a second run. After an intended change to the planner, rewrite
/// them with `TL_BLESS=1 cargo test -p tl --test check` and review the diff.
#[test]
fn every_example_plans_as_its_snapshot_says() {
    let root = repo_root();
    let bless = std::env::var_os("TL_BLESS").is_some_and(|v| v != "0" && !v.is_empty());
    let snapshots = root.join("crates/tl/tests/plans");
    let mut files = Vec::new();
    programs(&root.join("examples"), &mut files);
    files.sort();
    assert!(files.len() >= 20, "found only {} examples", files.len());
    let mut failures = Vec::new();
    let mut expected_files = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap_or(file);
        let inner = rel.strip_prefix("examples").unwrap_or(rel);
        let snapshot = snapshots.join(format!("{}.plan", inner.display()));
        expected_files.push(snapshot.clone());
        let (first, second) = match (dump(&root, rel), dump(&root, rel)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                failures.push(format!("{}: {e}", rel.display()));
                continue;
            }
        };
        if first != second {
            failures.push(format!(
                "{}: two runs planned differently\n{}",
                rel.display(),
                diff(&first, &second)
            ));
            continue;
        }
        if bless {
            if let Some(dir) = snapshot.parent() {
                std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
            }
            std::fs::write(&snapshot, &first).unwrap_or_else(|e| panic!("{e}"));
            continue;
        }
        match std::fs::read_to_string(&snapshot) {
            Ok(want) if want == first => {}
            Ok(want) => failures.push(format!(
                "{} differs from {}:\n{}",
                rel.display(),
                snapshot.strip_prefix(&root).unwrap_or(&snapshot).display(),
                diff(&want, &first)
            )),
            Err(e) => failures.push(format!("{}: {e}", snapshot.display())),
        }
    }
    // A snapshot whose example is gone is stale.
    let mut stored = Vec::new();
    stored_snapshots(&snapshots, &mut stored);
    for s in stored.iter().filter(|s| !expected_files.contains(s)) {
        if bless {
            std::fs::remove_file(s).unwrap_or_else(|e| panic!("{e}"));
        } else {
            failures.push(format!("{}: no example plans to it", s.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} plan snapshot(s) differ (after an intended change, rerun with TL_BLESS=1 and \
         review the diff):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every `.plan` file under `dir`, recursively.
fn stored_snapshots(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            stored_snapshots(&p, out);
        } else if p.extension().is_some_and(|x| x == "plan") {
            out.push(p);
        }
    }
}
