//! Sparse relations read by dense equations: a sum over a relation's tuples is counted once
//! per relation value and kept, so a repeated evaluation uploads nothing (which is what lets a
//! GPU record and replay it).

use tl_backend::cpu::CpuBackend;
use tl_backend::{Backend, DType};
use tl_run::{Engine, RunOptions};
use tl_syntax::SourceMap;

#[test]
fn a_sum_over_a_sparse_relation_is_counted_once() {
    let text = "Edge(A, B)\nEdge(A, C)\nEdge(B, C)\nDeg[x] = Edge(x, y)\nDeg?\n";
    let mut sources = SourceMap::new();
    let (parsed, diags) =
        tl_syntax::load_source("<test>", text, &mut sources, std::path::Path::new("."));
    assert!(diags.is_empty(), "{diags:?}");
    let checked = tl_check::check(&parsed, &sources).expect("checks");
    // Every relation with more than one cell is stored as tuples.
    let plan = tl_plan::plan_with(
        &checked,
        tl_plan::PlanOptions {
            dense_cells: 1,
            ..Default::default()
        },
    )
    .expect("plans");
    let edge = checked.tensor_named("Edge").expect("Edge");
    assert_eq!(plan.storage[edge], tl_plan::Storage::Sparse);
    let backend = CpuBackend::new();
    let options = RunOptions {
        dtype: DType::F64,
        ..RunOptions::default()
    };
    let mut engine = Engine::new(&checked, &plan, &backend, options).expect("starts");
    let deg = checked.tensor_named("Deg").expect("Deg");
    let mut counted = Vec::new();
    for _ in 0..2 {
        engine.reset_derived();
        engine.evaluate_all().expect("evaluates");
        let value = engine.dense(deg, tl_syntax::Span::default()).expect("Deg");
        let host = backend.download(&value).expect("downloads").data.to_f64();
        assert_eq!(host, vec![2.0, 1.0], "out-degrees of A and B");
        assert_eq!(engine.sparse_counts.len(), 1, "one cached count");
        counted.extend(
            engine
                .sparse_counts
                .values()
                .map(|(_, t)| match &t.storage {
                    tl_backend::Storage::Host(data) => std::sync::Arc::as_ptr(data),
                    tl_backend::Storage::Device(_) => std::ptr::null(),
                }),
        );
    }
    assert!(
        !counted[0].is_null() && counted[0] == counted[1],
        "the second evaluation reuses the first one's counts"
    );
}
