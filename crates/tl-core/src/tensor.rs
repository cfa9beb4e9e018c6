//! Device-agnostic tensor handles: a [`Layout`] (shape, strides, offset) over shared storage.
//!
//! Permutations and broadcasts only rewrite the layout; the bytes stay where they are.

use crate::dtype::DType;
use crate::host::HostData;
use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// Where and how a tensor's elements sit in its storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Extent of each axis.
    pub shape: Vec<usize>,
    /// Elements to step in storage per unit of each axis (0 for a broadcast axis).
    pub strides: Vec<usize>,
    /// Storage index of element `[0, 0, …]`.
    pub offset: usize,
}

impl Layout {
    /// The row-major layout of a fresh tensor of this shape.
    pub fn contiguous(shape: &[usize]) -> Self {
        let mut strides = vec![0; shape.len()];
        let mut acc = 1;
        for (s, &n) in strides.iter_mut().zip(shape).rev() {
            *s = acc;
            acc *= n;
        }
        Layout {
            shape: shape.to_vec(),
            strides,
            offset: 0,
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the layout is the plain row-major one (so storage can be read as a flat slice).
    pub fn is_contiguous(&self) -> bool {
        let c = Layout::contiguous(&self.shape);
        self.shape
            .iter()
            .zip(self.strides.iter().zip(&c.strides))
            .all(|(&n, (&s, &cs))| n <= 1 || s == cs)
    }

    /// The layout with axes reordered: axis `k` of the result is axis `perm[k]` of `self`.
    pub fn permuted(&self, perm: &[usize]) -> Layout {
        Layout {
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        }
    }
}

/// Storage owned by a non-host backend (e.g. a CUDA device buffer).
pub trait DeviceStorage: Send + Sync + fmt::Debug {
    /// For the owning backend to recover its concrete type.
    fn as_any(&self) -> &dyn Any;
}

/// The bytes behind a tensor.
#[derive(Clone, Debug)]
pub enum Storage {
    /// Host memory (the CPU backend's storage).
    Host(Arc<HostData>),
    /// Memory of another device.
    Device(Arc<dyn DeviceStorage>),
}

/// A tensor: a layout over storage, with its element type. Cheap to clone (storage is shared).
#[derive(Clone, Debug)]
pub struct Tensor {
    /// Shape, strides and offset.
    pub layout: Layout,
    /// Element type of the storage.
    pub dtype: DType,
    /// The elements.
    pub storage: Storage,
}

impl Tensor {
    /// Extent of each axis.
    pub fn shape(&self) -> &[usize] {
        &self.layout.shape
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.layout.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.layout.numel()
    }

    /// A view with axes reordered (no data moves).
    pub fn permuted(&self, perm: &[usize]) -> Tensor {
        Tensor {
            layout: self.layout.permuted(perm),
            dtype: self.dtype,
            storage: self.storage.clone(),
        }
    }

    /// A scalar seen as a tensor of `shape`, every element the scalar (strides 0, no data
    /// moves); `None` when `self` is not a scalar.
    pub fn broadcast_scalar(&self, shape: &[usize]) -> Option<Tensor> {
        if self.rank() != 0 {
            return None;
        }
        Some(Tensor {
            layout: Layout {
                shape: shape.to_vec(),
                strides: vec![0; shape.len()],
                offset: self.layout.offset,
            },
            dtype: self.dtype,
            storage: self.storage.clone(),
        })
    }

    /// A view with size-1 axes inserted so that axis `k` of `self` lands at `positions[k]` of a
    /// tensor of rank `rank`; the other axes have extent 1 (for broadcasting in `map`).
    pub fn expanded_to_rank(&self, positions: &[usize], rank: usize) -> Tensor {
        let mut shape = vec![1; rank];
        let mut strides = vec![0; rank];
        for (k, &p) in positions.iter().enumerate() {
            shape[p] = self.layout.shape[k];
            strides[p] = self.layout.strides[k];
        }
        Tensor {
            layout: Layout {
                shape,
                strides,
                offset: self.layout.offset,
            },
            dtype: self.dtype,
            storage: self.storage.clone(),
        }
    }

    /// A view of one position `index` along `axis`, with that axis removed (no data moves):
    /// one layer of a stack of per-layer tensors. `None` when `index` is outside the axis.
    pub fn selected(&self, axis: usize, index: usize) -> Option<Tensor> {
        if axis >= self.rank() || index >= self.layout.shape[axis] {
            return None;
        }
        let mut layout = self.layout.clone();
        layout.offset += index * layout.strides[axis];
        layout.shape.remove(axis);
        layout.strides.remove(axis);
        Some(Tensor {
            layout,
            dtype: self.dtype,
            storage: self.storage.clone(),
        })
    }

    /// A view of a contiguous tensor with a new shape of the same element count.
    pub fn reshaped(&self, shape: &[usize]) -> Option<Tensor> {
        if !self.layout.is_contiguous() || shape.iter().product::<usize>() != self.numel() {
            return None;
        }
        let mut layout = Layout::contiguous(shape);
        layout.offset = self.layout.offset;
        Some(Tensor {
            layout,
            dtype: self.dtype,
            storage: self.storage.clone(),
        })
    }
}
