//! `Calls::map_rows` on CUDA: one warp per row along the reduced axis. The warp reads the
//! row once per reduction (shuffles combine the lanes; a later reduction may read an earlier
//! one, as a variance reads its mean), then once more to write the map: a layer norm written
//! by hand costs one kernel and one round trip through memory instead of reductions,
//! broadcast maps and the intermediates between them. A row is a few kilobytes at most, so
//! its later reads are meant to come from the cache rather than memory (not measured per
//! read: the whole layer norm took 37–39 µs per call in the MiniLM run).

use super::codegen::{self, Real};
use super::{CudaBackend, DevRef};
use crate::check::{last_element, numel_checked};
use crate::dtype::DType;
use crate::error::Result;
use crate::ops::{MapExpr, ReduceOp};
use crate::rows::RowMapArgs;
use crate::tensor::{Layout, Storage, Tensor};
use std::fmt::Write as _;

/// Rows per block (one warp each).
const ROWS_PER_BLOCK: usize = codegen::BLOCK as usize / 32;

/// Most axes besides the reduced one that the kernel indexes.
const MAX_OTHER_AXES: usize = 6;

/// What a generated row kernel depends on (expression shapes, not constant values).
#[derive(Hash)]
struct Signature {
    expr: u64,
    reductions: Vec<(u64, ReduceOp)>,
    inputs: Vec<DType>,
    out: DType,
    real: Real,
    others: usize,
    /// Whether every offset fits in 32 bits.
    narrow: bool,
}

impl CudaBackend {
    /// The row kernel where it applies (at most six other axes and a `TlMeta` that fits),
    /// else the default's reduce-then-map.
    pub(crate) fn map_rows_call(&self, args: &RowMapArgs<'_>) -> Result<Tensor> {
        let RowMapArgs {
            expr,
            inputs,
            reductions,
            shape,
            axis,
            dtype,
        } = *args;
        let rank = shape.len();
        let fits = axis < rank
            && rank - 1 <= MAX_OTHER_AXES
            && inputs.iter().all(|t| {
                t.rank() == rank && t.shape().iter().zip(shape).all(|(&e, &s)| e == s || e == 1)
            });
        if !fits {
            return crate::rows::reduce_then_map(self, args);
        }
        // The same view passed twice (a row read by two of the maps' steps) is read once.
        let mut distinct: Vec<&Tensor> = Vec::new();
        let mut at = Vec::with_capacity(inputs.len());
        for t in inputs {
            let same =
                |u: &&Tensor| u.dtype == t.dtype && u.layout == t.layout && same_storage(u, t);
            at.push(match distinct.iter().position(same) {
                Some(k) => k,
                None => {
                    distinct.push(t);
                    distinct.len() - 1
                }
            });
        }
        let (given, kept) = (inputs.len(), distinct.len());
        let moved = |j: usize| MapExpr::Input(if j < given { at[j] } else { kept + j - given });
        let expr = &expr.substitute(&moved);
        let reductions: Vec<(MapExpr, ReduceOp)> = reductions
            .iter()
            .map(|(e, op)| (e.substitute(&moved), *op))
            .collect();
        let (inputs, reductions) = (&distinct[..], &reductions[..]);
        let numel = numel_checked(shape)?;
        let out = self.alloc(numel, dtype)?;
        let n = shape[axis];
        if numel == 0 {
            return Ok(CudaBackend::wrap(out, shape));
        }
        let others: Vec<usize> = (0..rank).filter(|&d| d != axis).collect();
        let rows = numel / n.max(1);
        let layout = Layout::contiguous(shape);
        let stride = |t: &Layout, d: usize| {
            if t.shape[d] > 1 {
                t.strides[d] as i64
            } else {
                0
            }
        };
        let mut meta: Vec<i64> = vec![rows as i64, n as i64];
        meta.extend(others.iter().map(|&d| shape[d] as i64));
        meta.push(out.ptr() as i64);
        meta.push(stride(&layout, axis));
        meta.extend(others.iter().map(|&d| stride(&layout, d)));
        let refs: Vec<DevRef> = inputs
            .iter()
            .map(|t| self.dev("map_rows", t))
            .collect::<Result<_>>()?;
        for (t, r) in inputs.iter().zip(&refs) {
            meta.push((r.base + (t.layout.offset * t.dtype.size()) as u64) as i64);
            meta.push(stride(&t.layout, axis));
            meta.extend(others.iter().map(|&d| stride(&t.layout, d)));
        }
        let mut consts = Vec::new();
        for (e, _) in reductions {
            codegen::constants(e, &mut consts);
        }
        codegen::constants(expr, &mut consts);
        meta.extend(consts.iter().map(|c| c.to_bits() as i64));
        let Some(cap) = codegen::meta_cap(meta.len()) else {
            return crate::rows::reduce_then_map(self, args);
        };
        let sig = Signature {
            expr: codegen::expr_key(expr),
            reductions: reductions
                .iter()
                .map(|(e, op)| (codegen::expr_key(e), *op))
                .collect(),
            inputs: inputs.iter().map(|t| t.dtype).collect(),
            out: dtype,
            real: Real::of(dtype),
            others: others.len(),
            narrow: inputs
                .iter()
                .map(|t| &t.layout)
                .chain([&layout])
                .all(|l| last_element(l).is_some_and(|e| e < i32::MAX as usize)),
        };
        let grid = rows.div_ceil(ROWS_PER_BLOCK).clamp(1, 1 << 20) as u32;
        self.launch(
            codegen::kernel_key(&("map_rows", &sig, cap)),
            || Ok(source(&sig, expr, reductions, cap)),
            &meta,
            grid,
        )?;
        drop(refs);
        Ok(CudaBackend::wrap(out, shape))
    }
}

/// Whether two tensors are views of the same storage.
fn same_storage(a: &Tensor, b: &Tensor) -> bool {
    match (&a.storage, &b.storage) {
        (Storage::Device(x), Storage::Device(y)) => std::sync::Arc::ptr_eq(x, y),
        (Storage::Host(x), Storage::Host(y)) => std::sync::Arc::ptr_eq(x, y),
        _ => false,
    }
}

/// The identity of a reduction and how it combines two values (float dialect).
fn combine(op: ReduceOp) -> (&'static str, fn(&str, &str) -> String) {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => ("0.0f", |a, b| format!("{a} + {b}")),
        ReduceOp::Max => ("-__int_as_float(0x7f800000)", |a, b| {
            format!("fmaxf({a}, {b})")
        }),
        ReduceOp::Min => ("__int_as_float(0x7f800000)", |a, b| {
            format!("fminf({a}, {b})")
        }),
    }
}

/// The kernel source for a signature.
fn source(
    sig: &Signature,
    expr: &MapExpr,
    reductions: &[(MapExpr, ReduceOp)],
    cap: usize,
) -> String {
    let nd = sig.others;
    let k = sig.inputs.len();
    let mut s = codegen::header(sig.real, cap);
    // TlMeta: rows, n, the other axes' extents, then (pointer, axis stride, other strides)
    // for the output and each input, then the constants.
    let group = 2 + nd;
    let out_at = 2 + nd;
    let in_at = |i: usize| out_at + group * (i + 1);
    let consts_at = in_at(k);
    let mut body = String::new();
    let ix = if sig.narrow { "int" } else { "long long" };
    let _ = writeln!(body, "  typedef {ix} ix;");
    let _ = writeln!(body, "  const long long rows = m.v[0];");
    let _ = writeln!(body, "  const ix n = (ix)m.v[1];");
    let _ = writeln!(body, "  const int lane = threadIdx.x & 31;");
    let _ = writeln!(
        body,
        "  for (long long row = (long long)blockIdx.x * {ROWS_PER_BLOCK} + (threadIdx.x >> 5); \
         row < rows; row += (long long)gridDim.x * {ROWS_PER_BLOCK}) {{"
    );
    let _ = writeln!(body, "    long long rest = row;");
    let _ = writeln!(body, "    ix bo = 0;");
    for i in 0..k {
        let _ = writeln!(
            body,
            "    ix b{i} = 0; const ix s{i} = (ix)m.v[{}];",
            in_at(i) + 1
        );
    }
    for d in (0..nd).rev() {
        let _ = writeln!(
            body,
            "    {{ const long long e = m.v[{}]; const ix i = (ix)(rest % e); rest /= e;",
            2 + d
        );
        let _ = write!(body, "      bo += i * (ix)m.v[{}];", out_at + 2 + d);
        for i in 0..k {
            let _ = write!(body, " b{i} += i * (ix)m.v[{}];", in_at(i) + 2 + d);
        }
        let _ = writeln!(body, " }}");
    }
    let loads: String = sig
        .inputs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let c = codegen::c_type(*d);
            let at = format!("((const {c}*)m.v[{}])[b{i} + j * s{i}]", in_at(i));
            format!("      const real x{i} = {};\n", codegen::load(*d, &at))
        })
        .collect();
    let mut next_const = 0;
    let reduced: Vec<String> = reductions
        .iter()
        .map(|(e, _)| codegen::expr_c(e, &mut next_const))
        .collect();
    let value = codegen::expr_c(expr, &mut next_const);
    let mut consts = String::new();
    for j in 0..next_const {
        let _ = writeln!(
            consts,
            "  const real c{j} = (real)__longlong_as_double(m.v[{}]);",
            consts_at + j
        );
    }
    // One pass over the row per reduction: a later one may read an earlier one (a variance
    // reads its mean). Passes after the first find the row in the cache.
    for (j, (_, op)) in reductions.iter().enumerate() {
        let (identity, fold) = combine(*op);
        let _ = writeln!(body, "    real a{j} = (real){identity};");
        let _ = writeln!(body, "    for (ix j = lane; j < n; j += 32) {{");
        body.push_str(&loads);
        let next = fold(&format!("a{j}"), &format!("({})", reduced[j]));
        let _ = writeln!(body, "      a{j} = {next};");
        let _ = writeln!(body, "    }}");
        let _ = writeln!(body, "    for (int o = 16; o > 0; o >>= 1) {{");
        let shuffled = format!("__shfl_xor_sync(0xffffffffu, a{j}, o)");
        let _ = writeln!(body, "      a{j} = {};", fold(&format!("a{j}"), &shuffled));
        let _ = writeln!(body, "    }}");
        let at = k + j;
        if *op == ReduceOp::Mean {
            let _ = writeln!(body, "    const real x{at} = a{j} / (real)n;");
        } else {
            let _ = writeln!(body, "    const real x{at} = a{j};");
        }
    }
    let _ = writeln!(body, "    for (ix j = lane; j < n; j += 32) {{");
    body.push_str(&loads);
    let store = codegen::store(sig.out, &value);
    let _ = writeln!(
        body,
        "      (({}*)m.v[{out_at}])[bo + j * (ix)m.v[{}]] = {store};",
        codegen::c_type(sig.out),
        out_at + 1
    );
    let _ = writeln!(body, "    }}");
    let _ = writeln!(body, "  }}");
    let kernel = format!(
        "extern \"C\" __global__ void __launch_bounds__(256) tl_kernel(const TlMeta m) {{\n{consts}{body}}}\n"
    );
    s.push_str(&codegen::dialect(&kernel, sig.real));
    s
}

/// Kernels of a few signatures, for the NVRTC compile test.
#[cfg(test)]
pub(crate) fn sample_sources() -> Vec<(String, String)> {
    use crate::ops::{BinaryFn, UnaryFn};
    let centred = MapExpr::Binary(
        BinaryFn::Sub,
        Box::new(MapExpr::Input(0)),
        Box::new(MapExpr::Input(1)),
    );
    let scaled = MapExpr::Binary(
        BinaryFn::Div,
        Box::new(MapExpr::Input(0)),
        Box::new(MapExpr::Unary(
            UnaryFn::Sqrt,
            Box::new(MapExpr::Binary(
                BinaryFn::Add,
                Box::new(MapExpr::Input(1)),
                Box::new(MapExpr::Const(1e-12)),
            )),
        )),
    );
    let square = MapExpr::Binary(
        BinaryFn::Mul,
        Box::new(MapExpr::Input(0)),
        Box::new(MapExpr::Input(0)),
    );
    let mut out = Vec::new();
    for (dtype, inputs) in [
        (DType::BF16, vec![DType::BF16]),
        (DType::F32, vec![DType::F32]),
        (DType::F64, vec![DType::F64]),
        (DType::F16, vec![DType::F16]),
    ] {
        for (name, e, r) in [
            ("centre", &centred, (MapExpr::Input(0), ReduceOp::Mean)),
            ("scale", &scaled, (square.clone(), ReduceOp::Mean)),
            ("max", &centred, (MapExpr::Input(0), ReduceOp::Max)),
        ] {
            let sig = Signature {
                expr: codegen::expr_key(e),
                reductions: vec![(codegen::expr_key(&r.0), r.1)],
                inputs: inputs.clone(),
                out: dtype,
                real: Real::of(dtype),
                others: 2,
                narrow: dtype != DType::F64,
            };
            out.push((
                format!("map_rows {name} {dtype}"),
                source(&sig, e, &[r], 64),
            ));
        }
    }
    out
}
