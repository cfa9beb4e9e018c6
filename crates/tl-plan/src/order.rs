//! The order in which a join of many factors is contracted, two at a time.
//!
//! A term `A[i, j] B[j, k] C[k, l] …` is evaluated as a tree of pairwise contractions; which
//! tree decides both the work and the memory, often by orders of magnitude. Two searches:
//!
//! - **Exhaustive** (at most [`EXHAUSTIVE_FACTORS`] factors): dynamic programming over the
//!   subsets of factors finds the tree with the fewest multiply-adds, ties going to the one
//!   whose largest intermediate is smallest. It costs about 3^n steps.
//! - **Variable elimination** (more factors): the factors are the potentials of a graphical
//!   model and a summed index is a variable to eliminate. Each step removes one summed index:
//!   the factors holding it are contracted (in their best order when there are at most six,
//!   else the two smallest first), and it is summed out of the last product along with any
//!   other index no remaining factor holds. The next index is the one whose new factor has
//!   the fewest cells (min-size), or the one whose new factor joins the fewest pairs of
//!   indices not yet joined (min-fill, the classic heuristic for small treewidth); both
//!   orders are built and the one with the smaller largest intermediate is kept, so on an
//!   index graph of treewidth w the intermediates stay near |extent|^(w+1) cells in the
//!   usual cases instead of growing with the number of factors. Then the factors sharing a
//!   kept index are multiplied, and finally the remaining independent factors, smallest
//!   first. A map from each index to the factors holding it and a priority queue of costs
//!   (re-costing only the indices a step touched) keep a step as cheap as the factors it
//!   reads, instead of a pass over all pairs of factors at every step.
//!
//! Both follow the usual design of einsum path optimisers (an optimal search for a few
//! operands and a greedy one beyond, as in opt_einsum; elimination orders for large
//! networks, as in cotengra), written here for index sets and extents.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use tl_check::VarId;

/// Joins of at most this many factors are ordered by exhaustive search (3^8 = 6561 splits).
pub const EXHAUSTIVE_FACTORS: usize = 8;

/// The most cells an intermediate of a join may have (2^32: 16 GiB in f32): an equation whose
/// contraction order needs more is a planning error (`TL0203`) before anything runs. Smaller
/// intermediates are still checked when they are made, on the CPU against the memory free
/// then (`TL0314`), on a GPU by its allocator.
pub const MAX_INTERMEDIATE_CELLS: u128 = 1 << 32;

/// One pairwise contraction. Operands are numbered as the factors given (`0..n`), then the
/// results of earlier steps (`n + k` for step `k`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// One operand.
    pub a: usize,
    /// The other operand.
    pub b: usize,
    /// The result's indices: those of either operand that are kept or that a factor not yet
    /// joined still holds (the others are summed here).
    pub keep: Vec<VarId>,
    /// Cells of the result (saturating).
    pub cells: u128,
}

/// A pairwise contraction order for a join, with what it costs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Order {
    /// The contractions, each reading factors or earlier results; the last one's result is
    /// the join (for n factors there are n - 1 steps).
    pub steps: Vec<Step>,
    /// Multiply-adds: for each step, the cells of its operands' index union (saturating).
    pub flops: u128,
    /// Cells of the largest step result (saturating); 0 without steps.
    pub largest: u128,
}

/// Orders the join of `factors` (each a set of indices): indices in `keep` stay on the result,
/// every other index is summed as soon as no remaining factor holds it. `extent` gives each
/// index's number of values.
pub fn contraction_order(
    factors: &[Vec<VarId>],
    keep: &[VarId],
    extent: impl Fn(VarId) -> usize,
) -> Order {
    let p = Problem::new(factors, keep, extent);
    if factors.len() <= EXHAUSTIVE_FACTORS {
        return p.finish(&exhaustive(&p));
    }
    let by_size = p.finish(&Greedy::new(&p, Rule::MinSize).run());
    let by_fill = p.finish(&Greedy::new(&p, Rule::MinFill).run());
    if (by_fill.largest, by_fill.flops) < (by_size.largest, by_size.flops) {
        by_fill
    } else {
        by_size
    }
}

/// The join with indices renumbered densely (`0..m`, in order of first appearance).
struct Problem {
    /// Each factor's indices, sorted.
    sets: Vec<Vec<usize>>,
    /// Extent of each index.
    extents: Vec<u128>,
    /// Whether each index stays on the result.
    kept: Vec<bool>,
    /// The variable of each index.
    vars: Vec<VarId>,
}

impl Problem {
    fn new(factors: &[Vec<VarId>], keep: &[VarId], extent: impl Fn(VarId) -> usize) -> Self {
        let keep: HashSet<VarId> = keep.iter().copied().collect();
        let mut local: HashMap<VarId, usize> = HashMap::new();
        let mut vars = Vec::new();
        let mut sets = Vec::with_capacity(factors.len());
        for f in factors {
            let mut set: Vec<usize> = f
                .iter()
                .map(|&v| {
                    *local.entry(v).or_insert_with(|| {
                        vars.push(v);
                        vars.len() - 1
                    })
                })
                .collect();
            set.sort_unstable();
            set.dedup();
            sets.push(set);
        }
        let extents = vars.iter().map(|&v| extent(v) as u128).collect();
        let kept = vars.iter().map(|v| keep.contains(v)).collect();
        Problem {
            sets,
            extents,
            kept,
            vars,
        }
    }

    fn cells(&self, set: &[usize]) -> u128 {
        set.iter()
            .fold(1u128, |acc, &v| acc.saturating_mul(self.extents[v]))
    }

    /// The steps with variables restored, their sizes and the order's totals.
    fn finish(&self, steps: &[Merge]) -> Order {
        let mut sets = self.sets.clone();
        let mut order = Order::default();
        for (a, b, keep) in steps {
            let flops = self.cells(&union(&sets[*a], &sets[*b]));
            let cells = self.cells(keep);
            order.flops = order.flops.saturating_add(flops);
            order.largest = order.largest.max(cells);
            order.steps.push(Step {
                a: *a,
                b: *b,
                keep: keep.iter().map(|&v| self.vars[v]).collect(),
                cells,
            });
            sets.push(keep.clone());
        }
        order
    }
}

/// The union of two sorted index sets.
fn union(a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x == y => {
                i += 1;
                j += 1;
                x
            }
            (Some(&x), Some(&y)) if x < y => {
                i += 1;
                x
            }
            (Some(&x), None) => {
                i += 1;
                x
            }
            (_, Some(&y)) => {
                j += 1;
                y
            }
            (None, None) => break,
        };
        out.push(next);
    }
    out
}

/// The tree with the fewest multiply-adds (ties: the smallest largest intermediate), by
/// dynamic programming over subsets of at most [`EXHAUSTIVE_FACTORS`] factors.
fn exhaustive(p: &Problem) -> Vec<Merge> {
    let n = p.sets.len();
    if n < 2 {
        return Vec::new();
    }
    let full = (1usize << n) - 1;
    // The factors holding each index, as a mask.
    let mut holders = vec![0usize; p.vars.len()];
    for (f, set) in p.sets.iter().enumerate() {
        for &v in set {
            holders[v] |= 1 << f;
        }
    }
    // The indices of the join of each subset: those kept or held outside it.
    let mut sets: Vec<Vec<usize>> = vec![Vec::new(); full + 1];
    let mut cells = vec![1u128; full + 1];
    for s in 1..=full {
        let mut all = Vec::new();
        for (f, set) in p.sets.iter().enumerate() {
            if s & (1 << f) != 0 {
                all = union(&all, set);
            }
        }
        // A single factor is as given (an index only it holds is summed when it is joined).
        if s.count_ones() > 1 {
            all.retain(|&v| p.kept[v] || holders[v] & !s != 0);
        }
        cells[s] = p.cells(&all);
        sets[s] = all;
    }
    // (multiply-adds, largest intermediate, steps that are not broadcast products, first
    // part of the best split). A broadcast product (nothing summed, one side's indices among
    // the other's) is an elementwise map, cheaper than a contraction of the same size.
    let mut best = vec![(0u128, 0u128, 0u32, 0usize); full + 1];
    for s in 1..=full {
        if s.count_ones() < 2 {
            continue;
        }
        let low = s & s.wrapping_neg();
        let mut choice = (u128::MAX, u128::MAX, u32::MAX, 0usize);
        // Every split {a, s - a} once: `a` holds the lowest factor of `s`.
        let mut a = (s - 1) & s;
        while a > 0 {
            if a & low != 0 {
                let b = s ^ a;
                let all = union(&sets[a], &sets[b]);
                let flops = best[a]
                    .0
                    .saturating_add(best[b].0)
                    .saturating_add(p.cells(&all));
                let largest = best[a].1.max(best[b].1).max(cells[s]);
                let broadcast = sets[s].len() == all.len()
                    && (all.len() == sets[a].len() || all.len() == sets[b].len());
                let contracts = best[a].2 + best[b].2 + u32::from(!broadcast);
                if (flops, largest, contracts) < (choice.0, choice.1, choice.2) {
                    choice = (flops, largest, contracts, a);
                }
            }
            a = (a - 1) & s;
        }
        best[s] = choice;
    }
    // The tree, children before parents, walked with an explicit stack.
    let mut id = vec![usize::MAX; full + 1];
    for f in 0..n {
        id[1 << f] = f;
    }
    let mut steps = Vec::with_capacity(n - 1);
    let mut stack = vec![(full, false)];
    while let Some((s, expanded)) = stack.pop() {
        if s.count_ones() < 2 {
            continue;
        }
        let a = best[s].3;
        let b = s ^ a;
        if expanded {
            steps.push((id[a], id[b], sets[s].clone()));
            id[s] = n + steps.len() - 1;
        } else {
            stack.push((s, true));
            stack.push((b, false));
            stack.push((a, false));
        }
    }
    steps
}

/// A pairwise merge: (one operand, the other, the result's indices).
type Merge = (usize, usize, Vec<usize>);

/// Which summed index variable elimination removes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// The one whose new factor has the fewest cells; ties: the fewest new neighbour pairs.
    MinSize,
    /// The one whose elimination joins the fewest neighbour pairs not yet joined (min-fill);
    /// ties: the smallest new factor.
    MinFill,
}

/// An index's place in the elimination queue: (kept, the rule's first and second costs,
/// cells its factors span together, the index, the entry's version). Smallest first, so
/// every summed index goes before any kept one.
type Entry = Reverse<(bool, u128, u128, u128, usize, u64)>;

/// Neighbourhoods larger than this are not searched for missing pairs (their fill counts as
/// the largest possible), which keeps a costing linear in the factors it reads.
const FILL_NEIGHBOURS: usize = 32;

/// Buckets of this many factors or fewer are joined in their best order ([`exhaustive`]);
/// larger ones smallest first.
const BUCKET_EXHAUSTIVE: usize = 6;

/// Variable elimination over the factors' index sets (see the module documentation).
struct Greedy<'p> {
    p: &'p Problem,
    rule: Rule,
    /// Indices of every operand: the factors, then each step's result.
    sets: Vec<Vec<usize>>,
    /// Whether each operand has been read by a step.
    joined: Vec<bool>,
    /// The operands not yet joined that hold each index.
    holders: Vec<BTreeSet<usize>>,
    /// The steps so far.
    steps: Vec<Merge>,
    /// Each index's current entry version; older entries in the queue are stale.
    version: Vec<u64>,
    queue: BinaryHeap<Entry>,
    /// Scratch for costing: the costing that last saw each index, and how many of the
    /// factors costed held it; `near` marks the neighbours of one index.
    seen: Vec<u64>,
    count: Vec<usize>,
    near: Vec<u64>,
    stamp: u64,
}

impl<'p> Greedy<'p> {
    fn new(p: &'p Problem, rule: Rule) -> Self {
        let m = p.vars.len();
        let mut holders = vec![BTreeSet::new(); m];
        for (f, set) in p.sets.iter().enumerate() {
            for &v in set {
                holders[v].insert(f);
            }
        }
        Greedy {
            p,
            rule,
            sets: p.sets.clone(),
            joined: vec![false; p.sets.len()],
            holders,
            steps: Vec::new(),
            version: vec![0; m],
            queue: BinaryHeap::new(),
            seen: vec![0; m],
            count: vec![0; m],
            near: vec![0; m],
            stamp: 0,
        }
    }

    fn run(mut self) -> Vec<Merge> {
        for v in 0..self.p.vars.len() {
            self.requeue(v);
        }
        while let Some(Reverse((_, _, _, _, v, version))) = self.queue.pop() {
            if version == self.version[v] {
                self.eliminate(v);
            }
        }
        // What is left shares no index: outer products (or products of scalars).
        let rest: Vec<usize> = (0..self.sets.len()).filter(|&f| !self.joined[f]).collect();
        self.merge_smallest_first(rest);
        self.steps
    }

    /// Queues index `v` at its current cost, if it has factors to join.
    fn requeue(&mut self, v: usize) {
        self.version[v] += 1;
        if self.holders[v].len() < 2 {
            return;
        }
        self.stamp += 1;
        let mut spanned = Vec::new();
        for &f in &self.holders[v] {
            for &u in &self.sets[f] {
                if self.seen[u] != self.stamp {
                    self.seen[u] = self.stamp;
                    self.count[u] = 0;
                    spanned.push(u);
                }
                self.count[u] += 1;
            }
        }
        let p = self.p;
        let span = p.cells(&spanned);
        // Summed indices all of whose factors are joined here vanish from the result.
        let made: Vec<usize> = spanned
            .iter()
            .copied()
            .filter(|&u| p.kept[u] || self.count[u] < self.holders[u].len())
            .collect();
        let size = p.cells(&made);
        let fill = self.fill(&made);
        let (first, second) = match self.rule {
            Rule::MinSize => (size, fill),
            Rule::MinFill => (fill, size),
        };
        self.queue.push(Reverse((
            p.kept[v],
            first,
            second,
            span,
            v,
            self.version[v],
        )));
    }

    /// How many pairs of `made` no live factor holds together yet.
    fn fill(&mut self, made: &[usize]) -> u128 {
        if made.len() > FILL_NEIGHBOURS {
            return u128::MAX;
        }
        let mut missing = 0u128;
        for (k, &a) in made.iter().enumerate() {
            self.stamp += 1;
            for &f in &self.holders[a] {
                for &u in &self.sets[f] {
                    self.near[u] = self.stamp;
                }
            }
            let stamp = self.stamp;
            missing += made[k + 1..]
                .iter()
                .filter(|&&b| self.near[b] != stamp)
                .count() as u128;
        }
        missing
    }

    /// Joins every factor holding `v`, then re-costs the indices of the result.
    fn eliminate(&mut self, v: usize) {
        let bucket: Vec<usize> = self.holders[v].iter().copied().collect();
        let last = if (3..=BUCKET_EXHAUSTIVE).contains(&bucket.len()) {
            self.merge_best(&bucket)
        } else {
            self.merge_smallest_first(bucket)
        };
        let Some(last) = last else {
            return;
        };
        for u in self.sets[last].clone() {
            self.requeue(u);
        }
    }

    /// Joins `operands` in the order [`exhaustive`] finds for them alone (an index held
    /// outside them counts as kept); returns the final operand.
    fn merge_best(&mut self, operands: &[usize]) -> Option<usize> {
        let mut indices: Vec<usize> = Vec::new();
        for &f in operands {
            indices = union(&indices, &self.sets[f]);
        }
        let local = |u: usize| indices.binary_search(&u).unwrap_or(0);
        let sub = Problem {
            sets: operands
                .iter()
                .map(|&f| self.sets[f].iter().map(|&u| local(u)).collect())
                .collect(),
            extents: indices.iter().map(|&u| self.p.extents[u]).collect(),
            kept: indices
                .iter()
                .map(|&u| {
                    let inside = operands
                        .iter()
                        .filter(|f| self.holders[u].contains(f))
                        .count();
                    self.p.kept[u] || self.holders[u].len() > inside
                })
                .collect(),
            vars: indices.clone(),
        };
        let mut ids: Vec<usize> = operands.to_vec();
        for (a, b, _) in exhaustive(&sub) {
            let c = self.merge(ids[a], ids[b]);
            ids.push(c);
        }
        ids.last().copied()
    }

    /// Joins `operands` two at a time, the two smallest first; returns the final operand.
    fn merge_smallest_first(&mut self, operands: Vec<usize>) -> Option<usize> {
        let mut heap: BinaryHeap<Reverse<(u128, usize)>> = operands
            .into_iter()
            .map(|f| Reverse((self.p.cells(&self.sets[f]), f)))
            .collect();
        loop {
            let Reverse((_, a)) = heap.pop()?;
            let Some(Reverse((_, b))) = heap.pop() else {
                return Some(a);
            };
            let c = self.merge(a, b);
            heap.push(Reverse((self.p.cells(&self.sets[c]), c)));
        }
    }

    /// Contracts operands `a` and `b`, summing the indices no other live operand holds.
    fn merge(&mut self, a: usize, b: usize) -> usize {
        let mut keep = union(&self.sets[a], &self.sets[b]);
        keep.retain(|&u| {
            let here = usize::from(self.holders[u].contains(&a))
                + usize::from(self.holders[u].contains(&b));
            self.p.kept[u] || self.holders[u].len() > here
        });
        let c = self.sets.len();
        for f in [a, b] {
            self.joined[f] = true;
            for &u in &self.sets[f] {
                self.holders[u].remove(&f);
            }
        }
        for &u in &keep {
            self.holders[u].insert(c);
        }
        self.sets.push(keep.clone());
        self.joined.push(false);
        self.steps.push((a, b, keep));
        c
    }
}

#[cfg(test)]
mod tests;
