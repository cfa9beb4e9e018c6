//! Checks a parsed Tensor Logic program and produces a [`CheckedProgram`]: names resolved,
//! data loaded, every axis sized and typed (symbolic or integer domain), relations told apart
//! from real tensors, implicit parameters found, and derived tensors stratified.
//!
//! The passes: `collect` (tensors, ranks, data) → `resolve`/`statements` (equations, rules,
//! variables joined with axes in a union-find) → `finish` (extents settled, domains built) →
//! `strata` (dependency order) → `integer` (exact counts) → `commands`.
#![deny(missing_docs)]

mod collect;
mod commands;
pub mod data;
pub mod error;
mod finish;
pub mod integer;
pub mod learn;
pub mod lint;
mod place;
pub mod program;
mod resolve;
mod statements;
pub mod strata;
mod unify;

pub use error::CheckError;
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
    let mut ck = Checker::new(sources);
    ck.collect(program);
    let resolved = ck.resolve_all(program);
    if let Err(e) = ck.settle(&resolved) {
        ck.errors.push(e);
    }
    if !ck.errors.is_empty() {
        return Err(ck.errors);
    }
    let domains = ck.domains(&resolved);
    let fixer = SymbolFixer { domains: &domains };
    let mut tensors = fixer.tensors(&mut ck);
    let mut equations = Vec::new();
    for p in resolved.equations {
        let eq = fixer.equation(&mut ck, p);
        tensors[eq.lhs].equations.push(equations.len());
        equations.push(eq);
    }
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
    };
    match strata::stratify(&checked) {
        Ok(s) => {
            checked.strata = s;
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
