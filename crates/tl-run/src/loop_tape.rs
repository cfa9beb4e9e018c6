//! The tape of a loop over a virtual index (see `loops`): every step's node values, kept
//! while a backward pass is recorded.

use tl_backend::Tensor;

/// The node values of every step plan at every step, kept for the backward pass.
#[derive(Default)]
pub struct Tape {
    /// Per step, per step plan (in the loop plan's order): the plan's node values.
    pub(crate) steps: Vec<Vec<Option<Vec<Tensor>>>>,
    /// Bytes held, checked against the run's memory limit.
    pub(crate) bytes: usize,
}
