//! Parser tests for virtual indices (`*t`, `*t+1`, `*t-1`) on both sides of an equation.

use super::parse;
use crate::ast::*;
use crate::span::FileId;

/// The virtual indices of a parsed equation: its left-hand side's, then its accesses'.
fn virtual_indices(text: &str) -> Vec<(String, i64)> {
    let (program, errors) = parse(text, FileId(0));
    assert!(
        errors.is_empty(),
        "unexpected errors for {text:?}: {errors:?}"
    );
    let mut out = Vec::new();
    let Some(StmtKind::Equation(eq)) = program.stmts.first().map(|s| &s.kind) else {
        panic!("not an equation: {text:?}");
    };
    let mut push = |a: &IndexArg| {
        if let IndexArg::Virtual { var, offset, .. } = a {
            out.push((var.name.clone(), *offset));
        }
    };
    for ix in eq.lhs.indices.iter().flatten() {
        push(&ix.arg);
    }
    fn walk(e: &Expr, push: &mut dyn FnMut(&IndexArg)) {
        match &e.kind {
            ExprKind::Access(a) => a.args.iter().for_each(&mut *push),
            ExprKind::Call { args, .. } => args.iter().for_each(|x| walk(x, push)),
            ExprKind::Neg(x) => walk(x, push),
            ExprKind::Binary { lhs, rhs, .. } => {
                walk(lhs, push);
                walk(rhs, push);
            }
            ExprKind::Number(_) | ExprKind::Index(_) => {}
        }
    }
    walk(&eq.rhs, &mut push);
    out
}

#[test]
fn the_rnn_of_the_paper_parses() {
    assert_eq!(
        virtual_indices("S[i, *t+1] = tanh(W[i, j] S[j, *t] + V[i, j] U[t, j])"),
        vec![("t".to_string(), 1), ("t".to_string(), 0)]
    );
}

#[test]
fn offsets_may_be_written_either_way_round_and_negative() {
    assert_eq!(
        virtual_indices("F[*t + 2] = F[*1 + t] + F[* t-1]"),
        vec![("t".into(), 2), ("t".into(), 1), ("t".into(), -1)]
    );
}

#[test]
fn a_virtual_index_takes_an_extent_on_the_left() {
    let (program, errors) = parse("C[*t+1: 5] = C[*t] + 1", FileId(0));
    assert!(errors.is_empty(), "{errors:?}");
    let Some(StmtKind::Equation(eq)) = program.stmts.first().map(|s| &s.kind) else {
        panic!("not an equation");
    };
    let first = eq.lhs.indices.as_ref().and_then(|ix| ix.first());
    assert!(matches!(
        first.and_then(|ix| ix.extent.as_ref()),
        Some(ExtentAnn::Size(5, _))
    ));
}

#[test]
fn anything_but_a_step_plus_a_constant_is_tl0014() {
    for text in [
        "S[*2] = A[0]",
        "S[*t*2] = A[0]",
        "S[*t+u] = A[0]",
        "S[i] = S[*(2 - t)]",
    ] {
        let (_, errors) = parse(text, FileId(0));
        assert_eq!(
            errors.first().map(|e| e.code()),
            Some("TL0014"),
            "for {text:?}: {errors:?}"
        );
    }
}
