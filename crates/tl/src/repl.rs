//! `tl repl`: statements typed one at a time. Definitions accumulate into a session program;
//! commands (queries, `minimize`, file writes) run once, when they are entered, on the
//! session's state: what a `minimize` learns stays learned for the inputs after it. Each input
//! is a source of its own (`<input 3>`), so a diagnostic names the input that caused it and
//! its line there. Input continues over lines while a bracket is open or a line ends with an
//! operator or comma. With piped standard input it reads lines plainly, so sessions can be
//! scripted and tested.

use crate::{pipeline, report};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use tl_backend::HostTensor;
use tl_run::observe::{StepInfo, TrainObserver};
use tl_run::{Engine, RunOptions};
use tl_syntax::ast::{Program, StmtKind};
use tl_syntax::{SourceMap, ToDiagnostic};

const HELP: &str = "Type Tensor Logic statements; definitions are kept, commands run when entered.
  :help    this text
  :shapes  inferred shapes, domains and implicit params of the session
  :reset   forget every definition and everything learned
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

/// Whether a statement is a command (runs when entered) rather than a definition (kept).
fn is_command(kind: &StmtKind) -> bool {
    matches!(
        kind,
        StmtKind::Query(_) | StmtKind::Minimize(_) | StmtKind::Write(_)
    )
}

/// Reports a `minimize` in one line when it ends: steps and the last loss.
#[derive(Default)]
struct TrainSummary {
    lines: String,
    loss_name: String,
    last: Option<StepInfo>,
}

impl TrainObserver for TrainSummary {
    fn start(&mut self, loss: &str, _total: u64) {
        self.loss_name = loss.to_string();
        self.last = None;
    }
    fn step(&mut self, info: &StepInfo) {
        self.last = Some(info.clone());
    }
    fn finish(&mut self) {
        if let Some(s) = self.last.take() {
            self.lines += &format!(
                "minimize {}: {} of {} steps, loss {}\n",
                self.loss_name,
                s.step,
                s.total,
                tl_run::answer::number_text(s.loss)
            );
        }
    }
}

/// The session's state: the definitions so far, each with its input's name, and the values
/// of everything learned so far.
#[derive(Default)]
pub struct Session {
    definitions: Vec<(String, String)>,
    learned: Vec<(String, HostTensor)>,
    /// Implicit params a `minimize` of the session trained.
    trained: Vec<String>,
    inputs: usize,
}

impl Session {
    /// The session's definitions and `extra` (a new input), parsed as one program: the kept
    /// inputs' commands already ran, so only their definitions are taken. Also says whether
    /// `extra` holds commands and whether it holds definitions.
    fn parse(
        &self,
        extra: Option<(&str, &str)>,
        sources: &mut SourceMap,
    ) -> (Program, Vec<tl_syntax::Diagnostic>, bool, bool) {
        let dir = std::env::current_dir().unwrap_or_default();
        let mut program = Program { stmts: Vec::new() };
        let mut diags = Vec::new();
        for (name, text) in &self.definitions {
            let (p, d) = tl_syntax::load_source(name, text, sources, &dir);
            program
                .stmts
                .extend(p.stmts.into_iter().filter(|s| !is_command(&s.kind)));
            diags.extend(d);
        }
        let (mut commands, mut definitions) = (false, false);
        if let Some((name, text)) = extra {
            let (p, d) = tl_syntax::load_source(name, text, sources, &dir);
            commands = p.stmts.iter().any(|s| is_command(&s.kind));
            definitions = p.stmts.iter().any(|s| !is_command(&s.kind));
            program.stmts.extend(p.stmts);
            diags.extend(d);
        }
        (program, diags, commands, definitions)
    }

    /// Handles one complete input (or `:command`); returns text for standard output, text
    /// for standard error, and whether to stop.
    pub fn handle(&mut self, input: &str) -> (String, String, bool) {
        let trimmed = input.trim();
        match trimmed {
            "" => return (String::new(), String::new(), false),
            ":quit" | ":q" | ":exit" => return (String::new(), String::new(), true),
            ":help" => return (HELP.to_string(), String::new(), false),
            ":reset" => {
                self.definitions.clear();
                self.learned.clear();
                self.trained.clear();
                return ("session cleared\n".into(), String::new(), false);
            }
            _ => {}
        }
        let mut sources = SourceMap::new();
        if trimmed == ":shapes" {
            let (program, diags, ..) = self.parse(None, &mut sources);
            let auto = pipeline::GoalDirected::Auto;
            return match pipeline::compile_with(&program, diags, &sources, auto) {
                Ok(compiled) => (compiled.summary, String::new(), false),
                Err(diags) => (String::new(), render(&diags, &sources), false),
            };
        }
        if trimmed.starts_with(':') {
            return (
                String::new(),
                format!("unknown command `{trimmed}` (try :help)\n"),
                false,
            );
        }
        self.inputs += 1;
        let name = format!("<input {}>", self.inputs);
        let (program, diags, runs_commands, defines) =
            self.parse(Some((&name, trimmed)), &mut sources);
        let (checked, plan) = match pipeline::compile(&program, diags, &sources) {
            Ok(x) => x,
            Err(diags) => return (String::new(), render(&diags, &sources), false),
        };
        if defines {
            self.definitions.push((name.clone(), trimmed.to_string()));
        }
        // Untrained implicit params are warned about when a command reads them, not at every
        // definition (a `minimize` for them may still come).
        let warnings = if runs_commands {
            let before: Vec<&str> = self.trained.iter().map(String::as_str).collect();
            let text = render(&pipeline::warnings(&checked, &before), &sources);
            if program
                .stmts
                .iter()
                .any(|s| matches!(s.kind, StmtKind::Minimize(_)))
            {
                // What this input's `minimize` trains stays trained for later inputs.
                let untrained = tl_check::lint::untrained_implicit_params(&checked, &before);
                for (t, d) in checked.tensors.iter().enumerate() {
                    let implicit = matches!(d.def, tl_check::Definition::ImplicitParam);
                    if implicit && !untrained.contains(&t) && !self.trained.contains(&d.name) {
                        self.trained.push(d.name.clone());
                    }
                }
            }
            text
        } else {
            String::new()
        };
        if !runs_commands {
            return (String::new(), String::new(), false);
        }
        let backend = tl_backend::cpu::CpuBackend::new();
        let mut out = String::new();
        let mut err = warnings;
        let mut summary = TrainSummary::default();
        let result =
            Engine::new(&checked, &plan, &backend, RunOptions::default()).and_then(|mut engine| {
                engine.set_learned_values(&self.learned)?;
                let r = engine.run(&mut |a| out.push_str(&a.to_human()), &mut summary);
                for w in &engine.warnings {
                    err.push_str(&report::render_to_string(w, &sources));
                }
                // What was learned, also up to an interrupt or an error, stays learned.
                if let Ok(values) = engine.learned_values() {
                    self.learned = values;
                }
                r
            });
        out = summary.lines + &out;
        if let Err(e) = result {
            err.push_str(&report::render_to_string(&e.to_diagnostic(), &sources));
        }
        (out, err, false)
    }
}

fn render(diags: &[tl_syntax::Diagnostic], sources: &SourceMap) -> String {
    diags
        .iter()
        .map(|d| report::render_to_string(d, sources))
        .collect()
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
        assert!(
            err.contains("Error") && err.contains("<input 6>:1:"),
            "{err}"
        );
    }

    #[test]
    fn minimize_trains_once_and_later_inputs_see_what_it_learned() {
        let mut s = Session::default();
        for line in [
            "X = [1, 2, 3]",
            "T = [2, 4, 6]",
            "param W = 0",
            "Y[e] = W X[e]",
            "Loss = (Y[e] - T[e])^2",
        ] {
            let (out, err, _) = s.handle(line);
            assert_eq!((out.as_str(), err.as_str()), ("", ""), "{line}");
        }
        let (out, err, _) = s.handle("minimize Loss with sgd(lr=0.01) for 300 steps");
        assert_eq!(err, "");
        assert!(out.starts_with("minimize Loss: 300 of 300 steps"), "{out}");
        let (out, _, _) = s.handle("W?");
        let w: f64 = out
            .lines()
            .nth(1)
            .unwrap_or("")
            .trim()
            .parse()
            .unwrap_or(0.0);
        assert!((w - 2.0).abs() < 1e-3, "{out}");
        // A query does not train again, and a new definition keeps what was learned.
        let (again, _, _) = s.handle("W?");
        assert_eq!(again, out);
        s.handle("Z[e] = Y[e] + 1");
        let (out, _, _) = s.handle("Z?");
        assert!(out.contains("[3, 5, 7]"), "{out}");
        // An error names the input that caused it.
        let (_, err, _) = s.handle("minimize Nope with sgd(lr=1) for 2 steps");
        assert!(err.contains("<input 11>:1:1"), "{err}");
    }
}
