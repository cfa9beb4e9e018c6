//! `tl bench`: times a program the way comparisons with other systems are made — after
//! warm-up, the median of many timed runs, with the device synchronised around each one.
//!
//! A program with a `minimize` is timed per training step (forward, backward and optimiser
//! update; every step reads its loss back, which synchronises); any other program is timed per
//! evaluation of all its definitions (every derived tensor recomputed). On the GPU both replay
//! a recording of the work once it repeats (CUDA graphs; `--no-replay` turns that off), as a
//! long training run or a served model would.

use crate::profile::{profile_table, time_table};
use crate::{device, emit, pipeline};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tl_backend::profiled::{OpTime, ProfiledBackend};
use tl_backend::Calls;
use tl_check::Command;
use tl_run::observe::{StepInfo, TrainObserver};
use tl_run::{Engine, RunError, RunOptions};
use tl_syntax::{Diagnostic, SourceMap, ToDiagnostic};

/// What `tl bench` was asked to do.
pub struct BenchArgs {
    /// The program file.
    pub file: PathBuf,
    /// Where to compute.
    pub device: device::DeviceChoice,
    /// Engine options (element type, seed, …).
    pub options: RunOptions,
    /// Untimed runs first.
    pub warmup: usize,
    /// Timed runs.
    pub runs: usize,
    /// One JSON object instead of a sentence.
    pub json: bool,
    /// Also time every statement (synchronising around each) and print where the time goes.
    pub profile: bool,
}

/// Records when each training step ends.
struct StepClock {
    ends: Vec<Instant>,
}

impl TrainObserver for StepClock {
    fn step(&mut self, _info: &StepInfo) {
        self.ends.push(Instant::now());
    }
}

/// The median of some durations, in milliseconds.
fn median_ms(mut d: Vec<Duration>) -> f64 {
    if d.is_empty() {
        return f64::NAN;
    }
    d.sort_unstable();
    let mid = d.len() / 2;
    let m = if d.len().is_multiple_of(2) {
        (d[mid - 1] + d[mid]) / 2
    } else {
        d[mid]
    };
    m.as_secs_f64() * 1e3
}

/// The backend primitives that took the most time in the timed runs: milliseconds and calls
/// per run, and what each was (its inputs' shapes and types; `~` marks a strided view).
fn ops_table(rows: &[(String, OpTime)], runs: usize) -> String {
    let rows = rows
        .iter()
        .map(|(what, t)| (what.chars().take(160).collect(), t.time, t.calls))
        .collect();
    time_table("backend call", "calls/run", rows, runs, 30)
}

/// Times the program; on success prints the result and returns it in milliseconds.
fn measure(
    engine: &mut Engine<'_>,
    warmup: usize,
    runs: usize,
    ops: Option<&ProfiledBackend>,
) -> Result<(String, f64, usize, usize), RunError> {
    let profile = ops.is_some();
    let start_profile = |engine: &mut Engine<'_>| {
        engine.profile = Some(Default::default());
        if let Some(p) = ops {
            p.enable();
        }
    };
    let program = engine.program;
    let minimize = program.commands.iter().find_map(|c| match c {
        Command::Minimize(m) => Some(m),
        _ => None,
    });
    match minimize {
        Some(spec) => {
            let mut spec = spec.clone();
            spec.epochs = false;
            engine.evaluate_all()?;
            // Warm-up steps run first on their own, so a profile counts only the timed steps
            // (not the first steps' kernel compilation and allocation).
            if warmup > 0 {
                spec.count = warmup as u64;
                engine.minimize(&spec, &mut StepClock { ends: Vec::new() })?;
            }
            if profile {
                start_profile(engine);
            }
            spec.count = (runs + 1) as u64;
            let mut clock = StepClock { ends: Vec::new() };
            // The steps alone: a profile of them holds no evaluation of the program after
            // training (which a full-data loss can make larger than the steps).
            engine.minimize_steps(&spec, &mut clock, None)?;
            let times: Vec<Duration> = clock.ends.windows(2).map(|w| w[1] - w[0]).collect();
            let n = times.len();
            Ok(("training step".into(), median_ms(times), n, runs + 1))
        }
        None => {
            let mut times = Vec::with_capacity(runs);
            for k in 0..warmup + runs {
                if k == warmup && profile {
                    start_profile(engine);
                }
                let t0 = Instant::now();
                engine.evaluate_again()?;
                engine
                    .backend
                    .synchronize()
                    .map_err(|e| RunError::backend(e, tl_syntax::Span::default()))?;
                if k >= warmup {
                    times.push(t0.elapsed());
                }
            }
            Ok(("evaluation".into(), median_ms(times), runs, runs))
        }
    }
}

/// Runs `tl bench`.
pub fn bench(args: BenchArgs) -> ExitCode {
    let mut sources = SourceMap::new();
    let (program, diags) = tl_syntax::load_program(&args.file, &mut sources);
    let (checked, plan) = match pipeline::compile(&program, diags, &sources) {
        Ok(x) => x,
        Err(diags) => {
            emit(&diags, &sources);
            return ExitCode::FAILURE;
        }
    };
    let backend = match device::open(args.device) {
        Ok(b) => b,
        Err(d) => {
            emit(&[*d], &sources);
            return ExitCode::FAILURE;
        }
    };
    let plan = match pipeline::for_backend(&checked, plan, backend.as_ref()) {
        Ok(p) => p,
        Err(diags) => {
            emit(&diags, &sources);
            return ExitCode::FAILURE;
        }
    };
    let dtype = args.options.dtype;
    let mut table = None;
    let ops = args.profile.then(|| ProfiledBackend::new(backend.as_ref()));
    let engine_backend: &dyn tl_backend::Backend = match &ops {
        Some(p) => p,
        None => backend.as_ref(),
    };
    let mut replayed = 0;
    // A profile times each statement and call on its own: nothing is replayed.
    let mut options = args.options;
    options.replay &= !args.profile;
    let result = Engine::new(&checked, &plan, engine_backend, options).and_then(|mut e| {
        let r = measure(&mut e, args.warmup, args.runs, ops.as_ref());
        replayed = e.replayed_evaluations + e.replayed_steps;
        if let (Some(p), Ok((.., profiled))) = (&e.profile, &r) {
            table = Some(profile_table(p, *profiled, &sources));
        }
        r
    });
    if let Some(t) = table {
        eprint!("{t}");
    }
    if let (Some(p), Ok((.., profiled))) = (&ops, &result) {
        eprint!("{}", ops_table(&p.report(), *profiled));
    }
    match result {
        Ok((what, ms, n, _)) => {
            let file = args.file.display().to_string();
            if args.json {
                println!(
                    "{{\"file\": {}, \"device\": {}, \"dtype\": \"{dtype}\", \"what\": \"{what}\", \"median_ms\": {ms}, \"runs\": {n}, \"warmup\": {}, \"replayed\": {replayed}}}",
                    serde_json::Value::from(file),
                    serde_json::Value::from(backend.name()),
                    args.warmup
                );
            } else {
                println!(
                    "{file}: {what} {ms:.4} ms (median of {n} after {} warm-up, {}, {dtype}; {replayed} replayed)",
                    args.warmup,
                    backend.name()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let d: Diagnostic = e.to_diagnostic();
            emit(&[d], &sources);
            ExitCode::FAILURE
        }
    }
}
