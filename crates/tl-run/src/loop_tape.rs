//! The tape of a loop over a virtual index (see `loops`) or of a layer recursion (see
//! `layers`): every step's (every row's) node values, kept while a backward pass is recorded.

use tl_backend::Tensor;
use tl_plan::{Node, Op};

/// The node values of every step plan at every step, kept for the backward pass.
#[derive(Default)]
pub struct Tape {
    /// Per step, per step plan (in the loop plan's order): the plan's node values.
    pub(crate) steps: Vec<Vec<Option<Vec<Tensor>>>>,
    /// Bytes held, checked against the run's memory limit.
    pub(crate) bytes: usize,
}

impl Tape {
    /// Counts the bytes of one plan's node values (loads are the tensors read, not copies:
    /// only results count) and returns the values to be kept.
    pub(crate) fn count(&mut self, trace: Vec<Tensor>, nodes: &[Node]) -> Vec<Tensor> {
        self.bytes = trace
            .iter()
            .zip(nodes)
            .filter(|(_, node)| !matches!(node.op, Op::Load { .. }))
            .fold(self.bytes, |a, (x, _)| a.saturating_add(bytes_of(x)));
        trace
    }
}

/// The bytes a tensor's elements take (views counted as if they were copies).
fn bytes_of(t: &Tensor) -> usize {
    t.shape()
        .iter()
        .try_fold(t.dtype.size(), |a, &e| a.checked_mul(e))
        .unwrap_or(usize::MAX)
}
