//! Errors a backend can report. None of them panics; all reach the user as diagnostics.

use thiserror::Error;

/// A failure inside a backend operation.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum BackendError {
    /// The device has no room for an allocation.
    #[error("out of memory on {device}: {requested} bytes requested, {free} bytes free")]
    OutOfMemory {
        /// Which device.
        device: String,
        /// Bytes asked for.
        requested: usize,
        /// Bytes free at the time.
        free: usize,
    },
    /// Operand shapes do not fit the operation (an engine bug or an unchecked program).
    #[error("shape mismatch in {op}: {detail}")]
    Shape {
        /// The operation.
        op: &'static str,
        /// What did not fit.
        detail: String,
    },
    /// A tensor is larger than this machine can address.
    #[error("tensor of {elements} elements is too large ({detail})")]
    TooLarge {
        /// Number of elements asked for.
        elements: u128,
        /// Why it cannot be held.
        detail: String,
    },
    /// The device or its driver reported an error.
    #[error("device error: {0}")]
    Device(String),
}

/// Result alias for backend operations.
pub type Result<T> = std::result::Result<T, BackendError>;
