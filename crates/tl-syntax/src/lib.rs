//! Tensor Logic source text: spans, diagnostics as data, the lexer, the parser and the syntax tree.
//!
//! This crate depends on none of the other TensorLogic crates; everything downstream consumes
//! its [`ast::Program`].
#![deny(missing_docs)]
// Library code reports failures as errors; only tests may unwrap.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod ast;
pub mod diagnostic;
pub mod lexer;
pub mod loader;
pub mod parser;
pub mod souffle;
pub mod span;

pub use diagnostic::{Diagnostic, Label, Severity, ToDiagnostic};
pub use loader::{load_program, load_source, LoadError};
pub use parser::{parse, ParseError};
pub use span::{FileId, SourceMap, Span};
