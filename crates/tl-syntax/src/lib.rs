//! Tensor Logic source text: spans, diagnostics as data, the lexer, the parser and the syntax tree.
//!
//! This crate depends on none of the other TensorLogic crates; everything downstream consumes
//! its [`ast::Program`].
#![deny(missing_docs)]

pub mod ast;
pub mod diagnostic;
pub mod span;

pub use diagnostic::{Diagnostic, Label, Severity, ToDiagnostic};
pub use span::{FileId, SourceMap, Span};
