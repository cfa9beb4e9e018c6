//! Dropout's generator, counter-based: whether element `i` of a mask is kept is a pure
//! function of a stream (the run's seed, the statement, the mask), a counter (the training
//! step) and `i`. So masks need no sequential state: the CPU and a GPU draw the same ones in
//! any order, and a recorded training step draws fresh masks at every replay by reading the
//! step from a device scalar. The CUDA spelling of the same function is [`CUDA`], beside it.

/// The golden-ratio increment of SplitMix64.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's finaliser: a bijection of 64 bits in which every input bit reaches every
/// output bit.
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The key of draw `counter` of `stream`, computed once per mask.
pub const fn mask_key(stream: u64, counter: u64) -> u64 {
    mix64(stream ^ mix64(counter.wrapping_add(GOLDEN)))
}

/// The uniform number in [0, 1) at element `i` of the mask with key `key`: SplitMix64's
/// `i`-th output from state `key`, its top 53 bits.
pub fn uniform_at(key: u64, i: u64) -> f64 {
    let bits = mix64(key.wrapping_add(i.wrapping_add(1).wrapping_mul(GOLDEN)));
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Whether element `i` of the mask with key `key` is kept at dropout rate `p`.
pub fn kept(key: u64, i: u64, p: f64) -> bool {
    uniform_at(key, i) >= p
}

/// The same functions in CUDA C (`tl_mask_key`, `tl_kept`), for kernels that draw masks.
pub const CUDA: &str = r#"
__device__ __forceinline__ unsigned long long tl_mix64(unsigned long long z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
__device__ __forceinline__ unsigned long long tl_mask_key(unsigned long long stream, unsigned long long counter) {
  return tl_mix64(stream ^ tl_mix64(counter + 0x9E3779B97F4A7C15ULL));
}
__device__ __forceinline__ bool tl_kept(unsigned long long key, unsigned long long i, double p) {
  const unsigned long long bits = tl_mix64(key + (i + 1ULL) * 0x9E3779B97F4A7C15ULL);
  return (double)(bits >> 11) * (1.0 / 9007199254740992.0) >= p;
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_the_expected_share_and_differ_by_counter_and_stream() {
        let p = 0.3;
        let n = 200_000u64;
        let key = mask_key(42, 7);
        let share = (0..n).filter(|&i| kept(key, i, p)).count() as f64 / n as f64;
        // 1 - p within five standard deviations.
        let sd = (p * (1.0 - p) / n as f64).sqrt();
        assert!((share - (1.0 - p)).abs() < 5.0 * sd, "{share}");
        let a: Vec<bool> = (0..64).map(|i| kept(key, i, 0.5)).collect();
        let b: Vec<bool> = (0..64).map(|i| kept(mask_key(42, 8), i, 0.5)).collect();
        let c: Vec<bool> = (0..64).map(|i| kept(mask_key(43, 7), i, 0.5)).collect();
        assert!(a != b && a != c && b != c);
        // Neighbouring elements are not correlated.
        let same = (0..n)
            .filter(|&i| kept(key, i, 0.5) == kept(key, i + 1, 0.5))
            .count() as f64
            / n as f64;
        assert!((same - 0.5).abs() < 0.01, "{same}");
    }

    #[test]
    fn rate_zero_keeps_everything() {
        let key = mask_key(1, 1);
        assert!((0..10_000).all(|i| kept(key, i, 0.0)));
        assert!((0..10_000).all(|i| uniform_at(key, i) < 1.0));
    }
}
