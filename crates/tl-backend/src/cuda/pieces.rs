//! Elementwise expressions too large for one kernel ([`crate::split`]) run as several: each
//! piece into a temporary of the compute type, then what remains into the outputs.

use super::codegen::{self, Real};
use super::render::Spec;
use super::CudaBackend;
use crate::error::Result;
use crate::ops::MapExpr;
use crate::split::{self, Limits};
use crate::tensor::Tensor;

/// The most nodes one kernel's expression may have: larger ones compile slowly, or past the
/// compiler's nesting limits.
const MAX_NODES: usize = 512;

/// Whether the expressions of `spec` compile into one kernel.
pub(super) fn one_kernel(spec: &Spec) -> bool {
    codegen::meta_cap(spec.meta_len()).is_some() && spec.exprs().all(|e| e.size() <= MAX_NODES)
}

/// Pieces small enough for one kernel over `rank` axes: each input may take a pointer and a
/// stride per axis, besides the launch's own words.
fn limits(rank: usize) -> Limits {
    let per_leaf = 1 + rank;
    Limits {
        leaves: (codegen::MAX_META_WORDS.saturating_sub(8 + 2 * rank) / per_leaf).clamp(2, 64),
        nodes: MAX_NODES,
    }
}

impl CudaBackend {
    /// [`CudaBackend::elementwise_into`] for expressions that do not fit one kernel: each
    /// output's expression is cut into pieces, evaluated in `real` into temporaries of
    /// `out_shape` (each freed once the piece that reads it has run), and the rest written to
    /// the output.
    pub(super) fn elementwise_pieces(
        &self,
        outs: &[(MapExpr, crate::DType)],
        inputs: &[&Tensor],
        out_shape: &[usize],
        out_ptrs: &[u64],
        real: Real,
    ) -> Result<()> {
        let limits = limits(out_shape.len());
        for ((expr, dtype), &ptr) in outs.iter().zip(out_ptrs) {
            let mut temps: Vec<Option<Tensor>> = Vec::new();
            let rest = split::split(expr, inputs.len(), limits, &mut |piece| {
                let t = self.piece(piece, inputs, &mut temps, out_shape, real)?;
                temps.push(Some(t));
                Ok(())
            })?;
            let (rest, used) = split::compact(&rest);
            let args = arguments(&used, inputs, &mut temps)?;
            let refs: Vec<&Tensor> = args.iter().collect();
            self.elementwise_into(&[(rest, *dtype)], &refs, out_shape, &[ptr], real)?;
        }
        Ok(())
    }

    /// One piece over the inputs and the temporaries so far, as a new tensor.
    fn piece(
        &self,
        piece: &MapExpr,
        inputs: &[&Tensor],
        temps: &mut [Option<Tensor>],
        out_shape: &[usize],
        real: Real,
    ) -> Result<Tensor> {
        let (piece, used) = split::compact(piece);
        let args = arguments(&used, inputs, temps)?;
        let refs: Vec<&Tensor> = args.iter().collect();
        self.elementwise(&piece, &refs, out_shape, real.dtype(), real)
    }
}

/// The tensors numbered `used` (inputs, then temporaries); each temporary is read once, so it
/// is taken from `temps` and freed after its reader.
fn arguments(
    used: &[usize],
    inputs: &[&Tensor],
    temps: &mut [Option<Tensor>],
) -> Result<Vec<Tensor>> {
    used.iter()
        .map(|&k| match inputs.get(k) {
            Some(t) => Ok((*t).clone()),
            None => temps
                .get_mut(k - inputs.len())
                .and_then(Option::take)
                .ok_or_else(|| crate::check::shape_err("map", "a piece read twice")),
        })
        .collect()
}
