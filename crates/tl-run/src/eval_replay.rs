//! Where repeated evaluations of an unchanged program stand with replaying
//! (`Engine::evaluate_again`): not yet evaluated, evaluated once, recorded, or run op by op.

use crate::value::Value;
use tl_backend::Recording;
use tl_check::TensorId;

/// A recorded evaluation and the derived values each replay of it rewrites.
pub struct RecordedEvaluation {
    /// The recording.
    pub(crate) recording: Recording,
    /// The derived values after it, restored by each replay.
    pub(crate) values: Vec<(TensorId, Value)>,
}

/// Where repeated evaluations stand with replaying (see
/// [`Engine::evaluate_again`](crate::Engine::evaluate_again)).
#[derive(Default)]
pub enum EvalReplay {
    /// Nothing evaluated through `evaluate_again` yet.
    #[default]
    Cold,
    /// Evaluated once; the next evaluation is recorded.
    Warm,
    /// Evaluations replay this recording.
    Ready(RecordedEvaluation),
    /// Evaluations run op by op (recording failed, or the backend cannot record).
    Off,
}
