//! A relation too large for memory stops the run at once with an error that names the rule
//! growing it and the size it would have had, instead of filling memory until the system
//! kills the process.

use std::process::Command;
use std::time::{Duration, Instant};

/// A random graph with a giant cycle-rich component: its closure has billions of pairs.
fn big_graph(dir: &std::path::Path) -> std::path::PathBuf {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |m: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % m
    };
    let nodes = 100_000;
    let csv: String = (0..300_000)
        .map(|_| format!("{},{}\n", next(nodes), next(nodes)))
        .collect();
    let path = dir.join("edges.csv");
    std::fs::write(&path, csv).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn run(dir: &std::path::Path, extra: &[&str]) -> (String, Duration, bool) {
    let prog = dir.join("reach.tl");
    std::fs::write(
        &prog,
        "Edge = \"edges.csv\"\nReach(x, y) <- Edge(x, y)\nReach(x, z) <- Reach(x, y), Edge(y, z)\nN = Reach(x, y)\nN?\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tl"))
        .args(["run", "--device", "cpu"])
        .args(extra)
        .arg(&prog)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tl: {e}"));
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed(),
        out.status.success(),
    )
}

#[test]
fn a_closure_past_memory_fails_at_once_naming_its_rule() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    big_graph(dir.path());
    for extra in [&[][..], &["--max-memory", "256M"][..]] {
        let (stderr, took, ok) = run(dir.path(), extra);
        assert!(!ok, "{stderr}");
        assert!(stderr.contains("TL0303"), "{stderr}");
        assert!(stderr.contains("`Reach`"), "{stderr}");
        assert!(
            stderr.contains("reach.tl:3:1"),
            "points at the recursive rule: {stderr}"
        );
        assert!(took < Duration::from_secs(20), "took {took:?}");
    }
}

#[test]
fn a_join_past_its_memory_limit_fails_naming_its_rule() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    big_graph(dir.path());
    let prog = dir.path().join("sg.tl");
    std::fs::write(
        &prog,
        "Edge = \"edges.csv\"\nSG(x, y) <- Edge(p, x), Edge(p, y), x != y\nSG(x, y) <- Edge(a, x), SG(a, b), Edge(b, y)\nN = SG(x, y)\nN?\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tl"))
        .args(["run", "--device", "cpu", "--max-memory", "64M"])
        .arg(&prog)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tl: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("TL0303") && stderr.contains("`SG`"),
        "{stderr}"
    );
    assert!(stderr.contains("sg.tl:3:1"), "{stderr}");
    assert!(start.elapsed() < Duration::from_secs(20));
}
