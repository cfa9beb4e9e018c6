//! The one error type of this crate. Every variant names the file it is about, so a message
//! shown to a user always says which file to look at, and [`IoError::hint`] says what to try.

use std::path::{Path, PathBuf};
use thiserror::Error;

/// How many names a message lists before summarising the rest as "… and N more".
const LISTED: usize = 8;

/// Everything that can go wrong reading or writing a tensor or relation file.
#[derive(Debug, Error)]
pub enum IoError {
    /// The file (or a folder on its path) does not exist.
    #[error("{}: file not found", .path.display())]
    NotFound {
        /// The file that was asked for.
        path: PathBuf,
    },
    /// The file exists but could not be read (permissions, I/O failure).
    #[error("{}: cannot read: {detail}", .path.display())]
    Read {
        /// The file being read.
        path: PathBuf,
        /// What the operating system reported.
        detail: String,
    },
    /// The file's contents do not follow its format (bad magic, truncated, inconsistent sizes).
    #[error("{}: malformed file: {detail}", .path.display())]
    Malformed {
        /// The file being read.
        path: PathBuf,
        /// What is wrong, and where.
        detail: String,
    },
    /// The file is well formed but uses a feature this reader does not handle (e.g. a dtype).
    #[error("{}: unsupported: {detail}", .path.display())]
    Unsupported {
        /// The file being read or written.
        path: PathBuf,
        /// Which feature is not handled.
        detail: String,
    },
    /// A safetensors file has no tensor of the requested name.
    #[error("{}: no tensor named `{name}`; {}", .path.display(), list_names("available", .available))]
    MissingTensor {
        /// The safetensors file.
        path: PathBuf,
        /// The name that was asked for.
        name: String,
        /// The names the file does contain, closest to `name` first.
        available: Vec<String>,
    },
    /// A stacking pattern such as `enc.{l}.weight` matched no tensor name.
    #[error("{}: no tensor matches pattern `{pattern}`; {}", .path.display(), list_names("some names in the file", .sample))]
    NoMatch {
        /// The safetensors file.
        path: PathBuf,
        /// The pattern that was asked for.
        pattern: String,
        /// A few of the names the file contains, closest to the pattern first.
        sample: Vec<String>,
    },
    /// A stacking pattern is not of the form `prefix{name}suffix` with one placeholder.
    #[error("{}: bad pattern `{pattern}`: {detail}", .path.display())]
    BadPattern {
        /// The safetensors file the pattern was applied to.
        path: PathBuf,
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The integers matched by a stacking pattern are not exactly `0..n`.
    #[error("{}: pattern `{pattern}` matched indices {found:?} but index {missing} is missing (indices must be 0..n-1)", .path.display())]
    StackGap {
        /// The safetensors file.
        path: PathBuf,
        /// The pattern.
        pattern: String,
        /// The sorted indices that did match.
        found: Vec<i64>,
        /// The first index of `0..n` with no tensor.
        missing: i64,
    },
    /// Two tensors that should be stacked (or otherwise agree) have different shapes or dtypes.
    #[error("{}: `{first}` has {first_desc} but `{second}` has {second_desc}", .path.display())]
    Mismatch {
        /// The file both tensors come from.
        path: PathBuf,
        /// The first tensor's name.
        first: String,
        /// Its shape and dtype, e.g. `shape [2, 3] (f32)`.
        first_desc: String,
        /// The disagreeing tensor's name.
        second: String,
        /// Its shape and dtype.
        second_desc: String,
    },
    /// A CSV relation row has a different number of fields than the first row.
    #[error("{}:{line}: expected {expected} fields (as on line {first_line}) but found {found}", .path.display())]
    Ragged {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line number of the offending row.
        line: u64,
        /// 1-based line number of the first row, which fixed the arity.
        first_line: u64,
        /// Number of fields in the first row.
        expected: usize,
        /// Number of fields in the offending row.
        found: usize,
    },
    /// A field of delimited text that its column's type does not allow (a `number` column
    /// holding text or a negative number).
    #[error("{}:{line}: column {column}: {detail}", .path.display())]
    BadField {
        /// The text file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// 1-based column number.
        column: usize,
        /// What is wrong with the field.
        detail: String,
    },
    /// A `tokenizer.json` that the `tokenizers` library cannot load.
    #[error("{}: not a usable tokenizer: {detail}", .path.display())]
    BadTokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What the tokenizer library reported.
        detail: String,
    },
    /// A sentence the tokenizer failed to encode.
    #[error("{}: sentence {sentence}: cannot tokenize: {detail}", .path.display())]
    Tokenize {
        /// The text file.
        path: PathBuf,
        /// 1-based number of the sentence (blank lines not counted).
        sentence: usize,
        /// What the tokenizer library reported.
        detail: String,
    },
    /// A text file with no sentence in it.
    #[error("{}: no sentences (the file is empty or blank)", .path.display())]
    EmptyText {
        /// The text file.
        path: PathBuf,
    },
    /// Writing the file failed; the target was left as it was.
    #[error("{}: cannot write: {detail}", .path.display())]
    Write {
        /// The target file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

impl IoError {
    /// The file this error is about.
    pub fn path(&self) -> &Path {
        match self {
            IoError::NotFound { path }
            | IoError::Read { path, .. }
            | IoError::Malformed { path, .. }
            | IoError::Unsupported { path, .. }
            | IoError::MissingTensor { path, .. }
            | IoError::NoMatch { path, .. }
            | IoError::BadPattern { path, .. }
            | IoError::StackGap { path, .. }
            | IoError::Mismatch { path, .. }
            | IoError::Ragged { path, .. }
            | IoError::BadField { path, .. }
            | IoError::BadTokenizer { path, .. }
            | IoError::Tokenize { path, .. }
            | IoError::EmptyText { path }
            | IoError::Write { path, .. } => path,
        }
    }

    /// A one-line suggestion of how to fix the problem, where there is one worth giving.
    pub fn hint(&self) -> Option<String> {
        match self {
            IoError::NotFound { .. } => Some(
                "check the path; paths in a program are relative to the folder of the program file"
                    .into(),
            ),
            IoError::Read { .. } => Some("check the file's permissions".into()),
            IoError::Malformed { .. } => {
                Some("the file may be truncated or corrupt; re-export it".into())
            }
            IoError::Unsupported { .. } => Some(
                "convert the data to f32, f64, f16, bf16, an integer type or bool and re-save it"
                    .into(),
            ),
            IoError::MissingTensor { available, .. } => {
                Some(list_names("available tensors", available))
            }
            IoError::NoMatch { sample, .. } => Some(list_names("tensor names look like", sample)),
            IoError::BadPattern { .. } => Some(
                "write the pattern with exactly one placeholder, e.g. `enc.{l}.q.weight`".into(),
            ),
            IoError::StackGap { missing, .. } => Some(format!(
                "the file needs a tensor for every layer index; index {missing} is absent"
            )),
            IoError::Mismatch { .. } => {
                Some("only tensors of identical shape and dtype can be stacked".into())
            }
            IoError::Ragged { .. } => Some(
                "every fact must have the same number of fields; quote fields containing commas"
                    .into(),
            ),
            IoError::BadField { .. } => Some(
                "a `number` column holds non-negative integers (negative numbers are not supported); \
                 declare the column \
                 `symbol` to read it as text"
                    .into(),
            ),
            IoError::BadTokenizer { .. } => Some(
                "give the `tokenizer.json` of a Hugging Face model (as saved by the `tokenizers` library)"
                    .into(),
            ),
            IoError::Tokenize { .. } => {
                Some("check that the sentence is plain text the tokenizer can encode".into())
            }
            IoError::EmptyText { .. } => Some("write one sentence per line".into()),
            IoError::Write { .. } => Some(
                "check that the folder exists and is writable, and that the disk has space".into(),
            ),
        }
    }

    /// Maps an OS error from opening or reading `path` to `NotFound` or `Read`.
    pub(crate) fn from_read(path: &Path, err: &std::io::Error) -> IoError {
        if err.kind() == std::io::ErrorKind::NotFound {
            IoError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            IoError::Read {
                path: path.to_path_buf(),
                detail: err.to_string(),
            }
        }
    }

    /// A `Malformed` error for `path`.
    pub(crate) fn malformed(path: &Path, detail: impl Into<String>) -> IoError {
        IoError::Malformed {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    /// An `Unsupported` error for `path`.
    pub(crate) fn unsupported(path: &Path, detail: impl Into<String>) -> IoError {
        IoError::Unsupported {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }
}

/// `"<label>: a, b, c"`, or `"<label>: a, b, … and 12 more"`, or `"the file has none"`.
fn list_names(label: &str, names: &[String]) -> String {
    if names.is_empty() {
        return "the file contains no tensors".into();
    }
    let shown: Vec<&str> = names.iter().take(LISTED).map(String::as_str).collect();
    let mut out = format!("{label}: {}", shown.join(", "));
    if names.len() > LISTED {
        out.push_str(&format!(", … and {} more", names.len() - LISTED));
    }
    out
}

/// Edit distance between two strings (counted in chars), used to order suggestions.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let up = row[j + 1];
            let cost = usize::from(ca != cb);
            row[j + 1] = (diag + cost).min(up + 1).min(row[j] + 1);
            diag = up;
        }
    }
    row[b.len()]
}

/// `names` ordered closest to `target` first (ties alphabetically).
pub(crate) fn closest_first(target: &str, names: &[String]) -> Vec<String> {
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .map(|n| (edit_distance(target, n), n))
        .collect();
    scored.sort();
    scored.into_iter().map(|(_, n)| n.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_basics() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn closest_ordering_and_hint() {
        let names = vec!["zeta".to_string(), "w1".to_string(), "w2".to_string()];
        let ordered = closest_first("w3", &names);
        assert_eq!(ordered, vec!["w1", "w2", "zeta"]);
        let err = IoError::MissingTensor {
            path: PathBuf::from("m.safetensors"),
            name: "w3".into(),
            available: ordered,
        };
        assert_eq!(
            err.hint().as_deref(),
            Some("available tensors: w1, w2, zeta")
        );
        let msg = err.to_string();
        assert!(msg.contains("m.safetensors") && msg.contains("`w3`") && msg.contains("w1, w2"));
    }

    #[test]
    fn long_lists_are_summarised() {
        let names: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
        let s = list_names("available tensors", &names);
        assert!(s.ends_with("… and 12 more"), "{s}");
    }

    #[test]
    fn every_variant_names_its_path_and_has_a_hint() {
        let p = PathBuf::from("some/file.bin");
        let all = vec![
            IoError::NotFound { path: p.clone() },
            IoError::Read {
                path: p.clone(),
                detail: "denied".into(),
            },
            IoError::malformed(&p, "bad magic"),
            IoError::unsupported(&p, "dtype c8"),
            IoError::Write {
                path: p.clone(),
                detail: "disk full".into(),
            },
        ];
        for e in all {
            assert!(e.to_string().contains("some/file.bin"), "{e}");
            assert!(e.hint().is_some());
            assert_eq!(e.path(), p.as_path());
        }
    }
}
