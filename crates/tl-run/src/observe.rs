//! What training reports as it goes, so the command line can draw a progress bar, log a CSV
//! and plot the loss without the engine knowing about terminals or files.

/// One optimiser step, as reported to a [`TrainObserver`].
#[derive(Clone, Debug, PartialEq)]
pub struct StepInfo {
    /// Steps done so far in this `minimize` (1-based after the first step).
    pub step: u64,
    /// Steps this `minimize` will take in all.
    pub total: u64,
    /// With mini-batches: the current epoch (1-based) and the number of epochs.
    pub epoch: Option<(u64, u64)>,
    /// The loss before this step's update.
    pub loss: f64,
    /// The learning rate this step used.
    pub lr: f64,
}

/// Receives training progress. Every method has a default that does nothing.
pub trait TrainObserver {
    /// A `minimize` begins: the loss tensor's name and the number of steps.
    fn start(&mut self, _loss: &str, _total: u64) {}
    /// A step finished.
    fn step(&mut self, _info: &StepInfo) {}
    /// The `minimize` finished (also called when it stops on an error).
    fn finish(&mut self) {}
}

/// An observer that ignores everything (tests, `--quiet`).
pub struct Silent;

impl TrainObserver for Silent {}
