//! Elementwise loops compiled for the machine's vector units, chosen at run time. The crate
//! targets baseline x86-64 (128-bit SSE2), so a loop over `exp` or `tanh` would use a quarter
//! of an AVX-512 unit; the same loop compiled again inside a function with AVX2 or AVX-512
//! enabled, and picked once the processor is known to have them, runs at the unit's width.
//! The functions themselves are branch-free and inlined into each copy (`tl_core::math`).

/// One operand of a pairwise loop: a block of values or one value for the whole block.
#[derive(Clone, Copy)]
pub(crate) enum Operand<'a, T> {
    /// One value per element.
    Values(&'a [T]),
    /// The same value for every element.
    Scalar(T),
}

/// Defines `$name` as the loop `$portable` (generic over `T: $bound`) run in the widest copy
/// this processor has.
macro_rules! widest {
    ($(#[$doc:meta])* $name:ident, $portable:ident, $bound:path, ($($arg:ident: $ty:ty),*)) => {
        $(#[$doc])*
        #[inline(always)]
        pub(crate) fn $name<T: $bound>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
                unsafe fn avx512<T: $bound>($($arg: $ty),*) {
                    $portable($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2<T: $bound>($($arg: $ty),*) {
                    $portable($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the processor has every feature the function is compiled for.
                    unsafe { avx512($($arg),*) };
                    return;
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: as above.
                    unsafe { avx2($($arg),*) };
                    return;
                }
            }
            $portable($($arg),*)
        }
    };
}

pub(crate) use widest;

widest!(
    /// Applies `f` to every element of `b` in place.
    each, each_portable, Copy, (b: &mut [T], f: &impl Fn(T) -> T)
);
widest!(
    /// Writes `f` of each element of `src` into `dst` (of the same length).
    each_from, each_from_portable, Copy, (dst: &mut [T], src: &[T], f: &impl Fn(T) -> T)
);
widest!(
    /// Writes `f` of each pair of elements of `a` and `b` into `dst`.
    pairs, pairs_portable, Copy, (dst: &mut [T], a: Operand<'_, T>, b: Operand<'_, T>, f: &impl Fn(T, T) -> T)
);

#[inline(always)]
fn each_portable<T: Copy>(b: &mut [T], f: &impl Fn(T) -> T) {
    for x in b.iter_mut() {
        *x = f(*x);
    }
}

#[inline(always)]
fn each_from_portable<T: Copy>(dst: &mut [T], src: &[T], f: &impl Fn(T) -> T) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f(s);
    }
}

#[inline(always)]
fn pairs_portable<T: Copy>(
    dst: &mut [T],
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    f: &impl Fn(T, T) -> T,
) {
    match (a, b) {
        (Operand::Values(x), Operand::Values(y)) => {
            for ((d, &p), &q) in dst.iter_mut().zip(x).zip(y) {
                *d = f(p, q);
            }
        }
        (Operand::Values(x), Operand::Scalar(c)) => {
            for (d, &p) in dst.iter_mut().zip(x) {
                *d = f(p, c);
            }
        }
        (Operand::Scalar(c), Operand::Values(y)) => {
            for (d, &q) in dst.iter_mut().zip(y) {
                *d = f(c, q);
            }
        }
        (Operand::Scalar(c), Operand::Scalar(e)) => dst.fill(f(c, e)),
    }
}
