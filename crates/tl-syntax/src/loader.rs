//! The program loader: reads a file, parses it, and splices in the files it imports.
//!
//! `import "lib.tl"` is resolved against the folder of the file that names it. Each file is
//! included at most once (by canonical path), so import cycles and diamonds are harmless. The
//! returned program holds no `Import` statements: each is replaced by the statements of the
//! file it names.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::ast::{Program, Stmt, StmtKind};
use crate::diagnostic::{Diagnostic, ToDiagnostic};
use crate::parser::parse;
use crate::span::{FileId, SourceMap, Span};

/// A file that could not be read while loading a program.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum LoadError {
    /// The file is missing or unreadable.
    #[error("cannot read `{path}`: {reason}")]
    Unreadable {
        /// The path as resolved.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
        /// The `import` string naming the file; `None` for the top-level file.
        span: Option<Span>,
    },
    /// An `import` of a file that is not a program (data, or any file not named `.tl`):
    /// refused before it is read, so its contents never reach the diagnostics.
    #[error("`{path}` is not a Tensor Logic program: `import` reads `.tl` files")]
    NotAProgram {
        /// The path as resolved.
        path: PathBuf,
        /// The `import` string naming the file.
        span: Span,
    },
}

impl ToDiagnostic for LoadError {
    fn to_diagnostic(&self) -> Diagnostic {
        match self {
            LoadError::Unreadable { path, span, .. } => match span {
                Some(span) => Diagnostic::error(
                    "TL0020",
                    self.to_string(),
                    *span,
                    format!("`{}` cannot be read", path.display()),
                )
                .with_help("check the path; imports are relative to the folder of the importing file"),
                None => Diagnostic::spanless("TL0020", self.to_string())
                    .with_help("check the program file's path (relative to the current folder)"),
            },
            LoadError::NotAProgram { span, .. } => Diagnostic::error(
                "TL0021",
                self.to_string(),
                *span,
                "not a `.tl` file",
            )
            .with_help(
                "to read data, assign the file to a tensor instead: `X = \"data.npy\"`, `R = \"facts.csv\"`",
            ),
        }
    }
}

/// Loads the program in `path` and every file it imports, adding each to `sources`.
/// Returns the statements that parsed, with a diagnostic for each problem found.
pub fn load_program(path: &Path, sources: &mut SourceMap) -> (Program, Vec<Diagnostic>) {
    let mut loader = Loader {
        sources,
        seen: HashSet::new(),
        diagnostics: Vec::new(),
    };
    let stmts = match loader.read(path, None) {
        Some(id) => {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            loader.file(id, &dir)
        }
        None => Vec::new(),
    };
    (Program { stmts }, loader.diagnostics)
}

/// Parses `text` (e.g. a REPL line) under the name `name`, resolving its imports against
/// `base_dir`.
pub fn load_source(
    name: &str,
    text: &str,
    sources: &mut SourceMap,
    base_dir: &Path,
) -> (Program, Vec<Diagnostic>) {
    let id = sources.add_with_base(name, text, base_dir);
    let mut loader = Loader {
        sources,
        seen: HashSet::new(),
        diagnostics: Vec::new(),
    };
    let stmts = loader.file(id, base_dir);
    (Program { stmts }, loader.diagnostics)
}

struct Loader<'s> {
    sources: &'s mut SourceMap,
    /// Canonical paths of the files already included.
    seen: HashSet<PathBuf>,
    diagnostics: Vec<Diagnostic>,
}

impl Loader<'_> {
    /// Reads a file not yet seen and adds it to the source map; `None` when it was already
    /// included or cannot be read (the latter is reported).
    fn read(&mut self, path: &Path, span: Option<Span>) -> Option<FileId> {
        let key = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if self.seen.contains(&key) {
            return None;
        }
        match fs::read_to_string(path) {
            Ok(text) => {
                self.seen.insert(key);
                Some(self.sources.add(path, text))
            }
            Err(err) => {
                let error = LoadError::Unreadable {
                    path: path.to_path_buf(),
                    reason: err.to_string(),
                    span,
                };
                self.diagnostics.push(error.to_diagnostic());
                None
            }
        }
    }

    /// Parses one file and returns its statements with imports spliced in.
    fn file(&mut self, id: FileId, dir: &Path) -> Vec<Stmt> {
        let text = self.sources.file(id).text.clone();
        let (program, errors) = parse(&text, id);
        self.diagnostics
            .extend(errors.iter().map(ToDiagnostic::to_diagnostic));
        let mut stmts = Vec::new();
        for stmt in program.stmts {
            let StmtKind::Import(lit) = &stmt.kind else {
                stmts.push(stmt);
                continue;
            };
            let path = dir.join(&lit.value);
            if path.extension().is_none_or(|e| e != "tl") {
                let error = LoadError::NotAProgram {
                    path,
                    span: lit.span,
                };
                self.diagnostics.push(error.to_diagnostic());
                continue;
            }
            if let Some(child) = self.read(&path, Some(lit.span)) {
                let child_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                stmts.extend(self.file(child, &child_dir));
            }
        }
        stmts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the system temp dir, named after the test.
    fn scratch(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tl-syntax-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for (path, text) in files {
            let path = dir.join(path);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
            }
            fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        }
        dir
    }

    fn names(program: &Program) -> Vec<String> {
        program
            .stmts
            .iter()
            .map(|s| match &s.kind {
                StmtKind::Equation(eq) => eq.lhs.name.name.clone(),
                StmtKind::Data(d) => d.lhs.name.name.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn imports_are_spliced_in_place_once_each() {
        let dir = scratch(
            "splice",
            &[
                (
                    "main.tl",
                    "A = 1\nimport \"lib/b.tl\"\nimport \"lib/b.tl\"\nD = 4\n",
                ),
                ("lib/b.tl", "B = 2\nimport \"c.tl\"\n"),
                (
                    "lib/c.tl",
                    "C = 3\nimport \"b.tl\"\nimport \"../main.tl\"\n",
                ),
            ],
        );
        let mut sources = SourceMap::new();
        let (program, diagnostics) = load_program(&dir.join("main.tl"), &mut sources);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(names(&program), ["A", "B", "C", "D"]);
        assert_eq!(sources.files().len(), 3);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_missing_import_is_reported_at_its_string() {
        let dir = scratch(
            "missing",
            &[("main.tl", "import \"nope.tl\"\nA = 1\nB = \n")],
        );
        let mut sources = SourceMap::new();
        let (program, diagnostics) = load_program(&dir.join("main.tl"), &mut sources);
        assert_eq!(names(&program), ["A"]);
        assert_eq!(diagnostics.len(), 2);
        let missing = diagnostics.iter().find(|d| d.code == "TL0020");
        assert!(missing.is_some_and(|d| d.message.contains("nope.tl")));
        assert_eq!(missing.and_then(|d| d.span).map(|s| s.range()), Some(7..16));
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_missing_program_is_a_spanless_error() {
        let mut sources = SourceMap::new();
        let path = std::env::temp_dir().join("tl-syntax-no-such-file.tl");
        let (program, diagnostics) = load_program(&path, &mut sources);
        assert!(program.stmts.is_empty());
        assert_eq!(diagnostics.len(), 1);
        assert_eq!(diagnostics[0].span, None);
        assert!(diagnostics[0].message.contains("tl-syntax-no-such-file.tl"));
    }

    #[test]
    fn repl_source_resolves_imports_against_the_base_dir() {
        let dir = scratch("repl", &[("lib.tl", "L = 1\n")]);
        let mut sources = SourceMap::new();
        let (program, diagnostics) =
            load_source("<repl>", "import \"lib.tl\"\nR = L", &mut sources, &dir);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(names(&program), ["L", "R"]);
        assert_eq!(sources.files().len(), 2);
        let _ = fs::remove_dir_all(dir);
    }
}
