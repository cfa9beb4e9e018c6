//! File writes (`"out.safetensors" = W1, B1`): tensors go to `.safetensors` or `.npy`,
//! relations to `.csv`; every file is written atomically.

use crate::engine::Engine;
use crate::error::RunError;
use std::path::Path;
use tl_backend::HostTensor;
use tl_check::{TensorId, TensorKind};
use tl_syntax::Span;

fn io(e: tl_io::IoError, span: Span) -> RunError {
    RunError::Io {
        message: e.to_string(),
        hint: e.hint(),
        span,
    }
}

impl Engine<'_> {
    fn host(&self, t: TensorId, span: Span) -> Result<HostTensor, RunError> {
        let d = self.dense(t, span)?;
        self.backend
            .download(&d)
            .map_err(|e| RunError::backend(e, span))
    }

    /// Writes tensors to a file, by its extension.
    pub fn write(&mut self, path: &Path, tensors: &[TensorId], span: Span) -> Result<(), RunError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "safetensors" => {
                let mut named = Vec::new();
                for &t in tensors {
                    named.push((self.program.tensors[t].name.clone(), self.host(t, span)?));
                }
                tl_io::write_safetensors(path, &named).map_err(|e| io(e, span))
            }
            "npy" | "csv" if tensors.len() != 1 => Err(RunError::Unsupported {
                what: format!(
                    "a `.{ext}` file holds one tensor, but {} are named",
                    tensors.len()
                ),
                hint: Some(
                    "write each tensor to a file of its own, or all of them to one `.safetensors` file"
                        .into(),
                ),
                span,
            }),
            "npy" => {
                let h = self.host(tensors[0], span)?;
                tl_io::write_npy(path, &h).map_err(|e| io(e, span))
            }
            "csv" => {
                let t = tensors[0];
                if self.program.tensors[t].kind != TensorKind::Relation {
                    return Err(RunError::Unsupported {
                        what: format!(
                            "`.csv` files hold relations, and `{}` is a tensor",
                            self.program.tensors[t].name
                        ),
                        hint: Some("write tensors to `.npy` or `.safetensors` files".into()),
                        span,
                    });
                }
                let rel = self.tuples(t, span)?;
                let axes = &self.program.tensors[t].axes;
                let rows: Vec<Vec<String>> = rel
                    .iter()
                    .map(|tuple| {
                        tuple
                            .iter()
                            .zip(axes)
                            .map(|(&x, &d)| {
                                self.program.domains[d]
                                    .symbols
                                    .get(x as usize)
                                    .cloned()
                                    .unwrap_or_else(|| x.to_string())
                            })
                            .collect()
                    })
                    .collect();
                tl_io::write_csv_relation(path, &rows).map_err(|e| io(e, span))
            }
            _ => Err(RunError::Unsupported {
                what: format!("cannot write `{}`: unknown file type", path.display()),
                hint: Some(
                    "name a `.npy` file (one tensor), a `.safetensors` file (several) or a `.csv` file (a relation)"
                        .into(),
                ),
                span,
            }),
        }
    }
}
