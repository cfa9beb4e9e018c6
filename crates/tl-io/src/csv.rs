//! Relations as CSV files: each row is one fact, each field one argument. This is how ground
//! facts (edges of a graph, rows of a table) enter a Tensor Logic program in bulk.

use crate::atomic::write_atomic_with;
use crate::error::IoError;
use ::csv::{ByteRecord, ReaderBuilder};
use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

/// Reads a relation from a CSV file: one fact per row, one argument per field.
///
/// - There is **no header row**: the first row is a fact like any other.
/// - Fields are separated by commas (tabs when the file name ends in `.tsv`); a field may be
///   quoted (`"a, b"`, with `""` for a literal quote) and is trimmed of surrounding whitespace.
///   Quotes after leading whitespace (`a, "b c"`) are removed too, but a delimiter inside
///   quotes is only protected when the opening quote directly follows the delimiter.
/// - Blank lines and lines starting with `#` are skipped.
/// - Every row must have as many fields as the first; otherwise [`IoError::Ragged`] names the
///   offending line. Text must be UTF-8.
///
/// The result is column by column: a column whose fields are all non-negative integers is
/// kept as numbers (parsed once, no text kept), any other as symbol numbers in order of first
/// appearance with the symbols' names, so a large file costs one pass and one allocation per
/// distinct symbol.
pub fn read_csv_relation(path: &Path) -> Result<CsvColumns, IoError> {
    let bytes = std::fs::read(path).map_err(|e| IoError::from_read(path, &e))?;
    // Columns are numbers until a field is not one; then the file is read again with that
    // column as symbols, so that every field keeps its text exactly ("007" stays "007").
    let mut symbolic: Vec<bool> = Vec::new();
    loop {
        match read_columns(path, &bytes, &symbolic)? {
            Ok(columns) => return Ok(columns),
            Err(col) => {
                if symbolic.len() <= col {
                    symbolic.resize(col + 1, false);
                }
                symbolic[col] = true;
            }
        }
    }
}

/// A relation read from a CSV file, one entry per column.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CsvColumns {
    /// Number of rows (facts).
    pub rows: usize,
    /// The columns, in file order.
    pub columns: Vec<CsvColumn>,
}

/// One column of a CSV relation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CsvColumn {
    /// Every field is a non-negative integer: the values, one per row.
    Ints(Vec<i64>),
    /// Symbols: each row's symbol number, and the symbols in order of first appearance.
    Symbols {
        /// One symbol number per row.
        ids: Vec<u32>,
        /// The distinct symbols, numbered by first appearance.
        names: Vec<String>,
    },
}

impl CsvColumn {
    /// The field of row `i` as text.
    pub fn text(&self, i: usize) -> Option<String> {
        match self {
            CsvColumn::Ints(v) => v.get(i).map(i64::to_string),
            CsvColumn::Symbols { ids, names } => {
                ids.get(i).and_then(|&k| names.get(k as usize)).cloned()
            }
        }
    }
}

/// One column being read.
enum Building {
    Ints(Vec<i64>),
    Symbols {
        ids: Vec<u32>,
        names: Vec<String>,
        lookup: std::collections::HashMap<String, u32>,
    },
}

/// Reads the columns, with `symbolic[c]` columns as symbols; `Ok(Err(c))` when column `c`
/// held a field that is not a non-negative integer although it was read as numbers.
fn read_columns(
    path: &Path,
    bytes: &[u8],
    symbolic: &[bool],
) -> Result<Result<CsvColumns, usize>, IoError> {
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter_for(path))
        .comment(Some(b'#'))
        .flexible(true)
        .from_reader(bytes);
    let mut record = ByteRecord::new();
    let mut columns: Vec<Building> = Vec::new();
    let mut rows = 0usize;
    // Arity and start byte of the first row.
    let mut arity: Option<(usize, u64)> = None;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(path, &e)),
        }
        let byte = record.position().map_or(0, |p| p.byte());
        // A line of only spaces parses as one empty field: treat it as blank.
        if record.len() == 1 && record[0].trim_ascii().is_empty() {
            continue;
        }
        match arity {
            None => {
                arity = Some((record.len(), byte));
                columns = (0..record.len())
                    .map(|c| {
                        if symbolic.get(c).copied().unwrap_or(false) {
                            Building::Symbols {
                                ids: Vec::new(),
                                names: Vec::new(),
                                lookup: Default::default(),
                            }
                        } else {
                            Building::Ints(Vec::new())
                        }
                    })
                    .collect();
            }
            Some((expected, first_byte)) if expected != record.len() => {
                return Err(IoError::Ragged {
                    path: path.to_path_buf(),
                    line: line_of(path, byte),
                    first_line: line_of(path, first_byte),
                    expected,
                    found: record.len(),
                })
            }
            Some(_) => {}
        }
        for (c, (field, column)) in record.iter().zip(columns.iter_mut()).enumerate() {
            let text = std::str::from_utf8(field).map_err(|_| {
                let line = line_of(path, byte);
                IoError::malformed(path, format!("line {line}: text is not valid UTF-8"))
            })?;
            let text = text.trim();
            let text: Cow<'_, str> = if text.starts_with('"') {
                Cow::Owned(unquote(text))
            } else {
                Cow::Borrowed(text)
            };
            match column {
                Building::Ints(values) => match text.parse::<i64>() {
                    Ok(v) => values.push(v),
                    _ => return Ok(Err(c)),
                },
                Building::Symbols { ids, names, lookup } => {
                    let id = match lookup.get(&*text) {
                        Some(&id) => id,
                        None => {
                            let name = text.into_owned();
                            let id = u32::try_from(names.len()).map_err(|_| {
                                IoError::malformed(path, "more than 2^32 distinct symbols")
                            })?;
                            lookup.insert(name.clone(), id);
                            names.push(name);
                            id
                        }
                    };
                    ids.push(id);
                }
            }
        }
        rows += 1;
    }
    let columns = columns
        .into_iter()
        .map(|c| match c {
            Building::Ints(v) => CsvColumn::Ints(v),
            Building::Symbols { ids, names, .. } => CsvColumn::Symbols { ids, names },
        })
        .collect();
    Ok(Ok(CsvColumns { rows, columns }))
}

/// Writes `rows` as a CSV relation (no header; fields quoted only where needed), atomically, in
/// the form [`read_csv_relation`] reads back. Rows must all have the same number of fields.
/// Surrounding whitespace of fields, and rows made of a single empty field, do not survive a
/// round trip, since the reader trims fields and skips blank lines.
pub fn write_csv_relation(path: &Path, rows: &[Vec<String>]) -> Result<(), IoError> {
    if let Some(first) = rows.first() {
        if let Some((i, row)) = rows
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() != first.len())
        {
            return Err(IoError::Write {
                path: path.to_path_buf(),
                detail: format!(
                    "row {} has {} fields but row 1 has {}",
                    i + 1,
                    row.len(),
                    first.len()
                ),
            });
        }
    }
    let delimiter = delimiter_for(path);
    let sep = [delimiter];
    write_atomic_with(path, |w| {
        for row in rows {
            for (i, field) in row.iter().enumerate() {
                if i > 0 {
                    w.write_all(&sep)?;
                }
                w.write_all(escape(field, delimiter, i == 0).as_bytes())?;
            }
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// Quotes a field if it is empty or contains the delimiter, a quote or a line break, and a
/// first field that starts with `#` (which would otherwise read back as a comment).
fn escape(field: &str, delimiter: u8, first: bool) -> Cow<'_, str> {
    let needs = field.is_empty()
        || (first && field.starts_with('#'))
        || field
            .bytes()
            .any(|b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r');
    if needs {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(field)
    }
}

/// Removes quotes the csv crate left in place because whitespace preceded them
/// (`a, "b c"`): a field that is `"…"` with only doubled quotes inside becomes its content.
fn unquote(field: &str) -> String {
    if let Some(inner) = field.strip_prefix('"').and_then(|f| f.strip_suffix('"')) {
        if !inner.replace("\"\"", "").contains('"') {
            return inner.replace("\"\"", "\"");
        }
    }
    field.to_string()
}

/// The 1-based line number of the record starting at byte `start`. The csv crate reports a
/// record's start before any comment or blank lines that precede it, so those are skipped
/// here. Only used to build error messages, so re-reading the file is acceptable.
fn line_of(path: &Path, start: u64) -> u64 {
    let Ok(bytes) = std::fs::read(path) else {
        return 0;
    };
    let mut at = usize::try_from(start)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    loop {
        let rest = &bytes[at..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let line = &rest[..end];
        let skippable = line.trim_ascii().is_empty() || line.starts_with(b"#");
        if !skippable || end == rest.len() {
            break;
        }
        at += end;
    }
    1 + bytes[..at].iter().filter(|&&b| b == b'\n').count() as u64
}

/// Tab for `.tsv` files, comma otherwise.
fn delimiter_for(path: &Path) -> u8 {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("tsv") => b'\t',
        _ => b',',
    }
}

/// Converts a csv-crate error into an [`IoError`] naming the file and line.
fn csv_error(path: &Path, e: &::csv::Error) -> IoError {
    match e.kind() {
        ::csv::ErrorKind::Io(io) => IoError::from_read(path, io),
        _ => {
            let line = e.position().map_or(0, |p| line_of(path, p.byte()));
            IoError::malformed(path, format!("line {line}: {e}"))
        }
    }
}

#[cfg(test)]
mod tests;
