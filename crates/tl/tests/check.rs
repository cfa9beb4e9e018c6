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
    // Out is queried, so it keeps its plan, and its fused plan is one attention node.
    let out_plan = text
        .split("plan 4 → Out (Direct):")
        .nth(1)
        .unwrap_or_else(|| panic!("no plan for Out in:\n{text}"));
    assert!(out_plan.contains("= attention %"), "{out_plan}");
}
