//! The front-to-back pipeline shared by `run`, `check` and the REPL: parse → check → plan,
//! collecting every diagnostic along the way.

use tl_check::CheckedProgram;
use tl_plan::ProgramPlan;
use tl_syntax::{ast, Diagnostic, Severity, ToDiagnostic};

/// A program ready to run, or the diagnostics that stop it.
pub fn compile(
    program: &ast::Program,
    mut diags: Vec<Diagnostic>,
    sources: &tl_syntax::SourceMap,
) -> Result<(CheckedProgram, ProgramPlan), Vec<Diagnostic>> {
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(diags);
    }
    let checked = match tl_check::check(program, sources) {
        Ok(c) => c,
        Err(errors) => {
            diags.extend(errors.iter().map(ToDiagnostic::to_diagnostic));
            return Err(diags);
        }
    };
    match tl_plan::plan(&checked) {
        Ok(plan) => Ok((checked, plan)),
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
