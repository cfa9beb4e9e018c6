//! Evaluating strata in dependency order. A non-recursive tensor is computed once. A recursive
//! group of dense relations runs semi-naively: each round, every rule runs once per recursive
//! body atom with that atom reading the last round's delta, and the new delta is what was
//! derived minus what was known; it stops when no delta is left. Sparse relations run the same
//! way in `tl-relation`. A layer recursion runs one row at a time (`layers.rs`); any other
//! real-valued recursion iterates to max |Δ| ≤ 1e-6 or `--max-iters`.

use crate::engine::{Engine, Value};
use crate::error::RunError;
use tl_backend::Calls;
use tl_backend::{BinaryFn, DType, MapExpr, ReduceOp, Tensor, UnaryFn};
use tl_check::{Stratum, TensorId, TensorKind, Term};
use tl_plan::{Storage, TensorRef};
use tl_syntax::{Diagnostic, Span};

fn bin(f: BinaryFn) -> MapExpr {
    MapExpr::Binary(f, Box::new(MapExpr::Input(0)), Box::new(MapExpr::Input(1)))
}

impl Engine<'_> {
    fn span_of(&self, t: TensorId) -> Span {
        self.program.tensors[t].span
    }

    fn binary(&self, f: MapExpr, a: &Tensor, b: &Tensor, span: Span) -> Result<Tensor, RunError> {
        self.binary_as(f, a, b, self.dtype(), span)
    }

    fn binary_as(
        &self,
        f: MapExpr,
        a: &Tensor,
        b: &Tensor,
        dtype: DType,
        span: Span,
    ) -> Result<Tensor, RunError> {
        self.backend
            .map(&f, &[a, b], a.shape(), dtype)
            .map_err(|e| RunError::backend(e, span))
    }

    fn unary(&self, f: UnaryFn, a: &Tensor, span: Span) -> Result<Tensor, RunError> {
        self.backend
            .map(
                &MapExpr::Unary(f, Box::new(MapExpr::Input(0))),
                &[a],
                a.shape(),
                self.dtype(),
            )
            .map_err(|e| RunError::backend(e, span))
    }

    /// The largest absolute element of a tensor (a device sync).
    pub fn max_abs(&self, a: &Tensor, span: Span) -> Result<f64, RunError> {
        let abs = MapExpr::Unary(UnaryFn::Abs, Box::new(MapExpr::Input(0)));
        let m = self
            .backend
            .map_reduce(&abs, &[a], a.shape(), a.rank(), ReduceOp::Max, a.dtype)
            .map_err(|e| RunError::backend(e, span))?;
        self.read_scalar(&m, span)
    }

    /// Whether a tensor holds a NaN (a device sync). The backends' max skips NaN, so this sums
    /// absolute values instead: the sum is NaN exactly when an element is.
    fn has_nan(&self, a: &Tensor, span: Span) -> Result<bool, RunError> {
        let abs = MapExpr::Unary(UnaryFn::Abs, Box::new(MapExpr::Input(0)));
        let s = self
            .backend
            .map_reduce(&abs, &[a], a.shape(), a.rank(), ReduceOp::Sum, a.dtype)
            .map_err(|e| RunError::backend(e, span))?;
        Ok(self.read_scalar(&s, span)?.is_nan())
    }

    /// The value of a one-element tensor, read back (a device sync).
    pub(crate) fn read_scalar(&self, t: &Tensor, span: Span) -> Result<f64, RunError> {
        let host = self
            .backend
            .download(t)
            .map_err(|e| RunError::backend(e, span))?;
        Ok(host.data.to_f64().first().copied().unwrap_or(0.0))
    }

    /// Computes a derived tensor once from the current values of its inputs: its equations
    /// combined by their projection, its rules and facts OR-ed; Boolean heads are stepped.
    pub fn compute(&mut self, t: TensorId) -> Result<Tensor, RunError> {
        let decl = &self.program.tensors[t];
        let span = decl.span;
        let relation = decl.kind == TensorKind::Relation;
        let dtype = self.dtype_of(t);
        let mut acc: Option<Tensor> = None;
        // The equations of one left-hand side combine by min (max) when any of them is a
        // `min=` (`max=`): a plain `=` is then one more term of the min (LANGUAGE.md §2).
        let f = if relation {
            BinaryFn::Add
        } else {
            combine_fn(self.combination(t))
        };
        for &e in &decl.equations {
            let plan = &self.plan.equations[e];
            let r = self.evaluate(plan)?;
            acc = Some(match acc {
                None => r,
                Some(a) => self.binary_as(bin(f), &a, &r, dtype, span)?,
            });
        }
        for &r in &decl.rules {
            let v = self.evaluate(&self.plan.rules[r])?;
            acc = Some(match acc {
                None => v,
                Some(a) => self.binary(bin(BinaryFn::Add), &a, &v, span)?,
            });
        }
        if !decl.facts.is_empty() {
            if let Value::Dense(f) = self.relation_value(t, &decl.facts, span)? {
                acc = Some(match acc {
                    None => f,
                    Some(a) => self.binary(bin(BinaryFn::Add), &a, &f, span)?,
                });
            }
        }
        let value = match acc {
            Some(a) => a,
            None => self
                .backend
                .full(&self.shape(t), 0.0, dtype)
                .map_err(|e| RunError::backend(e, span))?,
        };
        if relation {
            return self.unary(UnaryFn::Step, &value, span);
        }
        if decl.kind == TensorKind::Integer {
            let largest = self.max_abs(&value, span)?;
            if largest >= tl_check::integer::EXACT_LIMIT {
                return Err(RunError::Inexact {
                    tensor: decl.name.clone(),
                    value: largest,
                    span,
                });
            }
        }
        Ok(value)
    }

    /// Evaluates every stratum in order.
    pub fn evaluate_all(&mut self) -> Result<(), RunError> {
        for (index, stratum) in self.program.strata.iter().enumerate() {
            if let Some(lp) = self.plan.loop_of_stratum(index) {
                self.run_loop(lp)?;
                continue;
            }
            if let Some(layered) = self.plan.layers.stratum(index) {
                self.layered(layered)?;
                continue;
            }
            self.stratum(stratum)?;
        }
        Ok(())
    }

    /// Evaluates the strata that have a tensor without a value, in order: after a training
    /// step forgets what depends on the parameters, what does not is kept, not recomputed.
    pub fn evaluate_missing(&mut self) -> Result<(), RunError> {
        self.evaluate_missing_of(None)
    }

    /// [`Engine::evaluate_missing`] for the strata `targets` depend on only: reading one
    /// tensor evaluates what it reads, not the rest of the program.
    pub fn evaluate_needed(&mut self, targets: &[TensorId]) -> Result<(), RunError> {
        let mut needed = vec![false; self.program.tensors.len()];
        let mut work: Vec<TensorId> = targets.to_vec();
        while let Some(t) = work.pop() {
            if !std::mem::replace(&mut needed[t], true) {
                work.extend(self.reads(t));
            }
        }
        self.evaluate_missing_of(Some(&needed))
    }

    fn evaluate_missing_of(&mut self, needed: Option<&[bool]>) -> Result<(), RunError> {
        for (index, stratum) in self.program.strata.iter().enumerate() {
            let known = |t: &TensorId| self.values[*t].is_some() || self.spliced_away(*t);
            let wanted = |t: &TensorId| needed.is_none_or(|n| n[*t]);
            if stratum.tensors.iter().all(known) || !stratum.tensors.iter().any(wanted) {
                continue;
            }
            if let Some(lp) = self.plan.loop_of_stratum(index) {
                self.run_loop(lp)?;
                continue;
            }
            if let Some(layered) = self.plan.layers.stratum(index) {
                self.layered(layered)?;
                continue;
            }
            self.stratum(stratum)?;
        }
        Ok(())
    }

    fn stratum(&mut self, s: &Stratum) -> Result<(), RunError> {
        let sparse = s
            .tensors
            .iter()
            .any(|&t| self.plan.storage[t] == Storage::Sparse);
        let only_rules = s.tensors.iter().all(|&t| {
            self.program.tensors[t].equations.is_empty()
                && self.program.tensors[t].kind == TensorKind::Relation
        });
        if sparse && only_rules {
            return self.sparse_stratum(s);
        }
        if !sparse && !self.record {
            if let Some(c) = tl_plan::closure::closure_of(self.program, s) {
                return self.square_closure(c);
            }
        }
        if !s.recursive {
            for &t in &s.tensors {
                if self.spliced_away(t) {
                    continue;
                }
                let v = self.compute(t)?;
                self.values[t] = Some(Value::Dense(v));
            }
            return Ok(());
        }
        if only_rules {
            return self.semi_naive(s);
        }
        self.iterate(s)
    }

    /// Whether `t` is computed inside its reader's fused plan instead of on its own
    /// ([`tl_plan::inline`]): true only while no backward pass is recorded.
    fn spliced_away(&self, t: TensorId) -> bool {
        let decl = &self.program.tensors[t];
        !self.record
            && decl.rules.is_empty()
            && !decl.equations.is_empty()
            && decl
                .equations
                .iter()
                .all(|&e| self.plan.equations.get(e).is_some_and(|p| p.inlined))
    }

    /// How the equations of tensor `t` combine: by min or max when any of them projects so,
    /// else by sum.
    pub(crate) fn combination(&self, t: TensorId) -> ReduceOp {
        let decl = &self.program.tensors[t];
        decl.equations
            .iter()
            .map(|&e| self.plan.equations[e].combine)
            .find(|c| matches!(c, ReduceOp::Min | ReduceOp::Max))
            .unwrap_or(ReduceOp::Sum)
    }

    /// Real-valued (or mixed) recursion: recompute the group until nothing moves. A tensor
    /// combined by min (max) starts from the operator's identity, +∞ (−∞), not from 0, so
    /// `Dist[x, z] min= Dist[x, y] + W[y, z]` is Bellman-Ford and cells no path reaches stay +∞;
    /// such a tensor has converged when no cell changes at all.
    fn iterate(&mut self, s: &Stratum) -> Result<(), RunError> {
        let span = self.span_of(s.tensors[0]);
        let names = self.stratum_names(s);
        for &t in &s.tensors {
            let start = match self.combination(t) {
                ReduceOp::Min => f64::INFINITY,
                ReduceOp::Max => f64::NEG_INFINITY,
                _ => continue,
            };
            if self.values[t].is_none() {
                let v = self
                    .backend
                    .full(&self.shape(t), start, self.dtype_of(t))
                    .map_err(|e| RunError::backend(e, span))?;
                self.values[t] = Some(Value::Dense(v));
            }
        }
        for iteration in 0.. {
            let mut delta: f64 = 0.0;
            for &t in &s.tensors {
                let new = self.compute(t)?;
                let old = self.dense(t, span)?;
                let moved = if matches!(self.combination(t), ReduceOp::Min | ReduceOp::Max) {
                    self.largest_change(&new, &old, span)?
                } else {
                    let diff = self.binary(bin(BinaryFn::Sub), &new, &old, span)?;
                    self.max_abs(&diff, span)?
                };
                delta = delta.max(moved);
                self.values[t] = Some(Value::Dense(new));
            }
            let converged = delta <= self.options.tolerance;
            let out_of_iterations = iteration + 1 >= self.options.max_iters;
            // max |Δ| skips NaN elements, so the values are checked once the loop would stop.
            let nan = delta.is_nan()
                || ((converged || out_of_iterations) && self.any_nan(&s.tensors, span)?);
            if nan {
                self.warn(
                    Diagnostic::error(
                        "TL0311",
                        format!(
                            "the recursion defining `{}` produced NaN after {} iteration{}",
                            names,
                            iteration + 1,
                            if iteration == 0 { "" } else { "s" }
                        ),
                        span,
                        "this recursion",
                    )
                    .warning()
                    .with_help(
                        "the iteration diverges or divides by zero; check the equations' inputs",
                    ),
                );
                break;
            }
            if converged {
                break;
            }
            if out_of_iterations {
                self.warn(
                    Diagnostic::error("TL0310", format!("the recursion defining `{}` did not converge in {} iterations (last max |Δ| = {delta:.3e})", names, self.options.max_iters), span, "this recursion")
                        .warning()
                        .with_help("raise `--max-iters`, or check that the iteration is a contraction"),
                );
                break;
            }
        }
        Ok(())
    }

    /// The largest change from `old` to `new`, cell by cell, where infinities may stand in
    /// either: 0 where a cell is unchanged (∞ to ∞ included), ∞ where one side is infinite and
    /// the other not, else the difference.
    fn largest_change(&self, new: &Tensor, old: &Tensor, span: Span) -> Result<f64, RunError> {
        let read = |t: &Tensor| {
            self.backend
                .download(t)
                .map(|h| h.data.to_f64())
                .map_err(|e| RunError::backend(e, span))
        };
        let (a, b) = (read(new)?, read(old)?);
        Ok(a.iter().zip(&b).fold(0.0f64, |m, (&x, &y)| {
            if x == y || (x.is_nan() && y.is_nan()) {
                m
            } else {
                m.max((x - y).abs())
            }
        }))
    }

    /// Whether any of `tensors` holds a NaN.
    fn any_nan(&self, tensors: &[TensorId], span: Span) -> Result<bool, RunError> {
        for &t in tensors {
            if let Some(Value::Dense(v)) = &self.values[t] {
                // Only floating-point values can hold a NaN.
                if matches!(v.dtype, DType::Bool | DType::I64) {
                    continue;
                }
                if self.has_nan(v, span)? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Dense Boolean recursion, semi-naively.
    fn semi_naive(&mut self, s: &Stratum) -> Result<(), RunError> {
        let n = self.program.tensors.len();
        let span = self.span_of(s.tensors[0]);
        for &t in &s.tensors {
            let v = self.compute(t)?;
            self.values[TensorRef::Delta(t).id(n)] = Some(Value::Dense(v.clone()));
            self.values[t] = Some(Value::Dense(v));
        }
        loop {
            let mut any = false;
            let mut fresh: Vec<(TensorId, Tensor)> = Vec::new();
            for &t in &s.tensors {
                let mut cand: Option<Tensor> = None;
                for &r in &self.program.tensors[t].rules {
                    for (_, plan) in &self.plan.deltas[r] {
                        let v = self.evaluate(plan)?;
                        cand = Some(match cand {
                            None => v,
                            Some(c) => self.binary(bin(BinaryFn::Max), &c, &v, span)?,
                        });
                    }
                }
                let full = self.dense(t, span)?;
                let delta = match cand {
                    Some(c) => self.unary(
                        UnaryFn::Step,
                        &self.binary(bin(BinaryFn::Sub), &c, &full, span)?,
                        span,
                    )?,
                    None => self
                        .backend
                        .full(full.shape(), 0.0, self.dtype())
                        .map_err(|e| RunError::backend(e, span))?,
                };
                any |= self.max_abs(&delta, span)? > 0.0;
                fresh.push((t, delta));
            }
            for (t, delta) in fresh {
                let full = self.dense(t, span)?;
                let merged = self.binary(bin(BinaryFn::Max), &full, &delta, span)?;
                self.values[t] = Some(Value::Dense(merged));
                self.values[TensorRef::Delta(t).id(n)] = Some(Value::Dense(delta));
            }
            if !any {
                break;
            }
        }
        for &t in &s.tensors {
            self.values[TensorRef::Delta(t).id(n)] = None;
        }
        Ok(())
    }

    /// Rules over sparse relations, handed to the tuple engine.
    fn sparse_stratum(&mut self, s: &Stratum) -> Result<(), RunError> {
        let n = self.program.tensors.len();
        let span = self.program.tensors[s.tensors[0]]
            .rules
            .first()
            .map_or(self.span_of(s.tensors[0]), |&r| self.program.rules[r].span);
        let mut slots: Vec<tl_relation::Relation> = (0..n)
            .map(|t| tl_relation::Relation::empty(self.shape(t).len()))
            .collect();
        let mut rules = Vec::new();
        for &head in &s.tensors {
            let facts: Vec<u32> = self.program.tensors[head]
                .facts
                .iter()
                .flatten()
                .copied()
                .collect();
            let any = !self.program.tensors[head].facts.is_empty();
            slots[head] = crate::engine::relation_of(self.shape(head).len(), facts, any);
            for &r in &self.program.tensors[head].rules {
                let rule = &self.program.rules[r];
                for atom in &rule.body {
                    if !s.tensors.contains(&atom.tensor) && slots[atom.tensor].is_empty() {
                        slots[atom.tensor] = self.tuples(atom.tensor, span)?;
                    }
                }
                rules.push(tl_relation::Rule {
                    head,
                    head_args: rule.head_args.iter().map(term).collect(),
                    body: rule
                        .body
                        .iter()
                        .map(|a| tl_relation::Literal {
                            slot: a.tensor,
                            args: a.args.iter().map(term).collect(),
                            negated: a.negated,
                        })
                        .collect(),
                    comparisons: rule
                        .comparisons
                        .iter()
                        .map(|c| tl_relation::Comparison {
                            op: cmp(c.op),
                            lhs: term(&c.lhs),
                            rhs: term(&c.rhs),
                        })
                        .collect(),
                    var_extents: rule.vars.iter().map(|v| v.extent as u32).collect(),
                });
            }
        }
        if self.backend.paths().is_some() {
            match self.device_stratum(s, &rules, &slots, span)? {
                Ok(()) => return Ok(()),
                Err(why) => self.warn_cpu_stratum(s, &why, span),
            }
        }
        let started = std::time::Instant::now();
        let limits = tl_relation::Limits {
            max_bytes: self.memory_budget(),
            ..tl_relation::Limits::default()
        };
        let stats = tl_relation::evaluate_stratum(&rules, &mut slots, &limits)
            .map_err(|e| self.relation_error(&e, span))?;
        if let Some(profile) = self.relation_profile.as_mut() {
            let rule_spans = s
                .tensors
                .iter()
                .flat_map(|&h| self.program.tensors[h].rules.iter())
                .map(|&r| self.program.rules[r].span);
            profile.push(crate::StratumProfile {
                heads: stats
                    .forms
                    .iter()
                    .map(|&(slot, form)| {
                        (
                            self.program.tensors[slot].name.clone(),
                            form.to_string(),
                            slots[slot].len(),
                        )
                    })
                    .collect(),
                rules: rule_spans.zip(stats.rules.iter().copied()).collect(),
                rounds: stats.iterations,
                time: started.elapsed(),
                device: "cpu (tuple engine)".into(),
            });
        }
        for &t in &s.tensors {
            let rel = std::mem::replace(&mut slots[t], tl_relation::Relation::empty(0));
            self.values[t] = Some(Value::Sparse(rel));
        }
        Ok(())
    }
}

impl Engine<'_> {
    /// A tuple engine error as a diagnostic: the relation by name, at its first recursive
    /// rule (the one that grows it), with the size it would have had.
    fn relation_error(&self, e: &tl_relation::RelationError, span: Span) -> RunError {
        use tl_relation::RelationError as E;
        let slot = match e {
            E::TooManyTuples { slot, .. } | E::TooLarge { slot, .. } => Some(*slot),
            _ => None,
        };
        let Some(decl) = slot.and_then(|s| self.program.tensors.get(s)) else {
            return RunError::Relation {
                message: e.to_string(),
                span,
            };
        };
        let recursive = decl.rules.iter().copied().find(|&r| {
            let rule = &self.program.rules[r];
            rule.body.iter().any(|a| Some(a.tensor) == slot)
        });
        let at = recursive
            .or(decl.rules.first().copied())
            .map_or(span, |r| self.program.rules[r].span);
        let bytes = |b: usize| crate::error::human_bytes(b as u128);
        let message = match e {
            E::TooManyTuples { tuples, limit, .. } => format!(
                "`{}` would hold at least {tuples} tuples (about {}), past the limit of {limit} tuples",
                decl.name,
                bytes(tuples.saturating_mul(4 * decl.axes.len().max(1)))
            ),
            E::TooLarge { bytes: b, limit, .. } => format!(
                "`{}` would need at least {}, more than the {} of memory available",
                decl.name,
                bytes(*b),
                bytes(*limit)
            ),
            other => other.to_string(),
        };
        RunError::Relation { message, span: at }
    }
}

fn combine_fn(op: ReduceOp) -> BinaryFn {
    match op {
        ReduceOp::Max => BinaryFn::Max,
        ReduceOp::Min => BinaryFn::Min,
        ReduceOp::Sum | ReduceOp::Mean => BinaryFn::Add,
    }
}

fn term(t: &Term) -> tl_relation::Term {
    match *t {
        Term::Var(v) => tl_relation::Term::Var(v),
        Term::Const(c) | Term::Symbol(c) => tl_relation::Term::Const(c),
    }
}

fn cmp(op: tl_syntax::ast::Compare) -> tl_relation::Compare {
    use tl_syntax::ast::Compare as C;
    match op {
        C::Eq => tl_relation::Compare::Eq,
        C::Ne => tl_relation::Compare::Ne,
        C::Lt => tl_relation::Compare::Lt,
        C::Le => tl_relation::Compare::Le,
        C::Gt => tl_relation::Compare::Gt,
        C::Ge => tl_relation::Compare::Ge,
    }
}
