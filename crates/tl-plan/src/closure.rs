//! Recognises transitive closures, which can be computed by repeated squaring.
//!
//! The stratum `R(x, y) <- E(x, y)` with `R(x, z) <- R(x, y), E(y, z)` (or the left-linear
//! `R(x, z) <- E(x, y), R(y, z)`), with nothing else defining `R`, has the least fixpoint
//! `E⁺`, the pairs joined by a path of one or more edges. Semi-naive evaluation finds it in one
//! round per path length; the dense engine can instead square, `R ← R ∨ R·R`, which doubles
//! the path lengths covered each round and so needs only about log₂ of the longest shortest
//! path rounds, each one matrix product on the tensor cores.

use tl_check::{CheckedProgram, Rule, Stratum, TensorId, TensorKind, Term};

/// A stratum that is the transitive closure of one relation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closure {
    /// The closed relation `R`.
    pub head: TensorId,
    /// The relation it closes, `E`.
    pub base: TensorId,
}

/// The variable of a term, if it is one.
fn var(t: &Term) -> Option<usize> {
    match t {
        Term::Var(v) => Some(*v),
        _ => None,
    }
}

/// The variables of a binary atom or head, if both arguments are variables.
fn pair(args: &[Term]) -> Option<(usize, usize)> {
    match args {
        [a, b] => Some((var(a)?, var(b)?)),
        _ => None,
    }
}

/// `R(x, y) <- E(x, y)`: the base relation.
fn exit_rule(rule: &Rule, head: TensorId) -> Option<TensorId> {
    let [atom] = rule.body.as_slice() else {
        return None;
    };
    let (x, y) = pair(&rule.head_args)?;
    (!atom.negated
        && atom.tensor != head
        && rule.comparisons.is_empty()
        && x != y
        && pair(&atom.args)? == (x, y))
        .then_some(atom.tensor)
}

/// `R(x, z) <- R(x, y), E(y, z)` or `R(x, z) <- E(x, y), R(y, z)` for the given `E`.
fn linear_step(rule: &Rule, head: TensorId, base: TensorId) -> bool {
    let [a, b] = rule.body.as_slice() else {
        return false;
    };
    let (Some((x, z)), Some(pa), Some(pb)) = (pair(&rule.head_args), pair(&a.args), pair(&b.args))
    else {
        return false;
    };
    let chained = pa.0 == x && pa.1 == pb.0 && pb.1 == z && x != z && pa.1 != x && pa.1 != z;
    let tensors = (a.tensor, b.tensor);
    !a.negated
        && !b.negated
        && rule.comparisons.is_empty()
        && chained
        && (tensors == (head, base) || tensors == (base, head))
}

/// The closure a stratum computes, when it is one (see the module note).
pub fn closure_of(p: &CheckedProgram, s: &Stratum) -> Option<Closure> {
    let [head] = s.tensors.as_slice() else {
        return None;
    };
    let decl = &p.tensors[*head];
    if !s.recursive
        || decl.kind != TensorKind::Relation
        || !decl.equations.is_empty()
        || !decl.facts.is_empty()
        || decl.rules.len() != 2
    {
        return None;
    }
    let (r0, r1) = (&p.rules[decl.rules[0]], &p.rules[decl.rules[1]]);
    let (exit, step) = match (exit_rule(r0, *head), exit_rule(r1, *head)) {
        (Some(e), None) => (e, r1),
        (None, Some(e)) => (e, r0),
        _ => return None,
    };
    let same_shape = p.shape(exit) == p.shape(*head);
    (same_shape && linear_step(step, *head, exit)).then_some(Closure {
        head: *head,
        base: exit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closures(src: &str) -> Vec<Option<(String, String)>> {
        let mut sources = tl_syntax::SourceMap::new();
        let (program, diags) =
            tl_syntax::load_source("t.tl", src, &mut sources, std::path::Path::new("."));
        assert!(diags.is_empty(), "{diags:?}");
        let p = match tl_check::check(&program, &sources) {
            Ok(p) => p,
            Err(e) => panic!("{e:?}"),
        };
        let name = |t: TensorId| p.tensors[t].name.clone();
        p.strata
            .iter()
            .filter(|s| s.recursive)
            .map(|s| closure_of(&p, s).map(|c| (name(c.head), name(c.base))))
            .collect()
    }

    const EDGES: &str = "Edge(A, B)\nEdge(B, C)\nEdge(C, A)\n";

    #[test]
    fn right_and_left_linear_closures_are_recognised() {
        let right = format!("{EDGES}R(x, y) <- Edge(x, y)\nR(x, z) <- R(x, y), Edge(y, z)\n");
        let left = format!("{EDGES}R(x, y) <- Edge(x, y)\nR(x, z) <- Edge(x, y), R(y, z)\n");
        let want = vec![Some(("R".to_string(), "Edge".to_string()))];
        assert_eq!(closures(&right), want);
        assert_eq!(closures(&left), want);
    }

    #[test]
    fn other_recursions_are_not_closures() {
        for rules in [
            // Same generation: not a closure of one relation.
            "R(x, y) <- Edge(x, y)\nR(x, z) <- R(x, y), Edge(z, y)\n",
            // A comparison changes the meaning.
            "R(x, y) <- Edge(x, y)\nR(x, z) <- R(x, y), Edge(y, z), x != z\n",
            // An extra rule.
            "R(x, y) <- Edge(x, y)\nR(x, y) <- Edge(y, x)\nR(x, z) <- R(x, y), Edge(y, z)\n",
            // The exit rule flips the arguments.
            "R(x, y) <- Edge(y, x)\nR(x, z) <- R(x, y), Edge(y, z)\n",
            // A fact of the head.
            "R(A, A)\nR(x, y) <- Edge(x, y)\nR(x, z) <- R(x, y), Edge(y, z)\n",
        ] {
            let got = closures(&format!("{EDGES}{rules}"));
            assert!(got.iter().all(Option::is_none), "{rules}: {got:?}");
        }
    }
}
