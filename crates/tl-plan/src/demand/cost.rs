//! What a rewrite leaves to compute, and what it is estimated to cost.
//!
//! A tensor is *needed* when something observable reads it: a query or write names it, an
//! equation defines it (equations always run) or reads it, or a rule of a needed tensor reads
//! it. The rewrite pays off only for relations that were needed and no longer are: they are
//! then not computed at all. Sizes are estimated in cells, an upper bound on tuples: a whole
//! relation is the product of its extents; an adorned copy is at most its magic relation's
//! size times the extents of its free arguments, and a magic relation is at most its seeds
//! plus, per rule, the product of the sizes of the atoms it joins (known tuple counts for
//! facts, whole relations for anything derived, and the whole bound space for a magic relation
//! that grows by rules of its own).

use super::adorn::Draft;
use tl_check::{CheckedProgram, Command, Definition, TensorId};

/// Which tensors (the program's, then the draft's) something observable reads.
pub(crate) fn needed(p: &CheckedProgram, d: &Draft) -> Vec<bool> {
    let total = d.base + 2 * d.entries.len();
    let mut rules_of: Vec<Vec<usize>> = vec![Vec::new(); total];
    for (k, r) in d.rules.iter().enumerate() {
        if let Some(list) = rules_of.get_mut(r.head) {
            list.push(k);
        }
    }
    let mut edits: Vec<Vec<(usize, TensorId)>> = vec![Vec::new(); p.rules.len()];
    for &(r, pos, t) in &d.body_edits {
        if let Some(list) = edits.get_mut(r) {
            list.push((pos, t));
        }
    }
    let mut query_reads: Vec<Option<TensorId>> = vec![None; p.commands.len()];
    for &(c, t) in &d.query_edits {
        if let Some(slot) = query_reads.get_mut(c) {
            *slot = Some(t);
        }
    }
    let mut stack: Vec<TensorId> = Vec::new();
    for (c, cmd) in p.commands.iter().enumerate() {
        match cmd {
            Command::Query { tensor, .. } => {
                stack.push(query_reads.get(c).copied().flatten().unwrap_or(*tensor))
            }
            Command::Write { tensors, .. } => stack.extend(tensors),
            Command::Minimize(m) => stack.push(m.loss),
        }
    }
    stack.extend(p.equations.iter().map(|e| e.lhs));
    let mut seen = vec![false; total];
    while let Some(t) = stack.pop() {
        match seen.get_mut(t) {
            Some(s) if !*s => *s = true,
            _ => continue,
        }
        if let Some(decl) = p.tensors.get(t) {
            for &e in &decl.equations {
                if let Some(eq) = p.equations.get(e) {
                    let mut reads = Vec::new();
                    tl_check::strata::collect_reads(&eq.rhs, &mut reads);
                    stack.extend(reads.into_iter().map(|(r, _)| r));
                }
            }
            for &r in &decl.rules {
                let Some(rule) = p.rules.get(r) else {
                    continue;
                };
                let edited = edits.get(r).map_or(&[][..], Vec::as_slice);
                for (pos, atom) in rule.body.iter().enumerate() {
                    let read = edited
                        .iter()
                        .find(|(q, _)| *q == pos)
                        .map_or(atom.tensor, |&(_, t)| t);
                    stack.push(read);
                }
            }
        }
        for &k in rules_of.get(t).map_or(&[][..], Vec::as_slice) {
            if let Some(rule) = d.rules.get(k) {
                stack.extend(rule.body.iter().map(|a| a.tensor));
            }
        }
    }
    seen
}

/// The cells of a tensor of the program (saturating).
pub(crate) fn cells(p: &CheckedProgram, t: TensorId) -> u128 {
    p.tensors.get(t).map_or(0, |d| {
        d.axes
            .iter()
            .map(|&a| p.domains.get(a).map_or(0, |dom| dom.extent as u128))
            .fold(1, u128::saturating_mul)
    })
}

/// The cells of the arguments of `relation` that `adornment` marks `bound` (or free).
fn part_cells(p: &CheckedProgram, relation: TensorId, adornment: &[bool], bound: bool) -> u128 {
    p.tensors.get(relation).map_or(0, |d| {
        d.axes
            .iter()
            .zip(adornment)
            .filter(|(_, &b)| b == bound)
            .map(|(&a, _)| p.domains.get(a).map_or(0, |dom| dom.extent as u128))
            .fold(1, u128::saturating_mul)
    })
}

/// An upper bound on the tuples a tensor read by a magic rule holds, without following
/// rules: counted facts, or the tensor's cells.
fn known_size(p: &CheckedProgram, d: &Draft, t: TensorId) -> u128 {
    if let Some((k, is_magic)) = d.entry_of(t) {
        let Some(e) = d.entries.get(k) else {
            return 0;
        };
        let rel = e.key.relation;
        let bound = part_cells(p, rel, &e.key.adornment, true);
        let magic = if e.magic_rules.is_empty() {
            (e.seeds.len() as u128).min(bound)
        } else {
            bound
        };
        return if is_magic {
            magic
        } else {
            magic
                .saturating_mul(part_cells(p, rel, &e.key.adornment, false))
                .min(cells(p, rel))
        };
    }
    match p.tensors.get(t).map(|decl| &decl.def) {
        Some(Definition::Tuples(rows)) => rows.len() as u128,
        _ => cells(p, t),
    }
}

/// The estimated cells of entry `k`'s adorned copy (see the module note).
pub(crate) fn estimate(p: &CheckedProgram, d: &Draft, k: usize) -> u128 {
    let Some(e) = d.entries.get(k) else {
        return 0;
    };
    let rel = e.key.relation;
    let bound = part_cells(p, rel, &e.key.adornment, true);
    let mut magic = e.seeds.len() as u128;
    for &r in &e.magic_rules {
        let Some(rule) = d.rules.get(r) else {
            continue;
        };
        let grows = rule.body.iter().any(|a| a.tensor == d.magic(k));
        let joined = if grows {
            bound
        } else {
            rule.body
                .iter()
                .map(|a| known_size(p, d, a.tensor))
                .fold(1, u128::saturating_mul)
        };
        magic = magic.saturating_add(joined);
    }
    magic
        .min(bound)
        .saturating_mul(part_cells(p, rel, &e.key.adornment, false))
        .min(cells(p, rel))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demand::adorn;
    use crate::demand::tests::checked;

    const RULES: &str = "Edge(0, 1)\nEdge(1, 2)\nEdge(98, 99)\nStart(0)\nStart(1)\n\
                         Reach(x, y) <- Edge(x, y)\nReach(x, z) <- Reach(x, y), Edge(y, z)\n";

    /// (relation, estimate) of each copy the draft makes.
    fn estimates(uses: &str) -> Vec<(String, u128)> {
        let p = checked(&format!("{RULES}{uses}"));
        let whole = vec![false; p.tensors.len()];
        let d = adorn::draft(&p, &whole).unwrap_or_default();
        (0..d.entries.len())
            .map(|k| {
                let rel = d.entries[k].key.relation;
                (p.tensors[rel].name.clone(), estimate(&p, &d, k))
            })
            .collect()
    }

    #[test]
    fn a_copy_is_its_seeds_or_its_facts_times_the_free_extent() {
        assert_eq!(
            estimates("Reach(1, y)?\n"),
            vec![("Reach".to_string(), 100)]
        );
        // Two facts of Start can ask for two sources.
        assert_eq!(
            estimates("R(y) <- Start(x), Reach(x, y)\nR?\n"),
            vec![("Reach".to_string(), 200)]
        );
    }

    #[test]
    fn a_magic_relation_that_grows_by_its_own_rule_may_ask_everything() {
        // Asked from a source through a rule that passes a fresh variable on (the comparison
        // keeps it from being a closure, which would be turned around).
        let got =
            estimates("S(x, y) <- Edge(x, y)\nS(x, z) <- Edge(x, y), S(y, z), x != z\nS(0, y)?\n");
        assert_eq!(got, vec![("S".to_string(), 100 * 100)]);
    }

    #[test]
    fn only_what_observable_things_read_is_needed() {
        let p = checked(&format!(
            "{RULES}Unused(x) <- Reach(x, x)\nR(y) <- Reach(0, y)\nR?\n"
        ));
        let d = adorn::draft(&p, &vec![false; p.tensors.len()]).unwrap_or_default();
        let need = needed(&p, &d);
        let named = |n: &str| p.tensor_named(n).is_some_and(|t| need[t]);
        assert!(named("R") && named("Edge"));
        assert!(!named("Unused") && !named("Reach"));
        assert!(need[d.adorned(0)] && need[d.magic(0)]);
    }
}
