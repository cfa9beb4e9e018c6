//! Resolving virtual indices (`*t`): which tensors are written at steps, and reads at a step.
//! A read `S[j, *t+1]` of a tensor written at steps resolves to `S`'s indices followed by the
//! step index `t + 1` (see [`crate::loops`]); anywhere else a `*` is an error saying where it
//! belongs.

use crate::collect::{is_virtual, Checker};
use crate::error::CheckError;
use crate::loops::step_index;
use crate::program::Access;
use crate::resolve::{Hint, Scope};
use std::collections::HashMap;
use tl_syntax::ast::{self, IndexArg, StmtKind};
use tl_syntax::Span;

/// The tensors some equation writes at a virtual index, with where it first does.
pub fn virtual_tensors(program: &ast::Program) -> HashMap<String, Span> {
    let mut out = HashMap::new();
    for stmt in &program.stmts {
        if let StmtKind::Equation(eq) = &stmt.kind {
            let at = eq.lhs.indices.iter().flatten().find(|ix| is_virtual(&ix.arg));
            if let Some(ix) = at {
                out.entry(eq.lhs.name.name.clone())
                    .or_insert_with(|| ix.arg.span());
            }
        }
    }
    out
}

/// The error for a `*` read outside the right-hand side of a step equation.
pub fn outside_a_step(span: Span) -> CheckError {
    CheckError::VirtualMisplaced {
        what: "only an equation that writes a step reads one".into(),
        span,
        hint: "write the left-hand side at a step too (`Y[i, *t+1] = … S[i, *t] …`); after its loop, `S[i]` is its last value".into(),
    }
}

impl Checker<'_> {
    /// Resolves a read with a virtual index, inside a step equation: the tensor's indices,
    /// then the step index.
    pub fn step_access(
        &mut self,
        scope: &mut Scope,
        hints: &mut Vec<Hint>,
        a: &ast::Access,
    ) -> Result<Access, CheckError> {
        let name = &a.name.name;
        let stepped: Vec<&IndexArg> = a.args.iter().filter(|x| is_virtual(x)).collect();
        let Some(IndexArg::Virtual { var, offset, span }) = stepped.first().copied() else {
            return Err(outside_a_step(a.span));
        };
        let Some((step_var, step_name)) = self.step.clone() else {
            return Err(outside_a_step(*span));
        };
        if !self.virtuals.contains_key(name) {
            return Err(CheckError::VirtualMisplaced {
                what: format!("`{name}` has no steps: no equation writes it at a virtual index"),
                span: *span,
                hint: format!(
                    "index it with the step variable: `{name}[{}, …]` reads its row for step {}",
                    var.name, var.name
                ),
            });
        }
        if let Some(second) = stepped.get(1) {
            return Err(CheckError::VirtualMisplaced {
                what: format!("`{name}` is read at two steps at once"),
                span: second.span(),
                hint: "a tensor has one virtual index; write it once".into(),
            });
        }
        if var.name != step_name {
            return Err(CheckError::VirtualMisplaced {
                what: format!("this equation steps over `{step_name}`, not `{}`", var.name),
                span: var.span,
                hint: format!("read `{name}` at `*{step_name}`, the step the left-hand side writes"),
            });
        }
        let tensor = self.by_name.get(name).copied().unwrap_or(0);
        let axes = self.drafts[tensor].axes.clone();
        let mut indices = Vec::new();
        for (arg, &axis) in a.args.iter().filter(|x| !is_virtual(x)).zip(&axes) {
            indices.push(self.index(scope, hints, arg, axis, None)?);
        }
        indices.push(step_index(step_var, *offset));
        Ok(Access {
            tensor,
            indices,
            span: a.span,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tl_syntax::FileId;

    #[test]
    fn tensors_written_at_a_step_are_found_by_name() {
        let (program, errors) = tl_syntax::parse(
            "S[i, *t+1] = S[i, *t] + U[t, i]\nY[i] = S[i]\nU = [[1]]",
            FileId(0),
        );
        assert!(errors.is_empty());
        let found = virtual_tensors(&program);
        assert_eq!(found.keys().collect::<Vec<_>>(), vec!["S"]);
    }
}
