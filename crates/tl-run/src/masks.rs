//! Dropout masks in a training step. Each mask is drawn on the backend by the counter-based
//! generator of `tl_core::random` from a stream (the run's seed, the part of the batch this
//! engine computes, the plan and its node, and the row of a layer recursion) and a counter that holds the step's number, so:
//! every step and every mask draws afresh; the CPU and a GPU draw the same masks; and a
//! recorded step replays with fresh masks, because the step ends by advancing the counter in
//! its own memory (a kernel the recording holds), as Adam's bias corrections advance. The
//! engine draws them in `crate::dropout`.

use tl_backend::random::mix64;
use tl_backend::Tensor;

/// Where a run's mask counter stands.
#[derive(Clone, Debug, Default)]
pub struct Masks {
    /// The first example of the batch this engine computes (0 without data parallelism), so
    /// that ranks draw different masks.
    pub part: u64,
    /// The step whose masks the next pass draws.
    pub(crate) step: u64,
    /// The device scalar holding a step number, and that number.
    pub(crate) counter: Option<(u64, Tensor)>,
    /// Whether the pass under way drew a mask.
    pub(crate) drawn: bool,
    /// The row of a layer recursion being computed, plus one (0 outside one): every row
    /// evaluates the same row plan, and each must draw its own masks.
    pub(crate) layer: u64,
}

impl Masks {
    /// Masks for the first example `part` of each batch.
    pub fn for_part(part: u64) -> Self {
        Masks {
            part,
            ..Masks::default()
        }
    }

    /// The next pass draws the masks of step `step`.
    pub fn begin_step(&mut self, step: u64) {
        self.step = step;
        self.drawn = false;
    }

    /// A replay of a recorded step advanced the counter in device memory.
    pub fn replayed(&mut self) {
        if let Some((at, _)) = &mut self.counter {
            *at += 1;
        }
    }

    /// Forgets the counter (after a recording failed, its memory may hold anything).
    pub fn forget(&mut self) {
        self.counter = None;
    }
}

/// The stream of the mask at node `node` of plan `plan`, in row `layer - 1` of a layer
/// recursion (`layer` 0 elsewhere).
pub(crate) fn stream(seed: u64, part: u64, plan: usize, node: usize, layer: u64) -> u64 {
    let place = ((plan as u64) << 32) ^ node as u64 ^ mix64(layer);
    mix64(seed ^ mix64(part.wrapping_add(0x5851_F42D_4C95_7F2D) ^ mix64(place)))
}
