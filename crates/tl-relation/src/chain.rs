//! Rules whose body is a path of binary atoms ([`path_shape`]), joined as a walk along the
//! path.
//!
//! `SG(x, y) <- E(a, x), SG(a, b), E(b, y)` links `x – a – b – y`; so does any rule whose
//! body atoms are binary and chain the head's first variable to its second, each variable in
//! between shared by exactly two atoms: the bread and butter of graph programs (closures,
//! same generation, paths of labelled edges). A semi-naive variant of such a rule scans its
//! delta atom and, from each delta tuple `(s, t)`, walks the atoms before it back to `x` and
//! the atoms after it on to `y`, then emits every `(x, y)` of the two walks. These loops are
//! written out for this one shape, so a derived tuple costs a few instructions instead of a
//! trip through the general join's steps.

use crate::bits::Cells;
use crate::index::{Index, IndexCache};
use crate::join::BodySource;
use crate::relation::Value;
use crate::rule::{Compare, Rule, Term};
use std::sync::Arc;

/// One atom of the path, as the walk crosses it.
#[derive(Clone, Copy, Debug)]
struct Hop {
    /// Position of the atom in the rule body.
    atom: usize,
    /// Whether the atom's first column is the variable nearer the head's `x`.
    forward: bool,
}

/// A rule's body as a path from the head's first variable to its second.
#[derive(Clone, Debug)]
pub(crate) struct Chain {
    hops: Vec<Hop>,
}

/// A rule's body read as a path from the head's first variable `x` to its second `y`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathShape {
    /// The body atoms in path order: (position in the body, whether the atom's first column
    /// is the end nearer `x`).
    pub hops: Vec<(usize, bool)>,
    /// A comparison `x op y` from the rule's body, if it has one.
    pub test: Option<Compare>,
}

/// The path of `rule`, when it is one: a binary head `H(x, y)` with `x != y`, and one or
/// more positive binary atoms over distinct variables linking `x` to `y`, every atom used
/// once, every variable in between shared by exactly two atoms, no constants, and at most one
/// comparison, between `x` and `y`.
pub fn path_shape(rule: &Rule) -> Option<PathShape> {
    let pair = |args: &[Term]| match *args {
        [Term::Var(a), Term::Var(b)] if a != b => Some((a, b)),
        _ => None,
    };
    let (x, y) = pair(&rule.head_args)?;
    let test = match &rule.comparisons[..] {
        [] => None,
        [c] => match (c.lhs, c.rhs) {
            (Term::Var(a), Term::Var(b)) if (a, b) == (x, y) => Some(c.op),
            (Term::Var(a), Term::Var(b)) if (a, b) == (y, x) => Some(c.op.flipped()),
            _ => return None,
        },
        _ => return None,
    };
    let mut atoms = Vec::with_capacity(rule.body.len());
    for lit in &rule.body {
        if lit.negated {
            return None;
        }
        atoms.push(pair(&lit.args)?);
    }
    let mut used = vec![false; atoms.len()];
    let mut hops = Vec::with_capacity(atoms.len());
    let mut at = x;
    while at != y || hops.is_empty() {
        let mut next = None;
        for (k, &(a, b)) in atoms.iter().enumerate() {
            if used[k] || (a != at && b != at) {
                continue;
            }
            if next.is_some() {
                return None; // a variable shared by three atoms: not a path
            }
            next = Some((k, a == at));
        }
        let (k, forward) = next?;
        used[k] = true;
        hops.push((k, forward));
        let (a, b) = atoms[k];
        at = if forward { b } else { a };
        if at == x {
            return None;
        }
    }
    used.iter().all(|&u| u).then_some(PathShape { hops, test })
}

impl Chain {
    /// The path of `rule` for the CPU's walk: a [`path_shape`] of two or more atoms and no
    /// comparison.
    pub(crate) fn of(rule: &Rule) -> Option<Chain> {
        let shape = path_shape(rule)?;
        if shape.hops.len() < 2 || shape.test.is_some() {
            return None;
        }
        Some(Chain {
            hops: shape
                .hops
                .into_iter()
                .map(|(atom, forward)| Hop { atom, forward })
                .collect(),
        })
    }

    /// Runs the variant that reads the delta at body position `delta_at` (whose source must
    /// be scannable in order). With `cells`, inserts every derived `(x, y)` there and returns
    /// those that were new; without, returns every derived pair (repeats possible). `None`
    /// when an atom's source cannot be walked here (a delta not in the path, or a growing
    /// relation crossed from its second column); the caller then uses the general join.
    /// `Some(Err(n))` when more than `limit` pairs were produced (at least `n`): the walk
    /// stops there instead of filling memory.
    pub(crate) fn run<'a>(
        &self,
        delta_at: usize,
        sources: &[BodySource<'a>],
        cache: &mut IndexCache<'a>,
        cells: Option<&Cells>,
        limit: usize,
    ) -> Option<Result<Vec<Value>, usize>> {
        let q = self.hops.iter().position(|h| h.atom == delta_at)?;
        let delta = sources.get(delta_at)?;
        if delta.live.is_some() {
            return None;
        }
        // Walking back from the delta's near end crosses each earlier atom from its far
        // column; walking on crosses each later atom from its near column.
        let mut left = Vec::new();
        for hop in self.hops[..q].iter().rev() {
            left.push(Side::new(sources.get(hop.atom)?, cache, !hop.forward)?);
        }
        let mut right = Vec::new();
        for hop in &self.hops[q + 1..] {
            right.push(Side::new(sources.get(hop.atom)?, cache, hop.forward)?);
        }
        let forward = self.hops[q].forward;
        let pairs = delta.rel.values().as_chunks::<2>().0;
        let chunk = crate::par::chunk(pairs.len(), 4096, 8);
        let work = |part: &[[Value; 2]]| {
            let mut out = Vec::new();
            let (mut xs, mut ys) = (Vec::new(), Vec::new());
            let mut scratch = Vec::new();
            for &[a, b] in part {
                let (s, t) = if forward { (a, b) } else { (b, a) };
                let xs = reach(&left, s, &mut xs, &mut scratch);
                if xs.is_empty() {
                    continue;
                }
                let ys = reach(&right, t, &mut ys, &mut scratch);
                for &x in xs {
                    for &y in ys {
                        if cells.is_none_or(|c| c.insert(&[x, y])) {
                            out.push(x);
                            out.push(y);
                        }
                    }
                }
            }
            out
        };
        // Small deltas (deep recursions add a few tuples per round) stay on this thread.
        let parts: Vec<Vec<Value>> = crate::par::map_adaptive(pairs.chunks(chunk).collect(), work);
        let produced: usize = parts.iter().map(|p| p.len() / 2).sum();
        if let Some(cells) = cells {
            cells.counted(produced);
        }
        if produced > limit {
            return Some(Err(produced));
        }
        Some(Ok(if parts.len() == 1 {
            parts.into_iter().next().unwrap_or_default()
        } else {
            parts.concat()
        }))
    }
}

/// One atom crossed by a walk: looked up by the column the walk enters from.
struct Side<'a> {
    index: Arc<Index<'a>>,
}

impl<'a> Side<'a> {
    /// `from_first`: the walk enters the atom through its first column.
    fn new(src: &BodySource<'a>, cache: &mut IndexCache<'a>, from_first: bool) -> Option<Self> {
        let key = if from_first { 0 } else { 1 };
        if src.live.is_some() && !from_first {
            return None;
        }
        Some(Side {
            index: cache.get(src, &[key]),
        })
    }

    /// Appends the values across the atom from `v`.
    #[inline]
    fn extend(&self, v: Value, out: &mut Vec<Value>) {
        match &*self.index {
            Index::Sorted { .. } => {
                if let Some(t) = self.index.targets(v) {
                    out.extend_from_slice(t);
                    return;
                }
                let (lo, hi) = self.index.range(&[v]);
                for i in lo..hi {
                    if let Some(&w) = self.index.rest_row(i).first() {
                        out.push(w);
                    }
                }
            }
            Index::Rows { rows } => out.extend_from_slice(rows.row(v)),
            Index::Bits { cells } => {
                if let Some((base, end)) = cells.prefix_cells(&[v]) {
                    let mut from = base;
                    while let Some(cell) = cells.next_cell(from, end) {
                        out.push((cell - base) as Value);
                        from = cell + 1;
                    }
                }
            }
        }
    }
}

/// The values reached from `start` across `sides` in order (repeats possible after two or
/// more atoms; the head's bits drop them): a slice of an index when one atom is crossed,
/// else collected in `out`.
#[inline]
fn reach<'s>(
    sides: &'s [Side<'_>],
    start: Value,
    out: &'s mut Vec<Value>,
    scratch: &mut Vec<Value>,
) -> &'s [Value] {
    match sides {
        [] => {
            out.clear();
            out.push(start);
            return out;
        }
        [one] => {
            if let Some(t) = one.index.targets(start) {
                return t;
            }
        }
        _ => {}
    }
    walk(sides, start, out, scratch);
    out
}

/// [`reach`] into `out`, one atom at a time.
fn walk(sides: &[Side<'_>], start: Value, out: &mut Vec<Value>, scratch: &mut Vec<Value>) {
    out.clear();
    out.push(start);
    for side in sides {
        std::mem::swap(out, scratch);
        out.clear();
        for &v in scratch.iter() {
            side.extend(v, out);
        }
        if out.is_empty() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Literal;

    fn rule(head: (usize, usize), body: &[(usize, usize, usize)]) -> Rule {
        Rule {
            head: 9,
            head_args: vec![Term::Var(head.0), Term::Var(head.1)],
            body: body
                .iter()
                .map(|&(slot, a, b)| Literal {
                    slot,
                    args: vec![Term::Var(a), Term::Var(b)],
                    negated: false,
                })
                .collect(),
            comparisons: vec![],
            var_extents: vec![10; 6],
        }
    }

    #[test]
    fn recognises_paths_only() {
        // SG(x, y) <- E(a, x), SG(a, b), E(b, y): x=0, y=1, a=2, b=3.
        let sg = Chain::of(&rule((0, 1), &[(0, 2, 0), (9, 2, 3), (0, 3, 1)])).expect("a path");
        let hops: Vec<(usize, bool)> = sg.hops.iter().map(|h| (h.atom, h.forward)).collect();
        assert_eq!(hops, vec![(0, false), (1, true), (2, true)]);
        // T(x, z) <- T(x, y), E(y, z).
        assert!(Chain::of(&rule((0, 2), &[(9, 0, 1), (0, 1, 2)])).is_some());
        // A triangle and a dangling atom are not paths.
        assert!(Chain::of(&rule((0, 1), &[(0, 0, 2), (0, 2, 1), (0, 0, 1)])).is_none());
        assert!(Chain::of(&rule((0, 1), &[(0, 0, 1), (0, 1, 4)])).is_none());
        // A cycle back through x is not a path either.
        assert!(Chain::of(&rule((0, 1), &[(0, 0, 2), (0, 2, 0), (0, 0, 1)])).is_none());
    }
}
