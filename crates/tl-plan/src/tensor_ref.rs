//! What a tensor id in a plan names. Plans read more than the program's tensors: with `n`
//! tensors, ids `n..2n` are the semi-naive deltas of tensors `0..n` (the last round's new
//! tuples), and ids from `2n` on are slots, the tensors a layer row plan or a loop step plan
//! reads (one row of a tensor, or a tensor at another step), whose shapes are
//! [`crate::layers::Layers::slot_shapes`]. [`TensorRef`] decodes an id into one of the three,
//! so code that indexes by id says which it means instead of computing with `n`.

use tl_check::TensorId;

/// A tensor id of a plan, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TensorRef {
    /// A tensor of the program.
    Tensor(TensorId),
    /// The semi-naive delta of a tensor of the program.
    Delta(TensorId),
    /// Slot `k`, shaped `slot_shapes[k]`.
    Slot(usize),
}

impl TensorRef {
    /// The meaning of `id` in a program of `tensors` tensors.
    pub fn of(id: TensorId, tensors: usize) -> TensorRef {
        match id.checked_sub(tensors) {
            None => TensorRef::Tensor(id),
            Some(d) if d < tensors => TensorRef::Delta(d),
            Some(_) => TensorRef::Slot(id - 2 * tensors),
        }
    }

    /// The id it has in a program of `tensors` tensors.
    pub fn id(self, tensors: usize) -> TensorId {
        match self {
            TensorRef::Tensor(t) => t,
            TensorRef::Delta(t) => tensors + t,
            TensorRef::Slot(k) => 2 * tensors + k,
        }
    }

    /// The program's tensor whose values (or delta) it holds; `None` for a slot.
    pub fn tensor(self) -> Option<TensorId> {
        match self {
            TensorRef::Tensor(t) | TensorRef::Delta(t) => Some(t),
            TensorRef::Slot(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_decode_into_tensors_deltas_and_slots_and_back() {
        let n = 3;
        let decoded: Vec<TensorRef> = (0..8).map(|id| TensorRef::of(id, n)).collect();
        assert_eq!(
            decoded,
            [
                TensorRef::Tensor(0),
                TensorRef::Tensor(1),
                TensorRef::Tensor(2),
                TensorRef::Delta(0),
                TensorRef::Delta(1),
                TensorRef::Delta(2),
                TensorRef::Slot(0),
                TensorRef::Slot(1),
            ]
        );
        for (id, r) in decoded.iter().enumerate() {
            assert_eq!(r.id(n), id);
        }
        assert_eq!(TensorRef::Delta(2).tensor(), Some(2));
        assert_eq!(TensorRef::Slot(0).tensor(), None);
        // With no tensors every id is a slot.
        assert_eq!(TensorRef::of(4, 0), TensorRef::Slot(4));
    }
}
