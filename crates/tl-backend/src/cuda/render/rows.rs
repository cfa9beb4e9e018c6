//! The row walk ([`Walk::Rows`]): for each row along the middle axis of `[outer, len,
//! inner]`, a warp (rows up to [`WARP_ROW_MAX`]) or a block computes the row's values,
//! reduces them (a later reduction may read an earlier one, as a variance reads its mean),
//! and stores the outputs at every element of the row. Softmax, layer norm and their
//! hand-written forms are all this walk. A row short enough is kept in registers, so the
//! inputs are read once; longer rows are read again by each pass (from the cache, mostly).

use super::elements::four_stores;
use super::*;
use crate::cuda::codegen::{store, BLOCK};

/// Rows up to this long are walked by one warp each (shuffles, no block barriers); longer
/// ones by a whole block.
pub(crate) const WARP_ROW_MAX: usize = 4096;

/// Registers per lane a warp may spend keeping a row's values.
const CACHE_REGISTERS: usize = 32;

/// What a row walk computes: per element of a row, `values` (expressions over the inputs,
/// read by the reductions and outputs as `x0…`); then `reductions` along the row, reduction
/// `r` read as `x{values + r}` by the reductions after it and by the outputs. Walk words:
/// `[len, inner, the step along the row of each strided input]`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RowWalk {
    /// Each element's values, over the inputs.
    pub values: Vec<MapExpr>,
    /// Each reduction's expression and how it combines.
    pub reductions: Vec<(MapExpr, ReduceOp)>,
    /// A block per row instead of a warp.
    pub block: bool,
    /// Elements per lane kept in registers (a warp walk only; 0: none).
    pub cached: usize,
    /// Kept rows are contiguous (`inner` = 1, `len` a multiple of four, aligned) and move four
    /// elements per lane with wide accesses.
    pub wide: bool,
}

/// Elements per lane a warp keeps of a row of `len` elements with `values` values each, or 0
/// when the row is too long for that.
pub(crate) fn row_cache(len: usize, values: usize) -> usize {
    [1, 2, 4, 8, 16, 32]
        .into_iter()
        .find(|&k| 32 * k >= len)
        .filter(|&k| k * values.max(1) <= CACHE_REGISTERS)
        .unwrap_or(0)
}

/// The identity of a row reduction (in `real`) and how it combines two values.
fn row_fold(op: ReduceOp) -> (&'static str, fn(&str, &str) -> String) {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => ("(real)0", |a, b| format!("{a} + {b}")),
        ReduceOp::Max => ("-__int_as_float(0x7f800000)", |a, b| {
            format!("fmaxf({a}, {b})")
        }),
        ReduceOp::Min => ("__int_as_float(0x7f800000)", |a, b| {
            format!("fminf({a}, {b})")
        }),
    }
}

impl Spec {
    /// [`Walk::Rows`].
    pub(super) fn rows_body(&self, w: &RowWalk) -> String {
        let code = self.code();
        let values = w.values.len();
        let cached = if w.block { 0 } else { w.cached };
        let wide = w.wide && cached >= 4;
        let mut body = self.kernel_head();
        let at = self.walk_at();
        let _ = writeln!(
            body,
            "  const long long len = m.v[{at}];\n  const long long inner = m.v[{}];\n  const long long rows = n / len;",
            at + 1
        );
        let strided = (0..self.inputs.len()).filter(|&j| self.inputs[j].1 == Access::Strided);
        for (q, j) in strided.enumerate() {
            let _ = writeln!(body, "  const long long st{j} = m.v[{}];", at + 2 + q);
        }
        let (first, step, lane, lanes) = if w.block {
            body.push_str(&format!("  __shared__ real sh[{BLOCK}];\n"));
            (
                "(long long)blockIdx.x".to_string(),
                "(long long)gridDim.x".to_string(),
                "(long long)threadIdx.x",
                "(long long)blockDim.x",
            )
        } else {
            (
                format!("(long long)blockIdx.x * ({BLOCK} / 32) + threadIdx.x / 32"),
                format!("(long long)gridDim.x * ({BLOCK} / 32)"),
                "(long long)(threadIdx.x & 31)",
                "32",
            )
        };
        let _ = writeln!(
            body,
            "  for (long long q = {first}; q < rows; q += {step}) {{\n    const long long base = (q / inner) * len * inner + (q % inner);"
        );
        self.offsets(&mut body, "    ", "base", "ob");
        // The values at element `j` of the row, from the inputs.
        let computed = |pad: &str| {
            let mut s = format!("{pad}const long long i = base + j * inner;\n");
            self.loads(&mut s, pad, &|k| format!("const real l{k}"), true, &|k| {
                format!("ob{k} + j * st{k}")
            });
            for (v, c) in code.values.iter().enumerate() {
                let _ = writeln!(s, "{pad}const real x{v} = {c};");
            }
            s
        };
        // The values at element `j`, kept or computed.
        let kept = |pad: &str, at: &str| {
            (0..values)
                .map(|v| format!("{pad}const real x{v} = val{v}[{at}];\n"))
                .collect::<String>()
        };
        // `work` at every element of the row (which sees `j` and the values `x…`).
        let each = |work: &str| {
            if cached > 0 {
                let index = if wide {
                    "4LL * (threadIdx.x & 31) + 128LL * (u >> 2) + (u & 3)"
                } else {
                    "(long long)(threadIdx.x & 31) + 32LL * u"
                };
                format!(
                    "#pragma unroll\n    for (int u = 0; u < {cached}; ++u) {{\n      const long long j = {index};\n      if (j < len) {{\n{}{work}      }}\n    }}\n",
                    kept("        ", "u")
                )
            } else {
                format!(
                    "    for (long long j = {lane}; j < len; j += {lanes}) {{\n{}{work}    }}\n",
                    computed("      ")
                )
            }
        };
        if cached > 0 {
            for v in 0..values {
                let _ = writeln!(body, "    real val{v}[{cached}];");
            }
            if wide {
                let _ = writeln!(
                    body,
                    "#pragma unroll\n    for (int g = 0; g < {}; ++g) {{\n      const long long j0 = 4LL * (threadIdx.x & 31) + 128LL * g;\n      if (j0 < len) {{\n        const long long i0 = base + j0;",
                    cached / 4
                );
                body.push_str(&self.four_loads("        ", "ld", &|k, u| {
                    format!("ob{k} + (j0 + {u}) * st{k}")
                }));
                body.push_str("#pragma unroll\n        for (int w = 0; w < 4; ++w) {\n");
                for k in 0..self.inputs.len() {
                    let _ = writeln!(body, "          const real l{k} = ld{k}[w];");
                }
                for (v, c) in code.values.iter().enumerate() {
                    let _ = writeln!(body, "          val{v}[4 * g + w] = {c};");
                }
                body.push_str("        }\n      }\n    }\n");
            } else {
                let keep: String = (0..values)
                    .map(|v| format!("        val{v}[u] = x{v};\n"))
                    .collect();
                let _ = write!(
                    body,
                    "#pragma unroll\n    for (int u = 0; u < {cached}; ++u) {{\n      const long long j = (long long)(threadIdx.x & 31) + 32LL * u;\n      if (j < len) {{\n{}{keep}      }}\n    }}\n",
                    computed("        ")
                );
            }
        }
        for (r, ((_, op), c)) in w.reductions.iter().zip(&code.reductions).enumerate() {
            let (identity, fold) = row_fold(*op);
            let pad = if cached > 0 { "        " } else { "      " };
            let _ = writeln!(body, "    real acc{r} = {identity};");
            body.push_str(&each(&format!(
                "{pad}acc{r} = {};\n",
                fold(&format!("acc{r}"), &format!("({c})"))
            )));
            if w.block {
                let _ = writeln!(
                    body,
                    "    sh[threadIdx.x] = acc{r};\n    __syncthreads();\n    for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {{\n      if (threadIdx.x < s) sh[threadIdx.x] = {};\n      __syncthreads();\n    }}\n    acc{r} = sh[0];\n    __syncthreads();",
                    fold("sh[threadIdx.x]", "sh[threadIdx.x + s]")
                );
            } else {
                let _ = writeln!(
                    body,
                    "    for (int o = 16; o > 0; o >>= 1) acc{r} = {};",
                    fold(
                        &format!("acc{r}"),
                        &format!("__shfl_xor_sync(0xffffffffu, acc{r}, o)")
                    )
                );
            }
            let mean = if *op == ReduceOp::Mean {
                " / (real)len"
            } else {
                ""
            };
            let _ = writeln!(body, "    const real x{} = acc{r}{mean};", values + r);
        }
        if wide {
            let _ = writeln!(
                body,
                "#pragma unroll\n    for (int g = 0; g < {}; ++g) {{\n      const long long j0 = 4LL * (threadIdx.x & 31) + 128LL * g;\n      if (j0 < len) {{",
                cached / 4
            );
            for o in 0..self.outs.len() {
                let _ = writeln!(body, "        real y{o}[4];");
            }
            body.push_str("#pragma unroll\n        for (int w = 0; w < 4; ++w) {\n");
            body.push_str(&kept("          ", "4 * g + w"));
            for (o, c) in code.outs.iter().enumerate() {
                let _ = writeln!(body, "          y{o}[w] = {c};");
            }
            body.push_str("        }\n");
            for (o, (_, d)) in self.outs.iter().enumerate() {
                body.push_str(&four_stores(
                    *d,
                    "        ",
                    &format!("out{o} + base + j0"),
                    &|u| format!("y{o}[{u}]"),
                ));
            }
            body.push_str("      }\n    }\n");
        } else {
            let pad = if cached > 0 { "        " } else { "      " };
            let stores: String = self
                .outs
                .iter()
                .zip(&code.outs)
                .enumerate()
                .map(|(o, ((_, d), c))| {
                    format!("{pad}out{o}[base + j * inner] = {};\n", store(*d, c))
                })
                .collect();
            body.push_str(&each(&stores));
        }
        body.push_str("  }\n}\n");
        body
    }
}
