//! Vector-Jacobian products: the gradients of some outputs, weighted by given upstream
//! gradients, with respect to some data tensors and parameters. This is what lets a program
//! sit inside another framework's automatic differentiation (the Python package's PyTorch
//! function): the framework hands over the gradient of its loss with respect to the
//! program's outputs and gets the gradients with respect to the program's inputs back.

use crate::engine::Engine;
use crate::error::RunError;
use tl_backend::Calls;
use tl_backend::Tensor;
use tl_check::{Definition, TensorId};
use tl_syntax::Span;

/// What [`Engine::vjp`] computed, where the backend keeps it (device memory on a GPU).
#[derive(Debug)]
pub struct Vjp {
    /// The value of each output, in the order asked for.
    pub values: Vec<Tensor>,
    /// For each tensor asked about, Σ seed·∂output/∂tensor over the outputs, shaped like
    /// the tensor (zeros where no output depends on it).
    pub grads: Vec<Tensor>,
}

impl Engine<'_> {
    /// Evaluates what `outputs` depend on and is not yet evaluated (as a run does: dropout
    /// off) and returns their values where the backend keeps them (device memory on a GPU);
    /// they must not be spliced into their readers (a plan made with queries of them keeps
    /// them whole).
    pub fn tensors(&mut self, outputs: &[TensorId]) -> Result<Vec<Tensor>, RunError> {
        self.evaluate_needed(outputs)?;
        self.dense_all(outputs)
    }

    /// Evaluates the program from its current data and parameters, recording what a
    /// backward pass reads (dropout on, as in training), and returns the values of `outputs`
    /// and the gradient of Σₒ Σ seedₒ·outputₒ with respect to each tensor of `wrt` (data
    /// tensors or parameters). `seeds[k]` has the shape of `outputs[k]`; with no `wrt` there
    /// is no backward pass and `seeds` may be empty.
    pub fn vjp(
        &mut self,
        outputs: &[TensorId],
        seeds: &[Tensor],
        wrt: &[TensorId],
    ) -> Result<Vjp, RunError> {
        let span = Span::default();
        if wrt.is_empty() && seeds.is_empty() {
            self.forward_recorded(&vec![false; self.program.tensors.len()])?;
            let values = self.dense_all(outputs);
            self.traces.clear();
            return Ok(Vjp {
                values: values?,
                grads: Vec::new(),
            });
        }
        if outputs.len() != seeds.len() {
            return Err(invalid(
                format!(
                    "{} upstream gradients for {} outputs",
                    seeds.len(),
                    outputs.len()
                ),
                span,
            ));
        }
        for &t in wrt {
            let decl = &self.program.tensors[t];
            if !matches!(
                decl.def,
                Definition::Data(_)
                    | Definition::External
                    | Definition::Param(_)
                    | Definition::ImplicitParam
            ) {
                return Err(invalid(
                    format!(
                        "`{}` is computed by the program, so it has no gradient of its own to ask for",
                        decl.name
                    ),
                    decl.span,
                ));
            }
        }
        let mut seeded: Vec<(TensorId, Tensor)> = Vec::with_capacity(outputs.len());
        for (&t, seed) in outputs.iter().zip(seeds) {
            let shape = self.shape(t);
            let decl = &self.program.tensors[t];
            if seed.shape() != shape.as_slice() {
                return Err(invalid(
                    format!(
                        "the upstream gradient of `{}` has shape {:?}, but `{}` has shape {shape:?}",
                        decl.name,
                        seed.shape(),
                        decl.name
                    ),
                    decl.span,
                ));
            }
            let g = if seed.dtype == self.dtype() {
                seed.clone()
            } else {
                self.backend
                    .cast(seed, self.dtype())
                    .map_err(|e| RunError::backend(e, span))?
            };
            seeded.push((t, g));
        }
        let wanted = self.depends_on(wrt);
        self.forward_recorded(&wanted)?;
        let values = self.dense_all(outputs)?;
        let result = self.backward_seeded(seeded, &wanted, &[], &mut |_, _| Ok(()));
        self.traces.clear();
        let mut grads = result?;
        let grads = wrt
            .iter()
            .map(|&t| self.grad_or_zeros(&mut grads, t))
            .collect::<Result<_, _>>()?;
        Ok(Vjp { values, grads })
    }

    fn dense_all(&self, outputs: &[TensorId]) -> Result<Vec<Tensor>, RunError> {
        outputs
            .iter()
            .map(|&t| self.dense(t, self.program.tensors[t].span))
            .collect()
    }
}

fn invalid(what: String, span: Span) -> RunError {
    RunError::Unsupported {
        what,
        hint: Some(
            "ask for the gradients of computed tensors with respect to data tensors and `param`s"
                .into(),
        ),
        span,
    }
}
