//! `tl check --dump-plan`: the plans it prints say which equations are spliced into their
//! readers, and the reader's fused plan shows what they became.

use std::path::PathBuf;
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
