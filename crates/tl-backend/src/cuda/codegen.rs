//! CUDA C source for every kernel the backend launches, generated from the op description.
//!
//! Kernels take one by-value argument, `TlMeta` (an array of 64-bit words: element counts,
//! device addresses, extents and strides), so a kernel depends only on the *signature* of a
//! call (expression, element types, rank, which inputs are strided), not on its sizes. Math is
//! written once in the `float` dialect; for f64 the source is rewritten to the `double` one
//! ([`dialect`]). Half and bfloat16 conversions use PTX / bit operations, so no CUDA header is
//! needed.

use crate::dtype::DType;
use crate::ops::{MapExpr, NormFn, ReduceOp};
use std::fmt::Write;
use std::hash::{Hash, Hasher};

/// Threads per block of every kernel.
pub(crate) const BLOCK: u32 = 256;

/// Elements each thread of an elementwise kernel handles per pass (see [`ElemSig::source`]).
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

/// The functions `UnaryFn::c_expr`/`BinaryFn::c_expr` call besides libm, matching the f64
/// definitions in `ops.rs`. Written in the float dialect over `real`.
const MATH: &str = r#"
__device__ __forceinline__ real tl_sigmoid(real x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  real e = expf(x);
  return e / (1.0f + e);
}
__device__ __forceinline__ real tl_pow(real a, real b) {
  if (floorf(b) == b && fabsf(b) <= 64.0f) {
    int n = (int)b;
    unsigned int e = n < 0 ? (unsigned int)(-n) : (unsigned int)n;
    real r = 1.0f;
    real base = a;
    while (e) { if (e & 1u) r *= base; base *= base; e >>= 1; }
    return n < 0 ? 1.0f / r : r;
  }
  return powf(a, b);
}
__device__ __forceinline__ real tl_sig_t(real a, real t) {
  if (t == 0.0f) return a > 0.0f ? 1.0f : 0.0f;
  return tl_sigmoid(a / t);
}
__device__ __forceinline__ real tl_sig_t_grad_a(real a, real t) {
  if (t == 0.0f) return 1.0f;
  real s = tl_sigmoid(a / t);
  return s * (1.0f - s) / t;
}
__device__ __forceinline__ real tl_sig_t_grad_t(real a, real t) {
  if (t == 0.0f) return 0.0f;
  real s = tl_sigmoid(a / t);
  return -s * (1.0f - s) * a / (t * t);
}
__device__ __forceinline__ real tl_gelu(real x) {
  return 0.5f * x * tl_erfc(-x * 0.70710678118654752f);
}
__device__ __forceinline__ real tl_gelu_grad(real x) {
  real cdf = 0.5f * tl_erfc(-x * 0.70710678118654752f);
  real pdf = expf(-0.5f * x * x) * 0.39894228040143268f;
  return cdf + x * pdf;
}
"#;

/// `erfc` in single precision: a Chebyshev fit (fractional error below 1.2e-7 for every x)
/// of `erfc(z) = t·exp(-z² + P(t))`, `t = 1/(1 + z/2)`, with the hardware's reciprocal and
/// exponential instead of the library `erfcf` (`scripts/gpu-ncu.sh` on MiniLM, H100: the
/// bias + GELU pass from 166 to 108 µs a call). Evaluated in single precision the fit stays
/// within about 1e-6 relative for |x| < 3 and 2e-5 out to where erfc underflows; GELU
/// through it passes the f32 checks against f64 (`tests/cuda.rs`). It keeps its relative
/// precision where `1 + erf` would cancel, which GELU of large negative inputs needs.
const ERFC_F32: &str = r#"
__device__ __forceinline__ float tl_erfc(float x) {
  const float z = fabsf(x);
  const float t = __fdividef(1.0f, 1.0f + 0.5f * z);
  const float p = -1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f +
    t * (-0.18628806f + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f +
    t * (-0.82215223f + t * 0.17087277f))))))));
  const float r = t * __expf(fmaf(-z, z, p));
  return x >= 0.0f ? r : 2.0f - r;
}
"#;

/// `erfc` in double precision: the library's.
const ERFC_F64: &str = r#"
__device__ __forceinline__ double tl_erfc(double x) { return erfc(x); }
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
    s.push_str(match real {
        Real::F32 => ERFC_F32,
        Real::F64 => ERFC_F64,
    });
    s.push_str(&dialect(MATH, real));
    s
}

/// The C expression of a map expression over inputs `x0, x1, …` and constants `c0, c1, …`
/// (numbered in [`constants`] order; float dialect). Constants are kernel arguments, not
/// literals, so expressions differing only in constants (a learning rate, a step count)
/// share one compiled kernel.
pub(crate) fn expr_c(e: &MapExpr, next_const: &mut usize) -> String {
    match e {
        MapExpr::Input(k) => format!("x{k}"),
        MapExpr::Const(_) => {
            let j = *next_const;
            *next_const += 1;
            format!("c{j}")
        }
        MapExpr::Unary(f, x) => f.c_expr(&expr_c(x, next_const)),
        MapExpr::Binary(f, a, b) => {
            let ca = expr_c(a, next_const);
            let cb = expr_c(b, next_const);
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

/// How an elementwise kernel addresses one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Access {
    /// Laid out like the output: element `i` is at `i`.
    Contiguous,
    /// One value for every output.
    Scalar,
    /// Through the strides in `TlMeta`.
    Strided,
}

/// The signature an elementwise kernel is generated for: one or more outputs, each an
/// expression over the same inputs, computed in one pass over them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ElemSig {
    /// Each output's expression over inputs `x0…` and its stored element type.
    pub outs: Vec<(MapExpr, DType)>,
    /// Element type and access of each input.
    pub inputs: Vec<(DType, Access)>,
    /// Arithmetic type.
    pub real: Real,
    /// Rank of the (coalesced) index space.
    pub rank: usize,
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
    hash_expr(e, &mut h);
    h.finish()
}

/// Feeds an expression's shape into a hasher. Constant values are left out: kernels read them
/// from `TlMeta`, so one kernel serves every value (a scheduled learning rate, say).
fn hash_expr(e: &MapExpr, h: &mut impl Hasher) {
    match e {
        MapExpr::Input(k) => (0u8, *k).hash(h),
        MapExpr::Const(_) => 1u8.hash(h),
        MapExpr::Unary(f, x) => {
            (2u8, f).hash(h);
            hash_expr(x, h);
        }
        MapExpr::Binary(f, a, b) => {
            (3u8, f).hash(h);
            hash_expr(a, h);
            hash_expr(b, h);
        }
    }
}

impl ElemSig {
    /// The launch-cache key of this signature (see [`kernel_key`]).
    pub(crate) fn key(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        "map".hash(&mut h);
        for (e, d) in &self.outs {
            hash_expr(e, &mut h);
            d.hash(&mut h);
        }
        (&self.inputs, self.real, self.rank).hash(&mut h);
        h.finish()
    }

    /// Whether the kernel moves elements unchanged (a copy of one input of the output's type).
    fn raw(&self) -> bool {
        matches!(&self.outs[..], [(MapExpr::Input(0), d)] if self.inputs.len() == 1 && self.inputs[0].0 == *d)
    }

    /// Index of the first input pointer in `TlMeta`.
    pub(crate) fn inputs_at(&self) -> usize {
        1 + self.outs.len()
    }

    fn n_strided(&self) -> usize {
        self.inputs
            .iter()
            .filter(|(_, a)| *a == Access::Strided)
            .count()
    }

    /// The constants of every output's expression, in order.
    fn all_constants(&self) -> Vec<f64> {
        let mut c = Vec::new();
        for (e, _) in &self.outs {
            constants(e, &mut c);
        }
        c
    }

    /// Index of the first constant in `TlMeta`.
    fn consts_at(&self) -> usize {
        self.inputs_at() + self.inputs.len() + 2 * self.rank + self.n_strided() * self.rank
    }

    /// Words of `TlMeta`: `[n, out_0 … out_{O-1}, in_0 … in_{K-1}, extents (rank), their
    /// divisors (rank, see [`divisor`]), strides of each strided input (rank each), the
    /// expressions' constants (f64 bits)]`.
    pub(crate) fn meta_len(&self) -> usize {
        self.consts_at() + self.all_constants().len()
    }

    /// The `TlMeta` words of one launch. `strides` lists the strides of the strided inputs
    /// in input order.
    pub(crate) fn meta(
        &self,
        n: usize,
        outs: &[u64],
        inputs: &[u64],
        shape: &[usize],
        strides: &[Vec<usize>],
    ) -> Vec<i64> {
        let mut m = Vec::with_capacity(self.meta_len());
        m.push(n as i64);
        m.extend(outs.iter().map(|&p| p as i64));
        m.extend(inputs.iter().map(|&p| p as i64));
        m.extend(shape.iter().map(|&e| e as i64));
        m.extend(shape.iter().map(|&e| divisor(e)));
        for s in strides {
            m.extend(s.iter().map(|&x| x as i64));
        }
        m.extend(self.all_constants().iter().map(|x| x.to_bits() as i64));
        m
    }

    /// Code that reads every input at flat output index `i` into `target(j)` (converted to
    /// `real` when `convert`): strided inputs through their offsets (see
    /// [`ElemSig::offsets`]).
    fn read_inputs(
        &self,
        body: &mut String,
        pad: &str,
        target: &dyn Fn(usize) -> String,
        convert: bool,
    ) {
        self.offsets(body, pad, "i", "o");
        self.loads(body, pad, target, convert, &|j| format!("o{j}"));
    }

    /// Code declaring `long long {var}{j}`, the offset of each strided input `j` at flat
    /// output index `index`: one digit of the index per axis, innermost first (in 32 bits when
    /// the index space `n` fits, a branch that is the same for every thread).
    fn offsets(&self, body: &mut String, pad: &str, index: &str, var: &str) {
        let k = self.inputs.len();
        let shape_at = self.inputs_at() + k;
        let strided: Vec<usize> = (0..k)
            .filter(|&j| self.inputs[j].1 == Access::Strided)
            .collect();
        if strided.is_empty() {
            return;
        }
        for &j in &strided {
            let _ = writeln!(body, "{pad}long long {var}{j} = 0;");
        }
        // Below 2^31 a division by an extent is a multiply-high and a shift (the divisor's
        // magic number); above, a 64-bit division, a branch that is the same for every thread.
        for (guard, int) in [
            ("if (n <= 2147483647LL)", "unsigned int"),
            ("else", "long long"),
        ] {
            let _ = writeln!(body, "{pad}{guard} {{\n{pad}  {int} rem = ({int}){index};");
            for a in (0..self.rank).rev() {
                let e = shape_at + a;
                let digit = if int == "unsigned int" {
                    let d = shape_at + self.rank + a;
                    format!(
                        "const unsigned int e = (unsigned int)m.v[{e}]; const unsigned long long dv = (unsigned long long)m.v[{d}]; const unsigned int qt = (__umulhi(rem, (unsigned int)dv) + rem) >> (unsigned int)(dv >> 32); const unsigned int c = rem - qt * e; rem = qt;"
                    )
                } else {
                    format!("const long long e = m.v[{e}]; const long long c = rem % e; rem /= e;")
                };
                let _ = write!(body, "{pad}  {{ {digit}");
                for (q, &j) in strided.iter().enumerate() {
                    let st = shape_at + 2 * self.rank + q * self.rank + a;
                    let _ = write!(body, " {var}{j} += (long long)c * m.v[{st}];");
                }
                body.push_str(" }\n");
            }
            let _ = writeln!(body, "{pad}}}");
        }
    }

    /// Code that reads every input into `target(j)` (converted to `real` when `convert`):
    /// contiguous ones at `i`, scalars at 0, strided ones at `offset(j)`.
    fn loads(
        &self,
        body: &mut String,
        pad: &str,
        target: &dyn Fn(usize) -> String,
        convert: bool,
        offset: &dyn Fn(usize) -> String,
    ) {
        for (j, (d, a)) in self.inputs.iter().enumerate() {
            let at = match a {
                Access::Contiguous => format!("in{j}[i]"),
                Access::Scalar => format!("in{j}[0]"),
                Access::Strided => format!("in{j}[{}]", offset(j)),
            };
            let value = if convert { load(*d, &at) } else { at };
            let _ = writeln!(body, "{pad}{} = {value};", target(j));
        }
    }

    /// The kernel's opening: `n`, the outputs `out0…` stored as `out_types`, the inputs
    /// `in0…` and the constants `c0…`, each read from its `TlMeta` word.
    fn kernel_head(&self, out_types: &[DType]) -> String {
        let mut head = String::from(
            "extern \"C\" __global__ void tl_kernel(const TlMeta m) {\n  const long long n = m.v[0];\n",
        );
        for (o, d) in out_types.iter().enumerate() {
            let t = c_type(*d);
            let _ = writeln!(head, "  {t}* out{o} = ({t}*)m.v[{}];", 1 + o);
        }
        for (j, (d, _)) in self.inputs.iter().enumerate() {
            let t = c_type(*d);
            let _ = writeln!(
                head,
                "  const {t}* in{j} = (const {t}*)m.v[{}];",
                self.inputs_at() + j
            );
        }
        for j in 0..self.all_constants().len() {
            let _ = writeln!(
                head,
                "  const real c{j} = (real)__longlong_as_double(m.v[{}]);",
                self.consts_at() + j
            );
        }
        head
    }

    /// A row reduction of this signature's one expression over `[rows, r]` (the expression's
    /// index space, reduced axes last), without storing the expression's values: one warp per
    /// row (`warp`) or one block per row, accumulating as [`reduce_source`] does. `TlMeta` is
    /// [`ElemSig::meta`]'s followed by `r`; the output (of `real`) is `out0`.
    pub(crate) fn reduce_source(&self, op: ReduceOp, warp: bool) -> Option<String> {
        let cap = meta_cap(self.meta_len() + 1)?;
        let fold = FoldCode::new(op, "r");
        let (acc, init, finish) = (fold.acc, fold.init, &fold.finish);
        let combine = |a: &str, b: &str| fold.combine(a, b);
        let mut s = header(self.real, cap);
        let mut body = self.kernel_head(&[self.real.dtype()]);
        let consts = self.all_constants().len();
        let _ = writeln!(
            body,
            "  const long long r = m.v[{}];\n  const long long rows = n / r;",
            self.consts_at() + consts
        );
        let (first, step, lane, lanes) = if warp {
            (
                format!("(long long)blockIdx.x * ({BLOCK} / 32) + threadIdx.x / 32"),
                format!("(long long)gridDim.x * ({BLOCK} / 32)"),
                "(long long)(threadIdx.x & 31)",
                "32",
            )
        } else {
            (
                "(long long)blockIdx.x".to_string(),
                "(long long)gridDim.x".to_string(),
                "(long long)threadIdx.x",
                "(long long)blockDim.x",
            )
        };
        if !warp {
            let _ = writeln!(body, "  __shared__ {acc} sh[{BLOCK}];");
        }
        let _ = writeln!(
            body,
            "  for (long long q = {first}; q < rows; q += {step}) {{\n    {acc} a = {init};\n    for (long long j = {lane}; j < r; j += {lanes}) {{\n      const long long i = q * r + j;"
        );
        self.read_inputs(&mut body, "      ", &|j| format!("const real x{j}"), true);
        let v = expr_c(&self.outs[0].0, &mut 0);
        let _ = writeln!(
            body,
            "      a = {};\n    }}",
            combine("a", &format!("({acc})({v})"))
        );
        if warp {
            let _ = writeln!(
                body,
                "    for (int o = 16; o > 0; o >>= 1) a = {};\n    if ((threadIdx.x & 31) == 0) out0[q] = {finish};\n  }}\n}}",
                combine("a", "__shfl_xor_sync(0xffffffffu, a, o)")
            );
        } else {
            let _ = writeln!(
                body,
                "    sh[threadIdx.x] = a;\n    __syncthreads();\n    for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {{\n      if (threadIdx.x < s) sh[threadIdx.x] = {};\n      __syncthreads();\n    }}\n    if (threadIdx.x == 0) {{ a = sh[0]; out0[q] = {finish}; }}\n    __syncthreads();\n  }}\n}}",
                combine("sh[threadIdx.x]", "sh[threadIdx.x + s]")
            );
        }
        s.push_str(&dialect(&body, self.real));
        Some(s)
    }

    /// A softmax or layer norm of this signature's one expression along the middle axis of
    /// its index space `[outer, len, inner]`, without storing the expression's values (each
    /// pass over a row computes them again from the inputs), stored as `storage`. `TlMeta` is
    /// [`ElemSig::meta`]'s followed by `len`, `inner` and, for each strided input, its stride
    /// along the normalised axis: a strided input's offsets are found once per row and then
    /// stepped, not recomputed from the flat index at every element. The output is `out0`.
    pub(crate) fn normalize_source(
        &self,
        func: NormFn,
        storage: DType,
        warp: bool,
        cached: usize,
        wide: bool,
    ) -> Option<String> {
        let strided: Vec<usize> = (0..self.inputs.len())
            .filter(|&j| self.inputs[j].1 == Access::Strided)
            .collect();
        let cap = meta_cap(self.meta_len() + 2 + strided.len())?;
        let mut s = header(self.real, cap);
        let mut head = self.kernel_head(&[storage]);
        let consts = self.all_constants().len();
        let at = self.consts_at() + consts;
        let _ = writeln!(
            head,
            "  const long long len = m.v[{at}];\n  const long long inner = m.v[{}];\n  const long long rows = n / len;",
            at + 1
        );
        for (q, &j) in strided.iter().enumerate() {
            let _ = writeln!(head, "  const long long st{j} = m.v[{}];", at + 2 + q);
        }
        let mut row = String::new();
        self.offsets(&mut row, "    ", "base", "ob");
        let mut value = String::new();
        self.loads(
            &mut value,
            "      ",
            &|j| format!("const real x{j}"),
            true,
            &|j| format!("ob{j} + j * st{j}"),
        );
        let _ = writeln!(
            value,
            "      const real v = {};",
            expr_c(&self.outs[0].0, &mut 0)
        );
        let wide_load = (wide && cached >= 4).then(|| self.wide_row_load(cached));
        let body = format!(
            "{}{head}{}",
            row_reducers(warp),
            normalize_rows(
                func,
                storage,
                warp,
                cached,
                &row,
                &value,
                wide_load.as_deref()
            )
        );
        s.push_str(&dialect(&body, self.real));
        Some(s)
    }

    /// Whether the outputs and the contiguous inputs of a launch with these `TlMeta` words
    /// ([`ElemSig::meta`]) start where [`ElemSig::four_loads`] and [`four_stores`] may move
    /// four 16- or 32-bit values at once (a multiple of four elements).
    pub(crate) fn fours_aligned(&self, meta: &[i64]) -> bool {
        let aligned = |ptr: i64, d: DType| {
            let size = d.size() as u64;
            !(size == 2 || size == 4) || (ptr as u64).is_multiple_of(4 * size)
        };
        self.outs
            .iter()
            .enumerate()
            .all(|(o, (_, d))| meta.get(1 + o).is_some_and(|&p| aligned(p, *d)))
            && self.inputs.iter().enumerate().all(|(j, (d, a))| {
                *a != Access::Contiguous
                    || meta
                        .get(self.inputs_at() + j)
                        .is_some_and(|&p| aligned(p, *d))
            })
    }

    /// Code reading four consecutive elements of every input into `real {array}{j}[4]`, the
    /// first at `i0`: contiguous 16- and 32-bit inputs with one 8- or 16-byte load, other
    /// contiguous ones one by one, scalars once, and strided inputs at `strided(j, u)`.
    fn four_loads(
        &self,
        pad: &str,
        array: &str,
        strided: &dyn Fn(usize, usize) -> String,
    ) -> String {
        let mut code = String::new();
        for (j, (d, a)) in self.inputs.iter().enumerate() {
            let _ = writeln!(code, "{pad}real {array}{j}[4];");
            let lane = |u: usize, value: String| format!("{pad}  {array}{j}[{u}] = {value};\n");
            match (a, d) {
                (Access::Scalar, _) => {
                    let _ = writeln!(
                        code,
                        "{pad}{{ const real x = {}; {array}{j}[0] = x; {array}{j}[1] = x; {array}{j}[2] = x; {array}{j}[3] = x; }}",
                        load(*d, &format!("in{j}[0]"))
                    );
                }
                (Access::Contiguous, DType::F16 | DType::BF16) => {
                    let _ = writeln!(code, "{pad}{{ const uint2 w = *(const uint2*)(in{j} + i0);");
                    for (u, part) in ["w.x & 0xffffu", "w.x >> 16", "w.y & 0xffffu", "w.y >> 16"]
                        .iter()
                        .enumerate()
                    {
                        code.push_str(&lane(u, load(*d, &format!("(unsigned short)({part})"))));
                    }
                    let _ = writeln!(code, "{pad}}}");
                }
                (Access::Contiguous, DType::F32) => {
                    let _ = writeln!(
                        code,
                        "{pad}{{ const float4 w = *(const float4*)(in{j} + i0);"
                    );
                    for (u, part) in ["w.x", "w.y", "w.z", "w.w"].iter().enumerate() {
                        code.push_str(&lane(u, format!("(real){part}")));
                    }
                    let _ = writeln!(code, "{pad}}}");
                }
                (Access::Contiguous, _) => {
                    for u in 0..4 {
                        code.push_str(&lane(u, load(*d, &format!("in{j}[i0 + {u}]"))));
                    }
                }
                (Access::Strided, _) => {
                    for u in 0..4 {
                        code.push_str(&lane(u, load(*d, &format!("in{j}[{}]", strided(j, u)))));
                    }
                }
            }
        }
        code
    }

    /// The loads of a wide row (a row contiguous along the normalised axis, `inner` = 1, of a
    /// length divisible by four): each lane computes `vals` for groups of four consecutive
    /// elements, reading contiguous 16- and 32-bit inputs with one 8- or 16-byte access and a
    /// strided input at `ob + j · st` (see [`ElemSig::normalize_source`]).
    fn wide_row_load(&self, cached: usize) -> String {
        let mut code = format!(
            "#pragma unroll\n    for (int g = 0; g < {}; ++g) {{\n      const long long j0 = 4LL * (threadIdx.x & 31) + 128LL * g;\n      if (j0 < len) {{\n        const long long i0 = base + j0;\n",
            cached / 4
        );
        code.push_str(&self.four_loads("        ", "a", &|j, u| {
            format!("ob{j} + (j0 + {u}) * st{j}")
        }));
        code.push_str("#pragma unroll\n        for (int w = 0; w < 4; ++w) {\n");
        for j in 0..self.inputs.len() {
            let _ = writeln!(code, "          const real x{j} = a{j}[w];");
        }
        let _ = writeln!(
            code,
            "          vals[4 * g + w] = {};\n        }}\n      }}\n    }}",
            expr_c(&self.outs[0].0, &mut 0)
        );
        code
    }

    /// Whether [`ElemSig::vector_source`] can serve an index space whose innermost
    /// (coalesced) extent is `inner`: four consecutive elements must not cross a row when an
    /// input is read through strides.
    pub(crate) fn vectorizable(&self, inner: usize) -> bool {
        !self.raw()
            && (inner.is_multiple_of(4) || self.inputs.iter().all(|(_, a)| *a != Access::Strided))
    }

    /// The kernel of [`ElemSig::source`] for signatures whose contiguous inputs and outputs
    /// start at multiples of four elements: each thread handles four consecutive elements,
    /// moving contiguous 16- and 32-bit values with one 8- or 16-byte access (other types one
    /// by one); a strided input's offset is found once per four elements and stepped along
    /// the innermost axis. The last `n mod 4` elements go one by one. `None` when the argument
    /// block would be too large.
    pub(crate) fn vector_source(&self) -> Option<String> {
        let cap = meta_cap(self.meta_len())?;
        let k = self.inputs.len();
        let mut s = header(self.real, cap);
        let out_types: Vec<DType> = self.outs.iter().map(|(_, d)| *d).collect();
        let mut body = self.kernel_head(&out_types);
        body.push_str("  const long long groups = n >> 2;\n  const long long stride = (long long)gridDim.x * blockDim.x;\n  for (long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x; g < groups; g += stride) {\n    const long long i0 = g << 2;\n");
        self.offsets(&mut body, "    ", "i0", "o");
        let shape_at = self.inputs_at() + k;
        let mut q = 0;
        for (j, (_, a)) in self.inputs.iter().enumerate() {
            if *a == Access::Strided {
                // The stride along the innermost axis, from `TlMeta`.
                let inner = shape_at + 2 * self.rank + q * self.rank + self.rank - 1;
                q += 1;
                let _ = writeln!(body, "    const long long si{j} = m.v[{inner}];");
            }
        }
        body.push_str(&self.four_loads("    ", "r", &|j, u| format!("o{j} + {u} * si{j}")));
        for o in 0..self.outs.len() {
            let _ = writeln!(body, "    real y{o}[4];");
        }
        body.push_str("#pragma unroll\n    for (int u = 0; u < 4; ++u) {\n");
        for j in 0..k {
            let _ = writeln!(body, "      const real x{j} = r{j}[u];");
        }
        let mut next_const = 0;
        for (o, (e, _)) in self.outs.iter().enumerate() {
            let _ = writeln!(body, "      y{o}[u] = {};", expr_c(e, &mut next_const));
        }
        body.push_str("    }\n");
        for (o, (_, d)) in self.outs.iter().enumerate() {
            body.push_str(&four_stores(*d, "    ", &format!("out{o} + i0"), &|u| {
                format!("y{o}[{u}]")
            }));
        }
        body.push_str("  }\n  for (long long i = (groups << 2) + (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {\n");
        self.read_inputs(&mut body, "    ", &|j| format!("const real x{j}"), true);
        let mut next_const = 0;
        for (o, (e, d)) in self.outs.iter().enumerate() {
            let v = expr_c(e, &mut next_const);
            let _ = writeln!(body, "    out{o}[i] = {};", store(*d, &v));
        }
        body.push_str("  }\n}\n");
        s.push_str(&dialect(&body, self.real));
        Some(s)
    }

    /// The kernel source, or `None` when the argument block would be too large.
    pub(crate) fn source(&self) -> Option<String> {
        let cap = meta_cap(self.meta_len())?;
        let k = self.inputs.len();
        let mut s = header(self.real, cap);
        let out_types: Vec<DType> = self.outs.iter().map(|(_, d)| *d).collect();
        let mut body = self.kernel_head(&out_types);
        // Each thread handles ELEM_UNROLL elements a block apart, loading all of them before
        // computing any, so that several loads per thread are in flight at once (one 16-bit
        // load per thread at a time leaves most of the memory bandwidth unused).
        let _ = writeln!(
            body,
            "  const long long step = (long long)gridDim.x * blockDim.x * {ELEM_UNROLL};\n  for (long long first = (long long)blockIdx.x * blockDim.x * {ELEM_UNROLL} + threadIdx.x; first < n; first += step) {{"
        );
        if self.raw() {
            let _ = writeln!(body, "    {} r0[{ELEM_UNROLL}];", c_type(self.inputs[0].0));
        } else {
            for j in 0..k {
                let _ = writeln!(body, "    real r{j}[{ELEM_UNROLL}];");
            }
        }
        let _ = writeln!(
            body,
            "#pragma unroll\n    for (int u = 0; u < {ELEM_UNROLL}; ++u) {{\n      const long long i = first + (long long)u * blockDim.x;\n      if (i >= n) break;"
        );
        if self.raw() {
            self.read_inputs(&mut body, "      ", &|_| "r0[u]".into(), false);
        } else {
            self.read_inputs(&mut body, "      ", &|j| format!("r{j}[u]"), true);
        }
        body.push_str("    }\n");
        let _ = writeln!(
            body,
            "#pragma unroll\n    for (int u = 0; u < {ELEM_UNROLL}; ++u) {{\n      const long long i = first + (long long)u * blockDim.x;\n      if (i >= n) break;"
        );
        if self.raw() {
            body.push_str("      out0[i] = r0[u];\n");
        } else {
            for j in 0..k {
                let _ = writeln!(body, "      const real x{j} = r{j}[u];");
            }
            // Constants are numbered across the outputs' expressions, in order.
            let mut next_const = 0;
            for (o, (e, d)) in self.outs.iter().enumerate() {
                let v = expr_c(e, &mut next_const);
                let _ = writeln!(body, "      const real v{o} = {v};");
                let _ = writeln!(body, "      out{o}[i] = {};", store(*d, &format!("v{o}")));
            }
        }
        body.push_str("    }\n");
        body.push_str("  }\n}\n");
        s.push_str(&dialect(&body, self.real));
        Some(s)
    }
}

/// How a generated reduction accumulates: the accumulator's type (f64 for sums and means),
/// its start value, how two values combine, and the result from the accumulator `a` (a mean
/// divides by the variable named `count`).
struct FoldCode {
    acc: &'static str,
    init: &'static str,
    comb: &'static str,
    finish: String,
}

impl FoldCode {
    fn new(op: ReduceOp, count: &str) -> Self {
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
    fn combine(&self, a: &str, b: &str) -> String {
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
fn row_reducers(warp: bool) -> &'static str {
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
fn normalize_rows(
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
            "    real sum = 0.0f;\n{}    const real mean = tl_row_sum(sum, sh) / (real)len;\n    real var = 0.0f;\n{}    var = tl_row_sum(var, sh) / (real)len;\n    const real inv = 1.0f / sqrtf(var + 1e-5f);\n{}",
            each("      sum += v;\n"),
            each("      { const real d = v - mean; var += d * d; }\n"),
            each(&format!("      out0[i] = {};\n", store(storage, "(v - mean) * inv")))
        ),
    };
    format!(
        "  __shared__ real sh[{BLOCK}];\n  for (long long q = {first_row}; q < rows; q += {row_step}) {{\n    const long long base = (q / inner) * len * inner + (q % inner);\n{row}{work}  }}\n}}\n"
    )
}

/// [`normalize_rows`] for rows of at most `32·cached` elements: each lane computes its
/// `cached` values once, keeps them in registers, and reduces and writes from there (one read
/// of the inputs and one `expf` per element, not three reads and two).
fn normalize_cached_rows(
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
            "    real sum = 0.0f;\n{}    const real mean = tl_row_sum(sum, sh) / (real)len;\n    real var = 0.0f;\n{}    var = tl_row_sum(var, sh) / (real)len;\n    const real inv = 1.0f / sqrtf(var + 1e-5f);\n{write}",
            each("        sum += vals[u];\n"),
            each("        const real d = vals[u] - mean;\n        var += d * d;\n"),
        ),
    };
    format!(
        "  __shared__ real sh[{BLOCK}];\n  for (long long q = (long long)blockIdx.x * ({BLOCK} / 32) + threadIdx.x / 32; q < rows; q += (long long)gridDim.x * ({BLOCK} / 32)) {{\n    const long long base = (q / inner) * len * inner + (q % inner);\n{row}    real vals[{cached}];\n{load}{work}  }}\n}}\n"
    )
}

/// The stores of a wide row ([`normalize_cached_rows`]): each lane's groups of four
/// consecutive results (`result` over `vals[u]`) with one 8-byte (16-bit types) or 16-byte
/// (f32) store, else one by one.
fn wide_store(storage: DType, cached: usize, result: &str) -> String {
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
fn four_stores(d: DType, pad: &str, at: &str, value: &dyn Fn(usize) -> String) -> String {
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

/// Fills `n` elements of `width` bytes with one bit pattern. `TlMeta = [n, out, bits]`.
pub(crate) fn fill_source(width: usize) -> String {
    let t = match width {
        1 => "unsigned char",
        2 => "unsigned short",
        4 => "unsigned int",
        _ => "unsigned long long",
    };
    let mut s = header(Real::F32, 16);
    let _ = write!(
        s,
        "extern \"C\" __global__ void tl_kernel(const TlMeta m) {{\n  const long long n = m.v[0];\n  {t}* out = ({t}*)m.v[1];\n  const {t} v = ({t})(unsigned long long)m.v[2];\n  const long long step = (long long)gridDim.x * blockDim.x;\n  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) out[i] = v;\n}}\n"
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{BinaryFn, UnaryFn};

    fn sig(expr: MapExpr, inputs: Vec<(DType, Access)>, out: DType, rank: usize) -> ElemSig {
        ElemSig {
            real: Real::of(out),
            outs: vec![(expr, out)],
            inputs,
            rank,
        }
    }

    #[test]
    fn map_source_splices_the_op_table() {
        use MapExpr::*;
        let e = Binary(
            BinaryFn::Add,
            Box::new(Unary(UnaryFn::Gelu, Box::new(Input(0)))),
            Box::new(Binary(
                BinaryFn::Pow,
                Box::new(Input(1)),
                Box::new(Const(-2.5)),
            )),
        );
        let s = sig(
            e.clone(),
            vec![
                (DType::F32, Access::Contiguous),
                (DType::F16, Access::Strided),
            ],
            DType::BF16,
            2,
        );
        let src = s.source().unwrap_or_default();
        assert!(src.contains("typedef float real;"));
        assert!(src.contains("tl_gelu(") && src.contains("tl_erfc(float x)"));
        assert!(src.contains("tl_pow(x1, c0)"));
        assert!(src.contains("const real c0 = (real)__longlong_as_double(m.v[10]);"));
        assert!(src.contains("r0[u] = (real)(in0[i]);"), "{src}");
        assert!(src.contains("r1[u] = (real)tl_h2f(in1[o1]);"));
        assert!(src.contains("const real x1 = r1[u];"));
        assert!(src.contains("out0[i] = tl_f2bf((float)(v0));"));
        assert!(src.contains("struct TlMeta { long long v[16]; };"));
        for f in [
            "tl_pow",
            "tl_sig_t",
            "tl_sig_t_grad_a",
            "tl_sig_t_grad_t",
            "tl_gelu_grad",
        ] {
            assert!(src.contains(&format!("real {f}(")), "{f} missing");
        }
        // Two axes, one strided input: digits of i times its strides.
        assert!(
            src.contains("o1 += (long long)c * m.v[8];")
                && src.contains("o1 += (long long)c * m.v[9];")
        );
        assert!(src.contains("unsigned int rem = (unsigned int)i;"));
        assert!(src.contains("long long rem = (long long)i;"));
        assert_eq!(s.meta_len(), 2 + 2 + 2 + 2 + 2 + 1);
        let meta = s.meta(10, &[100], &[200, 300], &[2, 5], &[vec![1, 2]]);
        let c = (-2.5f64).to_bits() as i64;
        let (d2, d5) = (divisor(2), divisor(5));
        assert_eq!(meta, vec![10, 100, 200, 300, 2, 5, d2, d5, 1, 2, c]);
        // Another constant: the same kernel.
        let mut other = s.clone();
        other.outs[0].0 = MapExpr::Binary(
            BinaryFn::Add,
            Box::new(MapExpr::Unary(UnaryFn::Gelu, Box::new(MapExpr::Input(0)))),
            Box::new(MapExpr::Binary(
                BinaryFn::Pow,
                Box::new(MapExpr::Input(1)),
                Box::new(MapExpr::Const(3.0)),
            )),
        );
        assert_eq!(other.source(), s.source());

        let d = sig(
            e,
            vec![
                (DType::F64, Access::Scalar),
                (DType::F64, Access::Contiguous),
            ],
            DType::F64,
            1,
        );
        let src = d.source().unwrap_or_default();
        assert!(src.contains("typedef double real;"));
        assert!(
            src.contains("tl_erfc(double x) { return erfc(x); }"),
            "{src}"
        );
        assert!(!src.contains("erfcf(") && !src.contains("expf("));
        assert!(src.contains("tl_pow(x1, c0)"));
        assert!(src.contains("r0[u] = (real)(in0[0])"));
        // Conversions stay in float.
        assert!(src.contains("cvt.rn.f16.f32"));
    }

    #[test]
    fn several_outputs_share_one_pass_and_number_constants_in_order() {
        let two = ElemSig {
            outs: vec![
                (
                    MapExpr::Binary(
                        BinaryFn::Mul,
                        Box::new(MapExpr::Input(0)),
                        Box::new(MapExpr::Const(0.5)),
                    ),
                    DType::F32,
                ),
                (
                    MapExpr::Binary(
                        BinaryFn::Add,
                        Box::new(MapExpr::Input(1)),
                        Box::new(MapExpr::Const(2.0)),
                    ),
                    DType::BF16,
                ),
            ],
            inputs: vec![
                (DType::F32, Access::Contiguous),
                (DType::F32, Access::Contiguous),
            ],
            real: Real::F32,
            rank: 1,
        };
        let src = two.source().unwrap_or_default();
        assert!(src.contains("float* out0 = (float*)m.v[1];"), "{src}");
        assert!(src.contains("unsigned short* out1 = (unsigned short*)m.v[2];"));
        assert!(src.contains("const float* in0 = (const float*)m.v[3];"));
        assert!(src.contains("const real v0 = ((x0)*(c0));"), "{src}");
        assert!(src.contains("const real v1 = ((x1)+(c1));"), "{src}");
        assert!(src.contains("out1[i] = tl_f2bf((float)(v1));"));
        let meta = two.meta(7, &[10, 11], &[20, 21], &[7], &[]);
        assert_eq!(
            meta,
            vec![
                7,
                10,
                11,
                20,
                21,
                7,
                divisor(7),
                0.5f64.to_bits() as i64,
                2.0f64.to_bits() as i64
            ]
        );
        assert_eq!(two.meta_len(), meta.len());
    }

    #[test]
    fn raw_copy_and_bool_store() {
        let s = sig(
            MapExpr::Input(0),
            vec![(DType::I64, Access::Strided)],
            DType::I64,
            3,
        );
        let src = s.source().unwrap_or_default();
        assert!(src.contains("r0[u] = in0[o0];") && src.contains("out0[i] = r0[u];"));
        let b = sig(
            MapExpr::Unary(UnaryFn::Step, Box::new(MapExpr::Input(0))),
            vec![(DType::Bool, Access::Contiguous)],
            DType::Bool,
            1,
        );
        let src = b.source().unwrap_or_default();
        assert!(src.contains("((x0) > 0.0f ? 1.0f : 0.0f)"));
        assert!(src.contains("(unsigned char)((v0) != (real)0)"));
    }

    #[test]
    fn dialect_rewrites_names_and_literals_only() {
        let f = "expf(1.5f) + fmaxf(x, 2e-5f) + 0x7fffu + 3.0F + tl_expf_like + 7";
        assert_eq!(
            dialect(f, Real::F64),
            "exp(1.5) + fmax(x, 2e-5) + 0x7fffu + 3.0 + tl_expf_like + 7"
        );
        assert_eq!(dialect(f, Real::F32), f);
    }

    const REDUCE_LAYOUTS: [ReduceLayout; 4] = [
        ReduceLayout::PerThread,
        ReduceLayout::Warp,
        ReduceLayout::Block,
        ReduceLayout::Column,
    ];

    #[test]
    fn other_kernels_generate() {
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
            for real in [Real::F32, Real::F64] {
                for layout in REDUCE_LAYOUTS {
                    let s = reduce_source(op, real, real.dtype(), layout);
                    assert!(s.contains("tl_kernel"));
                    if op == ReduceOp::Max {
                        assert_eq!(real == Real::F32, s.contains("fmaxf("));
                    }
                }
                let s = scatter_source(op, real);
                assert!(s.contains("atomic"));
                let _ = scatter_finish_source(op, real);
            }
        }
        let split = reduce_source(ReduceOp::Mean, Real::F32, DType::F32, ReduceLayout::Block);
        assert!(split.contains("(real)(a / (double)count)"));
        assert!(split.contains("const long long start = (q % chunks) * len;"));
        let warp = reduce_source(ReduceOp::Sum, Real::F32, DType::BF16, ReduceLayout::Warp);
        assert!(
            warp.contains("(double)(real)tl_bf2f(x[row * r + j])"),
            "{warp}"
        );
        assert!(warp.contains("__shfl_xor_sync"));
        let col = reduce_source(ReduceOp::Max, Real::F32, DType::F16, ReduceLayout::Column);
        assert!(col.contains("x[i * cols + col]"), "{col}");
        let n = normalize_source(NormFn::LayerNorm, Real::F64, DType::F64, false, 0);
        assert!(n.contains("sqrt(var + 1e-5)"));
        let n = normalize_source(NormFn::Softmax, Real::F32, DType::BF16, true, 0);
        assert!(
            n.contains("const real v = (real)tl_bf2f(x[i]);") && n.contains("expf(v - mx)"),
            "{n}"
        );
        assert!(n.contains("__shfl_xor_sync") && n.contains("unsigned short* out"));
        assert!(gather_source(DType::Bool).contains("unsigned char* out"));
        assert!(fill_source(8).contains("unsigned long long* out"));
    }

    #[test]
    fn divisors_divide_like_the_hardware_would() {
        let mut seed = 12345u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for e in [
            1usize,
            2,
            3,
            5,
            7,
            128,
            129,
            1000,
            12288,
            65535,
            65536,
            1 << 30,
            (1 << 31) - 1,
        ] {
            let w = divisor(e) as u64;
            let (mult, shift) = (w & 0xffff_ffff, w >> 32);
            let check = |x: u64| {
                let hi = (x * mult) >> 32;
                let q = (hi + x) >> shift;
                assert_eq!(q, x / e as u64, "{x} / {e}");
            };
            for x in [0u64, 1, e as u64 - 1, e as u64, e as u64 + 1, (1 << 31) - 1] {
                check(x);
            }
            for _ in 0..2000 {
                check(next() % (1 << 31));
            }
        }
    }

    #[test]
    fn coalescing_merges_walkable_axes() {
        // A contiguous [2, 3, 4] with a contiguous output: one axis.
        let (s, st) = coalesce(&[2, 3, 4], &[vec![12, 4, 1], vec![12, 4, 1]]);
        assert_eq!((s, st), (vec![24], vec![vec![1], vec![1]]));
        // A transposed input keeps two axes; extent-1 axes vanish.
        let (s, st) = coalesce(&[3, 1, 4], &[vec![4, 4, 1], vec![1, 7, 3]]);
        assert_eq!((s, st), (vec![3, 4], vec![vec![4, 1], vec![1, 3]]));
        // A broadcast axis merges with another broadcast one.
        let (s, st) = coalesce(&[2, 3, 4], &[vec![12, 4, 1], vec![0, 0, 1]]);
        assert_eq!((s, st), (vec![6, 4], vec![vec![4, 1], vec![0, 1]]));
        let (s, _) = coalesce(&[1, 1], &[vec![1, 1]]);
        assert!(s.is_empty());
    }

    #[test]
    fn launch_keys_ignore_constant_values_only() {
        let sig = |expr: MapExpr, out: DType| ElemSig {
            outs: vec![(expr, out)],
            inputs: vec![(DType::F32, Access::Contiguous)],
            real: Real::F32,
            rank: 1,
        };
        let scaled = |c: f64| {
            MapExpr::Binary(
                BinaryFn::Mul,
                Box::new(MapExpr::Input(0)),
                Box::new(MapExpr::Const(c)),
            )
        };
        let a = sig(scaled(0.5), DType::F32);
        assert_eq!(a.key(), sig(scaled(-3.0), DType::F32).key());
        assert_eq!(a.source(), sig(scaled(-3.0), DType::F32).source());
        assert_ne!(a.key(), sig(scaled(0.5), DType::F16).key());
        let added = MapExpr::Binary(
            BinaryFn::Add,
            Box::new(MapExpr::Input(0)),
            Box::new(MapExpr::Const(0.5)),
        );
        assert_ne!(a.key(), sig(added, DType::F32).key());
    }

    #[test]
    fn cache_keys_depend_on_source_and_target() {
        let a = cache_key("kernel", "compute_90");
        assert_eq!(a, cache_key("kernel", "compute_90"));
        assert_ne!(a, cache_key("kernel", "compute_80"));
        assert_ne!(a, cache_key("kernel2", "compute_90"));
        assert_ne!(cache_key("ab", "c"), cache_key("a", "bc"));
        assert_eq!(meta_cap(10), Some(16));
        assert_eq!(meta_cap(100), Some(480));
        assert_eq!(meta_cap(481), None);
    }

    /// Every kind of generated kernel, in every type it is generated for.
    fn every_source() -> Vec<(String, String)> {
        use ReduceOp::{Max, Mean, Min, Sum};
        let (unary, binary) = (UnaryFn::ALL, BinaryFn::ALL);
        // One expression using every function, over four inputs and a constant.
        let mut expr = MapExpr::Input(0);
        for (k, f) in unary.iter().enumerate() {
            expr = MapExpr::Unary(*f, Box::new(expr));
            let b = binary[k % binary.len()];
            let other = if k % 3 == 0 {
                MapExpr::Const(0.5)
            } else {
                MapExpr::Input(1 + k % 3)
            };
            expr = MapExpr::Binary(b, Box::new(expr), Box::new(other));
        }
        let floats = [DType::F32, DType::F64, DType::F16, DType::BF16];
        let mut out = super::super::paths::example_sources();
        out.extend(super::super::closure::example_sources());
        for out_t in [DType::F32, DType::F64, DType::F16, DType::BF16, DType::Bool] {
            let inputs = vec![
                (DType::F16, Access::Contiguous),
                (DType::BF16, Access::Strided),
                (DType::Bool, Access::Scalar),
                (out_t, Access::Strided),
            ];
            let e = sig(expr.clone(), inputs, out_t, 3);
            out.push((format!("map -> {out_t}"), e.source().unwrap_or_default()));
            let copy = sig(MapExpr::Input(0), vec![(out_t, Access::Strided)], out_t, 2);
            out.push((format!("copy {out_t}"), copy.source().unwrap_or_default()));
            let mut many = sig(expr.clone(), e.inputs.clone(), out_t, 3);
            many.outs.push((MapExpr::Input(3), DType::F32));
            many.outs.push((
                MapExpr::Unary(UnaryFn::Exp, Box::new(MapExpr::Input(1))),
                out_t,
            ));
            out.push((
                format!("three outputs {out_t}"),
                many.source().unwrap_or_default(),
            ));
            let mut flat = many.clone();
            for (_, a) in flat.inputs.iter_mut() {
                if *a == Access::Strided {
                    *a = Access::Contiguous;
                }
            }
            out.push((
                format!("three outputs, four at a time {out_t}"),
                flat.vector_source().unwrap_or_default(),
            ));
            out.push((
                format!("three outputs, four at a time, strided {out_t}"),
                many.vector_source().unwrap_or_default(),
            ));
            if out_t != DType::Bool {
                for func in [NormFn::Softmax, NormFn::LayerNorm] {
                    for (warp, cached, wide) in [
                        (false, 0, false),
                        (true, 0, false),
                        (true, 4, false),
                        (true, 8, true),
                    ] {
                        out.push((
                            format!("map_normalize {func:?} {out_t} {warp} {cached} {wide}"),
                            e.normalize_source(func, out_t, warp, cached, wide)
                                .unwrap_or_default(),
                        ));
                    }
                }
                let red = sig(expr.clone(), e.inputs.clone(), Real::of(out_t).dtype(), 3);
                for op in [Sum, Mean, Max, Min] {
                    for warp in [false, true] {
                        out.push((
                            format!("map_reduce {op:?} {out_t} {warp}"),
                            red.reduce_source(op, warp).unwrap_or_default(),
                        ));
                    }
                }
            }
        }
        for op in [Sum, Mean, Max, Min] {
            for real in [Real::F32, Real::F64] {
                for layout in REDUCE_LAYOUTS {
                    for storage in floats {
                        if Real::of(storage) == real {
                            out.push((
                                format!("reduce {op:?} {real:?} {storage} {layout:?}"),
                                reduce_source(op, real, storage, layout),
                            ));
                        }
                    }
                }
                out.push((format!("scatter {op:?} {real:?}"), scatter_source(op, real)));
                out.push((
                    format!("scatter finish {op:?} {real:?}"),
                    scatter_finish_source(op, real),
                ));
            }
        }
        for func in [NormFn::Softmax, NormFn::LayerNorm] {
            for storage in floats {
                for (warp, cached) in [(false, 0), (true, 0), (true, 1), (true, 32)] {
                    out.push((
                        format!("normalize {func:?} {storage} {warp} {cached}"),
                        normalize_source(func, Real::of(storage), storage, warp, cached),
                    ));
                }
            }
        }
        for d in [
            DType::F32,
            DType::F64,
            DType::F16,
            DType::BF16,
            DType::Bool,
            DType::I64,
        ] {
            out.push((format!("gather {d}"), gather_source(d)));
        }
        for width in [1, 2, 4, 8] {
            out.push((format!("fill {width}"), fill_source(width)));
        }
        for storage in floats {
            out.push((
                format!("non-finite {storage}"),
                non_finite_source(storage, 64),
            ));
        }
        out.extend(super::super::attention::sample_sources());
        out.extend(super::super::rows::sample_sources());
        out
    }

    /// Compiles every generated kernel with NVRTC where the library can be loaded (no GPU is
    /// needed), so a kernel that does not compile is found on any machine with the CUDA
    /// runtime compiler, not only at run time on a GPU.
    #[test]
    fn every_generated_kernel_compiles_with_nvrtc() {
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            eprintln!("skipped: NVRTC (libnvrtc.so) not found; set LD_LIBRARY_PATH to its folder");
            return;
        }
        for (what, src) in every_source() {
            assert!(src.contains("tl_kernel"), "{what}: no kernel");
            let opts = cudarc::nvrtc::CompileOptions {
                options: vec!["--gpu-architecture=compute_90".into()],
                ..Default::default()
            };
            if let Err(e) = cudarc::nvrtc::compile_ptx_with_opts(&src, opts) {
                let log = match e {
                    cudarc::nvrtc::CompileError::CompileError { log, .. } => {
                        log.to_string_lossy().into_owned()
                    }
                    other => format!("{other:?}"),
                };
                panic!("{what} does not compile:\n{log}\n--- source ---\n{src}");
            }
        }
    }
}
