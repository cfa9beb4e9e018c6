//! Reverse-mode differentiation over the plan graphs: the gradient of a program is computed by
//! the same engine and backend primitives as its value. Each node kind has one rule:
//! a contraction's gradient is a contraction, a map's is a map of its symbolic derivative
//! (`grad_expr`), a sum broadcasts back, max/min route to the arg-max/arg-min (every tie gets
//! the gradient), a gather scatters back (0 outside), softmax and layer norm use their
//! closed-form Jacobian products, and `step` passes gradients straight through.
//!
//! A layer recursion is walked back row by row (`grad/layers.rs`). Other recursive strata are
//! differentiated at their fixpoint x* = F(x*, θ) by the implicit
//! function theorem: the adjoint λ = g + (∂F/∂x)ᵀ λ is iterated to convergence (each round one
//! backward pass through the stratum's equations at x*), then θ receives (∂F/∂θ)ᵀ λ.

use crate::engine::Engine;
use crate::error::RunError;
use crate::eval::index_vector;
use tl_backend::grad_expr::mul;
use tl_backend::Calls;
use tl_backend::{BinaryFn, MapExpr, NormFn, ReduceOp, Tensor, UnaryFn};
use tl_check::{Stratum, TensorId};
use tl_plan::{EquationPlan, Op, Placement, TensorRef};
use tl_syntax::{Diagnostic, Span};

mod graph;
mod layers;
mod transposed;

fn input(k: usize) -> MapExpr {
    MapExpr::Input(k)
}

fn un(f: UnaryFn, x: MapExpr) -> MapExpr {
    MapExpr::Unary(f, Box::new(x))
}

fn bin(f: BinaryFn, a: MapExpr, b: MapExpr) -> MapExpr {
    MapExpr::Binary(f, Box::new(a), Box::new(b))
}

/// `1` where a == b, else `0`.
fn equal(a: MapExpr, b: MapExpr) -> MapExpr {
    bin(
        BinaryFn::Sub,
        MapExpr::Const(1.0),
        un(UnaryFn::Step, un(UnaryFn::Abs, bin(BinaryFn::Sub, a, b))),
    )
}

/// The error for a gradient with no place to go (a plan read a tensor id the caller's
/// gradients do not cover).
fn no_entry(span: Span) -> RunError {
    RunError::Unsupported {
        what: "internal: a gradient for a tensor the backward pass does not track".into(),
        hint: None,
        span,
    }
}

/// Gradients by tensor id (ids past the tensor count are unused).
pub type Grads = Vec<Option<Tensor>>;

impl Engine<'_> {
    fn err(&self, span: Span) -> impl Fn(tl_backend::BackendError) -> RunError {
        move |e| RunError::backend(e, span)
    }

    /// Evaluates `expr` over tensors labelled by variables, onto `out` labels.
    fn map_labelled(
        &self,
        expr: &MapExpr,
        inputs: &[(&Tensor, &[usize])],
        out: &[usize],
        shape: &[usize],
        span: Span,
    ) -> Result<Tensor, RunError> {
        let views: Vec<Tensor> = inputs
            .iter()
            .map(|(t, labels)| {
                let (perm, pos) = crate::eval::alignment(labels, out);
                t.permuted(&perm).expanded_to_rank(&pos, out.len())
            })
            .collect();
        let refs: Vec<&Tensor> = views.iter().collect();
        self.backend
            .map(expr, &refs, shape, self.dtype())
            .map_err(self.err(span))
    }

    /// Sums a tensor labelled `from` down to the labels `to` (a subset), in `to`'s order.
    fn sum_to(
        &self,
        t: &Tensor,
        from: &[usize],
        to: &[usize],
        to_shape: &[usize],
        span: Span,
    ) -> Result<Tensor, RunError> {
        let axes: Vec<usize> = from
            .iter()
            .enumerate()
            .filter(|(_, l)| !to.contains(l))
            .map(|(k, _)| k)
            .collect();
        let reduced = if axes.is_empty() {
            t.clone()
        } else {
            self.backend
                .reduce(t, &axes, ReduceOp::Sum)
                .map_err(self.err(span))?
        };
        let kept: Vec<usize> = from.iter().copied().filter(|l| to.contains(l)).collect();
        if kept == to {
            return Ok(reduced);
        }
        self.map_labelled(&input(0), &[(&reduced, &kept)], to, to_shape, span)
    }

    /// Where the gradient of tensor id `t` is kept in a [`Grads`]: a delta shares its tensor's
    /// entry, and slots (ids past twice the tensor count) follow the tensors.
    fn grad_index(&self, t: TensorId) -> usize {
        let n = self.program.tensors.len();
        match TensorRef::of(t, n) {
            TensorRef::Tensor(t) | TensorRef::Delta(t) => t,
            TensorRef::Slot(k) => n + k,
        }
    }

    pub(crate) fn accumulate(
        &self,
        slot: &mut Option<Tensor>,
        g: Tensor,
        span: Span,
    ) -> Result<(), RunError> {
        *slot = Some(match slot.take() {
            None => g,
            Some(a) => self
                .backend
                .map(
                    &bin(BinaryFn::Add, input(0), input(1)),
                    &[&a, &g],
                    g.shape(),
                    self.dtype(),
                )
                .map_err(self.err(span))?,
        });
        Ok(())
    }

    /// The gradient of a plan's root from the gradient of its target.
    pub(crate) fn place_backward(
        &mut self,
        plan: &EquationPlan,
        root: &Tensor,
        g: &Tensor,
    ) -> Result<Tensor, RunError> {
        let span = plan.span;
        let Placement::Scatter { indices, op } = &plan.placement else {
            return Ok(g.clone());
        };
        let shape = self.shape(plan.target);
        let labels = plan.graph.nodes[plan.root].labels.clone();
        let idx = self.cached_index(plan, false, usize::MAX, || {
            index_vector(&plan.vars, &labels, indices, &shape)
        });
        let be = self.backend;
        let root_shape = root.shape().to_vec();
        match op {
            ReduceOp::Sum => be
                .gather_shared(g, &idx, &root_shape)
                .map_err(self.err(span)),
            ReduceOp::Mean => {
                let ones = be
                    .full(&root_shape, 1.0, self.dtype())
                    .map_err(self.err(span))?;
                let counts = be
                    .scatter_shared(&ones, &idx, &shape, ReduceOp::Sum)
                    .map_err(self.err(span))?;
                let per = be
                    .map(
                        &bin(
                            BinaryFn::Div,
                            input(0),
                            bin(BinaryFn::Max, input(1), MapExpr::Const(1.0)),
                        ),
                        &[g, &counts],
                        &shape,
                        self.dtype(),
                    )
                    .map_err(self.err(span))?;
                be.gather_shared(&per, &idx, &root_shape)
                    .map_err(self.err(span))
            }
            ReduceOp::Max | ReduceOp::Min => {
                let target = self.dense(plan.target, span)?;
                let tv = be
                    .gather_shared(&target, &idx, &root_shape)
                    .map_err(self.err(span))?;
                let gg = be
                    .gather_shared(g, &idx, &root_shape)
                    .map_err(self.err(span))?;
                be.map(
                    &mul(input(0), equal(input(1), input(2))),
                    &[&gg, root, &tv],
                    &root_shape,
                    self.dtype(),
                )
                .map_err(self.err(span))
            }
        }
    }

    /// Backpropagates the gradient of one derived tensor through its equations (rules and
    /// facts hold no parameters; a Boolean head's `step` passes gradients straight through).
    pub(crate) fn tensor_backward(
        &mut self,
        t: TensorId,
        g: &Tensor,
        grads: &mut Grads,
        wanted: &[bool],
    ) -> Result<(), RunError> {
        let plan = self.plan;
        for &e in &self.program.tensors[t].equations {
            let p = &plan.equations[e];
            let Some(root) = self.traces.get(&p.id).and_then(|v| v.get(p.root)).cloned() else {
                continue;
            };
            let g_root = self.place_backward(p, &root, g)?;
            self.graph_backward(p, g_root, grads, wanted)?;
        }
        Ok(())
    }

    /// The gradient of `t` taken out of `grads`, or zeros of its shape where nothing flowed
    /// back to it.
    pub(crate) fn grad_or_zeros(&self, grads: &mut Grads, t: TensorId) -> Result<Tensor, RunError> {
        match grads[t].take() {
            Some(g) => Ok(g),
            None => self
                .backend
                .full(&self.shape(t), 0.0, self.dtype())
                .map_err(self.err(self.program.tensors[t].span)),
        }
    }

    /// Gradients of the scalar `loss` with respect to every tensor with `wanted[t]`, after a
    /// forward pass run with `record` on.
    pub fn backward(&mut self, loss: TensorId, wanted: &[bool]) -> Result<Grads, RunError> {
        self.backward_with(loss, wanted, &[], &mut |_, _| Ok(()))
    }

    /// [`Engine::backward`], handing each tensor of `finals` its gradient (taken out of the
    /// result, `None` when it has none) as soon as no later work can add to it: after the
    /// lowest stratum that reads it. Data-parallel training starts summing a parameter's
    /// gradient across ranks there, while the rest of the backward pass runs.
    pub(crate) fn backward_with(
        &mut self,
        loss: TensorId,
        wanted: &[bool],
        finals: &[TensorId],
        done: &mut dyn FnMut(TensorId, Option<Tensor>) -> Result<(), RunError>,
    ) -> Result<Grads, RunError> {
        let span = self.program.tensors[loss].span;
        let ones = self
            .backend
            .full(&self.shape(loss), 1.0, self.dtype())
            .map_err(self.err(span))?;
        self.backward_seeded(vec![(loss, ones)], wanted, finals, done)
    }

    /// [`Engine::backward_with`] from given gradients of some tensors (`seeds`, each shaped
    /// like its tensor) instead of a scalar loss's 1: the gradients of Σ seed·tensor, a
    /// vector-Jacobian product.
    pub(crate) fn backward_seeded(
        &mut self,
        seeds: Vec<(TensorId, Tensor)>,
        wanted: &[bool],
        finals: &[TensorId],
        done: &mut dyn FnMut(TensorId, Option<Tensor>) -> Result<(), RunError>,
    ) -> Result<Grads, RunError> {
        let n = self.program.tensors.len();
        let last_reader = self.last_readers(finals);
        let mut grads: Grads = vec![None; n];
        for (t, g) in seeds {
            let span = self.program.tensors[t].span;
            let mut slot = grads[t].take();
            self.accumulate(&mut slot, g, span)?;
            grads[t] = slot;
        }
        for (k, f) in finals.iter().enumerate() {
            if last_reader[k].is_none() {
                done(*f, grads[*f].take())?;
            }
        }
        for (i, s) in self.program.strata.iter().enumerate().rev() {
            if s.tensors.iter().any(|&t| grads[t].is_some()) {
                if let Some(lp) = self.plan.loop_of_stratum(i) {
                    self.loop_backward(lp, &mut grads, wanted)?;
                } else if let Some(ls) = self.plan.layers.stratum(i) {
                    self.layered_backward(ls, &mut grads, wanted)?;
                } else if s.recursive {
                    self.stratum_adjoint(s, &mut grads, wanted)?;
                } else {
                    for &t in &s.tensors {
                        if let Some(g) = grads[t].clone() {
                            self.tensor_backward(t, &g, &mut grads, wanted)?;
                        }
                    }
                }
            }
            for (k, f) in finals.iter().enumerate() {
                if last_reader[k] == Some(i) {
                    done(*f, grads[*f].take())?;
                }
            }
        }
        Ok(grads)
    }

    /// The lowest stratum reading each of `finals` (`None`: read by no stratum): after the
    /// backward pass has gone through it, the tensor's gradient is final.
    fn last_readers(&self, finals: &[TensorId]) -> Vec<Option<usize>> {
        let mut last_reader: Vec<Option<usize>> = vec![None; finals.len()];
        if finals.is_empty() {
            // An ordinary backward pass: nothing to look up on every step.
            return last_reader;
        }
        for (i, s) in self.program.strata.iter().enumerate() {
            for &t in &s.tensors {
                let reads = self.reads(t);
                for (k, f) in finals.iter().enumerate() {
                    if reads.contains(f) && last_reader[k].is_none() {
                        last_reader[k] = Some(i);
                    }
                }
            }
        }
        last_reader
    }

    /// The order in which [`Engine::backward_with`] hands over the gradients of `finals`, as
    /// indices into `finals` (for a rank that sends zeros in the same order as the others).
    pub(crate) fn final_order(&self, finals: &[TensorId]) -> Vec<usize> {
        let last = self.last_readers(finals);
        let mut order: Vec<usize> = (0..finals.len()).filter(|&k| last[k].is_none()).collect();
        for i in (0..self.program.strata.len()).rev() {
            order.extend((0..finals.len()).filter(|&k| last[k] == Some(i)));
        }
        order
    }

    /// The implicit-function adjoint of a recursive stratum (see the module doc).
    fn stratum_adjoint(
        &mut self,
        s: &Stratum,
        grads: &mut Grads,
        wanted: &[bool],
    ) -> Result<(), RunError> {
        let n = self.program.tensors.len();
        let span = self.program.tensors[s.tensors[0]].span;
        let incoming: Vec<(TensorId, Tensor)> = s
            .tensors
            .iter()
            .filter_map(|&t| grads[t].clone().map(|g| (t, g)))
            .collect();
        let mut lambda: Vec<(TensorId, Tensor)> = incoming.clone();
        let mut converged = false;
        for _ in 0..self.options.max_iters {
            let mut local: Grads = vec![None; n];
            for (t, l) in &lambda {
                self.tensor_backward(*t, l, &mut local, wanted)?;
            }
            let mut next = Vec::new();
            let mut change: f64 = 0.0;
            let mut scale: f64 = 0.0;
            for &t in &s.tensors {
                let parts: Vec<Tensor> = incoming
                    .iter()
                    .filter(|(u, _)| *u == t)
                    .map(|(_, g)| g.clone())
                    .chain(local[t].take())
                    .collect();
                let Some(mut v) = parts.first().cloned() else {
                    continue;
                };
                for p in &parts[1..] {
                    v = self
                        .backend
                        .map(
                            &bin(BinaryFn::Add, input(0), input(1)),
                            &[&v, p],
                            v.shape(),
                            self.dtype(),
                        )
                        .map_err(self.err(span))?;
                }
                let d = match lambda.iter().find(|(u, _)| *u == t) {
                    Some((_, old)) => self
                        .backend
                        .map(
                            &bin(BinaryFn::Sub, input(0), input(1)),
                            &[&v, old],
                            v.shape(),
                            self.dtype(),
                        )
                        .map_err(self.err(span))?,
                    None => v.clone(),
                };
                change = change.max(self.max_abs(&d, span)?);
                scale = scale.max(self.max_abs(&v, span)?);
                next.push((t, v));
            }
            lambda = next;
            // Relative to the adjoint's size: gradients are often far below the tolerance
            // the values converge to, and stopping on an absolute change would cut the
            // gradient short of the rounds that carry it through the recursion.
            if change <= self.options.tolerance * scale || change.is_nan() {
                converged = true;
                break;
            }
        }
        if !converged {
            let names = self.stratum_names(s);
            self.warn(
                Diagnostic::error(
                    "TL0318",
                    format!(
                        "the gradient through the recursion defining `{}` did not converge in {} iterations",
                        names,
                        self.options.max_iters
                    ),
                    span,
                    "this recursion",
                )
                .warning()
                .with_help("raise `--max-iters`, or check that the iteration is a contraction"),
            );
        }
        let mut local: Grads = vec![None; n];
        for (t, l) in &lambda {
            self.tensor_backward(*t, l, &mut local, wanted)?;
        }
        for (t, g) in local.into_iter().enumerate() {
            if let (Some(g), false) = (g, s.tensors.contains(&t)) {
                self.accumulate(&mut grads[t], g, span)?;
            }
        }
        Ok(())
    }
}
