//! Loading the data a program names (array literals, `.npy`, `.safetensors`, `.csv`) at check
//! time, since shapes and symbol domains are inferred from it.

use crate::error::CheckError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use tl_core::{DType, HostTensor};
use tl_syntax::ast::{ArrayLit, DelimitedFile, FileRef, Tokenized};
use tl_syntax::Span;

/// What a data statement provides.
#[derive(Clone, Debug)]
pub enum Loaded {
    /// A dense tensor (from a literal, `.npy` or `.safetensors`).
    Tensor(HostTensor),
    /// A relation from `.csv`, column by column.
    Rows(tl_io::CsvColumns),
    /// Tuples of a relation as element numbers, with the extent of each axis (tokenized text).
    Tuples {
        /// One tuple per true cell.
        tuples: Vec<Vec<u32>>,
        /// The extent of each axis.
        shape: Vec<usize>,
    },
}

/// Reads `"text" tokenized by "tokenizer.json"`: the relation `Tok(sentence, position, token)`
/// with one true cell per token of each sentence. Its axes are the sentences, the positions
/// (the longest sentence, or the fixed `length`) and the tokenizer's vocabulary; positions
/// past a sentence's end hold no token, so `Mask(s, p) <- Tok(s, p, t)` marks the real ones.
pub fn tokenize(dir: &Path, t: &Tokenized) -> Result<Loaded, CheckError> {
    let text = resolve_path(dir, &t.text.value);
    let tokenizer = resolve_path(dir, &t.tokenizer.value);
    let size = |n: Option<(u64, Span)>| -> Result<Option<usize>, CheckError> {
        match n {
            None => Ok(None),
            Some((0, span)) => Err(CheckError::Data {
                message: "a sentence needs at least one position".into(),
                hint: Some("give a positive number of tokens".into()),
                span,
            }),
            Some((n, span)) => usize::try_from(n).map(Some).map_err(|_| CheckError::Data {
                message: format!("{n} tokens is too many"),
                hint: None,
                span,
            }),
        }
    };
    let options = tl_io::TokenizeOptions {
        max_length: size(t.max_length)?,
        length: size(t.length)?,
    };
    let out = tl_io::tokenize_file(&text, &tokenizer, options).map_err(|e| {
        let span = if e.path() == tokenizer.as_path() {
            t.tokenizer.span
        } else {
            t.text.span
        };
        io_error(&e, span)
    })?;
    let mut tuples = Vec::new();
    for (s, ids) in out.ids.iter().enumerate() {
        for (p, &id) in ids.iter().enumerate() {
            if (id as usize) < out.vocab_size {
                tuples.push(vec![s as u32, p as u32, id]);
            }
        }
    }
    Ok(Loaded::Tuples {
        tuples,
        shape: vec![out.ids.len(), out.positions, out.vocab_size],
    })
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

/// Safetensors files read so far, by resolved path.
pub type SafetensorsCache = HashMap<PathBuf, Rc<tl_io::SafetensorsFile>>;

/// Reads a relation from plain delimited text with declared column types (Soufflé's `.input`).
pub fn load_delimited(dir: &Path, d: &DelimitedFile) -> Result<Loaded, CheckError> {
    let path = resolve_path(dir, &d.file.path);
    tl_io::read_delimited_relation(&path, d.delimiter, &d.numbers)
        .map(Loaded::Rows)
        .map_err(|e| io_error(&e, d.file.span))
}

/// Reads the file a data statement names; a safetensors file is read once per check and kept
/// in `cache` for the program's other reads of it.
pub fn load_file(
    dir: &Path,
    file: &FileRef,
    tensor_name: &str,
    cache: &mut SafetensorsCache,
) -> Result<Loaded, CheckError> {
    let path = resolve_path(dir, &file.path);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let span = file.span;
    let ext = if tl_io::is_idx_name(&path) {
        "idx".to_string()
    } else {
        ext
    };
    match ext.as_str() {
        "idx" | "npy" => {
            if file.selector.is_some() {
                let what = if ext == "idx" { "an IDX" } else { "a `.npy`" };
                return Err(CheckError::Misplaced {
                    what: format!(
                        "{what} file holds one array; `#name` selects from `.safetensors` files"
                    ),
                    span,
                    hint: "drop the `#…` part".into(),
                });
            }
            let read = if ext == "idx" {
                tl_io::read_idx(&path)
            } else {
                tl_io::read_npy(&path)
            };
            read.map(Loaded::Tensor).map_err(|e| io_error(&e, span))
        }
        "safetensors" => {
            let st = match cache.get(&path) {
                Some(st) => st.clone(),
                None => {
                    let st = Rc::new(
                        tl_io::SafetensorsFile::open(&path).map_err(|e| io_error(&e, span))?,
                    );
                    cache.insert(path.clone(), st.clone());
                    st
                }
            };
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
                "data files are `.npy`, `.safetensors`, IDX (`…-idx3-ubyte`, optionally `.gz`; tensors) or `.csv` (relations)".into(),
            ),
            span,
        }),
    }
}
