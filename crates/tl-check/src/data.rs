//! Loading the data a program names (array literals, `.npy`, `.safetensors`, `.csv`) at check
//! time, since shapes and symbol domains are inferred from it.

use crate::error::CheckError;
use std::path::{Path, PathBuf};
use tl_backend::{DType, HostTensor};
use tl_syntax::ast::{ArrayLit, FileRef};
use tl_syntax::Span;

/// What a data statement provides.
#[derive(Clone, Debug)]
pub enum Loaded {
    /// A dense tensor (from a literal, `.npy` or `.safetensors`).
    Tensor(HostTensor),
    /// Rows of a relation (from `.csv`), as written.
    Rows(Vec<Vec<String>>),
}

/// The host tensor of an array literal (stored as f64; cast to the run's dtype later).
pub fn literal(lit: &ArrayLit) -> HostTensor {
    HostTensor::from_f64(lit.shape.clone(), lit.data.clone(), DType::F64)
}

fn io_error(e: &tl_io::IoError, span: Span) -> CheckError {
    CheckError::Data {
        message: e.to_string(),
        hint: e.hint(),
        span,
    }
}

/// Resolves a path written in a program against the folder of the file that names it.
pub fn resolve_path(dir: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

/// Reads the file a data statement names. `stack` is the name of the left-hand index a
/// `{name}` placeholder stacks along, if any.
pub fn load_file(dir: &Path, file: &FileRef, tensor_name: &str) -> Result<Loaded, CheckError> {
    let path = resolve_path(dir, &file.path);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let span = file.span;
    match ext.as_str() {
        "npy" => {
            if file.selector.is_some() {
                return Err(CheckError::Misplaced {
                    what:
                        "a `.npy` file holds one array; `#name` selects from `.safetensors` files"
                            .into(),
                    span,
                    hint: "drop the `#…` part".into(),
                });
            }
            tl_io::read_npy(&path)
                .map(Loaded::Tensor)
                .map_err(|e| io_error(&e, span))
        }
        "safetensors" => {
            let st = tl_io::SafetensorsFile::open(&path).map_err(|e| io_error(&e, span))?;
            match &file.selector {
                Some(sel) if sel.contains('{') => tl_io::read_stacked(&st, sel)
                    .map(|(t, _)| Loaded::Tensor(t))
                    .map_err(|e| io_error(&e, span)),
                Some(sel) => st
                    .get(sel)
                    .map(Loaded::Tensor)
                    .map_err(|e| io_error(&e, span)),
                None => {
                    let names = st.names();
                    let pick = if names.len() == 1 {
                        names[0].clone()
                    } else {
                        tensor_name.to_string()
                    };
                    st.get(&pick)
                        .map(Loaded::Tensor)
                        .map_err(|e| io_error(&e, span))
                }
            }
        }
        "csv" => tl_io::read_csv_relation(&path)
            .map(Loaded::Rows)
            .map_err(|e| io_error(&e, span)),
        _ => Err(CheckError::Data {
            message: format!("cannot read `{}`: unknown file type", path.display()),
            hint: Some(
                "data files are `.npy`, `.safetensors` (tensors) or `.csv` (relations)".into(),
            ),
            span,
        }),
    }
}
