//! The fold walk ([`Walk::Fold`]): an expression's values reduced along rows (or columns)
//! without being stored, one result per row. Stored tensors are folded the same way, as the
//! expression `Input(0)` over one contiguous input.

use super::*;
use crate::cuda::codegen::{store, BLOCK};

/// How a fold lays its work out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum FoldLayout {
    /// One thread folds each row of `[rows, r]` (short rows).
    PerThread,
    /// One warp folds each chunk of a row of `[rows, r]` (rows up to a few thousand).
    Warp,
    /// One block folds each chunk of a row of `[rows, r]` (long rows).
    Block,
    /// One thread folds each chunk of a column of `[r, cols]`: the reduced axes lead, so
    /// neighbouring threads read neighbouring elements.
    Column,
}

/// How a fold accumulates: the accumulator's type (f64 for sums and means), its start value,
/// how two values combine, and the result from the accumulator `a` (a mean divides by the
/// variable `count`).
pub(super) struct FoldCode {
    pub(super) acc: &'static str,
    pub(super) init: &'static str,
    comb: &'static str,
    pub(super) finish: &'static str,
}

impl FoldCode {
    pub(super) fn new(op: ReduceOp) -> Self {
        let (acc, init, comb) = match op {
            ReduceOp::Sum | ReduceOp::Mean => ("double", "0.0", "(A) + (B)"),
            ReduceOp::Max => ("real", "(-__int_as_float(0x7f800000))", "fmaxf(A, B)"),
            ReduceOp::Min => ("real", "__int_as_float(0x7f800000)", "fminf(A, B)"),
        };
        let finish = match op {
            ReduceOp::Mean => "(real)(a / (double)count)",
            _ => "(real)(a)",
        };
        FoldCode {
            acc,
            init,
            comb,
            finish,
        }
    }

    /// The code combining `a` and `b`.
    pub(super) fn combine(&self, a: &str, b: &str) -> String {
        self.comb.replace('A', a).replace('B', b)
    }
}

impl Spec {
    /// A fold of one stored contiguous array of `storage` (the expression `Input(0)`) into
    /// results of `real`.
    pub(crate) fn stored_fold(
        op: ReduceOp,
        real: Real,
        storage: DType,
        layout: FoldLayout,
    ) -> Spec {
        Spec {
            outs: vec![(MapExpr::Input(0), real.dtype())],
            inputs: vec![(storage, Access::Contiguous)],
            real,
            rank: 1,
            walk: Walk::Fold { op, layout },
        }
    }

    /// [`Walk::Fold`] of the one output's expression.
    pub(super) fn fold_body(&self, op: ReduceOp, layout: FoldLayout) -> String {
        let fold = FoldCode::new(op);
        let (acc, init) = (fold.acc, fold.init);
        let finish = store(self.outs[0].1, fold.finish);
        let mut body = self.kernel_head();
        let w = self.walk_at();
        let _ = writeln!(
            body,
            "  const long long rows = m.v[{w}];\n  const long long r = m.v[{}];\n  const long long len = m.v[{}];\n  const long long chunks = m.v[{}];\n  const long long count = m.v[{}];\n  (void)count;",
            w + 1,
            w + 2,
            w + 3,
            w + 4
        );
        // Folds element `i` (an expression of `jj`, the position along the row or column)
        // into `a`.
        let step = |pad: &str, i: &str| {
            let mut s = format!("{pad}const long long i = {i};\n");
            self.read_inputs(&mut s, pad, &|j| format!("const real x{j}"), true);
            let v = &self.code().outs[0];
            let _ = writeln!(
                s,
                "{pad}a = {};",
                fold.combine("a", &format!("({acc})({v})"))
            );
            s
        };
        let row_chunk = "    const long long row = q / chunks;\n    const long long start = (q % chunks) * len;\n    const long long end = start + len < r ? start + len : r;\n";
        let by_row = step("      ", "row * r + jj");
        match layout {
            FoldLayout::PerThread => {
                let _ = write!(
                    body,
                    "  const long long step = (long long)gridDim.x * blockDim.x;\n  for (long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x; q < rows; q += step) {{\n{row_chunk}    {acc} a = {init};\n    for (long long jj = start; jj < end; ++jj) {{\n{by_row}    }}\n    out0[q] = {finish};\n  }}\n}}\n"
                );
            }
            FoldLayout::Warp => {
                let _ = write!(
                    body,
                    "  const long long lane = threadIdx.x & 31;\n  for (long long q = (long long)blockIdx.x * ({BLOCK} / 32) + threadIdx.x / 32; q < rows; q += (long long)gridDim.x * ({BLOCK} / 32)) {{\n{row_chunk}    {acc} a = {init};\n    for (long long jj = start + lane; jj < end; jj += 32) {{\n{by_row}    }}\n    for (int o = 16; o > 0; o >>= 1) a = {};\n    if (lane == 0) out0[q] = {finish};\n  }}\n}}\n",
                    fold.combine("a", "__shfl_xor_sync(0xffffffffu, a, o)")
                );
            }
            FoldLayout::Block => {
                let _ = write!(
                    body,
                    "  __shared__ {acc} sh[{BLOCK}];\n  for (long long q = blockIdx.x; q < rows; q += gridDim.x) {{\n{row_chunk}    {acc} a = {init};\n    for (long long jj = start + threadIdx.x; jj < end; jj += blockDim.x) {{\n{by_row}    }}\n    sh[threadIdx.x] = a;\n    __syncthreads();\n    for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {{\n      if (threadIdx.x < s) sh[threadIdx.x] = {};\n      __syncthreads();\n    }}\n    if (threadIdx.x == 0) {{ a = sh[0]; out0[q] = {finish}; }}\n    __syncthreads();\n  }}\n}}\n",
                    fold.combine("sh[threadIdx.x]", "sh[threadIdx.x + s]")
                );
            }
            FoldLayout::Column => {
                let by_column = step("      ", "jj * cols + col");
                let _ = write!(
                    body,
                    "  const long long cols = rows / chunks;\n  const long long step = (long long)gridDim.x * blockDim.x;\n  for (long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x; q < rows; q += step) {{\n    const long long col = q % cols;\n    const long long start = (q / cols) * len;\n    const long long end = start + len < r ? start + len : r;\n    {acc} a = {init};\n    for (long long jj = start; jj < end; ++jj) {{\n{by_column}    }}\n    out0[q] = {finish};\n  }}\n}}\n"
                );
            }
        }
        body
    }
}
