//! Transitive closures demanded from one end.
//!
//! A closure `R = E⁺` ([`crate::closure`]) may be written right-linear,
//! `R(x, z) <- R(x, y), E(y, z)`, or left-linear, `R(x, z) <- E(x, y), R(y, z)`; both have the
//! same least fixpoint. Demand is cheapest through the form that hands the bound argument on
//! unchanged: asked with its source bound, the right-linear step reads `R(x, y)` with the same
//! `x`, so the demand stays at the sources asked for and the adorned copy is one search from
//! each; the left-linear step would demand `R(y, _)` for every `y` an edge reaches, which is
//! the whole closure of everything reachable. Asked with only its target bound, the
//! left-linear form is the one that hands the target on. So the rewrite adorns whichever form
//! suits the demand, whatever form the program wrote.

use tl_check::{BodyAtom, CheckedProgram, Rule, TensorId, Term, VarInfo};

/// The rules to adorn for `relation` asked with `adornment`: its own, or for a transitive
/// closure the form that keeps demand at the bound end (see the module note).
pub(crate) fn rules_for(p: &CheckedProgram, relation: TensorId, adornment: &[bool]) -> Vec<Rule> {
    let own = || -> Vec<Rule> {
        p.tensors.get(relation).map_or_else(Vec::new, |d| {
            d.rules
                .iter()
                .filter_map(|&r| p.rules.get(r))
                .cloned()
                .collect()
        })
    };
    let right_linear = match adornment {
        [true, _] => true,
        [false, true] => false,
        _ => return own(),
    };
    let closure = p
        .strata
        .iter()
        .find(|s| s.tensors.contains(&relation))
        .and_then(|s| crate::closure::closure_of(p, s));
    match closure {
        Some(c) if c.head == relation => {
            closure_rules(p, relation, c.base, right_linear).unwrap_or_else(own)
        }
        _ => own(),
    }
}

/// `R(x, y) <- E(x, y)` and the step in the asked form, when both axes of `R` share a domain.
fn closure_rules(
    p: &CheckedProgram,
    head: TensorId,
    base: TensorId,
    right_linear: bool,
) -> Option<Vec<Rule>> {
    let decl = p.tensors.get(head)?;
    let &[d0, d1] = decl.axes.as_slice() else {
        return None;
    };
    if d0 != d1 {
        return None;
    }
    let domain = p.domains.get(d0)?;
    let spans: Vec<_> = decl
        .rules
        .iter()
        .filter_map(|&r| p.rules.get(r).map(|r| r.span))
        .collect();
    let &[exit_span, step_span] = spans.as_slice() else {
        return None;
    };
    let var = |name: &str| VarInfo {
        name: name.to_string(),
        domain: d0,
        extent: domain.extent,
    };
    let atom = |tensor, a, b| BodyAtom {
        tensor,
        args: vec![Term::Var(a), Term::Var(b)],
        negated: false,
    };
    let (x, y, z) = (0, 1, 2);
    let exit = Rule {
        head,
        head_args: vec![Term::Var(x), Term::Var(y)],
        body: vec![atom(base, x, y)],
        comparisons: Vec::new(),
        vars: vec![var("x"), var("y")],
        span: exit_span,
    };
    let body = if right_linear {
        vec![atom(head, x, y), atom(base, y, z)]
    } else {
        vec![atom(base, x, y), atom(head, y, z)]
    };
    let step = Rule {
        head,
        head_args: vec![Term::Var(x), Term::Var(z)],
        body,
        comparisons: Vec::new(),
        vars: vec![var("x"), var("y"), var("z")],
        span: step_span,
    };
    Some(vec![exit, step])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demand::tests::checked;

    /// The step rule's body as (tensor name, variable names) pairs.
    fn step_body(p: &CheckedProgram, rules: &[Rule]) -> Vec<(String, Vec<String>)> {
        let step = &rules[1];
        step.body
            .iter()
            .map(|a| {
                let args = a
                    .args
                    .iter()
                    .map(|t| match t {
                        Term::Var(v) => step.vars[*v].name.clone(),
                        other => format!("{other:?}"),
                    })
                    .collect();
                (p.tensors[a.tensor].name.clone(), args)
            })
            .collect()
    }

    #[test]
    fn a_left_linear_closure_is_adorned_right_linear_from_its_source() {
        let p = checked("E(A, B)\nE(B, C)\nR(x, y) <- E(x, y)\nR(x, z) <- E(x, y), R(y, z)\n");
        let r = p.tensor_named("R").unwrap_or(usize::MAX);
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let from_source = rules_for(&p, r, &[true, false]);
        assert_eq!(
            step_body(&p, &from_source),
            vec![
                ("R".to_string(), s(&["x", "y"])),
                ("E".to_string(), s(&["y", "z"]))
            ]
        );
        let to_target = rules_for(&p, r, &[false, true]);
        assert_eq!(
            step_body(&p, &to_target),
            vec![
                ("E".to_string(), s(&["x", "y"])),
                ("R".to_string(), s(&["y", "z"]))
            ]
        );
    }

    #[test]
    fn other_relations_keep_their_rules() {
        let p =
            checked("E(A, B)\nE(B, C)\nR(x, y) <- E(x, y)\nR(x, z) <- R(x, y), E(y, z), x != z\n");
        let r = p.tensor_named("R").unwrap_or(usize::MAX);
        let rules = rules_for(&p, r, &[true, false]);
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1].comparisons.len(), 1);
    }
}
