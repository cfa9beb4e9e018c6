//! The pieces of CUDA C every kernel is made of, and the fixed kernels (gathers, scatters,
//! the finiteness check) that are not rendered from a [`crate::Kernel`] (those are
//! [`super::render`]'s).
//!
//! Kernels take one by-value argument, `TlMeta` (an array of 64-bit words: element counts,
//! device addresses, extents and strides), so a kernel depends only on what it computes, not
//! on its sizes. Math is written once in the `float` dialect; for f64 the source is rewritten
//! to the `double` one ([`dialect`]). Half and bfloat16 conversions use PTX / bit operations,
//! so no CUDA header is needed.

use crate::dtype::DType;
use crate::ops::{BinaryFn, MapExpr, ReduceOp, UnaryFn};
use std::fmt::Write;
use std::hash::{Hash, Hasher};

/// Threads per block of every kernel.
pub(crate) const BLOCK: u32 = 256;

/// Elements each thread of an element walk handles per pass (see [`super::render::Walk`]).
pub(crate) const ELEM_UNROLL: usize = 4;

/// The arithmetic type of a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Real {
    /// `float`
    F32,
    /// `double`
    F64,
}

impl Real {
    /// The compute type of a storage type (f64 for f64, f32 for everything else).
    pub(crate) fn of(d: DType) -> Real {
        if d.compute() == DType::F64 {
            Real::F64
        } else {
            Real::F32
        }
    }

    /// The storage type holding this compute type.
    pub(crate) fn dtype(self) -> DType {
        match self {
            Real::F32 => DType::F32,
            Real::F64 => DType::F64,
        }
    }

    fn c(self) -> &'static str {
        match self {
            Real::F32 => "float",
            Real::F64 => "double",
        }
    }
}

/// The C type that holds one element of `d` in device memory.
pub(crate) fn c_type(d: DType) -> &'static str {
    match d {
        DType::F32 => "float",
        DType::F64 => "double",
        DType::F16 | DType::BF16 => "unsigned short",
        DType::Bool => "unsigned char",
        DType::I64 => "long long",
    }
}

/// Element conversions (never rewritten to the double dialect).
const CONVERSIONS: &str = r#"
__device__ __forceinline__ float tl_h2f(unsigned short h) {
  float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f;
}
__device__ __forceinline__ unsigned short tl_f2h(float f) {
  unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h;
}
__device__ __forceinline__ float tl_bf2f(unsigned short h) {
  return __uint_as_float(((unsigned int)h) << 16);
}
__device__ __forceinline__ unsigned short tl_f2bf(float f) {
#if __CUDA_ARCH__ >= 800
  unsigned short h; asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h;
#else
  unsigned int u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (unsigned short)(u >> 16);
#endif
}
"#;

/// float-dialect math functions and their double names.
const DOUBLE_NAMES: &[(&str, &str)] = &[
    ("expf", "exp"),
    ("logf", "log"),
    ("sqrtf", "sqrt"),
    ("fabsf", "fabs"),
    ("sinf", "sin"),
    ("cosf", "cos"),
    ("tanhf", "tanh"),
    ("erfcf", "erfc"),
    ("erff", "erf"),
    ("fmaxf", "fmax"),
    ("fminf", "fmin"),
    ("powf", "pow"),
    ("floorf", "floor"),
];

/// Rewrites float-dialect source for `real`: for f64, float math functions become their double
/// versions and the `f` suffix of decimal literals is dropped (hex literals are left alone).
pub(crate) fn dialect(src: &str, real: Real) -> String {
    if real == Real::F32 {
        return src.to_string();
    }
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let word = &src[s..i];
            match DOUBLE_NAMES.iter().find(|(f, _)| *f == word) {
                Some((_, d)) => out.push_str(d),
                None => out.push_str(word),
            }
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let s = i;
            while i < b.len() {
                let d = b[i];
                let exp_sign = (d == b'+' || d == b'-')
                    && matches!(b[i - 1], b'e' | b'E')
                    && !src[s..i].starts_with("0x");
                if d.is_ascii_alphanumeric() || d == b'.' || exp_sign {
                    i += 1;
                } else {
                    break;
                }
            }
            let lit = &src[s..i];
            let hex = lit.starts_with("0x") || lit.starts_with("0X");
            match lit.strip_suffix(['f', 'F']) {
                Some(stripped) if !hex => out.push_str(stripped),
                _ => out.push_str(lit),
            }
        } else {
            // Copy one (possibly multi-byte) character.
            let len = src[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&src[i..i + len]);
            i += len;
        }
    }
    out
}

/// The magic number of a division by `e` (≥ 1) of a 32-bit `x < 2^31`, as one `TlMeta`
/// word: the multiplier in the low 32 bits, the shift in the high ones, so that
/// `x / e = (umulhi(x, multiplier) + x) >> shift` (the round-up method of Granlund and
/// Montgomery, with `shift = ⌈log2 e⌉`).
pub(crate) fn divisor(e: usize) -> i64 {
    let e = e.clamp(1, 1 << 31) as u64;
    let shift = 64 - (e - 1).leading_zeros() as u64;
    let shift = if e == 1 { 0 } else { shift };
    let multiplier = ((1u64 << 32) * ((1u64 << shift) - e)) / e + 1;
    ((shift << 32) | (multiplier & 0xffff_ffff)) as i64
}

/// Capacity (in 64-bit words) of the `TlMeta` argument for `len` words, or `None` when the
/// argument would exceed CUDA's 4 KiB parameter limit.
pub(crate) fn meta_cap(len: usize) -> Option<usize> {
    [16, 64, MAX_META_WORDS].into_iter().find(|&c| len <= c)
}

/// The most words a `TlMeta` argument holds (3,840 bytes, under CUDA's 4 KiB).
pub(crate) const MAX_META_WORDS: usize = 480;

/// The common head of every kernel: conversions, `real`, `TlMeta`, the math helpers.
pub(crate) fn header(real: Real, cap: usize) -> String {
    let mut s = String::from(CONVERSIONS);
    let _ = writeln!(s, "typedef {} real;", real.c());
    let _ = writeln!(s, "struct TlMeta {{ long long v[{cap}]; }};");
    s.push_str(&tl_core::math::erfc_fit_c(real == Real::F64));
    let math = UnaryFn::c_definitions() + &BinaryFn::c_definitions();
    s.push_str(&dialect(&math, real));
    s
}

/// The C expression of a map expression over inputs `x0, x1, …` and constants `c0, c1, …`
/// (numbered in [`constants`] order; float dialect). Constants are kernel arguments, not
/// literals, so expressions differing only in constants (a learning rate, a step count)
/// share one compiled kernel.
pub(crate) fn expr_c(e: &MapExpr, next_const: &mut usize) -> String {
    expr_named(e, next_const, &|k| format!("x{k}"))
}

/// [`expr_c`] with input `k` named `name(k)`.
pub(crate) fn expr_named(
    e: &MapExpr,
    next_const: &mut usize,
    name: &dyn Fn(usize) -> String,
) -> String {
    match e {
        MapExpr::Input(k) => name(*k),
        MapExpr::Const(_) => {
            let j = *next_const;
            *next_const += 1;
            format!("c{j}")
        }
        MapExpr::Unary(f, x) => f.c_expr(&expr_named(x, next_const, name)),
        MapExpr::Binary(f, a, b) => {
            let ca = expr_named(a, next_const, name);
            let cb = expr_named(b, next_const, name);
            f.c_expr(&ca, &cb)
        }
    }
}

/// The constants of an expression in the order [`expr_c`] numbers them.
pub(crate) fn constants(e: &MapExpr, out: &mut Vec<f64>) {
    match e {
        MapExpr::Input(_) => {}
        MapExpr::Const(c) => out.push(*c),
        MapExpr::Unary(_, x) => constants(x, out),
        MapExpr::Binary(_, a, b) => {
            constants(a, out);
            constants(b, out);
        }
    }
}

/// Reads a stored element as `real`.
pub(crate) fn load(d: DType, at: &str) -> String {
    match d {
        DType::F16 => format!("(real)tl_h2f({at})"),
        DType::BF16 => format!("(real)tl_bf2f({at})"),
        _ => format!("(real)({at})"),
    }
}

/// Converts a `real` value to the stored type.
pub(crate) fn store(d: DType, v: &str) -> String {
    match d {
        DType::F32 => format!("(float)({v})"),
        DType::F64 => format!("(double)({v})"),
        DType::F16 => format!("tl_f2h((float)({v}))"),
        DType::BF16 => format!("tl_f2bf((float)({v}))"),
        DType::Bool => format!("(unsigned char)(({v}) != (real)0)"),
        DType::I64 => format!("(long long)({v})"),
    }
}

/// A hash of everything a generated kernel's source depends on, for the launch cache.
pub(crate) fn kernel_key(parts: &impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// A hash of an expression's shape (constants left out, as in kernel keys).
pub(crate) fn expr_key(e: &MapExpr) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    super::render::hash_expr(e, &mut h);
    h.finish()
}

/// `out[k] = index[k] < 0 ? 0 : src[index[k]]` over elements of `d`.
/// `TlMeta = [n, src, index, out]`.
pub(crate) fn gather_source(d: DType) -> String {
    let t = c_type(d);
    let mut s = header(Real::F32, 16);
    let _ = write!(
        s,
        "extern \"C\" __global__ void tl_kernel(const TlMeta m) {{\n  const long long n = m.v[0];\n  const {t}* src = (const {t}*)m.v[1];\n  const long long* idx = (const long long*)m.v[2];\n  {t}* out = ({t}*)m.v[3];\n  const long long step = (long long)gridDim.x * blockDim.x;\n  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {{\n    const long long j = idx[i];\n    out[i] = j < 0 ? ({t})0 : src[j];\n  }}\n}}\n"
    );
    s
}

/// Scatter accumulation: for every `k` with `index[k] >= 0`, combines `vals[k]` into
/// `out[index[k]]` atomically (and counts hits for Mean/Max/Min).
/// `TlMeta = [n, vals, index, out, count]`.
pub(crate) fn scatter_source(op: ReduceOp, real: Real) -> String {
    let (bits, as_bits, from_bits, cas_t) = match real {
        Real::F32 => (
            "unsigned int",
            "__float_as_uint",
            "__uint_as_float",
            "unsigned int",
        ),
        Real::F64 => (
            "unsigned long long",
            "(unsigned long long)__double_as_longlong",
            "__longlong_as_double",
            "unsigned long long",
        ),
    };
    let fold = match op {
        ReduceOp::Max => "fmaxf",
        _ => "fminf",
    };
    let mut s = header(real, 16);
    let atomic_fold = format!(
        r#"
__device__ void tl_atomic_fold(real* addr, real v) {{
  {cas_t}* a = ({cas_t}*)addr;
  {bits} old = *a, assumed;
  do {{
    assumed = old;
    const real nv = {fold}({from_bits}(({cas_t})assumed), v);
    const {bits} nb = {as_bits}(nv);
    if (nb == assumed) break;
    old = atomicCAS(a, assumed, nb);
  }} while (assumed != old);
}}
"#
    );
    let update = match op {
        ReduceOp::Sum => "atomicAdd(&out[j], vals[i]);",
        ReduceOp::Mean => "atomicAdd(&out[j], vals[i]); atomicAdd(&count[j], 1u);",
        ReduceOp::Max | ReduceOp::Min => {
            "tl_atomic_fold(&out[j], vals[i]); atomicAdd(&count[j], 1u);"
        }
    };
    let body = format!(
        "{}extern \"C\" __global__ void tl_kernel(const TlMeta m) {{\n  const long long n = m.v[0];\n  const real* vals = (const real*)m.v[1];\n  const long long* idx = (const long long*)m.v[2];\n  real* out = (real*)m.v[3];\n  unsigned int* count = (unsigned int*)m.v[4];\n  (void)count;\n  const long long step = (long long)gridDim.x * blockDim.x;\n  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {{\n    const long long j = idx[i];\n    if (j >= 0) {{ {update} }}\n  }}\n}}\n",
        if matches!(op, ReduceOp::Max | ReduceOp::Min) {
            atomic_fold.as_str()
        } else {
            ""
        }
    );
    s.push_str(&dialect(&body, real));
    s
}

/// The pass after a Mean/Max/Min scatter: cells that received nothing become 0, Mean cells
/// are divided by their count. `TlMeta = [n, out, count]`.
pub(crate) fn scatter_finish_source(op: ReduceOp, real: Real) -> String {
    let hit = match op {
        ReduceOp::Mean => "out[i] / (real)c",
        _ => "out[i]",
    };
    let mut s = header(real, 16);
    let body = format!(
        "extern \"C\" __global__ void tl_kernel(const TlMeta m) {{\n  const long long n = m.v[0];\n  real* out = (real*)m.v[1];\n  const unsigned int* count = (const unsigned int*)m.v[2];\n  const long long step = (long long)gridDim.x * blockDim.x;\n  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {{\n    const unsigned int c = count[i];\n    out[i] = c > 0u ? {hit} : (real)0;\n  }}\n}}\n"
    );
    s.push_str(&dialect(&body, real));
    s
}

/// Checks tensors of `storage` for NaN and infinity in one pass: `TlMeta = [out, k, (x_t,
/// n_t) for each of the k tensors]`; every block that meets a non-finite element stores NaN
/// in the f32 `*out` (which the caller set to 0), the others store nothing.
pub(crate) fn non_finite_source(storage: DType, cap: usize) -> String {
    let real = Real::of(storage);
    let t = c_type(storage);
    let mut s = header(real, cap);
    let value = load(storage, "x[i]");
    let body = format!(
        "extern \"C\" __global__ void tl_kernel(const TlMeta m) {{\n  float* out = (float*)m.v[0];\n  const long long k = m.v[1];\n  const long long step = (long long)gridDim.x * blockDim.x;\n  int bad = 0;\n  for (long long q = 0; q < k; ++q) {{\n    const {t}* x = (const {t}*)m.v[2 + 2 * q];\n    const long long n = m.v[3 + 2 * q];\n#pragma unroll 4\n    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {{\n      const real v = {value};\n      bad |= !isfinite(v);\n    }}\n  }}\n  if (__syncthreads_or(bad) && threadIdx.x == 0) *out = __int_as_float(0x7fc00000);\n}}\n"
    );
    s.push_str(&body);
    s
}

/// Collapses an index space: drops extent-1 axes and merges neighbours that every operand
/// walks with one stride. `strides[q]` are operand `q`'s strides over `shape`; returns the new
/// shape and strides (row-major order kept).
pub(crate) fn coalesce(shape: &[usize], strides: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut cs: Vec<usize> = Vec::new();
    let mut cst: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
    for a in 0..shape.len() {
        if shape[a] == 1 {
            continue;
        }
        let mergeable = !cs.is_empty()
            && strides.iter().zip(&cst).all(|(s, c)| {
                c.last()
                    .is_some_and(|&prev| prev == s[a].saturating_mul(shape[a]))
            });
        if mergeable {
            if let Some(e) = cs.last_mut() {
                *e *= shape[a];
            }
            for (s, c) in strides.iter().zip(cst.iter_mut()) {
                if let Some(l) = c.last_mut() {
                    *l = s[a];
                }
            }
        } else {
            cs.push(shape[a]);
            for (s, c) in strides.iter().zip(cst.iter_mut()) {
                c.push(s[a]);
            }
        }
    }
    (cs, cst)
}

/// A stable 64-bit hash (FNV-1a) of kernel source plus compile target: the cache key.
pub(crate) fn cache_key(source: &str, target: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in source
        .bytes()
        .chain(std::iter::once(0))
        .chain(target.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
