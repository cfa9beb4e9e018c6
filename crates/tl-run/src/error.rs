//! Errors while running a program. Each carries the span of the statement involved.

use thiserror::Error;
use tl_syntax::{Diagnostic, Span, ToDiagnostic};

/// A failure during evaluation or a command.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum RunError {
    /// The backend failed (out of memory, a device error).
    #[error("{error}")]
    Backend {
        /// The backend's error.
        error: tl_backend::BackendError,
        /// The statement being evaluated.
        span: Span,
    },
    /// A file could not be written.
    #[error("{message}")]
    Io {
        /// The writer's message (names the file).
        message: String,
        /// A fix, if known.
        hint: Option<String>,
        /// The command.
        span: Span,
    },
    /// A relation would grow past the tuple limit.
    #[error("{message}")]
    Relation {
        /// What happened.
        message: String,
        /// The rules' stratum (one of its rules).
        span: Span,
    },
    /// A relation too large to hold densely is used where a dense tensor is needed.
    #[error("`{tensor}` has {cells} cells, too many to use as a dense tensor")]
    TooDense {
        /// The relation.
        tensor: String,
        /// Its cell count.
        cells: u128,
        /// Where it is used.
        span: Span,
    },
    /// A dense tensor would take more memory than the run may use.
    #[error("{what} would take {} of memory, more than the {} available", human_bytes(*bytes), human_bytes(*limit))]
    TooLarge {
        /// What (names the tensor and its shape).
        what: String,
        /// Bytes it would take.
        bytes: u128,
        /// Bytes the run may use.
        limit: u128,
        /// Its definition or the statement that makes it.
        span: Span,
    },
    /// A NaN or infinity appeared while training.
    #[error("{what}")]
    NonFinite {
        /// What became non-finite, and where it first appeared.
        what: String,
        /// The equation where it first appeared (or the `minimize`).
        span: Span,
    },
    /// Data-parallel training failed: another rank stopped, a collective timed out, or the
    /// communication library failed.
    #[error("{error}")]
    Parallel {
        /// What went wrong, naming the rank.
        error: tl_dist::ReduceError,
        /// The `minimize`.
        span: Span,
    },
    /// A count or integer sum reached 2^53, past which 64-bit floating point skips integers.
    #[error("`{tensor}` reaches {value:e} (2^53 or more), where counts stop being exact")]
    Inexact {
        /// The integer tensor.
        tensor: String,
        /// Its largest magnitude.
        value: f64,
        /// Its definition.
        span: Span,
    },
    /// Training stopped at an interrupt after finishing a step (see [`crate::interrupt`]).
    #[error("training was interrupted after step {step} of {total}{}", saved.as_ref().map(|d| format!("; a checkpoint of that step is in `{}`", d.display())).unwrap_or_default())]
    Interrupted {
        /// Steps done.
        step: u64,
        /// Steps the `minimize` would have taken.
        total: u64,
        /// Where the checkpoint of the last step was saved.
        saved: Option<std::path::PathBuf>,
        /// The `minimize`.
        span: Span,
    },
    /// A command that cannot be carried out as written (or, with no hint, a failure of the
    /// engine itself).
    #[error("{what}")]
    Unsupported {
        /// What.
        what: String,
        /// How to write it instead; `None` where the engine, not the program, is at fault.
        hint: Option<String>,
        /// Where.
        span: Span,
    },
}

/// A byte count for people: `12.5 GiB`, `340.0 MiB`, `512 bytes`.
pub(crate) fn human_bytes(b: u128) -> String {
    const UNITS: [(&str, u128); 6] = [
        ("EiB", 1 << 60),
        ("PiB", 1 << 50),
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (name, size) in UNITS {
        if b >= size {
            return format!("{:.1} {name}", b as f64 / size as f64);
        }
    }
    format!("{b} bytes")
}

impl RunError {
    /// A backend error at a statement.
    pub fn backend(error: tl_backend::BackendError, span: Span) -> Self {
        RunError::Backend { error, span }
    }
}

impl ToDiagnostic for RunError {
    fn to_diagnostic(&self) -> Diagnostic {
        let msg = self.to_string();
        match self {
            // A device out of memory is the GPU's form of a tensor too large (`TL0314`).
            RunError::Backend {
                span,
                error: tl_backend::BackendError::OutOfMemory { .. },
            } => Diagnostic::error("TL0314", msg, *span, "while evaluating this").with_help(
                "use smaller domains, `--dtype bf16`, or the CPU (`--device cpu`)",
            ),
            RunError::Backend { span, .. } => {
                Diagnostic::error("TL0301", msg, *span, "while evaluating this").with_help(
                    "this is a problem in the engine or the device; please report it with the program",
                )
            }
            RunError::Io { span, hint, .. } => {
                Diagnostic::error("TL0302", msg, *span, "while writing this").with_help(
                    hint.clone()
                        .unwrap_or_else(|| "check that the folder exists and is writable".into()),
                )
            }
            RunError::Relation { span, .. } => {
                Diagnostic::error("TL0303", msg, *span, "this rule grows it").with_help(
                    "restrict the rules or the data (a narrower domain, a bound argument), or allow more with `--max-memory`",
                )
            }
            RunError::TooDense { span, .. } => {
                Diagnostic::error("TL0304", msg, *span, "used densely here").with_help(
                    "use the relation in rules (stored sparsely), or restrict its domains",
                )
            }
            RunError::TooLarge { span, .. } => {
                Diagnostic::error("TL0314", msg, *span, "this tensor").with_help(
                    "use smaller domains or shapes, store the relation as tuples (read it only in rules and counts), or allow more with `--max-memory`",
                )
            }
            RunError::NonFinite { span, .. } => {
                Diagnostic::error("TL0306", msg, *span, "first non-finite here").with_help(
                    "lower the learning rate, or guard logs, divisions and square roots against 0",
                )
            }
            RunError::Parallel { span, error } => {
                use tl_dist::ReduceError as R;
                let help = match error {
                    R::Lost { .. } => "the other ranks stopped with it; its own error is printed above, and `--checkpoint DIR` makes the run resumable with `--resume DIR`",
                    R::Timeout { .. } => "a rank is stuck or far slower than the others; raise `--collective-timeout` if a first step is slow, or resume from a checkpoint",
                    R::Mismatch { .. } => "every rank must run the same program with the same options",
                    R::Transport { .. } => "check the communication library (NCCL) and the devices; set NCCL_DEBUG=INFO for its own log",
                    R::Backend { .. } => "this is a problem in the engine or the device; please report it with the program",
                };
                Diagnostic::error("TL0307", msg, *span, "while training this").with_help(help)
            }
            RunError::Inexact { span, .. } => {
                Diagnostic::error("TL0312", msg, *span, "this count").with_help(
                    "counts are kept exact up to 2^53; divide the relation into parts, or make the tensor real (e.g. `0.5 * …`) to accept rounding",
                )
            }
            RunError::Interrupted { span, saved, .. } => {
                Diagnostic::error("TL0315", msg, *span, "this `minimize` stopped here").with_help(
                    match saved {
                        Some(d) => format!(
                            "continue with the same command and `--resume {}`",
                            d.display()
                        ),
                        None => "pass `--checkpoint DIR` to save the progress of a run".into(),
                    },
                )
            }
            RunError::Unsupported { span, hint, .. } => Diagnostic::error("TL0305", msg, *span, "here")
                .with_help(hint.clone().unwrap_or_else(|| {
                    "this is a problem in the engine; please report it with the program".into()
                })),
        }
    }
}
