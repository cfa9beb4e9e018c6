//! The elementwise functions of [`crate::ops`] in the compute types: f64 defers to the
//! reference definitions, f32 has its own versions (same semantics, f32 speed), including an
//! f32-accurate error function for `gelu`.

use super::storage::Float;
use crate::ops::{BinaryFn, UnaryFn};

/// Elementwise functions in one compute type.
pub(crate) trait MathFloat: Float {
    /// `e^x` in a form the compiler can vectorise over a slice (no library call for f32).
    fn fast_exp(x: Self) -> Self;
    /// The logistic function built on [`MathFloat::fast_exp`], without branches.
    #[inline(always)]
    fn fast_sigmoid(x: Self) -> Self {
        let ax = if x < Self::ZERO { -x } else { x };
        let e = Self::fast_exp(-ax);
        let s = Self::from_f64(1.0) / (Self::from_f64(1.0) + e);
        if x >= Self::ZERO {
            s
        } else {
            e * s
        }
    }
    /// `tanh x` in a form the compiler can vectorise over a slice.
    fn fast_tanh(x: Self) -> Self;
    /// The exact `gelu x` in a form the compiler can vectorise over a slice.
    fn fast_gelu(x: Self) -> Self;
    /// One unary function at `x`.
    fn unary(f: UnaryFn, x: Self) -> Self;
    /// One binary function at `(a, b)`.
    fn binary(f: BinaryFn, a: Self, b: Self) -> Self;
}

impl MathFloat for f64 {
    #[inline(always)]
    fn fast_exp(x: f64) -> f64 {
        x.exp()
    }
    #[inline(always)]
    fn fast_tanh(x: f64) -> f64 {
        x.tanh()
    }
    #[inline(always)]
    fn fast_gelu(x: f64) -> f64 {
        UnaryFn::Gelu.eval(x)
    }
    #[inline]
    fn unary(f: UnaryFn, x: f64) -> f64 {
        f.eval(x)
    }
    #[inline]
    fn binary(f: BinaryFn, a: f64, b: f64) -> f64 {
        f.eval(a, b)
    }
}

impl MathFloat for f32 {
    #[inline(always)]
    fn fast_exp(x: f32) -> f32 {
        exp_f32(x)
    }
    #[inline(always)]
    fn fast_tanh(x: f32) -> f32 {
        tanh_f32(x)
    }
    #[inline(always)]
    fn fast_gelu(x: f32) -> f32 {
        gelu_f32(x)
    }
    #[inline]
    fn unary(f: UnaryFn, x: f32) -> f32 {
        match f {
            UnaryFn::Neg => -x,
            UnaryFn::Recip => 1.0 / x,
            UnaryFn::Step => f32::from(u8::from(x > 0.0)),
            UnaryFn::Sigmoid => f32::fast_sigmoid(x),
            UnaryFn::Relu => x.max(0.0),
            UnaryFn::Gelu => gelu_f32(x),
            UnaryFn::Tanh => tanh_f32(x),
            UnaryFn::Exp => exp_f32(x),
            UnaryFn::Log => x.ln(),
            UnaryFn::Sqrt => x.sqrt(),
            UnaryFn::Abs => x.abs(),
            UnaryFn::Sin => x.sin(),
            UnaryFn::Cos => x.cos(),
            UnaryFn::GeluGrad => UnaryFn::GeluGrad.eval(f64::from(x)) as f32,
        }
    }

    #[inline]
    fn binary(f: BinaryFn, a: f32, b: f32) -> f32 {
        match f {
            BinaryFn::Add => a + b,
            BinaryFn::Sub => a - b,
            BinaryFn::Mul => a * b,
            BinaryFn::Div => a / b,
            BinaryFn::Pow => pow_f32(a, b),
            BinaryFn::Max => a.max(b),
            BinaryFn::Min => a.min(b),
            BinaryFn::SigmoidT => {
                if b == 0.0 {
                    f32::from(u8::from(a > 0.0))
                } else {
                    sigmoid_f32(a / b)
                }
            }
            BinaryFn::SigmoidTGradA | BinaryFn::SigmoidTGradT => {
                f.eval(f64::from(a), f64::from(b)) as f32
            }
        }
    }
}

/// `e^x` for f32 within 2 ulp: x = n·ln2 + r with |r| ≤ ln2/2, a degree-7 polynomial for
/// e^r (Cephes' minimax coefficients) and 2^n put into the exponent bits. Results below
/// the smallest normal flush to 0. Branch-free, so loops over it vectorise.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const HI: f32 = 88.722_83;
    const LO: f32 = -87.336_55;
    let xc = x.clamp(LO, HI);
    // Round x·log2(e) to nearest with the 1.5·2^23 trick (no rounding instruction needed).
    const MAGIC: f32 = 12_582_912.0;
    let n = (xc * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
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
    let ni = n as i32;
    let (n1, n2) = (ni >> 1, ni - (ni >> 1));
    let pow2 = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
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
pub(crate) fn exp_f64(x: f64) -> f64 {
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

/// `tanh x` for f32, computed in f64 as (e^2x − 1)/(e^2x + 1), with x − x³/3 near 0 where
/// that form would cancel. Branch-free.
#[inline(always)]
pub(crate) fn tanh_f32(x: f32) -> f32 {
    let xd = f64::from(x);
    let e = exp_f64((2.0 * xd).clamp(-40.0, 40.0));
    let far = (e - 1.0) / (e + 1.0);
    let near = xd - xd * xd * xd / 3.0;
    (if xd.abs() < 1e-4 { near } else { far }) as f32
}

/// The logistic function without overflow for large |x|.
#[inline]
pub(crate) fn sigmoid_f32(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `a^b` with the exact small-integer-exponent path of [`crate::ops::pow`].
#[inline]
pub(crate) fn pow_f32(a: f32, b: f32) -> f32 {
    if b.fract() == 0.0 && b.abs() <= 64.0 {
        a.powi(b as i32)
    } else {
        a.powf(b)
    }
}

/// Complementary error function with relative error below 1.1e-7 over the whole line
/// (Chebyshev-fitted exponent form), evaluated in f64 so f32 callers lose nothing more.
#[inline(always)]
pub(crate) fn erfc_approx(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * exp_f64(poly);
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Error function accurate to f32 rounding: a Taylor series near 0 (where `1 - erfc` would
/// cancel), the complementary form elsewhere.
#[inline]
#[allow(dead_code)] // Only `gelu` needs it today, through `erfc_f32`; kept tested for `erf` users.
pub(crate) fn erf_f32(x: f32) -> f32 {
    let xd = f64::from(x);
    if xd.abs() < 0.5 {
        // erf x = 2/sqrt(pi) * (x - x^3/3 + x^5/10 - x^7/42 + x^9/216 - x^11/1320 + x^13/9360)
        let x2 = xd * xd;
        let s = 1.0
            + x2 * (-1.0 / 3.0
                + x2 * (1.0 / 10.0
                    + x2 * (-1.0 / 42.0
                        + x2 * (1.0 / 216.0 + x2 * (-1.0 / 1320.0 + x2 * (1.0 / 9360.0))))));
        (std::f64::consts::FRAC_2_SQRT_PI * xd * s) as f32
    } else {
        let r = erfc_approx(xd.abs());
        (1.0 - r).copysign(xd) as f32
    }
}

/// Exact gelu, x·Φ(x), with Φ(x) = erfc(-x/√2)/2 so large negative x keeps relative accuracy
/// (the argument is scaled in f64: its rounding would be amplified by erfc's steep tail).
#[inline(always)]
pub(crate) fn gelu_f32(x: f32) -> f32 {
    let xd = f64::from(x);
    (0.5 * xd * erfc_approx(-xd * std::f64::consts::FRAC_1_SQRT_2)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::erf;

    #[test]
    fn erf_f32_is_accurate_everywhere() {
        let mut x = -6.0f64;
        while x <= 6.0 {
            let want = erf(x);
            let got = f64::from(erf_f32(x as f32));
            let want_at = erf(f64::from(x as f32));
            assert!(
                (got - want_at).abs() <= 4e-7 * want.abs().max(1e-30),
                "erf({x}) = {got}, want {want_at}"
            );
            x += 0.001_7;
        }
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
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert!(tanh_f32(f32::NAN).is_nan());
    }

    #[test]
    fn gelu_f32_matches_reference() {
        // Beyond -5 the f64 reference itself cancels (1 + erf); check a known value there.
        let far = f64::from(gelu_f32(-9.0));
        assert!(
            (far + 1.015_729_565_358_458e-18).abs() < 1e-6 * 1.015_729_565_358_458e-18,
            "gelu(-9) = {far}"
        );
        let mut x = -5.0f64;
        while x <= 9.0 {
            let xf = x as f32;
            let want = UnaryFn::Gelu.eval(f64::from(xf));
            let got = f64::from(gelu_f32(xf));
            assert!(
                (got - want).abs() <= 1e-6 * want.abs() + 1e-30,
                "gelu({x}) = {got}, want {want}"
            );
            x += 0.003_1;
        }
    }

    #[test]
    fn f32_functions_match_reference() {
        for f in [
            UnaryFn::Neg,
            UnaryFn::Recip,
            UnaryFn::Step,
            UnaryFn::Sigmoid,
            UnaryFn::Relu,
            UnaryFn::Tanh,
            UnaryFn::Exp,
            UnaryFn::Log,
            UnaryFn::Sqrt,
            UnaryFn::Abs,
            UnaryFn::Sin,
            UnaryFn::Cos,
        ] {
            for x in [0.3f32, 1.7, 2.9, -0.4, -3.3] {
                let want = f.eval(f64::from(x));
                let got = f64::from(f32::unary(f, x));
                if want.is_nan() {
                    assert!(got.is_nan(), "{f:?}({x})");
                } else {
                    assert!(
                        (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                        "{f:?}({x})"
                    );
                }
            }
        }
        for f in [
            BinaryFn::Add,
            BinaryFn::Sub,
            BinaryFn::Mul,
            BinaryFn::Div,
            BinaryFn::Pow,
            BinaryFn::Max,
            BinaryFn::Min,
            BinaryFn::SigmoidT,
        ] {
            for (a, b) in [(0.3f32, 1.5f32), (-2.0, 2.0), (1.7, 0.0), (2.5, -1.25)] {
                let want = f.eval(f64::from(a), f64::from(b));
                let got = f64::from(f32::binary(f, a, b));
                if want.is_infinite() {
                    assert_eq!(got, want, "{f:?}");
                    continue;
                }
                assert!((got - want).abs() <= 1e-6 * want.abs().max(1.0), "{f:?}");
            }
        }
    }
}
