//! Differential property test of the tuple engine: random strata of rules (recursive, mutually
//! recursive, with negation of lower relations, comparisons and constants) over small random
//! relations give the same fixpoint as a naive evaluator that tries every assignment of every
//! rule's variables until nothing changes — with the recursive relations held as bits, as
//! rows (over wide domains) and as sorted tuples.

use proptest::prelude::*;
use std::collections::BTreeSet;
use tl_relation::{evaluate_stratum, Compare, Comparison, Limits, Literal, Relation, Rule, Term};

/// Slots 0..3 are inputs (arities 2, 2, 1), slots 3..6 are heads (arities 2, 2, 1).
const ARITY: [usize; 6] = [2, 2, 1, 2, 2, 1];
const DOMAIN: u32 = 5;
const VARS: usize = 4;

fn term() -> impl Strategy<Value = Term> {
    prop_oneof![
        6 => (0..VARS).prop_map(Term::Var),
        1 => (0..DOMAIN).prop_map(Term::Const),
    ]
}

fn literal(heads: bool) -> impl Strategy<Value = Literal> {
    let slots = if heads { 0..6usize } else { 0..3usize };
    (slots, prop::collection::vec(term(), 2), any::<bool>()).prop_map(|(slot, args, neg)| {
        Literal {
            slot,
            args: args[..ARITY[slot]].to_vec(),
            // Only inputs may be negated (heads are in the stratum being evaluated).
            negated: neg && slot < 3,
        }
    })
}

fn comparison() -> impl Strategy<Value = Comparison> {
    (
        prop_oneof![
            Just(Compare::Ne),
            Just(Compare::Lt),
            Just(Compare::Le),
            Just(Compare::Eq),
            Just(Compare::Gt),
            Just(Compare::Ge),
        ],
        term(),
        term(),
    )
        .prop_map(|(op, lhs, rhs)| Comparison { op, lhs, rhs })
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        3..6usize,
        prop::collection::vec(term(), 2),
        prop::collection::vec(literal(true), 1..4),
        prop::collection::vec(comparison(), 0..2),
    )
        .prop_map(|(head, args, body, comparisons)| Rule {
            head,
            head_args: args[..ARITY[head]].to_vec(),
            body,
            comparisons,
            var_extents: vec![DOMAIN; VARS],
        })
}

/// A rule whose body is a path of binary atoms (the shape the engine walks specially).
fn path_rule() -> impl Strategy<Value = Rule> {
    (
        3..5usize,
        prop::collection::vec(prop_oneof![0..2usize, 3..5usize], 2..4),
        any::<bool>(),
    )
        .prop_map(|(head, slots, wide)| {
            let k = slots.len();
            // Variables 0 = x, 1 = y, then 2.. for the inner path points.
            let point = |i: usize| {
                if i == 0 {
                    0
                } else if i == k {
                    1
                } else {
                    i + 1
                }
            };
            let body = slots
                .iter()
                .enumerate()
                .map(|(i, &slot)| Literal {
                    slot,
                    args: if i % 2 == 0 {
                        vec![Term::Var(point(i)), Term::Var(point(i + 1))]
                    } else {
                        vec![Term::Var(point(i + 1)), Term::Var(point(i))]
                    },
                    negated: false,
                })
                .collect();
            Rule {
                head,
                head_args: vec![Term::Var(0), Term::Var(1)],
                body,
                comparisons: vec![],
                var_extents: vec![if wide { 70_000 } else { DOMAIN }; k + 1],
            }
        })
}

fn relation(arity: usize) -> impl Strategy<Value = Relation> {
    prop::collection::vec(0..DOMAIN, 0..(arity * 14))
        .prop_map(move |values| Relation::from_flat(arity, values))
}

fn value(t: Term, assignment: &[u32]) -> u32 {
    match t {
        Term::Var(v) => assignment[v],
        Term::Const(c) => c,
    }
}

/// The least fixpoint by trying every assignment of every rule until nothing is added.
fn naive(rules: &[Rule], inputs: &[Relation]) -> Vec<BTreeSet<Vec<u32>>> {
    let mut rels: Vec<BTreeSet<Vec<u32>>> = (0..6)
        .map(|s| {
            inputs
                .get(s)
                .map(|r| r.iter().map(<[u32]>::to_vec).collect())
                .unwrap_or_default()
        })
        .collect();
    loop {
        let mut changed = false;
        for rule in rules {
            let vars = rule.var_extents.len();
            let total = (DOMAIN as usize).pow(vars as u32);
            for code in 0..total {
                let assignment: Vec<u32> = (0..vars)
                    .map(|k| ((code / (DOMAIN as usize).pow(k as u32)) % DOMAIN as usize) as u32)
                    .collect();
                let body = rule.body.iter().all(|l| {
                    let t: Vec<u32> = l.args.iter().map(|&a| value(a, &assignment)).collect();
                    rels[l.slot].contains(&t) != l.negated
                });
                let cmps = rule.comparisons.iter().all(|c| {
                    c.op.holds(&value(c.lhs, &assignment), &value(c.rhs, &assignment))
                });
                if body && cmps {
                    let t: Vec<u32> = rule
                        .head_args
                        .iter()
                        .map(|&a| value(a, &assignment))
                        .collect();
                    changed |= rels[rule.head].insert(t);
                }
            }
        }
        if !changed {
            return rels;
        }
    }
}

fn check(rules: &[Rule], inputs: &[Relation]) -> Result<(), TestCaseError> {
    let want = naive(rules, inputs);
    // Heads growing in place (bits or rows), and as sorted tuples.
    for in_place in [true, false] {
        let mut slots: Vec<Relation> = inputs.to_vec();
        slots.extend(ARITY[3..].iter().map(|&a| Relation::empty(a)));
        let limits = Limits {
            in_place,
            ..Limits::default()
        };
        evaluate_stratum(rules, &mut slots, &limits)
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        for head in 3..6 {
            let got: BTreeSet<Vec<u32>> = slots[head].iter().map(<[u32]>::to_vec).collect();
            prop_assert_eq!(&got, &want[head], "slot {} in place {}", head, in_place);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_strata_match_naive_evaluation(
        rules in prop::collection::vec(rule(), 1..5),
        e in relation(2), f in relation(2), g in relation(1),
    ) {
        check(&rules, &[e, f, g])?;
    }

    #[test]
    fn path_rules_match_naive_evaluation(
        paths in prop::collection::vec(path_rule(), 1..4),
        base in prop::collection::vec(rule(), 0..2),
        e in relation(2), f in relation(2), g in relation(1),
    ) {
        let rules: Vec<Rule> = paths.into_iter().chain(base).collect();
        check(&rules, &[e, f, g])?;
    }
}
