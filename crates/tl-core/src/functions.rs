//! The elementwise functions, one table row each. A row says everything about its
//! function: the surface names the checker resolves, the float64 semantics every engine is
//! checked against, the f32 form the CPU evaluates (vectorisable where it matters), the
//! CUDA C expression spliced into generated kernels (with any device function it calls) and
//! the symbolic derivative reverse mode builds. Adding a function is adding a row.

use crate::grad_expr::{add, bin, c, mul, sub, un};
use crate::math::INV_SQRT_2PI;
use crate::math::{erfc, exp_f32, integer_power_or_powf, normal_f32, tanh_f32};
use crate::ops::MapExpr;
#[macro_use]
mod table;
use std::f64::consts::FRAC_1_SQRT_2;
use table::fill;
pub use table::{Apply1, Apply2, Compute};

unary_table! {
    /// `-x`
    Neg {
        names: [],
        shown: "neg",
        f64: |x| -x,
        f32: |x| -x,
        cuda: "(-({x}))",
        grad: |_x| c(-1.0),
    }
    /// `1/x`
    Recip {
        names: [],
        shown: "recip",
        f64: |x| 1.0 / x,
        f32: |x| 1.0 / x,
        cuda: "(1.0f/({x}))",
        grad: |x| un(UnaryFn::Neg, un(UnaryFn::Recip, mul(x.clone(), x))),
    }
    /// `step(x)`: 1 if x > 0 else 0 (Heaviside); straight-through in reverse mode.
    Step {
        names: ["step"],
        shown: "step",
        f64: |x| f64::from(u8::from(x > 0.0)),
        f32: |x| f32::from(u8::from(x > 0.0)),
        cuda: "(({x}) > 0.0f ? 1.0f : 0.0f)",
        grad: |_x| c(1.0),
    }
    /// `sig(x)`: the logistic function, without overflow for large |x|.
    Sigmoid {
        names: ["sig", "sigmoid"],
        shown: "sig",
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
        shown: "relu",
        f64: |x| x.max(0.0),
        f32: |x| x.max(0.0),
        cuda: "fmaxf({x}, 0.0f)",
        grad: |x| un(UnaryFn::Step, x),
    }
    /// `gelu(x)`: the exact form, x·Φ(x) = x·erfc(-x/√2)/2 (through erfc, which keeps full
    /// relative precision where `1 + erf(x/√2)` would cancel, x ≪ 0).
    Gelu {
        names: ["gelu"],
        shown: "gelu",
        f64: |x| 0.5 * x * erfc(-x * FRAC_1_SQRT_2),
        f32: |x| x * normal_f32(x).0,
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
        shown: "tanh",
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
        shown: "exp",
        f64: |x| x.exp(),
        f32: |x| exp_f32(x),
        cuda: "expf({x})",
        grad: |x| un(UnaryFn::Exp, x),
    }
    /// `log(x)`
    Log {
        names: ["log"],
        shown: "log",
        f64: |x| x.ln(),
        f32: |x| x.ln(),
        cuda: "logf({x})",
        grad: |x| un(UnaryFn::Recip, x),
    }
    /// `sqrt(x)`
    Sqrt {
        names: ["sqrt"],
        shown: "sqrt",
        f64: |x| x.sqrt(),
        f32: |x| x.sqrt(),
        cuda: "sqrtf({x})",
        grad: |x| mul(c(0.5), un(UnaryFn::Recip, un(UnaryFn::Sqrt, x))),
    }
    /// `abs(x)`
    Abs {
        names: ["abs"],
        shown: "abs",
        f64: |x| x.abs(),
        f32: |x| x.abs(),
        cuda: "fabsf({x})",
        grad: |x| sub(un(UnaryFn::Step, x.clone()), un(UnaryFn::Step, un(UnaryFn::Neg, x))),
    }
    /// `sin(x)`
    Sin {
        names: ["sin"],
        shown: "sin",
        f64: |x| x.sin(),
        f32: |x| x.sin(),
        cuda: "sinf({x})",
        grad: |x| un(UnaryFn::Cos, x),
    }
    /// `cos(x)`
    Cos {
        names: ["cos"],
        shown: "cos",
        f64: |x| x.cos(),
        f32: |x| x.cos(),
        cuda: "cosf({x})",
        grad: |x| un(UnaryFn::Neg, un(UnaryFn::Sin, x)),
    }
    /// The derivative of [`UnaryFn::Gelu`], Φ(x) + x·φ(x), for gradients.
    GeluGrad {
        names: [],
        shown: "gelu'",
        f64: |x| 0.5 * erfc(-x * FRAC_1_SQRT_2) + x * (-0.5 * x * x).exp() * INV_SQRT_2PI,
        f32: |x| {
            let (cdf, e) = normal_f32(x);
            cdf + x * e * INV_SQRT_2PI as f32
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
        shown: "add",
        f64: |a, b| a + b,
        f32: |a, b| a + b,
        cuda: "(({a})+({b}))",
        grad: |_a, _b| (c(1.0), c(1.0)),
    }
    /// `a - b`
    Sub {
        shown: "sub",
        f64: |a, b| a - b,
        f32: |a, b| a - b,
        cuda: "(({a})-({b}))",
        grad: |_a, _b| (c(1.0), c(-1.0)),
    }
    /// `a * b`
    Mul {
        shown: "mul",
        f64: |a, b| a * b,
        f32: |a, b| a * b,
        cuda: "(({a})*({b}))",
        grad: |a, b| (b, a),
    }
    /// `a / b`
    Div {
        shown: "div",
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
        shown: "pow",
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
        shown: "max",
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
        shown: "min",
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
        shown: "sig",
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
        shown: "sig'a",
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
        shown: "sig'T",
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
mod tests;
