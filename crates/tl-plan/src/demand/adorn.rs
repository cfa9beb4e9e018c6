//! Adornments and the rules of the magic-set rewrite.
//!
//! A *demand* is a relation asked for with some arguments bound: `Reach(17, y)?` asks `Reach`
//! with its first argument bound (adornment `bf`). The rewrite gives each demanded
//! (relation, adornment, context) an adorned copy `Reach.bf` and a magic relation
//! `magic.Reach.bf` holding the bound values asked for. Each rule of the relation is copied
//! for the adorned relation with the magic atom in front; its body is walked in binding order
//! (sideways information passing: the head's bound variables first, then the positive atom with
//! the most bound arguments, and so on), and each positive atom over another relation that is
//! demanded with a bound argument reads that relation's adorned copy, whose magic relation gets
//! a rule: the bound values of the atom, given the magic atom and the atoms before it.
//!
//! Only positive atoms over relations defined by rules pass demand on. Negated atoms, real
//! tensors and relations that must be computed whole are read as they are, which keeps the
//! rewritten program stratified (see [`super`]).
//!
//! The *context* of a demand is the stratum of the rule that first asks it (the commands count
//! as one stratum past the last): adorned copies are never shared between contexts, so no
//! demand of a later stratum flows into relations that an earlier stratum reads.

use super::Adornment;
use std::collections::{HashMap, VecDeque};
use tl_check::{
    BodyAtom, CheckedProgram, Command, Definition, QueryArg, Rule, TensorId, TensorKind, Term,
    VarInfo,
};

/// At most this many adorned copies are made; a program that needs more is evaluated whole.
const MAX_ENTRIES: usize = 4096;

/// What one demanded (relation, adornment, context) asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    /// The relation asked for.
    pub relation: TensorId,
    /// Which of its arguments are bound.
    pub adornment: Adornment,
    /// The stratum that asks (the commands are `strata.len()`).
    pub context: usize,
}

/// One adorned copy and its magic relation.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// What it answers.
    pub key: Key,
    /// The bound values asked for by constants alone (facts of the magic relation).
    pub seeds: Vec<Vec<u32>>,
    /// Indices in [`Draft::rules`] of the rules defining the magic relation.
    pub magic_rules: Vec<usize>,
}

/// The rules of a rewrite, before it is judged and applied. New tensors are numbered past the
/// program's: entry `k`'s adorned copy is `base + 2k`, its magic relation `base + 2k + 1`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Draft {
    /// The program's tensor count.
    pub base: usize,
    /// The adorned copies, in the order they were first asked for.
    pub entries: Vec<Entry>,
    /// The entry of each key.
    pub(crate) index: HashMap<Key, usize>,
    /// New rules: adorned copies of rules and magic rules.
    pub rules: Vec<Rule>,
    /// (rule, body position, tensor now read) for the program's own rules.
    pub body_edits: Vec<(usize, usize, TensorId)>,
    /// (command, tensor now read) for queries.
    pub query_edits: Vec<(usize, TensorId)>,
}

impl Draft {
    /// The adorned copy of entry `k`.
    pub fn adorned(&self, k: usize) -> TensorId {
        self.base + 2 * k
    }

    /// The magic relation of entry `k`.
    pub fn magic(&self, k: usize) -> TensorId {
        self.base + 2 * k + 1
    }

    /// The entry a new tensor belongs to, and whether it is the magic relation.
    pub fn entry_of(&self, t: TensorId) -> Option<(usize, bool)> {
        let k = t.checked_sub(self.base)?;
        (k / 2 < self.entries.len()).then_some((k / 2, k % 2 == 1))
    }
}

/// Whether a relation is defined by rules alone (and facts), so that it can be adorned.
pub(crate) fn derived_by_rules(p: &CheckedProgram, t: TensorId) -> bool {
    p.tensors.get(t).is_some_and(|d| {
        d.kind == TensorKind::Relation
            && matches!(d.def, Definition::Derived)
            && d.equations.is_empty()
            && !d.rules.is_empty()
    })
}

struct Builder<'a> {
    p: &'a CheckedProgram,
    /// Relations to compute whole (never adorned).
    whole: &'a [bool],
    stratum_of: Vec<Option<usize>>,
    draft: Draft,
    queue: VecDeque<usize>,
}

/// The rewrite that reads every bound demand through adorned copies, except of the relations
/// marked in `whole`; `None` when it would need more than [`MAX_ENTRIES`] copies.
pub(crate) fn draft(p: &CheckedProgram, whole: &[bool]) -> Option<Draft> {
    let mut stratum_of = vec![None; p.tensors.len()];
    for (k, s) in p.strata.iter().enumerate() {
        for &t in &s.tensors {
            if let Some(slot) = stratum_of.get_mut(t) {
                *slot = Some(k);
            }
        }
    }
    let mut b = Builder {
        p,
        whole,
        stratum_of,
        draft: Draft {
            base: p.tensors.len(),
            ..Draft::default()
        },
        queue: VecDeque::new(),
    };
    b.queries()?;
    for (r, rule) in p.rules.iter().enumerate() {
        let Some(context) = b.stratum_of.get(rule.head).copied().flatten() else {
            continue;
        };
        let bound = vec![false; rule.vars.len()];
        let body = b.body(rule, bound, None, context, Some(context))?;
        for (pos, atom) in body {
            if let Some(pos) = pos {
                if rule.body.get(pos).is_some_and(|a| a.tensor != atom.tensor) {
                    b.draft.body_edits.push((r, pos, atom.tensor));
                }
            }
        }
    }
    while let Some(k) = b.queue.pop_front() {
        b.expand(k)?;
    }
    Some(b.draft)
}

impl Builder<'_> {
    fn adornable(&self, t: TensorId) -> bool {
        !self.whole.get(t).copied().unwrap_or(true) && derived_by_rules(self.p, t)
    }

    /// The entry for a demand, made (and queued for expansion) when new.
    fn demand(&mut self, key: Key) -> Option<usize> {
        if let Some(&k) = self.draft.index.get(&key) {
            return Some(k);
        }
        if self.draft.entries.len() >= MAX_ENTRIES {
            return None;
        }
        let k = self.draft.entries.len();
        self.draft.index.insert(key.clone(), k);
        self.draft.entries.push(Entry {
            key,
            seeds: Vec::new(),
            magic_rules: Vec::new(),
        });
        self.queue.push_back(k);
        Some(k)
    }

    /// Queries with a constant argument read an adorned copy seeded by their constants.
    fn queries(&mut self) -> Option<()> {
        let context = self.p.strata.len();
        for (c, cmd) in self.p.commands.iter().enumerate() {
            let Command::Query { tensor, args, .. } = cmd else {
                continue;
            };
            let shape = self.p.shape(*tensor);
            if !self.adornable(*tensor) || args.is_empty() || args.len() != shape.len() {
                continue;
            }
            let mut adornment = Vec::with_capacity(args.len());
            let mut seed = Vec::new();
            let mut valid = true;
            for (arg, &extent) in args.iter().zip(&shape) {
                match arg {
                    QueryArg::Const(Some(v)) => {
                        match u32::try_from(*v).ok().filter(|&v| (v as usize) < extent) {
                            Some(v) => seed.push(v),
                            None => valid = false,
                        }
                        adornment.push(true);
                    }
                    QueryArg::Const(None) => valid = false,
                    _ => adornment.push(false),
                }
            }
            if !valid || seed.is_empty() {
                continue;
            }
            let k = self.demand(Key {
                relation: *tensor,
                adornment,
                context,
            })?;
            let entry = &mut self.draft.entries[k];
            if !entry.seeds.contains(&seed) {
                entry.seeds.push(seed);
            }
            let adorned = self.draft.adorned(k);
            self.draft.query_edits.push((c, adorned));
        }
        Some(())
    }

    /// Copies the rules of entry `k`'s relation for its adorned copy.
    fn expand(&mut self, k: usize) -> Option<()> {
        let key = self.draft.entries.get(k)?.key.clone();
        let (adorned, magic) = (self.draft.adorned(k), self.draft.magic(k));
        for rule in super::orient::rules_for(self.p, key.relation, &key.adornment) {
            let mut bound = vec![false; rule.vars.len()];
            let mut magic_args = Vec::new();
            for (arg, &b) in rule.head_args.iter().zip(&key.adornment) {
                if b {
                    if let Term::Var(v) = arg {
                        *bound.get_mut(*v)? = true;
                    }
                    magic_args.push(*arg);
                }
            }
            let magic_atom = BodyAtom {
                tensor: magic,
                args: magic_args,
                negated: false,
            };
            let body = self.body(&rule, bound, Some(magic_atom.clone()), key.context, None)?;
            let mut atoms = vec![magic_atom];
            atoms.extend(body.into_iter().map(|(_, a)| a));
            self.draft.rules.push(Rule {
                head: adorned,
                head_args: rule.head_args.clone(),
                body: atoms,
                comparisons: rule.comparisons.clone(),
                vars: rule.vars.clone(),
                span: rule.span,
            });
        }
        Some(())
    }

    /// Walks a body in binding order (see the module note) and returns its atoms, each with its
    /// position in `rule.body`, positive ones first, reading adorned copies where demand
    /// reaches; adds the magic rules and seeds that demand needs. `bound` marks the variables
    /// bound on entry; `magic` is the adorned rule's magic atom. `skip_stratum` (for the
    /// program's own rules) leaves atoms of the head's own stratum as they are.
    fn body(
        &mut self,
        rule: &Rule,
        mut bound: Vec<bool>,
        magic: Option<BodyAtom>,
        context: usize,
        skip_stratum: Option<usize>,
    ) -> Option<Vec<(Option<usize>, BodyAtom)>> {
        let is_bound = |t: &Term, bound: &[bool]| match t {
            Term::Var(v) => bound.get(*v).copied().unwrap_or(false),
            Term::Const(_) | Term::Symbol(_) => true,
        };
        let mut left: Vec<usize> = (0..rule.body.len())
            .filter(|&i| !rule.body[i].negated)
            .collect();
        let mut out: Vec<(Option<usize>, BodyAtom)> = Vec::with_capacity(rule.body.len());
        while !left.is_empty() {
            // The first remaining atom with the most bound arguments.
            let mut best = 0;
            let mut best_count = None;
            for (j, &i) in left.iter().enumerate() {
                let count = rule.body[i]
                    .args
                    .iter()
                    .filter(|t| is_bound(t, &bound))
                    .count();
                if best_count.is_none_or(|c| count > c) {
                    best = j;
                    best_count = Some(count);
                }
            }
            let pos = left.remove(best);
            let atom = &rule.body[pos];
            let adornment: Adornment = atom.args.iter().map(|t| is_bound(t, &bound)).collect();
            let same_stratum = skip_stratum.is_some()
                && self.stratum_of.get(atom.tensor).copied().flatten() == skip_stratum;
            let mut read = atom.clone();
            if self.adornable(atom.tensor) && adornment.contains(&true) && !same_stratum {
                let k = self.demand(Key {
                    relation: atom.tensor,
                    adornment: adornment.clone(),
                    context,
                })?;
                read.tensor = self.draft.adorned(k);
                let prefix: Vec<BodyAtom> = magic
                    .iter()
                    .cloned()
                    .chain(out.iter().map(|(_, a)| a.clone()))
                    .collect();
                self.magic_rule(k, rule, atom, &adornment, prefix);
            }
            for t in &atom.args {
                if let Term::Var(v) = t {
                    if let Some(b) = bound.get_mut(*v) {
                        *b = true;
                    }
                }
            }
            out.push((Some(pos), read));
        }
        for (pos, atom) in rule.body.iter().enumerate() {
            if atom.negated {
                out.push((Some(pos), atom.clone()));
            }
        }
        Some(out)
    }

    /// `magic(bound arguments of atom) <- prefix`, a seed when the prefix is empty, nothing
    /// when it only restates its own head.
    fn magic_rule(
        &mut self,
        k: usize,
        rule: &Rule,
        atom: &BodyAtom,
        adornment: &[bool],
        prefix: Vec<BodyAtom>,
    ) {
        let magic = self.draft.magic(k);
        let head_args: Vec<Term> = atom
            .args
            .iter()
            .zip(adornment)
            .filter(|(_, &b)| b)
            .map(|(t, _)| *t)
            .collect();
        if prefix.is_empty() {
            let seed: Option<Vec<u32>> = head_args
                .iter()
                .map(|t| match t {
                    Term::Const(c) | Term::Symbol(c) => Some(*c),
                    Term::Var(_) => None,
                })
                .collect();
            if let (Some(seed), Some(entry)) = (seed, self.draft.entries.get_mut(k)) {
                if !entry.seeds.contains(&seed) {
                    entry.seeds.push(seed);
                }
            }
            return;
        }
        if let [only] = prefix.as_slice() {
            if only.tensor == magic && only.args == head_args {
                return;
            }
        }
        let new = compact(Rule {
            head: magic,
            head_args,
            body: prefix,
            comparisons: Vec::new(),
            vars: rule.vars.clone(),
            span: rule.span,
        });
        if self.draft.rules.iter().any(|r| same_rule(r, &new)) {
            return;
        }
        let index = self.draft.rules.len();
        self.draft.rules.push(new);
        if let Some(entry) = self.draft.entries.get_mut(k) {
            entry.magic_rules.push(index);
        }
    }
}

fn same_rule(a: &Rule, b: &Rule) -> bool {
    a.head == b.head && a.head_args == b.head_args && a.body == b.body && a.vars == b.vars
}

/// The rule with only the variables it uses, renumbered in order of first use.
fn compact(mut rule: Rule) -> Rule {
    let mut map: Vec<Option<usize>> = vec![None; rule.vars.len()];
    let mut vars: Vec<VarInfo> = Vec::new();
    let mut renumber = |t: &mut Term| {
        if let Term::Var(v) = t {
            let Some(slot) = map.get_mut(*v) else {
                return;
            };
            let new = match *slot {
                Some(n) => n,
                None => {
                    let n = vars.len();
                    if let Some(info) = rule.vars.get(*v) {
                        vars.push(info.clone());
                    }
                    *slot = Some(n);
                    n
                }
            };
            *v = new;
        }
    };
    for t in &mut rule.head_args {
        renumber(t);
    }
    for atom in &mut rule.body {
        for t in &mut atom.args {
            renumber(t);
        }
    }
    rule.vars = vars;
    rule
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str) -> VarInfo {
        VarInfo {
            name: name.to_string(),
            domain: 0,
            extent: 4,
        }
    }

    #[test]
    fn compact_keeps_only_the_variables_a_rule_uses() {
        let rule = Rule {
            head: 0,
            head_args: vec![Term::Var(2)],
            body: vec![BodyAtom {
                tensor: 1,
                args: vec![Term::Var(2), Term::Const(3), Term::Var(0)],
                negated: false,
            }],
            comparisons: Vec::new(),
            vars: vec![var("a"), var("b"), var("c")],
            span: tl_syntax::Span::default(),
        };
        let c = compact(rule);
        assert_eq!(c.head_args, vec![Term::Var(0)]);
        assert_eq!(
            c.body[0].args,
            vec![Term::Var(0), Term::Const(3), Term::Var(1)]
        );
        let names: Vec<&str> = c.vars.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["c", "a"]);
    }
}
