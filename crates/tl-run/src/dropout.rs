//! The engine's side of dropout: each mask a `Body::Mask` kernel reading the step counter of
//! [`crate::masks`], and the counter advanced at the end of a pass.

use crate::engine::Engine;
use crate::error::RunError;
use crate::masks::stream;
use tl_backend::{Body, Calls, DType, Kernel, MapExpr, Tensor};
use tl_syntax::Span;

impl Engine<'_> {
    /// The dropout mask of node `node` of plan `plan` over `shape` in this training step.
    pub(crate) fn dropout_mask(
        &mut self,
        (plan, node): (usize, usize),
        shape: &[usize],
        p: f64,
        dtype: DType,
        span: Span,
    ) -> Result<Tensor, RunError> {
        let err = |e| RunError::backend(e, span);
        self.sync_masks(span)?;
        let step = self.masks.step;
        let counter = match &self.masks.counter {
            Some((at, t)) if *at == step => t.clone(),
            _ => {
                let t = self
                    .backend
                    .full(&[], step as f64, DType::F64)
                    .map_err(err)?;
                self.masks.counter = Some((step, t.clone()));
                t
            }
        };
        self.masks.drawn = true;
        let stream = stream(
            self.options.seed,
            self.masks.part,
            plan,
            node,
            self.masks.layer,
        );
        let inputs = [&counter];
        let kernel = Kernel::new(&inputs, shape, dtype, Body::Mask { p, stream });
        let mut out = self.backend.kernel(&kernel).map_err(err)?;
        out.pop().ok_or_else(|| RunError::Unsupported {
            what: "internal: a mask kernel gave no result".into(),
            hint: None,
            span,
        })
    }

    /// Makes the counter hold the step under way, writing it into the counter's own memory
    /// where a recording may read that memory (a backend that records): a recorded step of one
    /// batch length replays after steps of another have run.
    pub(crate) fn sync_masks(&mut self, span: Span) -> Result<(), RunError> {
        let step = self.masks.step;
        if !self.backend.can_record() {
            return Ok(());
        }
        if let Some((at, t)) = &mut self.masks.counter {
            if *at != step {
                self.backend
                    .map_many_into(&[MapExpr::Const(step as f64)], &[], &[], &[&*t])
                    .map_err(|e| RunError::backend(e, span))?;
                *at = step;
            }
        }
        Ok(())
    }

    /// Ends a pass that drew masks: on a backend that records, the counter advances in its
    /// own memory, so that a recording of the step draws the next step's masks when replayed.
    pub(crate) fn advance_masks(&mut self, span: Span) -> Result<(), RunError> {
        if !self.masks.drawn || !self.backend.can_record() {
            return Ok(());
        }
        self.masks.drawn = false;
        if let Some((at, t)) = &mut self.masks.counter {
            let next = MapExpr::Binary(
                tl_backend::BinaryFn::Add,
                Box::new(MapExpr::Input(0)),
                Box::new(MapExpr::Const(1.0)),
            );
            self.backend
                .map_many_into(&[next], &[&*t], &[], &[&*t])
                .map_err(|e| RunError::backend(e, span))?;
            *at += 1;
        }
        Ok(())
    }
}
