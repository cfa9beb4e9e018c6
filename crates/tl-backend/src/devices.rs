//! Running one test on every device: [`test_device!`](crate::test_device) turns a test body
//! written once, over `&dyn Backend`, into a test on the CPU, a test on CUDA (skipped, saying
//! why, on a machine without a usable device) and a test on a [`ProfiledBackend`] over the
//! CPU, which logs every call a device would launch, so a test may also count them.

use crate::cuda::CudaBackend;
use crate::profiled::ProfiledBackend;
use std::sync::OnceLock;

/// The process's one CUDA backend for tests, opened at the first call; `None` (after printing
/// `skipped: no CUDA device (…)` for the test that asked) where there is none.
pub fn shared_cuda() -> Option<&'static CudaBackend> {
    static CUDA: OnceLock<Result<CudaBackend, String>> = OnceLock::new();
    match CUDA.get_or_init(|| CudaBackend::open().map_err(|e| e.to_string())) {
        Ok(be) => Some(be),
        Err(why) => {
            // Written to the handle, not through `eprintln!`, so a test harness that captures
            // a passing test's output still shows it.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skipped: no CUDA device ({why})");
            None
        }
    }
}

/// How many calls a launch log recorded: kernels, products, attention, gathers and
/// scatters (not transfers).
pub fn launches(log: &ProfiledBackend<'_>) -> usize {
    log.report()
        .iter()
        .filter(|(what, _)| {
            !["upload", "download", "replay"]
                .iter()
                .any(|t| what.starts_with(t))
        })
        .map(|(_, t)| t.calls)
        .sum()
}

/// Defines a module `$name` of three tests running `$body` (a `fn(&dyn Backend) ->
/// tl_backend::Result<()>`): `cpu`, `cuda` (skipped where there is no device) and `logged`
/// (the CPU behind a launch log, which must record at least one launch).
#[macro_export]
macro_rules! test_device {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn cpu() -> $crate::Result<()> {
                ($body)(&$crate::cpu::CpuBackend::new() as &dyn $crate::Backend)
            }

            #[test]
            fn cuda() -> $crate::Result<()> {
                match $crate::devices::shared_cuda() {
                    Some(be) => ($body)(be as &dyn $crate::Backend),
                    None => Ok(()),
                }
            }

            #[test]
            fn logged() -> $crate::Result<()> {
                let cpu = $crate::cpu::CpuBackend::new();
                let log = $crate::profiled::ProfiledBackend::new(&cpu);
                log.enable();
                ($body)(&log as &dyn $crate::Backend)?;
                assert!($crate::devices::launches(&log) > 0, "no launch was logged");
                Ok(())
            }
        }
    };
}
