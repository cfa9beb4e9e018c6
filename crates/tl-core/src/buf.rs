//! The elements of a host tensor, shared rather than copied. A tensor read from a file, given
//! from Python or computed on the CPU is handed from the checker to the planner to the
//! engine and back out again; each hand-over clones the tensor, and a clone of a [`Buf`]
//! shares its elements. A buffer may also hold memory lent by another owner (a NumPy array,
//! kept alive for as long as the buffer lives), so a gigabyte given from Python is never
//! copied on its way in or out.

use std::any::Any;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Shared, immutable elements: a vector of its own, or memory lent by another owner.
pub struct Buf<T>(Arc<Inner<T>>);

enum Inner<T> {
    Owned(Vec<T>),
    Lent(Lent<T>),
}

/// Memory another owner keeps alive; `owner` is dropped with the last clone.
struct Lent<T> {
    ptr: *const T,
    len: usize,
    owner: Box<dyn Any + Send + Sync>,
}

// SAFETY: the lent memory is only read (a `Buf` hands out shared slices only) and the owner
// that keeps it alive is itself `Send + Sync`; the elements are `Send + Sync` when `T` is.
unsafe impl<T: Sync> Send for Lent<T> {}
unsafe impl<T: Sync> Sync for Lent<T> {}

impl<T> Buf<T> {
    /// Elements lent by `owner`: `len` values of `T` from `ptr`.
    ///
    /// # Safety
    /// `ptr` must point to `len` initialised, properly aligned values of `T` that stay valid
    /// and unchanged for as long as `owner` lives (the buffer drops `owner` last).
    pub unsafe fn lent(ptr: *const T, len: usize, owner: Box<dyn Any + Send + Sync>) -> Self {
        Buf(Arc::new(Inner::Lent(Lent { ptr, len, owner })))
    }

    /// The owner of lent elements (`None` for elements of the buffer's own).
    pub fn owner(&self) -> Option<&(dyn Any + Send + Sync)> {
        match &*self.0 {
            Inner::Owned(_) => None,
            Inner::Lent(l) => Some(&*l.owner),
        }
    }
}

impl<T: Clone> Buf<T> {
    /// The elements as a vector: moved out when this is their only holder, else copied.
    pub fn into_vec(self) -> Vec<T> {
        match Arc::try_unwrap(self.0) {
            Ok(Inner::Owned(v)) => v,
            Ok(Inner::Lent(l)) => slice_of(&l).to_vec(),
            Err(shared) => shared.as_slice().to_vec(),
        }
    }
}

fn slice_of<T>(l: &Lent<T>) -> &[T] {
    if l.len == 0 {
        return &[];
    }
    // SAFETY: `Buf::lent`'s contract: `len` valid values at `ptr` while the owner lives.
    unsafe { std::slice::from_raw_parts(l.ptr, l.len) }
}

impl<T> Inner<T> {
    fn as_slice(&self) -> &[T] {
        match self {
            Inner::Owned(v) => v,
            Inner::Lent(l) => slice_of(l),
        }
    }
}

impl<T> Deref for Buf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.0.as_slice()
    }
}

impl<T> Clone for Buf<T> {
    fn clone(&self) -> Self {
        Buf(self.0.clone())
    }
}

impl<T> Default for Buf<T> {
    fn default() -> Self {
        Buf::from(Vec::new())
    }
}

impl<T> From<Vec<T>> for Buf<T> {
    fn from(v: Vec<T>) -> Self {
        Buf(Arc::new(Inner::Owned(v)))
    }
}

impl<T> FromIterator<T> for Buf<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Buf::from(iter.into_iter().collect::<Vec<T>>())
    }
}

impl<T: Send> rayon::iter::FromParallelIterator<T> for Buf<T> {
    fn from_par_iter<I: rayon::iter::IntoParallelIterator<Item = T>>(iter: I) -> Self {
        Buf::from(<Vec<T> as rayon::iter::FromParallelIterator<T>>::from_par_iter(iter))
    }
}

impl<T: PartialEq> PartialEq for Buf<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: fmt::Debug> fmt::Debug for Buf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_and_a_sole_holder_moves_out() {
        let a = Buf::from(vec![1.0f32, 2.0, 3.0]);
        let b = a.clone();
        assert_eq!(a.as_ptr(), b.as_ptr());
        let copied = b.into_vec();
        assert_ne!(copied.as_ptr(), a.as_ptr(), "a shared buffer is copied out");
        let p = a.as_ptr();
        let moved = a.into_vec();
        assert_eq!(moved.as_ptr(), p, "a sole holder moves its vector out");
    }

    #[test]
    fn lent_memory_lives_as_long_as_its_owner() {
        let owner = Arc::new(vec![4i64, 5, 6]);
        let ptr = owner.as_ptr();
        // SAFETY: the vector behind `ptr` is kept alive by the owner handed over.
        let lent = unsafe { Buf::lent(ptr, 3, Box::new(owner.clone())) };
        drop(owner);
        let copy = lent.clone();
        assert_eq!(*copy, [4, 5, 6]);
        assert!(lent.owner().is_some());
        assert_eq!(lent.into_vec(), vec![4, 5, 6]);
        let empty: Buf<f64> = unsafe { Buf::lent(std::ptr::null(), 0, Box::new(())) };
        assert!(empty.is_empty());
    }
}
