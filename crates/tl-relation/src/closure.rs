//! The transitive closure of a binary relation, without rounds.
//!
//! `R(x, y) <- E(x, y)` with `R(x, z) <- R(x, y), E(y, z)` (or `E(x, y), R(y, z)`, or
//! `R(x, y), R(y, z)`) is the most common recursive Datalog program. Semi-naive evaluation
//! needs one round per path length and rejoins every new pair; this module instead computes
//! the strongly connected components of the graph (iteratively, so deep graphs cannot overflow
//! the stack) and walks the condensed graph from its sinks: the set reached from a component is
//! the union of what its successor components reach, plus their members, plus its own members
//! when it lies on a cycle. Each set is a sorted list while small and a bitset over the nodes
//! once it holds more than one node in 32 (where the bitset is the smaller), so a union of two
//! large sets is a word-wise OR. Every node of a component shares the component's set, and the
//! pairs are written out in sorted order, in parallel, straight into the result.

use crate::error::RelationError;
use crate::relation::{Relation, Value};
use crate::rule::{Rule, Term};

/// The set of nodes reached from one component.
enum Reach {
    /// Sorted, distinct nodes.
    List(Vec<Value>),
    /// One bit per node, with the number of bits set.
    Bits(Vec<u64>, usize),
}

impl Reach {
    fn len(&self) -> usize {
        match self {
            Reach::List(v) => v.len(),
            Reach::Bits(_, n) => *n,
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Reach::List(v) => v.len() * 4,
            Reach::Bits(w, _) => w.len() * 8,
        }
    }

    /// Appends every member to `out`.
    fn extend_into(&self, out: &mut Vec<Value>) {
        match self {
            Reach::List(v) => out.extend_from_slice(v),
            Reach::Bits(words, _) => {
                for (k, &w) in words.iter().enumerate() {
                    let mut m = w;
                    while m != 0 {
                        out.push((k as u64 * 64 + u64::from(m.trailing_zeros())) as Value);
                        m &= m - 1;
                    }
                }
            }
        }
    }

    /// Writes `(u, v)` for every member `v`, in order, into `out` (two values per pair).
    fn write_pairs(&self, u: Value, out: &mut [Value]) {
        let mut slots = out.chunks_exact_mut(2);
        let mut put = |v: Value| {
            if let Some(pair) = slots.next() {
                pair[0] = u;
                pair[1] = v;
            }
        };
        match self {
            Reach::List(v) => v.iter().for_each(|&x| put(x)),
            Reach::Bits(words, _) => {
                for (k, &w) in words.iter().enumerate() {
                    let mut m = w;
                    while m != 0 {
                        put((k as u64 * 64 + u64::from(m.trailing_zeros())) as Value);
                        m &= m - 1;
                    }
                }
            }
        }
    }
}

/// Adjacency lists: the successors of `u` are `targets[offsets[u]..offsets[u + 1]]`.
struct Graph {
    offsets: Vec<usize>,
    targets: Vec<Value>,
}

impl Graph {
    /// From sorted pairs over nodes `0..n`.
    fn new(edges: &Relation, n: usize) -> Self {
        let pairs = edges.values().as_chunks::<2>().0;
        let mut offsets = vec![0usize; n + 1];
        for &[u, _] in pairs {
            if let Some(o) = offsets.get_mut(u as usize + 1) {
                *o += 1;
            }
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        Graph {
            offsets,
            targets: pairs.iter().map(|p| p[1]).collect(),
        }
    }

    fn successors(&self, u: usize) -> &[Value] {
        match (self.offsets.get(u), self.offsets.get(u + 1)) {
            (Some(&a), Some(&b)) => self.targets.get(a..b).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// Strongly connected components by Tarjan's algorithm with an explicit stack. Returns the
/// component of each node and the components' members, sinks first (reverse topological order).
fn components(g: &Graph, n: usize) -> (Vec<u32>, Vec<Vec<Value>>) {
    const NONE: u32 = u32::MAX;
    let mut index = vec![NONE; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut comp = vec![NONE; n];
    let mut stack: Vec<Value> = Vec::new();
    let mut comps: Vec<Vec<Value>> = Vec::new();
    let mut next = 0u32;
    // (node, position in its successor list)
    let mut work: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index[root] != NONE {
            continue;
        }
        work.push((root, 0));
        while let Some(&mut (v, ref mut edge)) = work.last_mut() {
            if *edge == 0 && index[v] == NONE {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v as Value);
                on_stack[v] = true;
            }
            let succ = g.successors(v);
            if let Some(&w) = succ.get(*edge) {
                *edge += 1;
                let w = w as usize;
                if index[w] == NONE {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let id = comps.len() as u32;
                let mut members = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    comp[w as usize] = id;
                    members.push(w);
                    if w as usize == v {
                        break;
                    }
                }
                members.sort_unstable();
                comps.push(members);
            }
        }
    }
    (comp, comps)
}

/// A graph condensed to its strongly connected components: what a closure without rounds
/// walks, here and on a device (the runtime hands it to a GPU's path engine).
#[derive(Clone, Debug)]
pub struct Condensed {
    /// The component of each node.
    pub comp: Vec<u32>,
    /// Each component's members, sorted; components sinks first (reverse topological order).
    pub members: Vec<Vec<Value>>,
    /// Each component's distinct successor components, all earlier in the order.
    pub successors: Vec<Vec<u32>>,
    /// Whether each component lies on a cycle (and so reaches its own members).
    pub cyclic: Vec<bool>,
}

/// Condenses the graph of `edges` (binary, sorted) over nodes `0..n`. `None` when a value is
/// `n` or more.
pub fn condense(edges: &Relation, n: usize) -> Option<Condensed> {
    if edges.arity() != 2 || edges.values().iter().any(|&v| v as usize >= n) {
        return None;
    }
    let g = Graph::new(edges, n);
    let (comp, members) = components(&g, n);
    let mut successors = Vec::with_capacity(members.len());
    let mut cyclic = Vec::with_capacity(members.len());
    let mut seen = vec![u32::MAX; members.len()];
    for (c, m) in members.iter().enumerate() {
        let mut children = Vec::new();
        let mut on_cycle = m.len() > 1;
        for &u in m {
            for &v in g.successors(u as usize) {
                let d = comp[v as usize];
                if d as usize == c {
                    on_cycle = true;
                } else if seen[d as usize] != c as u32 {
                    seen[d as usize] = c as u32;
                    children.push(d);
                }
            }
        }
        successors.push(children);
        cyclic.push(on_cycle);
    }
    Some(Condensed {
        comp,
        members,
        successors,
        cyclic,
    })
}

/// At most the number of pairs of the closure: each component reaches at least its own
/// members when it lies on a cycle, and at least what its largest-reaching successor
/// reaches plus that successor's members; every node counts its component's bound.
fn size_lower_bound(g: &Condensed) -> u128 {
    let mut lower = vec![0u64; g.members.len()];
    let mut total: u128 = 0;
    for (c, members) in g.members.iter().enumerate() {
        let mut best = g.successors[c]
            .iter()
            .map(|&d| lower[d as usize] + g.members[d as usize].len() as u64)
            .max()
            .unwrap_or(0);
        if g.cyclic[c] {
            best = best.max(members.len() as u64);
        }
        lower[c] = best;
        total += u128::from(best) * members.len() as u128;
    }
    total
}

/// The transitive closure of `edges` (binary, sorted): every `(u, v)` joined by a path of one
/// or more edges. Fails when the result would pass `max_tuples` pairs or its working sets
/// `max_bytes` bytes, before allocating them.
pub fn transitive_closure(
    edges: &Relation,
    max_tuples: usize,
    max_bytes: usize,
) -> Result<Relation, RelationError> {
    if edges.arity() != 2 || edges.is_empty() {
        return Ok(Relation::empty(2));
    }
    let n = edges
        .values()
        .iter()
        .copied()
        .max()
        .map_or(0, |m| m as usize + 1);
    let Some(g) = condense(edges, n) else {
        return Ok(Relation::empty(2));
    };
    // A lower bound of the result, in one pass over the condensed graph, so a closure far
    // too large fails at once rather than after building most of it.
    let lower = size_lower_bound(&g);
    if lower > max_tuples as u128 {
        return Err(RelationError::TooManyTuples {
            slot: usize::MAX,
            tuples: usize::try_from(lower).unwrap_or(usize::MAX),
            limit: max_tuples,
        });
    }
    if lower.saturating_mul(8) > max_bytes as u128 {
        return Err(RelationError::TooLarge {
            slot: usize::MAX,
            bytes: usize::try_from(lower.saturating_mul(8)).unwrap_or(usize::MAX),
            limit: max_bytes,
        });
    }
    let words = n.div_ceil(64);
    let comps = &g.members;
    let mut reach: Vec<Reach> = Vec::with_capacity(comps.len());
    let mut bytes = 0usize;
    for (c, members) in comps.iter().enumerate() {
        let children = || g.successors[c].iter().map(|&d| d as usize);
        let cyclic = g.cyclic[c];
        let estimate: usize = children()
            .map(|d| reach[d].len() + comps[d].len())
            .sum::<usize>()
            + if cyclic { members.len() } else { 0 };
        let set = if estimate.saturating_mul(32) >= n {
            let mut bits = vec![0u64; words];
            let mut mark = |x: Value| {
                if let Some(w) = bits.get_mut(x as usize / 64) {
                    *w |= 1 << (x % 64);
                }
            };
            for d in children() {
                comps[d].iter().for_each(|&x| mark(x));
                if let Reach::List(v) = &reach[d] {
                    v.iter().for_each(|&x| mark(x));
                }
            }
            if cyclic {
                members.iter().for_each(|&x| mark(x));
            }
            for d in children() {
                if let Reach::Bits(w, _) = &reach[d] {
                    bits.iter_mut().zip(w).for_each(|(a, b)| *a |= b);
                }
            }
            let count = bits.iter().map(|w| w.count_ones() as usize).sum();
            Reach::Bits(bits, count)
        } else {
            let mut v: Vec<Value> = Vec::with_capacity(estimate);
            for d in children() {
                v.extend_from_slice(&comps[d]);
                reach[d].extend_into(&mut v);
            }
            if cyclic {
                v.extend_from_slice(members);
            }
            v.sort_unstable();
            v.dedup();
            Reach::List(v)
        };
        bytes = bytes.saturating_add(set.bytes());
        if bytes > max_bytes {
            return Err(RelationError::TooLarge {
                slot: usize::MAX,
                bytes,
                limit: max_bytes,
            });
        }
        reach.push(set);
    }
    // Each node's pairs start where the pairs of the nodes before it end.
    let mut starts = Vec::with_capacity(n + 1);
    let mut total = 0usize;
    for &c in &g.comp {
        starts.push(total);
        total = total.saturating_add(reach[c as usize].len());
    }
    starts.push(total);
    if total > max_tuples {
        return Err(RelationError::TooManyTuples {
            slot: usize::MAX,
            tuples: total,
            limit: max_tuples,
        });
    }
    let out_bytes = total.saturating_mul(8);
    if out_bytes.saturating_add(bytes) > max_bytes {
        return Err(RelationError::TooLarge {
            slot: usize::MAX,
            bytes: out_bytes.saturating_add(bytes),
            limit: max_bytes,
        });
    }
    let mut data: Vec<Value> = vec![0; total * 2];
    // Split the output at node boundaries into pieces of similar size, one task each.
    let pieces = crate::par::pieces(total, 8);
    let mut jobs = Vec::with_capacity(pieces);
    let mut rest: &mut [Value] = &mut data;
    let mut u = 0usize;
    for k in 1..=pieces {
        let goal = total * k / pieces;
        let first = u;
        while u < n && starts[u + 1] <= goal {
            u += 1;
        }
        if k == pieces {
            u = n;
        }
        let len = (starts[u] - starts[first]) * 2;
        let (piece, tail) = rest.split_at_mut(len.min(rest.len()));
        rest = tail;
        jobs.push((first, u, piece));
    }
    let write = |(lo, hi, piece): (usize, usize, &mut [Value])| {
        let base = starts[lo];
        for node in lo..hi {
            let (a, b) = ((starts[node] - base) * 2, (starts[node + 1] - base) * 2);
            if let (Some(out), Some(&c)) = (piece.get_mut(a..b), g.comp.get(node)) {
                reach[c as usize].write_pairs(node as Value, out);
            }
        }
    };
    crate::par::for_each(jobs, write);
    Ok(Relation::from_sorted_flat(2, data))
}

/// Recognises a stratum that is the transitive closure of one relation: a single head `R`
/// with no facts, the rule `R(x, y) <- E(x, y)` and one or more of `R(x, z) <- R(x, y),
/// E(y, z)`, `R(x, z) <- E(x, y), R(y, z)` and `R(x, z) <- R(x, y), R(y, z)` (body atoms in
/// any order, distinct variables, nothing else in the bodies). Returns `E`'s slot.
pub fn closure_base(rules: &[Rule], head: usize) -> Option<usize> {
    let var_pair = |args: &[Term]| match *args {
        [Term::Var(a), Term::Var(b)] if a != b => Some((a, b)),
        _ => None,
    };
    let mut base = None;
    let mut recursive = false;
    // The base rule `R(x, y) <- E(x, y)` must be there: without it `R` stays empty, whatever
    // the recursive rules say (it was taken as the closure of `E`).
    let mut seeded = false;
    for rule in rules {
        if rule.head != head || !rule.comparisons.is_empty() || rule.body.iter().any(|l| l.negated)
        {
            return None;
        }
        let (x, z) = var_pair(&rule.head_args)?;
        match &rule.body[..] {
            [only] if only.slot != head && var_pair(&only.args)? == (x, z) => {
                if base.is_some_and(|b| b != only.slot) {
                    return None;
                }
                base = Some(only.slot);
                seeded = true;
            }
            [p, q] => {
                let (p_args, q_args) = (var_pair(&p.args)?, var_pair(&q.args)?);
                // Order the two atoms as the path x → y → z.
                let (first, second) = if p_args.0 == x { (p, q) } else { (q, p) };
                let ((a, y), (y2, b)) = if p_args.0 == x {
                    (p_args, q_args)
                } else {
                    (q_args, p_args)
                };
                if a != x || b != z || y != y2 || y == x || y == z {
                    return None;
                }
                let other = [first.slot, second.slot].into_iter().find(|&s| s != head);
                if first.slot != head && second.slot != head {
                    return None;
                }
                if let Some(e) = other {
                    if base.is_some_and(|b| b != e) {
                        return None;
                    }
                    base = Some(e);
                }
                recursive = true;
            }
            _ => return None,
        }
    }
    base.filter(|_| recursive && seeded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Literal;

    #[test]
    fn a_recursion_without_its_base_rule_is_not_a_closure() {
        let v = Term::Var;
        let rule = |body: Vec<Literal>| Rule {
            head: 1,
            head_args: vec![v(0), v(2)],
            body,
            comparisons: Vec::new(),
            var_extents: vec![5; 3],
        };
        let atom = |slot, a, b| Literal {
            slot,
            args: vec![v(a), v(b)],
            negated: false,
        };
        let step = rule(vec![atom(1, 0, 1), atom(0, 1, 2)]);
        // `R(x, z) <- R(x, y), E(y, z)` alone derives nothing (found by engine_props).
        assert_eq!(closure_base(std::slice::from_ref(&step), 1), None);
        let base = rule(vec![atom(0, 0, 2)]);
        assert_eq!(closure_base(&[base, step], 1), Some(0));
    }

    /// Reachability by a depth-first search from every node.
    fn naive(edges: &[(u32, u32)], n: u32) -> Vec<u32> {
        let mut out = Vec::new();
        for u in 0..n {
            let mut seen = vec![false; n as usize];
            let mut stack: Vec<u32> = edges.iter().filter(|e| e.0 == u).map(|e| e.1).collect();
            while let Some(v) = stack.pop() {
                if !seen[v as usize] {
                    seen[v as usize] = true;
                    stack.extend(edges.iter().filter(|e| e.0 == v).map(|e| e.1));
                }
            }
            for v in 0..n {
                if seen[v as usize] {
                    out.extend([u, v]);
                }
            }
        }
        out
    }

    #[test]
    fn matches_search_on_random_graphs() {
        let mut state = 12345u64;
        let mut next = |m: u32| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % u64::from(m)) as u32
        };
        // Sparse and dense graphs, some mostly acyclic (edges pointing to higher nodes), so
        // that small lists, bitsets and bitsets of few members all meet in one union.
        for round in 0..16 {
            for (n, m) in [
                (1, 1),
                (5, 3),
                (20, 25),
                (70, 60),
                (130, 400),
                (200, 150),
                (300, 330),
            ] {
                let edges: Vec<(u32, u32)> = (0..m)
                    .map(|_| {
                        let (a, b) = (next(n), next(n));
                        if round % 2 == 0 && a > b {
                            (b, a)
                        } else {
                            (a, b)
                        }
                    })
                    .collect();
                let flat = edges.iter().flat_map(|&(a, b)| [a, b]).collect();
                let rel = Relation::from_flat(2, flat);
                let got = transitive_closure(&rel, usize::MAX, usize::MAX).expect("fits");
                assert_eq!(got.values(), &naive(&edges, n)[..], "n = {n}, m = {m}");
            }
        }
    }

    #[test]
    fn limits_are_errors_before_allocating() {
        let chain: Vec<u32> = (0..1000u32).flat_map(|i| [i, i + 1]).collect();
        let rel = Relation::from_flat(2, chain);
        assert!(matches!(
            transitive_closure(&rel, 1000, usize::MAX),
            Err(RelationError::TooManyTuples { tuples: 500500, .. })
        ));
        assert!(matches!(
            transitive_closure(&rel, usize::MAX, 4096),
            Err(RelationError::TooLarge { .. })
        ));
        // A long chain is deep, not wide: no recursion on the stack.
        let long: Vec<u32> = (0..200_000u32).flat_map(|i| [i, i + 1]).collect();
        let rel = Relation::from_flat(2, long);
        assert!(transitive_closure(&rel, 10, usize::MAX).is_err());
    }
}
