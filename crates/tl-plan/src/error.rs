//! Errors found while planning: constructs that check but cannot be lowered as written.

use thiserror::Error;
use tl_syntax::{Diagnostic, Span, ToDiagnostic};

/// A problem found while lowering an equation or rule.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum PlanError {
    /// `softmax`/`lnorm` with no dotted index and more than one axis to choose from.
    #[error("`{func}` needs an axis to normalise along")]
    NoNormAxis {
        /// The function.
        func: String,
        /// The call.
        span: Span,
    },
    /// The dotted index does not occur in the normalised argument.
    #[error("`{func}` normalises along `{var}`, which its argument does not use")]
    NormAxisUnused {
        /// The function.
        func: String,
        /// The dotted variable.
        var: String,
        /// The call.
        span: Span,
    },
    /// An intermediate would need more memory than can be addressed.
    #[error("{what} would have {cells} elements, too many to hold")]
    TooLarge {
        /// What, in words.
        what: String,
        /// How many elements.
        cells: u128,
        /// Where.
        span: Span,
    },
}

impl ToDiagnostic for PlanError {
    fn to_diagnostic(&self) -> Diagnostic {
        let msg = self.to_string();
        match self {
            PlanError::NoNormAxis { span, .. } => Diagnostic::error("TL0201", msg, *span, "along which axis?")
                .with_help("mark the axis on the left-hand side with a trailing dot, e.g. `A[p, q.] = softmax(S[p, q])`"),
            PlanError::NormAxisUnused { span, var, .. } => Diagnostic::error("TL0202", msg, *span, format!("`{var}` is not an index of this argument"))
                .with_help("dot the left-hand index that the argument varies along"),
            PlanError::TooLarge { span, .. } => Diagnostic::error("TL0203", msg, *span, "too large")
                .with_help("sum indices earlier (split the equation), or use smaller domains"),
        }
    }
}
