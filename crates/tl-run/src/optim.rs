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
//! Every update is one pass per parameter ([`Calls::map_many`]: the parameter and its
//! moments or momentum buffer from the same inputs), in the parameter's element type (f32 by
//! default, f64 when the parameters are f64); scalars such as the learning rate and the bias
//! corrections enter as constants. On a backend that records work, later steps update the
//! parameters and buffers in place ([`OptimizerState::step_in_place`], the bias corrections
//! then read from device scalars), so that one recorded step can be replayed.

use tl_backend::Calls;
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
    /// f32 copies of 16-bit parameters, updated in their stead (the master weights of
    /// mixed-precision training: an update below a 16-bit parameter's resolution is kept),
    /// the parameter rounded from its copy after each step; `None` for wider parameters and
    /// before the first step.
    masters: Vec<Option<Tensor>>,
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

/// The element type updates and optimiser buffers are kept in: the parameter's own type if
/// it is f32 or f64, else f32 (16-bit parameters are updated through their master copies;
/// non-float parameters do not occur for learned tensors).
fn float_type(t: &Tensor) -> DType {
    match t.dtype {
        DType::F64 => DType::F64,
        _ => DType::F32,
    }
}

/// The checkpoint entry of a parameter's master copy (`{k}.master`).
const MASTER: &str = "master";

/// Whether a parameter of this type is updated through an f32 master copy.
fn needs_master(d: DType) -> bool {
    matches!(d, DType::F16 | DType::BF16)
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
            masters: vec![None; params],
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
            let master = self.master(backend, k, p)?;
            let state: Vec<&Tensor> = self.first[k].iter().chain(&self.second[k]).collect();
            let exprs = self.update_exprs(lr, !state.is_empty(), Corrections::Step(t));
            let mut inputs: Vec<&Tensor> = vec![master.as_ref().unwrap_or(p), g];
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
            if master.is_some() {
                *p = backend.cast(&new_p, p.dtype)?;
                self.masters[k] = Some(new_p);
            } else {
                *p = new_p;
            }
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
    /// memory ([`Calls::map_many_into`]), with Adam's bias corrections read from device
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
            // Made in an ordinary step, so never while a step is recorded.
            let master = self.master(backend, k, p)?;
            self.masters[k].clone_from(&master);
            let state: Vec<&Tensor> = self.first[k].iter().chain(&self.second[k]).collect();
            let mut exprs = self.update_exprs(lr, true, Corrections::Device);
            let mut inputs: Vec<&Tensor> = vec![master.as_ref().unwrap_or(p), g];
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
            // The buffers' new values go where they were, then the parameter's (its master's,
            // then the parameter rounded from it).
            let mut outs = state;
            if let Some(m) = &master {
                outs.push(m);
                if let Some(last) = exprs.last().cloned() {
                    exprs.push(last);
                }
            }
            outs.push(p);
            backend.map_many_into(&exprs, &inputs, p.shape(), &outs)?;
        }
        self.step += 1;
        self.powers = powers.map(|(b1, b2)| (self.step, b1, b2));
        Ok(())
    }

    /// The f32 master copy of parameter `k` when it is 16-bit (made from it the first time).
    fn master(&self, backend: &dyn Backend, k: usize, p: &Tensor) -> Result<Option<Tensor>> {
        if !needs_master(p.dtype) {
            return Ok(None);
        }
        match self.masters.get(k) {
            Some(Some(m)) => Ok(Some(m.clone())),
            _ => Ok(Some(backend.cast(p, DType::F32)?)),
        }
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
    /// index `k` that has them (none before the first step), in that order, then `{k}.master`
    /// for each 16-bit parameter's f32 master copy.
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
        for (k, m) in self.masters.iter().enumerate() {
            if let Some(m) = m {
                out.push((format!("{k}.{MASTER}"), backend.download(m)?));
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
        // Master copies of 16-bit parameters, where the checkpoint has them (else they are
        // made from the parameters at the next step).
        let mut masters = vec![None; params.len()];
        for (k, p) in params.iter().enumerate() {
            let name = format!("{k}.{MASTER}");
            let Some(pos) = entries.iter().position(|(n, _)| *n == name) else {
                continue;
            };
            let t = entries.swap_remove(pos).1;
            if t.shape != p.shape() || !needs_master(p.dtype) {
                problems.push(format!("`{name}` does not fit parameter {k}"));
                continue;
            }
            let host = HostTensor {
                shape: t.shape,
                data: t.data.convert(DType::F32),
            };
            match backend.upload(&host) {
                Ok(dev) => masters[k] = Some(dev),
                Err(e) => problems.push(format!("`{name}`: {e}")),
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
        self.masters = masters;
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
mod tests;
