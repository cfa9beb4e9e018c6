//! The numeric building blocks the elementwise functions are made of, in the forms each
//! engine needs: a float64 reference (`erf`), branch-free f32/f64 versions the CPU's loops
//! vectorise (`exp_f32`, `exp_f64`, `tanh_f32`), and one fit of the complementary error
//! function whose coefficients serve both the CPU and the CUDA source ([`ERFC_FIT`]).
//! The functions themselves are rows of [`crate::functions`].

/// The coefficients of `erfc(z) = t·exp(-z² + P(t))`, `t = 1/(1 + z/2)`, `P(t) = Σ c_k t^k`
/// (a Chebyshev fit with fractional error below 1.2e-7 for every z ≥ 0). The CPU evaluates
/// it in f64 ([`erfc_fit`]), the GPU in f32 ([`erfc_fit_c`]).
pub const ERFC_FIT: [f64; 10] = [
    -1.265_512_23,
    1.000_023_68,
    0.374_091_96,
    0.096_784_18,
    -0.186_288_06,
    0.278_868_07,
    -1.135_203_98,
    1.488_515_87,
    -0.822_152_23,
    0.170_872_77,
];

/// 1/√(2π), the standard normal density at 0.
pub const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Error function to about 1e-15 (the float64 reference): the Maclaurin series below 2.5,
/// the continued fraction of erfc above.
pub fn erf(x: f64) -> f64 {
    if x.abs() < 2.5 {
        // erf x = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
        let mut sum: f64 = 0.0;
        let mut term = x;
        let x2 = x * x;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs().max(1e-300) || n < 3.0 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x2 / n;
            if n > 200.0 {
                break;
            }
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else {
        let erfc = erfc_continued(x.abs());
        (1.0 - erfc).copysign(x)
    }
}

/// Complementary error function to about 1e-15 relative on the whole line (the float64
/// reference): `1 - erf` where that does not cancel, the continued fraction where it would.
pub fn erfc(x: f64) -> f64 {
    if x >= 2.5 {
        erfc_continued(x)
    } else if x <= -2.5 {
        2.0 - erfc_continued(-x)
    } else {
        1.0 - erf(x)
    }
}

/// `erfc x` for x ≥ 2.5 by Lentz's continued fraction, which converges fast there.
fn erfc_continued(x: f64) -> f64 {
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for k in 1..200 {
        let a = k as f64 / 2.0;
        d = 1.0 / (x + a * d);
        c = x + a / c;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / f / std::f64::consts::PI.sqrt()
}

/// `erfc x` from [`ERFC_FIT`], evaluated in f64 (relative error below 1.2e-7 on the whole
/// line, and no cancellation where `1 - erf` would lose it), branch-free but for the sign.
#[inline(always)]
pub fn erfc_fit(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = ERFC_FIT[9];
    for &c in ERFC_FIT[..9].iter().rev() {
        p = p * t + c;
    }
    let r = t * exp_f64(p - z * z);
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// The standard normal distribution at `x` in f32: (Φ(x), e^(-x²/2)), for GELU and its
/// derivative. Φ(x) = erfc(-x/√2)/2 from [`ERFC_FIT`], whose factor e^(-z²) is taken as
/// e^(-x²/2) with x² split exactly into two floats (`hi + lo`, Dekker's product): the
/// exponent's argument is never rounded, so Φ keeps about 1e-6 relative precision far into
/// the left tail, where a rounded z² would lose |z²|·2^-24. Branch-free, so loops vectorise.
#[inline(always)]
pub fn normal_f32(x: f32) -> (f32, f32) {
    let z = -x * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z.abs());
    let mut p = ERFC_FIT[9] as f32;
    for &c in ERFC_FIT[..9].iter().rev() {
        p = p * t + c as f32;
    }
    // x² = hi + lo exactly (Dekker's product: x split into halves of 12 bits, every partial
    // product exact), with plain multiplications so that loops vectorise on any x86-64.
    let hi = x * x;
    let split = 4097.0 * x;
    let xh = split - (split - x);
    let xl = x - xh;
    let lo = ((xh * xh - hi) + 2.0 * xh * xl) + xl * xl;
    let e = exp_f32(-0.5 * hi);
    let r = t * e * exp_f32(p - 0.5 * lo);
    let cdf = if z >= 0.0 { 0.5 * r } else { 1.0 - 0.5 * r };
    (cdf, e)
}

/// The CUDA C of `tl_erfc(float)`: [`ERFC_FIT`] in single precision with the hardware's
/// reciprocal and exponential (on MiniLM's bias + GELU pass this took a call from 166 to
/// 108 µs against the library `erfcf`). In single precision the fit stays within about 1e-6
/// relative for |x| < 3 and 2e-5 out to where erfc underflows. In the double dialect the
/// library's `erfc` is used instead.
pub fn erfc_fit_c(double: bool) -> String {
    if double {
        return "__device__ __forceinline__ double tl_erfc(double x) { return erfc(x); }\n".into();
    }
    let mut poly = format!("{:?}f", ERFC_FIT[9] as f32);
    for &c in ERFC_FIT[..9].iter().rev() {
        poly = format!("{:?}f + t * ({poly})", c as f32);
    }
    format!(
        "__device__ __forceinline__ float tl_erfc(float x) {{\n  const float z = fabsf(x);\n  \
         const float t = __fdividef(1.0f, 1.0f + 0.5f * z);\n  const float p = {poly};\n  \
         const float r = t * __expf(fmaf(-z, z, p));\n  return x >= 0.0f ? r : 2.0f - r;\n}}\n"
    )
}

/// `e^x` for f32 within 2 ulp: x = n·ln2 + r with |r| ≤ ln2/2, a degree-7 polynomial for
/// e^r (Cephes' minimax coefficients) and 2^n put into the exponent bits. Results below
/// the smallest normal flush to 0. Branch-free, so loops over it vectorise.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const HI: f32 = 88.722_83;
    const LO: f32 = -87.336_55;
    let xc = x.clamp(LO, HI);
    // Round x·log2(e) to nearest with the 1.5·2^23 trick (no rounding instruction needed).
    const MAGIC: f32 = 12_582_912.0;
    let shifted = xc * std::f32::consts::LOG2_E + MAGIC;
    let n = shifted - MAGIC;
    let r = xc - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p = ((((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
        * r
        + 1.666_666_5e-1)
        * r
        + 0.5)
        * r
        * r)
        + r
        + 1.0;
    // 2^n as two factors so n = 128 (x just below the overflow bound) stays representable.
    // n as an integer from the bits of `shifted` (MAGIC + n, exactly): integer operations
    // only, where a float-to-integer cast would keep the loop from vectorising.
    let ni = shifted.to_bits().wrapping_sub(MAGIC.to_bits()) as i32;
    let (n1, n2) = (ni >> 1, ni - (ni >> 1));
    let pow2 = |k: i32| f32::from_bits((k.wrapping_add(127) as u32) << 23);
    let y = p * pow2(n1) * pow2(n2);
    if x > HI {
        f32::INFINITY
    } else if x < LO {
        0.0
    } else {
        // NaN passes through the arithmetic above unchanged.
        y
    }
}

/// `e^x` for f64 to about 1e-15 relative, without a library call: x = n·ln2 + r with
/// |r| ≤ ln2/2, the Taylor polynomial of degree 11 for e^r, and 2^n put into the exponent bits
/// with integer arithmetic only. Branch-free, so loops over it vectorise.
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    const HI: f64 = 709.0;
    const LO: f64 = -708.0;
    let xc = x.clamp(LO, HI);
    // Round x·log2(e) to nearest with the 1.5·2^52 trick; the integer sits in the low bits.
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    let t = xc * std::f64::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let r = xc - n * 6.931_471_803_691_238e-1 - n * 1.908_214_929_270_587_7e-10;
    let mut p = 1.0 / 39_916_800.0;
    for k in [
        3_628_800.0,
        362_880.0,
        40_320.0,
        5_040.0,
        720.0,
        120.0,
        24.0,
        6.0,
        2.0,
        1.0,
        1.0,
    ] {
        p = p * r + 1.0 / k;
    }
    let ni = t.to_bits().wrapping_sub(MAGIC.to_bits());
    let y = p * f64::from_bits(ni.wrapping_add(1023) << 52);
    if x > HI {
        f64::INFINITY
    } else if x < LO {
        0.0
    } else {
        // NaN passes through the arithmetic above unchanged.
        y
    }
}

/// `tanh x` for f32 in f32: an odd minimax polynomial below |x| = 0.625 (Cephes' `tanhf`
/// coefficients), `1 - 2 / (e^2|x| + 1)` with the sign above, where nothing cancels.
/// Branch-free, so loops over it vectorise.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let near = x + x
        * z
        * ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_5e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328e-1);
    // Capped where tanh is 1 in f32; NaN passes (a comparison, not `min`, which drops it).
    let t = 2.0 * a;
    let e = exp_f32(if t > 40.0 { 40.0 } else { t });
    let far = (1.0 - 2.0 / (e + 1.0)).copysign(x);
    if a < 0.625 {
        near
    } else {
        far
    }
}

/// `a^b` with an exact path for small integer exponents (so `(-2)^2` is 4, as users
/// expect), in either float type.
#[inline]
pub fn integer_power_or_powf<T: PowFloat>(a: T, b: T) -> T {
    if b.is_small_integer() {
        a.powi_(b.to_i32())
    } else {
        a.powf_(b)
    }
}

/// The float types [`integer_power_or_powf`] works in.
pub trait PowFloat: Copy {
    /// Whether the value is an integer of magnitude at most 64.
    fn is_small_integer(self) -> bool;
    /// The value as an integer (only called when [`PowFloat::is_small_integer`]).
    fn to_i32(self) -> i32;
    /// `self^n` by repeated multiplication.
    fn powi_(self, n: i32) -> Self;
    /// `self^b` through logarithms.
    fn powf_(self, b: Self) -> Self;
}

macro_rules! pow_float {
    ($t:ty) => {
        impl PowFloat for $t {
            #[inline]
            fn is_small_integer(self) -> bool {
                self.fract() == 0.0 && self.abs() <= 64.0
            }
            #[inline]
            fn to_i32(self) -> i32 {
                self as i32
            }
            #[inline]
            fn powi_(self, n: i32) -> Self {
                self.powi(n)
            }
            #[inline]
            fn powf_(self, b: Self) -> Self {
                self.powf(b)
            }
        }
    };
}
pow_float!(f32);
pow_float!(f64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0f64, 0.0f64),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (3.0, 0.999_977_909_503_001_4),
            (-2.0, -0.995_322_265_018_952_7),
        ] {
            assert!((erf(x) - want).abs() < 1e-14, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn erfc_fit_is_accurate_everywhere() {
        let mut x = -6.0f64;
        while x <= 9.0 {
            let want = erfc(x);
            let got = erfc_fit(x);
            assert!(
                (got - want).abs() <= 1.3e-7 * want.abs(),
                "erfc({x}) = {got}, want {want}"
            );
            x += 0.001_7;
        }
    }

    #[test]
    fn erfc_fit_c_holds_the_same_coefficients() {
        let src = erfc_fit_c(false);
        for c in ERFC_FIT {
            assert!(src.contains(&format!("{:?}f", c as f32)), "{c} missing");
        }
        assert!(erfc_fit_c(true).contains("erfc(x)"));
    }

    #[test]
    fn exp_f32_is_within_two_ulp() {
        let mut x = -87.0f32;
        while x < 88.5 {
            let want = f64::from(x).exp();
            let got = f64::from(exp_f32(x));
            assert!(
                (got - want).abs() <= 2.5e-7 * want,
                "exp({x}) = {got}, want {want}"
            );
            x += 0.0137;
        }
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert_eq!(exp_f32(-200.0), 0.0);
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(0.0), 1.0);
    }

    #[test]
    fn exp_f64_is_accurate_everywhere() {
        let mut x = -708.0f64;
        while x < 709.0 {
            let want = x.exp();
            assert!(
                (exp_f64(x) - want).abs() <= 1e-14 * want,
                "exp({x}) = {}, want {want}",
                exp_f64(x)
            );
            x += 0.377;
        }
        assert_eq!(exp_f64(710.0), f64::INFINITY);
        assert_eq!(exp_f64(-800.0), 0.0);
        assert!(exp_f64(f64::NAN).is_nan());
        assert_eq!(exp_f64(0.0), 1.0);
    }

    #[test]
    fn tanh_f32_matches_reference() {
        let mut x = -12.0f64;
        while x <= 12.0 {
            let xf = x as f32;
            let want = f64::from(xf).tanh();
            let got = f64::from(tanh_f32(xf));
            assert!(
                (got - want).abs() <= 2e-7 * want.abs() + 1e-30,
                "tanh({x}) = {got}, want {want}"
            );
            x += 0.000_97;
        }
        for x in [1e-30f32, -3e-9, 2e-5, -9e-5, 1e-4, 0.0] {
            let want = f64::from(x).tanh();
            assert!((f64::from(tanh_f32(x)) - want).abs() <= 2e-7 * want.abs());
        }
        // A million more points, dense near the switch at 0.625.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for k in 0..1_000_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let u = (state >> 40) as f64 / (1u64 << 24) as f64;
            let x = if k % 2 == 0 {
                20.0 * u - 10.0
            } else {
                0.5 + 0.25 * u
            } as f32;
            let want = f64::from(x).tanh();
            let got = f64::from(tanh_f32(x));
            assert!(
                (got - want).abs() <= 2e-7 * want.abs(),
                "tanh({x}) = {got}, want {want}"
            );
        }
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert!(tanh_f32(f32::NAN).is_nan());
    }

    #[test]
    fn small_integer_powers_are_exact() {
        assert_eq!(integer_power_or_powf(-2.0f64, 2.0), 4.0);
        assert_eq!(integer_power_or_powf(-2.0f32, 3.0), -8.0);
        assert_eq!(integer_power_or_powf(2.0f64, -1.0), 0.5);
        assert!((integer_power_or_powf(2.0f64, 0.5) - 2f64.sqrt()).abs() < 1e-15);
        assert!(integer_power_or_powf(-2.0f64, 0.5).is_nan());
    }
}
