//! Elementwise loops compiled for the machine's vector units, chosen at run time. The crate
//! targets baseline x86-64 (128-bit SSE2), so a loop over `exp` or `tanh` would use a quarter
//! of an AVX-512 unit; the same loop compiled again inside a function with AVX2 or AVX-512
//! enabled, and picked once the processor is known to have them, runs at the unit's width.
//! The functions themselves are branch-free and inlined into each copy (`tl_core::math`).

/// Applies `f` to every element of `b` in place, in the widest copy of the loop this
/// processor runs.
#[inline(always)]
pub(crate) fn each<T: Copy>(b: &mut [T], f: &impl Fn(T) -> T) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the processor has every feature the function is compiled for.
            unsafe { each_avx512(b, f) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            unsafe { each_avx2(b, f) };
            return;
        }
    }
    each_portable(b, f);
}

#[inline(always)]
fn each_portable<T: Copy>(b: &mut [T], f: &impl Fn(T) -> T) {
    for x in b.iter_mut() {
        *x = f(*x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn each_avx512<T: Copy>(b: &mut [T], f: &impl Fn(T) -> T) {
    each_portable(b, f);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn each_avx2<T: Copy>(b: &mut [T], f: &impl Fn(T) -> T) {
    each_portable(b, f);
}
