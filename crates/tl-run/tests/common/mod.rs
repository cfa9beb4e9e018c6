//! What the engine tests share: a program text checked and planned, and its `minimize`; the
//! CUDA backend where there is one.

use tl_check::learn::MinimizeSpec;
use tl_check::{CheckedProgram, Command};
use tl_plan::ProgramPlan;
use tl_syntax::SourceMap;

/// `src` parsed, checked and planned (panicking, in a test, on any diagnostic). (Not every
/// test crate that shares this module plans programs.)
#[allow(dead_code)]
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

/// Runs GPU tests under libtest-mimic, each reported as ignored (with the reason, printed once)
/// where no CUDA device is usable. (Only the GPU test crates call it.)
#[allow(dead_code)]
pub fn run_gpu_tests(tests: &[(&'static str, fn())]) {
    let args = libtest_mimic::Arguments::from_args();
    let missing = tl_backend::cuda::CudaBackend::open()
        .err()
        .map(|e| format!("no usable CUDA device ({e})"));
    if let Some(why) = &missing {
        eprintln!("every test here is ignored: {why}");
    }
    let trials = tests
        .iter()
        .map(|&(name, f)| {
            libtest_mimic::Trial::test(name, move || {
                f();
                Ok(())
            })
            .with_ignored_flag(missing.is_some())
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

/// The CUDA backend, or `None` (said on standard error) where no driver is usable. (Only the
/// GPU test crates use it.)
#[allow(dead_code)]
pub fn cuda() -> Option<tl_backend::cuda::CudaBackend> {
    match tl_backend::cuda::CudaBackend::open() {
        Ok(be) => Some(be),
        Err(why) => {
            eprintln!("skipped: no CUDA driver ({why})");
            None
        }
    }
}
