//! A transitive closure on the GPU without rounds ([`PathDevice::closure`]): the host has
//! condensed the graph to its strongly connected components; here each component's set is
//! built as one bit row, lowest level first (a component's successors all sit on lower
//! levels), then copied to the component's other members.
//!
//! Each component `c` gets the row of its representative `rep(c)`, which first holds `S(c)`,
//! the nodes `c` reaches or is made of: one kernel sets every node's bit in its component's
//! row (`seed`); then, one launch per level, `S(c) |= S(d)` for every successor `d`
//! (`level`: one thread per word of a piece of at most [`PIECE`] successors, so a component
//! with many successors spreads over many threads, ORing its words in atomically); last,
//! members copy their representative's row, and a component off every cycle — a single node
//! that does not reach itself — drops its own bit (`finish`). The tuples are counted on the
//! device (`count`).
//!
//! Input data are 32-bit values; their buffers are labelled [`DType::F32`] only for their
//! element size and are never read as numbers.

use super::{codegen, CudaBackend};
use crate::dtype::DType;
use crate::error::{BackendError, Result};
use crate::paths::{CondensedGraph, DeviceBits};
use crate::tensor::{Layout, Storage, Tensor};
use std::sync::Arc;

/// Successors per piece of a component's work.
const PIECE: usize = 32;

/// Sets each node's bit in its component's row.
fn seed_source() -> String {
    let mut s = codegen::header(codegen::Real::F32, 16);
    s.push_str("extern \"C\" __global__ void tl_kernel(const TlMeta m) {\n  unsigned long long* F = (unsigned long long*)m.v[0];\n  const unsigned int* row = (const unsigned int*)m.v[1];\n  const long long W = m.v[2], n = m.v[3];\n  const long long step = (long long)gridDim.x * blockDim.x;\n  for (long long v = (long long)blockIdx.x * blockDim.x + threadIdx.x; v < n; v += step)\n    atomicOr(F + (long long)row[v] * W + (v >> 6), 1ull << (v & 63));\n}\n");
    s
}

/// One level: piece `p` (a row and a range of successor rows) ORs those rows' word `w` into
/// its row's word `w`.
fn level_source() -> String {
    let mut s = codegen::header(codegen::Real::F32, 16);
    s.push_str("extern \"C\" __global__ void tl_kernel(const TlMeta m) {\n  unsigned long long* F = (unsigned long long*)m.v[0];\n  const unsigned int* pieces = (const unsigned int*)m.v[1];\n  const unsigned int* succ = (const unsigned int*)m.v[2];\n  const long long W = m.v[3], first = m.v[4], items = m.v[5];\n  const long long step = (long long)gridDim.x * blockDim.x;\n  for (long long it = (long long)blockIdx.x * blockDim.x + threadIdx.x; it < items; it += step) {\n    const long long p = first + it / W, w = it % W;\n    const unsigned int r = pieces[3 * p], a = pieces[3 * p + 1], b = pieces[3 * p + 2];\n    unsigned long long acc = 0;\n    for (unsigned int i = a; i < b; ++i) acc |= F[(long long)succ[i] * W + w];\n    if (acc) atomicOr(F + (long long)r * W + w, acc);\n  }\n}\n");
    s
}

/// Members copy their representative's row; a node off every cycle that is its own
/// representative clears its own bit.
fn finish_source() -> String {
    let mut s = codegen::header(codegen::Real::F32, 16);
    s.push_str("extern \"C\" __global__ void tl_kernel(const TlMeta m) {\n  unsigned long long* F = (unsigned long long*)m.v[0];\n  const unsigned int* row = (const unsigned int*)m.v[1];\n  const unsigned int* acyclic = (const unsigned int*)m.v[2];\n  const long long W = m.v[3], items = m.v[4];\n  const long long step = (long long)gridDim.x * blockDim.x;\n  for (long long it = (long long)blockIdx.x * blockDim.x + threadIdx.x; it < items; it += step) {\n    const long long v = it / W, w = it % W, r = row[v];\n    if (r != v) F[v * W + w] = F[r * W + w];\n    else if (acyclic[v] && w == (v >> 6)) F[v * W + w] &= ~(1ull << (v & 63));\n  }\n}\n");
    s
}

/// The number of bits set in `n` words, added into `C`.
fn count_source() -> String {
    let mut s = codegen::header(codegen::Real::F32, 16);
    s.push_str("extern \"C\" __global__ void tl_kernel(const TlMeta m) {\n  const unsigned long long* F = (const unsigned long long*)m.v[0];\n  unsigned long long* C = (unsigned long long*)m.v[1];\n  const long long n = m.v[2];\n  unsigned long long c = 0;\n  const long long step = (long long)gridDim.x * blockDim.x;\n  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) c += __popcll(F[i]);\n  for (int o = 16; o > 0; o >>= 1) c += __shfl_down_sync(0xffffffffu, c, o);\n  if ((threadIdx.x & 31) == 0 && c) atomicAdd(C, c);\n}\n");
    s
}

/// The level kernel's work, by level: pieces `(row, first, end)` over `succ` (the successors'
/// rows), and where each level's pieces start.
struct Plan {
    pieces: Vec<u32>,
    succ: Vec<u32>,
    level_starts: Vec<usize>,
}

/// Orders the components by level and cuts their successor lists into pieces, for a graph
/// that holds together. `None` when a list index would not fit in 32 bits.
fn plan(g: &CondensedGraph) -> Option<Plan> {
    let level = g.levels();
    let top = level.iter().copied().max().unwrap_or(0) as usize;
    let mut by_level: Vec<Vec<usize>> = vec![Vec::new(); top + 1];
    for (c, &l) in level.iter().enumerate() {
        by_level[l as usize].push(c);
    }
    let mut pieces = Vec::new();
    let mut succ = Vec::with_capacity(g.succ.len());
    let mut level_starts = Vec::with_capacity(top + 1);
    // Level 0 holds the sinks, which have nothing to gather.
    for comps in by_level.iter().skip(1) {
        level_starts.push(pieces.len() / 3);
        for &c in comps {
            let list = g.succ.get(g.succ_offsets[c]..g.succ_offsets[c + 1])?;
            for chunk in list.chunks(PIECE) {
                let first = u32::try_from(succ.len()).ok()?;
                succ.extend(chunk.iter().map(|&d| g.rep[d as usize]));
                let end = u32::try_from(succ.len()).ok()?;
                pieces.extend([g.rep[c], first, end]);
            }
        }
    }
    level_starts.push(pieces.len() / 3);
    Some(Plan {
        pieces,
        succ,
        level_starts,
    })
}

/// A launch grid for a grid-stride loop over `items`.
fn grid(items: usize) -> u32 {
    items.div_ceil(codegen::BLOCK as usize).clamp(1, 8192) as u32
}

impl CudaBackend {
    /// See the module's documentation.
    pub(super) fn condensed_closure(&self, g: &CondensedGraph) -> Result<DeviceBits> {
        let n = g.nodes;
        let plan = Some(g)
            .filter(|g| g.holds_together())
            .and_then(plan)
            .ok_or_else(|| {
                BackendError::Device("a condensed graph that does not hold together".into())
            })?;
        let words = n.div_ceil(64);
        let cells = n.checked_mul(words).ok_or_else(|| BackendError::TooLarge {
            elements: n as u128 * words as u128,
            detail: "a relation's bit matrix overflows the address space".into(),
        })?;
        let bytes = 8 * cells as u128
            + 4 * (2 * n as u128 + plan.pieces.len() as u128 + plan.succ.len() as u128);
        let free = self.pool.free_bytes() as u128;
        if bytes > free {
            return Err(BackendError::OutOfMemory {
                device: format!("{} ({})", self.pool.device(), self.device_name),
                requested: usize::try_from(bytes).unwrap_or(usize::MAX),
                free: usize::try_from(free).unwrap_or(usize::MAX),
            });
        }
        let bits = self.zeroed_words(cells)?;
        let rows: Vec<u32> = g.comp.iter().map(|&c| g.rep[c as usize]).collect();
        let rows = self.upload_u32(&rows)?;
        let acyclic: Vec<u32> = g
            .comp
            .iter()
            .map(|&c| u32::from(!g.cyclic[c as usize]))
            .collect();
        let acyclic = self.upload_u32(&acyclic)?;
        let pieces = self.upload_u32(&plan.pieces)?;
        let succ = self.upload_u32(&plan.succ)?;
        let base = bits.ptr() as i64;
        if n > 0 {
            self.launch(
                codegen::kernel_key(&"closure seed"),
                || Ok(seed_source()),
                &[base, rows.ptr() as i64, words as i64, n as i64],
                grid(n),
            )?;
        }
        for span in plan.level_starts.windows(2) {
            let items = (span[1] - span[0]) * words;
            if items == 0 {
                continue;
            }
            self.launch(
                codegen::kernel_key(&"closure level"),
                || Ok(level_source()),
                &[
                    base,
                    pieces.ptr() as i64,
                    succ.ptr() as i64,
                    words as i64,
                    span[0] as i64,
                    items as i64,
                ],
                grid(items),
            )?;
        }
        let counter = self.zeroed_words(1)?;
        if cells > 0 {
            self.launch(
                codegen::kernel_key(&"closure finish"),
                || Ok(finish_source()),
                &[
                    base,
                    rows.ptr() as i64,
                    acyclic.ptr() as i64,
                    words as i64,
                    cells as i64,
                ],
                grid(cells),
            )?;
            self.launch(
                codegen::kernel_key(&"closure count"),
                || Ok(count_source()),
                &[base, counter.ptr() as i64, cells as i64],
                grid(cells),
            )?;
        }
        let tuples = self
            .read_counters(&counter, 1)?
            .first()
            .copied()
            .unwrap_or(0);
        let shape = [n, words];
        Ok(DeviceBits {
            words: Tensor {
                layout: Layout::contiguous(&shape),
                dtype: DType::I64,
                storage: Storage::Device(Arc::new(bits)),
            },
            rows: n,
            cols: n,
            tuples,
        })
    }
}

/// The closure kernels' sources, for the test that compiles every generated kernel.
#[cfg(test)]
pub(crate) fn example_sources() -> Vec<(String, String)> {
    vec![
        ("closure seed".into(), seed_source()),
        ("closure level".into(), level_source()),
        ("closure finish".into(), finish_source()),
        ("closure count".into(), count_source()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_follow_levels_and_split_long_lists() {
        // 0 and 1 are sinks; 2 reaches both; 3 reaches 2 and 40 sinks beyond.
        let mut g = CondensedGraph {
            nodes: 44,
            comp: (0..44).collect(),
            rep: (0..44).collect(),
            cyclic: vec![false; 44],
            succ_offsets: vec![0; 45],
            succ: Vec::new(),
        };
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); 44];
        lists[2] = vec![0, 1];
        lists[43] = std::iter::once(2).chain(3..43).collect();
        for (c, l) in lists.iter().enumerate() {
            g.succ.extend(l);
            g.succ_offsets[c + 1] = g.succ.len();
        }
        assert_eq!(g.levels()[43], 2);
        let p = plan(&g).expect("plans");
        // Level 1: component 2 (one piece); level 2: component 43's 41 successors in two.
        assert_eq!(p.level_starts, vec![0, 1, 3]);
        assert_eq!(&p.pieces[..3], &[2, 0, 2]);
        assert_eq!(&p.pieces[3..], &[43, 2, 34, 43, 34, 43]);
    }
}
