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
pub fn read_csv_relation(path: &Path) -> Result<Vec<Vec<String>>, IoError> {
    let file = std::fs::File::open(path).map_err(|e| IoError::from_read(path, &e))?;
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter_for(path))
        .comment(Some(b'#'))
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(file);

    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut record = ByteRecord::new();
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
            None => arity = Some((record.len(), byte)),
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
        let mut row = Vec::with_capacity(record.len());
        for field in record.iter() {
            let text = std::str::from_utf8(field).map_err(|_| {
                let line = line_of(path, byte);
                IoError::malformed(path, format!("line {line}: text is not valid UTF-8"))
            })?;
            row.push(unquote(text.trim()));
        }
        rows.push(row);
    }
    Ok(rows)
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
