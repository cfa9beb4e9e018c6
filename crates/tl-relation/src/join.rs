//! Evaluating one rule body: a greedy join plan executed as nested index lookups.
//!
//! [`Plan::new`] orders the body: it starts with the delta literal (or the smallest positive
//! literal), then repeatedly takes the positive literal with the most bound columns, smallest
//! first. Each literal becomes a lookup in an [`Index`] keyed on its bound columns (constants and
//! variables bound earlier); repeated variables bind at their first free column and are checked
//! at the others. Comparisons run as soon as both sides are bound and negated literals as soon as
//! all their variables are, as membership tests. Variables that no positive literal binds range
//! over their whole domain (an index absent from an einsum's inputs broadcasts); they are
//! enumerated last, or bound directly by an `x = term` comparison when one is available.
//!
//! [`Plan::execute`] walks the steps depth-first for each row of the first literal, splitting
//! those rows into chunks that rayon runs in parallel, and projects every full binding onto the
//! head.

use crate::bits::Cells;
use crate::error::RelationError;
use crate::index::{Index, IndexCache, RelRef, SourceId};
use crate::relation::{Relation, Value};
use crate::rows::Rows;
use crate::rule::{Compare, Comparison, Rule, Term};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Where a body literal reads its tuples from, as chosen by the semi-naive variant.
#[derive(Clone, Debug)]
pub(crate) struct BodySource<'a> {
    /// Cache identity of the relation version.
    pub(crate) id: SourceId,
    /// The relation version itself (empty when it is held another way).
    pub(crate) rel: RelRef<'a>,
    /// A recursive relation held as bits or rows as it grows: looked up in place when the
    /// key suits the form, else through a sorted copy made once per round.
    pub(crate) live: Option<Live>,
}

/// The growing forms of a recursive relation.
#[derive(Clone, Debug)]
pub(crate) enum Live {
    /// One bit per cell (small domains).
    Bits(Arc<Cells>),
    /// Sorted lists per first value (binary relations over large domains).
    Rows(Arc<Rows>),
}

impl BodySource<'_> {
    /// Number of tuples.
    pub(crate) fn len(&self) -> usize {
        match &self.live {
            Some(Live::Bits(c)) => c.len(),
            Some(Live::Rows(r)) => r.len(),
            None => self.rel.len(),
        }
    }
}

/// Where a plan's head tuples go.
#[derive(Clone, Copy)]
pub(crate) enum Target<'h> {
    /// Collected, then sorted and deduplicated into a relation.
    Tuples,
    /// Inserted into the head's bits; only the tuples new there are collected.
    Bits(&'h Cells),
}

/// What a plan produced.
pub(crate) enum Produced {
    /// Every head tuple, sorted and deduplicated.
    Sorted(Relation),
    /// The tuples that were new to the head's bits (distinct, in no particular order).
    Fresh(Vec<Value>),
}

/// What to do with one non-key column of a looked-up row.
#[derive(Clone, Copy, Debug)]
enum Bind {
    /// First occurrence of a variable: bind it to the column's value.
    Set(usize),
    /// A variable bound earlier in the same literal: the column must equal it.
    Check(usize),
}

/// One step of a join plan.
#[derive(Debug)]
enum Step<'a> {
    /// Look up the rows matching `key` and bind or check the remaining columns.
    Join {
        index: Arc<Index<'a>>,
        key: Vec<Term>,
        binds: Vec<Bind>,
    },
    /// Keep the binding only if the comparison holds.
    Filter(Comparison),
    /// Keep the binding only if the tuple is absent from `rel`.
    Negate { rel: RelRef<'a>, args: Vec<Term> },
    /// Bind `var` to the value of a term (from an `=` comparison) if it lies in the domain.
    Assign {
        var: usize,
        value: Term,
        extent: u32,
    },
    /// Bind `var` to every element of its domain in turn.
    Enumerate { var: usize, extent: u32 },
}

/// An ordered list of steps evaluating one rule body for one semi-naive variant.
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    steps: Vec<Step<'a>>,
    head_args: Vec<Term>,
    vars: usize,
}

/// The values of `terms` under `binding`, in `buf` when they fit (no allocation), else in
/// `owned`.
#[inline]
fn values_of<'b>(
    terms: &[Term],
    binding: &[Value],
    buf: &'b mut [Value; 8],
    owned: &'b mut Vec<Value>,
) -> &'b [Value] {
    if terms.len() <= buf.len() {
        for (slot, &t) in buf.iter_mut().zip(terms) {
            *slot = value(t, binding);
        }
        return buf.get(..terms.len()).unwrap_or(&[]);
    }
    owned.extend(terms.iter().map(|&t| value(t, binding)));
    owned
}

/// Value of a term under a binding (variables out of range read as 0; validation prevents that).
fn value(term: Term, binding: &[Value]) -> Value {
    match term {
        Term::Const(c) => c,
        Term::Var(v) => binding.get(v).copied().unwrap_or(0),
    }
}

impl<'a> Plan<'a> {
    /// Orders the body of `rule`; `sources[i]` gives the version read by `rule.body[i]` and
    /// `first` the literal to start with (the delta literal of a semi-naive variant).
    pub(crate) fn new(
        rule: &Rule,
        sources: &[BodySource<'a>],
        first: Option<usize>,
        cache: &mut IndexCache<'a>,
    ) -> Self {
        let vars = rule.var_extents.len();
        let mut bound = vec![false; vars];
        let mut steps = Vec::new();
        let mut filters_left: Vec<&Comparison> = rule.comparisons.iter().collect();
        let mut negs_left: Vec<usize> = (0..rule.body.len())
            .filter(|&i| rule.body[i].negated)
            .collect();
        let mut pos_left: Vec<usize> = (0..rule.body.len())
            .filter(|&i| !rule.body[i].negated)
            .collect();
        let size = |i: usize| sources.get(i).map_or(0, BodySource::len);
        Self::place_ready(
            rule,
            sources,
            &bound,
            &mut filters_left,
            &mut negs_left,
            &mut steps,
        );
        let mut next = first
            .filter(|f| pos_left.contains(f))
            .or_else(|| pos_left.iter().copied().min_by_key(|&i| size(i)));
        while let Some(li) = next {
            pos_left.retain(|&i| i != li);
            let lit = &rule.body[li];
            let mut key_cols = Vec::new();
            let mut key = Vec::new();
            for (col, &t) in lit.args.iter().enumerate() {
                if t.var()
                    .is_none_or(|v| bound.get(v).copied().unwrap_or(false))
                {
                    key_cols.push(col);
                    key.push(t);
                }
            }
            let mut binds = Vec::new();
            for (col, &t) in lit.args.iter().enumerate() {
                if let (false, Term::Var(v)) = (key_cols.contains(&col), t) {
                    let seen = binds.iter().any(|b| matches!(b, Bind::Set(w) if *w == v));
                    binds.push(if seen { Bind::Check(v) } else { Bind::Set(v) });
                }
            }
            for b in &binds {
                if let Bind::Set(v) = b {
                    if let Some(slot) = bound.get_mut(*v) {
                        *slot = true;
                    }
                }
            }
            if let Some(src) = sources.get(li) {
                let index = cache.get(src, &key_cols);
                steps.push(Step::Join { index, key, binds });
            }
            Self::place_ready(
                rule,
                sources,
                &bound,
                &mut filters_left,
                &mut negs_left,
                &mut steps,
            );
            let bound_cols = |i: usize| {
                rule.body[i]
                    .args
                    .iter()
                    .filter(|t| {
                        t.var()
                            .is_none_or(|v| bound.get(v).copied().unwrap_or(false))
                    })
                    .count()
            };
            next = pos_left
                .iter()
                .copied()
                .min_by_key(|&i| (std::cmp::Reverse(bound_cols(i)), size(i)));
        }
        // Variables still needed range over their domains; `x = term` binds x directly.
        let mut needed: Vec<usize> = rule.head_args.iter().filter_map(|t| t.var()).collect();
        needed.extend(rule.comparisons.iter().flat_map(Comparison::vars));
        needed.extend(
            negs_left
                .iter()
                .flat_map(|&i| rule.body[i].args.iter().filter_map(|t| t.var())),
        );
        needed.sort_unstable();
        needed.dedup();
        for var in needed {
            if bound.get(var).copied().unwrap_or(true) {
                continue;
            }
            let extent = rule.extent(var);
            let is_bound = |t: Term| {
                t.var()
                    .is_none_or(|v| bound.get(v).copied().unwrap_or(false))
            };
            let assign = filters_left
                .iter()
                .find_map(|c| match (c.op, c.lhs, c.rhs) {
                    (Compare::Eq, Term::Var(v), other) | (Compare::Eq, other, Term::Var(v))
                        if v == var && is_bound(other) =>
                    {
                        Some(other)
                    }
                    _ => None,
                });
            steps.push(match assign {
                Some(value) => Step::Assign { var, value, extent },
                None => Step::Enumerate { var, extent },
            });
            if let Some(slot) = bound.get_mut(var) {
                *slot = true;
            }
            Self::place_ready(
                rule,
                sources,
                &bound,
                &mut filters_left,
                &mut negs_left,
                &mut steps,
            );
        }
        Plan {
            steps,
            head_args: rule.head_args.clone(),
            vars,
        }
    }

    /// Emits every comparison and negated literal whose variables are all bound.
    fn place_ready(
        rule: &Rule,
        sources: &[BodySource<'a>],
        bound: &[bool],
        filters: &mut Vec<&Comparison>,
        negs: &mut Vec<usize>,
        steps: &mut Vec<Step<'a>>,
    ) {
        let ready = |t: &Term| {
            t.var()
                .is_none_or(|v| bound.get(v).copied().unwrap_or(false))
        };
        filters.retain(|c| {
            let go = ready(&c.lhs) && ready(&c.rhs);
            if go {
                steps.push(Step::Filter((*c).clone()));
            }
            !go
        });
        negs.retain(|&i| {
            let lit = &rule.body[i];
            let go = lit.args.iter().all(ready);
            if let (true, Some(src)) = (go, sources.get(i)) {
                steps.push(Step::Negate {
                    rel: src.rel.clone(),
                    args: lit.args.clone(),
                });
            }
            !go
        });
    }

    /// Runs the plan, sending the projected head tuples to `target`.
    pub(crate) fn execute(
        &self,
        head_slot: usize,
        limit: usize,
        target: Target<'_>,
    ) -> Result<Produced, RelationError> {
        let arity = self.head_args.len();
        let too_many = |tuples| RelationError::TooManyTuples {
            slot: head_slot,
            tuples,
            limit,
        };
        // Tuples produced by every chunk together, so parallel chunks stop at the one limit
        // (each with a limit of its own, eight per thread could each fill it).
        let produced = AtomicUsize::new(0);
        let produced = &produced;
        // Parallelise over the rows of the first join, if every step before it is a filter.
        let first = self
            .steps
            .iter()
            .position(|s| matches!(s, Step::Join { .. }));
        let prefix_ok = first.is_some_and(|f| {
            self.steps
                .iter()
                .take(f)
                .all(|s| matches!(s, Step::Filter(_)))
        });
        let sinks: Vec<Sink> = match (first, self.steps.get(first.unwrap_or(0))) {
            (Some(f), Some(Step::Join { index, key, binds }))
                if prefix_ok && matches!(**index, Index::Sorted { .. }) =>
            {
                let binding = vec![0; self.vars];
                let holds = |s: &Step| matches!(s, Step::Filter(c) if c.op.holds(&value(c.lhs, &binding), &value(c.rhs, &binding)));
                if !self.steps.iter().take(f).all(holds) {
                    return Ok(Produced::Sorted(Relation::empty(arity)));
                }
                let key: Vec<Value> = key.iter().map(|&t| value(t, &binding)).collect();
                let (lo, hi) = index.range(&key);
                let chunk = crate::par::chunk(hi - lo, 256, 8);
                let starts: Vec<usize> = (lo..hi).step_by(chunk).collect();
                let work = |start: usize| {
                    let mut sink = Sink::new(arity, limit, target, produced);
                    let mut binding = vec![0; self.vars];
                    let mut cursors = Vec::new();
                    for i in start..(start + chunk).min(hi) {
                        if apply_binds(index.rest_row(i), binds, &mut binding)
                            && !self.walk(f + 1, &mut binding, &mut cursors, &mut sink)
                        {
                            break;
                        }
                    }
                    sink
                };
                crate::par::map_adaptive(starts, work)
            }
            _ => {
                let mut sink = Sink::new(arity, limit, target, produced);
                self.walk(0, &mut vec![0; self.vars], &mut Vec::new(), &mut sink);
                vec![sink]
            }
        };
        let rows: usize = sinks.iter().map(|s| s.rows).sum();
        if let Target::Bits(cells) = target {
            cells.counted(rows);
        }
        if rows > limit {
            return Err(too_many(rows));
        }
        let values: Vec<Value> = if sinks.len() == 1 {
            sinks
                .into_iter()
                .next()
                .map(|s| s.values)
                .unwrap_or_default()
        } else {
            let mut all = Vec::with_capacity(rows * arity);
            sinks
                .into_iter()
                .for_each(|s| all.extend_from_slice(&s.values));
            all
        };
        Ok(match target {
            Target::Bits(_) => Produced::Fresh(values),
            Target::Tuples if arity == 0 => Produced::Sorted(Relation::nullary(rows > 0)),
            Target::Tuples => Produced::Sorted(Relation::from_flat(arity, values)),
        })
    }

    /// Depth-first evaluation of steps `start..` under `binding`, projecting complete
    /// bindings into `sink`: a loop over one cursor per step (no recursion, no closures), so
    /// a step costs a few instructions per matching row. `cursors` is scratch space kept
    /// between calls. Returns false once the sink is over its limit.
    fn walk(
        &self,
        start: usize,
        binding: &mut [Value],
        cursors: &mut Vec<Cursor>,
        sink: &mut Sink<'_>,
    ) -> bool {
        let n = self.steps.len();
        if start >= n {
            return sink.push(&self.head_args, binding);
        }
        cursors.resize(n, Cursor::Done);
        let mut d = start;
        cursors[d] = self.open(d, binding);
        loop {
            if self.advance(d, &mut cursors[d], binding) {
                if d + 1 == n {
                    if !sink.push(&self.head_args, binding) {
                        return false;
                    }
                } else {
                    d += 1;
                    cursors[d] = self.open(d, binding);
                }
            } else if d == start {
                return true;
            } else {
                d -= 1;
            }
        }
    }

    /// The cursor of step `d` under the current binding.
    #[inline]
    fn open(&self, d: usize, binding: &[Value]) -> Cursor {
        let Some(step) = self.steps.get(d) else {
            return Cursor::Done;
        };
        match step {
            Step::Join { index, key, .. } => {
                let (mut buf, mut owned) = ([0; 8], Vec::new());
                let key_vals = values_of(key, binding, &mut buf, &mut owned);
                match &**index {
                    Index::Bits { cells } => match cells.prefix_cells(key_vals) {
                        Some((base, end)) => Cursor::Cells {
                            next: base,
                            end,
                            base,
                        },
                        None => Cursor::Done,
                    },
                    Index::Sorted { .. } => {
                        let (pos, hi) = index.range(key_vals);
                        Cursor::Rows { pos, hi }
                    }
                    Index::Rows { rows } => match key_vals {
                        [k] => Cursor::List {
                            key: *k,
                            pos: 0,
                            hi: rows.row(*k).len(),
                        },
                        _ => Cursor::Done,
                    },
                }
            }
            Step::Enumerate { extent, .. } => Cursor::Values {
                next: 0,
                end: *extent,
            },
            Step::Filter(_) | Step::Negate { .. } | Step::Assign { .. } => Cursor::Once,
        }
    }

    /// Moves step `d` to its next match, binding its variables; false when it has none left.
    #[inline]
    fn advance(&self, d: usize, cursor: &mut Cursor, binding: &mut [Value]) -> bool {
        let Some(step) = self.steps.get(d) else {
            return false;
        };
        match (step, cursor) {
            (Step::Join { index, binds, .. }, Cursor::Rows { pos, hi }) => {
                while *pos < *hi {
                    let row = index.rest_row(*pos);
                    *pos += 1;
                    if apply_binds(row, binds, binding) {
                        return true;
                    }
                }
                false
            }
            (Step::Join { index, key, binds }, Cursor::Cells { next, end, base }) => {
                let Index::Bits { cells } = &**index else {
                    return false;
                };
                let mut buf = [0; 8];
                let rest = binds.len().min(buf.len());
                while let Some(cell) = cells.next_cell(*next, *end) {
                    *next = cell + 1;
                    cells.decode_rest(key.len(), cell - *base, &mut buf[..rest]);
                    if apply_binds(&buf[..rest], binds, binding) {
                        return true;
                    }
                }
                *next = *end;
                false
            }
            (Step::Join { index, binds, .. }, Cursor::List { key, pos, hi }) => {
                let Index::Rows { rows } = &**index else {
                    return false;
                };
                let row = rows.row(*key);
                while *pos < *hi {
                    let v = row.get(*pos).copied().unwrap_or(0);
                    *pos += 1;
                    if apply_binds(&[v], binds, binding) {
                        return true;
                    }
                }
                false
            }
            (Step::Enumerate { var, .. }, Cursor::Values { next, end }) => {
                if *next >= *end {
                    return false;
                }
                set(binding, *var, *next);
                *next += 1;
                true
            }
            (_, c @ Cursor::Once) => {
                *c = Cursor::Done;
                match step {
                    Step::Filter(c) => c.op.holds(&value(c.lhs, binding), &value(c.rhs, binding)),
                    Step::Negate { rel, args } => {
                        let (mut buf, mut owned) = ([0; 8], Vec::new());
                        !rel.contains(values_of(args, binding, &mut buf, &mut owned))
                    }
                    Step::Assign {
                        var,
                        value: t,
                        extent,
                    } => {
                        let v = value(*t, binding);
                        set(binding, *var, v);
                        v < *extent
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

/// Where one step of a walk stands among its matches.
#[derive(Clone, Copy, Debug)]
enum Cursor {
    /// Rows `pos..hi` of a sorted index.
    Rows { pos: usize, hi: usize },
    /// Cells `next..end` of a bitset index, whose key's cells start at `base`.
    Cells { next: u64, end: u64, base: u64 },
    /// Entries `pos..hi` of the list of one first value of a relation held as rows.
    List { key: Value, pos: usize, hi: usize },
    /// Values `next..end` of an enumerated variable.
    Values { next: u32, end: u32 },
    /// A test or an assignment not yet made.
    Once,
    /// Nothing left.
    Done,
}

fn set(binding: &mut [Value], var: usize, v: Value) {
    if let Some(slot) = binding.get_mut(var) {
        *slot = v;
    }
}

/// Binds or checks the non-key columns of one looked-up row; false if a repeated variable disagrees.
fn apply_binds(rest: &[Value], binds: &[Bind], binding: &mut [Value]) -> bool {
    for (&x, b) in rest.iter().zip(binds) {
        match *b {
            Bind::Set(v) => set(binding, v, x),
            Bind::Check(v) => {
                if binding.get(v) != Some(&x) {
                    return false;
                }
            }
        }
    }
    true
}

/// Head tuples produced by one chunk of work.
struct Sink<'h> {
    values: Vec<Value>,
    rows: usize,
    limit: usize,
    target: Target<'h>,
    tuple: Vec<Value>,
    /// Rows of every chunk of the join, updated every [`SHARE_EVERY`] rows of this one.
    shared: &'h AtomicUsize,
    unshared: usize,
}

/// A chunk adds its rows to the shared count this many at a time (a join past its limit runs
/// at most this many rows per chunk further).
const SHARE_EVERY: usize = 4096;

impl<'h> Sink<'h> {
    fn new(arity: usize, limit: usize, target: Target<'h>, shared: &'h AtomicUsize) -> Self {
        Sink {
            values: Vec::with_capacity(arity * 64),
            rows: 0,
            limit,
            target,
            tuple: vec![0; arity],
            shared,
            unshared: 0,
        }
    }

    /// Adds one head tuple; false once past the limit.
    #[inline]
    fn push(&mut self, head: &[Term], binding: &[Value]) -> bool {
        for (slot, &t) in self.tuple.iter_mut().zip(head) {
            *slot = value(t, binding);
        }
        if let Target::Bits(cells) = self.target {
            if !cells.insert(&self.tuple) {
                return true;
            }
        }
        self.values.extend_from_slice(&self.tuple);
        self.rows += 1;
        self.unshared += 1;
        if self.unshared == SHARE_EVERY {
            self.unshared = 0;
            let all = self.shared.fetch_add(SHARE_EVERY, Ordering::Relaxed) + SHARE_EVERY;
            if all > self.limit {
                return false;
            }
        }
        self.rows <= self.limit
    }
}
