//! File formats for TensorLogic: how tensors and relations get into and out of a program.
//!
//! - NumPy `.npy` ([`read_npy`], [`write_npy`]) for single arrays exchanged with Python;
//! - safetensors ([`SafetensorsFile`], [`read_safetensors`], [`read_stacked`],
//!   [`write_safetensors`]) for model weights, including per-layer tensors stacked into one;
//! - CSV relations ([`read_csv_relation`], [`write_csv_relation`]) for ground facts;
//! - [`write_atomic`], used by every writer, so an interrupted save never leaves a torn file.
//!
//! Every failure is an [`IoError`] that names the file involved and can suggest a fix
//! ([`IoError::hint`]). Malformed input yields errors, never panics.
#![deny(missing_docs)]

mod atomic;
mod csv;
mod error;
mod npy;
mod npy_header;
mod safetensors;

pub use crate::atomic::{write_atomic, write_atomic_with};
pub use crate::csv::{read_csv_relation, write_csv_relation};
pub use crate::error::IoError;
pub use crate::npy::{read_npy, write_npy};
pub use crate::safetensors::{
    read_safetensors, read_stacked, safetensors_names, write_safetensors, SafetensorsFile,
};
pub use tl_backend::{DType, HostData, HostTensor};
