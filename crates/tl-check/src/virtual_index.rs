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

/// The tensors some equation writes at a virtual index, each with the number of its loop:
/// tensors that read each other at steps share a loop (and so its number of steps).
pub fn virtual_tensors(program: &ast::Program) -> HashMap<String, usize> {
    let mut names: Vec<&str> = Vec::new();
    let mut steps: Vec<&ast::Equation> = Vec::new();
    for stmt in &program.stmts {
        if let StmtKind::Equation(eq) = &stmt.kind {
            if eq
                .lhs
                .indices
                .iter()
                .flatten()
                .any(|ix| is_virtual(&ix.arg))
            {
                steps.push(eq);
                if !names.contains(&eq.lhs.name.name.as_str()) {
                    names.push(eq.lhs.name.name.as_str());
                }
            }
        }
    }
    let mut parent: Vec<usize> = (0..names.len()).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for eq in steps {
        let mut reads = Vec::new();
        stepped_reads(&eq.rhs, &mut reads);
        let Some(a) = names.iter().position(|n| *n == eq.lhs.name.name) else {
            continue;
        };
        for name in reads {
            if let Some(b) = names.iter().position(|n| *n == name) {
                let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
                parent[ra] = rb;
            }
        }
    }
    (0..names.len())
        .map(|k| (names[k].to_string(), root(&mut parent, k)))
        .collect()
}

/// The names of the tensors an expression reads at a step.
fn stepped_reads<'e>(e: &'e ast::Expr, out: &mut Vec<&'e str>) {
    match &e.kind {
        ast::ExprKind::Access(a) if a.args.iter().any(is_virtual) => out.push(&a.name.name),
        ast::ExprKind::Access(_) | ast::ExprKind::Number(_) | ast::ExprKind::Index(_) => {}
        ast::ExprKind::Call { args, .. } => args.iter().for_each(|x| stepped_reads(x, out)),
        ast::ExprKind::Neg(x) => stepped_reads(x, out),
        ast::ExprKind::Binary { lhs, rhs, .. } => {
            stepped_reads(lhs, out);
            stepped_reads(rhs, out);
        }
    }
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
    /// The union-find node of the number of steps of loop `group`, made on first use: every
    /// step variable of the loop's equations is joined with it, so that one use that sizes
    /// the step (`U[t, j]`) sizes all of them.
    pub fn loop_steps(&mut self, group: usize) -> crate::unify::Node {
        if let Some(&node) = self.loop_step_nodes.get(&group) {
            return node;
        }
        let node = self
            .uf
            .node("the steps of a loop".to_string(), String::new());
        self.loop_step_nodes.insert(group, node);
        node
    }

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
                hint: format!(
                    "read `{name}` at `*{step_name}`, the step the left-hand side writes"
                ),
            });
        }
        let tensor = self.by_name.get(name).copied().unwrap_or(0);
        let axes = self.drafts[tensor].axes.clone();
        let found = a.args.len() - 1;
        if let Some((rank, first)) = self.drafts[tensor].rank.filter(|(r, _)| *r != found) {
            return Err(CheckError::RankMismatch {
                tensor: name.clone(),
                expected: rank,
                found,
                span: a.span,
                first,
            });
        }
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
        let (program, _) = tl_syntax::parse(
            "H[i, *t+1] = C[i, *t+1]\nC[i, *t+1] = C[i, *t] + H[i, *t]\nR[*t+1] = R[*t]",
            FileId(0),
        );
        let found = virtual_tensors(&program);
        assert_eq!(found.get("H"), found.get("C"));
        assert_ne!(found.get("H"), found.get("R"));
    }
}
