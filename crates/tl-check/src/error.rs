//! Errors the checker reports. Every variant carries the spans involved; [`ToDiagnostic`] turns
//! each into a rendered report with a stable code and a hint.

use thiserror::Error;
use tl_syntax::{Diagnostic, Span, ToDiagnostic};

/// A problem found while checking names, shapes, domains, types or strata.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CheckError {
    /// A name that means nothing here (an unknown function, optimiser, domain…).
    #[error("unknown {kind} `{name}`")]
    UnknownName {
        /// What kind of name was expected.
        kind: &'static str,
        /// The name written.
        name: String,
        /// Where.
        span: Span,
        /// What is accepted instead.
        hint: String,
    },
    /// An option an optimiser or schedule does not take.
    #[error("`{what}` has no option `{option}`")]
    UnknownOption {
        /// The optimiser or schedule.
        what: String,
        /// The option written.
        option: String,
        /// The options it takes.
        allowed: String,
        /// Where.
        span: Span,
    },
    /// An option (or an initialiser's argument) with a value of the wrong kind.
    #[error("{what} must be {expected}")]
    BadOption {
        /// What was given, in words: "option `lr`", "argument 2 of `normal`".
        what: String,
        /// What it must be.
        expected: &'static str,
        /// A correct way to write it, for the hint: "`lr=0.01`".
        example: String,
        /// Where.
        span: Span,
    },
    /// A required option left out.
    #[error("`{what}` needs option `{option}`")]
    MissingOption {
        /// The optimiser or schedule.
        what: String,
        /// The missing option.
        option: String,
        /// The call.
        span: Span,
    },
    /// A tensor used with a different number of indices than elsewhere.
    #[error("`{tensor}` has {expected} axes but is used here with {found}")]
    RankMismatch {
        /// The tensor.
        tensor: String,
        /// Its rank where first seen.
        expected: usize,
        /// The rank here.
        found: usize,
        /// Here.
        span: Span,
        /// Where its rank was first fixed.
        first: Span,
    },
    /// Two places give one index or axis different sizes.
    #[error("{what} has {first_extent} values in one place and {second_extent} in another")]
    ExtentMismatch {
        /// The index or axis, in words.
        what: String,
        /// The first extent.
        first_extent: usize,
        /// Where it was fixed.
        first: Span,
        /// The conflicting extent.
        second_extent: usize,
        /// Where it conflicts.
        second: Span,
        /// The index occurrence that joins the two axes, when one does (the cause: an
        /// equation using one index for axes of different sizes).
        joined: Option<Span>,
    },
    /// An index whose size nothing determines.
    #[error("the size of index `{index}` cannot be inferred")]
    UnsizedIndex {
        /// The index (or axis) name.
        index: String,
        /// Where it is used.
        span: Span,
    },
    /// An axis that mixes symbols and integers.
    #[error("{what} mixes symbols and integers")]
    MixedDomain {
        /// The axis, in words.
        what: String,
        /// Where a symbol is used.
        symbol: Span,
        /// Where an integer size or constant is used.
        integer: Span,
    },
    /// A constant outside its axis.
    #[error("{value} is outside `{what}`, which has {extent} values")]
    OutOfRange {
        /// The constant.
        value: i64,
        /// The axis, in words.
        what: String,
        /// Its extent.
        extent: usize,
        /// Where.
        span: Span,
    },
    /// Recursion through negation.
    #[error("recursion through `not`: {cycle}")]
    NegationCycle {
        /// The cycle, e.g. `P -> Q -> P`.
        cycle: String,
        /// The negated atom closing the cycle.
        span: Span,
    },
    /// A tensor defined in two incompatible ways (e.g. read from a file and by an equation).
    #[error("`{tensor}` is defined twice: {detail}")]
    Redefined {
        /// The tensor.
        tensor: String,
        /// The ways it is defined.
        detail: String,
        /// The second definition.
        span: Span,
        /// The first definition.
        first: Span,
    },
    /// A function called with the wrong number of arguments.
    #[error("`{func}` takes {expected} but is given {found}")]
    Arity {
        /// The function.
        func: String,
        /// What it takes, in words.
        expected: &'static str,
        /// How many were given.
        found: usize,
        /// Where.
        span: Span,
    },
    /// A left-hand placement outside its axis: past an extent an annotation, a domain or a
    /// join fixes, or before position 0. Dropping the elements would lose data silently.
    #[error("`{tensor}` places elements at positions {lo} to {hi} along axis {position}, outside its extent of {extent}")]
    PlacedOutside {
        /// The tensor.
        tensor: String,
        /// The axis.
        position: usize,
        /// The lowest position written.
        lo: i64,
        /// The highest position written.
        hi: i64,
        /// The axis's extent.
        extent: usize,
        /// Whether the extent was fixed by an annotation, domain or join (rather than by the
        /// other placements).
        fixed: bool,
        /// The left-hand index.
        span: Span,
    },
    /// A construct accepted by the grammar but not meaningful where it is used.
    #[error("{what}")]
    Misplaced {
        /// What is wrong.
        what: String,
        /// Where.
        span: Span,
        /// How to write it instead.
        hint: String,
    },
    /// A data file that could not be read.
    #[error("{message}")]
    Data {
        /// The reader's message (names the file).
        message: String,
        /// How to fix it.
        hint: Option<String>,
        /// The statement naming the file.
        span: Span,
    },
    /// A virtual index (`*t`) where it means nothing: outside an equation that steps, on a
    /// tensor no equation writes at a step, twice on one left-hand side, in a rule or query.
    #[error("{what}")]
    VirtualMisplaced {
        /// What is wrong.
        what: String,
        /// Where.
        span: Span,
        /// How to write it instead.
        hint: String,
    },
    /// The number of steps of a loop, which nothing sizes.
    #[error("the number of steps of `*{var}` cannot be inferred")]
    StepsUnknown {
        /// The step variable.
        var: String,
        /// The virtual index on the left-hand side.
        span: Span,
    },
    /// Two equations of one loop that disagree: on the steps, or on the step a tensor writes.
    #[error("{what}")]
    LoopMismatch {
        /// What differs.
        what: String,
        /// The second equation.
        span: Span,
        /// The first one.
        first: Span,
        /// How to make them agree.
        hint: String,
    },
    /// A loop that cannot run step by step: a read of a step not computed yet, equations of
    /// one step that read each other in a cycle, or a loop that reads its own result.
    #[error("{what}")]
    StepOrder {
        /// What is wrong.
        what: String,
        /// Where.
        span: Span,
        /// How to write it instead.
        hint: String,
    },
    /// A tensor that is used but never defined and cannot be learned (a relation or unsized).
    #[error("`{tensor}` is used but never defined")]
    Undefined {
        /// The tensor.
        tensor: String,
        /// Where it is used.
        span: Span,
    },
}

impl ToDiagnostic for CheckError {
    fn to_diagnostic(&self) -> Diagnostic {
        let msg = self.to_string();
        match self {
            CheckError::UnknownName { span, hint, .. } => Diagnostic::error("TL0101", msg, *span, "not known here").with_help(hint.clone()),
            CheckError::UnknownOption { span, allowed, .. } => Diagnostic::error("TL0102", msg, *span, "unknown option").with_help(format!("the options are: {allowed}")),
            CheckError::BadOption { span, expected, example, .. } => Diagnostic::error("TL0103", msg, *span, format!("expected {expected}")).with_help(format!("write {example}")),
            CheckError::MissingOption { span, option, .. } => Diagnostic::error("TL0104", msg, *span, format!("`{option}` is not given")).with_help(format!("add `{option}=…` to the call")),
            CheckError::RankMismatch { span, first, expected, .. } => Diagnostic::error("TL0105", msg, *span, "used here")
                .with_label(*first, format!("{expected} axes here"))
                .with_help("every use of a tensor must give one index per axis"),
            CheckError::ExtentMismatch { first, first_extent, second, second_extent, joined, .. } => {
                let help = "an index variable joins axes that must have the same size; rename one of the indices if they are different";
                match joined {
                    Some(at) => Diagnostic::error(
                        "TL0106",
                        msg,
                        *at,
                        format!("this index joins an axis of {first_extent} with one of {second_extent}"),
                    )
                    .with_label(*first, format!("{first_extent} here"))
                    .with_label(*second, format!("{second_extent} here")),
                    None => Diagnostic::error("TL0106", msg, *second, format!("{second_extent} here"))
                        .with_label(*first, format!("{first_extent} here")),
                }
                .with_help(help)
            }
            CheckError::UnsizedIndex { span, index } => Diagnostic::error("TL0107", msg, *span, format!("`{index}` has no size"))
                .with_help(format!("use `{index}` to index an axis of known size, or state it on the left-hand side, e.g. `[{index}: 10]`")),
            CheckError::MixedDomain { symbol, integer, .. } => Diagnostic::error("TL0108", msg, *symbol, "a symbol here")
                .with_label(*integer, "an integer here")
                .with_help("an axis holds either named symbols or integers 0..n-1, not both"),
            CheckError::OutOfRange { span, .. } => Diagnostic::error("TL0109", msg, *span, "out of range").with_help("indices run from 0 to the extent minus one"),
            CheckError::NegationCycle { span, .. } => Diagnostic::error("TL0110", msg, *span, "negated here")
                .with_help("a relation cannot depend on its own negation; move the negated part to a relation computed first"),
            CheckError::Redefined { span, first, .. } => Diagnostic::error("TL0111", msg, *span, "defined again here")
                .with_label(*first, "first defined here")
                .with_help("give one of them a different name"),
            CheckError::Arity { span, expected, .. } => Diagnostic::error("TL0112", msg, *span, "wrong number of arguments").with_help(format!("it takes {expected}")),
            CheckError::Misplaced { span, hint, .. } => Diagnostic::error("TL0114", msg, *span, "here").with_help(hint.clone()),
            CheckError::PlacedOutside { span, lo, fixed, extent, .. } => {
                let help = if *lo < 0 {
                    "positions start at 0; shift on the right-hand side instead (`C[i] = B[i+1]`)".to_string()
                } else if *fixed {
                    format!("the axis has {extent} positions because an annotation, a domain or a join fixes it; drop or enlarge that, or place within 0..{extent}")
                } else {
                    "this index is sized by the axis it places; state the axis's extent on the left (`C[i: 10]`)".to_string()
                };
                Diagnostic::error("TL0120", msg, *span, "placed here").with_help(help)
            }
            CheckError::Data { span, hint, .. } => {
                let d = Diagnostic::error("TL0115", msg, *span, "while reading this");
                match hint {
                    Some(h) => d.with_help(h.clone()),
                    None => d.with_help("paths are relative to the folder of the program file"),
                }
            }
            CheckError::VirtualMisplaced { span, hint, .. } => Diagnostic::error("TL0130", msg, *span, "here").with_help(hint.clone()),
            CheckError::StepsUnknown { span, var } => Diagnostic::error("TL0131", msg, *span, format!("`{var}` counts steps, but nothing says how many"))
                .with_help(format!("index a tensor with `{var}` (`U[{var}, j]`: one step per row of `U`), or state the number on the left: `[…, *{var}+1: 10]`")),
            CheckError::LoopMismatch { span, first, hint, .. } => Diagnostic::error("TL0132", msg, *span, "here")
                .with_label(*first, "and here")
                .with_help(hint.clone()),
            CheckError::StepOrder { span, hint, .. } => Diagnostic::error("TL0133", msg, *span, "here").with_help(hint.clone()),
            CheckError::Undefined { span, .. } => Diagnostic::error("TL0116", msg, *span, "no facts, data or equations define this")
                .with_help("define it with facts, data, an equation or `param`"),
        }
    }
}
