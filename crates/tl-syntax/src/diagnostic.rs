//! Diagnostics as data: every phase's error enum turns into a [`Diagnostic`], and only the
//! command-line crate renders them (with file:line:col, a caret under the span, and a hint).

use crate::span::Span;

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The program cannot run.
    Error,
    /// The program ran, but something deserves attention (e.g. a fixpoint that did not converge).
    Warning,
}

/// A secondary span with its own message, drawn beside the primary one.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    /// Where the label points.
    pub span: Span,
    /// What it says about that place.
    pub message: String,
}

/// One error or warning about a program, with everything needed to render it.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable code such as `TL0101`, for `--json` and for searching the docs.
    pub code: &'static str,
    /// One-line summary of the problem.
    pub message: String,
    /// The offending text; `None` only for errors with no place in a file (e.g. a bad flag).
    pub span: Option<Span>,
    /// What to say under the caret at `span`.
    pub label: String,
    /// Other places involved (e.g. where a conflicting extent was first seen).
    pub secondary: Vec<Label>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A new error with a primary span and label.
    pub fn error(
        code: &'static str,
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: Some(span),
            label: label.into(),
            secondary: Vec::new(),
            help: None,
        }
    }

    /// A new error that belongs to no place in the source.
    pub fn spanless(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: None,
            label: String::new(),
            secondary: Vec::new(),
            help: None,
        }
    }

    /// Turns this diagnostic into a warning.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// Adds a hint on how to fix the problem.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a secondary labelled span.
    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.secondary.push(Label {
            span,
            message: message.into(),
        });
        self
    }
}

/// Implemented by every phase's error type so the CLI can render any of them the same way.
pub trait ToDiagnostic {
    /// The diagnostic describing this error.
    fn to_diagnostic(&self) -> Diagnostic;
}

impl ToDiagnostic for Diagnostic {
    fn to_diagnostic(&self) -> Diagnostic {
        self.clone()
    }
}
