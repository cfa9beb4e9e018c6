//! Choosing the compute backend from `--device`.

use tl_backend::cpu::CpuBackend;
use tl_backend::Backend;
use tl_syntax::Diagnostic;

/// Which device the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    /// A GPU when one is usable, else the CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// An NVIDIA GPU through CUDA.
    Cuda,
}

/// Opens the backend for a choice. `auto` falls back to the CPU; `cuda` without a usable GPU
/// is an error that says why.
pub fn open(choice: DeviceChoice) -> Result<Box<dyn Backend>, Box<Diagnostic>> {
    match choice {
        DeviceChoice::Auto | DeviceChoice::Cpu => Ok(Box::new(CpuBackend::new())),
        DeviceChoice::Cuda => Err(Box::new(
            Diagnostic::spanless(
                "TL0401",
                "`--device cuda`: this build of tl has no CUDA engine yet",
            )
            .with_help(
                "run on the CPU with `--device cpu` (the default when no GPU engine is available)",
            ),
        )),
    }
}
