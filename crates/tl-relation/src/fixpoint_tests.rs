//! Unit tests of stratum evaluation: recursion, negation, comparisons, constants, broadcasting.
use super::*;
use crate::rule::{Compare, Comparison, Literal};
use crate::Value;

fn v(i: usize) -> Term {
    Term::Var(i)
}
fn lit(slot: usize, args: Vec<Term>) -> Literal {
    Literal {
        slot,
        args,
        negated: false,
    }
}
fn not(slot: usize, args: Vec<Term>) -> Literal {
    Literal {
        slot,
        args,
        negated: true,
    }
}
fn rule(head: usize, head_args: Vec<Term>, body: Vec<Literal>, extents: Vec<u32>) -> Rule {
    Rule {
        head,
        head_args,
        body,
        comparisons: vec![],
        var_extents: extents,
    }
}
fn pairs(values: &[Value]) -> Relation {
    Relation::from_flat(2, values.to_vec())
}
fn eval(rules: &[Rule], slots: &mut [Relation]) -> FixpointStats {
    match evaluate_stratum(rules, slots, &Limits::default()) {
        Ok(stats) => stats,
        Err(e) => panic!("evaluation failed: {e}"),
    }
}

/// Parent facts: 0→1, 1→2, 2→3, 1→4.
fn parents() -> Relation {
    pairs(&[0, 1, 1, 2, 2, 3, 1, 4])
}

#[test]
fn ancestor_left_linear() {
    // Anc(x, y) <- Par(x, y).  Anc(x, z) <- Anc(x, y), Par(y, z).
    let rules = [
        rule(
            1,
            vec![v(0), v(1)],
            vec![lit(0, vec![v(0), v(1)])],
            vec![5, 5],
        ),
        rule(
            1,
            vec![v(0), v(2)],
            vec![lit(1, vec![v(0), v(1)]), lit(0, vec![v(1), v(2)])],
            vec![5, 5, 5],
        ),
    ];
    let mut slots = vec![parents(), Relation::empty(2)];
    let stats = eval(&rules, &mut slots);
    assert_eq!(
        slots[1],
        pairs(&[0, 1, 0, 2, 0, 3, 0, 4, 1, 2, 1, 3, 1, 4, 2, 3])
    );
    assert_eq!(stats.derived, 8);
}

#[test]
fn ancestor_right_linear_and_nonlinear_agree() {
    let right = rule(
        1,
        vec![v(0), v(2)],
        vec![lit(0, vec![v(0), v(1)]), lit(1, vec![v(1), v(2)])],
        vec![5; 3],
    );
    let nonlinear = rule(
        1,
        vec![v(0), v(2)],
        vec![lit(1, vec![v(0), v(1)]), lit(1, vec![v(1), v(2)])],
        vec![5; 3],
    );
    let base = rule(
        1,
        vec![v(0), v(1)],
        vec![lit(0, vec![v(0), v(1)])],
        vec![5, 5],
    );
    let mut a = vec![parents(), Relation::empty(2)];
    let mut b = vec![parents(), Relation::empty(2)];
    eval(&[base.clone(), right], &mut a);
    eval(&[base, nonlinear], &mut b);
    assert_eq!(a[1], b[1]);
    assert_eq!(a[1].len(), 8);
}

#[test]
fn same_generation() {
    // Sg(x, y) <- Par(p, x), Par(p, y), x != y.  Sg(x, y) <- Par(a, x), Sg(a, b), Par(b, y).
    let mut sibling = rule(
        1,
        vec![v(0), v(1)],
        vec![lit(0, vec![v(2), v(0)]), lit(0, vec![v(2), v(1)])],
        vec![6; 3],
    );
    sibling.comparisons.push(Comparison {
        op: Compare::Ne,
        lhs: v(0),
        rhs: v(1),
    });
    let cousins = rule(
        1,
        vec![v(0), v(1)],
        vec![
            lit(0, vec![v(2), v(0)]),
            lit(1, vec![v(2), v(3)]),
            lit(0, vec![v(3), v(1)]),
        ],
        vec![6; 4],
    );
    // 0 has children 1, 2; 1 has child 3; 2 has child 4; 4 has child 5.
    let mut slots = vec![pairs(&[0, 1, 0, 2, 1, 3, 2, 4, 4, 5]), Relation::empty(2)];
    eval(&[sibling, cousins], &mut slots);
    assert_eq!(slots[1], pairs(&[1, 2, 2, 1, 3, 4, 4, 3]));
}

#[test]
fn negation_across_strata() {
    // Stratum 1: Reach(x) <- Start(x).  Reach(y) <- Reach(x), E(x, y).
    // Stratum 2: Unreached(x) <- not Reach(x)   (x ranges over the domain 0..5).
    let e = pairs(&[0, 1, 1, 2, 3, 4]);
    let mut slots = vec![
        e,
        Relation::from_flat(1, vec![0]),
        Relation::empty(1),
        Relation::empty(1),
    ];
    let s1 = [
        rule(2, vec![v(0)], vec![lit(1, vec![v(0)])], vec![5]),
        rule(
            2,
            vec![v(1)],
            vec![lit(2, vec![v(0)]), lit(0, vec![v(0), v(1)])],
            vec![5, 5],
        ),
    ];
    eval(&s1, &mut slots);
    assert_eq!(slots[2], Relation::from_flat(1, vec![0, 1, 2]));
    let s2 = [rule(3, vec![v(0)], vec![not(2, vec![v(0)])], vec![5])];
    eval(&s2, &mut slots);
    assert_eq!(slots[3], Relation::from_flat(1, vec![3, 4]));
    // Negating a relation of the same stratum is rejected.
    let bad = [rule(
        3,
        vec![v(0)],
        vec![lit(1, vec![v(0)]), not(3, vec![v(0)])],
        vec![5],
    )];
    assert!(matches!(
        evaluate_stratum(&bad, &mut slots, &Limits::default()),
        Err(RelationError::NegationInStratum { .. })
    ));
}

#[test]
fn comparisons_and_constants() {
    // Big(y) <- E(2, y), y > 1.   Pair(x, 7) <- E(x, y), x < y, y = 4.
    let e = pairs(&[2, 0, 2, 3, 2, 4, 1, 4, 5, 4]);
    let mut big = rule(
        1,
        vec![v(0)],
        vec![lit(0, vec![Term::Const(2), v(0)])],
        vec![8],
    );
    big.comparisons.push(Comparison {
        op: Compare::Gt,
        lhs: v(0),
        rhs: Term::Const(1),
    });
    let mut pair = rule(
        2,
        vec![v(0), Term::Const(7)],
        vec![lit(0, vec![v(0), v(1)])],
        vec![8, 8],
    );
    pair.comparisons.push(Comparison {
        op: Compare::Lt,
        lhs: v(0),
        rhs: v(1),
    });
    pair.comparisons.push(Comparison {
        op: Compare::Eq,
        lhs: v(1),
        rhs: Term::Const(4),
    });
    let mut slots = vec![e, Relation::empty(1), Relation::empty(2)];
    eval(&[big, pair], &mut slots);
    assert_eq!(slots[1], Relation::from_flat(1, vec![3, 4]));
    assert_eq!(slots[2], pairs(&[1, 7, 2, 7]));
}

#[test]
fn head_only_variables_range_over_domain() {
    // Row(x, j) <- A(x) (j broadcasts over 0..3).  Same(x, y) <- A(x), y = x.
    let mut slots = vec![
        Relation::from_flat(1, vec![1, 3]),
        Relation::empty(2),
        Relation::empty(2),
    ];
    let row = rule(1, vec![v(0), v(1)], vec![lit(0, vec![v(0)])], vec![4, 3]);
    let mut same = rule(2, vec![v(0), v(1)], vec![lit(0, vec![v(0)])], vec![4, 2]);
    same.comparisons.push(Comparison {
        op: Compare::Eq,
        lhs: v(1),
        rhs: v(0),
    });
    eval(&[row, same], &mut slots);
    assert_eq!(slots[1], pairs(&[1, 0, 1, 1, 1, 2, 3, 0, 3, 1, 3, 2]));
    // y = x binds y directly but stays inside y's domain 0..2.
    assert_eq!(slots[2], pairs(&[1, 1]));
    // No positive literal at all: All(x, y) <- x != y over 0..3.
    let mut all = rule(0, vec![v(0), v(1)], vec![], vec![3, 3]);
    all.comparisons.push(Comparison {
        op: Compare::Ne,
        lhs: v(0),
        rhs: v(1),
    });
    let mut slots = vec![Relation::empty(2)];
    eval(&[all], &mut slots);
    assert_eq!(slots[0].len(), 6);
}

#[test]
fn repeated_variables() {
    // Loop(x) <- E(x, x).  Tri(x) <- E(x, y), E(y, x).
    let e = pairs(&[0, 0, 1, 2, 2, 1, 2, 3, 3, 3]);
    let loops = rule(1, vec![v(0)], vec![lit(0, vec![v(0), v(0)])], vec![4]);
    let back = rule(
        2,
        vec![v(0)],
        vec![lit(0, vec![v(0), v(1)]), lit(0, vec![v(1), v(0)])],
        vec![4, 4],
    );
    let mut slots = vec![e, Relation::empty(1), Relation::empty(1)];
    eval(&[loops, back], &mut slots);
    assert_eq!(slots[1], Relation::from_flat(1, vec![0, 3]));
    assert_eq!(slots[2], Relation::from_flat(1, vec![0, 1, 2, 3]));
}

#[test]
fn errors_for_limits_and_arity() {
    let rules = [
        rule(
            1,
            vec![v(0), v(1)],
            vec![lit(0, vec![v(0), v(1)])],
            vec![5, 5],
        ),
        rule(
            1,
            vec![v(0), v(2)],
            vec![lit(1, vec![v(0), v(1)]), lit(0, vec![v(1), v(2)])],
            vec![5; 3],
        ),
    ];
    let mut slots = vec![parents(), Relation::empty(2)];
    let err = evaluate_stratum(
        &rules,
        &mut slots,
        &Limits {
            max_tuples: 5,
            ..Limits::default()
        },
    );
    assert!(
        matches!(
            err,
            Err(RelationError::TooManyTuples {
                slot: 1,
                limit: 5,
                ..
            })
        ),
        "{err:?}"
    );
    let bad = [rule(
        1,
        vec![v(0)],
        vec![lit(0, vec![v(0), v(1)])],
        vec![5, 5],
    )];
    let err = evaluate_stratum(&bad, &mut slots, &Limits::default());
    assert_eq!(
        err,
        Err(RelationError::ArityMismatch {
            slot: 1,
            expected: 2,
            found: 1
        })
    );
}
