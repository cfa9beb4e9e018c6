//! Strata of rules on the GPU's path engine agree with the CPU's tuple engine: closures in all
//! three forms, same generation, longer paths, mutual recursion, heads with facts, comparisons,
//! and the counts read from device relations, on random graphs with cycles and isolated
//! nodes. A stratum the device cannot run (negation) runs on the CPU with a warning. On a machine
//! without a usable CUDA device every test is reported as ignored in the test summary.

use std::collections::BTreeMap;
use tl_backend::cpu::CpuBackend;
use tl_backend::Backend;
use tl_backend::Calls;
use tl_run::{Engine, RunOptions, Value};
use tl_syntax::SourceMap;

mod common;

/// Every relation's sorted tuples and every integer tensor's values after running `text` on
/// `backend`, with the warnings' codes, and which relations stayed on the device.
#[allow(clippy::type_complexity)]
fn outcome(
    text: &str,
    backend: &dyn Backend,
) -> (BTreeMap<String, Vec<u32>>, Vec<String>, Vec<String>) {
    let mut sources = SourceMap::new();
    let (parsed, diags) =
        tl_syntax::load_source("<test>", text, &mut sources, std::path::Path::new("."));
    assert!(diags.is_empty(), "{diags:?}");
    let checked = tl_check::check(&parsed, &sources).expect("checks");
    let options = tl_plan::PlanOptions::for_accelerator(backend.is_accelerator());
    let plan = tl_plan::plan_with(&checked, options).expect("plans");
    let mut engine = Engine::new(&checked, &plan, backend, RunOptions::default()).expect("runs");
    engine.evaluate_all().expect("evaluates");
    let mut out = BTreeMap::new();
    let mut on_device = Vec::new();
    for (t, decl) in checked.tensors.iter().enumerate() {
        let span = decl.span;
        if matches!(engine.values[t], Some(Value::Device(_))) {
            on_device.push(decl.name.clone());
        }
        let values: Vec<u32> = match decl.kind {
            tl_check::TensorKind::Relation => {
                engine.tuples(t, span).expect("tuples").values().to_vec()
            }
            tl_check::TensorKind::Integer => {
                let v = engine.dense(t, span).expect("value");
                let host = backend.download(&v).expect("downloads");
                host.data.to_f64().iter().map(|&x| x as u32).collect()
            }
            tl_check::TensorKind::Real => continue,
        };
        out.insert(decl.name.clone(), values);
    }
    let warnings = engine.warnings.iter().map(|w| w.code.to_string()).collect();
    (out, warnings, on_device)
}

fn graph(seed: u64, n: u64, m: usize, name: &str) -> String {
    let mut s = seed | 1;
    let mut next = |k: u64| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s % k
    };
    (0..m)
        .map(|_| format!("{name}({}, {})\n", next(n), next(n)))
        .collect()
}

const PROGRAMS: &[(&str, &str)] = &[
    (
        "left-linear closure",
        "R(x, y) <- E(x, y)\nR(x, z) <- R(x, y), E(y, z)\nN = R(x, y)\nDeg[x] = R(x, y)\n",
    ),
    (
        "right-linear closure",
        "R(x, y) <- E(x, y)\nR(x, z) <- E(x, y), R(y, z)\nN = R(x, y)\n",
    ),
    (
        "doubly recursive closure",
        "R(x, y) <- E(x, y)\nR(x, z) <- R(x, y), R(y, z)\nN = R(x, y)\n",
    ),
    (
        "same generation",
        "SG(x, y) <- E(p, x), E(p, y), x != y\nSG(x, y) <- E(a, x), SG(a, b), E(b, y)\nN = SG(x, y)\nM[x] max= SG(x, y)\n",
    ),
    (
        "paths of two relations, and a head with facts",
        "Q(0, 1)\nQ(x, y) <- F(y, x)\nQ(x, y) <- Q(x, a), F(a, b), E(b, y), x < y\nP(x, y) <- E(x, a), F(a, b), E(b, y)\n",
    ),
    (
        "mutual recursion",
        "A(x, y) <- E(x, y)\nB(x, y) <- A(x, a), F(a, y)\nA(x, y) <- B(x, a), E(a, y)\n",
    ),
];

fn device_strata_match_the_tuple_engine() {
    let Some(gpu) = common::cuda() else {
        return;
    };
    let cpu = CpuBackend::new();
    for (k, (n, m)) in [
        (1, 1),
        (7, 5),
        (40, 45),
        (130, 300),
        (300, 290),
        (200, 1200),
        (2000, 2600),
    ]
    .into_iter()
    .enumerate()
    {
        let facts = graph(11 + k as u64, n, m, "E") + &graph(97 + k as u64, n, m / 2 + 1, "F");
        for (what, rules) in PROGRAMS {
            let text = format!("{facts}{rules}");
            let (want, _, _) = outcome(&text, &cpu);
            let (got, warnings, on_device) = outcome(&text, &gpu);
            assert_eq!(got, want, "{what}, {n} nodes, {m} edges");
            assert!(warnings.is_empty(), "{what}: {warnings:?}");
            assert!(!on_device.is_empty(), "{what}: nothing ran on the device");
        }
    }
}

/// A closure the device builds from the condensed graph: a component with more successors
/// than one thread gathers, a long chain (many levels), cycles, self-loops, and nodes that
/// reach nothing, in the closure's three forms.
fn closures_by_components_match_the_tuple_engine() {
    let Some(gpu) = common::cuda() else {
        return;
    };
    let cpu = CpuBackend::new();
    let mut edges: Vec<(u32, u32)> = (1..100).map(|i| (0, i)).collect();
    edges.extend((1..400).map(|i| (i, i + 1)));
    edges.extend([
        (150, 151),
        (151, 150),
        (160, 160),
        (470, 0),
        (480, 480),
        (401, 480),
    ]);
    let facts: String = edges
        .iter()
        .map(|(a, b)| format!("E({a}, {b})\n"))
        .collect();
    for (what, rules) in &PROGRAMS[..3] {
        let text = format!("{facts}{rules}");
        let (want, _, _) = outcome(&text, &cpu);
        let (got, warnings, on_device) = outcome(&text, &gpu);
        assert_eq!(got, want, "{what}");
        assert!(warnings.is_empty(), "{what}: {warnings:?}");
        assert!(
            on_device.contains(&"R".to_string()),
            "{what}: {on_device:?}"
        );
    }
}

fn a_stratum_the_device_cannot_run_says_so_and_runs_on_the_cpu() {
    let Some(gpu) = common::cuda() else {
        return;
    };
    let cpu = CpuBackend::new();
    let text = format!(
        "{}R(x, y) <- E(x, y), not F(x, y)\nR(x, z) <- R(x, y), E(y, z)\n",
        graph(5, 50, 80, "E") + &graph(6, 50, 40, "F")
    );
    let (want, _, _) = outcome(&text, &cpu);
    let (got, warnings, _) = outcome(&text, &gpu);
    assert_eq!(got, want);
    assert_eq!(warnings, vec!["TL0313".to_string()]);
}

/// Runs the tests, each ignored (visibly, in the summary) where no CUDA device is usable.
fn main() {
    common::run_gpu_tests(&[
        (
            "device_strata_match_the_tuple_engine",
            device_strata_match_the_tuple_engine,
        ),
        (
            "closures_by_components_match_the_tuple_engine",
            closures_by_components_match_the_tuple_engine,
        ),
        (
            "a_stratum_the_device_cannot_run_says_so_and_runs_on_the_cpu",
            a_stratum_the_device_cannot_run_says_so_and_runs_on_the_cpu,
        ),
    ]);
}
