//! The pieces of the `tl` command that other front ends share: the Python package
//! (`python/`) compiles, runs and reports programs exactly as `tl run` does.

pub mod device;
pub mod pipeline;
pub mod report;
