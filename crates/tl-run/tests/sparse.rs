//! Sparse relations read by dense equations: a sum over a relation's tuples is a scatter onto
//! the result whose index is built once per relation value, so a repeated evaluation uploads
//! nothing (which is what lets a GPU record and replay it).

use std::sync::Arc;
use tl_backend::cpu::CpuBackend;
use tl_backend::{Backend, DType};
use tl_run::{Engine, RunOptions};
use tl_syntax::SourceMap;

#[test]
fn a_sum_over_a_sparse_relation_builds_its_index_once() {
    let text = "Edge(A, B)\nEdge(A, C)\nEdge(B, C)\nDeg[x] = Edge(x, y)\nDeg?\n";
    let mut sources = SourceMap::new();
    let (parsed, diags) =
        tl_syntax::load_source("<test>", text, &mut sources, std::path::Path::new("."));
    assert!(diags.is_empty(), "{diags:?}");
    let checked = tl_check::check(&parsed, &sources).expect("checks");
    // Every relation with more than one cell is stored as tuples.
    let plan =
        tl_plan::plan_with(&checked, tl_plan::PlanOptions { dense_cells: 1 }).expect("plans");
    let edge = checked.tensor_named("Edge").expect("Edge");
    assert_eq!(plan.storage[edge], tl_plan::Storage::Sparse);
    let backend = CpuBackend::new();
    let options = RunOptions {
        dtype: DType::F64,
        ..RunOptions::default()
    };
    let mut engine = Engine::new(&checked, &plan, &backend, options).expect("starts");
    let deg = checked.tensor_named("Deg").expect("Deg");
    let mut indices = Vec::new();
    for _ in 0..2 {
        engine.reset_derived();
        engine.evaluate_all().expect("evaluates");
        let value = engine.dense(deg, tl_syntax::Span::default()).expect("Deg");
        let host = backend.download(&value).expect("downloads").data.to_f64();
        assert_eq!(host, vec![2.0, 1.0], "out-degrees of A and B");
        assert_eq!(engine.sparse_cache.len(), 1, "one cached index");
        indices.extend(
            engine
                .sparse_cache
                .values()
                .map(|(_, scatter)| scatter.clone()),
        );
    }
    assert!(
        Arc::ptr_eq(&indices[0], &indices[1]),
        "the second evaluation reuses the first one's index"
    );
}
