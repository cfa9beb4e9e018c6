//! Dense transitive closure by repeated squaring (see `tl_plan::closure`): `R ← R ∨ R·R`
//! until nothing changes, with `R` held as a Boolean matrix so the backend can multiply on its
//! fastest path (f16 tensor cores on CUDA; counts of paths are exact there).

use crate::engine::{Engine, Value};
use crate::error::RunError;
use tl_backend::Calls;
use tl_backend::{BinaryFn, DType, MapExpr, UnaryFn};
use tl_plan::closure::Closure;

/// `step(Input(0) + Input(1))`: the OR of a path count and a 0/1 matrix.
fn or_step() -> MapExpr {
    MapExpr::Unary(
        UnaryFn::Step,
        Box::new(MapExpr::Binary(
            BinaryFn::Add,
            Box::new(MapExpr::Input(0)),
            Box::new(MapExpr::Input(1)),
        )),
    )
}

impl Engine<'_> {
    /// Computes the closed relation of `c` and stores it (in the element type the semi-naive
    /// path would give it).
    pub(crate) fn square_closure(&mut self, c: Closure) -> Result<(), RunError> {
        let span = self.program.tensors[c.head].span;
        let be = self.backend;
        let err = |e| RunError::backend(e, span);
        let base = self.dense(c.base, span)?;
        let shape = base.shape().to_vec();
        let step = MapExpr::Unary(UnaryFn::Step, Box::new(MapExpr::Input(0)));
        let mut r = be.map(&step, &[&base], &shape, DType::Bool).map_err(err)?;
        loop {
            let paths = be
                .contract(&r, &[0, 1], &r, &[1, 2], &[0, 2])
                .map_err(err)?;
            let next = be
                .map(&or_step(), &[&paths, &r], &shape, DType::Bool)
                .map_err(err)?;
            let sub = MapExpr::Binary(
                BinaryFn::Sub,
                Box::new(MapExpr::Input(0)),
                Box::new(MapExpr::Input(1)),
            );
            let grown = be
                .map(&sub, &[&next, &r], &shape, DType::F32)
                .map_err(err)?;
            let changed = self.max_abs(&grown, span)? > 0.0;
            r = next;
            if !changed {
                break;
            }
        }
        let value = be.cast(&r, self.dtype()).map_err(err)?;
        self.values[c.head] = Some(Value::Dense(value));
        Ok(())
    }
}
