//! Which relations are stored dense: those a real equation reads, up to 2^22 cells on the CPU
//! and 2^28 on a GPU; relations only rules, counts and queries read are left to the tuple
//! engine (or a GPU's path engine) at every size.

use tl_plan::{PlanOptions, Storage};

/// Plans `text` with `options` and returns the storage of relation `E`.
fn storage_of_e(text: &str, options: PlanOptions) -> Storage {
    let mut sources = tl_syntax::SourceMap::new();
    let (program, diags) =
        tl_syntax::load_source("t.tl", text, &mut sources, std::path::Path::new("."));
    assert!(diags.is_empty(), "{diags:?}");
    let checked = match tl_check::check(&program, &sources) {
        Ok(c) => c,
        Err(e) => panic!("{e:?}"),
    };
    let plan = match tl_plan::plan_with(&checked, options) {
        Ok(p) => p,
        Err(e) => panic!("{e:?}"),
    };
    assert_eq!(plan.options, options);
    let e = checked.tensor_named("E").unwrap_or_else(|| panic!("no E"));
    plan.storage[e]
}

#[test]
fn a_gpu_keeps_larger_relations_dense() {
    // 3000 × 3000 = 9 M cells: above the CPU's 2^22, below a GPU's 2^28; read by a real
    // equation, so dense only on the GPU.
    let mid = "E(0, 0)\nE(2999, 2999)\nW[y] = 0.5\nH[x] = E(x, y) W[y]\n";
    assert_eq!(storage_of_e(mid, PlanOptions::default()), Storage::Sparse);
    assert_eq!(
        storage_of_e(mid, PlanOptions::for_accelerator(false)),
        Storage::Sparse
    );
    assert_eq!(
        storage_of_e(mid, PlanOptions::for_accelerator(true)),
        Storage::Dense
    );
    let rules = "E(0, 0)\nE(2999, 2999)\nR(x, y) <- E(x, y)\n";
    assert_eq!(
        storage_of_e(rules, PlanOptions::for_accelerator(true)),
        Storage::Sparse
    );
    // 20000 × 20000 = 4 × 10^8 cells: sparse on both.
    let big = "E(0, 0)\nE(19999, 19999)\nR(x, y) <- E(x, y)\n";
    assert_eq!(
        storage_of_e(big, PlanOptions::for_accelerator(true)),
        Storage::Sparse
    );
    // Small relations read only by rules are tuples everywhere.
    let small = "E(0, 0)\nE(9, 9)\nR(x, y) <- E(x, y)\n";
    assert_eq!(storage_of_e(small, PlanOptions::default()), Storage::Sparse);
    assert_eq!(
        storage_of_e(small, PlanOptions::for_accelerator(true)),
        Storage::Sparse
    );
    // A small relation that a real equation reads is dense on the CPU too; a count is not
    // such a reader.
    let read = "E(0, 0)\nE(9, 9)\nW[y] = 0.5\nH[x] = E(x, y) W[y]\n";
    assert_eq!(storage_of_e(read, PlanOptions::default()), Storage::Dense);
    let counted = "E(0, 0)\nE(9, 9)\nN = E(x, y)\n";
    assert_eq!(
        storage_of_e(counted, PlanOptions::default()),
        Storage::Sparse
    );
}
