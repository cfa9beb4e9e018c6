//! Relations as plain delimited text, the way Soufflé reads `.facts` files and writes `.csv`
//! files: one tuple per line, fields split at a single delimiter character (a tab by
//! default), taken verbatim — no quoting, no trimming, no comment lines. Unlike
//! [`crate::read_csv_relation`], which guesses each column's kind from its contents, the
//! caller says which columns are numbers, as a Soufflé `.decl` does.

use crate::atomic::write_atomic_with;
use crate::csv::{CsvColumn, CsvColumns};
use crate::error::IoError;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// Reads a relation of `numbers.len()` columns from delimited text; `numbers[c]` says that
/// column `c` holds non-negative integers, otherwise it holds symbols (any text, kept exactly).
///
/// Empty lines are skipped, and a line may end with `\r\n`. A line with another number of
/// fields is [`IoError::Ragged`]; a number column holding anything but a non-negative integer
/// that fits in 32 bits is [`IoError::BadField`].
pub fn read_delimited_relation(
    path: &Path,
    delimiter: char,
    numbers: &[bool],
) -> Result<CsvColumns, IoError> {
    let bytes = std::fs::read(path).map_err(|e| IoError::from_read(path, &e))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| IoError::malformed(path, format!("not UTF-8 text: {e}")))?;
    let mut columns: Vec<Column> = numbers
        .iter()
        .map(|&n| {
            if n {
                Column::Ints(Vec::new())
            } else {
                Column::Symbols {
                    ids: Vec::new(),
                    names: Vec::new(),
                    lookup: HashMap::new(),
                }
            }
        })
        .collect();
    let mut rows = 0usize;
    for (k, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        let number = k as u64 + 1;
        let fields: Vec<&str> = line.split(delimiter).collect();
        if fields.len() != numbers.len() {
            return Err(IoError::Ragged {
                path: path.to_path_buf(),
                line: number,
                first_line: number,
                expected: numbers.len(),
                found: fields.len(),
            });
        }
        for (c, (field, column)) in fields.iter().zip(columns.iter_mut()).enumerate() {
            column.push(field, path, number, c + 1)?;
        }
        rows += 1;
    }
    Ok(CsvColumns {
        rows,
        columns: columns.into_iter().map(Column::finish).collect(),
    })
}

/// Writes rows of fields as delimited text, one line per row, fields verbatim.
pub fn write_delimited_relation(
    path: &Path,
    delimiter: char,
    rows: &[Vec<String>],
) -> Result<(), IoError> {
    let mut sep = [0u8; 4];
    let sep = delimiter.encode_utf8(&mut sep).as_bytes().to_vec();
    write_atomic_with(path, |w| {
        for row in rows {
            for (i, field) in row.iter().enumerate() {
                if i > 0 {
                    w.write_all(&sep)?;
                }
                w.write_all(field.as_bytes())?;
            }
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// One column being read.
enum Column {
    Ints(Vec<i64>),
    Symbols {
        ids: Vec<u32>,
        names: Vec<String>,
        lookup: HashMap<String, u32>,
    },
}

impl Column {
    fn push(&mut self, field: &str, path: &Path, line: u64, column: usize) -> Result<(), IoError> {
        let bad = |detail: String| IoError::BadField {
            path: path.to_path_buf(),
            line,
            column,
            detail,
        };
        match self {
            Column::Ints(values) => {
                let value = field
                    .parse::<i64>()
                    .ok()
                    .filter(|v| (i64::from(i32::MIN)..i64::from(u32::MAX)).contains(v))
                    .ok_or_else(|| bad(format!("`{field}` is not a 32-bit integer")))?;
                values.push(value);
            }
            Column::Symbols { ids, names, lookup } => {
                let id = match lookup.get(field) {
                    Some(&id) => id,
                    None => {
                        let id = u32::try_from(names.len())
                            .map_err(|_| bad("more than 2^32 distinct symbols".into()))?;
                        names.push(field.to_string());
                        lookup.insert(field.to_string(), id);
                        id
                    }
                };
                ids.push(id);
            }
        }
        Ok(())
    }

    fn finish(self) -> CsvColumn {
        match self {
            Column::Ints(v) => CsvColumn::Ints(v),
            Column::Symbols { ids, names, .. } => CsvColumn::Symbols { ids, names },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, numbers: &[bool]) -> Result<CsvColumns, IoError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.facts");
        std::fs::write(&path, text).unwrap();
        read_delimited_relation(&path, '\t', numbers)
    }

    #[test]
    fn fields_are_verbatim_and_typed_by_the_caller() {
        let c = read("a b\t007\n\n\"q\",x\t3\r\n", &[false, true]).unwrap();
        assert_eq!(c.rows, 2);
        assert_eq!(c.columns[0].text(0).as_deref(), Some("a b"));
        assert_eq!(c.columns[0].text(1).as_deref(), Some("\"q\",x"));
        assert_eq!(c.columns[1], CsvColumn::Ints(vec![7, 3]));
        let s = read("007\n7\n", &[false]).unwrap();
        assert_eq!(s.columns[0].text(0).as_deref(), Some("007"));
    }

    #[test]
    fn bad_fields_and_ragged_lines_name_the_line() {
        let e = read("1\t2\n3\n", &[true, true]).unwrap_err();
        assert!(matches!(e, IoError::Ragged { line: 2, .. }), "{e}");
        let e = read("1\n-2147483649\n", &[true]).unwrap_err();
        assert!(
            matches!(
                e,
                IoError::BadField {
                    line: 2,
                    column: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.hint().unwrap().contains("symbol"));
    }

    #[test]
    fn written_rows_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let rows = vec![
            vec!["a".to_string(), "1".to_string()],
            vec!["b c".to_string(), "2".to_string()],
        ];
        write_delimited_relation(&path, '\t', &rows).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\t1\nb c\t2\n");
        let back = read_delimited_relation(&path, '\t', &[false, true]).unwrap();
        assert_eq!(back.rows, 2);
    }
}
