//! Checks a parsed Tensor Logic program and produces a [`CheckedProgram`]: names resolved,
//! data loaded, every axis sized and typed (symbolic or integer domain), relations told apart
//! from real tensors, implicit parameters found, and derived tensors stratified.
//!
//! The passes: `collect` (tensors, ranks, data) → `resolve`/`statements` (equations, rules,
//! variables joined with axes in a union-find) → `finish` (extents settled, domains built) →
//! `strata` (dependency order) → `integer` (exact counts) → `commands`.
#![deny(missing_docs)]
// Library code reports failures as errors; only tests may unwrap.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod collect;
mod commands;
pub mod data;
pub mod error;
mod finish;
pub mod inputs;
pub mod integer;
pub mod learn;
pub mod lint;
pub mod loops;
pub mod loss_kind;
mod place;
pub mod program;
mod resolve;
mod statements;
pub mod strata;
mod unify;
mod virtual_index;
pub mod weighted;

pub use error::CheckError;
pub use inputs::{Input, Inputs};
pub use loops::{Loop, LoopTensor, StepEquation};
pub use program::*;

use collect::Checker;
use finish::SymbolFixer;
use tl_syntax::{ast, SourceMap};

/// Checks a program. On failure returns every error found (checking continues past the first
/// where it can).
pub fn check(
    program: &ast::Program,
    sources: &SourceMap,
) -> Result<CheckedProgram, Vec<CheckError>> {
    check_with(program, sources, &Inputs::default())
}

/// [`check`], with the data of some tensors given from outside the program ([`inputs`]).
pub fn check_with(
    program: &ast::Program,
    sources: &SourceMap,
    inputs: &Inputs,
) -> Result<CheckedProgram, Vec<CheckError>> {
    let mut ck = Checker::new(sources);
    ck.apply_inputs(inputs);
    ck.collect(program);
    let rewritten = weighted::rewrite(program, &ck.weighted);
    let program = rewritten.as_ref().unwrap_or(program);
    let resolved = ck.resolve_all(program);
    if let Err(e) = ck.settle(&resolved) {
        ck.errors.push(e);
    }
    if !ck.errors.is_empty() {
        return Err(ck.errors);
    }
    let domains = ck.domains(&resolved);
    name_unsized_steps(&mut ck, &resolved);
    let fixer = SymbolFixer { domains: &domains };
    let mut tensors = fixer.tensors(&mut ck);
    let mut equations = Vec::new();
    let mut steps = Vec::new();
    for (p, step) in resolved.equations.into_iter().zip(resolved.step_vars) {
        let eq = fixer.equation(&mut ck, p);
        match step {
            Some(var) => steps.push(loops::StepEquation { equation: eq, var }),
            None => {
                tensors[eq.lhs].equations.push(equations.len());
                equations.push(eq);
            }
        }
    }
    let starts = ck
        .drafts
        .iter()
        .enumerate()
        .filter(|(_, d)| ck.virtuals.contains_key(&d.name))
        .filter_map(|(t, d)| match &d.source {
            collect::Source::Data(h, _) => Some((t, h.clone())),
            _ => None,
        })
        .collect();
    let names: Vec<String> = tensors.iter().map(|t| t.name.clone()).collect();
    let ranks: Vec<usize> = tensors.iter().map(|t| t.axes.len()).collect();
    let loops = loops::build_loops(steps, starts, &names, &ranks).unwrap_or_else(|e| {
        ck.errors.extend(e);
        Vec::new()
    });
    let mut rules = Vec::new();
    for p in resolved.rules {
        let rule = fixer.rule(&mut ck, p);
        tensors[rule.head].rules.push(rules.len());
        rules.push(rule);
    }
    let commands = ck.commands(program, &domains);
    for (t, decl) in tensors.iter().enumerate() {
        if matches!(decl.def, Definition::ImplicitParam)
            && decl.axes.is_empty()
            && ck.drafts[t].rank.is_none()
        {
            ck.errors.push(CheckError::Undefined {
                tensor: decl.name.clone(),
                span: decl.span,
            });
        }
    }
    let mut checked = CheckedProgram {
        tensors,
        domains: domains.list,
        equations,
        rules,
        strata: Vec::new(),
        commands,
        loops,
    };
    match strata::stratify(&checked) {
        Ok(s) => {
            checked.strata = s;
            ck.errors.extend(loops::check_loop_strata(&checked));
            integer::mark_integers(&mut checked);
        }
        Err(e) => ck.errors.push(e),
    }
    if ck.errors.is_empty() {
        Ok(checked)
    } else {
        Err(ck.errors)
    }
}

/// Says "the number of steps" where the size of a step variable is unknown.
fn name_unsized_steps(ck: &mut Checker, resolved: &statements::Resolved) {
    for (p, step) in resolved.equations.iter().zip(&resolved.step_vars) {
        let Some(v) = *step else { continue };
        let (Some(name), Some(&span)) = (p.scope.names.get(v), p.scope.spans.get(v)) else {
            continue;
        };
        for e in ck.errors.iter_mut() {
            if matches!(e, CheckError::UnsizedIndex { index, span: s } if index == name && *s == span)
            {
                *e = CheckError::StepsUnknown {
                    var: name.clone(),
                    span,
                };
            }
        }
    }
}
