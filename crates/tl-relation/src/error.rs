//! Errors raised while building relations or evaluating a stratum.
//!
//! Every variant names the slot (relation) involved and the numbers that went wrong, so the
//! runtime crate can map it back to a relation name and a source span.

use thiserror::Error;

/// Why a relation operation or a stratum evaluation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RelationError {
    /// A relation grew past [`crate::Limits::max_tuples`]; evaluation stops instead of exhausting memory.
    #[error("relation in slot {slot} would hold {tuples} tuples, more than the limit of {limit}")]
    TooManyTuples {
        /// Slot of the relation that grew too large.
        slot: usize,
        /// Number of tuples it would have held (at least this many).
        tuples: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A relation (or the working sets that compute it) would take more memory than
    /// [`crate::Limits::max_bytes`]; evaluation stops before allocating it.
    #[error(
        "relation in slot {slot} would need {bytes} bytes, more than the {limit} bytes available"
    )]
    TooLarge {
        /// Slot of the relation.
        slot: usize,
        /// Bytes it would need (at least this many).
        bytes: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A literal or head has a different number of arguments than its relation's arity.
    #[error("slot {slot} has arity {expected}, but {found} arguments were given")]
    ArityMismatch {
        /// Slot of the relation.
        slot: usize,
        /// Arity of the relation stored in the slot.
        expected: usize,
        /// Number of arguments in the literal or head.
        found: usize,
    },
    /// A flat value buffer's length is not a multiple of the arity.
    #[error("{len} values do not split into rows of arity {arity}")]
    RaggedValues {
        /// The requested arity.
        arity: usize,
        /// Length of the flat buffer.
        len: usize,
    },
    /// A rule refers to a slot index outside the slot array.
    #[error("rule refers to slot {slot}, but only {slots} slots exist")]
    UnknownSlot {
        /// The slot that was referred to.
        slot: usize,
        /// Number of slots passed to the evaluator.
        slots: usize,
    },
    /// A term names a variable without an entry in `Rule::var_extents`.
    #[error(
        "rule for slot {head} uses variable {var}, but only {vars} variable extents are given"
    )]
    UnknownVariable {
        /// Head slot of the offending rule.
        head: usize,
        /// The variable id.
        var: usize,
        /// Length of `var_extents`.
        vars: usize,
    },
    /// A negated literal refers to a relation defined in the same stratum (the program is not stratified).
    #[error("rule for slot {head} negates slot {slot}, which is defined in the same stratum")]
    NegationInStratum {
        /// Head slot of the offending rule.
        head: usize,
        /// The negated slot.
        slot: usize,
    },
}

impl RelationError {
    /// The same error, naming `slot` where the producer did not know it.
    pub(crate) fn in_slot(self, slot: usize) -> Self {
        match self {
            RelationError::TooManyTuples {
                slot: usize::MAX,
                tuples,
                limit,
            } => RelationError::TooManyTuples {
                slot,
                tuples,
                limit,
            },
            RelationError::TooLarge {
                slot: usize::MAX,
                bytes,
                limit,
            } => RelationError::TooLarge { slot, bytes, limit },
            other => other,
        }
    }
}
