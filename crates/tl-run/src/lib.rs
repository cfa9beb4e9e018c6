//! Runs a planned Tensor Logic program: gives every tensor its initial value, evaluates the
//! strata in dependency order (fixpoints for recursive ones), then carries out the commands
//! (queries, file writes) in program order.
#![deny(missing_docs)]
// Library code reports failures as errors; only tests may unwrap.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod answer;
pub mod batch;
mod budget;
pub mod checkpoint;
mod closure;
pub mod computed;
mod device_relation;
pub mod device_rules;
mod dropout;
pub mod engine;
pub mod error;
pub mod eval;
mod eval_replay;
pub mod grad;
mod host_memory;
pub mod interrupt;
pub mod layers;
mod loop_tape;
pub mod loops;
pub mod masks;
pub mod observe;
pub mod optim;
pub mod parallel;
mod pass_result;
pub mod replay;
pub mod rng;
pub mod sparse;
mod sparse_cache;
pub mod strata;
pub mod train;
mod value;
pub mod vjp;
pub mod write;

pub use answer::Answer;
pub use engine::{Engine, RunOptions, StratumProfile, Value};
pub use error::RunError;

use tl_check::Command;

impl Engine<'_> {
    /// Evaluates the definitions, then runs every command, handing each answer to `emit` as
    /// soon as it is ready.
    pub fn run(
        &mut self,
        emit: &mut dyn FnMut(&Answer),
        observer: &mut dyn observe::TrainObserver,
    ) -> Result<(), RunError> {
        self.evaluate_all()?;
        for cmd in &self.program.commands {
            match cmd {
                Command::Query {
                    tensor,
                    args,
                    text,
                    span,
                } => {
                    let a = self.answer(*tensor, args, text, *span)?;
                    emit(&a);
                }
                Command::Write {
                    path,
                    tensors,
                    delimiter,
                    span,
                } => self.write(path, tensors, *delimiter, *span)?,
                Command::Minimize(m) => self.minimize(m, observer)?,
            }
        }
        Ok(())
    }
}
