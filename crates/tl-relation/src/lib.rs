//! Sparse Boolean relations and semi-naive Datalog evaluation.
//!
//! A relation too large to hold densely (a million facts over a domain of 10^5 symbols is 10^10
//! cells) is stored as a sorted, deduplicated set of tuples ([`Relation`]). A [`Rule`] is a
//! Boolean einsum over such sparse tensors: its positive body literals are joined, the result is
//! filtered by [`Comparison`]s and negated literals, and projected onto the head. Variables that
//! no positive literal binds range over their whole domain, as an index absent from an einsum's
//! inputs broadcasts. This crate sees only numbers: slots for relations and `u32` element indices
//! for values; the runtime crate resolves names, symbols and strata.
//!
//! **Semi-naive evaluation.** [`evaluate_stratum`] computes the least fixpoint of one stratum
//! bottom-up. Each recursive relation (a head of the stratum) keeps `full` (everything derived so
//! far), `delta` (new in the last round) and `next` (produced this round). The first round runs
//! every rule on the initial contents. Afterwards a rule with k body literals on relations of this
//! stratum runs k times per round: run i reads the delta at the i-th such literal, the previous
//! `full` (before the delta was added) at the ones before it and the current `full` at the ones
//! after it, so each new derivation is found once and old × old is never joined again. The new
//! delta is `next \ full`; the loop stops when every delta is empty. Negated literals must refer
//! to lower, already complete strata, evaluated by earlier calls.
//!
//! Modules: [`relation`] (the tuple set), [`rule`] (rules as numbers), `index` (relations sorted
//! by their bound columns), `join` (greedy join plans), `linear` (a fast path for linear
//! recursion), [`fixpoint`] (the loop) and [`error`].
#![deny(missing_docs)]
// Library code reports failures as errors; only tests may unwrap.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod bits;
pub mod chain;
pub mod closure;
pub mod error;
pub mod fixpoint;
mod index;
mod join;
mod linear;
mod par;
pub mod relation;
mod rows;
pub mod rule;

pub use chain::{path_shape, PathShape};
pub use error::RelationError;
pub use fixpoint::{evaluate_stratum, FixpointStats, Form, Limits, RuleStats};
pub use relation::{Relation, Value};
pub use rule::{Compare, Comparison, Literal, Rule, Term};
