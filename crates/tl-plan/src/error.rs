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
    /// The contraction order chosen for an equation's join makes an intermediate of more
    /// cells than [`crate::order::MAX_INTERMEDIATE_CELLS`]: reported before anything runs,
    /// instead of exhausting memory part-way through.
    #[error("the join defining `{tensor}` needs an intermediate of {} over [{}], more than the limit of {}", cells_text(*cells), indices.join(", "), cells_text(*limit))]
    TooLarge {
        /// The left-hand side's tensor.
        tensor: String,
        /// Cells of the largest intermediate (saturating at `u128::MAX`).
        cells: u128,
        /// The most cells allowed.
        limit: u128,
        /// The intermediate's indices.
        indices: Vec<String>,
        /// The equation.
        span: Span,
    },
    /// A planner pass left a graph that breaks the invariants of [`crate::Graph::verify`]
    /// (checked after every pass in debug builds): a bug in the planner, never in the program.
    #[error("the planner's `{pass}` pass broke the plan of this statement: {problem}")]
    BrokenGraph {
        /// The pass.
        pass: &'static str,
        /// What [`crate::Graph::verify`] found.
        problem: String,
        /// The statement planned.
        span: Span,
    },
}

/// A number of cells for a message: exact below 2^64, else the power of two it reaches (sizes
/// saturate at `u128::MAX`, which reads "at least 2^127 cells").
fn cells_text(cells: u128) -> String {
    if cells > u128::from(u64::MAX) {
        format!("at least 2^{} cells", 127 - cells.leading_zeros())
    } else {
        format!("{cells} cells")
    }
}

impl ToDiagnostic for PlanError {
    fn to_diagnostic(&self) -> Diagnostic {
        let msg = self.to_string();
        match self {
            PlanError::NoNormAxis { span, .. } => Diagnostic::error("TL0201", msg, *span, "along which axis?")
                .with_help("mark the axis on the left-hand side with a trailing dot, e.g. `A[p, q.] = softmax(S[p, q])`"),
            PlanError::NormAxisUnused { span, var, .. } => Diagnostic::error("TL0202", msg, *span, format!("`{var}` is not an index of this argument"))
                .with_help("dot the left-hand index that the argument varies along"),
            PlanError::TooLarge { span, .. } => Diagnostic::error("TL0203", msg, *span, "no order of this join found keeps less at once")
                .with_help("its factors share indices too densely (a large treewidth): give the shared indices smaller domains, or join fewer of the factors that share them"),
            PlanError::BrokenGraph { span, .. } => Diagnostic::error("TL0204", msg, *span, "while planning this")
                .with_help("this is a problem in the planner, not in the program; please report it with the program"),
        }
    }
}
