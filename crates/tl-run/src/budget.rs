//! Memory is checked, not discovered: before a dense tensor is made on the host (a parameter's
//! initial values, a relation expanded to 0/1 cells, a plan node's result on the CPU) its size
//! is computed with checked arithmetic and compared with the memory the run may use, so a
//! tensor too large is an error naming it and its size, never an abort of the process. The
//! tuple engine gets the same budget per stratum ([`Engine::memory_budget`]).

use crate::engine::Engine;
use crate::error::RunError;
use crate::host_memory::budget_now;
use tl_syntax::Span;

impl Engine<'_> {
    /// Bytes the tuple engine may use: `--max-memory`, else most of what the machine has
    /// free now (so that a relation too large fails as an error, before the system kills the
    /// process).
    pub fn memory_budget(&self) -> usize {
        budget_now(self.options.max_memory)
    }

    /// Checks that a host tensor of `shape` with `bytes_per` bytes per element fits in memory:
    /// `Ok(number of elements)`, or an error naming `what` and the size.
    pub(crate) fn fits(
        &self,
        shape: &[usize],
        bytes_per: usize,
        what: impl FnOnce() -> String,
        span: Span,
    ) -> Result<usize, RunError> {
        let cells = shape.iter().try_fold(1usize, |a, &e| a.checked_mul(e));
        let bytes = cells.and_then(|c| c.checked_mul(bytes_per));
        match (cells, bytes) {
            (Some(cells), Some(bytes)) if bytes <= self.host_limit => Ok(cells),
            _ => Err(RunError::TooLarge {
                what: what(),
                bytes: shape
                    .iter()
                    .fold(bytes_per as u128, |a, &e| a.saturating_mul(e as u128)),
                limit: self.host_limit as u128,
                span,
            }),
        }
    }
}
