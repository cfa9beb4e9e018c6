//! Choosing the compute backend from `--device`.

use std::sync::Once;
use tl_backend::cpu::CpuBackend;
use tl_backend::cuda::{CudaBackend, Unavailable};
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

/// Says once per process which GPU runs the program.
fn announce(be: &CudaBackend) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| eprintln!("tl: using cuda:0 ({})", be.device_name()));
}

/// Opens the backend for a choice. `auto` uses a usable GPU and otherwise falls back to the
/// CPU silently; `cuda` without a usable GPU is an error that says why.
pub fn open(choice: DeviceChoice) -> Result<Box<dyn Backend>, Box<Diagnostic>> {
    match choice {
        DeviceChoice::Cpu => Ok(Box::new(CpuBackend::new())),
        DeviceChoice::Auto => match CudaBackend::open() {
            Ok(be) => {
                announce(&be);
                Ok(Box::new(be))
            }
            Err(_) => Ok(Box::new(CpuBackend::new())),
        },
        DeviceChoice::Cuda => match CudaBackend::open() {
            Ok(be) => {
                announce(&be);
                Ok(Box::new(be))
            }
            Err(why) => Err(Box::new(
                Diagnostic::spanless(
                    "TL0401",
                    format!("`--device cuda`: the CUDA engine is unavailable: {why}"),
                )
                .with_help(if why == Unavailable::Disabled {
                    "unset TL_NO_CUDA to use a GPU, or run on the CPU with `--device cpu`"
                } else {
                    "run on the CPU with `--device cpu` (or `--device auto`, which falls back \
                     to the CPU); a GPU run needs an NVIDIA driver (libcuda.so), NVRTC and \
                     cuBLASLt (libnvrtc.so, libcublasLt.so) on the library path"
                }),
            )),
        },
    }
}
