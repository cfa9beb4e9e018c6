//! Goal-directed evaluation: the paper's backward chaining, as a magic-set rewrite.
//!
//! A query or rule body that fixes arguments of a relation defined by rules
//! (`Reach(17, y)?`, `R(y) <- Reach(17, y)`) needs only the tuples those arguments reach.
//! Before planning, [`rewrite`] gives each such demand an adorned copy of the relation that
//! holds just those tuples, computed bottom-up from a *magic* relation of the bound values
//! asked for ([`adorn`] builds the rules; transitive closures are adorned in the form that
//! keeps demand at the bound end, [`orient`]). Queries and rules then read the copies, and a
//! relation that nothing else reads whole is not computed at all.
//!
//! The rewrite is chosen ([`Mode::Auto`]) only where it pays: every adorned relation must be
//! otherwise unneeded (no unbound query, write, equation or rule reads it whole), each copy's
//! estimated size ([`cost`]) must be below the whole relation's, and the relations left out
//! must have at least [`MIN_CELLS`] cells between them; otherwise the program runs as
//! written.
//!
//! Soundness. Every rule of an adorned copy is a rule of the original relation with one more
//! atom, so each copy holds only true tuples of its relation; the magic relations
//! over-approximate what is asked, so each copy holds every tuple asked for. Demand passes
//! only through positive atoms over relations defined by rules: negated atoms, real tensors
//! and relations computed whole are read as they are. Copies are made per context (the
//! stratum that asks), so a copy and its magic relation only depend on relations of their own
//! context or of earlier strata, and a negated atom always reads a relation of an earlier
//! stratum: the result is stratified. [`apply`] stratifies it again all the same, and keeps
//! the program as written if that fails. Programs that train (`minimize`) are left alone.

mod adorn;
mod apply;
mod cost;
mod orient;
mod show;

use std::ops::Range;
use tl_check::{CheckedProgram, Command, TensorId};

/// Which arguments of an atom are bound (`true`) when it is asked for.
pub type Adornment = Vec<bool>;

/// Relations left out by a rewrite must have at least this many cells between them in
/// [`Mode::Auto`]: below that, computing them whole costs less than the extra rules.
pub const MIN_CELLS: u128 = 1 << 12;

/// When bound queries and rule bodies are answered through the rewrite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Where the estimate says it is cheaper than the whole relations (the default).
    #[default]
    Auto,
    /// Never: every relation is computed whole.
    Off,
    /// Wherever a bound demand exists, whatever the estimate (tests compare it with `Off`).
    Always,
}

/// What a rewrite changed, for `tl check --dump-plan`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rewrite {
    /// The program's tensor count before the rewrite: new relations start here.
    pub base: usize,
    /// Each adorned copy with the relation it copies and its adornment.
    pub adorned: Vec<(TensorId, TensorId, Adornment)>,
    /// The magic relations.
    pub magic: Vec<TensorId>,
    /// The program's rules that now read adorned copies (indices after the rewrite).
    pub edited_rules: Vec<usize>,
    /// The new rules (adorned copies and magic rules).
    pub new_rules: Range<usize>,
    /// The queries that read adorned copies: (command, relation asked, copy read).
    pub queries: Vec<(usize, TensorId, TensorId)>,
    /// Relations no longer computed.
    pub dropped: Vec<TensorId>,
    /// Estimated cells: of the adorned copies, and of the relations left out.
    pub estimate: (u128, u128),
}

/// Rewrites `p` for goal-directed evaluation where `mode` allows and it pays (see the module
/// note); returns what changed, or `None` with `p` as it was.
pub fn rewrite(p: &mut CheckedProgram, mode: Mode) -> Option<Rewrite> {
    let trains = p.commands.iter().any(|c| matches!(c, Command::Minimize(_)));
    if mode == Mode::Off || trains {
        return None;
    }
    let n = p.tensors.len();
    let before = cost::needed(
        p,
        &adorn::Draft {
            base: n,
            ..adorn::Draft::default()
        },
    );
    let mut whole = vec![false; n];
    // Each round marks one more relation to compute whole (the first copy, in the order demand
    // reached them, that does not pay: copies further from the goals may only exist because of
    // it), so this ends within n + 1 rounds.
    let (draft, needed) = loop {
        let draft = adorn::draft(p, &whole)?;
        let needed = cost::needed(p, &draft);
        if mode == Mode::Always {
            break (draft, needed);
        }
        let loses = draft.entries.iter().enumerate().find_map(|(k, e)| {
            let rel = e.key.relation;
            let used = needed.get(draft.adorned(k)).copied().unwrap_or(false);
            let needed_whole = needed.get(rel).copied().unwrap_or(true);
            let pays = !needed_whole && cost::estimate(p, &draft, k) < cost::cells(p, rel);
            (used && !pays).then_some(rel)
        });
        match loses {
            Some(rel) if !whole[rel] => whole[rel] = true,
            _ => break (draft, needed),
        }
    };
    let used: Vec<usize> = (0..draft.entries.len())
        .filter(|&k| needed.get(draft.adorned(k)).copied().unwrap_or(false))
        .collect();
    if used.is_empty() {
        return None;
    }
    let dropped: Vec<bool> = (0..n)
        .map(|t| before[t] && !needed[t] && adorn::derived_by_rules(p, t))
        .collect();
    let demanded = used
        .iter()
        .map(|&k| cost::estimate(p, &draft, k))
        .fold(0, u128::saturating_add);
    let left_out = (0..n)
        .filter(|&t| dropped[t])
        .map(|t| cost::cells(p, t))
        .fold(0, u128::saturating_add);
    if mode == Mode::Auto && (left_out < MIN_CELLS || demanded >= left_out) {
        return None;
    }
    let mut r = apply::apply(p, &draft, &needed, &dropped)?;
    r.estimate = (demanded, left_out);
    Some(r)
}

#[cfg(test)]
mod tests;
