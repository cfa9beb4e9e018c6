//! Mini-batched steps, replayed. Each batch length keeps one engine over the program
//! re-planned for it, whose data tensors cut along the batch index live in memory of their
//! own: a step copies its batch's examples into that memory (outside any recording), and then
//! runs, records or replays the step as a full-batch step does ([`Engine::replayed_step`]).
//! Everything a cut tensor feeds is recomputed in every step, and parameters are updated in
//! their own memory, so the recorded work is the same over the same memory at every step.
//! A run replayed this way gives the losses, bit for bit, of one queued op by op.

use super::*;
use crate::batch::Planned;
use std::collections::HashMap;
use std::sync::Arc;

/// The replayed engines of a mini-batched `minimize`, by batch length.
pub(crate) struct BatchedReplay<'h> {
    /// The re-planned programs, by batch length.
    planned: &'h HashMap<usize, Arc<Planned>>,
    /// Each length's engine and where it stands with replaying.
    engines: HashMap<usize, (Engine<'h>, Replay)>,
    /// The data tensors cut along the batch index.
    cut: Vec<TensorId>,
    /// What a step recomputes: what depends on a parameter, a draw or a cut tensor.
    wanted: Vec<bool>,
}

impl<'h> BatchedReplay<'h> {
    /// Replayed engines over the programs of `planned`.
    pub(crate) fn new(
        planned: &'h HashMap<usize, Arc<Planned>>,
        cut: Vec<TensorId>,
        wanted: Vec<bool>,
    ) -> Self {
        BatchedReplay {
            planned,
            engines: HashMap::new(),
            cut,
            wanted,
        }
    }

    /// How many steps the engines replayed.
    pub(crate) fn replayed_steps(&self) -> u64 {
        self.engines.values().map(|(e, _)| e.replayed_steps).sum()
    }
}

impl<'a> Engine<'a> {
    /// The data tensors a batch along `domain` cuts, when every one of them is host data
    /// (which a step can copy into memory of its own); `None` when some other tensor has the
    /// batch axis (tuples, device memory), and steps run op by op.
    pub(crate) fn replayable_cut(&self, domain: tl_check::DomainId) -> Option<Vec<TensorId>> {
        let mut cut = Vec::new();
        for (t, decl) in self.program.tensors.iter().enumerate() {
            if !decl.axes.contains(&domain) || matches!(decl.def, Definition::Derived) {
                continue;
            }
            match decl.def {
                Definition::Data(_) => cut.push(t),
                _ => return None,
            }
        }
        Some(cut)
    }

    /// One mini-batched step over the examples `rows`, on the engine of their batch length:
    /// their data copied into its cut tensors, then the step run, recorded or replayed.
    pub(crate) fn batched_step<'h>(
        &self,
        br: &mut BatchedReplay<'h>,
        domain: tl_check::DomainId,
        rows: &[usize],
        opt: &mut OptimizerState,
        target: &StepTarget<'_>,
    ) -> Result<f64, RunError>
    where
        'a: 'h,
    {
        let span = target.span;
        let err = |e| RunError::backend(e, span);
        let len = rows.len();
        if !br.engines.contains_key(&len) {
            let planned = br.planned.get(&len).ok_or_else(|| RunError::Unsupported {
                what: format!("internal: no plan for batches of {len}"),
                hint: None,
                span,
            })?;
            let (bp, bplan) = &**planned;
            // Its masks are those of part 0 (`Masks::default`): no data parallelism here.
            let mut sub = Engine::bare(bp, bplan, self.backend, self.options.clone());
            for t in 0..self.program.tensors.len() {
                sub.values[t] = self.batch_value(t, domain, rows, span)?;
            }
            br.engines.insert(len, (sub, Replay::Warming));
        } else if let Some((sub, _)) = br.engines.get_mut(&len) {
            for &t in &br.cut {
                let fresh = self.batch_value(t, domain, rows, span)?;
                let (Some(Value::Dense(fresh)), Some(Value::Dense(own))) = (fresh, &sub.values[t])
                else {
                    return Err(RunError::Unsupported {
                        what: "internal: a cut tensor is not dense".into(),
                        hint: None,
                        span,
                    });
                };
                let copy = MapExpr::Input(0);
                self.backend
                    .map_many_into(&[copy], &[&fresh], own.shape(), &[own])
                    .map_err(err)?;
            }
        }
        let Some((sub, state)) = br.engines.get_mut(&len) else {
            return Err(RunError::Unsupported {
                what: format!("internal: no engine for batches of {len}"),
                hint: None,
                span,
            });
        };
        let target = StepTarget {
            wanted: &br.wanted,
            ..*target
        };
        sub.replayed_step(state, opt, &target)
    }
}
