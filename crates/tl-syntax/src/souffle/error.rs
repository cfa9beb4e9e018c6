//! Errors in Soufflé programs, each with its span and a hint; codes `TL0030`–`TL0039`.

use thiserror::Error;

use crate::diagnostic::{Diagnostic, ToDiagnostic};
use crate::span::Span;

/// A mistake in a Soufflé program, or a Soufflé construct outside the subset `tl` runs.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum SouffleError {
    /// A character that starts no token, an unterminated string or an unclosed comment.
    #[error("{what}")]
    Lexical {
        /// What is wrong.
        what: String,
        /// Where.
        span: Span,
    },
    /// A token that does not fit the grammar here.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What the grammar allows here.
        expected: String,
        /// What was written instead.
        found: String,
        /// Where.
        span: Span,
    },
    /// A Soufflé construct that `tl` does not run.
    #[error("{construct} is not supported")]
    Unsupported {
        /// The construct, named as Soufflé's documentation names it.
        construct: String,
        /// What to do instead.
        hint: String,
        /// Where.
        span: Span,
    },
    /// A relation used without a `.decl`, or a type never defined.
    #[error("{kind} `{name}` is not declared")]
    Undeclared {
        /// "relation" or "type".
        kind: &'static str,
        /// The name.
        name: String,
        /// Where it is used.
        span: Span,
    },
    /// An atom with another number of arguments than its relation's `.decl`.
    #[error("`{relation}` has {expected} attributes, but {found} arguments are given")]
    Arity {
        /// The relation.
        relation: String,
        /// Attributes declared.
        expected: usize,
        /// Arguments written.
        found: usize,
        /// The atom.
        span: Span,
        /// The declaration.
        decl: Span,
    },
    /// A variable that no positive body atom binds (Soufflé's "ungrounded variable").
    #[error("variable `{name}` is ungrounded")]
    Ungrounded {
        /// The variable.
        name: String,
        /// One place it is used.
        span: Span,
    },
    /// `_` in a rule head or a fact.
    #[error("`_` in the head of a clause")]
    UnderscoreInHead {
        /// Where.
        span: Span,
    },
    /// A relation, type or attribute declared twice.
    #[error("{kind} `{name}` is declared twice")]
    Duplicate {
        /// "relation", "type" or "attribute".
        kind: &'static str,
        /// The name.
        name: String,
        /// The second declaration.
        span: Span,
        /// The first one.
        first: Span,
    },
    /// A bad option of `.input` or `.output`.
    #[error("{what}")]
    BadOption {
        /// What is wrong.
        what: String,
        /// How to fix it.
        hint: String,
        /// Where.
        span: Span,
    },
    /// A constant or variable of one type where another is declared.
    #[error("{what}")]
    TypeMismatch {
        /// What clashes.
        what: String,
        /// Where.
        span: Span,
        /// Where the other type comes from.
        other: Span,
    },
    /// A relation that depends on itself through a negation or an aggregate that a rule
    /// computing numbers holds (the checker sees the other cycles).
    #[error("recursion through {through}: {cycle}")]
    Unstratified {
        /// `an aggregate` or `a negation`.
        through: &'static str,
        /// The relations on the cycle.
        cycle: String,
        /// The rule.
        span: Span,
    },
}

impl SouffleError {
    /// The primary span.
    pub fn span(&self) -> Span {
        match self {
            SouffleError::Lexical { span, .. }
            | SouffleError::Expected { span, .. }
            | SouffleError::Unsupported { span, .. }
            | SouffleError::Undeclared { span, .. }
            | SouffleError::Arity { span, .. }
            | SouffleError::Ungrounded { span, .. }
            | SouffleError::UnderscoreInHead { span }
            | SouffleError::Duplicate { span, .. }
            | SouffleError::BadOption { span, .. }
            | SouffleError::TypeMismatch { span, .. }
            | SouffleError::Unstratified { span, .. } => *span,
        }
    }

    /// The stable code reported with this error.
    pub fn code(&self) -> &'static str {
        match self {
            SouffleError::Lexical { .. } => "TL0030",
            SouffleError::Expected { .. } => "TL0031",
            SouffleError::Unsupported { .. } => "TL0032",
            SouffleError::Undeclared { .. } => "TL0033",
            SouffleError::Arity { .. } => "TL0034",
            SouffleError::Ungrounded { .. } => "TL0035",
            SouffleError::UnderscoreInHead { .. } => "TL0036",
            SouffleError::Duplicate { .. } => "TL0037",
            SouffleError::BadOption { .. } => "TL0038",
            SouffleError::TypeMismatch { .. } => "TL0039",
            SouffleError::Unstratified { .. } => "TL0110",
        }
    }
}

impl ToDiagnostic for SouffleError {
    fn to_diagnostic(&self) -> Diagnostic {
        let base = |label: &str, help: &str| {
            Diagnostic::error(self.code(), self.to_string(), self.span(), label).with_help(help)
        };
        match self {
            SouffleError::Lexical { .. } => base(
                "here",
                "comments are `//` and `/* … */`; strings are written in double quotes on one line",
            ),
            SouffleError::Expected { expected, .. } => base(
                "unexpected here",
                &format!(
                    "write {expected} here (docs/language.md, \"Soufflé programs\", lists the subset)"
                ),
            ),
            SouffleError::Unsupported { hint, .. } => base("not supported by `tl`", hint),
            SouffleError::Undeclared { kind, name, .. } => base(
                "not declared",
                &if *kind == "type" {
                    format!("declare it, e.g. `.type {name} <: symbol`, or use `symbol` or `number`")
                } else {
                    format!("declare it with `.decl {name}(…)`, naming each attribute and its type")
                },
            ),
            SouffleError::Arity { decl, .. } => base(
                "wrong number of arguments",
                "give one argument per attribute of the `.decl`",
            )
            .with_label(*decl, "declared here"),
            SouffleError::Ungrounded { .. } => base(
                "bound by no positive atom of the body",
                "use the variable in a positive body atom (or equate it to one that is); to mean \
                 \"any value\" in a negated atom, write `_`",
            ),
            SouffleError::UnderscoreInHead { .. } => base(
                "`_` cannot be derived",
                "name a variable that the body binds, or write a constant",
            ),
            SouffleError::Duplicate { first, .. } => {
                base("declared again here", "keep one declaration")
                    .with_label(*first, "first declared here")
            }
            SouffleError::BadOption { hint, .. } => base("here", hint),
            SouffleError::TypeMismatch { other, .. } => base(
                "of the other type",
                "a `symbol` attribute holds strings and a `number` attribute integers; \
                 make the types agree",
            )
            .with_label(*other, "the type comes from here"),
            SouffleError::Unstratified { .. } => base(
                "this rule",
                "a negation or an aggregate must read relations computed before it; Soufflé \
                 rejects this program too",
            ),
        }
    }
}
