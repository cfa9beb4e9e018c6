//! One program through every phase, with the limits that keep a fuzzing case short.

use std::path::Path;
use tl_backend::cpu::CpuBackend;
use tl_run::{Engine, RunOptions};
use tl_syntax::{Diagnostic, Severity, SourceMap, ToDiagnostic};

/// No equation or rule may range over more index combinations than this to be run (tensors
/// of any size are run: the memory limit must stop the ones too large, as an error).
pub const MAX_COMBINATIONS: u128 = 100_000_000;
/// No `minimize` may take more steps than this to be run.
pub const MAX_STEPS: u64 = 50;
/// Memory the run may use (`--max-memory`): relations and tensors past it are errors.
pub const MAX_MEMORY: u64 = 256 << 20;

/// Something that must never happen, found in a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A diagnostic that says the engine, not the program, is at fault.
    InternalError(String),
    /// A diagnostic whose span lies outside its source.
    BadSpan(String),
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::InternalError(d) => write!(f, "internal error: {d}"),
            Finding::BadSpan(d) => write!(f, "a span outside its source: {d}"),
        }
    }
}

/// Whether a diagnostic blames the engine (its hint asks for a report).
fn internal(d: &Diagnostic) -> bool {
    d.help
        .as_deref()
        .is_some_and(|h| h.contains("please report"))
}

/// Checks what every diagnostic must satisfy: a span inside its file, no blame on the engine.
fn inspect(d: &Diagnostic, sources: &SourceMap) -> Result<(), Finding> {
    if let Some(s) = d.span {
        let r = s.range();
        let len = sources.file(s.file).text.len();
        if r.start > r.end || r.end > len {
            return Err(Finding::BadSpan(format!("{d:?}")));
        }
    }
    if internal(d) {
        return Err(Finding::InternalError(format!(
            "[{}] {}",
            d.code, d.message
        )));
    }
    Ok(())
}

/// Runs `text` through every phase (relative paths resolve in `scratch`). Errors of the
/// program are fine; a [`Finding`] is not; a panic propagates.
pub fn run(text: &str, scratch: &Path) -> Result<(), Finding> {
    let mut sources = SourceMap::new();
    let (program, diags) = tl_syntax::load_source("fuzz.tl", text, &mut sources, scratch);
    for d in &diags {
        inspect(d, &sources)?;
    }
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Ok(());
    }
    run_program(&program, &sources, &mut |answer| {
        let _ = answer.to_json();
        let _ = answer.to_human();
    })
    .map(|_| ())
}

/// Runs `text` as a Soufflé program (`.dl`; `.input` files and relative paths in `scratch`,
/// outputs printed): its rules that compute numbers settled in at most [`SOUFFLE_ROUNDS`]
/// runs, then every phase as [`run`].
pub fn run_souffle(text: &str, scratch: &Path) -> Result<(), Finding> {
    souffle_answers(text, scratch).map(|_| ())
}

/// [`run_souffle`], returning the printed relations (as JSON) when the program ran to the end,
/// or `None` when it stopped with an error of its own.
pub fn souffle_answers(
    text: &str,
    scratch: &Path,
) -> Result<Option<Vec<serde_json::Value>>, Finding> {
    let mut sources = SourceMap::new();
    let file = sources.add(scratch.join("fuzz.dl"), text.to_string());
    let options = tl_syntax::souffle::Options {
        fact_dir: scratch.to_path_buf(),
        output: tl_syntax::souffle::Output::Stdout,
    };
    let (program, computed, errors) = tl_syntax::souffle::parse_souffle(text, file, &options);
    for e in &errors {
        inspect(&e.to_diagnostic(), &sources)?;
    }
    if !errors.is_empty() {
        return Ok(None);
    }
    let program = if computed.is_empty() {
        program
    } else {
        match tl_run::computed::settle(
            program,
            &computed,
            &sources,
            SOUFFLE_ROUNDS,
            &options_of_a_case(),
        ) {
            Ok(p) => p,
            Err(diags) => {
                for d in &diags {
                    inspect(d, &sources)?;
                }
                return Ok(None);
            }
        }
    };
    let mut answers = Vec::new();
    let ok = run_program(&program, &sources, &mut |a| {
        answers.push(serde_json::from_str(&a.to_json()).unwrap_or_default());
    })?;
    Ok(ok.then_some(answers))
}

/// Most runs that settle a fuzzed Soufflé program's rules that compute numbers.
pub const SOUFFLE_ROUNDS: usize = 20;

/// The run options of one fuzzing case: few iterations, little memory.
fn options_of_a_case() -> RunOptions {
    RunOptions {
        max_iters: 50,
        max_memory: Some(MAX_MEMORY),
        ..RunOptions::default()
    }
}

/// Checks, plans and runs a parsed program, inspecting every diagnostic and handing each
/// answer to `emit`; whether it ran to the end.
fn run_program(
    program: &tl_syntax::ast::Program,
    sources: &SourceMap,
    emit: &mut dyn FnMut(&tl_run::Answer),
) -> Result<bool, Finding> {
    let mut checked = match tl_check::check(program, sources) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                inspect(&e.to_diagnostic(), sources)?;
            }
            return Ok(false);
        }
    };
    for w in tl_check::lint::warnings(&checked, &[]) {
        inspect(&w, sources)?;
    }
    // As `tl run` does: bound demands goal-directed where that pays.
    tl_plan::demand::rewrite(&mut checked, tl_plan::demand::Mode::Auto);
    let plan = match tl_plan::plan(&checked) {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                inspect(&e.to_diagnostic(), sources)?;
            }
            return Ok(false);
        }
    };
    if !small_enough(&checked) {
        return Ok(false);
    }
    let backend = CpuBackend::new();
    let mut engine = match Engine::new(&checked, &plan, &backend, options_of_a_case()) {
        Ok(e) => e,
        Err(e) => return inspect(&e.to_diagnostic(), sources).map(|_| false),
    };
    let result = engine.run(emit, &mut tl_run::observe::Silent);
    for w in &engine.warnings {
        inspect(w, sources)?;
    }
    match result {
        Ok(()) => Ok(true),
        Err(e) => inspect(&e.to_diagnostic(), sources).map(|_| false),
    }
}

/// Whether a checked program is quick enough to run as one fuzzing case.
fn small_enough(checked: &tl_check::CheckedProgram) -> bool {
    let combos = |vars: &[tl_check::VarInfo]| -> u128 {
        vars.iter()
            .map(|v| v.extent as u128)
            .fold(1u128, u128::saturating_mul)
    };
    let widest = checked
        .equations
        .iter()
        .map(|e| combos(&e.vars))
        .chain(checked.rules.iter().map(|r| combos(&r.vars)))
        .max()
        .unwrap_or(1);
    let steps_ok = checked.commands.iter().all(|c| match c {
        tl_check::Command::Minimize(m) => m.count <= MAX_STEPS && !(m.epochs && m.count > 5),
        _ => true,
    });
    widest <= MAX_COMBINATIONS && steps_ok
}
