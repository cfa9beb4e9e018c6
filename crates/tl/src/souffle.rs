//! Soufflé programs on the command line: `tl run prog.dl [-F FACT_DIR] [-D OUT_DIR]` reads the
//! program through `tl_syntax::souffle`; any other file is a Tensor Logic program.

use clap::Args;
use std::path::{Path, PathBuf};
use tl_syntax::{ast, Diagnostic, SourceMap};

/// Soufflé's `-F` and `-D`, for `.dl` programs.
#[derive(Args, Clone, Debug, Default)]
pub struct SouffleArgs {
    /// For Soufflé programs (`.dl`): the folder of the `.input` files (default: the current
    /// folder).
    #[arg(short = 'F', long = "fact-dir", value_name = "DIR")]
    pub fact_dir: Option<PathBuf>,
    /// For Soufflé programs (`.dl`): the folder the `.output` files are written to (default:
    /// the current folder); `-` prints them instead.
    #[arg(short = 'D', long = "output-dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
}

/// A program file with the flags that say where a Soufflé program's files are.
pub struct Source {
    /// The program.
    pub file: PathBuf,
    /// `-F` and `-D`.
    pub flags: SouffleArgs,
    /// Most runs that settle rules computing numbers (`--max-iters`), and the options of
    /// each; `None` leaves them unsettled (`tl check` runs nothing).
    pub settle: Option<(usize, tl_run::RunOptions)>,
}

impl Source {
    /// Loads the program (see [`load`]).
    pub fn load(&self, sources: &mut SourceMap) -> (ast::Program, Vec<Diagnostic>) {
        load(&self.file, sources, &self.flags, self.settle.as_ref())
    }
}

/// Whether `file` is a Soufflé program (by its `.dl` extension).
pub fn is_souffle(file: &Path) -> bool {
    file.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("dl"))
}

/// Loads a program, Soufflé's or Tensor Logic's by the file's extension. A Soufflé program's
/// rules that compute numbers are settled as `settle` says ([`tl_run::computed`]).
pub fn load(
    file: &Path,
    sources: &mut SourceMap,
    args: &SouffleArgs,
    settle: Option<&(usize, tl_run::RunOptions)>,
) -> (ast::Program, Vec<Diagnostic>) {
    if !is_souffle(file) {
        return tl_syntax::load_program(file, sources);
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    let options = tl_syntax::souffle::Options::from_flags(
        args.fact_dir.as_deref(),
        args.output_dir.as_deref(),
        &cwd,
    );
    let (program, computed, mut diags) = tl_syntax::souffle::load_souffle(file, sources, &options);
    let failed = diags
        .iter()
        .any(|d| d.severity == tl_syntax::Severity::Error);
    let Some((rounds, options)) = settle.filter(|_| !computed.is_empty() && !failed) else {
        return (program, diags);
    };
    match tl_run::computed::settle(program, &computed, sources, *rounds, options) {
        Ok(program) => (program, diags),
        Err(more) => {
            diags.extend(more);
            (ast::Program::default(), diags)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_picks_the_front_end() {
        assert!(is_souffle(Path::new("a/prog.dl")));
        assert!(is_souffle(Path::new("PROG.DL")));
        assert!(!is_souffle(Path::new("prog.tl")));
        assert!(!is_souffle(Path::new("dl")));
    }
}
