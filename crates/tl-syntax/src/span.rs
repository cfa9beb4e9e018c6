//! Source files and byte spans into them.
//!
//! Every syntax-tree node and every diagnostic carries a [`Span`], so errors from any later phase
//! can point at the exact text they are about.

use std::path::{Path, PathBuf};

/// Identifies one file held by a [`SourceMap`]; spans name their file by this id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub u32);

/// A half-open byte range `start..end` in one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// The file the bytes belong to.
    pub file: FileId,
    /// First byte of the span.
    pub start: u32,
    /// One past the last byte of the span.
    pub end: u32,
}

impl Span {
    /// A span over `start..end` in `file`.
    pub fn new(file: FileId, start: usize, end: usize) -> Self {
        Span {
            file,
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both `self` and `other` (which must be in the same file).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// The byte range, for slicing the source text.
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// One loaded source file: its path (as given, for messages) and its text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The path the file was read from, or a name such as `<repl>`.
    pub path: PathBuf,
    /// The full text of the file.
    pub text: String,
    /// The folder relative paths in this source resolve against, when it is not the file's
    /// own folder (text typed at the REPL, or given without a file).
    pub base: Option<PathBuf>,
}

/// Every source file read while loading a program, so diagnostics can quote any of them.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    /// An empty map.
    pub fn new() -> Self {
        SourceMap::default()
    }

    /// Adds a file and returns its id.
    pub fn add(&mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> FileId {
        self.files.push(SourceFile {
            path: path.into(),
            text: text.into(),
            base: None,
        });
        FileId((self.files.len() - 1) as u32)
    }

    /// Adds text that is not read from a file, whose relative paths resolve against `base`.
    pub fn add_with_base(
        &mut self,
        name: impl Into<PathBuf>,
        text: impl Into<String>,
        base: &Path,
    ) -> FileId {
        self.files.push(SourceFile {
            path: name.into(),
            text: text.into(),
            base: Some(base.to_path_buf()),
        });
        FileId((self.files.len() - 1) as u32)
    }

    /// The file with this id. Ids come only from [`SourceMap::add`], so this never fails for
    /// an id this map handed out; an unknown id yields an empty placeholder file.
    pub fn file(&self, id: FileId) -> &SourceFile {
        static EMPTY: SourceFile = SourceFile {
            path: PathBuf::new(),
            text: String::new(),
            base: None,
        };
        self.files.get(id.0 as usize).unwrap_or(&EMPTY)
    }

    /// All files, in the order they were added.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// The folder of the file that a span is in, against which relative data paths resolve.
    pub fn dir_of(&self, id: FileId) -> PathBuf {
        let file = self.file(id);
        match &file.base {
            Some(base) => base.clone(),
            None => file
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset in a file.
    pub fn line_col(&self, id: FileId, offset: u32) -> (usize, usize) {
        let text = &self.file(id).text;
        let offset = (offset as usize).min(text.len());
        let before = &text[..floor_char_boundary(text, offset)];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let mut map = SourceMap::new();
        let f = map.add("a.tl", "ab\ncd é\nx");
        assert_eq!(map.line_col(f, 0), (1, 1));
        assert_eq!(map.line_col(f, 4), (2, 2));
        assert_eq!(map.line_col(f, 9), (3, 1));
    }
}
