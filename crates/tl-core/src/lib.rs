//! What every phase of TensorLogic shares, with no compute behind it: element types
//! ([`DType`]), host tensors and the memory behind them ([`HostTensor`], [`Buf`]), layouts
//! and the tensor handle a backend fills ([`Layout`], [`Tensor`]), and the closed table of
//! elementwise operations with their symbolic derivatives ([`ops`], [`grad_expr`]). Checking
//! and planning depend on this crate instead of a backend, so they never compile one.

#![deny(missing_docs)]
// Library code reports failures as errors; only tests may unwrap.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod buf;
pub mod compare;
pub mod dtype;
pub mod functions;
pub mod grad_expr;
pub mod host;
pub mod math;
pub mod ops;
pub mod random;
pub mod tensor;

pub use buf::Buf;
pub use compare::Compare;
pub use dtype::DType;
pub use host::{HostData, HostTensor};
pub use ops::{BinaryFn, MapExpr, NormFn, ReduceOp, UnaryFn};
pub use tensor::{Layout, Storage, Tensor};
