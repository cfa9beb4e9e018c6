//! `tl repl`: statements typed one at a time. Definitions accumulate into a session program;
//! each query (or write) is checked against the whole session and its answer printed. Input
//! continues over lines while a bracket is open or a line ends with an operator or comma.
//! With piped standard input it reads lines plainly, so sessions can be scripted and tested.

use crate::{pipeline, report};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use tl_run::{Engine, RunOptions};
use tl_syntax::{SourceMap, ToDiagnostic};

const HELP: &str =
    "Type Tensor Logic statements; definitions are kept, queries (`Y?`) are answered.
  :help    this text
  :shapes  inferred shapes, domains and implicit params of the session
  :reset   forget every definition
  :quit    leave (or Ctrl-D)
";

/// Whether `text` is an unfinished statement (open bracket, or trailing operator or comma).
pub fn needs_more(text: &str) -> bool {
    let mut depth = 0i32;
    let mut in_str = false;
    let mut prev = ' ';
    for c in text.chars() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '(' | '[' | '{' if !in_str => depth += 1,
            ')' | ']' | '}' if !in_str => depth -= 1,
            '#' if !in_str => break,
            _ => {}
        }
        prev = c;
    }
    let last = text.split('#').next().unwrap_or("").trim_end();
    depth > 0 || last.ends_with(['+', '-', '*', '/', '^', ',', '=']) || last.ends_with("<-")
}

/// The session's state: the definitions so far.
#[derive(Default)]
pub struct Session {
    definitions: Vec<String>,
}

impl Session {
    /// Handles one complete statement (or `:command`); returns text for standard output,
    /// text for standard error, and whether to stop.
    pub fn handle(&mut self, input: &str) -> (String, String, bool) {
        let trimmed = input.trim();
        match trimmed {
            "" => return (String::new(), String::new(), false),
            ":quit" | ":q" | ":exit" => return (String::new(), String::new(), true),
            ":help" => return (HELP.to_string(), String::new(), false),
            ":reset" => {
                self.definitions.clear();
                return ("session cleared\n".into(), String::new(), false);
            }
            _ => {}
        }
        let shapes = trimmed == ":shapes";
        if trimmed.starts_with(':') && !shapes {
            return (
                String::new(),
                format!("unknown command `{trimmed}` (try :help)\n"),
                false,
            );
        }
        let is_command = !shapes && (trimmed.ends_with('?') || trimmed.starts_with('"'));
        let mut text = self.definitions.join("\n");
        if !shapes {
            text.push('\n');
            text.push_str(trimmed);
        }
        let mut sources = SourceMap::new();
        let dir = std::env::current_dir().unwrap_or_default();
        let (program, diags) = tl_syntax::load_source("<repl>", &text, &mut sources, &dir);
        let (checked, plan) = match pipeline::compile(&program, diags, &sources) {
            Ok(x) => x,
            Err(diags) => {
                let err: String = diags
                    .iter()
                    .map(|d| report::render_to_string(d, &sources))
                    .collect();
                return (String::new(), err, false);
            }
        };
        if shapes {
            return (pipeline::summary(&checked), String::new(), false);
        }
        if !is_command {
            self.definitions.push(trimmed.to_string());
            return (String::new(), String::new(), false);
        }
        let backend = tl_backend::cpu::CpuBackend::new();
        let mut out = String::new();
        let mut err = String::new();
        let last = checked.commands.len().saturating_sub(1);
        let result =
            Engine::new(&checked, &plan, &backend, RunOptions::default()).and_then(|mut engine| {
                let mut k = 0;
                let r = engine.run(
                    &mut |a| {
                        if k == last {
                            out.push_str(&a.to_human());
                        }
                        k += 1;
                    },
                    &mut tl_run::observe::Silent,
                );
                for w in &engine.warnings {
                    err.push_str(&report::render_to_string(w, &sources));
                }
                r
            });
        if let Err(e) = result {
            err.push_str(&report::render_to_string(&e.to_diagnostic(), &sources));
        }
        (out, err, false)
    }
}

/// Runs the REPL on the terminal, or on piped standard input.
pub fn main() -> ExitCode {
    let mut session = Session::default();
    let mut pending = String::new();
    let emit = |s: (String, String, bool)| {
        print!("{}", s.0);
        eprint!("{}", s.1);
        let _ = std::io::stdout().flush();
        s.2
    };
    if !std::io::stdin().is_terminal() {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            pending.push_str(&line);
            pending.push('\n');
            if needs_more(&pending) {
                continue;
            }
            if emit(session.handle(&pending)) {
                break;
            }
            pending.clear();
        }
        if !pending.trim().is_empty() {
            emit(session.handle(&pending));
        }
        return ExitCode::SUCCESS;
    }
    let Ok(mut editor) = rustyline::DefaultEditor::new() else {
        eprintln!("error: cannot open the terminal for the REPL");
        return ExitCode::FAILURE;
    };
    let history = std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".tl_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!(
        "TensorLogic {} — :help for help, Ctrl-D to leave",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        let prompt = if pending.is_empty() { "tl> " } else { "... " };
        match editor.readline(prompt) {
            Ok(line) => {
                pending.push_str(&line);
                pending.push('\n');
                if needs_more(&pending) {
                    continue;
                }
                let _ = editor.add_history_entry(pending.trim_end());
                if emit(session.handle(&pending)) {
                    break;
                }
                pending.clear();
            }
            Err(rustyline::error::ReadlineError::Interrupted) => pending.clear(),
            Err(_) => break,
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_follows_brackets_and_operators() {
        assert!(needs_more("W = [[1, 2],\n"));
        assert!(needs_more("Y[i] = A[i] +\n"));
        assert!(!needs_more("Y[i] = A[i] + B[i]\n"));
        assert!(!needs_more("S = \"(\"\n"));
    }

    #[test]
    fn session_keeps_definitions_and_answers_queries() {
        let mut s = Session::default();
        s.handle("Parent(Alice, Bob)");
        s.handle("Parent(Bob, Carol)");
        s.handle("Anc(x, y) <- Parent(x, y)");
        s.handle("Anc(x, z) <- Anc(x, y), Parent(y, z)");
        let (out, err, _) = s.handle("Anc(Alice, x)?");
        assert_eq!(err, "");
        assert!(out.contains("Bob") && out.contains("Carol"), "{out}");
        let (_, err, _) = s.handle("Y[i] = Nope(");
        assert!(err.contains("Error") && err.contains("<repl>:5:"), "{err}");
    }
}
