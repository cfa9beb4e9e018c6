//! `tl`: run, check and explore Tensor Logic programs.

mod device;
mod pipeline;
mod repl;
mod report;

use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
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
        /// Bound on iterations of real-valued recursion.
        #[arg(long, default_value_t = 1000)]
        max_iters: usize,
    },
    /// Parse and check a program: print inferred shapes, domains and implicit params.
    Check {
        /// The program file.
        file: PathBuf,
        /// Also print the planned graph of every equation and rule.
        #[arg(long)]
        dump_plan: bool,
    },
    /// An interactive session: type statements and queries.
    Repl,
}

fn parse_dtype(s: &str) -> Result<DType, String> {
    DType::parse(s).ok_or_else(|| format!("unknown dtype `{s}` (expected f32, f64, f16 or bf16)"))
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

fn run(file: PathBuf, json: bool, device: device::DeviceChoice, options: RunOptions) -> ExitCode {
    let mut sources = SourceMap::new();
    let (program, diags) = tl_syntax::load_program(&file, &mut sources);
    let (checked, plan) = match pipeline::compile(&program, diags, &sources) {
        Ok(x) => x,
        Err(diags) => {
            emit(&diags, &sources);
            return ExitCode::FAILURE;
        }
    };
    let backend = match device::open(device) {
        Ok(b) => b,
        Err(d) => {
            emit(&[*d], &sources);
            return ExitCode::FAILURE;
        }
    };
    let mut engine = match Engine::new(&checked, &plan, backend.as_ref(), options) {
        Ok(e) => e,
        Err(e) => {
            emit(&[e.to_diagnostic()], &sources);
            return ExitCode::FAILURE;
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = engine.run(&mut |answer| {
        let text = if json {
            answer.to_json() + "\n"
        } else {
            answer.to_human()
        };
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    });
    emit(&engine.warnings, &sources);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            emit(&[e.to_diagnostic()], &sources);
            ExitCode::FAILURE
        }
    }
}

fn check(file: PathBuf, dump_plan: bool) -> ExitCode {
    let mut sources = SourceMap::new();
    let (program, diags) = tl_syntax::load_program(&file, &mut sources);
    match pipeline::compile(&program, diags, &sources) {
        Ok((checked, plan)) => {
            print!("{}", pipeline::summary(&checked));
            if dump_plan {
                for (k, p) in plan.equations.iter().chain(&plan.rules).enumerate() {
                    println!(
                        "plan {k} → {} ({:?}):\n{}",
                        checked.tensors[p.target].name, p.placement, p.graph
                    );
                }
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
    match cli.command {
        Cmd::Run {
            file,
            json,
            device,
            dtype,
            seed,
            max_iters,
        } => run(
            file,
            json,
            device,
            RunOptions {
                dtype,
                seed,
                max_iters,
            },
        ),
        Cmd::Check { file, dump_plan } => check(file, dump_plan),
        Cmd::Repl => repl::main(),
    }
}
