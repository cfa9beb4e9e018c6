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

    /// Writes tensors to a file: by its extension, or, with a `delimiter`, one relation as
    /// plain delimited text (Soufflé's `.output`).
    pub fn write(
        &mut self,
        path: &Path,
        tensors: &[TensorId],
        delimiter: Option<char>,
        span: Span,
    ) -> Result<(), RunError> {
        if let Some(delimiter) = delimiter {
            return self.write_delimited(path, tensors, delimiter, span);
        }
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
                let rows = self.text_rows(t, false, span)?;
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

impl Engine<'_> {
    /// A relation's tuples as text, one row per tuple: symbols by name, integers in decimal;
    /// `sorted` orders the rows as query answers are (integers numerically, symbols by name).
    fn text_rows(
        &mut self,
        t: TensorId,
        sorted: bool,
        span: Span,
    ) -> Result<Vec<Vec<String>>, RunError> {
        let rel = self.tuples(t, span)?;
        let axes = &self.program.tensors[t].axes;
        let domains = &self.program.domains;
        let mut tuples: Vec<&[u32]> = rel.iter().collect();
        if sorted {
            let key = |tuple: &[u32]| -> Vec<(u32, String)> {
                tuple
                    .iter()
                    .zip(axes)
                    .map(|(&x, &d)| match domains[d].symbols.get(x as usize) {
                        Some(s) => (0, s.clone()),
                        // Elements are in the order of their numbers.
                        None => (x, String::new()),
                    })
                    .collect()
            };
            tuples.sort_by_cached_key(|tuple| key(tuple));
        }
        Ok(tuples
            .into_iter()
            .map(|tuple| {
                tuple
                    .iter()
                    .zip(axes)
                    .map(|(&x, &d)| domains[d].label(x))
                    .collect()
            })
            .collect())
    }

    /// Writes one relation as plain delimited text, its rows sorted.
    fn write_delimited(
        &mut self,
        path: &Path,
        tensors: &[TensorId],
        delimiter: char,
        span: Span,
    ) -> Result<(), RunError> {
        let Some(&t) = tensors.first().filter(|_| tensors.len() == 1) else {
            return Err(RunError::Unsupported {
                what: format!(
                    "a delimited text file holds one relation, but {} are named",
                    tensors.len()
                ),
                hint: Some("write each relation to a file of its own".into()),
                span,
            });
        };
        if self.program.tensors[t].kind != TensorKind::Relation {
            return Err(RunError::Unsupported {
                what: format!(
                    "delimited text holds relations, and `{}` is a tensor",
                    self.program.tensors[t].name
                ),
                hint: Some("write tensors to `.npy` or `.safetensors` files".into()),
                span,
            });
        }
        let mut rows = self.text_rows(t, true, span)?;
        // Soufflé writes the empty tuple of a true nullary relation as `()`.
        for row in rows.iter_mut().filter(|r| r.is_empty()) {
            row.push("()".into());
        }
        tl_io::write_delimited_relation(path, delimiter, &rows).map_err(|e| io(e, span))
    }
}
