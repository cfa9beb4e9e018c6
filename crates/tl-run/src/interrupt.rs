//! Stopping a training run cleanly. An interrupt (Ctrl-C, `kill`) that arrives while a
//! `minimize` runs asks it to stop: the step in progress finishes, a checkpoint is saved, the
//! log and the plot are written, and the run ends with [`crate::RunError::Interrupted`], which
//! says how to resume. The process's signal handler only touches the two flags here (atomics
//! are all a handler may safely use); outside training it ends the process at once, since
//! nothing would be lost.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set while a `minimize` runs on its own (not as one rank of several, whose ranks must stop
/// at the same step).
static TRAINING: AtomicBool = AtomicBool::new(false);
/// Set by an interrupt that training should honour after its current step.
static STOP: AtomicBool = AtomicBool::new(false);

/// Whether a training loop is running that will honour [`request_stop`].
pub fn training() -> bool {
    TRAINING.load(Ordering::SeqCst)
}

/// Asks the running training loop to stop after its current step. Returns `false` when no
/// loop will honour it (none runs, or a stop was already asked for), so the caller should end
/// the process itself. Only atomics: safe in a signal handler.
pub fn request_stop() -> bool {
    training() && !STOP.swap(true, Ordering::SeqCst)
}

/// Whether a stop was asked for.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Marks a training loop as running while it lives; clears both flags when dropped, so a
/// stop asked for during one `minimize` does not end the next one.
pub(crate) struct Training(());

impl Training {
    /// Starts honouring interrupts.
    pub(crate) fn begin() -> Training {
        STOP.store(false, Ordering::SeqCst);
        TRAINING.store(true, Ordering::SeqCst);
        Training(())
    }
}

impl Drop for Training {
    fn drop(&mut self) {
        TRAINING.store(false, Ordering::SeqCst);
        STOP.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_is_honoured_only_while_training_and_only_once() {
        assert!(!request_stop(), "nothing trains yet");
        {
            let _t = Training::begin();
            assert!(training());
            assert!(request_stop());
            assert!(stop_requested());
            assert!(!request_stop(), "a second interrupt ends the process");
        }
        assert!(!training() && !stop_requested());
    }
}
