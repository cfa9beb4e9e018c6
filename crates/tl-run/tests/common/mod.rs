//! What the engine tests share: a program text checked and planned, and its `minimize`.

use tl_check::learn::MinimizeSpec;
use tl_check::{CheckedProgram, Command};
use tl_plan::ProgramPlan;
use tl_syntax::SourceMap;

/// `src` parsed, checked and planned (panicking, in a test, on any diagnostic).
pub fn planned(src: &str) -> (CheckedProgram, ProgramPlan) {
    let mut sources = SourceMap::new();
    let (parsed, diags) =
        tl_syntax::load_source("<test>", src, &mut sources, std::path::Path::new("."));
    assert!(diags.is_empty(), "{diags:?}");
    let checked = tl_check::check(&parsed, &sources).expect("checks");
    let plan = tl_plan::plan(&checked).expect("plans");
    (checked, plan)
}

/// The program's (first) `minimize` command. (Not every test crate that shares this module
/// trains.)
#[allow(dead_code)]
pub fn minimize_spec(checked: &CheckedProgram) -> MinimizeSpec {
    checked
        .commands
        .iter()
        .find_map(|c| match c {
            Command::Minimize(m) => Some(m.clone()),
            _ => None,
        })
        .expect("a minimize command")
}
