//! The value of one tensor as the engine holds it: dense on the backend, sparse tuples, bits on
//! a device, or the rows of a layered recursion.

use crate::device_relation::DeviceRelation;
use std::sync::Arc;
use tl_backend::Tensor;
use tl_relation::Relation;

/// The value of one tensor.
#[derive(Clone, Debug)]
pub enum Value {
    /// A dense tensor on the backend.
    Dense(Tensor),
    /// A relation as sorted tuples (element indices).
    Sparse(Relation),
    /// A binary relation a device derived and holds as bits.
    Device(Arc<DeviceRelation>),
    /// A tensor of a layered recursion, kept as its rows along the layer axis (`None`: a row
    /// nothing wrote, all 0), as the row-by-row evaluation made them.
    Layers {
        /// The layer axis.
        axis: usize,
        /// Each row: the tensor without the layer axis.
        rows: Vec<Option<Tensor>>,
    },
}
