//! The elementwise functions, one table row each. A row says everything about its
//! function: the surface names the checker resolves, the float64 semantics every engine is
//! checked against, the f32 form the CPU evaluates (vectorisable where it matters), the
//! CUDA C expression spliced into generated kernels (with any device function it calls) and
//! the symbolic derivative reverse mode builds. Adding a function is adding a row.

use crate::grad_expr::{add, bin, c, mul, sub, un};
use crate::math::INV_SQRT_2PI;
use crate::math::{erfc, erfc_fit, exp_f32, exp_f64, integer_power_or_powf, tanh_f32};
use crate::ops::MapExpr;
use std::f64::consts::FRAC_1_SQRT_2;

/// Something that applies a one-argument function over its elements: the CPU's loops
/// implement it, and [`Compute::apply_unary`] hands each row's function to it statically, so
/// every function gets its own loop the compiler can vectorise.
pub trait Apply1<T> {
    /// What applying yields.
    type Out;
    /// Applies `f` to every element.
    fn apply<F: Fn(T) -> T>(self, f: F) -> Self::Out;
}

/// The two-argument counterpart of [`Apply1`].
pub trait Apply2<T> {
    /// What applying yields.
    type Out;
    /// Applies `f` to every pair of elements.
    fn apply<F: Fn(T, T) -> T>(self, f: F) -> Self::Out;
}

/// The float types the engines compute in (f32 and f64): each picks its column of the table.
pub trait Compute: Copy + 'static {
    /// One unary function at `x`.
    fn unary(f: UnaryFn, x: Self) -> Self;
    /// One binary function at `(a, b)`.
    fn binary(f: BinaryFn, a: Self, b: Self) -> Self;
    /// Hands `f`'s function in this type to `a`.
    fn apply_unary<A: Apply1<Self>>(f: UnaryFn, a: A) -> A::Out;
    /// Hands `f`'s function in this type to `a`.
    fn apply_binary<A: Apply2<Self>>(f: BinaryFn, a: A) -> A::Out;
}

impl Compute for f64 {
    #[inline(always)]
    fn unary(f: UnaryFn, x: f64) -> f64 {
        f.eval(x)
    }
    #[inline(always)]
    fn binary(f: BinaryFn, a: f64, b: f64) -> f64 {
        f.eval(a, b)
    }
    #[inline(always)]
    fn apply_unary<A: Apply1<f64>>(f: UnaryFn, a: A) -> A::Out {
        f.apply_f64(a)
    }
    #[inline(always)]
    fn apply_binary<A: Apply2<f64>>(f: BinaryFn, a: A) -> A::Out {
        f.apply_f64(a)
    }
}

impl Compute for f32 {
    #[inline(always)]
    fn unary(f: UnaryFn, x: f32) -> f32 {
        f.eval_f32(x)
    }
    #[inline(always)]
    fn binary(f: BinaryFn, a: f32, b: f32) -> f32 {
        f.eval_f32(a, b)
    }
    #[inline(always)]
    fn apply_unary<A: Apply1<f32>>(f: UnaryFn, a: A) -> A::Out {
        f.apply_f32(a)
    }
    #[inline(always)]
    fn apply_binary<A: Apply2<f32>>(f: BinaryFn, a: A) -> A::Out {
        f.apply_f32(a)
    }
}

/// Fills `{name}` holes of a CUDA template with argument text, scanning the template once
/// (so argument text is never rescanned).
fn fill(template: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find('}')
            .and_then(|close| Some((close, args.iter().find(|(n, _)| *n == &after[..close])?)))
        {
            Some((close, (_, text))) => {
                out.push_str(text);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

macro_rules! unary_table {
    ($(
        $(#[doc = $doc:literal])*
        $v:ident {
            names: [$($name:literal),*],
            f64: |$x64:ident| $f64:expr,
            f32: |$x32:ident| $f32:expr,
            cuda: $c:literal $(, defining $cdef:literal)?,
            grad: |$gx:ident| $grad:expr $(,)?
        }
    )*) => {
        /// An elementwise function of one argument.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum UnaryFn {
            $($(#[doc = $doc])* $v,)*
        }

        impl UnaryFn {
            /// Every unary function, for code that must handle (or test) each one.
            pub const ALL: &'static [UnaryFn] = &[$(UnaryFn::$v),*];

            /// The surface names, as the checker resolves calls.
            pub const NAMES: &'static [(&'static str, UnaryFn)] = &[$($(($name, UnaryFn::$v),)*)*];

            /// The function's value (the float64 reference every engine is checked against).
            #[inline(always)]
            pub fn eval(self, x: f64) -> f64 {
                match self {
                    $(UnaryFn::$v => { let $x64 = x; $f64 })*
                }
            }

            /// The function's value in f32, as the CPU computes it.
            #[inline(always)]
            pub fn eval_f32(self, x: f32) -> f32 {
                match self {
                    $(UnaryFn::$v => { let $x32 = x; $f32 })*
                }
            }

            /// Hands the f64 function to `a` (one statically known function per row).
            #[inline(always)]
            pub fn apply_f64<A: Apply1<f64>>(self, a: A) -> A::Out {
                match self {
                    $(UnaryFn::$v => a.apply(|$x64: f64| -> f64 { $f64 }),)*
                }
            }

            /// Hands the f32 function to `a`.
            #[inline(always)]
            pub fn apply_f32<A: Apply1<f32>>(self, a: A) -> A::Out {
                match self {
                    $(UnaryFn::$v => a.apply(|$x32: f32| -> f32 { $f32 }),)*
                }
            }

            /// The CUDA C expression computing the function of the float expression `x`.
            pub fn c_expr(self, x: &str) -> String {
                match self {
                    $(UnaryFn::$v => fill($c, &[("x", x)]),)*
                }
            }

            /// The device functions the rows' CUDA expressions call, in the float dialect
            /// over `real`.
            pub fn c_definitions() -> String {
                let mut s = String::new();
                $($(s.push_str($cdef);)?)*
                s
            }

            /// f'(x) as an expression of `x` (`step` is straight-through: derivative 1).
            pub fn derivative_expr(self, x: MapExpr) -> MapExpr {
                match self {
                    $(UnaryFn::$v => { let $gx = x; $grad })*
                }
            }
        }
    };
}

macro_rules! binary_table {
    ($(
        $(#[doc = $doc:literal])*
        $v:ident {
            f64: |$a64:ident, $b64:ident| $f64:expr,
            f32: |$a32:ident, $b32:ident| $f32:expr,
            cuda: $c:literal $(, defining $cdef:literal)?,
            grad: |$ga:ident, $gb:ident| $grad:expr $(,)?
        }
    )*) => {
        /// An elementwise function of two arguments.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum BinaryFn {
            $($(#[doc = $doc])* $v,)*
        }

        impl BinaryFn {
            /// Every binary function, for code that must handle (or test) each one.
            pub const ALL: &'static [BinaryFn] = &[$(BinaryFn::$v),*];

            /// The function's value (the float64 reference).
            #[inline(always)]
            pub fn eval(self, a: f64, b: f64) -> f64 {
                match self {
                    $(BinaryFn::$v => { let ($a64, $b64) = (a, b); $f64 })*
                }
            }

            /// The function's value in f32, as the CPU computes it.
            #[inline(always)]
            pub fn eval_f32(self, a: f32, b: f32) -> f32 {
                match self {
                    $(BinaryFn::$v => { let ($a32, $b32) = (a, b); $f32 })*
                }
            }

            /// Hands the f64 function to `a`.
            #[inline(always)]
            pub fn apply_f64<A: Apply2<f64>>(self, a: A) -> A::Out {
                match self {
                    $(BinaryFn::$v => a.apply(|$a64: f64, $b64: f64| -> f64 { $f64 }),)*
                }
            }

            /// Hands the f32 function to `a`.
            #[inline(always)]
            pub fn apply_f32<A: Apply2<f32>>(self, a: A) -> A::Out {
                match self {
                    $(BinaryFn::$v => a.apply(|$a32: f32, $b32: f32| -> f32 { $f32 }),)*
                }
            }

            /// The CUDA C expression computing the function of float expressions `a`, `b`.
            pub fn c_expr(self, a: &str, b: &str) -> String {
                match self {
                    $(BinaryFn::$v => fill($c, &[("a", a), ("b", b)]),)*
                }
            }

            /// The device functions the rows' CUDA expressions call (after the unary ones,
            /// which they may use), in the float dialect over `real`.
            pub fn c_definitions() -> String {
                let mut s = String::new();
                $($(s.push_str($cdef);)?)*
                s
            }

            /// (∂f/∂a, ∂f/∂b) as expressions of `a` and `b`.
            pub fn derivative_exprs(self, a: MapExpr, b: MapExpr) -> (MapExpr, MapExpr) {
                match self {
                    $(BinaryFn::$v => { let ($ga, $gb) = (a, b); $grad })*
                }
            }
        }
    };
}

unary_table! {
    /// `-x`
    Neg {
        names: [],
        f64: |x| -x,
        f32: |x| -x,
        cuda: "(-({x}))",
        grad: |_x| c(-1.0),
    }
    /// `1/x`
    Recip {
        names: [],
        f64: |x| 1.0 / x,
        f32: |x| 1.0 / x,
        cuda: "(1.0f/({x}))",
        grad: |x| un(UnaryFn::Neg, un(UnaryFn::Recip, mul(x.clone(), x))),
    }
    /// `step(x)`: 1 if x > 0 else 0 (Heaviside); straight-through in reverse mode.
    Step {
        names: ["step"],
        f64: |x| f64::from(u8::from(x > 0.0)),
        f32: |x| f32::from(u8::from(x > 0.0)),
        cuda: "(({x}) > 0.0f ? 1.0f : 0.0f)",
        grad: |_x| c(1.0),
    }
    /// `sig(x)`: the logistic function, without overflow for large |x|.
    Sigmoid {
        names: ["sig", "sigmoid"],
        f64: |x| {
            let e = (-x.abs()).exp();
            if x >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) }
        },
        f32: |x| {
            let e = exp_f32(-x.abs());
            let s = 1.0 / (1.0 + e);
            if x >= 0.0 { s } else { e * s }
        },
        cuda: "tl_sigmoid({x})",
        defining "__device__ __forceinline__ real tl_sigmoid(real x) {
  const real e = expf(-fabsf(x));
  return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}
",
        grad: |x| {
            let s = un(UnaryFn::Sigmoid, x);
            mul(s.clone(), sub(c(1.0), s))
        },
    }
    /// `relu(x)`
    Relu {
        names: ["relu"],
        f64: |x| x.max(0.0),
        f32: |x| x.max(0.0),
        cuda: "fmaxf({x}, 0.0f)",
        grad: |x| un(UnaryFn::Step, x),
    }
    /// `gelu(x)`: the exact form, x·Φ(x) = x·erfc(-x/√2)/2 (through erfc, which keeps full
    /// relative precision where `1 + erf(x/√2)` would cancel, x ≪ 0).
    Gelu {
        names: ["gelu"],
        f64: |x| 0.5 * x * erfc(-x * FRAC_1_SQRT_2),
        f32: |x| {
            let xd = f64::from(x);
            (0.5 * xd * erfc_fit(-xd * FRAC_1_SQRT_2)) as f32
        },
        cuda: "tl_gelu({x})",
        defining "__device__ __forceinline__ real tl_gelu(real x) {
  return 0.5f * x * tl_erfc(-x * 0.70710678118654752f);
}
",
        grad: |x| un(UnaryFn::GeluGrad, x),
    }
    /// `tanh(x)`
    Tanh {
        names: ["tanh"],
        f64: |x| x.tanh(),
        f32: |x| tanh_f32(x),
        cuda: "tanhf({x})",
        grad: |x| {
            let t = un(UnaryFn::Tanh, x);
            sub(c(1.0), mul(t.clone(), t))
        },
    }
    /// `exp(x)`
    Exp {
        names: ["exp"],
        f64: |x| x.exp(),
        f32: |x| exp_f32(x),
        cuda: "expf({x})",
        grad: |x| un(UnaryFn::Exp, x),
    }
    /// `log(x)`
    Log {
        names: ["log"],
        f64: |x| x.ln(),
        f32: |x| x.ln(),
        cuda: "logf({x})",
        grad: |x| un(UnaryFn::Recip, x),
    }
    /// `sqrt(x)`
    Sqrt {
        names: ["sqrt"],
        f64: |x| x.sqrt(),
        f32: |x| x.sqrt(),
        cuda: "sqrtf({x})",
        grad: |x| mul(c(0.5), un(UnaryFn::Recip, un(UnaryFn::Sqrt, x))),
    }
    /// `abs(x)`
    Abs {
        names: ["abs"],
        f64: |x| x.abs(),
        f32: |x| x.abs(),
        cuda: "fabsf({x})",
        grad: |x| sub(un(UnaryFn::Step, x.clone()), un(UnaryFn::Step, un(UnaryFn::Neg, x))),
    }
    /// `sin(x)`
    Sin {
        names: ["sin"],
        f64: |x| x.sin(),
        f32: |x| x.sin(),
        cuda: "sinf({x})",
        grad: |x| un(UnaryFn::Cos, x),
    }
    /// `cos(x)`
    Cos {
        names: ["cos"],
        f64: |x| x.cos(),
        f32: |x| x.cos(),
        cuda: "cosf({x})",
        grad: |x| un(UnaryFn::Neg, un(UnaryFn::Sin, x)),
    }
    /// The derivative of [`UnaryFn::Gelu`], Φ(x) + x·φ(x), for gradients.
    GeluGrad {
        names: [],
        f64: |x| 0.5 * erfc(-x * FRAC_1_SQRT_2) + x * (-0.5 * x * x).exp() * INV_SQRT_2PI,
        f32: |x| {
            let xd = f64::from(x);
            (0.5 * erfc_fit(-xd * FRAC_1_SQRT_2) + xd * exp_f64(-0.5 * xd * xd) * INV_SQRT_2PI)
                as f32
        },
        cuda: "tl_gelu_grad({x})",
        defining "__device__ __forceinline__ real tl_gelu_grad(real x) {
  real cdf = 0.5f * tl_erfc(-x * 0.70710678118654752f);
  real pdf = expf(-0.5f * x * x) * 0.39894228040143268f;
  return cdf + x * pdf;
}
",
        // φ(x)(2 − x²), φ the standard normal density.
        grad: |x| {
            let pdf = mul(c(INV_SQRT_2PI), un(UnaryFn::Exp, mul(c(-0.5), mul(x.clone(), x.clone()))));
            mul(pdf, sub(c(2.0), mul(x.clone(), x)))
        },
    }
}

binary_table! {
    /// `a + b`
    Add {
        f64: |a, b| a + b,
        f32: |a, b| a + b,
        cuda: "(({a})+({b}))",
        grad: |_a, _b| (c(1.0), c(1.0)),
    }
    /// `a - b`
    Sub {
        f64: |a, b| a - b,
        f32: |a, b| a - b,
        cuda: "(({a})-({b}))",
        grad: |_a, _b| (c(1.0), c(-1.0)),
    }
    /// `a * b`
    Mul {
        f64: |a, b| a * b,
        f32: |a, b| a * b,
        cuda: "(({a})*({b}))",
        grad: |a, b| (b, a),
    }
    /// `a / b`
    Div {
        f64: |a, b| a / b,
        f32: |a, b| a / b,
        cuda: "(({a})/({b}))",
        grad: |a, b| {
            let inv = un(UnaryFn::Recip, b);
            (inv.clone(), un(UnaryFn::Neg, mul(a, mul(inv.clone(), inv))))
        },
    }
    /// `a ^ b`, exact for small integer exponents (so `(-2)^2` is 4).
    Pow {
        f64: |a, b| integer_power_or_powf(a, b),
        f32: |a, b| integer_power_or_powf(a, b),
        cuda: "tl_pow({a}, {b})",
        defining "__device__ __forceinline__ real tl_pow(real a, real b) {
  if (floorf(b) == b && fabsf(b) <= 64.0f) {
    int n = (int)b;
    unsigned int e = n < 0 ? (unsigned int)(-n) : (unsigned int)n;
    real r = 1.0f;
    real base = a;
    while (e) { if (e & 1u) r *= base; base *= base; e >>= 1; }
    return n < 0 ? 1.0f / r : r;
  }
  return powf(a, b);
}
",
        grad: |a, b| {
            let da = mul(b.clone(), bin(BinaryFn::Pow, a.clone(), sub(b.clone(), c(1.0))));
            // a^b ln a, taken as 0 where a <= 0 (no real logarithm there).
            let pos = un(UnaryFn::Step, a.clone());
            let safe = add(mul(pos.clone(), a.clone()), sub(c(1.0), pos.clone()));
            let db = mul(pos, mul(bin(BinaryFn::Pow, a, b), un(UnaryFn::Log, safe)));
            (da, db)
        },
    }
    /// `max(a, b)`
    Max {
        f64: |a, b| a.max(b),
        f32: |a, b| a.max(b),
        cuda: "fmaxf({a}, {b})",
        grad: |a, b| {
            let b_wins = un(UnaryFn::Step, sub(b, a));
            (sub(c(1.0), b_wins.clone()), b_wins)
        },
    }
    /// `min(a, b)`
    Min {
        f64: |a, b| a.min(b),
        f32: |a, b| a.min(b),
        cuda: "fminf({a}, {b})",
        grad: |a, b| {
            let b_wins = un(UnaryFn::Step, sub(a, b));
            (sub(c(1.0), b_wins.clone()), b_wins)
        },
    }
    /// `sig(a, T)`: logistic of a/T; T = 0 is `step`.
    SigmoidT {
        f64: |a, t| if t == 0.0 { UnaryFn::Step.eval(a) } else { UnaryFn::Sigmoid.eval(a / t) },
        f32: |a, t| {
            if t == 0.0 { UnaryFn::Step.eval_f32(a) } else { UnaryFn::Sigmoid.eval_f32(a / t) }
        },
        cuda: "tl_sig_t({a}, {b})",
        defining "__device__ __forceinline__ real tl_sig_t(real a, real t) {
  if (t == 0.0f) return a > 0.0f ? 1.0f : 0.0f;
  return tl_sigmoid(a / t);
}
",
        grad: |a, b| (
            bin(BinaryFn::SigmoidTGradA, a.clone(), b.clone()),
            bin(BinaryFn::SigmoidTGradT, a, b),
        ),
    }
    /// ∂ sig(a, T)/∂a = s(1 − s)/T with s = sig(a/T) (1 at T = 0: straight-through).
    SigmoidTGradA {
        f64: |a, t| {
            if t == 0.0 { 1.0 } else { let s = UnaryFn::Sigmoid.eval(a / t); s * (1.0 - s) / t }
        },
        f32: |a, t| {
            if t == 0.0 { 1.0 } else { let s = UnaryFn::Sigmoid.eval_f32(a / t); s * (1.0 - s) / t }
        },
        cuda: "tl_sig_t_grad_a({a}, {b})",
        defining "__device__ __forceinline__ real tl_sig_t_grad_a(real a, real t) {
  if (t == 0.0f) return 1.0f;
  real s = tl_sigmoid(a / t);
  return s * (1.0f - s) / t;
}
",
        grad: |_a, _b| (c(0.0), c(0.0)),
    }
    /// ∂ sig(a, T)/∂T = −s(1 − s)·a/T² (0 at T = 0).
    SigmoidTGradT {
        f64: |a, t| {
            if t == 0.0 {
                0.0
            } else {
                let s = UnaryFn::Sigmoid.eval(a / t);
                -s * (1.0 - s) * a / (t * t)
            }
        },
        f32: |a, t| {
            if t == 0.0 {
                0.0
            } else {
                let s = UnaryFn::Sigmoid.eval_f32(a / t);
                -s * (1.0 - s) * a / (t * t)
            }
        },
        cuda: "tl_sig_t_grad_t({a}, {b})",
        defining "__device__ __forceinline__ real tl_sig_t_grad_t(real a, real t) {
  if (t == 0.0f) return 0.0f;
  real s = tl_sigmoid(a / t);
  return -s * (1.0f - s) * a / (t * t);
}
",
        grad: |_a, _b| (c(0.0), c(0.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::erf;

    /// f'(x) by central differences of the f64 column.
    fn numeric(f: UnaryFn, x: f64) -> f64 {
        let h = 1e-6;
        (f.eval(x + h) - f.eval(x - h)) / (2.0 * h)
    }

    #[test]
    fn symbolic_derivatives_match_finite_differences() {
        for &f in UnaryFn::ALL {
            if matches!(f, UnaryFn::Step | UnaryFn::Relu | UnaryFn::Abs) {
                continue; // not differentiable at 0; checked away from it below
            }
            for x in [0.3, 1.7, 2.9, -1.3] {
                if matches!(f, UnaryFn::Log | UnaryFn::Sqrt) && x < 0.0 {
                    continue;
                }
                let exact = f.derivative_expr(MapExpr::Input(0)).eval(&[x]);
                assert!((numeric(f, x) - exact).abs() < 1e-6, "{f:?} at {x}");
            }
        }
        for f in [UnaryFn::Relu, UnaryFn::Abs] {
            for x in [-1.3, 0.7] {
                let exact = f.derivative_expr(MapExpr::Input(0)).eval(&[x]);
                assert!((numeric(f, x) - exact).abs() < 1e-6, "{f:?} at {x}");
            }
        }
        let h = 1e-6;
        // The gradient rows of `sig(a, T)` appear only in backward passes, which are never
        // differentiated again; their own derivatives are not defined.
        let differentiable = BinaryFn::ALL
            .iter()
            .filter(|f| !matches!(f, BinaryFn::SigmoidTGradA | BinaryFn::SigmoidTGradT));
        for &f in differentiable {
            let (da, db) = f.derivative_exprs(MapExpr::Input(0), MapExpr::Input(1));
            for (a, b) in [(0.3, 1.5), (1.7, 0.6), (2.5, -1.25), (-0.8, 2.0)] {
                if f == BinaryFn::Pow && a < 0.0 {
                    continue;
                }
                let fa = (f.eval(a + h, b) - f.eval(a - h, b)) / (2.0 * h);
                let fb = (f.eval(a, b + h) - f.eval(a, b - h)) / (2.0 * h);
                let tol = 1e-6 * fa.abs().max(fb.abs()).max(1.0);
                assert!((fa - da.eval(&[a, b])).abs() < tol, "∂a {f:?} at {a}, {b}");
                assert!((fb - db.eval(&[a, b])).abs() < tol, "∂b {f:?} at {a}, {b}");
            }
        }
        assert_eq!(BinaryFn::SigmoidTGradA.eval(0.3, 0.0), 1.0);
    }

    #[test]
    fn gelu_keeps_its_precision_far_left() {
        // x·Φ(x) at -9, from the known value of Φ(-9).
        let want = -9.0 * 1.128_588_405_953_84e-19;
        let got = UnaryFn::Gelu.eval(-9.0);
        assert!((got - want).abs() < 1e-12 * want.abs(), "{got} vs {want}");
        let got32 = f64::from(UnaryFn::Gelu.eval_f32(-9.0));
        assert!(
            (got32 - want).abs() < 1e-6 * want.abs(),
            "{got32} vs {want}"
        );
        assert!((UnaryFn::Gelu.eval(1.0) - 0.5 * (1.0 + erf(FRAC_1_SQRT_2))).abs() < 1e-15);
    }

    #[test]
    fn f32_column_matches_the_reference() {
        let close = |got: f64, want: f64| {
            (want.is_nan() && got.is_nan())
                || (want.is_infinite() && got == want)
                || (got - want).abs() <= 1e-6 * want.abs().max(1.0)
        };
        for &f in UnaryFn::ALL {
            let mut x = -6.0f64;
            while x <= 9.0 {
                let xf = x as f32;
                let want = f.eval(f64::from(xf));
                let got = f64::from(f.eval_f32(xf));
                assert!(close(got, want), "{f:?}({x}) = {got}, want {want}");
                x += 0.003_1;
            }
        }
        for &f in BinaryFn::ALL {
            for (a, b) in [
                (0.3f32, 1.5f32),
                (-2.0, 2.0),
                (1.7, 0.0),
                (2.5, -1.25),
                (-0.5, 0.5),
            ] {
                let want = f.eval(f64::from(a), f64::from(b));
                let got = f64::from(f.eval_f32(a, b));
                assert!(close(got, want), "{f:?}({a}, {b}) = {got}, want {want}");
            }
        }
    }

    #[test]
    fn names_resolve_to_distinct_rows() {
        let mut names: Vec<&str> = UnaryFn::NAMES.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), UnaryFn::NAMES.len());
        assert!(UnaryFn::NAMES.contains(&("gelu", UnaryFn::Gelu)));
    }

    #[test]
    fn cuda_templates_take_their_arguments_once() {
        assert_eq!(UnaryFn::Relu.c_expr("x{b}"), "fmaxf(x{b}, 0.0f)");
        assert_eq!(BinaryFn::Sub.c_expr("{b}", "q"), "(({b})-(q))");
        assert_eq!(fill("{y} {x}", &[("x", "1")]), "{y} 1");
        let defs = UnaryFn::c_definitions() + &BinaryFn::c_definitions();
        for name in [
            "tl_sigmoid",
            "tl_gelu",
            "tl_gelu_grad",
            "tl_pow",
            "tl_sig_t_grad_t",
        ] {
            assert!(defs.contains(&format!("real {name}(")), "{name}");
        }
    }
}
