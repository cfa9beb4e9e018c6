//! What a training step's forward and backward pass gives: read back ([`StepResult`]), or
//! still on the device ([`DevicePass`]).

use tl_backend::Tensor;

/// What one forward and backward pass gives: the loss and each parameter's gradient.
pub(crate) struct StepResult {
    pub(crate) loss: f64,
    pub(crate) grads: Vec<Tensor>,
}

/// A forward and backward pass still on the device: the gradients, the loss summed, and
/// the loss plus a flag (0, or NaN when a gradient holds a non-finite value), which is all a
/// step reads back.
pub(crate) struct DevicePass {
    pub(crate) loss_sum: Tensor,
    pub(crate) total: Tensor,
    pub(crate) grads: Vec<Tensor>,
}
