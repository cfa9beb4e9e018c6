//! One pass of a training step: the forward and backward evaluation that gives the loss and the
//! gradients, on the host or replayed on the device, summed over ranks, checked for non-finite
//! values.

use super::*;
use tl_backend::Calls;

impl Engine<'_> {
    pub(crate) fn scalar(&self, t: TensorId, span: Span) -> Result<f64, RunError> {
        let v = self.dense(t, span)?;
        let host = self
            .backend
            .download(&v)
            .map_err(|e| RunError::backend(e, span))?;
        Ok(host.data.to_f64().iter().sum())
    }

    /// The first derived tensor (in evaluation order) holding a NaN or infinity, with the
    /// span of its first equation.
    pub(crate) fn first_non_finite(&self) -> Option<(String, Span)> {
        for s in &self.program.strata {
            for &t in &s.tensors {
                let decl = &self.program.tensors[t];
                let Some(Value::Dense(v)) = &self.values[t] else {
                    continue;
                };
                if self.max_abs(v, decl.span).map_or(true, |m| !m.is_finite()) {
                    let span = decl
                        .equations
                        .first()
                        .map_or(decl.span, |&e| self.program.equations[e].span);
                    return Some((decl.name.clone(), span));
                }
            }
        }
        None
    }

    /// One forward and backward pass over the current values, checked (one read-back).
    pub(crate) fn pass(
        &mut self,
        loss: TensorId,
        params: &[TensorId],
        wanted: &[bool],
        step: u64,
        span: Span,
    ) -> Result<StepResult, RunError> {
        self.masks.begin_step(step);
        let d = self.pass_on_device(loss, params, wanted, span)?;
        let loss_value = self.checked(&d, loss, params, step, span)?;
        Ok(StepResult {
            loss: loss_value,
            grads: d.grads,
        })
    }

    /// [`Engine::pass`] as one rank of a data-parallel run over `rows.0` examples of a batch
    /// of `rows.1`: each parameter's gradient goes to the reducer as soon as the backward pass
    /// has finished it, so the sums across ranks overlap the rest of the backward pass. Returns
    /// the summed loss and gradients, checked (the same on every rank).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn pass_reduced(
        &mut self,
        loss: TensorId,
        params: &[TensorId],
        wanted: &[bool],
        step: u64,
        span: Span,
        dp: &mut DataParallel<'_>,
        rows: (usize, usize),
    ) -> Result<StepResult, RunError> {
        self.masks.begin_step(step);
        self.forward_recorded(wanted)?;
        let loss_sum = self.summed(&self.dense(loss, span)?, span)?;
        let backend = self.backend;
        let dtype = self.dtype();
        let shapes: Vec<Vec<usize>> = params.iter().map(|&p| self.shape(p)).collect();
        let mut stream = dp.begin_streaming(params.len(), rows);
        self.backward_with(loss, wanted, params, &mut |p, g| {
            let Some(k) = params.iter().position(|&q| q == p) else {
                return Ok(());
            };
            let g = match g {
                Some(g) => g,
                None => backend
                    .full(&shapes[k], 0.0, dtype)
                    .map_err(|e| RunError::backend(e, span))?,
            };
            dp.offer(backend, &mut stream, k, g, span)
        })?;
        self.traces.clear();
        self.reduced_result(dp, stream, &loss_sum, loss, params, step, span)
    }

    /// A data-parallel step of a rank with no examples: zero gradients, handed to the reducer
    /// in the order the other ranks' backward passes finish them, and a zero loss.
    pub(crate) fn zeros_reduced(
        &self,
        loss: TensorId,
        params: &[TensorId],
        step: u64,
        span: Span,
        dp: &mut DataParallel<'_>,
        rows: (usize, usize),
    ) -> Result<StepResult, RunError> {
        let mut stream = dp.begin_streaming(params.len(), rows);
        for k in self.final_order(params) {
            let zeros = self
                .backend
                .full(&self.shape(params[k]), 0.0, self.dtype())
                .map_err(|e| RunError::backend(e, span))?;
            dp.offer(self.backend, &mut stream, k, zeros, span)?;
        }
        let zero = self
            .backend
            .full(&[], 0.0, self.dtype())
            .map_err(|e| RunError::backend(e, span))?;
        self.reduced_result(dp, stream, &zero, loss, params, step, span)
    }

    /// Ends a streamed data-parallel step: the sums across ranks, then one read-back of the
    /// summed loss and the finiteness of the summed gradients.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn reduced_result(
        &self,
        dp: &mut DataParallel<'_>,
        stream: tl_dist::Buckets,
        loss_sum: &Tensor,
        loss: TensorId,
        params: &[TensorId],
        step: u64,
        span: Span,
    ) -> Result<StepResult, RunError> {
        let backend = self.backend;
        let (grads, summed_loss) = dp.finish_streaming(backend, stream, loss_sum, span)?;
        let d = self.device_pass(summed_loss, grads, span)?;
        let loss_value = self.checked(&d, loss, params, step, span)?;
        Ok(StepResult {
            loss: loss_value,
            grads: d.grads,
        })
    }

    /// The forward pass of a training step: derived tensors that do not depend on a
    /// parameter keep their values from the last step; the rest are recomputed, recording
    /// what the backward pass reads.
    pub(crate) fn forward_recorded(&mut self, wanted: &[bool]) -> Result<(), RunError> {
        for (t, decl) in self.program.tensors.iter().enumerate() {
            if wanted[t] && matches!(decl.def, Definition::Derived) {
                self.values[t] = None;
            }
        }
        self.traces.clear();
        self.record = true;
        let forward = self.evaluate_missing();
        self.record = false;
        forward
    }

    /// The forward and backward pass, queued without reading anything back: the gradients,
    /// and the device scalars [`Engine::checked`] reads.
    pub(crate) fn pass_on_device(
        &mut self,
        loss: TensorId,
        params: &[TensorId],
        wanted: &[bool],
        span: Span,
    ) -> Result<DevicePass, RunError> {
        self.forward_recorded(wanted)?;
        let loss_sum = self.summed(&self.dense(loss, span)?, span)?;
        let mut grads = self.backward(loss, wanted)?;
        self.traces.clear();
        self.advance_masks(span)?;
        let out = params
            .iter()
            .map(|&p| self.grad_or_zeros(&mut grads, p))
            .collect::<Result<Vec<_>, _>>()?;
        self.device_pass(loss_sum, out, span)
    }

    /// A pass's loss and gradients with the one scalar a step reads back: the loss plus a
    /// flag that is 0 when every gradient is finite and NaN otherwise.
    pub(crate) fn device_pass(
        &self,
        loss_sum: Tensor,
        grads: Vec<Tensor>,
        span: Span,
    ) -> Result<DevicePass, RunError> {
        let refs: Vec<&Tensor> = grads.iter().collect();
        let flag = self
            .backend
            .non_finite_flag(&refs)
            .map_err(|e| RunError::backend(e, span))?;
        let total = self.scalar_total(&[&loss_sum, &flag], span)?;
        Ok(DevicePass {
            loss_sum,
            total,
            grads,
        })
    }

    /// Reads a pass's total back: the loss when it and every gradient are finite. Only when
    /// they are not are the parts read one by one, to say which is at fault.
    pub(crate) fn checked(
        &self,
        d: &DevicePass,
        loss: TensorId,
        params: &[TensorId],
        step: u64,
        span: Span,
    ) -> Result<f64, RunError> {
        let total = self.read_scalar(&d.total, span)?;
        if total.is_finite() {
            return Ok(total);
        }
        let name = self.program.tensors[loss].name.clone();
        let value = self.read_scalar(&d.loss_sum, span)?;
        if !value.is_finite() {
            let (culprit, at) = self.first_non_finite().unwrap_or((name.clone(), span));
            return Err(RunError::NonFinite { what: format!("the loss `{name}` is {value} at step {step}; the first non-finite value is in `{culprit}`"), span: at });
        }
        for (&p, g) in params.iter().zip(&d.grads) {
            let flag = self
                .backend
                .non_finite_flag(&[g])
                .map_err(|e| RunError::backend(e, span))?;
            if !self.read_scalar(&flag, span)?.is_finite() {
                let pname = &self.program.tensors[p].name;
                let pspan = self.program.tensors[p].span;
                return Err(RunError::NonFinite { what: format!("the gradient of `{name}` with respect to `{pname}` is not finite at step {step}"), span: pspan });
            }
        }
        Ok(value)
    }

    /// The sum of a tensor's elements, on the device (the tensor itself when it is a scalar).
    pub(crate) fn summed(&self, t: &Tensor, span: Span) -> Result<Tensor, RunError> {
        if t.rank() == 0 {
            return Ok(t.clone());
        }
        let axes: Vec<usize> = (0..t.rank()).collect();
        self.backend
            .reduce(t, &axes, tl_backend::ReduceOp::Sum)
            .map_err(|e| RunError::backend(e, span))
    }

    /// The sum of some device scalars, as a device scalar (f32, or f64 in f64 programs).
    pub(crate) fn scalar_total(&self, parts: &[&Tensor], span: Span) -> Result<Tensor, RunError> {
        let mut expr = MapExpr::Input(0);
        for k in 1..parts.len() {
            expr = MapExpr::Binary(BinaryFn::Add, Box::new(expr), Box::new(MapExpr::Input(k)));
        }
        let dtype = if self.dtype() == DType::F64 {
            DType::F64
        } else {
            DType::F32
        };
        self.backend
            .map(&expr, parts, &[], dtype)
            .map_err(|e| RunError::backend(e, span))
    }

    /// The loss and its gradient with respect to every parameter it depends on (evaluating
    /// the program from the current parameter values), for checks and tools.
    pub fn loss_and_gradients(
        &mut self,
        loss: TensorId,
    ) -> Result<(f64, Vec<(TensorId, HostTensor)>), RunError> {
        let span = self.program.tensors[loss].span;
        let params = self.learned_params(loss);
        let wanted = self.depends_on(&params);
        let r = self.pass(loss, &params, &wanted, 0, span)?;
        let hosts = r
            .grads
            .iter()
            .map(|g| {
                self.backend
                    .download(g)
                    .map_err(|e| RunError::backend(e, span))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((r.loss, params.into_iter().zip(hosts).collect()))
    }

    /// The loss from the current parameter values, without gradients.
    pub fn loss_value(&mut self, loss: TensorId) -> Result<f64, RunError> {
        let span = self.program.tensors[loss].span;
        self.reset_derived();
        self.evaluate_all()?;
        self.scalar(loss, span)
    }
}
