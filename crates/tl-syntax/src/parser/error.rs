//! Errors found while lexing and parsing, each with the spans involved and a fix-it hint.

use thiserror::Error;

use crate::diagnostic::{Diagnostic, ToDiagnostic};
use crate::parser::MAX_DEPTH;
use crate::span::Span;

/// A lexical or syntax error. The parser records one per bad statement and goes on with the
/// next statement, so a file's mistakes are reported together.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum ParseError {
    /// A character that starts no token.
    #[error("unexpected character `{ch}`")]
    UnexpectedChar {
        /// The character.
        ch: char,
        /// Where it is.
        span: Span,
    },
    /// A `"` with no closing `"` on the same line.
    #[error("unterminated string")]
    UnterminatedString {
        /// From the opening quote to the end of the line.
        span: Span,
    },
    /// A token that does not fit the grammar here.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What the grammar allows here.
        expected: String,
        /// What was written instead.
        found: String,
        /// Where the unexpected token is.
        span: Span,
    },
    /// A bracket left open.
    #[error("expected `{close}`, found {found}")]
    Unclosed {
        /// The missing closing bracket.
        close: char,
        /// What was written instead.
        found: String,
        /// Where the closing bracket was expected.
        span: Span,
        /// The opening bracket.
        open: Span,
    },
    /// A variable, arithmetic or slice among a fact's arguments.
    #[error("a fact's arguments must be constants")]
    FactArgument {
        /// The offending argument.
        span: Span,
        /// The fact's relation name.
        relation: Span,
    },
    /// An array literal whose rows differ in shape.
    #[error("array literal is not rectangular")]
    RaggedArray {
        /// The row that differs.
        row: Span,
        /// The first row, which sets the expected shape.
        first: Span,
    },
    /// A count, extent or size that is not a non-negative integer (or is too large).
    #[error("expected a non-negative integer, found {found}")]
    NotAnInteger {
        /// What was written.
        found: String,
        /// Where it is.
        span: Span,
    },
    /// A statement that starts with a lower-case name.
    #[error("tensor names start with an upper-case letter, found `{name}`")]
    LowercaseTensor {
        /// The name.
        name: String,
        /// Where it is.
        span: Span,
    },
    /// `batch` or `schedule` given twice in one `minimize`.
    #[error("`{clause}` given twice")]
    DuplicateClause {
        /// The clause keyword.
        clause: &'static str,
        /// The second occurrence.
        span: Span,
        /// The first occurrence.
        first: Span,
    },
    /// A data file or array literal given with a projection other than `=`.
    #[error("data must be given with `=`")]
    DataProjection {
        /// The operator used.
        span: Span,
    },
    /// A `.` or `: extent` on an index that is not on an equation's left-hand side.
    #[error("index annotations are only allowed on an equation's left-hand side")]
    MisplacedAnnotation {
        /// The annotated index.
        span: Span,
    },
    /// A `*` index that is not a step variable plus a constant (`*2`, `*t*2`).
    #[error("a virtual index is a step variable plus a constant")]
    VirtualIndex {
        /// The index, `*` included.
        span: Span,
    },
    /// Nesting deeper than the parser accepts.
    #[error("expression nested more than {MAX_DEPTH} levels deep")]
    TooDeep {
        /// Where the limit was reached.
        span: Span,
    },
}

impl ParseError {
    /// The primary span of the error.
    pub fn span(&self) -> Span {
        match self {
            ParseError::UnexpectedChar { span, .. }
            | ParseError::UnterminatedString { span }
            | ParseError::Expected { span, .. }
            | ParseError::Unclosed { span, .. }
            | ParseError::FactArgument { span, .. }
            | ParseError::NotAnInteger { span, .. }
            | ParseError::LowercaseTensor { span, .. }
            | ParseError::DuplicateClause { span, .. }
            | ParseError::DataProjection { span }
            | ParseError::MisplacedAnnotation { span }
            | ParseError::VirtualIndex { span }
            | ParseError::TooDeep { span } => *span,
            ParseError::RaggedArray { row, .. } => *row,
        }
    }

    /// The stable code reported with this error.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::UnexpectedChar { .. } => "TL0001",
            ParseError::UnterminatedString { .. } => "TL0002",
            ParseError::Expected { .. } => "TL0003",
            ParseError::Unclosed { .. } => "TL0004",
            ParseError::FactArgument { .. } => "TL0006",
            ParseError::RaggedArray { .. } => "TL0007",
            ParseError::NotAnInteger { .. } => "TL0008",
            ParseError::LowercaseTensor { .. } => "TL0009",
            ParseError::DuplicateClause { .. } => "TL0010",
            ParseError::DataProjection { .. } => "TL0011",
            ParseError::MisplacedAnnotation { .. } => "TL0012",
            ParseError::TooDeep { .. } => "TL0013",
            ParseError::VirtualIndex { .. } => "TL0014",
        }
    }
}

impl ToDiagnostic for ParseError {
    fn to_diagnostic(&self) -> Diagnostic {
        let base = |label: &str, help: &str| {
            Diagnostic::error(self.code(), self.to_string(), self.span(), label).with_help(help)
        };
        match self {
            ParseError::UnexpectedChar { .. } => base(
                "not part of any token",
                "remove it; comments start with `#`, strings are written in double quotes",
            ),
            ParseError::UnterminatedString { .. } => base(
                "this string has no closing quote",
                "close the string with `\"` on the same line; write `\\\"` for a quote inside it",
            ),
            ParseError::Expected { expected, .. } => base(
                "unexpected here",
                &format!("write {expected} here (docs/language.md lists the statement forms)"),
            ),
            ParseError::Unclosed { close, open, .. } => {
                let opened = match close {
                    ']' => "[",
                    ')' => "(",
                    _ => "{",
                };
                base(
                    &format!("expected `{close}` here"),
                    &format!("add `{close}` to close the `{opened}` opened here"),
                )
                .with_label(*open, format!("`{opened}` opened here"))
            }
            ParseError::FactArgument { relation, .. } => base(
                "not a constant",
                "facts hold constants (symbols such as `Alice` or integers); did you mean a rule \
                 `... <- ...`?",
            )
            .with_label(*relation, "in this fact"),
            ParseError::RaggedArray { first, .. } => base(
                "this row has a different shape",
                "every row of an array literal must have the same shape as the first",
            )
            .with_label(*first, "the first row"),
            ParseError::NotAnInteger { .. } => base(
                "not a non-negative integer",
                "write a whole number such as `8` here",
            ),
            ParseError::LowercaseTensor { name, .. } => {
                let mut chars = name.chars();
                let upper: String = chars
                    .next()
                    .map(|c| c.to_uppercase().chain(chars).collect())
                    .unwrap_or_default();
                base(
                    "lower-case names are index variables or functions",
                    &format!(
                        "name tensors with an upper-case first letter, e.g. `{upper}` (here and wherever it is used)"
                    ),
                )
            }
            ParseError::DuplicateClause { first, clause, .. } => {
                base("given again here", &format!("keep one `{clause}` clause"))
                    .with_label(*first, "first given here")
            }
            ParseError::DataProjection { .. } => base(
                "not `=`",
                "data files and array literals are read with `=`, e.g. `X = \"x.npy\"`",
            ),
            ParseError::MisplacedAnnotation { .. } => base(
                "annotation not allowed here",
                "a trailing `.` or `: extent` belongs on an index of an equation's left-hand side",
            ),
            ParseError::VirtualIndex { .. } => base(
                "not a step",
                "write `*t` (the step), `*t+1` (the next step) or `*t-1` (the one before)",
            ),
            ParseError::TooDeep { .. } => base(
                "nesting limit reached here",
                "split the expression into several equations with intermediate tensors",
            ),
        }
    }
}
