//! `tl`: run, check and explore Tensor Logic programs.

// Library code reports failures as errors; only tests may unwrap.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
mod bench;
mod lsp;
mod profile;
mod repl;
mod signals;
mod souffle;
mod train_ui;
mod workers;

use tensorlogic::{device, pipeline, report};

use clap::{Args, Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use tl_backend::DType;
use tl_run::{Engine, RunOptions};
use tl_syntax::{Diagnostic, Severity, SourceMap, ToDiagnostic};

/// TensorLogic: one construct, the tensor equation, for logic and learning.
#[derive(Parser)]
#[command(name = "tl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Run a program and print its queries' answers.
    Run {
        /// The program file.
        file: PathBuf,
        /// One JSON object per query on standard output, and nothing else.
        #[arg(long)]
        json: bool,
        /// Where to compute: auto (a GPU when present), cpu or cuda.
        #[arg(long, value_enum, default_value = "auto")]
        device: device::DeviceChoice,
        /// Real element type: f32 (default), f64, f16 or bf16.
        #[arg(long, default_value = "f32", value_parser = parse_dtype)]
        dtype: DType,
        /// Seed of the random generator (initialisers, batch shuffles).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Bound on iterations of real-valued recursion, and on the runs that settle a Soufflé
        /// program's rules that compute numbers.
        #[arg(long, default_value_t = 1000)]
        max_iters: usize,
        /// Memory the run may use (e.g. 512M, 8G; default: nine tenths of the memory free when
        /// it starts): for one stratum of rules, and for each dense tensor made on the CPU. A
        /// relation or tensor that would need more is an error naming the rule or tensor.
        #[arg(long, value_name = "SIZE", value_parser = parse_size, env = "TL_MAX_MEMORY")]
        max_memory: Option<u64>,
        /// Print where the time went to standard error when the run ends: for each stratum of
        /// rules the tuple engine evaluates, its rounds, device and per rule the evaluations,
        /// tuples and time; then the time of each statement (the device synchronised around
        /// each).
        #[arg(long)]
        profile: bool,
        /// When to answer a query or rule body that binds arguments of a relation defined
        /// by rules by evaluating only what it needs (a demand rewrite): auto (where the
        /// planner estimates it cheaper), off or always.
        #[arg(long, value_enum, default_value = "auto")]
        goal_directed: pipeline::GoalDirected,
        #[command(flatten)]
        train: TrainArgs,
        #[command(flatten)]
        parallel: workers::ParallelArgs,
        #[command(flatten)]
        souffle: souffle::SouffleArgs,
    },
    /// Parse and check a program: print inferred shapes, domains and implicit params.
    Check {
        /// The program file.
        file: PathBuf,
        /// Also print the goal-directed rewrite and the planned graph of every equation and
        /// rule.
        #[arg(long)]
        dump_plan: bool,
        /// When to answer bound queries and rule bodies by a demand rewrite: auto, off or
        /// always.
        #[arg(long, value_enum, default_value = "auto")]
        goal_directed: pipeline::GoalDirected,
        #[command(flatten)]
        souffle: souffle::SouffleArgs,
    },
    /// Time a program: the median of many runs after warm-up (a training step when it has a
    /// `minimize`, else an evaluation of every definition).
    Bench {
        /// The program file.
        file: PathBuf,
        /// Where to compute: auto (a GPU when present), cpu or cuda.
        #[arg(long, value_enum, default_value = "auto")]
        device: device::DeviceChoice,
        /// Real element type: f32 (default), f64, f16 or bf16.
        #[arg(long, default_value = "f32", value_parser = parse_dtype)]
        dtype: DType,
        /// Untimed runs first.
        #[arg(long, default_value_t = 10)]
        warmup: usize,
        /// Timed runs.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
        runs: u64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Also time every statement and every backend call (synchronising the device around
        /// each) and print the most expensive ones to standard error.
        #[arg(long)]
        profile: bool,
        /// Queue every operation of every training step, instead of recording one full-batch
        /// step on the GPU (a CUDA graph) and replaying it.
        #[arg(long)]
        no_replay: bool,
    },
    /// An interactive session: type statements and queries.
    Repl,
    /// A language server on standard input and output, for editors: diagnostics as you type,
    /// hover, go to definition.
    Lsp,
}

/// How `tl run` reports and saves training (`minimize`).
#[derive(Args, Clone, Debug)]
struct TrainArgs {
    /// No progress bar (it is also left out when standard error is not a terminal).
    #[arg(long)]
    quiet: bool,
    /// Write every training step to this CSV file (`step,epoch,loss,lr,seconds`).
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Draw the loss curve into this PNG file.
    #[arg(long, value_name = "FILE.png")]
    plot: Option<PathBuf>,
    /// Save parameters and optimiser state into this folder as training goes.
    #[arg(long, value_name = "DIR")]
    checkpoint: Option<PathBuf>,
    /// Steps between checkpoints (with `--checkpoint`).
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every: u64,
    /// Continue training from the checkpoint saved in this folder.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Print the device allocator's statistics (GPU only) after steps 1, 10, 100 and the last
    /// of each `minimize`, and at the end of the run.
    #[arg(long)]
    memory_stats: bool,
    /// Queue every operation of every training step, instead of recording one full-batch step
    /// on the GPU (a CUDA graph) and replaying it.
    #[arg(long)]
    no_replay: bool,
}

impl TrainArgs {
    fn ui_options(&self) -> train_ui::TrainUiOptions {
        train_ui::TrainUiOptions {
            progress: train_ui::progress_wanted(self.quiet, std::io::stderr().is_terminal()),
            log: self.log.clone(),
            plot: self.plot.clone(),
            memory_stats: self.memory_stats,
        }
    }
}

/// A file-format error from the command line's own files (checkpoints, logs, plots).
fn io_diagnostic(code: &'static str, e: &tl_io::IoError) -> Diagnostic {
    let d = Diagnostic::spanless(code, e.to_string());
    match e.hint() {
        Some(h) => d.with_help(h),
        None => d,
    }
}

fn parse_dtype(s: &str) -> Result<DType, String> {
    DType::parse(s).ok_or_else(|| format!("unknown dtype `{s}` (expected f32, f64, f16 or bf16)"))
}

/// A size in bytes: a number with an optional `K`, `M`, `G` or `T` (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("unknown unit in `{s}` (use K, M, G or T)")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a size (for example 512M or 8G)"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Prints diagnostics to standard error; returns whether any was an error.
fn emit(diags: &[Diagnostic], sources: &SourceMap) -> bool {
    let color = std::io::stderr().is_terminal();
    let mut err = std::io::stderr().lock();
    for d in diags {
        report::render(d, sources, color, &mut err);
    }
    diags.iter().any(|d| d.severity == Severity::Error)
}

// The command line's options, as parsed.
#[allow(clippy::too_many_arguments)]
fn run(
    source: souffle::Source,
    json: bool,
    profile: bool,
    device: device::DeviceChoice,
    options: RunOptions,
    goal_directed: pipeline::GoalDirected,
    train: TrainArgs,
    parallel: workers::ParallelArgs,
) -> ExitCode {
    let started = Instant::now();
    let mut sources = SourceMap::new();
    for (flag, path) in [("--log", &train.log), ("--plot", &train.plot)] {
        // Checked before training, so a long run does not end without its log or plot.
        let folder = path.as_deref().and_then(std::path::Path::parent);
        if let Some(folder) = folder.filter(|f| !f.as_os_str().is_empty() && !f.is_dir()) {
            let d = Diagnostic::spanless(
                "TL0404",
                format!("`{flag}`: folder {} does not exist", folder.display()),
            )
            .with_help("create the folder first, or write the file somewhere else");
            emit(&[d], &sources);
            return ExitCode::FAILURE;
        }
    }
    if let Some(dir) = &train.resume {
        // Checked before compiling, so a mistyped folder fails at once.
        if let Err(e) = tl_run::checkpoint::load(dir) {
            let help =
                "give `--resume` the folder a run saved with `--checkpoint DIR` (or that an \
                        interrupt saved as NAME.checkpoint); a relative path starts at the current \
                        folder";
            let d = match &e {
                tl_io::IoError::NotFound { path } if path == dir => Diagnostic::spanless(
                    "TL0403",
                    format!("`--resume {}`: there is no such folder", dir.display()),
                )
                .with_help(help),
                tl_io::IoError::NotFound { path } => Diagnostic::spanless(
                    "TL0403",
                    format!(
                        "`--resume {}`: the folder is not a checkpoint (it has no {})",
                        dir.display(),
                        path.file_name().map_or_else(
                            || path.display().to_string(),
                            |n| n.to_string_lossy().into_owned()
                        )
                    ),
                )
                .with_help(help),
                _ => {
                    let mut d = io_diagnostic("TL0403", &e);
                    d.message = format!("`--resume`: {}", d.message);
                    d
                }
            };
            emit(&[d], &sources);
            return ExitCode::FAILURE;
        }
    }
    let (program, diags) = source.load(&mut sources);
    let (checked, plan) = match pipeline::compile_with(&program, diags, &sources, goal_directed) {
        Ok(c) => (c.checked, c.plan),
        Err(diags) => {
            emit(&diags, &sources);
            return ExitCode::FAILURE;
        }
    };
    emit(&pipeline::warnings(&checked, &[]), &sources);
    let compiled = Instant::now();
    let role = match workers::Role::of(&parallel, device) {
        Ok(r) => r,
        Err(d) => {
            emit(&[*d], &sources);
            return ExitCode::FAILURE;
        }
    };
    if let workers::Role::Launch {
        world,
        transport,
        timeout,
    } = role
    {
        return match workers::launch(world, transport, timeout) {
            Ok(()) => ExitCode::SUCCESS,
            Err(d) => {
                emit(&[*d], &sources);
                ExitCode::FAILURE
            }
        };
    }
    let opened = match workers::open(device, &role) {
        Ok(b) => b,
        Err(d) => {
            emit(&[*d], &sources);
            return ExitCode::FAILURE;
        }
    };
    let backend = opened.backend();
    let device_opened = Instant::now();
    let mut reducer = match workers::connect(&role, &opened) {
        Ok(r) => r,
        Err(d) => {
            emit(&[*d], &sources);
            return ExitCode::FAILURE;
        }
    };
    let mut ui_options = train.ui_options();
    if !role.is_leader() {
        ui_options = train_ui::TrainUiOptions {
            progress: false,
            log: None,
            plot: None,
            memory_stats: false,
        };
    }
    let plan = match pipeline::for_backend(&checked, plan, backend) {
        Ok(p) => p,
        Err(diags) => {
            emit(&diags, &sources);
            return ExitCode::FAILURE;
        }
    };
    let mut ui = train_ui::TrainUi::new(ui_options).with_backend(backend);
    if train.resume.is_some() {
        ui = ui.continuing_log();
    }
    let mut engine = match Engine::new(&checked, &plan, backend, options) {
        Ok(e) => e,
        Err(e) => {
            emit(&[e.to_diagnostic()], &sources);
            return ExitCode::FAILURE;
        }
    };
    if profile {
        engine.profile = Some(Default::default());
        engine.relation_profile = Some(Vec::new());
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut print = |answer: &tl_run::Answer| {
        let text = if json {
            answer.to_json() + "\n"
        } else {
            answer.to_human()
        };
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    };
    let result = match reducer.as_deref_mut() {
        None => engine.run(&mut print, &mut ui),
        Some(r) => {
            let mut dp = tl_run::parallel::DataParallel::new(r);
            let result = engine.run_parallel(&mut print, &mut ui, &mut dp);
            if parallel.comm_stats && role.is_leader() {
                if let Some(s) = r.stats() {
                    eprintln!("{}", tl_dist::stats_line(&s, r.world()));
                }
            }
            result
        }
    };
    let ran = Instant::now();
    emit(&engine.warnings, &sources);
    if let (Some(strata), Some(statements)) = (&engine.relation_profile, &engine.profile) {
        let phases = [
            ("read, check and plan", compiled - started),
            ("open the device", device_opened - compiled),
            ("run", ran - device_opened),
        ];
        eprint!("{}", profile::report(strata, statements, &phases, &sources));
    }
    ui.print_final_memory();
    let ui_errors: Vec<Diagnostic> = ui
        .take_errors()
        .iter()
        .map(|e| {
            let mut d = io_diagnostic("TL0402", e).warning();
            let flag = if train.plot.as_deref() == Some(e.path()) {
                "--plot"
            } else {
                "--log"
            };
            d.message = format!("`{flag}`: {}", d.message);
            d.help = Some(format!(
                "give `{flag}` a file in a folder that exists and is writable (the run itself \
                 is not affected)"
            ));
            d
        })
        .collect();
    emit(&ui_errors, &sources);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            emit(&[e.to_diagnostic()], &sources);
            match e {
                // As a shell reports a process that SIGINT ended.
                tl_run::RunError::Interrupted { .. } => ExitCode::from(130),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn check(
    file: PathBuf,
    dump_plan: bool,
    goal_directed: pipeline::GoalDirected,
    souffle: souffle::SouffleArgs,
) -> ExitCode {
    let mut sources = SourceMap::new();
    let (program, diags) = souffle::load(&file, &mut sources, &souffle, None);
    match pipeline::compile_with(&program, diags, &sources, goal_directed) {
        Ok(compiled) => {
            let (checked, plan) = (&compiled.checked, &compiled.plan);
            emit(&pipeline::warnings(checked, &[]), &sources);
            print!("{}", compiled.summary);
            if dump_plan {
                if let Some(rewrite) = &compiled.rewrite {
                    print!("{}", rewrite.render(checked));
                }
                print!("{}", tl_plan::show::render(checked, plan));
            }
            ExitCode::SUCCESS
        }
        Err(diags) => {
            emit(&diags, &sources);
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    signals::install();
    match cli.command {
        Cmd::Run {
            file,
            json,
            device,
            dtype,
            seed,
            max_iters,
            max_memory,
            profile,
            goal_directed,
            train,
            parallel,
            souffle,
        } => run(
            souffle::Source {
                file: file.clone(),
                flags: souffle,
                settle: Some((
                    max_iters,
                    RunOptions {
                        dtype,
                        max_iters,
                        max_memory,
                        ..RunOptions::default()
                    },
                )),
            },
            json,
            profile,
            device,
            RunOptions {
                dtype,
                seed,
                max_iters,
                max_memory,
                checkpoint: train.checkpoint.clone(),
                checkpoint_every: train.checkpoint_every,
                resume: train.resume.clone(),
                replay: !train.no_replay,
                stop_checkpoint: Some(signals::default_checkpoint(&file)),
                ..RunOptions::default()
            },
            goal_directed,
            train,
            parallel,
        ),
        Cmd::Check {
            file,
            dump_plan,
            goal_directed,
            souffle,
        } => check(file, dump_plan, goal_directed, souffle),
        Cmd::Bench {
            file,
            device,
            dtype,
            warmup,
            runs,
            json,
            profile,
            no_replay,
        } => bench::bench(bench::BenchArgs {
            file,
            device,
            options: RunOptions {
                dtype,
                replay: !no_replay,
                ..RunOptions::default()
            },
            warmup,
            runs: runs as usize,
            json,
            profile,
        }),
        Cmd::Repl => repl::main(),
        Cmd::Lsp => lsp::main(),
    }
}
