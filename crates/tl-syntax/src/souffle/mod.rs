//! Soufflé programs (`.dl`): a front end of its own that produces the same syntax tree as the
//! Tensor Logic parser, so that checking, planning and running are shared.
//!
//! The subset (docs/language.md, "Soufflé programs"): `.type T <: symbol` (or `number`, and
//! unions `T = A | B`), `.decl`, `.input` and `.output` (with `filename=` and `delimiter=`),
//! facts, rules with `:-`, `,`, `;`, `!`, comparisons and arithmetic on numbers (rules that
//! compute numbers are split off as [`computed`] rules), `//` and `/* */` comments. Soufflé
//! variables are any names, so `X` and `x` alike become index variables, and strings become
//! symbols. Everything else Soufflé has — components, ADTs, records, functors, subsumption,
//! `.plan`, floats, preprocessor lines — is error `TL0032`, which names the construct.
//!
//! [`lexer`] splits the text, [`parser`] (with `terms`) builds a small tree of Soufflé's own,
//! and [`lower`] (with `types` and `io`) turns that into statements.

mod arith;
pub mod computed;
pub mod error;
mod io;
pub mod lexer;
pub mod lower;
pub mod parser;
mod terms;
mod types;

use std::path::{Path, PathBuf};

pub use computed::{ComputedRule, Value};
pub use error::SouffleError;

use crate::ast::Program;
use crate::diagnostic::{Diagnostic, ToDiagnostic};
use crate::loader::LoadError;
use crate::span::{FileId, SourceMap};

/// Deepest nesting of parentheses and unary minus the parser follows.
pub const MAX_DEPTH: usize = 200;

/// Where `.output` relations go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// `NAME.csv` files in this folder.
    Dir(PathBuf),
    /// Standard output, as query answers (`-D -`).
    Stdout,
}

/// The folders a Soufflé program reads and writes, as `souffle -F DIR -D DIR` names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Where `.input` files are (absolute, or relative to the current folder).
    pub fact_dir: PathBuf,
    /// Where `.output` files go.
    pub output: Output,
}

impl Options {
    /// Options from the command line's `-F` and `-D` (each defaulting to the current folder,
    /// as in Soufflé; `-D -` is standard output). Relative folders are made absolute against
    /// `cwd`, because the engine resolves relative paths against the program's folder.
    pub fn from_flags(fact_dir: Option<&Path>, output_dir: Option<&Path>, cwd: &Path) -> Self {
        let abs = |p: Option<&Path>| match p {
            Some(p) if p.is_absolute() => p.to_path_buf(),
            Some(p) => cwd.join(p),
            None => cwd.to_path_buf(),
        };
        Options {
            fact_dir: abs(fact_dir),
            output: match output_dir {
                Some(p) if p == Path::new("-") => Output::Stdout,
                other => Output::Dir(abs(other)),
            },
        }
    }
}

/// Parses a Soufflé program's text into statements and the rules that compute numbers
/// ([`computed`]), with every error found.
pub fn parse_souffle(
    text: &str,
    file: FileId,
    options: &Options,
) -> (Program, Vec<ComputedRule>, Vec<SouffleError>) {
    // A byte-order mark becomes three spaces, so that spans stay byte offsets of the file.
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => format!("   {rest}"),
        None => text.to_string(),
    };
    let tokens = lexer::lex(&text, file);
    let (items, mut errors) = parser::parse(&tokens);
    let (program, computed, lowering) = lower::lower(&items, options);
    errors.extend(lowering);
    errors.sort_by_key(|e| (e.span().start, e.span().end));
    errors.dedup();
    (program, computed, errors)
}

/// Reads and parses the Soufflé program in `path`, adding it to `sources`.
pub fn load_souffle(
    path: &Path,
    sources: &mut SourceMap,
    options: &Options,
) -> (Program, Vec<ComputedRule>, Vec<Diagnostic>) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let d = LoadError::Unreadable {
                path: path.to_path_buf(),
                reason: e.to_string(),
                span: None,
            }
            .to_diagnostic();
            return (Program::default(), Vec::new(), vec![d]);
        }
    };
    let id = sources.add(path, text.clone());
    let (program, computed, errors) = parse_souffle(&text, id, options);
    (
        program,
        computed,
        errors.iter().map(ToDiagnostic::to_diagnostic).collect(),
    )
}

#[cfg(test)]
mod tests;
