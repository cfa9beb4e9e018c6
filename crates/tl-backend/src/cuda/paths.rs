//! Path programs on the GPU ([`crate::paths`]): heads as bit matrices in device memory, the
//! semi-naive rounds as generated kernels, one count read back per round.
//!
//! Each input relation is uploaded once as its pairs and as adjacency lists both ways
//! (offsets and targets, 32-bit). Each head has three bit matrices: everything known (`F`),
//! the last round's new tuples (`D`) and what was known before this round (`P`). A rule's
//! kernel is generated for its path and its driving atom: one thread per 64-bit word of the
//! driving head's `D` (or per pair of the driving input, in the first round); from each
//! driving tuple it walks the atoms before it back to `x` and those after it on to `y`
//! through the adjacency lists, and for every `(x, y)` that passes the rule's test it reads
//! `F`, and only for a tuple not yet there ORs it in atomically (the OR's old value tells
//! whether this thread added it, for the rule's count). A round ends with one pass over each
//! head, `D = F & !P`, `P = F`, counting `D`'s bits: no second atomic per new tuple. Rounds
//! end when a round adds nothing.
//!
//! Input data are 32-bit values; their buffers are labelled [`DType::F32`] only for their
//! element size and are never read as numbers.

use super::{codegen, dev_err, CudaBackend, CudaStorage};
use crate::dtype::DType;
use crate::error::{BackendError, Result};
use crate::paths::{
    CondensedGraph, DeviceBits, HopSource, PathDevice, PathOutcome, PathProgram, PathRule,
};
use crate::tensor::{Layout, Storage, Tensor};
use std::fmt::Write;
use std::sync::Arc;

/// Threads per block of the path kernels.
const BLOCK: usize = codegen::BLOCK as usize;

/// One input on the device: pairs, and adjacency from the first and from the second column.
struct Input {
    pairs: CudaStorage,
    len: usize,
    forward: (CudaStorage, CudaStorage),
    backward: (CudaStorage, CudaStorage),
}

/// Adjacency lists of sorted pairs keyed on column `key` (0 or 1) over `extent` values.
fn adjacency(pairs: &[u32], key: usize, extent: usize) -> (Vec<u32>, Vec<u32>) {
    let mut offsets = vec![0u32; extent + 1];
    for p in pairs.chunks_exact(2) {
        if let Some(o) = offsets.get_mut(p[key] as usize + 1) {
            *o += 1;
        }
    }
    for k in 0..extent {
        offsets[k + 1] += offsets[k];
    }
    let mut fill = offsets.clone();
    let mut targets = vec![0u32; pairs.len() / 2];
    for p in pairs.chunks_exact(2) {
        if let Some(f) = fill.get_mut(p[key] as usize) {
            if let Some(t) = targets.get_mut(*f as usize) {
                *t = p[1 - key];
            }
            *f += 1;
        }
    }
    (offsets, targets)
}

/// The kernel of `rule` driven by its atom at `driver`: from the head's `D` bits when that
/// atom reads a head, else from the input's pairs.
fn rule_source(rule: &PathRule, driver: usize, cap: usize) -> String {
    let mut s = codegen::header(codegen::Real::F32, cap);
    let from_bits = matches!(rule.hops[driver].source, HopSource::Head(_));
    let forward = rule.hops[driver].forward;
    s.push_str(
        "extern \"C\" __global__ void tl_kernel(const TlMeta m) {\n  unsigned long long* F = (unsigned long long*)m.v[0];\n  unsigned int* touched = (unsigned int*)m.v[1];\n  unsigned long long* C = (unsigned long long*)m.v[2];\n  const long long W = m.v[3], R = m.v[4], K = m.v[5], items = m.v[6];\n",
    );
    // Atoms other than the driver, in walking order: the ones before it from the driver
    // back to x, then the ones after it on to y.
    let left: Vec<usize> = (0..driver).rev().collect();
    let right: Vec<usize> = (driver + 1..rule.hops.len()).collect();
    for (k, _) in left.iter().chain(&right).enumerate() {
        let _ = writeln!(
            s,
            "  const unsigned int* off{k} = (const unsigned int*)m.v[{}];\n  const unsigned int* tgt{k} = (const unsigned int*)m.v[{}];",
            10 + 2 * k,
            11 + 2 * k
        );
    }
    s.push_str("  unsigned long long added = 0;\n  const long long step = (long long)gridDim.x * blockDim.x;\n  for (long long it = (long long)blockIdx.x * blockDim.x + threadIdx.x; it < items; it += step) {\n");
    if from_bits {
        s.push_str("    const unsigned long long* D = (const unsigned long long*)m.v[7];\n    const long long DW = m.v[8];\n    const unsigned int* rows = (const unsigned int*)m.v[9];\n    const unsigned int a0 = rows[it / DW];\n    const long long word = it % DW;\n    unsigned long long bits = D[(long long)a0 * DW + word];\n    const unsigned int base = (unsigned int)(word * 64);\n    while (bits) {\n      const unsigned int a1 = base + (unsigned int)(__ffsll((long long)bits) - 1);\n      bits &= bits - 1;\n");
    } else {
        s.push_str("    const unsigned int* P = (const unsigned int*)m.v[7];\n    {\n      const unsigned int a0 = P[2 * it], a1 = P[2 * it + 1];\n");
    }
    let _ = writeln!(
        s,
        "      const unsigned int s = {}, t = {};",
        if forward { "a0" } else { "a1" },
        if forward { "a1" } else { "a0" }
    );
    // Nested loops: each crossed atom binds the next point of the path.
    let mut depth = 0;
    let mut at = "s".to_string();
    for (k, _) in left.iter().enumerate() {
        let _ = writeln!(
            s,
            "      for (unsigned int i{k} = off{k}[{at}]; i{k} < off{k}[{at} + 1]; ++i{k}) {{ const unsigned int p{k} = tgt{k}[i{k}];"
        );
        at = format!("p{k}");
        depth += 1;
    }
    let _ = writeln!(s, "      const unsigned int x = {at};");
    let mut at = "t".to_string();
    for k in left.len()..left.len() + right.len() {
        let _ = writeln!(
            s,
            "      for (unsigned int i{k} = off{k}[{at}]; i{k} < off{k}[{at} + 1]; ++i{k}) {{ const unsigned int p{k} = tgt{k}[i{k}];"
        );
        at = format!("p{k}");
        depth += 1;
    }
    let test = rule
        .test
        .map_or("true".to_string(), |t| format!("x {} y", t.symbol()));
    let _ = writeln!(
        s,
        "      const unsigned int y = {at};\n      if ((long long)x < R && (long long)y < K && ({test})) {{\n        const unsigned long long w = (unsigned long long)x * W + (y >> 6);\n        const unsigned long long bit = 1ull << (y & 63);\n        if (!(((volatile unsigned long long*)F)[w] & bit)) {{\n          const unsigned long long old = atomicOr(F + w, bit);\n          if (!(old & bit)) {{ ++added; touched[x] = 1u; }}\n        }}\n      }}"
    );
    for _ in 0..depth {
        s.push_str("      }\n");
    }
    s.push_str("    }\n  }\n  if (added) atomicAdd(C, added);\n}\n");
    s
}

/// The end of a round, for one head: the rows its rules touched (`touched[r]` set) are
/// listed (and their marks cleared), then for each listed row `D = F & !P` (the round's new
/// tuples) and `P = F`, counting the new tuples into `C` and the listed rows into `L`. Rows
/// not listed are unchanged; their stale `D` words are never read, since the rules of the
/// next round read `D` only at listed rows. Two kernels: `list` then `advance`.
fn list_source() -> String {
    let mut s = codegen::header(codegen::Real::F32, 16);
    s.push_str("extern \"C\" __global__ void tl_kernel(const TlMeta m) {\n  unsigned int* touched = (unsigned int*)m.v[0];\n  unsigned int* list = (unsigned int*)m.v[1];\n  unsigned long long* L = (unsigned long long*)m.v[2];\n  const long long rows = m.v[3];\n  const long long step = (long long)gridDim.x * blockDim.x;\n  for (long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += step) {\n    if (touched[r]) {\n      touched[r] = 0u;\n      list[atomicAdd(L, 1ull)] = (unsigned int)r;\n    }\n  }\n}\n");
    s
}

/// See [`list_source`]: `D = F & !P`, `P = F` on the listed rows, counting into `C`.
fn advance_source() -> String {
    let mut s = codegen::header(codegen::Real::F32, 16);
    s.push_str("extern \"C\" __global__ void tl_kernel(const TlMeta m) {\n  const unsigned long long* F = (const unsigned long long*)m.v[0];\n  unsigned long long* P = (unsigned long long*)m.v[1];\n  unsigned long long* D = (unsigned long long*)m.v[2];\n  unsigned long long* C = (unsigned long long*)m.v[3];\n  const long long W = m.v[5], n = (long long)*(const unsigned long long*)m.v[4] * W;\n  const unsigned int* list = (const unsigned int*)m.v[6];\n  unsigned long long c = 0;\n  const long long step = (long long)gridDim.x * blockDim.x;\n  for (long long it = (long long)blockIdx.x * blockDim.x + threadIdx.x; it < n; it += step) {\n    const long long i = (long long)list[it / W] * W + it % W;\n    const unsigned long long f = F[i], d = f & ~P[i];\n    D[i] = d;\n    P[i] = f;\n    c += __popcll(d);\n  }\n  for (int o = 16; o > 0; o >>= 1) c += __shfl_down_sync(0xffffffffu, c, o);\n  if ((threadIdx.x & 31) == 0 && c) atomicAdd(C, c);\n}\n");
    s
}

/// Sets the bits of `pairs` (flat `x, y`) in three bit matrices of `W` words per row, and
/// marks their rows touched.
fn set_pairs_source() -> String {
    let mut s = codegen::header(codegen::Real::F32, 16);
    s.push_str("extern \"C\" __global__ void tl_kernel(const TlMeta m) {\n  const unsigned int* P = (const unsigned int*)m.v[0];\n  const long long n = m.v[1], W = m.v[2], R = m.v[3], K = m.v[4];\n  const long long step = (long long)gridDim.x * blockDim.x;\n  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {\n    const unsigned int x = P[2 * i], y = P[2 * i + 1];\n    if ((long long)x >= R || (long long)y >= K) continue;\n    const unsigned long long w = (unsigned long long)x * W + (y >> 6), bit = 1ull << (y & 63);\n    for (int k = 0; k < 3; ++k) atomicOr((unsigned long long*)m.v[5 + k] + w, bit);\n    ((unsigned int*)m.v[8])[x] = 1u;\n  }\n}\n");
    s
}

/// Popcounts of each row: one warp per row.
fn row_count_source() -> String {
    let mut s = codegen::header(codegen::Real::F32, 16);
    s.push_str("extern \"C\" __global__ void tl_kernel(const TlMeta m) {\n  const unsigned long long* B = (const unsigned long long*)m.v[0];\n  unsigned long long* out = (unsigned long long*)m.v[1];\n  const long long rows = m.v[2], W = m.v[3];\n  const long long lane = threadIdx.x & 31;\n  for (long long r = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / 32; r < rows; r += (long long)gridDim.x * blockDim.x / 32) {\n    unsigned long long c = 0;\n    for (long long j = lane; j < W; j += 32) c += __popcll(B[r * W + j]);\n    for (int o = 16; o > 0; o >>= 1) c += __shfl_down_sync(0xffffffffu, c, o);\n    if (lane == 0) out[r] = c;\n  }\n}\n");
    s
}

/// A head's three bit matrices on the device: everything known, the last round's new tuples,
/// and everything known before this round.
struct Head {
    full: CudaStorage,
    delta: CudaStorage,
    prev: CudaStorage,
    /// Rows given new tuples this round (one 32-bit mark each).
    touched: CudaStorage,
    /// The rows `delta` holds tuples in (32-bit row numbers), `listed` of them.
    list: CudaStorage,
    listed: usize,
    rows: usize,
    cols: usize,
    words: usize,
}

/// A launch grid for a grid-stride loop over `items`.
fn grid(items: usize) -> u32 {
    items.div_ceil(BLOCK).clamp(1, 8192) as u32
}

impl CudaBackend {
    pub(super) fn upload_u32(&self, v: &[u32]) -> Result<CudaStorage> {
        // Never read as floats: F32 stands for "4-byte elements" here.
        self.upload_slice(if v.is_empty() { &[0] } else { v }, DType::F32)
    }

    fn zeroed_u32(&self, n: usize) -> Result<CudaStorage> {
        // Never read as floats: F32 stands for "4-byte elements" here.
        let s = self.alloc(n.max(1), DType::F32)?;
        self.fill_value(&s, n.max(1), 0.0)?;
        Ok(s)
    }

    pub(super) fn zeroed_words(&self, n: usize) -> Result<CudaStorage> {
        let s = self.alloc(n.max(1), DType::I64)?;
        self.fill_value(&s, n.max(1), 0.0)?;
        Ok(s)
    }

    fn head_bits(&self, rows: usize, cols: usize, facts: &[u32]) -> Result<Head> {
        let words = cols.div_ceil(64);
        let n = rows
            .checked_mul(words)
            .ok_or_else(|| BackendError::TooLarge {
                elements: rows as u128 * words as u128,
                detail: "a relation's bit matrix overflows the address space".into(),
            })?;
        let head = Head {
            full: self.zeroed_words(n)?,
            delta: self.zeroed_words(n)?,
            prev: self.zeroed_words(n)?,
            touched: self.zeroed_u32(rows)?,
            list: self.zeroed_u32(rows)?,
            listed: 0,
            rows,
            cols,
            words,
        };
        if facts.len() >= 2 {
            let pairs = self.upload_u32(facts)?;
            let count = facts.len() / 2;
            self.launch(
                codegen::kernel_key(&"path set pairs"),
                || Ok(set_pairs_source()),
                &[
                    pairs.ptr() as i64,
                    count as i64,
                    words as i64,
                    rows as i64,
                    cols as i64,
                    head.full.ptr() as i64,
                    head.delta.ptr() as i64,
                    head.prev.ptr() as i64,
                    head.touched.ptr() as i64,
                ],
                grid(count),
            )?;
        }
        Ok(head)
    }

    /// Ends a round: lists each head's touched rows, makes its delta the new tuples of those
    /// rows (unless `first`: before the first round the delta is the facts as they are), and
    /// returns how many new tuples there were (each head's `listed` updated).
    fn list_rows(&self, heads: &mut [Head], round: &CudaStorage, first: bool) -> Result<u64> {
        self.fill_value(round, 1 + heads.len(), 0.0)?;
        for (j, h) in heads.iter().enumerate() {
            let listed = round.ptr() + 8 * (1 + j as u64);
            self.launch(
                codegen::kernel_key(&"path list"),
                || Ok(list_source()),
                &[
                    h.touched.ptr() as i64,
                    h.list.ptr() as i64,
                    listed as i64,
                    h.rows as i64,
                ],
                grid(h.rows),
            )?;
            if first {
                continue;
            }
            self.launch(
                codegen::kernel_key(&"path advance"),
                || Ok(advance_source()),
                &[
                    h.full.ptr() as i64,
                    h.prev.ptr() as i64,
                    h.delta.ptr() as i64,
                    round.ptr() as i64,
                    listed as i64,
                    h.words as i64,
                    h.list.ptr() as i64,
                ],
                grid(h.rows * h.words),
            )?;
        }
        let counts = self.read_counters(round, 1 + heads.len())?;
        for (h, &n) in heads.iter_mut().zip(counts.iter().skip(1)) {
            h.listed = n as usize;
        }
        Ok(counts.first().copied().unwrap_or(0))
    }

    pub(super) fn read_counters(&self, c: &CudaStorage, n: usize) -> Result<Vec<u64>> {
        let v: Vec<i64> = self.download_vec(c.ptr(), n, 0i64)?;
        Ok(v.into_iter().map(|x| x as u64).collect())
    }
}

impl PathDevice for CudaBackend {
    fn run_paths(&self, program: &PathProgram<'_>) -> Result<PathOutcome> {
        for rule in &program.rules {
            let heads_read = rule
                .hops
                .iter()
                .filter(|h| matches!(h.source, HopSource::Head(_)))
                .count();
            let known = rule.hops.iter().all(|h| match h.source {
                HopSource::Head(j) => j < program.heads.len(),
                HopSource::Input(i) => i < program.inputs.len(),
            });
            if heads_read > 1 || !known || rule.head >= program.heads.len() || rule.hops.is_empty()
            {
                return Err(BackendError::Device(
                    "a path rule must cross known relations, a head at most once".into(),
                ));
            }
        }
        // Everything the run holds on the device, checked against its free memory first.
        let head_bytes: u128 = program
            .heads
            .iter()
            .map(|h| 3 * h.rows as u128 * h.cols.div_ceil(64) as u128 * 8)
            .sum();
        let input_bytes: u128 = program
            .inputs
            .iter()
            .map(|i| 4 * (2 * i.pairs.len() as u128 + i.rows as u128 + i.cols as u128 + 2))
            .sum();
        let free = self.pool.free_bytes() as u128;
        if head_bytes + input_bytes > free {
            return Err(BackendError::OutOfMemory {
                device: format!("{} ({})", self.pool.device(), self.device_name),
                requested: usize::try_from(head_bytes + input_bytes).unwrap_or(usize::MAX),
                free: usize::try_from(free).unwrap_or(usize::MAX),
            });
        }
        let inputs: Vec<Input> = program
            .inputs
            .iter()
            .map(|i| {
                let (fo, ft) = adjacency(i.pairs, 0, i.rows);
                let (bo, bt) = adjacency(i.pairs, 1, i.cols);
                Ok(Input {
                    pairs: self.upload_u32(i.pairs)?,
                    len: i.pairs.len() / 2,
                    forward: (self.upload_u32(&fo)?, self.upload_u32(&ft)?),
                    backward: (self.upload_u32(&bo)?, self.upload_u32(&bt)?),
                })
            })
            .collect::<Result<_>>()?;
        let mut heads: Vec<Head> = program
            .heads
            .iter()
            .map(|h| self.head_bits(h.rows, h.cols, h.facts))
            .collect::<Result<_>>()?;
        let counters = self.zeroed_words(program.rules.len())?;
        // Per round: the new tuples, then each head's listed rows.
        let round = self.zeroed_words(1 + heads.len())?;
        // Each rule's driver: its head atom, else its first atom.
        let drivers: Vec<usize> = program
            .rules
            .iter()
            .map(|r| {
                r.hops
                    .iter()
                    .position(|h| matches!(h.source, HopSource::Head(_)))
                    .unwrap_or(0)
            })
            .collect();
        // The facts are the first round's delta: list their rows.
        self.list_rows(&mut heads, &round, true)?;
        let mut rounds = 0;
        loop {
            rounds += 1;
            for (r, (rule, &d)) in program.rules.iter().zip(&drivers).enumerate() {
                let recursive = matches!(rule.hops[d].source, HopSource::Head(_));
                if !recursive && rounds > 1 {
                    continue;
                }
                let h = &heads[rule.head];
                let mut meta = vec![
                    h.full.ptr() as i64,
                    h.touched.ptr() as i64,
                    (counters.ptr() + 8 * r as u64) as i64,
                    h.words as i64,
                    h.rows as i64,
                    h.cols as i64,
                    0,
                    0,
                    0,
                    0,
                ];
                match rule.hops[d].source {
                    HopSource::Head(j) => {
                        let dh = &heads[j];
                        meta[6] = (dh.listed * dh.words) as i64;
                        meta[7] = dh.delta.ptr() as i64;
                        meta[8] = dh.words as i64;
                        meta[9] = dh.list.ptr() as i64;
                    }
                    HopSource::Input(i) => {
                        meta[6] = inputs[i].len as i64;
                        meta[7] = inputs[i].pairs.ptr() as i64;
                    }
                }
                if meta[6] == 0 {
                    continue;
                }
                // Walking back toward x enters a forward atom at its second column; walking
                // on toward y enters a forward atom at its first.
                let walk = (0..d)
                    .rev()
                    .map(|k| (k, !rule.hops[k].forward))
                    .chain((d + 1..rule.hops.len()).map(|k| (k, rule.hops[k].forward)));
                for (k, from_first) in walk {
                    let HopSource::Input(i) = rule.hops[k].source else {
                        continue;
                    };
                    let (off, tgt) = if from_first {
                        &inputs[i].forward
                    } else {
                        &inputs[i].backward
                    };
                    meta.push(off.ptr() as i64);
                    meta.push(tgt.ptr() as i64);
                }
                let cap = codegen::meta_cap(meta.len()).ok_or_else(|| {
                    BackendError::Device("a path rule with too many atoms".into())
                })?;
                let items = meta[6] as usize;
                self.launch(
                    codegen::kernel_key(&("path", rule, d, cap)),
                    || Ok(rule_source(rule, d, cap)),
                    &meta,
                    grid(items),
                )?;
            }
            // The rows each head's rules touched become its delta's rows, and their new
            // tuples its delta; the count of them says whether another round is needed.
            let added = self.list_rows(&mut heads, &round, false)?;
            if added == 0 {
                break;
            }
        }
        let before = self.read_counters(&counters, program.rules.len())?;
        let mut out = Vec::with_capacity(heads.len());
        for (j, (h, spec)) in heads.into_iter().zip(&program.heads).enumerate() {
            let facts = (spec.facts.len() / 2) as u64;
            let derived: u64 = program
                .rules
                .iter()
                .zip(&before)
                .filter(|(r, _)| r.head == j)
                .map(|(_, &c)| c)
                .sum();
            let shape = [h.rows, h.words];
            out.push(DeviceBits {
                words: Tensor {
                    layout: Layout::contiguous(&shape),
                    dtype: DType::I64,
                    storage: Storage::Device(Arc::new(h.full)),
                },
                rows: h.rows,
                cols: h.cols,
                tuples: facts + derived,
            });
        }
        Ok(PathOutcome {
            heads: out,
            rounds,
            rule_tuples: before,
        })
    }

    fn closure(&self, graph: &CondensedGraph) -> Result<DeviceBits> {
        self.condensed_closure(graph)
    }

    fn row_counts(&self, bits: &DeviceBits) -> Result<Vec<u64>> {
        let words = self.dev("row counts", &bits.words)?;
        let out = self.zeroed_words(bits.rows)?;
        if bits.rows > 0 && bits.row_words() > 0 {
            self.launch(
                codegen::kernel_key(&"path row counts"),
                || Ok(row_count_source()),
                &[
                    words.base as i64,
                    out.ptr() as i64,
                    bits.rows as i64,
                    bits.row_words() as i64,
                ],
                grid(bits.rows * 32),
            )?;
        }
        let mut counts = self.read_counters(&out, bits.rows.max(1))?;
        counts.truncate(bits.rows);
        Ok(counts)
    }

    fn pairs(&self, bits: &DeviceBits) -> Result<Vec<u32>> {
        let host = crate::Backend::download(self, &bits.words)?;
        match host.data {
            crate::HostData::I64(words) => {
                Ok(crate::paths::bits_to_pairs(&words, bits.row_words()))
            }
            _ => Err(dev_err("reading a relation's bits", "not 64-bit words")),
        }
    }
}

/// The path kernels' sources, for the test that compiles every generated kernel.
#[cfg(test)]
pub(crate) fn example_sources() -> Vec<(String, String)> {
    use crate::paths::Hop;
    use tl_core::Compare;
    // Same generation's recursive rule (driven by the head) and its base rule (driven by its
    // first atom, with a test).
    let sg = PathRule {
        head: 0,
        hops: vec![
            Hop {
                source: HopSource::Input(0),
                forward: false,
            },
            Hop {
                source: HopSource::Head(0),
                forward: true,
            },
            Hop {
                source: HopSource::Input(0),
                forward: true,
            },
        ],
        test: None,
    };
    let base = PathRule {
        head: 0,
        hops: vec![sg.hops[0], sg.hops[2]],
        test: Some(Compare::Ne),
    };
    vec![
        ("path rule driven by a head".into(), rule_source(&sg, 1, 16)),
        (
            "path rule driven by an input".into(),
            rule_source(&base, 0, 16),
        ),
        ("path row counts".into(), row_count_source()),
        ("path advance".into(), advance_source()),
        ("path list".into(), list_source()),
        ("path set pairs".into(), set_pairs_source()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacency_both_ways() {
        let pairs = [0, 1, 0, 2, 2, 1];
        assert_eq!(adjacency(&pairs, 0, 3), (vec![0, 2, 2, 3], vec![1, 2, 1]));
        assert_eq!(adjacency(&pairs, 1, 3), (vec![0, 0, 2, 3], vec![0, 2, 0]));
    }
}
