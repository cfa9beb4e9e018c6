//! Row kernels: reductions along the last or first axis (one row per warp or per block), and
//! softmax and layer norm over rows, with a row cached in registers while it fits.

use super::*;

/// How a generated reduction accumulates: the accumulator's type (f64 for sums and means),
/// its start value, how two values combine, and the result from the accumulator `a` (a mean
/// divides by the variable named `count`).
pub(super) struct FoldCode {
    pub(super) acc: &'static str,
    pub(super) init: &'static str,
    comb: &'static str,
    pub(super) finish: String,
}

impl FoldCode {
    pub(super) fn new(op: ReduceOp, count: &str) -> Self {
        let (acc, init, comb) = match op {
            ReduceOp::Sum | ReduceOp::Mean => ("double", "0.0", "(A) + (B)"),
            ReduceOp::Max => ("real", "(-__int_as_float(0x7f800000))", "fmaxf(A, B)"),
            ReduceOp::Min => ("real", "__int_as_float(0x7f800000)", "fminf(A, B)"),
        };
        let finish = match op {
            ReduceOp::Mean => format!("(real)(a / (double){count})"),
            _ => "(real)(a)".to_string(),
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

/// How a reduction kernel lays its work out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ReduceLayout {
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

/// A reduction of an array stored as `storage`, accumulated in f64 for sums and means and in
/// `real` for max and min, with a result of `real`. `TlMeta = [outputs, r, x, out, len,
/// chunks, count]`: output `q` folds chunk `q % chunks` (rows) or `q / cols` (columns, where
/// `outputs = cols · chunks`) of `len` elements of its row or column of `r`; a mean divides
/// by `count`. With several chunks a second launch combines the partial results.
pub(crate) fn reduce_source(
    op: ReduceOp,
    real: Real,
    storage: DType,
    layout: ReduceLayout,
) -> String {
    let fold = FoldCode::new(op, "count");
    let (acc, init, finish) = (fold.acc, fold.init, &fold.finish);
    let combine = |a: &str, b: &str| fold.combine(a, b);
    let t = c_type(storage);
    let mut s = header(real, 16);
    let mut body = format!(
        "extern \"C\" __global__ void tl_kernel(const TlMeta m) {{\n  const long long rows = m.v[0];\n  const long long r = m.v[1];\n  const {t}* x = (const {t}*)m.v[2];\n  real* out = (real*)m.v[3];\n  const long long len = m.v[4];\n  const long long chunks = m.v[5];\n  const long long count = m.v[6];\n"
    );
    let row_chunk = "    const long long row = q / chunks;\n    const long long start = (q % chunks) * len;\n    const long long end = start + len < r ? start + len : r;\n";
    let fold = |at: &str| combine("a", &format!("({acc}){}", load(storage, at)));
    match layout {
        ReduceLayout::PerThread => {
            let _ = write!(
                body,
                "  const long long step = (long long)gridDim.x * blockDim.x;\n  for (long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x; q < rows; q += step) {{\n{row_chunk}    {acc} a = {init};\n    for (long long j = start; j < end; ++j) a = {};\n    out[q] = {finish};\n  }}\n}}\n",
                fold("x[row * r + j]")
            );
        }
        ReduceLayout::Warp => {
            let _ = write!(
                body,
                "  const long long lane = threadIdx.x & 31;\n  for (long long q = (long long)blockIdx.x * ({BLOCK} / 32) + threadIdx.x / 32; q < rows; q += (long long)gridDim.x * ({BLOCK} / 32)) {{\n{row_chunk}    {acc} a = {init};\n    for (long long j = start + lane; j < end; j += 32) a = {};\n    for (int o = 16; o > 0; o >>= 1) a = {};\n    if (lane == 0) out[q] = {finish};\n  }}\n}}\n",
                fold("x[row * r + j]"),
                combine("a", "__shfl_xor_sync(0xffffffffu, a, o)")
            );
        }
        ReduceLayout::Block => {
            let _ = write!(
                body,
                "  __shared__ {acc} sh[{BLOCK}];\n  for (long long q = blockIdx.x; q < rows; q += gridDim.x) {{\n{row_chunk}    {acc} a = {init};\n    for (long long j = start + threadIdx.x; j < end; j += blockDim.x) a = {};\n    sh[threadIdx.x] = a;\n    __syncthreads();\n    for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {{\n      if (threadIdx.x < s) sh[threadIdx.x] = {};\n      __syncthreads();\n    }}\n    if (threadIdx.x == 0) {{ a = sh[0]; out[q] = {finish}; }}\n    __syncthreads();\n  }}\n}}\n",
                fold("x[row * r + j]"),
                combine("sh[threadIdx.x]", "sh[threadIdx.x + s]")
            );
        }
        ReduceLayout::Column => {
            let _ = write!(
                body,
                "  const long long cols = rows / chunks;\n  const long long step = (long long)gridDim.x * blockDim.x;\n  for (long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x; q < rows; q += step) {{\n    const long long col = q % cols;\n    const long long start = (q / cols) * len;\n    const long long end = start + len < r ? start + len : r;\n    {acc} a = {init};\n    for (long long i = start; i < end; ++i) a = {};\n    out[q] = {finish};\n  }}\n}}\n",
                fold("x[i * cols + col]")
            );
        }
    }
    s.push_str(&dialect(&body, real));
    s
}

/// The row reductions a normalisation kernel uses: warp shuffles, or a block's shared memory.
pub(super) fn row_reducers(warp: bool) -> &'static str {
    if warp {
        r#"
__device__ real tl_row_sum(real v, real* sh) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ real tl_row_max(real v, real* sh) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
"#
    } else {
        r#"
__device__ real tl_row_sum(real v, real* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  real r = sh[0];
  __syncthreads();
  return r;
}
__device__ real tl_row_max(real v, real* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = fmaxf(sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  real r = sh[0];
  __syncthreads();
  return r;
}
"#
    }
}

/// The body of a normalisation over the rows of `[outer, len, inner]` (the variables `rows`,
/// `len`, `inner` and `sh` in scope): for each row `q` (first element `base`, after the code
/// `row`) a warp (`warp`) or a block walks the row's elements `i = base + j * inner`, `value`
/// giving the code that defines `const real v` at `i`, and the result goes to `out0[i]`
/// stored as `storage`.
pub(super) fn normalize_rows(
    func: NormFn,
    storage: DType,
    warp: bool,
    cached: usize,
    row: &str,
    value: &str,
    wide: Option<&str>,
) -> String {
    if warp && cached > 0 {
        return normalize_cached_rows(func, storage, cached, row, value, wide);
    }
    let (first_row, row_step, lane, lanes) = if warp {
        (
            format!("(long long)blockIdx.x * ({BLOCK} / 32) + threadIdx.x / 32"),
            format!("(long long)gridDim.x * ({BLOCK} / 32)"),
            "(threadIdx.x & 31)",
            "32",
        )
    } else {
        (
            "(long long)blockIdx.x".to_string(),
            "(long long)gridDim.x".to_string(),
            "threadIdx.x",
            "blockDim.x",
        )
    };
    let each = |inner: &str| {
        format!(
            "    for (long long j = {lane}; j < len; j += {lanes}) {{\n      const long long i = base + j * inner;\n{value}{inner}    }}\n"
        )
    };
    let work = match func {
        NormFn::Softmax => format!(
            "    real mx = -__int_as_float(0x7f800000);\n{}    mx = tl_row_max(mx, sh);\n    real sum = 0.0f;\n{}    sum = tl_row_sum(sum, sh);\n    const real inv = 1.0f / sum;\n{}",
            each("      mx = fmaxf(mx, v);\n"),
            each("      sum += expf(v - mx);\n"),
            each(&format!("      out0[i] = {};\n", store(storage, "expf(v - mx) * inv")))
        ),
        NormFn::LayerNorm => format!(
            "    real sum = 0.0f;\n{}    const real mean = tl_row_sum(sum, sh) / (real)len;\n    real var = 0.0f;\n{}    var = tl_row_sum(var, sh) / (real)len;\n    const real inv = 1.0f / sqrtf(var + {eps});\n{}",
            each("      sum += v;\n"),
            each("      { const real d = v - mean; var += d * d; }\n"),
            each(&format!("      out0[i] = {};\n", store(storage, "(v - mean) * inv"))),
            eps = layer_norm_eps(),
        ),
    };
    format!(
        "  __shared__ real sh[{BLOCK}];\n  for (long long q = {first_row}; q < rows; q += {row_step}) {{\n    const long long base = (q / inner) * len * inner + (q % inner);\n{row}{work}  }}\n}}\n"
    )
}

/// [`normalize_rows`] for rows of at most `32·cached` elements: each lane computes its
/// `cached` values once, keeps them in registers, and reduces and writes from there (one read
/// of the inputs and one `expf` per element, not three reads and two).
pub(super) fn normalize_cached_rows(
    func: NormFn,
    storage: DType,
    cached: usize,
    row: &str,
    value: &str,
    wide: Option<&str>,
) -> String {
    // Element `j` of the row that value `u` of a lane holds: lane-strided, or (`wide`) four
    // consecutive elements per lane, so that contiguous rows move in 8- and 16-byte accesses.
    let index = if wide.is_some() {
        "4LL * (threadIdx.x & 31) + 128LL * (u >> 2) + (u & 3)"
    } else {
        "(long long)(threadIdx.x & 31) + 32LL * u"
    };
    let each = |code: &str| {
        format!(
            "#pragma unroll\n    for (int u = 0; u < {cached}; ++u) {{\n      const long long j = {index};\n      if (j < len) {{\n{code}      }}\n    }}\n"
        )
    };
    let load = match wide {
        Some(code) => code.to_string(),
        None => each(&format!(
            "        const long long i = base + j * inner;\n{value}        vals[u] = v;\n"
        )),
    };
    let result = match func {
        NormFn::Softmax => "vals[u] * inv",
        NormFn::LayerNorm => "(vals[u] - mean) * inv",
    };
    let write = match wide {
        Some(_) => wide_store(storage, cached, result),
        None => each(&format!(
            "        out0[base + j * inner] = {};\n",
            store(storage, result)
        )),
    };
    let work = match func {
        NormFn::Softmax => format!(
            "    real mx = -__int_as_float(0x7f800000);\n{}    mx = tl_row_max(mx, sh);\n    real sum = 0.0f;\n{}    sum = tl_row_sum(sum, sh);\n    const real inv = 1.0f / sum;\n{write}",
            each("        mx = fmaxf(mx, vals[u]);\n"),
            each("        vals[u] = expf(vals[u] - mx);\n        sum += vals[u];\n"),
        ),
        NormFn::LayerNorm => format!(
            "    real sum = 0.0f;\n{}    const real mean = tl_row_sum(sum, sh) / (real)len;\n    real var = 0.0f;\n{}    var = tl_row_sum(var, sh) / (real)len;\n    const real inv = 1.0f / sqrtf(var + {eps});\n{write}",
            each("        sum += vals[u];\n"),
            each("        const real d = vals[u] - mean;\n        var += d * d;\n"),
            eps = layer_norm_eps(),
        ),
    };
    format!(
        "  __shared__ real sh[{BLOCK}];\n  for (long long q = (long long)blockIdx.x * ({BLOCK} / 32) + threadIdx.x / 32; q < rows; q += (long long)gridDim.x * ({BLOCK} / 32)) {{\n    const long long base = (q / inner) * len * inner + (q % inner);\n{row}    real vals[{cached}];\n{load}{work}  }}\n}}\n"
    )
}

/// The stores of a wide row ([`normalize_cached_rows`]): each lane's groups of four
/// consecutive results (`result` over `vals[u]`) with one 8-byte (16-bit types) or 16-byte
/// (f32) store, else one by one.
pub(super) fn wide_store(storage: DType, cached: usize, result: &str) -> String {
    let stores = four_stores(storage, "        ", "out0 + base + j0", &|w| {
        result.replace("vals[u]", &format!("vals[4 * g + {w}]"))
    });
    format!(
        "#pragma unroll\n    for (int g = 0; g < {}; ++g) {{\n      const long long j0 = 4LL * (threadIdx.x & 31) + 128LL * g;\n      if (j0 < len) {{\n{stores}      }}\n    }}\n",
        cached / 4
    )
}

/// Code storing four consecutive `real` values (`value(u)`) as `d` from address `at` on: one
/// 8-byte (16-bit types) or 16-byte (f32) store, else one by one.
pub(super) fn four_stores(
    d: DType,
    pad: &str,
    at: &str,
    value: &dyn Fn(usize) -> String,
) -> String {
    match d {
        DType::F16 | DType::BF16 => {
            let h = |u: usize| format!("(unsigned int){}", store(d, &value(u)));
            format!(
                "{pad}{{ uint2 w; w.x = {} | ({} << 16); w.y = {} | ({} << 16); *(uint2*)({at}) = w; }}\n",
                h(0),
                h(1),
                h(2),
                h(3)
            )
        }
        DType::F32 => format!(
            "{pad}*(float4*)({at}) = make_float4((float)({}), (float)({}), (float)({}), (float)({}));\n",
            value(0),
            value(1),
            value(2),
            value(3)
        ),
        _ => (0..4)
            .map(|u| format!("{pad}({at})[{u}] = {};\n", store(d, &value(u))))
            .collect(),
    }
}

/// The layer norm's ε as a float-dialect literal.
fn layer_norm_eps() -> String {
    format!("{:e}f", crate::ops::LAYER_NORM_EPS)
}

/// Values per lane a warp keeps in registers for a row of `len` elements, or 0 when the row
/// is too long for that (then each pass computes them again).
pub(crate) fn row_cache(len: usize) -> usize {
    [1, 2, 4, 8, 16, 32]
        .into_iter()
        .find(|&k| 32 * k >= len)
        .unwrap_or(0)
}

/// Rows up to this long are normalised by one warp each (shuffles, no block barriers); longer
/// ones by a whole block.
pub(crate) const WARP_ROW_MAX: usize = 4096;

/// Softmax or layer norm of a contiguous `[outer, len, inner]` array stored as `storage` along
/// the middle axis, computed in `real` and stored back as `storage`. With `warp`, each warp
/// normalises one `(outer, inner)` row (rows of up to [`WARP_ROW_MAX`]); otherwise each block
/// does. `TlMeta = [rows, len, inner, x, out]`.
pub(crate) fn normalize_source(
    func: NormFn,
    real: Real,
    storage: DType,
    warp: bool,
    cached: usize,
) -> String {
    let mut s = header(real, 16);
    let t = c_type(storage);
    let head = format!(
        "extern \"C\" __global__ void tl_kernel(const TlMeta m) {{\n  const long long rows = m.v[0];\n  const long long len = m.v[1];\n  const long long inner = m.v[2];\n  const {t}* x = (const {t}*)m.v[3];\n  {t}* out0 = ({t}*)m.v[4];\n"
    );
    let value = format!("      const real v = {};\n", load(storage, "x[i]"));
    let body = format!(
        "{}{head}{}",
        row_reducers(warp),
        normalize_rows(func, storage, warp, cached, "", &value, None)
    );
    s.push_str(&dialect(&body, real));
    s
}
