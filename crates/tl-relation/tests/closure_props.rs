//! Differential property tests: on random graphs, the transitive closure computed by the
//! semi-naive evaluator equals a breadth-first-search reference, and the left-linear, right-linear
//! and non-linear formulations agree.

use proptest::prelude::*;
use std::collections::VecDeque;
use tl_relation::{evaluate_stratum, Limits, Literal, Relation, Rule, Term, Value};

fn lit(slot: usize, a: usize, b: usize) -> Literal {
    Literal {
        slot,
        args: vec![Term::Var(a), Term::Var(b)],
        negated: false,
    }
}

/// Closure of slot 0 into slot 1 with the given recursive rule body (variables x=0, y=1, z=2).
fn closure(edges: &Relation, n: u32, recursive: Vec<Literal>) -> Relation {
    let base = Rule {
        head: 1,
        head_args: vec![Term::Var(0), Term::Var(1)],
        body: vec![lit(0, 0, 1)],
        comparisons: vec![],
        var_extents: vec![n, n],
    };
    let step = Rule {
        head: 1,
        head_args: vec![Term::Var(0), Term::Var(2)],
        body: recursive,
        comparisons: vec![],
        var_extents: vec![n; 3],
    };
    let mut slots = vec![edges.clone(), Relation::empty(2)];
    match evaluate_stratum(&[base, step], &mut slots, &Limits::default()) {
        Ok(_) => slots.swap_remove(1),
        Err(e) => panic!("closure failed: {e}"),
    }
}

/// Reachability by one BFS per source (paths of length at least one).
fn bfs_closure(edges: &[(Value, Value)], n: u32) -> Relation {
    let mut adj = vec![Vec::new(); n as usize];
    for &(a, b) in edges {
        adj[a as usize].push(b);
    }
    let mut out = Vec::new();
    for s in 0..n {
        let mut seen = vec![false; n as usize];
        let mut queue: VecDeque<Value> = adj[s as usize].iter().copied().collect();
        while let Some(x) = queue.pop_front() {
            if !std::mem::replace(&mut seen[x as usize], true) {
                out.extend([s, x]);
                queue.extend(adj[x as usize].iter().copied());
            }
        }
    }
    Relation::from_flat(2, out)
}

fn graph() -> impl Strategy<Value = (u32, Vec<(Value, Value)>)> {
    (1u32..60).prop_flat_map(|n| (Just(n), prop::collection::vec((0..n, 0..n), 0..150)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn closure_matches_bfs_and_formulations_agree((n, edges) in graph()) {
        let flat: Vec<Value> = edges.iter().flat_map(|&(a, b)| [a, b]).collect();
        let rel = Relation::from_flat(2, flat);
        let reference = bfs_closure(&edges, n);
        let left = closure(&rel, n, vec![lit(1, 0, 1), lit(0, 1, 2)]);
        let right = closure(&rel, n, vec![lit(0, 0, 1), lit(1, 1, 2)]);
        let nonlinear = closure(&rel, n, vec![lit(1, 0, 1), lit(1, 1, 2)]);
        prop_assert_eq!(&left, &reference);
        prop_assert_eq!(&right, &reference);
        prop_assert_eq!(&nonlinear, &reference);
    }
}
