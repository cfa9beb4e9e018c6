//! The pieces of the `tl` command that other front ends share: the Python package
//! (`python/`) compiles, runs and reports programs exactly as `tl run` does.

// Library code reports failures as errors; only tests may unwrap.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
pub mod device;
pub mod pipeline;
pub mod report;
