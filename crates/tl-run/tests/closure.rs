//! Transitive closures computed by repeated squaring (the dense path a GPU takes) and by the
//! tuple engine (the CPU's) agree with a breadth-first search, for right- and left-linear and
//! doubly recursive rules, on random graphs with cycles and isolated nodes.

use std::collections::BTreeSet;
use tl_backend::cpu::CpuBackend;
use tl_backend::Backend;
use tl_run::{Engine, RunOptions};
use tl_syntax::SourceMap;

/// Pairs (x, y) of node names with a path of one or more edges from x to y.
fn reachable(n: usize, edges: &[(usize, usize)]) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for s in 0..n {
        let mut seen = vec![false; n];
        let mut stack: Vec<usize> = edges.iter().filter(|e| e.0 == s).map(|e| e.1).collect();
        while let Some(v) = stack.pop() {
            if !seen[v] {
                seen[v] = true;
                out.insert((format!("V{s}"), format!("V{v}")));
                stack.extend(edges.iter().filter(|e| e.0 == v).map(|e| e.1));
            }
        }
    }
    out
}

/// The pairs of `R` after running `text`, by node name; `dense` plans relations as a GPU does
/// (dense, squared).
fn closure_of(text: &str, dense: bool) -> BTreeSet<(String, String)> {
    let mut sources = SourceMap::new();
    let (parsed, diags) =
        tl_syntax::load_source("<test>", text, &mut sources, std::path::Path::new("."));
    assert!(diags.is_empty(), "{diags:?}");
    let checked = tl_check::check(&parsed, &sources).expect("checks");
    let options = tl_plan::PlanOptions {
        dense_rules: dense,
        ..Default::default()
    };
    let plan = tl_plan::plan_with(&checked, options).expect("plans");
    let r = checked.tensor_named("R").expect("R");
    let stratum = checked
        .strata
        .iter()
        .find(|s| s.tensors.contains(&r))
        .expect("a stratum");
    assert_eq!(
        plan.storage[r] == tl_plan::Storage::Dense,
        dense,
        "dense exactly when planned so"
    );
    assert!(
        !dense || tl_plan::closure::closure_of(&checked, stratum).is_some(),
        "squaring applies"
    );
    let backend = CpuBackend::new();
    let mut engine = Engine::new(&checked, &plan, &backend, RunOptions::default()).expect("runs");
    engine.evaluate_all().expect("evaluates");
    let value = engine.dense(r, checked.tensors[r].span).expect("dense");
    let host = backend.download(&value).expect("downloads");
    let axes = &checked.tensors[r].axes;
    let (from, to) = (&checked.domains[axes[0]], &checked.domains[axes[1]]);
    let width = host.shape[1];
    host.data
        .to_f64()
        .iter()
        .enumerate()
        .filter(|(_, &x)| x > 0.0)
        .map(|(k, _)| {
            (
                from.symbols[k / width].clone(),
                to.symbols[k % width].clone(),
            )
        })
        .collect()
}

#[test]
fn closures_match_breadth_first_search() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |m: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % m as u64) as usize
    };
    for (n, m) in [(1, 1), (7, 5), (40, 45), (90, 200)] {
        let edges: Vec<(usize, usize)> = (0..m).map(|_| (next(n), next(n))).collect();
        let facts: String = edges
            .iter()
            .map(|(a, b)| format!("E(V{a}, V{b})\n"))
            .collect();
        let want = reachable(n, &edges);
        for step in ["R(x, z) <- R(x, y), E(y, z)", "R(x, z) <- E(x, y), R(y, z)"] {
            let text = format!("{facts}R(x, y) <- E(x, y)\n{step}\n");
            for dense in [true, false] {
                assert_eq!(
                    closure_of(&text, dense),
                    want,
                    "{n} nodes, {m} edges, {step}, dense {dense}"
                );
            }
        }
        let doubly = format!("{facts}R(x, y) <- E(x, y)\nR(x, z) <- R(x, y), R(y, z)\n");
        assert_eq!(
            closure_of(&doubly, false),
            want,
            "{n} nodes, doubly recursive"
        );
    }
}
