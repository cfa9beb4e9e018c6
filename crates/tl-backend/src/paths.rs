//! Path programs: a stratum of Datalog rules over binary relations, handed to a device whole.
//!
//! Graph programs (closures, same generation, labelled paths) are rules whose body is a path of
//! binary atoms from the head's first argument to its second: `T(x, z) <- T(x, y), E(y, z)`,
//! `SG(x, y) <- E(a, x), SG(a, b), E(b, y)`. A device that runs them ([`PathDevice`], the CUDA
//! backend) keeps each head as a bit matrix in its own memory and runs the semi-naive rounds
//! there: every rule whose path crosses a head at most once is driven by that head's last new
//! tuples (or, without a head in its path, by its first atom's tuples, in the first round);
//! from each driving tuple it walks the path both ways through the inputs' adjacency lists and
//! sets the bits of the head tuples it reaches. Only a count per round comes back to the host.
//!
//! This module only describes such programs, in numbers; `tl-run` builds them from rules and
//! falls back to the CPU tuple engine (saying so) for anything else.

use crate::{Result, Tensor};
use tl_core::Compare;

/// Which relation an atom of a path reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HopSource {
    /// A relation computed before the stratum ([`PathProgram::inputs`]).
    Input(usize),
    /// A head of the stratum ([`PathProgram::heads`]).
    Head(usize),
}

/// One atom of a path, as the walk from the head's first argument crosses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Hop {
    /// The relation.
    pub source: HopSource,
    /// Whether the atom's first column is the end nearer the head's first argument.
    pub forward: bool,
}

/// `head(x, y) <- hops…, test(x, y)`: a path of atoms from `x` to `y`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathRule {
    /// The head written.
    pub head: usize,
    /// The atoms from `x` to `y`, at least one; at most one may read a head.
    pub hops: Vec<Hop>,
    /// A condition on `x` and `y`.
    pub test: Option<Compare>,
}

/// A binary relation given to the device: sorted, distinct pairs, flat.
#[derive(Clone, Copy, Debug)]
pub struct PathInput<'a> {
    /// `x0, y0, x1, y1, …`, sorted.
    pub pairs: &'a [u32],
    /// Extent of the first column.
    pub rows: usize,
    /// Extent of the second column.
    pub cols: usize,
}

/// A head of the stratum: its extents and initial facts (sorted flat pairs).
#[derive(Clone, Copy, Debug)]
pub struct PathHead<'a> {
    /// Extent of the first column.
    pub rows: usize,
    /// Extent of the second column.
    pub cols: usize,
    /// Facts it starts with.
    pub facts: &'a [u32],
}

/// A stratum to run to its least fixpoint.
#[derive(Clone, Debug)]
pub struct PathProgram<'a> {
    /// The relations read, computed before.
    pub inputs: Vec<PathInput<'a>>,
    /// The relations derived.
    pub heads: Vec<PathHead<'a>>,
    /// The rules.
    pub rules: Vec<PathRule>,
}

/// A head as the device left it: one bit per cell, row-major, each row `cols` bits rounded up
/// to 64-bit words, in an `I64` tensor of shape `[rows, words per row]`.
#[derive(Clone, Debug)]
pub struct DeviceBits {
    /// The words.
    pub words: Tensor,
    /// Extent of the first column.
    pub rows: usize,
    /// Extent of the second column.
    pub cols: usize,
    /// Number of tuples (bits set).
    pub tuples: u64,
}

impl DeviceBits {
    /// Words per row.
    pub fn row_words(&self) -> usize {
        self.cols.div_ceil(64)
    }
}

/// What a device's run of a path program did.
#[derive(Clone, Debug)]
pub struct PathOutcome {
    /// The final heads, in [`PathProgram::heads`] order.
    pub heads: Vec<DeviceBits>,
    /// Rounds run.
    pub rounds: usize,
    /// New tuples each rule contributed, in [`PathProgram::rules`] order.
    pub rule_tuples: Vec<u64>,
}

/// A graph condensed to its strongly connected components (components sinks first, so a
/// component's successors come before it), for a transitive closure without rounds: the set
/// a component reaches is the union of what its successors reach and their members, plus its
/// own members when it lies on a cycle, and every member of a component shares that set.
#[derive(Clone, Debug, Default)]
pub struct CondensedGraph {
    /// Nodes `0..nodes`: the extent of both columns.
    pub nodes: usize,
    /// The component of each node.
    pub comp: Vec<u32>,
    /// A member of each component (where its set is built before the others copy it).
    pub rep: Vec<u32>,
    /// Whether each component lies on a cycle.
    pub cyclic: Vec<bool>,
    /// Component `c`'s distinct successors are `succ[succ_offsets[c]..succ_offsets[c + 1]]`.
    pub succ_offsets: Vec<usize>,
    /// The successor lists, concatenated.
    pub succ: Vec<u32>,
}

impl CondensedGraph {
    /// Whether the parts agree: every node in a component, every representative a member of
    /// its own component, the successor lists well cut, and every successor earlier than its
    /// component (sinks first). A closure built from a graph that breaks any of these would
    /// be wrong, not just slow, so a device checks before it starts.
    pub fn holds_together(&self) -> bool {
        let comps = self.rep.len();
        let offsets_ok = self.succ_offsets.len() == comps + 1
            && self.succ_offsets.first() == Some(&0)
            && self.succ_offsets.last() == Some(&self.succ.len())
            && self.succ_offsets.windows(2).all(|w| w[0] <= w[1]);
        offsets_ok
            && self.comp.len() == self.nodes
            && self.cyclic.len() == comps
            && u32::try_from(self.nodes).is_ok()
            && self.comp.iter().all(|&c| (c as usize) < comps)
            && self.rep.iter().enumerate().all(|(c, &r)| {
                self.comp
                    .get(r as usize)
                    .is_some_and(|&rc| rc as usize == c)
            })
            && (0..comps).all(|c| {
                self.succ[self.succ_offsets[c]..self.succ_offsets[c + 1]]
                    .iter()
                    .all(|&d| (d as usize) < c)
            })
    }

    /// Each component's level: 0 for a sink, else one more than its highest successor's.
    /// Components of one level depend only on lower ones. The graph must hold together
    /// ([`CondensedGraph::holds_together`]).
    pub fn levels(&self) -> Vec<u32> {
        let mut level = vec![0u32; self.rep.len()];
        for c in 0..self.rep.len() {
            let (a, b) = (self.succ_offsets[c], self.succ_offsets[c + 1]);
            level[c] = self.succ[a..b]
                .iter()
                .map(|&d| level[d as usize] + 1)
                .max()
                .unwrap_or(0);
        }
        level
    }
}

/// A device that runs path programs and answers questions about their results without
/// copying them back.
pub trait PathDevice {
    /// Runs `program` to its least fixpoint. Fails (before starting) when the heads' bits
    /// would not fit in the device's memory, saying how many bytes they would take.
    fn run_paths(&self, program: &PathProgram<'_>) -> Result<PathOutcome>;

    /// The transitive closure of a condensed graph as bits, without rounds. Fails (before
    /// starting) when its bits would not fit in the device's memory.
    fn closure(&self, graph: &CondensedGraph) -> Result<DeviceBits>;

    /// The number of tuples of each row (first value) of `bits`.
    fn row_counts(&self, bits: &DeviceBits) -> Result<Vec<u64>>;

    /// The tuples of `bits`, sorted, flat (copied to the host).
    fn pairs(&self, bits: &DeviceBits) -> Result<Vec<u32>>;
}

/// The sorted flat pairs of a row-major bit matrix with `row_words` 64-bit words per row.
pub fn bits_to_pairs(words: &[i64], row_words: usize) -> Vec<u32> {
    let mut out = Vec::new();
    if row_words == 0 {
        return out;
    }
    for (r, row) in words.chunks_exact(row_words).enumerate() {
        for (k, &w) in row.iter().enumerate() {
            let mut m = w as u64;
            while m != 0 {
                out.push(r as u32);
                out.push((k as u64 * 64 + u64::from(m.trailing_zeros())) as u32);
                m &= m - 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condensed_graphs_are_checked_before_use() {
        // 0 → 1 ↔ 2: components {1, 2} (cyclic, first: a sink) and {0}.
        let good = CondensedGraph {
            nodes: 3,
            comp: vec![1, 0, 0],
            rep: vec![1, 0],
            cyclic: vec![true, false],
            succ_offsets: vec![0, 0, 1],
            succ: vec![0],
        };
        assert!(good.holds_together());
        assert_eq!(good.levels(), vec![0, 1]);
        let mut later = good.clone();
        (later.succ_offsets, later.succ) = (vec![0, 1, 1], vec![1]);
        let mut outsider = good.clone();
        outsider.rep = vec![0, 0];
        let mut short = good.clone();
        short.succ_offsets = vec![0, 0, 2];
        for bad in [later, outsider, short] {
            assert!(!bad.holds_together(), "{bad:?}");
        }
    }

    #[test]
    fn bit_rows_decode_in_order() {
        // Two rows of 70 columns: two words each.
        let words = [0b101i64, 1 << 5, 0, i64::MIN];
        assert_eq!(bits_to_pairs(&words, 2), vec![0, 0, 0, 2, 0, 69, 1, 127]);
    }
}
