//! What fuzzing and the no-panic property test share: [`pipeline::run`] takes any program text
//! through parse → check → plan → run (on the CPU, within small limits so each case stays
//! fast) and reports what must never happen besides a panic: an error that calls itself a
//! problem in the engine (a program the checker accepted but the engine could not carry out).
//! [`generate::program`] turns arbitrary bytes into a program that mostly parses and checks,
//! so that mutations of bytes reach the planner and the engine, not only the lexer;
//! [`souffle::program`] does the same for Soufflé programs, which [`pipeline::run_souffle`] runs.

// Library code reports failures as errors; only tests may unwrap.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
pub mod generate;
pub mod pipeline;
pub mod souffle;
pub mod souffle_ref;
