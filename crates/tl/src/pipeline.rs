//! The front-to-back pipeline shared by `run`, `check` and the REPL: parse → check → plan,
//! collecting every diagnostic along the way.

use tl_backend::Calls;
use tl_check::CheckedProgram;
use tl_plan::ProgramPlan;
use tl_syntax::{ast, Diagnostic, Severity, ToDiagnostic};

/// A program ready to run, or the diagnostics that stop it; bound demands are evaluated
/// goal-directed where that pays ([`tl_plan::demand`]).
pub fn compile(
    program: &ast::Program,
    diags: Vec<Diagnostic>,
    sources: &tl_syntax::SourceMap,
) -> Result<(CheckedProgram, ProgramPlan), Vec<Diagnostic>> {
    compile_with(program, diags, sources, GoalDirected::Auto).map(|c| (c.checked, c.plan))
}

/// When `tl run` and `tl check` answer bound queries and rule bodies through the demand
/// rewrite (`--goal-directed`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum GoalDirected {
    /// Where the planner estimates it cheaper than computing the relations whole.
    #[default]
    Auto,
    /// Never: every relation is computed whole.
    Off,
    /// Wherever a query or rule body binds an argument of a relation defined by rules.
    Always,
}

impl From<GoalDirected> for tl_plan::demand::Mode {
    fn from(g: GoalDirected) -> Self {
        match g {
            GoalDirected::Auto => tl_plan::demand::Mode::Auto,
            GoalDirected::Off => tl_plan::demand::Mode::Off,
            GoalDirected::Always => tl_plan::demand::Mode::Always,
        }
    }
}

/// A compiled program with what `tl check` shows of it.
pub struct Compiled {
    /// The program that runs (rewritten when `rewrite` is set).
    pub checked: CheckedProgram,
    /// Its plan.
    pub plan: ProgramPlan,
    /// The goal-directed rewrite, when one was applied.
    pub rewrite: Option<tl_plan::demand::Rewrite>,
    /// [`summary`] of the program as written, before the rewrite.
    pub summary: String,
}

/// [`compile`], choosing when the demand rewrite applies.
pub fn compile_with(
    program: &ast::Program,
    diags: Vec<Diagnostic>,
    sources: &tl_syntax::SourceMap,
    goal_directed: GoalDirected,
) -> Result<Compiled, Vec<Diagnostic>> {
    compile_given(
        program,
        diags,
        sources,
        goal_directed,
        &tl_check::Inputs::default(),
    )
}

/// [`compile_with`], with the data of some tensors given from outside the program (a
/// Python caller's arrays and tuples, [`tl_check::inputs`]).
pub fn compile_given(
    program: &ast::Program,
    mut diags: Vec<Diagnostic>,
    sources: &tl_syntax::SourceMap,
    goal_directed: GoalDirected,
    inputs: &tl_check::Inputs,
) -> Result<Compiled, Vec<Diagnostic>> {
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(diags);
    }
    let mut checked = match tl_check::check_with(program, sources, inputs) {
        Ok(c) => c,
        Err(errors) => {
            diags.extend(errors.iter().map(ToDiagnostic::to_diagnostic));
            return Err(diags);
        }
    };
    let summary = summary(&checked);
    let rewrite = tl_plan::demand::rewrite(&mut checked, goal_directed.into());
    match tl_plan::plan(&checked) {
        Ok(plan) => Ok(Compiled {
            checked,
            plan,
            rewrite,
            summary,
        }),
        Err(errors) => {
            diags.extend(errors.iter().map(ToDiagnostic::to_diagnostic));
            Err(diags)
        }
    }
}

/// The warnings about a checked program (an implicit param that nothing trains, …);
/// `trained` names tensors that commands outside it trained already.
pub fn warnings(checked: &CheckedProgram, trained: &[&str]) -> Vec<Diagnostic> {
    tl_check::lint::warnings(checked, trained)
}

/// The plan for the backend a program runs on: re-planned when the backend wants other
/// choices (a GPU keeps larger relations dense, for its matrix units).
pub fn for_backend(
    checked: &CheckedProgram,
    plan: ProgramPlan,
    backend: &dyn tl_backend::Backend,
) -> Result<ProgramPlan, Vec<Diagnostic>> {
    let options = tl_plan::PlanOptions::for_accelerator(backend.is_accelerator());
    if options == plan.options {
        return Ok(plan);
    }
    tl_plan::plan_with(checked, options)
        .map_err(|errors| errors.iter().map(ToDiagnostic::to_diagnostic).collect())
}

/// What `tl check` prints: tensors with kinds and shapes, domains, implicit params, strata.
pub fn summary(p: &CheckedProgram) -> String {
    use tl_check::{Definition, TensorKind};
    let mut out = String::from("tensors:\n");
    let width = p.tensors.iter().map(|t| t.name.len()).max().unwrap_or(0);
    for (id, t) in p.tensors.iter().enumerate() {
        let axes: Vec<String> = t
            .axes
            .iter()
            .map(|&d| {
                let dom = &p.domains[d];
                if dom.is_symbolic() {
                    format!("{}({})", dom.name, dom.extent)
                } else {
                    dom.extent.to_string()
                }
            })
            .collect();
        let kind = match t.kind {
            TensorKind::Relation => "relation",
            TensorKind::Integer => "integer",
            TensorKind::Real => "real",
        };
        let def = match &t.def {
            Definition::Data(_) => "data",
            Definition::External => "data (device)",
            Definition::Tuples(_) => "facts",
            Definition::Param(_) => "param",
            Definition::ImplicitParam => "implicit param (xavier)",
            Definition::Derived => "derived",
        };
        let _ = id;
        out += &format!(
            "  {:<width$}  {:<8}  [{}]  {}\n",
            t.name,
            kind,
            axes.join(", "),
            def
        );
    }
    let symbolic: Vec<_> = p.domains.iter().filter(|d| d.is_symbolic()).collect();
    if !symbolic.is_empty() {
        out += "domains:\n";
        for d in symbolic {
            let shown: Vec<&str> = d.symbols.iter().take(8).map(String::as_str).collect();
            let more = if d.symbols.len() > 8 {
                format!(", … ({} more)", d.symbols.len() - 8)
            } else {
                String::new()
            };
            out += &format!(
                "  {}: {} symbols {{{}{}}}\n",
                d.name,
                d.extent,
                shown.join(", "),
                more
            );
        }
    }
    let implicit: Vec<&str> = p
        .tensors
        .iter()
        .filter(|t| matches!(t.def, Definition::ImplicitParam))
        .map(|t| t.name.as_str())
        .collect();
    if !implicit.is_empty() {
        out += &format!("implicit params: {}\n", implicit.join(", "));
    }
    out += "evaluation order:\n";
    for s in &p.strata {
        let names: Vec<&str> = s
            .tensors
            .iter()
            .map(|&t| p.tensors[t].name.as_str())
            .collect();
        out += &format!(
            "  {}{}\n",
            names.join(", "),
            if s.recursive { "  (recursive)" } else { "" }
        );
    }
    out
}
