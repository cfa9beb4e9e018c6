//! The semi-naive rounds of a stratum: which body literals read the stratum's own relations,
//! which version (delta, old, full) each reads in a rule's copy, and the loop that joins, dedups
//! and advances until nothing new appears.

use super::*;

/// Positions of the positive body literals whose relation is defined in this stratum.
pub(super) fn recursive_positions(rule: &Rule, heads: &[usize]) -> Vec<usize> {
    (0..rule.body.len())
        .filter(|&i| {
            rule.body
                .get(i)
                .is_some_and(|l| !l.negated && heads.binary_search(&l.slot).is_ok())
        })
        .collect()
}

/// The version of a recursive relation read at one body position.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    Old,
    Delta,
    Full,
}

/// The source a literal on recursive relation `rec` (in `slot`) reads for one version
/// (`None`: the first round, which reads the initial facts).
pub(super) fn recursive_source<'a>(
    slot: usize,
    rec: &Recursive,
    version: Option<Version>,
) -> BodySource<'a> {
    let Some(version) = version else {
        return BodySource {
            id: SourceId::Full(slot),
            rel: RelRef::Shared(rec.facts.clone()),
            live: None,
        };
    };
    let (id, rel, live) = match (version, &rec.live) {
        (Version::Delta, _) => (SourceId::Delta(slot), rec.delta.clone(), None),
        (_, Some(live)) => (SourceId::Live(slot), rec.full.clone(), Some(live.clone())),
        (Version::Old, None) => (SourceId::Old(slot), rec.old.clone(), None),
        (Version::Full, None) => (SourceId::Full(slot), rec.full.clone(), None),
    };
    BodySource {
        id,
        rel: RelRef::Shared(rel),
        live,
    }
}

pub(super) fn run_rounds(
    rules: &[Rule],
    statics: &[Relation],
    heads: &[usize],
    state: &mut [(usize, Recursive)],
    limits: &Limits,
) -> Result<FixpointStats, RelationError> {
    let mut cache = IndexCache::default();
    let mut stats = FixpointStats {
        rules: vec![RuleStats::default(); rules.len()],
        ..FixpointStats::default()
    };
    let find =
        |state: &[(usize, Recursive)], slot: usize| state.iter().position(|(h, _)| *h == slot);
    let chains: Vec<Option<Chain>> = rules.iter().map(Chain::of).collect();
    loop {
        let first_round = stats.iterations == 0;
        for (r, (rule, chain)) in rules.iter().zip(&chains).enumerate() {
            let rec_pos = recursive_positions(rule, heads);
            let variants: Vec<Option<usize>> = if first_round {
                vec![None]
            } else {
                rec_pos.iter().map(|&p| Some(p)).collect()
            };
            for delta_at in variants {
                let mut sources = Vec::with_capacity(rule.body.len());
                let mut empty_delta = false;
                for (i, lit) in rule.body.iter().enumerate() {
                    let source = match find(state, lit.slot).and_then(|k| state.get(k)) {
                        Some((_, rec)) if !lit.negated => {
                            let version = match delta_at {
                                None => None,
                                Some(d) if i == d => Some(Version::Delta),
                                Some(d) if i < d => Some(Version::Old),
                                Some(_) => Some(Version::Full),
                            };
                            empty_delta |= version == Some(Version::Delta) && rec.delta.is_empty();
                            recursive_source(lit.slot, rec, version)
                        }
                        _ => {
                            let rel = statics
                                .get(lit.slot)
                                .map(RelRef::Static)
                                .unwrap_or_else(|| RelRef::Shared(Arc::new(Relation::empty(0))));
                            BodySource {
                                id: SourceId::Static(lit.slot),
                                rel,
                                live: None,
                            }
                        }
                    };
                    sources.push(source);
                }
                if empty_delta {
                    continue;
                }
                let Some(k) = find(state, rule.head) else {
                    continue;
                };
                let (head_full, head_bits, head_live) = state
                    .get(k)
                    .map(|(_, r)| (r.full.clone(), r.bits(), r.live.is_some()))
                    .unwrap_or_default();
                let linear =
                    delta_at
                        .and_then(|d| linear_shape(rule, d))
                        .filter(|&(d, other, _)| {
                            !head_live
                                && sources.get(d).is_some_and(|s| s.rel.is_sorted())
                                && sources.get(other).is_some_and(|s| s.live.is_none())
                        });
                let timer = std::time::Instant::now();
                let output = 'eval: {
                    if let (Some(chain), Some(d), true) = (chain, delta_at, head_live) {
                        let limit = tuple_limit(limits, 2);
                        match chain.run(d, &sources, &mut cache, head_bits.as_deref(), limit) {
                            Some(Ok(fresh)) => break 'eval Output::Fresh(fresh),
                            Some(Err(tuples)) => {
                                return Err(RelationError::TooManyTuples {
                                    slot: rule.head,
                                    tuples,
                                    limit,
                                })
                            }
                            None => {}
                        }
                    }
                    match linear {
                        Some((d, other, key_col)) => match (sources.get(d), sources.get(other)) {
                            (Some(delta), Some(step)) => {
                                let index: Arc<Index<'_>> = cache.get(step, &[key_col]);
                                Output::Next(delta_step(&delta.rel, &index, &head_full), true)
                            }
                            _ => Output::Fresh(Vec::new()),
                        },
                        None => {
                            let plan = Plan::new(rule, &sources, delta_at, &mut cache);
                            let target = head_bits.as_deref().map_or(Target::Tuples, Target::Bits);
                            let limit = tuple_limit(limits, rule.head_args.len());
                            match plan.execute(rule.head, limit, target)? {
                                Produced::Sorted(r) => Output::Next(r, false),
                                Produced::Fresh(values) => Output::Fresh(values),
                            }
                        }
                    }
                };
                let arity = rule.head_args.len().max(1);
                if let Some(st) = stats.rules.get_mut(r) {
                    st.runs += 1;
                    st.time += timer.elapsed();
                    st.tuples += match &output {
                        Output::Fresh(v) => v.len() / arity,
                        Output::Next(rel, _) => rel.len(),
                    };
                }
                if let Some((_, rec)) = state.get_mut(k) {
                    match output {
                        Output::Fresh(v) => rec.fresh.push(v),
                        Output::Next(rel, disjoint) => rec.next.push((rel, disjoint)),
                    }
                }
            }
        }
        stats.iterations += 1;
        // Drop this round's indexes first: rows are updated in place.
        cache.next_round();
        let mut changed = false;
        for (slot, rec) in state.iter_mut() {
            let added = rec.advance(*slot, tuple_limit(limits, rec.arity()))?;
            stats.derived += added;
            changed |= added > 0;
        }
        if !changed {
            stats.forms = state
                .iter()
                .map(|(slot, rec)| (*slot, rec.form()))
                .collect();
            return Ok(stats);
        }
    }
}

/// The most tuples of `arity` values a head may reach: the tuple limit, or what the memory
/// limit holds with room for the copies a round makes of its candidates (sorting, grouping
/// and merging them take about six times their size).
pub(super) fn tuple_limit(limits: &Limits, arity: usize) -> usize {
    limits
        .max_tuples
        .min(limits.max_bytes / (24 * arity.max(1)))
}

/// What one rule variant produced.
pub(super) enum Output {
    /// Tuples new to the head's bits, or candidates for its rows (flat).
    Fresh(Vec<Value>),
    /// A sorted relation, and whether it is known to be disjoint from what is known.
    Next(Relation, bool),
}

/// Recognises `H(u, w) <- D(u, y), S(y, w)` (S's columns in either order) with `D` at `delta_at`:
/// returns `(delta position, other position, key column of S)`.
pub(super) fn linear_shape(rule: &Rule, delta_at: usize) -> Option<(usize, usize, usize)> {
    if rule.body.len() != 2 || !rule.comparisons.is_empty() || rule.body.iter().any(|l| l.negated) {
        return None;
    }
    let other = 1 - delta_at.min(1);
    let (d, s) = (rule.body.get(delta_at)?, rule.body.get(other)?);
    let (&[Term::Var(u), Term::Var(y)], &[Term::Var(hu), Term::Var(w)]) =
        (&d.args[..], &rule.head_args[..])
    else {
        return None;
    };
    let key_col = match s.args[..] {
        [Term::Var(a), Term::Var(b)] if a == y && b == w => 0,
        [Term::Var(a), Term::Var(b)] if b == y && a == w => 1,
        _ => return None,
    };
    (u != y && w != y && w != u && hu == u).then_some((delta_at, other, key_col))
}
