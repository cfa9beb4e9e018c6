//! Counts and sums over relations are exact whatever `--dtype` is: they are integer tensors,
//! counted in 64-bit integers and stored in f64, never accumulated in f32 (which stops at
//! 2^24) or bf16 (2^8).

use std::process::Command;

fn run_json(dir: &std::path::Path, program: &str, dtype: &str) -> Vec<serde_json::Value> {
    let path = dir.join("prog.tl");
    std::fs::write(&path, program).unwrap_or_else(|e| panic!("cannot write program: {e}"));
    let out = Command::new(env!("CARGO_BIN_EXE_tl"))
        .args(["run", "--json", "--device", "cpu", "--dtype", dtype])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tl: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l}: {e}")))
        .collect()
}

fn data(answer: &serde_json::Value) -> Vec<serde_json::Value> {
    answer["data"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_relation_of_more_than_2_pow_25_tuples_counts_exactly() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // 5,793 × 5,793 = 33,558,849 tuples: past 2^25 = 33,554,432, and odd, so any rounding
    // to a float with fewer than 26 significant bits would show.
    let n = 5793u64;
    let csv: String = (0..n).map(|i| format!("{i}\n")).collect();
    std::fs::write(dir.path().join("d.csv"), csv).unwrap_or_else(|e| panic!("{e}"));
    let program =
        "D = \"d.csv\"\nR(x, y) <- D(x), D(y)\nN = R(x, y)\nRow[x] = R(x, y)\nN?\nRow[5792]?\n";
    for dtype in ["f32", "bf16"] {
        let answers = run_json(dir.path(), program, dtype);
        assert_eq!(data(&answers[0]), vec![serde_json::json!(n * n)], "{dtype}");
        assert_eq!(data(&answers[1]), vec![serde_json::json!(n)], "{dtype}");
    }
}

#[test]
fn dense_counts_and_path_counts_are_exact_in_16_bits() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // A dense relation of 301 × 301 cells, all true: 90,601 tuples, which bf16 cannot hold
    // (it would print 90,624); two-step path counts of 301 each.
    let csv: String = (0..301).map(|i| format!("{i}\n")).collect();
    std::fs::write(dir.path().join("d.csv"), csv).unwrap_or_else(|e| panic!("{e}"));
    let program = "D = \"d.csv\"\nR(x, y) <- D(x), D(y)\nN = R(x, y)\nP[x, z] = R(x, y) R(y, z)\nMost max= P[x, z]\nHalf = 0.5 N\nN?\nMost?\nHalf?\n";
    for dtype in ["f32", "bf16", "f16"] {
        let answers = run_json(dir.path(), program, dtype);
        assert_eq!(data(&answers[0]), vec![serde_json::json!(90601)], "{dtype}");
        assert_eq!(data(&answers[1]), vec![serde_json::json!(301)], "{dtype}");
        // A real tensor reading the count gets it in the real type: 45,300.5 rounds there
        // (and f16, whose largest value is 65,504, cannot hold the count at all).
        if dtype != "f16" {
            let half = data(&answers[2])[0].as_f64().unwrap_or(f64::NAN);
            assert!((half - 45300.5).abs() <= 45300.5 * 1e-2, "{dtype}: {half}");
        }
    }
}

#[test]
fn a_count_reaching_2_pow_53_is_an_error_not_a_rounded_number() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("prog.tl");
    let program = "R(0, 1)\nR(1, 2)\nN = R(x, y)\nBig = 4503599627370496 N\nBig?\n";
    std::fs::write(&path, program).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(env!("CARGO_BIN_EXE_tl"))
        .args(["run", "--device", "cpu"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tl: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("TL0312") && stderr.contains("`Big`"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
