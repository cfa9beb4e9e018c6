//! Optimisers and learning-rate schedules for `minimize`.
//!
//! The update rules are torch.optim's (single-tensor form) so that a program trained here and
//! the same model trained with PyTorch end at the same parameters:
//!
//! - **SGD**: `g = grad + weight_decay·p`; with momentum, `buf = g` on the first step and
//!   `buf = momentum·buf + g` after (dampening 0); the direction is `buf`, or `g + momentum·buf`
//!   with Nesterov; `p ← p − lr·direction`.
//! - **Adam**: `g = grad + weight_decay·p`; `m ← m + (1−β1)(g − m)`;
//!   `v ← β2·v + (1−β2)·g²`; at step `t` (1-based) `bc1 = 1 − β1^t`, `bc2 = 1 − β2^t`;
//!   `p ← p − (lr/bc1) · m / (sqrt(v)/sqrt(bc2) + eps)`.
//! - **AdamW**: `p ← p·(1 − lr·weight_decay)` first, then Adam with the plain gradient.
//!
//! Every update is one pass per parameter ([`Backend::map_many`]: the parameter and its
//! moments or momentum buffer from the same inputs), in the parameter's element type (f32 by
//! default, f64 when the parameters are f64); scalars such as the learning rate and the bias
//! corrections enter as constants. On a backend that records work, later steps update the
//! parameters and buffers in place ([`OptimizerState::step_in_place`], the bias corrections
//! then read from device scalars), so that one recorded step can be replayed.

use tl_backend::{Backend, BinaryFn, DType, HostTensor, MapExpr, Result, Tensor, UnaryFn};
use tl_check::learn::{Optimizer, Schedule};

/// Optimiser state for a list of parameters, updated on the backend with fused elementwise maps.
#[derive(Clone, Debug)]
pub struct OptimizerState {
    spec: Optimizer,
    step: u64,
    /// SGD's momentum buffers, or Adam's first moments (`exp_avg`); `None` until the first step.
    first: Vec<Option<Tensor>>,
    /// Adam's second moments (`exp_avg_sq`); `None` until the first step (always for SGD).
    second: Vec<Option<Tensor>>,
    /// For updates in place: Adam's `β1^t` and `β2^t` as f64 device scalars, with the step
    /// count `t` they hold, so that the bias corrections are read from the device (a recorded
    /// step replayed later must not carry the step count of its recording).
    powers: Option<(u64, Tensor, Tensor)>,
}

// Small builders for map expressions.
fn input(k: usize) -> MapExpr {
    MapExpr::Input(k)
}
fn c(x: f64) -> MapExpr {
    MapExpr::Const(x)
}
fn bin(f: BinaryFn, a: MapExpr, b: MapExpr) -> MapExpr {
    MapExpr::Binary(f, Box::new(a), Box::new(b))
}
fn add(a: MapExpr, b: MapExpr) -> MapExpr {
    bin(BinaryFn::Add, a, b)
}
fn sub(a: MapExpr, b: MapExpr) -> MapExpr {
    bin(BinaryFn::Sub, a, b)
}
fn mul(a: MapExpr, b: MapExpr) -> MapExpr {
    bin(BinaryFn::Mul, a, b)
}
fn div(a: MapExpr, b: MapExpr) -> MapExpr {
    bin(BinaryFn::Div, a, b)
}
fn sqrt(a: MapExpr) -> MapExpr {
    MapExpr::Unary(UnaryFn::Sqrt, Box::new(a))
}

/// The error for a backend that returned fewer results than expressions.
fn missing_output() -> tl_backend::BackendError {
    tl_backend::BackendError::Shape {
        op: "map_many",
        detail: "fewer results than expressions".into(),
    }
}

/// The gradient with L2 weight decay folded in: `grad + wd·p` (just `grad` when `wd` is 0).
fn decayed_grad(grad: MapExpr, param: MapExpr, wd: f64) -> MapExpr {
    if wd == 0.0 {
        grad
    } else {
        add(grad, mul(c(wd), param))
    }
}

/// The element type updates are stored in: the parameter's own floating type (f32 for
/// non-float parameters, which do not occur for learned tensors).
fn float_type(t: &Tensor) -> DType {
    match t.dtype {
        DType::Bool | DType::I64 => DType::F32,
        d => d,
    }
}

fn state_error(detail: String) -> tl_backend::BackendError {
    tl_backend::BackendError::Shape {
        op: "optimizer step",
        detail,
    }
}

impl OptimizerState {
    /// Fresh state (step 0, no buffers) for `params` parameters.
    pub fn new(spec: &Optimizer, params: usize) -> Self {
        OptimizerState {
            spec: spec.clone(),
            step: 0,
            first: vec![None; params],
            second: vec![None; params],
            powers: None,
        }
    }

    /// The optimiser this state belongs to.
    pub fn spec(&self) -> &Optimizer {
        &self.spec
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One update of every parameter (`params[k]` is replaced by its new tensor), with
    /// learning rate `lr` (already scheduled). `grads[k]` is the loss gradient for `params[k]`
    /// (same shape, or broadcastable to it).
    pub fn step(
        &mut self,
        backend: &dyn Backend,
        params: &mut [Tensor],
        grads: &[Tensor],
        lr: f64,
    ) -> Result<()> {
        self.check_lists(params.len(), grads.len())?;
        let t = self.step + 1;
        for (k, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let shape = p.shape().to_vec();
            let dt = float_type(p);
            let state: Vec<&Tensor> = self.first[k].iter().chain(&self.second[k]).collect();
            let exprs = self.update_exprs(lr, !state.is_empty(), Corrections::Step(t));
            let mut inputs: Vec<&Tensor> = vec![p, g];
            inputs.extend(state);
            let mut out = backend.map_many(&exprs, &inputs, &shape, dt)?;
            let new_p = out.pop().ok_or_else(missing_output)?;
            let mut rest = out.into_iter();
            match self.spec {
                Optimizer::Sgd { momentum, .. } if momentum != 0.0 => {
                    self.first[k] = Some(rest.next().ok_or_else(missing_output)?);
                }
                Optimizer::Sgd { .. } => {}
                Optimizer::Adam { .. } => {
                    self.first[k] = Some(rest.next().ok_or_else(missing_output)?);
                    self.second[k] = Some(rest.next().ok_or_else(missing_output)?);
                }
            }
            *p = new_p;
        }
        self.step = t;
        Ok(())
    }

    /// Whether [`OptimizerState::step_in_place`] can run: every buffer of this optimiser
    /// exists (after one ordinary step, or a resumed one).
    pub fn can_step_in_place(&self) -> bool {
        match self.spec {
            Optimizer::Sgd { momentum: 0.0, .. } => true,
            Optimizer::Sgd { .. } => self.first.iter().all(Option::is_some),
            Optimizer::Adam { .. } => self.first.iter().chain(&self.second).all(Option::is_some),
        }
    }

    /// [`OptimizerState::step`] writing the new values into the parameters' and buffers' own
    /// memory ([`Backend::map_many_into`]), with Adam's bias corrections read from device
    /// scalars: the same work, over the same memory, at every step, which is what lets a
    /// recorded training step be replayed. The results equal `step`'s up to rounding.
    pub fn step_in_place(
        &mut self,
        backend: &dyn Backend,
        params: &[Tensor],
        grads: &[Tensor],
        lr: f64,
    ) -> Result<()> {
        self.check_lists(params.len(), grads.len())?;
        if !self.can_step_in_place() {
            return Err(state_error(
                "an update in place needs the optimiser's buffers (one ordinary step first)".into(),
            ));
        }
        let powers = match (&self.spec, &self.powers) {
            (Optimizer::Adam { .. }, Some((at, b1, b2))) if *at == self.step => {
                Some((b1.clone(), b2.clone()))
            }
            (Optimizer::Adam { beta1, beta2, .. }, _) => {
                let b1 = backend.full(&[], powu(*beta1, self.step), DType::F64)?;
                let b2 = backend.full(&[], powu(*beta2, self.step), DType::F64)?;
                Some((b1, b2))
            }
            _ => None,
        };
        if let (Some((b1, b2)), Optimizer::Adam { beta1, beta2, .. }) = (&powers, &self.spec) {
            backend.map_many_into(
                &[mul(input(0), c(*beta1)), mul(input(1), c(*beta2))],
                &[b1, b2],
                &[],
                &[b1, b2],
            )?;
        }
        for (k, (p, g)) in params.iter().zip(grads).enumerate() {
            let state: Vec<&Tensor> = self.first[k].iter().chain(&self.second[k]).collect();
            let exprs = self.update_exprs(lr, true, Corrections::Device);
            let mut inputs: Vec<&Tensor> = vec![p, g];
            inputs.extend(state.iter().copied());
            // The scalars, broadcast over the parameter's axes.
            let scalars = powers.as_ref().map(|(b1, b2)| {
                [
                    b1.expanded_to_rank(&[], p.rank()),
                    b2.expanded_to_rank(&[], p.rank()),
                ]
            });
            if let Some(s) = &scalars {
                inputs.extend(s);
            }
            // The buffers' new values go where they were, then the parameter's.
            let mut outs = state;
            outs.push(p);
            backend.map_many_into(&exprs, &inputs, p.shape(), &outs)?;
        }
        self.step += 1;
        self.powers = powers.map(|(b1, b2)| (self.step, b1, b2));
        Ok(())
    }

    /// Counts one step that ran without this state's help: a replay of a recorded
    /// [`OptimizerState::step_in_place`], which updated the device memory itself.
    pub fn count_replayed_step(&mut self) {
        self.step += 1;
        if let Some((at, _, _)) = &mut self.powers {
            *at += 1;
        }
    }

    fn check_lists(&self, params: usize, grads: usize) -> Result<()> {
        if params != self.first.len() || grads != params {
            return Err(state_error(format!(
                "the optimiser holds state for {} parameters but was given {params} parameters \
                 and {grads} gradients",
                self.first.len(),
            )));
        }
        Ok(())
    }

    /// The update's expressions over inputs `0 = param, 1 = grad`, then the buffers (SGD's
    /// momentum buffer; Adam's two moments) when `buffers` (else they start at 0), then, for
    /// [`Corrections::Device`], `β1^t` and `β2^t`. The results are the new buffers, in that
    /// order, then the new parameter.
    fn update_exprs(&self, lr: f64, buffers: bool, corr: Corrections) -> Vec<MapExpr> {
        match self.spec {
            Optimizer::Sgd {
                momentum,
                nesterov,
                weight_decay,
                ..
            } => sgd_exprs(lr, momentum, nesterov, weight_decay, buffers),
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                decoupled,
                ..
            } => adam_exprs(
                &AdamHyper {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    decoupled,
                },
                buffers,
                corr,
            ),
        }
    }

    /// The names of the state entries for the current optimiser, in order: per parameter `k`,
    /// `{k}.momentum_buffer` (SGD with momentum) or `{k}.exp_avg` and `{k}.exp_avg_sq` (Adam,
    /// AdamW), then `step`.
    fn entry_names(&self) -> Vec<(usize, &'static str)> {
        let kinds: &[&'static str] = match self.spec {
            Optimizer::Sgd { momentum, .. } if momentum != 0.0 => &["momentum_buffer"],
            Optimizer::Sgd { .. } => &[],
            Optimizer::Adam { .. } => &["exp_avg", "exp_avg_sq"],
        };
        (0..self.first.len())
            .flat_map(|k| kinds.iter().map(move |&kind| (k, kind)))
            .collect()
    }

    /// The state as named host tensors for checkpoints: [`OptimizerState::buffers`] followed
    /// by `step`, the number of steps taken, as a 0-d i64 tensor.
    pub fn state(&self, backend: &dyn Backend) -> Result<Vec<(String, HostTensor)>> {
        let mut out = self.buffers(backend)?;
        out.push((
            "step".to_string(),
            HostTensor {
                shape: Vec::new(),
                data: tl_backend::HostData::I64(vec![self.step.min(i64::MAX as u64) as i64].into()),
            },
        ));
        Ok(out)
    }

    /// The per-parameter buffers as named host tensors, without the step count (for
    /// [`crate::checkpoint::save`], which stores the step itself): `{k}.momentum_buffer` (SGD
    /// with momentum) or `{k}.exp_avg` and `{k}.exp_avg_sq` (Adam, AdamW) for each parameter
    /// index `k` that has them (none before the first step), in that order.
    pub fn buffers(&self, backend: &dyn Backend) -> Result<Vec<(String, HostTensor)>> {
        let mut out = Vec::new();
        for (k, kind) in self.entry_names() {
            let slot = if kind == "exp_avg_sq" {
                &self.second[k]
            } else {
                &self.first[k]
            };
            if let Some(t) = slot {
                out.push((format!("{k}.{kind}"), backend.download(t)?));
            }
        }
        Ok(out)
    }

    /// Restores what [`OptimizerState::state`] returned, uploading each buffer in its
    /// parameter's element type. `params` are the parameters the state belongs to (for their
    /// shapes and types). `step` is required; see [`OptimizerState::restore`] for the rest.
    /// On an error the state is left as it was.
    pub fn load_state(
        &mut self,
        backend: &dyn Backend,
        params: &[Tensor],
        mut state: Vec<(String, HostTensor)>,
    ) -> std::result::Result<(), String> {
        let Some(pos) = state.iter().position(|(n, _)| n == "step") else {
            // Report the buffers' problems too, in one message.
            let rest = self.restore(backend, params, 0, state).err();
            let mut msg = "the optimiser state does not fit: `step` is missing".to_string();
            if let Some(rest) = rest {
                msg.push_str("; ");
                msg.push_str(rest.trim_start_matches("the optimiser state does not fit: "));
            }
            return Err(msg);
        };
        let t = state.swap_remove(pos).1;
        let v = t.data.to_f64();
        let step = match (t.numel() == 1, v.first()) {
            (true, Some(&x)) if x >= 0.0 && x.fract() == 0.0 && x.is_finite() => x as u64,
            _ => {
                return Err(format!(
                    "the optimiser state does not fit: `step` should be one non-negative whole \
                     number, not a tensor of shape {:?}",
                    t.shape
                ))
            }
        };
        self.restore(backend, params, step, state)
    }

    /// Restores the state from a step count and what [`OptimizerState::buffers`] returned
    /// (as [`crate::checkpoint::load`] gives them back). After a step > 0 every buffer of this
    /// optimiser is required. Missing, misshapen or unknown entries are an error naming every
    /// one; on an error the state is left as it was.
    pub fn restore(
        &mut self,
        backend: &dyn Backend,
        params: &[Tensor],
        step: u64,
        buffers: Vec<(String, HostTensor)>,
    ) -> std::result::Result<(), String> {
        if params.len() != self.first.len() {
            return Err(format!(
                "optimiser state is for {} parameters, {} given",
                self.first.len(),
                params.len()
            ));
        }
        let mut problems = Vec::new();
        let mut entries: Vec<(String, HostTensor)> = buffers;
        let mut first = vec![None; params.len()];
        let mut second = vec![None; params.len()];
        for (k, kind) in self.entry_names() {
            let name = format!("{k}.{kind}");
            let p = &params[k];
            let found = entries
                .iter()
                .position(|(n, _)| *n == name)
                .map(|pos| entries.swap_remove(pos).1);
            match found {
                None => {
                    if step > 0 {
                        problems.push(format!("`{name}` is missing"));
                    }
                }
                Some(t) if t.shape != p.shape() => problems.push(format!(
                    "`{name}` has shape {:?}, parameter {k} has shape {:?}",
                    t.shape,
                    p.shape()
                )),
                Some(t) => {
                    let host = HostTensor {
                        shape: t.shape,
                        data: t.data.convert(float_type(p)),
                    };
                    match backend.upload(&host) {
                        Ok(dev) if kind == "exp_avg_sq" => second[k] = Some(dev),
                        Ok(dev) => first[k] = Some(dev),
                        Err(e) => problems.push(format!("`{name}`: {e}")),
                    }
                }
            }
        }
        let mut unknown: Vec<String> = entries.into_iter().map(|(n, _)| n).collect();
        unknown.sort();
        for n in unknown {
            problems.push(format!("`{n}` is not part of this optimiser's state"));
        }
        // Adam needs both moments or neither for a parameter (at step 0, where neither is
        // required, a lone one would otherwise slip through).
        if step == 0 && matches!(self.spec, Optimizer::Adam { .. }) {
            for (k, (m, v)) in first.iter().zip(&second).enumerate() {
                if m.is_some() != v.is_some() {
                    problems.push(format!(
                        "parameter {k} has only one of its two Adam moments"
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(format!(
                "the optimiser state does not fit: {}",
                problems.join("; ")
            ));
        }
        self.step = step;
        self.first = first;
        self.second = second;
        self.powers = None;
        Ok(())
    }
}

/// Adam's hyper-parameters for one step.
struct AdamHyper {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
}

/// Where Adam's bias corrections come from.
#[derive(Clone, Copy)]
enum Corrections {
    /// Constants for this 1-based step number.
    Step(u64),
    /// Inputs 4 and 5: `β1^t` and `β2^t` on the device.
    Device,
}

/// SGD's new momentum buffer (when `momentum` is not 0) and new parameter (see
/// [`OptimizerState::update_exprs`]).
fn sgd_exprs(lr: f64, momentum: f64, nesterov: bool, wd: f64, buffer: bool) -> Vec<MapExpr> {
    let g = decayed_grad(input(1), input(0), wd);
    if momentum == 0.0 {
        return vec![sub(input(0), mul(c(lr), g))];
    }
    let buf = if buffer {
        add(mul(input(2), c(momentum)), g.clone())
    } else {
        // First step: the buffer is the (decayed) gradient itself.
        g.clone()
    };
    let direction = if nesterov {
        add(g, mul(c(momentum), buf.clone()))
    } else {
        buf.clone()
    };
    vec![buf, sub(input(0), mul(c(lr), direction))]
}

/// Adam's new moments and parameter (see [`OptimizerState::update_exprs`]).
fn adam_exprs(h: &AdamHyper, moments: bool, corr: Corrections) -> Vec<MapExpr> {
    let (m_old, v_old) = if moments {
        (input(2), input(3))
    } else {
        (c(0.0), c(0.0))
    };
    let g = if h.decoupled {
        input(1)
    } else {
        decayed_grad(input(1), input(0), h.weight_decay)
    };
    // m + (1-β1)(g - m), torch's lerp.
    let m = add(m_old.clone(), mul(c(1.0 - h.beta1), sub(g.clone(), m_old)));
    // β2 v + (1-β2) g g.
    let v = add(
        mul(v_old, c(h.beta2)),
        mul(c(1.0 - h.beta2), mul(g.clone(), g)),
    );
    let (step_size, bc2_sqrt) = match corr {
        Corrections::Step(t) => {
            let t = t.min(i32::MAX as u64) as i32;
            (
                c(h.lr / (1.0 - h.beta1.powi(t))),
                c((1.0 - h.beta2.powi(t)).sqrt()),
            )
        }
        Corrections::Device => (
            div(c(h.lr), sub(c(1.0), input(4))),
            sqrt(sub(c(1.0), input(5))),
        ),
    };
    let denom = add(div(sqrt(v.clone()), bc2_sqrt), c(h.eps));
    let base = if h.decoupled && h.weight_decay != 0.0 {
        mul(input(0), c(1.0 - h.lr * h.weight_decay))
    } else {
        input(0)
    };
    let new_p = sub(base, mul(step_size, div(m.clone(), denom)));
    vec![m, v, new_p]
}

/// The learning rate at 0-based step `t` of `total`: no schedule is `base`;
/// `step(every, gamma)` is `base·gamma^⌊t/every⌋` (PyTorch's StepLR); `exponential(gamma)` is
/// `base·gamma^t` (ExponentialLR); `cosine(warmup)` is `base·(t+1)/warmup` for `t < warmup`,
/// then `base·½(1 + cos(π·(t−warmup)/max(1, total−warmup)))`.
pub fn learning_rate(base: f64, schedule: Option<&Schedule>, t: u64, total: u64) -> f64 {
    match schedule {
        None => base,
        Some(Schedule::Step { every, gamma }) => base * powu(*gamma, t / (*every).max(1)),
        Some(Schedule::Exponential { gamma }) => base * powu(*gamma, t),
        Some(Schedule::Cosine { warmup }) => {
            if t < *warmup {
                base * (t + 1) as f64 / *warmup as f64
            } else {
                let span = total.saturating_sub(*warmup).max(1) as f64;
                let progress = (t - warmup) as f64 / span;
                base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

/// `x^n` for a whole exponent of any size.
fn powu(x: f64, n: u64) -> f64 {
    match i32::try_from(n) {
        Ok(n) => x.powi(n),
        Err(_) => x.powf(n as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tl_backend::cpu::CpuBackend;

    /// The reference: the same formulas in plain f64 over vectors.
    struct Reference {
        spec: Optimizer,
        t: u64,
        m: Vec<Option<Vec<f64>>>,
        v: Vec<Option<Vec<f64>>>,
    }

    impl Reference {
        fn new(spec: &Optimizer, n: usize) -> Self {
            Reference {
                spec: spec.clone(),
                t: 0,
                m: vec![None; n],
                v: vec![None; n],
            }
        }

        fn step(&mut self, params: &mut [Vec<f64>], grads: &[Vec<f64>], lr: f64) {
            self.t += 1;
            let t = self.t as i32;
            for (k, (p, g)) in params.iter_mut().zip(grads).enumerate() {
                match self.spec {
                    Optimizer::Sgd {
                        momentum,
                        nesterov,
                        weight_decay,
                        ..
                    } => {
                        let g: Vec<f64> = g
                            .iter()
                            .zip(p.iter())
                            .map(|(g, p)| g + weight_decay * p)
                            .collect();
                        let d: Vec<f64> = if momentum == 0.0 {
                            g
                        } else {
                            let buf: Vec<f64> = match &self.m[k] {
                                None => g.clone(),
                                Some(b) => {
                                    b.iter().zip(&g).map(|(b, g)| momentum * b + g).collect()
                                }
                            };
                            let d = if nesterov {
                                g.iter().zip(&buf).map(|(g, b)| g + momentum * b).collect()
                            } else {
                                buf.clone()
                            };
                            self.m[k] = Some(buf);
                            d
                        };
                        for (p, d) in p.iter_mut().zip(d) {
                            *p -= lr * d;
                        }
                    }
                    Optimizer::Adam {
                        beta1,
                        beta2,
                        eps,
                        weight_decay,
                        decoupled,
                        ..
                    } => {
                        let n = p.len();
                        let m = self.m[k].get_or_insert_with(|| vec![0.0; n]);
                        let v = self.v[k].get_or_insert_with(|| vec![0.0; n]);
                        if decoupled {
                            for x in p.iter_mut() {
                                *x *= 1.0 - lr * weight_decay;
                            }
                        }
                        let bc1 = 1.0 - beta1.powi(t);
                        let bc2 = 1.0 - beta2.powi(t);
                        for i in 0..n {
                            let gi = if decoupled {
                                g[i]
                            } else {
                                g[i] + weight_decay * p[i]
                            };
                            m[i] = beta1 * m[i] + (1.0 - beta1) * gi;
                            v[i] = beta2 * v[i] + (1.0 - beta2) * gi * gi;
                            let denom = v[i].sqrt() / bc2.sqrt() + eps;
                            p[i] -= (lr / bc1) * m[i] / denom;
                        }
                    }
                }
            }
        }
    }

    fn sgd(lr: f64, momentum: f64, nesterov: bool, weight_decay: f64) -> Optimizer {
        Optimizer::Sgd {
            lr,
            momentum,
            nesterov,
            weight_decay,
        }
    }

    fn adam(lr: f64, weight_decay: f64, decoupled: bool) -> Optimizer {
        Optimizer::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            decoupled,
        }
    }

    fn all_specs() -> Vec<Optimizer> {
        vec![
            sgd(0.1, 0.0, false, 0.0),
            sgd(0.1, 0.0, false, 0.05),
            sgd(0.1, 0.9, false, 0.0),
            sgd(0.05, 0.9, true, 0.01),
            adam(0.05, 0.0, false),
            adam(0.05, 0.01, false),
            adam(0.05, 0.1, true),
        ]
    }

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    fn upload(b: &CpuBackend, shape: &[usize], v: &[f64], dt: DType) -> Tensor {
        b.upload(&HostTensor::from_f64(shape.to_vec(), v.to_vec(), dt))
            .unwrap()
    }

    /// Runs `steps` steps of `spec` on a matrix, a vector and a scalar, with gradients that
    /// depend on the current parameters (those of `Loss = Σ a·p²/2 + b·p`), on both sides.
    fn compare(spec: &Optimizer, dt: DType, steps: u64, tol: f64) {
        let b = CpuBackend::new();
        let shapes: Vec<Vec<usize>> = vec![vec![3, 4], vec![5], vec![]];
        let mut ref_p: Vec<Vec<f64>> = shapes
            .iter()
            .enumerate()
            .map(|(k, s)| values(s.iter().product(), k as u64))
            .collect();
        let curv: Vec<Vec<f64>> = ref_p
            .iter()
            .enumerate()
            .map(|(k, p)| {
                values(p.len(), 100 + k as u64)
                    .iter()
                    .map(|x| 1.5 + x)
                    .collect()
            })
            .collect();
        let lin: Vec<Vec<f64>> = ref_p
            .iter()
            .enumerate()
            .map(|(k, p)| values(p.len(), 200 + k as u64))
            .collect();
        let grad_of = |p: &[Vec<f64>]| -> Vec<Vec<f64>> {
            p.iter()
                .zip(curv.iter().zip(&lin))
                .map(|(p, (a, l))| {
                    p.iter()
                        .zip(a.iter().zip(l))
                        .map(|(p, (a, l))| a * p + l)
                        .collect()
                })
                .collect()
        };
        let mut params: Vec<Tensor> = shapes
            .iter()
            .zip(&ref_p)
            .map(|(s, v)| upload(&b, s, v, dt))
            .collect();
        let mut state = OptimizerState::new(spec, params.len());
        let mut reference = Reference::new(spec, params.len());
        let schedule = Schedule::Cosine { warmup: 2 };
        for t in 0..steps {
            let lr = learning_rate(0.1, Some(&schedule), t, steps);
            let host: Vec<Vec<f64>> = params
                .iter()
                .map(|p| b.download(p).unwrap().data.to_f64())
                .collect();
            let grads: Vec<Tensor> = grad_of(&host)
                .iter()
                .zip(&shapes)
                .map(|(g, s)| upload(&b, s, g, dt))
                .collect();
            state.step(&b, &mut params, &grads, lr).unwrap();
            // The reference sees the same gradients (computed from the same parameters).
            let ref_grads = grad_of(&ref_p);
            reference.step(&mut ref_p, &ref_grads, lr);
        }
        assert_eq!(state.steps(), steps);
        for (k, (p, want)) in params.iter().zip(&ref_p).enumerate() {
            let got = b.download(p).unwrap();
            assert_eq!(got.dtype(), dt);
            assert_eq!(got.shape, shapes[k]);
            for (i, (g, w)) in got.data.to_f64().iter().zip(want).enumerate() {
                assert!(
                    (g - w).abs() <= tol * w.abs().max(1.0),
                    "{spec:?} {dt}: param {k}[{i}] = {g}, reference {w}"
                );
            }
        }
    }

    #[test]
    fn optimisers_match_the_f64_reference_in_f64() {
        for spec in all_specs() {
            compare(&spec, DType::F64, 25, 1e-12);
        }
    }

    #[test]
    fn optimisers_match_the_f64_reference_in_f32() {
        for spec in all_specs() {
            compare(&spec, DType::F32, 25, 2e-5);
        }
    }

    #[test]
    fn adam_with_device_powers_equals_adam_with_constant_corrections() {
        let be = CpuBackend::new();
        let n = 11;
        let inputs: Vec<Tensor> = (0..4)
            .map(|k| upload(&be, &[n], &values(n, 40 + k), DType::F64))
            .collect();
        // Second moments are never negative.
        let v = be
            .map(&mul(input(0), input(0)), &[&inputs[3]], &[n], DType::F64)
            .expect("squares");
        for spec in [
            adam(0.01, 0.0, false),
            adam(0.02, 0.1, false),
            adam(0.02, 0.1, true),
        ] {
            let Optimizer::Adam { beta1, beta2, .. } = spec else {
                unreachable!("adam() builds Adam")
            };
            let state = OptimizerState::new(&spec, 1);
            for t in [1u64, 2, 7, 300] {
                let b1 = upload(&be, &[1], &[beta1.powi(t as i32)], DType::F64);
                let b2 = upload(&be, &[1], &[beta2.powi(t as i32)], DType::F64);
                let base = [&inputs[0], &inputs[1], &inputs[2], &v];
                let want = be
                    .map_many(
                        &state.update_exprs(0.01, true, Corrections::Step(t)),
                        &base,
                        &[n],
                        DType::F64,
                    )
                    .expect("constant corrections");
                let mut with_powers = base.to_vec();
                with_powers.extend([&b1, &b2]);
                let got = be
                    .map_many(
                        &state.update_exprs(0.01, true, Corrections::Device),
                        &with_powers,
                        &[n],
                        DType::F64,
                    )
                    .expect("device corrections");
                for (g, w) in got.iter().zip(&want) {
                    let g = be.download(g).expect("g").data.to_f64();
                    let w = be.download(w).expect("w").data.to_f64();
                    for (a, b) in g.iter().zip(&w) {
                        assert!(
                            (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                            "t={t}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn first_sgd_momentum_step_uses_the_gradient_as_buffer() {
        let b = CpuBackend::new();
        let spec = sgd(0.5, 0.9, false, 0.0);
        let mut p = vec![upload(&b, &[2], &[1.0, 2.0], DType::F64)];
        let g = vec![upload(&b, &[2], &[0.2, -0.4], DType::F64)];
        let mut st = OptimizerState::new(&spec, 1);
        st.step(&b, &mut p, &g, 0.5).unwrap();
        assert_eq!(b.download(&p[0]).unwrap().data.to_f64(), vec![0.9, 2.2]);
        st.step(&b, &mut p, &g, 0.5).unwrap();
        // buf = 0.9*0.2 + 0.2 = 0.38; p = 0.9 - 0.19
        let got = b.download(&p[0]).unwrap().data.to_f64();
        assert!((got[0] - 0.71).abs() < 1e-15 && (got[1] - 2.58).abs() < 1e-15);
    }

    #[test]
    fn first_adam_step_moves_by_lr() {
        // With bias correction the first step is lr·g/(|g| + eps·…) ≈ lr·sign(g).
        let b = CpuBackend::new();
        let mut p = vec![upload(&b, &[3], &[0.0, 1.0, -1.0], DType::F32)];
        let g = vec![upload(&b, &[3], &[3.0, -0.01, 1e3], DType::F32)];
        let mut st = OptimizerState::new(&adam(0.1, 0.0, false), 1);
        st.step(&b, &mut p, &g, 0.1).unwrap();
        let got = b.download(&p[0]).unwrap().data.to_f64();
        for (x, want) in got.iter().zip([-0.1, 1.1, -1.1]) {
            assert!((x - want).abs() < 1e-5, "{got:?}");
        }
    }

    #[test]
    fn mismatched_lists_are_errors() {
        let b = CpuBackend::new();
        let mut st = OptimizerState::new(&sgd(0.1, 0.0, false, 0.0), 2);
        let mut p = vec![upload(&b, &[2], &[1.0, 2.0], DType::F32)];
        let g = p.clone();
        assert!(st.step(&b, &mut p, &g, 0.1).is_err());
        assert_eq!(st.steps(), 0);
    }

    #[test]
    fn state_round_trips_and_continues_identically() {
        let b = CpuBackend::new();
        for spec in [
            sgd(0.1, 0.9, true, 0.01),
            adam(0.05, 0.1, true),
            sgd(0.1, 0.0, false, 0.0),
        ] {
            let shapes: [&[usize]; 2] = [&[2, 3], &[]];
            let init: Vec<Tensor> = shapes
                .iter()
                .enumerate()
                .map(|(k, s)| upload(&b, s, &values(s.iter().product(), k as u64), DType::F64))
                .collect();
            let grads: Vec<Tensor> = shapes
                .iter()
                .enumerate()
                .map(|(k, s)| upload(&b, s, &values(s.iter().product(), 9 + k as u64), DType::F64))
                .collect();
            let mut a = OptimizerState::new(&spec, 2);
            let mut pa = init.clone();
            for _ in 0..3 {
                a.step(&b, &mut pa, &grads, 0.1).unwrap();
            }
            let saved = a.state(&b).unwrap();
            let names: Vec<&str> = saved.iter().map(|(n, _)| n.as_str()).collect();
            let expected: &[&str] = match spec {
                Optimizer::Sgd { momentum, .. } if momentum != 0.0 => {
                    &["0.momentum_buffer", "1.momentum_buffer", "step"]
                }
                Optimizer::Sgd { .. } => &["step"],
                Optimizer::Adam { .. } => &[
                    "0.exp_avg",
                    "0.exp_avg_sq",
                    "1.exp_avg",
                    "1.exp_avg_sq",
                    "step",
                ],
            };
            assert_eq!(names, expected);
            let mut r = OptimizerState::new(&spec, 2);
            let mut pr = pa.clone();
            r.load_state(&b, &pr, saved).unwrap();
            assert_eq!(r.steps(), 3);
            // The same through `buffers` and `restore` (the checkpoint module's split).
            let mut r2 = OptimizerState::new(&spec, 2);
            let mut pr2 = pa.clone();
            r2.restore(&b, &pr2, a.steps(), a.buffers(&b).unwrap())
                .unwrap();
            assert_eq!(r2.steps(), 3);
            a.step(&b, &mut pa, &grads, 0.1).unwrap();
            r.step(&b, &mut pr, &grads, 0.1).unwrap();
            r2.step(&b, &mut pr2, &grads, 0.1).unwrap();
            for ((x, y), z) in pa.iter().zip(&pr).zip(&pr2) {
                assert_eq!(b.download(x).unwrap(), b.download(y).unwrap());
                assert_eq!(b.download(x).unwrap(), b.download(z).unwrap());
            }
        }
    }

    #[test]
    fn bad_state_names_every_problem() {
        let b = CpuBackend::new();
        let spec = adam(0.05, 0.0, false);
        let params = vec![
            upload(&b, &[2], &[1.0, 2.0], DType::F32),
            upload(&b, &[], &[1.0], DType::F32),
        ];
        let mut st = OptimizerState::new(&spec, 2);
        let err = st
            .load_state(
                &b,
                &params,
                vec![
                    ("step".into(), HostTensor::scalar(4.0, DType::F64)),
                    (
                        "0.exp_avg".into(),
                        HostTensor::from_f64(vec![3], vec![0.0; 3], DType::F32),
                    ),
                    (
                        "0.exp_avg_sq".into(),
                        HostTensor::from_f64(vec![2], vec![0.0; 2], DType::F32),
                    ),
                    ("1.exp_avg".into(), HostTensor::scalar(0.0, DType::F32)),
                    (
                        "7.momentum_buffer".into(),
                        HostTensor::scalar(0.0, DType::F32),
                    ),
                ],
            )
            .unwrap_err();
        assert!(err.contains("`0.exp_avg` has shape [3]"), "{err}");
        assert!(err.contains("`1.exp_avg_sq` is missing"), "{err}");
        assert!(err.contains("`7.momentum_buffer` is not part"), "{err}");
        assert!(!err.contains("`0.exp_avg_sq`"), "{err}");
        assert_eq!(st.steps(), 0, "a failed load leaves the state alone");
        let err = st.load_state(&b, &params, Vec::new()).unwrap_err();
        assert!(err.contains("`step` is missing"), "{err}");
    }

    #[test]
    fn schedules() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert_eq!(learning_rate(0.3, None, 57, 100), 0.3);
        let step = Schedule::Step {
            every: 30,
            gamma: 0.5,
        };
        for (t, want) in [
            (0, 1.0),
            (29, 1.0),
            (30, 0.5),
            (59, 0.5),
            (60, 0.25),
            (99, 0.125),
        ] {
            assert!(
                close(learning_rate(1.0, Some(&step), t, 100), want),
                "step at {t}"
            );
        }
        let exp = Schedule::Exponential { gamma: 0.98 };
        for t in [0u64, 1, 7, 99] {
            assert!(close(
                learning_rate(0.05, Some(&exp), t, 100),
                0.05 * 0.98f64.powi(t as i32)
            ));
        }
        let cos = Schedule::Cosine { warmup: 10 };
        for (t, want) in [
            (0, 0.1),
            (4, 0.5),
            (9, 1.0),
            (10, 1.0),
            (55, 0.5),
            (100, 0.0),
        ] {
            assert!(
                close(learning_rate(1.0, Some(&cos), t, 100), want),
                "cosine at {t}: {}",
                learning_rate(1.0, Some(&cos), t, 100)
            );
        }
        let t = 37u64;
        let want = 0.5 * (1.0 + (std::f64::consts::PI * 27.0 / 90.0).cos());
        assert!(close(learning_rate(1.0, Some(&cos), t, 100), want));
        // No warm-up: cosine from the base rate; a run no longer than its warm-up.
        let cos0 = Schedule::Cosine { warmup: 0 };
        assert!(close(learning_rate(2.0, Some(&cos0), 0, 50), 2.0));
        assert!(close(learning_rate(2.0, Some(&cos0), 25, 50), 1.0));
        assert!(learning_rate(1.0, Some(&cos), 12, 5).is_finite());
    }
}
