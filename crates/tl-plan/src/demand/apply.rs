//! Turning a judged draft into the program that runs.
//!
//! The adorned copies and magic relations that something needs become new relations past the
//! program's tensors (numbered in order), with their rules; the program's own rules read the
//! adorned copies where the draft says so, as do the queries; the rules of relations no longer
//! needed are removed (those relations stay, empty, so tensor ids do not move). The result is
//! stratified again; should that fail, the program is left as it was.

use super::adorn::Draft;
use super::Rewrite;
use tl_check::{
    BodyAtom, CheckedProgram, Command, Definition, Rule, TensorDecl, TensorId, TensorKind,
};

/// Applies `d` to `p`, keeping the new tensors `needed` marks and dropping the rules of the
/// relations `dropped` marks; `None` (and `p` unchanged) when the result does not stratify.
pub(crate) fn apply(
    p: &mut CheckedProgram,
    d: &Draft,
    needed: &[bool],
    dropped: &[bool],
) -> Option<Rewrite> {
    let is_needed = |t: TensorId| needed.get(t).copied().unwrap_or(false);
    let is_dropped = |t: TensorId| dropped.get(t).copied().unwrap_or(false);
    // New ids for the draft's tensors that are kept.
    let mut renumber: Vec<Option<TensorId>> = vec![None; 2 * d.entries.len()];
    let mut decls: Vec<TensorDecl> = Vec::new();
    let mut adorned = Vec::new();
    let mut magic = Vec::new();
    for (k, e) in d.entries.iter().enumerate() {
        if !is_needed(d.adorned(k)) {
            continue;
        }
        let original = p.tensors.get(e.key.relation)?;
        let suffix: String = e
            .key
            .adornment
            .iter()
            .map(|&b| if b { 'b' } else { 'f' })
            .collect();
        let copies = d.entries[..k]
            .iter()
            .enumerate()
            .filter(|(j, o)| {
                is_needed(d.adorned(*j))
                    && o.key.relation == e.key.relation
                    && o.key.adornment == e.key.adornment
            })
            .count();
        let name = if copies == 0 {
            format!("{}.{suffix}", original.name)
        } else {
            format!("{}.{suffix}.{}", original.name, copies + 1)
        };
        let bound_axes = original
            .axes
            .iter()
            .zip(&e.key.adornment)
            .filter(|(_, &b)| b)
            .map(|(&a, _)| a)
            .collect();
        let id = p.tensors.len() + decls.len();
        renumber[2 * k] = Some(id);
        renumber[2 * k + 1] = Some(id + 1);
        adorned.push((id, e.key.relation, e.key.adornment.clone()));
        magic.push(id + 1);
        decls.push(TensorDecl {
            name: name.clone(),
            facts: original.facts.clone(),
            ..relation(original, original.axes.clone())
        });
        decls.push(TensorDecl {
            name: format!("magic.{name}"),
            facts: e.seeds.clone(),
            ..relation(original, bound_axes)
        });
    }
    let map = |t: TensorId| -> Option<TensorId> {
        match t.checked_sub(d.base) {
            Some(k) => renumber.get(k).copied().flatten(),
            None => Some(t),
        }
    };
    let mut rules: Vec<Rule> = Vec::with_capacity(p.rules.len() + d.rules.len());
    let mut edited_rules = Vec::new();
    for (r, rule) in p.rules.iter().enumerate() {
        if is_dropped(rule.head) {
            continue;
        }
        let mut rule = rule.clone();
        if is_needed(rule.head) {
            let mut edited = false;
            for &(_, pos, t) in d.body_edits.iter().filter(|e| e.0 == r) {
                let atom = rule.body.get_mut(pos)?;
                atom.tensor = map(t)?;
                edited = true;
            }
            if edited {
                edited_rules.push(rules.len());
            }
        }
        rules.push(rule);
    }
    let first_new_rule = rules.len();
    // A magic rule that reads the magic relation of a copy nothing needs states the demand of
    // rules that never run: it is left out.
    for rule in &d.rules {
        let Some(head) = map(rule.head) else {
            continue;
        };
        let body: Option<Vec<_>> = rule
            .body
            .iter()
            .map(|a| {
                map(a.tensor).map(|tensor| BodyAtom {
                    tensor,
                    ..a.clone()
                })
            })
            .collect();
        if let Some(body) = body {
            rules.push(Rule {
                head,
                body,
                ..rule.clone()
            });
        }
    }
    let mut tensors_rules: Vec<Vec<usize>> = vec![Vec::new(); p.tensors.len() + decls.len()];
    for (k, rule) in rules.iter().enumerate() {
        tensors_rules.get_mut(rule.head)?.push(k);
    }
    // A relation left with no rules (one no longer computed, a magic relation of seeds alone)
    // is its facts, like any relation stated by facts: no stratum evaluates it.
    let base = p.tensors.len();
    let facts_only: Vec<bool> = tensors_rules
        .iter()
        .enumerate()
        .map(|(t, list)| list.is_empty() && (t >= base || is_dropped(t)))
        .collect();
    let strata = stratify(p, &decls, &rules, &tensors_rules, &facts_only)?;
    let mut query_edits = Vec::new();
    for &(c, t) in &d.query_edits {
        let new = map(t)?;
        if let Some(Command::Query { tensor, .. }) = p.commands.get_mut(c) {
            query_edits.push((c, *tensor, new));
            *tensor = new;
        }
    }
    p.tensors.extend(decls);
    for ((decl, list), only) in p.tensors.iter_mut().zip(tensors_rules).zip(facts_only) {
        decl.rules = list;
        if only {
            decl.def = Definition::Tuples(std::mem::take(&mut decl.facts));
        }
    }
    p.rules = rules;
    p.strata = strata;
    let dropped_list = (0..base).filter(|&t| is_dropped(t)).collect();
    Some(Rewrite {
        base,
        adorned,
        magic,
        edited_rules,
        new_rules: first_new_rule..p.rules.len(),
        queries: query_edits,
        dropped: dropped_list,
        estimate: (0, 0),
    })
}

/// A derived relation over `axes`, first seen where `original` is.
fn relation(original: &TensorDecl, axes: Vec<tl_check::DomainId>) -> TensorDecl {
    TensorDecl {
        name: String::new(),
        span: original.span,
        kind: TensorKind::Relation,
        axes,
        def: Definition::Derived,
        facts: Vec::new(),
        equations: Vec::new(),
        rules: Vec::new(),
    }
}

/// The strata of the program with these tensors and rules, from a copy that leaves out data.
fn stratify(
    p: &CheckedProgram,
    new: &[TensorDecl],
    rules: &[Rule],
    tensors_rules: &[Vec<usize>],
    facts_only: &[bool],
) -> Option<Vec<tl_check::Stratum>> {
    let light = |t: &TensorDecl, (list, &only): (&Vec<usize>, &bool)| TensorDecl {
        name: t.name.clone(),
        span: t.span,
        kind: t.kind,
        axes: t.axes.clone(),
        def: match t.def {
            Definition::Derived if !only => Definition::Derived,
            _ => Definition::Tuples(Vec::new()),
        },
        facts: Vec::new(),
        equations: t.equations.clone(),
        rules: list.clone(),
    };
    let program = CheckedProgram {
        tensors: p
            .tensors
            .iter()
            .chain(new)
            .zip(tensors_rules.iter().zip(facts_only))
            .map(|(t, rest)| light(t, rest))
            .collect(),
        domains: Vec::new(),
        equations: p.equations.clone(),
        rules: rules.to_vec(),
        strata: Vec::new(),
        commands: Vec::new(),
        loops: p.loops.clone(),
    };
    tl_check::strata::stratify(&program).ok()
}
