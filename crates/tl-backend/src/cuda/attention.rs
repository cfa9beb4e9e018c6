//! Attention in one kernel (`Backend::attention` on CUDA): each block takes one batch element
//! and 128 queries (16 per warp). Blocks of 64 keys and their values are copied into shared
//! memory with asynchronous 16-byte copies, the next block while the current one is used
//! where two fit. The scores come from the tensor cores (`mma.sync` m16n8k16, f32
//! accumulation); the scores' function (scale, mask, bias…) runs in registers, inputs that are
//! the same for every query (a padding mask) read once per block of keys; a running maximum
//! and sum per query give the softmax without a second pass (the online softmax); and the
//! weights, still in registers, multiply the values on the tensor cores, whose fragments
//! `ldmatrix.trans` reads straight from the row-major copy. Neither the scores nor the
//! weights reach memory, and the result is written straight into the layout the caller asked
//! for.
//!
//! It takes 16-bit programs on GPUs of compute capability 8.0 or newer whose queries and keys
//! have up to 128 features (a multiple of 16) and whose values up to 128 (a multiple of 8),
//! each stored with unit stride along the feature and with offsets and other strides in
//! multiples of 8 elements; anything else is computed by the composed default.

use super::codegen::{self, Real};
use super::{CudaBackend, DevRef};
use crate::attention::{composed, AttentionArgs};
use crate::check::check_labels;
use crate::dtype::DType;
use crate::error::Result;
use crate::ops::MapExpr;
use crate::tensor::Tensor;
use std::fmt::Write as _;

/// Queries per block (16 per warp).
const QUERIES: usize = 128;

/// Keys per staged block (`KB` in the kernel).
const KEYS_PER_BLOCK: usize = 64;

/// What a generated attention kernel depends on.
#[derive(Clone, Debug, Hash, PartialEq)]
struct Signature {
    /// Features of queries and keys.
    dk: usize,
    /// Features of values.
    dv: usize,
    /// Element type of Q, K, V and the result (f16 or bf16).
    dtype: DType,
    /// Element type of each extra input of the scores' function, and whether it is the same
    /// for every query (a padding mask): such an input is staged in shared memory once per
    /// block of keys instead of being read for every score.
    extras: Vec<(DType, bool)>,
    /// Whether every offset within one batch element fits in 32 bits.
    narrow: bool,
}

/// One tensor's stride along `label`, 0 where it lacks the label or has extent 1 there.
fn stride(t: &Tensor, labels: &[u32], label: u32) -> usize {
    match labels.iter().position(|&l| l == label) {
        Some(a) if t.shape()[a] > 1 => t.layout.strides[a],
        _ => 0,
    }
}

/// The extent of `label` in a tensor that has it.
fn extent(t: &Tensor, labels: &[u32], label: u32) -> Option<usize> {
    labels
        .iter()
        .position(|&l| l == label)
        .map(|a| t.shape()[a])
}

/// The kernel's view of the operands: batch axes (at most two), query, key and feature
/// labels. `None` when the kernel does not cover the call.
struct Roles {
    batch: Vec<u32>,
    query: u32,
    feature: u32,
    value: u32,
}

fn roles(at: &AttentionArgs<'_>) -> Option<Roles> {
    let (ql, kl, vl) = (at.q.1, at.k.1, at.v.1);
    let in_scores = |l: &u32| at.scores.contains(l);
    let features: Vec<u32> = ql
        .iter()
        .filter(|l| kl.contains(l) && !in_scores(l))
        .copied()
        .collect();
    let queries: Vec<u32> = at
        .scores
        .iter()
        .filter(|l| ql.contains(l) && !kl.contains(l))
        .copied()
        .collect();
    let (&[feature], &[query]) = (&features[..], &queries[..]) else {
        return None;
    };
    let batch: Vec<u32> = at
        .scores
        .iter()
        .filter(|&&l| l != query && l != at.key)
        .copied()
        .collect();
    let values: Vec<u32> = vl
        .iter()
        .filter(|l| !batch.contains(l) && **l != at.key)
        .copied()
        .collect();
    let &[value] = &values[..] else {
        return None;
    };
    let covered = |labels: &[u32], own: &[u32]| {
        labels.len() == batch.len() + own.len()
            && batch.iter().chain(own).all(|l| labels.contains(l))
    };
    let ok = batch.len() <= 2
        && covered(ql, &[query, feature])
        && covered(kl, &[at.key, feature])
        && covered(vl, &[at.key, value])
        && covered(at.out, &[query, value])
        && at.out.last() == Some(&value);
    ok.then_some(Roles {
        batch,
        query,
        feature,
        value,
    })
}

impl CudaBackend {
    /// Attention in one kernel where it applies, else the composed default.
    pub(crate) fn attention_call(&self, at: &AttentionArgs<'_>) -> Result<Tensor> {
        match self.fused_attention(at)? {
            Some(t) => Ok(t),
            None => composed(self, at),
        }
    }

    /// Attention in one kernel, or `None` when the kernel does not cover the call (the
    /// element type, the GPU, the feature counts or the layouts; see the module's note).
    pub fn fused_attention(&self, at: &AttentionArgs<'_>) -> Result<Option<Tensor>> {
        let tensor_cores = self
            .target
            .strip_prefix("compute_")
            .and_then(|c| c.parse::<u32>().ok())
            .is_some_and(|c| c >= 80);
        let half = matches!(at.dtype, DType::F16 | DType::BF16);
        let same_type = [at.q.0, at.k.0, at.v.0].iter().all(|t| t.dtype == at.dtype);
        let extras_ok = at
            .extra
            .iter()
            .all(|t| matches!(t.dtype, DType::F32 | DType::F16 | DType::BF16));
        if !tensor_cores || !half || !same_type || !extras_ok {
            return Ok(None);
        }
        // Malformed labels are left to the composed default, which reports them.
        let labelled = [("queries", at.q), ("keys", at.k), ("values", at.v)]
            .iter()
            .all(|(what, (t, l))| check_labels(what, l, t.rank()).is_ok())
            && at.extra.iter().all(|t| t.rank() == at.scores.len());
        if !labelled {
            return Ok(None);
        }
        let Some(r) = roles(at) else {
            return Ok(None);
        };
        let (q, ql) = at.q;
        let (k, kl) = at.k;
        let (v, vl) = at.v;
        let dims = (
            extent(q, ql, r.query),
            extent(k, kl, at.key),
            extent(q, ql, r.feature),
            extent(v, vl, r.value),
        );
        let (Some(m), Some(n), Some(dk), Some(dv)) = dims else {
            return Ok(None);
        };
        let unit = stride(q, ql, r.feature) == 1
            && stride(k, kl, r.feature) == 1
            && stride(v, vl, r.value) == 1;
        if !unit
            || !dk.is_multiple_of(16)
            || dk > 128
            || !dv.is_multiple_of(8)
            || dv > 128
            || m == 0
            || n == 0
        {
            return Ok(None);
        }
        let batch: Vec<usize> = r
            .batch
            .iter()
            .map(|&b| extent(q, ql, b).unwrap_or(1))
            .collect();
        let (nb0, nb1) = match batch[..] {
            [] => (1, 1),
            [a] => (1, a),
            [a, b] => (a, b),
            _ => return Ok(None),
        };
        // Two batch axes, the missing ones first (a label no tensor has: stride 0).
        let axes: Vec<u32> = std::iter::repeat_n(u32::MAX, 2 - r.batch.len())
            .chain(r.batch.iter().copied())
            .collect();
        let strides = |t: &Tensor, labels: &[u32], row: u32| -> Vec<usize> {
            axes.iter()
                .map(|&b| stride(t, labels, b))
                .chain([stride(t, labels, row)])
                .collect()
        };
        let (sq, sk, sv) = (
            strides(q, ql, r.query),
            strides(k, kl, at.key),
            strides(v, vl, at.key),
        );
        // 16-byte copies of eight 16-bit features need offsets and strides in multiples of 8.
        let even = |t: &Tensor, s: &[usize]| {
            t.layout.offset.is_multiple_of(8) && s.iter().all(|x| x.is_multiple_of(8))
        };
        if !even(q, &sq) || !even(k, &sk) || !even(v, &sv) {
            return Ok(None);
        }
        let mut out_shape = Vec::with_capacity(at.out.len());
        for &l in at.out {
            let e = if l == r.value {
                dv
            } else if l == r.query {
                m
            } else {
                extent(q, ql, l).unwrap_or(1)
            };
            out_shape.push(e);
        }
        let numel = crate::check::numel_checked(&out_shape)?;
        let out = self.alloc(numel, at.dtype)?;
        let out_layout = crate::tensor::Layout::contiguous(&out_shape);
        let so: Vec<usize> = axes
            .iter()
            .chain([&r.query])
            .map(|&l| match at.out.iter().position(|&x| x == l) {
                Some(a) if out_shape[a] > 1 => out_layout.strides[a],
                _ => 0,
            })
            .collect();
        let refs: Vec<DevRef> = [q, k, v]
            .iter()
            .map(|t| self.dev("attention", t))
            .collect::<Result<_>>()?;
        let extra_refs: Vec<DevRef> = at
            .extra
            .iter()
            .map(|t| self.dev("attention", t))
            .collect::<Result<_>>()?;
        let qtiles = m.div_ceil(QUERIES);
        let mut meta: Vec<i64> = vec![m as i64, n as i64, nb1 as i64, qtiles as i64];
        for (t, d) in [q, k, v].iter().zip(&refs) {
            meta.push((d.base + (t.layout.offset * at.dtype.size()) as u64) as i64);
        }
        meta.push(out.ptr() as i64);
        for s in [&sq, &sk, &sv, &so] {
            meta.extend(s.iter().map(|&x| x as i64));
        }
        for (t, d) in at.extra.iter().zip(&extra_refs) {
            meta.push((d.base + (t.layout.offset * t.dtype.size()) as u64) as i64);
            let rank = t.rank();
            let mut s = Vec::with_capacity(4);
            for &l in axes.iter().chain([&r.query, &at.key]) {
                s.push(match at.scores.iter().position(|&x| x == l) {
                    Some(a) if a < rank && t.shape()[a] > 1 => t.layout.strides[a] as i64,
                    _ => 0,
                });
            }
            meta.extend(s);
        }
        let mut consts = Vec::new();
        codegen::constants(at.expr, &mut consts);
        meta.extend(consts.iter().map(|c| c.to_bits() as i64));
        if codegen::meta_cap(meta.len()).is_none() {
            return Ok(None);
        }
        // The largest offset within one batch element, of every operand.
        let reach = |rows: usize, s: &[usize], width: usize| {
            (rows.saturating_sub(1) as u128) * (s[2] as u128) + width as u128
        };
        let mut widest = [
            reach(m, &sq, dk),
            reach(n, &sk, dk),
            reach(n, &sv, dv),
            reach(m, &so, dv),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        let mut per_key = Vec::with_capacity(at.extra.len());
        for k in 0..at.extra.len() {
            let words = &meta[20 + 5 * k..25 + 5 * k];
            let (xq, xk) = (words[3] as u128, words[4] as u128);
            widest = widest.max((m as u128) * xq + (n as u128) * xk + 1);
            per_key.push(xq == 0);
        }
        let sig = Signature {
            dk,
            dv,
            dtype: at.dtype,
            extras: at
                .extra
                .iter()
                .zip(per_key)
                .map(|(t, k)| (t.dtype, k))
                .collect(),
            narrow: widest < i32::MAX as u128,
        };
        let blocks = nb0 * nb1 * qtiles;
        let Ok(grid) = u32::try_from(blocks) else {
            return Ok(None);
        };
        let cap = codegen::meta_cap(meta.len()).unwrap_or(16);
        self.launch(
            codegen::kernel_key(&("attention", &sig, codegen::expr_key(at.expr), cap)),
            || Ok(source(&sig, at.expr, cap)),
            &meta,
            grid,
        )?;
        drop((refs, extra_refs));
        Ok(Some(CudaBackend::wrap(out, &out_shape)))
    }
}

/// Buffers of keys and values: two (the next block loads while this one is used) where they
/// fit in 48 KiB of shared memory with the per-key inputs, else one.
fn stages(sig: &Signature) -> usize {
    let per_key = sig.extras.iter().filter(|(_, k)| *k).count();
    let one = KEYS_PER_BLOCK * ((sig.dk + 8) + (sig.dv + 8)) * 2 + KEYS_PER_BLOCK * 4 * per_key;
    if 2 * one <= 46 * 1024 {
        2
    } else {
        1
    }
}

/// The kernel for a signature and a scores' function.
fn source(sig: &Signature, expr: &MapExpr, cap: usize) -> String {
    let (dk, dv) = (sig.dk, sig.dv);
    let ix = if sig.narrow { "int" } else { "long long" };
    let stages = stages(sig);
    let bf = sig.dtype == DType::BF16;
    let ty = if bf { "bf16" } else { "f16" };
    let mut s = codegen::header(Real::F32, cap);
    let _ = write!(
        s,
        r#"
#define DK {dk}
#define DV {dv}
#define KB {KEYS_PER_BLOCK}
#define STAGES {stages}
#define TL_INF __int_as_float(0x7f800000)
typedef {ix} ix;
__device__ __forceinline__ unsigned int tl_pack(float lo, float hi) {{
  unsigned int r; asm("cvt.rn.{ty}x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo)); return r;
}}
__device__ __forceinline__ void tl_cp16(void* dst, const void* src, int bytes) {{
  const unsigned int d = (unsigned int)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(d), "l"(src), "r"(bytes));
}}
__device__ __forceinline__ void tl_commit() {{ asm volatile("cp.async.commit_group;"); }}
__device__ __forceinline__ void tl_wait0() {{ asm volatile("cp.async.wait_group 0;" ::: "memory"); }}
__device__ __forceinline__ void tl_wait1() {{ asm volatile("cp.async.wait_group 1;" ::: "memory"); }}
__device__ __forceinline__ void tl_ldsm_t2(unsigned int& b0, unsigned int& b1, const void* p) {{
  const unsigned int a = (unsigned int)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {{%0, %1}}, [%2];" : "=r"(b0), "=r"(b1) : "r"(a));
}}
__device__ __forceinline__ void tl_mma(float* d, const unsigned int* a, unsigned int b0, unsigned int b1) {{
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.{ty}.{ty}.f32 {{%0,%1,%2,%3}}, {{%4,%5,%6,%7}}, {{%8,%9}}, {{%0,%1,%2,%3}};"
    : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
    : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}}
extern "C" __global__ void __launch_bounds__(256) tl_kernel(const TlMeta m) {{
  __shared__ __align__(16) unsigned short ks[STAGES][KB][DK + 8];
  __shared__ __align__(16) unsigned short vs[STAGES][KB][DV + 8];
  const ix M = (ix)m.v[0], N = (ix)m.v[1];
  const long long NB1 = m.v[2], QT = m.v[3];
  const unsigned short* q = (const unsigned short*)m.v[4];
  const unsigned short* k = (const unsigned short*)m.v[5];
  const unsigned short* v = (const unsigned short*)m.v[6];
  unsigned short* out = (unsigned short*)m.v[7];
  const long long bi = blockIdx.x / QT, qt = blockIdx.x % QT;
  const long long b0 = bi / NB1, b1 = bi % NB1;
  q += b0 * m.v[8] + b1 * m.v[9];
  const ix sq = (ix)m.v[10];
  k += b0 * m.v[11] + b1 * m.v[12];
  const ix sk = (ix)m.v[13];
  v += b0 * m.v[14] + b1 * m.v[15];
  const ix sv = (ix)m.v[16];
  out += b0 * m.v[17] + b1 * m.v[18];
  const ix so = (ix)m.v[19];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const ix r0 = (ix)qt * {QUERIES} + warp * 16 + g, r1 = r0 + 8;
  // Query fragments (A operand, row-major): rows g and g+8 of this warp's 16.
  unsigned int qa[DK / 16][4];
  for (int c = 0; c < DK / 16; ++c) {{
    const int f = c * 16 + 2 * t;
    qa[c][0] = r0 < M ? *(const unsigned int*)(q + r0 * sq + f) : 0u;
    qa[c][1] = r1 < M ? *(const unsigned int*)(q + r1 * sq + f) : 0u;
    qa[c][2] = r0 < M ? *(const unsigned int*)(q + r0 * sq + f + 8) : 0u;
    qa[c][3] = r1 < M ? *(const unsigned int*)(q + r1 * sq + f + 8) : 0u;
  }}
  const ix e0 = r0 < M ? r0 : M - 1, e1 = r1 < M ? r1 : M - 1;
"#
    );
    // Extra inputs: base pointer and strides (b0, b1, query, key), then the constants.
    let mut at = 20;
    for (j, (d, per_key)) in sig.extras.iter().enumerate() {
        let c = codegen::c_type(*d);
        if *per_key {
            let _ = writeln!(s, "  __shared__ float xs{}[STAGES][KB];", j + 1);
        }
        let _ = writeln!(
            s,
            "  const {c}* x{n}p = (const {c}*)m.v[{at}] + b0 * m.v[{a1}] + b1 * m.v[{a2}];\n  \
             const ix x{n}q = (ix)m.v[{a3}], x{n}k = (ix)m.v[{a4}];",
            n = j + 1,
            a1 = at + 1,
            a2 = at + 2,
            a3 = at + 3,
            a4 = at + 4,
        );
        at += 5;
    }
    let mut consts = Vec::new();
    codegen::constants(expr, &mut consts);
    for j in 0..consts.len() {
        let _ = writeln!(
            s,
            "  const real c{j} = (real)__longlong_as_double(m.v[{}]);",
            at + j
        );
    }
    let score = codegen::expr_c(expr, &mut 0);
    let extra_loads: String = sig
        .extras
        .iter()
        .enumerate()
        .map(|(j, (d, per_key))| {
            let n = j + 1;
            if *per_key {
                format!(" const real x{n} = xs{n}[st][kk];")
            } else {
                let value = codegen::load(*d, &format!("x{n}p[row * x{n}q + key * x{n}k]"));
                format!(" const real x{n} = {value};")
            }
        })
        .collect();
    let extra_staging: String = sig
        .extras
        .iter()
        .enumerate()
        .filter(|(_, (_, per_key))| *per_key)
        .map(|(j, (d, _))| {
            let n = j + 1;
            let value = codegen::load(*d, &format!("x{n}p[(kb_ + w) * x{n}k]"));
            format!(
                "  for (int w = threadIdx.x; w < KB; w += 256) xs{n}[st_][w] = kb_ + w < N ? {value} : 0.f; \\\n"
            )
        })
        .collect();
    let _ = write!(
        s,
        r#"  float o[DV / 8][4];
  for (int d = 0; d < DV / 8; ++d) {{ o[d][0] = 0.f; o[d][1] = 0.f; o[d][2] = 0.f; o[d][3] = 0.f; }}
  float mx0 = -TL_INF, mx1 = -TL_INF, l0 = 0.f, l1 = 0.f;
  // Stages keys and values of the block of keys from KB0 into buffer ST: 16-byte
  // asynchronous copies (zeros past the last key), per-key inputs by plain loads.
#define TL_STAGE(ST, KB0) {{ \
  const int st_ = (ST); const ix kb_ = (KB0); \
  for (int w = threadIdx.x; w < KB * DK / 8; w += 256) {{ \
    const int key = w / (DK / 8), f = (w % (DK / 8)) * 8; const bool in = kb_ + key < N; \
    tl_cp16(&ks[st_][key][f], in ? k + (kb_ + key) * sk + f : k, in ? 16 : 0); }} \
  for (int w = threadIdx.x; w < KB * DV / 8; w += 256) {{ \
    const int key = w / (DV / 8), f = (w % (DV / 8)) * 8; const bool in = kb_ + key < N; \
    tl_cp16(&vs[st_][key][f], in ? v + (kb_ + key) * sv + f : v, in ? 16 : 0); }} \
{extra_staging}  tl_commit(); }}
  const int nkb = (int)((N + KB - 1) / KB);
  TL_STAGE(0, 0)
  for (int it = 0; it < nkb; ++it) {{
    const ix kb = (ix)it * KB;
    const int st = it % STAGES;
    if (STAGES == 2 && it + 1 < nkb) {{
      TL_STAGE((it + 1) % STAGES, kb + KB)
      tl_wait1();
    }} else {{
      tl_wait0();
    }}
    __syncthreads();
    float sc[KB / 8][4];
    for (int nt = 0; nt < KB / 8; ++nt) {{
      sc[nt][0] = 0.f; sc[nt][1] = 0.f; sc[nt][2] = 0.f; sc[nt][3] = 0.f;
      for (int c = 0; c < DK / 16; ++c) {{
        const unsigned int kb0 = *(const unsigned int*)&ks[st][nt * 8 + g][c * 16 + 2 * t];
        const unsigned int kb1 = *(const unsigned int*)&ks[st][nt * 8 + g][c * 16 + 2 * t + 8];
        tl_mma(sc[nt], qa[c], kb0, kb1);
      }}
    }}
    // The scores' function, with keys past the end masked out; running maxima.
    float bm0 = -TL_INF, bm1 = -TL_INF;
    for (int nt = 0; nt < KB / 8; ++nt) {{
      for (int e = 0; e < 4; ++e) {{
        const int kk = nt * 8 + 2 * t + (e & 1);
        const ix key = kb + kk;
        const ix row = e < 2 ? e0 : e1;
        float y = -TL_INF;
        if (key < N) {{
          const real x0 = sc[nt][e];{extra_loads}
          y = (float)({score});
        }}
        sc[nt][e] = y;
      }}
      bm0 = fmaxf(bm0, fmaxf(sc[nt][0], sc[nt][1]));
      bm1 = fmaxf(bm1, fmaxf(sc[nt][2], sc[nt][3]));
    }}
    bm0 = fmaxf(bm0, __shfl_xor_sync(0xffffffffu, bm0, 1));
    bm0 = fmaxf(bm0, __shfl_xor_sync(0xffffffffu, bm0, 2));
    bm1 = fmaxf(bm1, __shfl_xor_sync(0xffffffffu, bm1, 1));
    bm1 = fmaxf(bm1, __shfl_xor_sync(0xffffffffu, bm1, 2));
    const float n0 = fmaxf(mx0, bm0), n1 = fmaxf(mx1, bm1);
    const float z0 = n0 == -TL_INF ? 0.f : n0, z1 = n1 == -TL_INF ? 0.f : n1;
    const float a0 = __expf(mx0 - z0), a1 = __expf(mx1 - z1);
    mx0 = n0; mx1 = n1;
    l0 *= a0; l1 *= a1;
    for (int d = 0; d < DV / 8; ++d) {{ o[d][0] *= a0; o[d][1] *= a0; o[d][2] *= a1; o[d][3] *= a1; }}
    for (int nt = 0; nt < KB / 8; ++nt) {{
      sc[nt][0] = __expf(sc[nt][0] - z0); sc[nt][1] = __expf(sc[nt][1] - z0);
      sc[nt][2] = __expf(sc[nt][2] - z1); sc[nt][3] = __expf(sc[nt][3] - z1);
      l0 += sc[nt][0] + sc[nt][1];
      l1 += sc[nt][2] + sc[nt][3];
    }}
    // Weights (A operand, from the score registers) times values.
    for (int c = 0; c < KB / 16; ++c) {{
      unsigned int pa[4];
      pa[0] = tl_pack(sc[2 * c][0], sc[2 * c][1]);
      pa[1] = tl_pack(sc[2 * c][2], sc[2 * c][3]);
      pa[2] = tl_pack(sc[2 * c + 1][0], sc[2 * c + 1][1]);
      pa[3] = tl_pack(sc[2 * c + 1][2], sc[2 * c + 1][3]);
      for (int d = 0; d < DV / 8; ++d) {{
        unsigned int vb0, vb1;
        tl_ldsm_t2(vb0, vb1, &vs[st][c * 16 + (lane & 15)][d * 8]);
        tl_mma(o[d], pa, vb0, vb1);
      }}
    }}
    __syncthreads();
    if (STAGES == 1 && it + 1 < nkb) {{
      TL_STAGE(0, kb + KB)
    }}
  }}
  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  const float i0 = 1.f / l0, i1 = 1.f / l1;
  for (int d = 0; d < DV / 8; ++d) {{
    const int f = d * 8 + 2 * t;
    if (r0 < M) *(unsigned int*)(out + r0 * so + f) = tl_pack(o[d][0] * i0, o[d][1] * i0);
    if (r1 < M) *(unsigned int*)(out + r1 * so + f) = tl_pack(o[d][2] * i1, o[d][3] * i1);
  }}
}}
"#
    );
    s
}

/// Kernels of a few signatures, for the NVRTC compile test.
#[cfg(test)]
pub(crate) fn sample_sources() -> Vec<(String, String)> {
    use crate::ops::BinaryFn;
    let scaled_plus_mask = MapExpr::Binary(
        BinaryFn::Add,
        Box::new(MapExpr::Binary(
            BinaryFn::Mul,
            Box::new(MapExpr::Input(0)),
            Box::new(MapExpr::Const(0.125)),
        )),
        Box::new(MapExpr::Input(1)),
    );
    [
        (
            32,
            32,
            DType::BF16,
            vec![(DType::BF16, true)],
            scaled_plus_mask.clone(),
            true,
        ),
        (64, 128, DType::F16, vec![], MapExpr::Input(0), false),
        (
            128,
            8,
            DType::BF16,
            vec![(DType::F32, false)],
            scaled_plus_mask,
            true,
        ),
    ]
    .into_iter()
    .map(|(dk, dv, dtype, extras, expr, narrow)| {
        let sig = Signature {
            dk,
            dv,
            dtype,
            extras,
            narrow,
        };
        (format!("attention {sig:?}"), source(&sig, &expr, 64))
    })
    .collect()
}
