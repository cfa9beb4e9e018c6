//! The elementwise functions, one table row each: surface name, arity, the f64 reference
//! semantics, and the derivative. Parser-facing names resolve here (in `tl-check`), the CPU
//! backend evaluates through [`UnaryFn::eval`]/[`BinaryFn::eval`], and generated GPU code
//! splices in [`UnaryFn::c_expr`]/[`BinaryFn::c_expr`], so each function is defined in one place.

/// An elementwise function of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryFn {
    /// `-x`
    Neg,
    /// `1/x`
    Recip,
    /// `step(x)`: 1 if x > 0 else 0 (Heaviside).
    Step,
    /// `sig(x)`: the logistic function.
    Sigmoid,
    /// `relu(x)`
    Relu,
    /// `gelu(x)`: the exact form, x·Φ(x).
    Gelu,
    /// `tanh(x)`
    Tanh,
    /// `exp(x)`
    Exp,
    /// `log(x)`
    Log,
    /// `sqrt(x)`
    Sqrt,
    /// `abs(x)`
    Abs,
    /// `sin(x)`
    Sin,
    /// `cos(x)`
    Cos,
    /// d gelu(x)/dx = Φ(x) + x·φ(x), for gradients.
    GeluGrad,
}

/// An elementwise function of two arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryFn {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `a ^ b`
    Pow,
    /// `max(a, b)`
    Max,
    /// `min(a, b)`
    Min,
    /// `sig(a, T)`: logistic of a/T; T = 0 is `step`.
    SigmoidT,
    /// ∂ sig(a, T)/∂a (1 at T = 0: straight-through), for gradients.
    SigmoidTGradA,
    /// ∂ sig(a, T)/∂T (0 at T = 0), for gradients.
    SigmoidTGradT,
}

impl UnaryFn {
    /// Every unary function, for code that must handle (or test) each one.
    pub const ALL: [UnaryFn; 14] = [
        UnaryFn::Neg,
        UnaryFn::Recip,
        UnaryFn::Step,
        UnaryFn::Sigmoid,
        UnaryFn::Relu,
        UnaryFn::Gelu,
        UnaryFn::Tanh,
        UnaryFn::Exp,
        UnaryFn::Log,
        UnaryFn::Sqrt,
        UnaryFn::Abs,
        UnaryFn::Sin,
        UnaryFn::Cos,
        UnaryFn::GeluGrad,
    ];
}

impl BinaryFn {
    /// Every binary function, for code that must handle (or test) each one.
    pub const ALL: [BinaryFn; 10] = [
        BinaryFn::Add,
        BinaryFn::Sub,
        BinaryFn::Mul,
        BinaryFn::Div,
        BinaryFn::Pow,
        BinaryFn::Max,
        BinaryFn::Min,
        BinaryFn::SigmoidT,
        BinaryFn::SigmoidTGradA,
        BinaryFn::SigmoidTGradT,
    ];
}

/// The surface names of the unary functions, as the checker resolves calls.
pub const UNARY_NAMES: &[(&str, UnaryFn)] = &[
    ("step", UnaryFn::Step),
    ("sig", UnaryFn::Sigmoid),
    ("sigmoid", UnaryFn::Sigmoid),
    ("relu", UnaryFn::Relu),
    ("gelu", UnaryFn::Gelu),
    ("tanh", UnaryFn::Tanh),
    ("exp", UnaryFn::Exp),
    ("log", UnaryFn::Log),
    ("sqrt", UnaryFn::Sqrt),
    ("abs", UnaryFn::Abs),
    ("sin", UnaryFn::Sin),
    ("cos", UnaryFn::Cos),
];

/// Error function (Abramowitz–Stegun 7.1.26 is too coarse for 1e-6 checks, so this uses the
/// complementary-error continued fraction / series split, accurate to ~1e-15).
pub fn erf(x: f64) -> f64 {
    if x.abs() < 2.5 {
        // Maclaurin series: erf x = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
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
        // Continued fraction for erfc (Lentz), converges fast for |x| >= 2.5.
        let ax = x.abs();
        let mut f = ax;
        let mut c = ax;
        let mut d = 0.0;
        for k in 1..200 {
            let a = k as f64 / 2.0;
            d = ax + a * d;
            d = 1.0 / d;
            c = ax + a / c;
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        let erfc = (-ax * ax).exp() / f / std::f64::consts::PI.sqrt();
        (1.0 - erfc).copysign(x)
    }
}

impl UnaryFn {
    /// The function's value (the float64 reference every backend is checked against).
    pub fn eval(self, x: f64) -> f64 {
        match self {
            UnaryFn::Neg => -x,
            UnaryFn::Recip => 1.0 / x,
            UnaryFn::Step => f64::from(u8::from(x > 0.0)),
            UnaryFn::Sigmoid => sigmoid(x),
            UnaryFn::Relu => x.max(0.0),
            UnaryFn::Gelu => 0.5 * x * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2)),
            UnaryFn::Tanh => x.tanh(),
            UnaryFn::Exp => x.exp(),
            UnaryFn::Log => x.ln(),
            UnaryFn::Sqrt => x.sqrt(),
            UnaryFn::Abs => x.abs(),
            UnaryFn::Sin => x.sin(),
            UnaryFn::Cos => x.cos(),
            UnaryFn::GeluGrad => UnaryFn::Gelu.derivative(x),
        }
    }

    /// d f(x) / dx. `step` uses the straight-through estimator (derivative 1).
    pub fn derivative(self, x: f64) -> f64 {
        match self {
            UnaryFn::Neg => -1.0,
            UnaryFn::Recip => -1.0 / (x * x),
            UnaryFn::Step => 1.0,
            UnaryFn::Sigmoid => {
                let s = sigmoid(x);
                s * (1.0 - s)
            }
            UnaryFn::Relu => f64::from(u8::from(x > 0.0)),
            UnaryFn::Gelu => {
                let cdf = 0.5 * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2));
                let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
                cdf + x * pdf
            }
            UnaryFn::Tanh => 1.0 - x.tanh().powi(2),
            UnaryFn::Exp => x.exp(),
            UnaryFn::Log => 1.0 / x,
            UnaryFn::Sqrt => 0.5 / x.sqrt(),
            UnaryFn::Abs => x.signum(),
            UnaryFn::Sin => x.cos(),
            UnaryFn::Cos => -x.sin(),
            UnaryFn::GeluGrad => {
                let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
                pdf * (2.0 - x * x)
            }
        }
    }

    /// The CUDA C expression computing the function of the float expression `x`.
    pub fn c_expr(self, x: &str) -> String {
        match self {
            UnaryFn::Neg => format!("(-({x}))"),
            UnaryFn::Recip => format!("(1.0f/({x}))"),
            UnaryFn::Step => format!("(({x}) > 0.0f ? 1.0f : 0.0f)"),
            UnaryFn::Sigmoid => format!("(1.0f/(1.0f+expf(-({x}))))"),
            UnaryFn::Relu => format!("fmaxf({x}, 0.0f)"),
            // Through erfc, which keeps full relative precision where 1 + erf(x/√2) would
            // cancel (x ≪ 0).
            UnaryFn::Gelu => format!("tl_gelu({x})"),
            UnaryFn::Tanh => format!("tanhf({x})"),
            UnaryFn::Exp => format!("expf({x})"),
            UnaryFn::Log => format!("logf({x})"),
            UnaryFn::Sqrt => format!("sqrtf({x})"),
            UnaryFn::Abs => format!("fabsf({x})"),
            UnaryFn::Sin => format!("sinf({x})"),
            UnaryFn::Cos => format!("cosf({x})"),
            UnaryFn::GeluGrad => format!("tl_gelu_grad({x})"),
        }
    }
}

impl BinaryFn {
    /// The function's value (the float64 reference).
    pub fn eval(self, a: f64, b: f64) -> f64 {
        match self {
            BinaryFn::Add => a + b,
            BinaryFn::Sub => a - b,
            BinaryFn::Mul => a * b,
            BinaryFn::Div => a / b,
            BinaryFn::Pow => pow(a, b),
            BinaryFn::Max => a.max(b),
            BinaryFn::Min => a.min(b),
            BinaryFn::SigmoidT => {
                if b == 0.0 {
                    f64::from(u8::from(a > 0.0))
                } else {
                    sigmoid(a / b)
                }
            }
            BinaryFn::SigmoidTGradA => BinaryFn::SigmoidT.derivatives(a, b).0,
            BinaryFn::SigmoidTGradT => BinaryFn::SigmoidT.derivatives(a, b).1,
        }
    }

    /// Partial derivatives (d/da, d/db) at (a, b). `sig(a, 0)` is straight-through in `a`.
    pub fn derivatives(self, a: f64, b: f64) -> (f64, f64) {
        match self {
            BinaryFn::Add => (1.0, 1.0),
            BinaryFn::Sub => (1.0, -1.0),
            BinaryFn::Mul => (b, a),
            BinaryFn::Div => (1.0 / b, -a / (b * b)),
            BinaryFn::Pow => {
                let da = if b == 0.0 { 0.0 } else { b * pow(a, b - 1.0) };
                let db = if a > 0.0 { pow(a, b) * a.ln() } else { 0.0 };
                (da, db)
            }
            BinaryFn::Max => {
                if a >= b {
                    (1.0, 0.0)
                } else {
                    (0.0, 1.0)
                }
            }
            BinaryFn::Min => {
                if a <= b {
                    (1.0, 0.0)
                } else {
                    (0.0, 1.0)
                }
            }
            BinaryFn::SigmoidT => {
                if b == 0.0 {
                    (1.0, 0.0)
                } else {
                    let s = sigmoid(a / b);
                    let ds = s * (1.0 - s);
                    (ds / b, -ds * a / (b * b))
                }
            }
            BinaryFn::SigmoidTGradA | BinaryFn::SigmoidTGradT => (0.0, 0.0),
        }
    }

    /// The CUDA C expression computing the function of float expressions `a` and `b`.
    pub fn c_expr(self, a: &str, b: &str) -> String {
        match self {
            BinaryFn::Add => format!("(({a})+({b}))"),
            BinaryFn::Sub => format!("(({a})-({b}))"),
            BinaryFn::Mul => format!("(({a})*({b}))"),
            BinaryFn::Div => format!("(({a})/({b}))"),
            BinaryFn::Pow => format!("tl_pow({a}, {b})"),
            BinaryFn::Max => format!("fmaxf({a}, {b})"),
            BinaryFn::Min => format!("fminf({a}, {b})"),
            BinaryFn::SigmoidT => format!("tl_sig_t({a}, {b})"),
            BinaryFn::SigmoidTGradA => format!("tl_sig_t_grad_a({a}, {b})"),
            BinaryFn::SigmoidTGradT => format!("tl_sig_t_grad_t({a}, {b})"),
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `a^b` with an exact path for small integer exponents (so `(-2)^2` is 4, as users expect).
pub fn pow(a: f64, b: f64) -> f64 {
    if b.fract() == 0.0 && b.abs() <= 64.0 {
        a.powi(b as i32)
    } else {
        a.powf(b)
    }
}

/// How a reduction or projection combines values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Sum.
    Sum,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
    /// Arithmetic mean.
    Mean,
}

/// A normalising function that works along one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NormFn {
    /// `softmax`, as PyTorch's.
    Softmax,
    /// `lnorm`: PyTorch's `layer_norm` without affine terms (biased variance, eps 1e-5).
    LayerNorm,
}

/// The surface names of the normalising functions.
pub const NORM_NAMES: &[(&str, NormFn)] =
    &[("softmax", NormFn::Softmax), ("lnorm", NormFn::LayerNorm)];

/// A fused elementwise expression over the inputs of one backend `map` call.
#[derive(Clone, Debug, PartialEq)]
pub enum MapExpr {
    /// The k-th input tensor.
    Input(usize),
    /// A constant.
    Const(f64),
    /// A unary function of a subexpression.
    Unary(UnaryFn, Box<MapExpr>),
    /// A binary function of two subexpressions.
    Binary(BinaryFn, Box<MapExpr>, Box<MapExpr>),
}

impl MapExpr {
    /// Evaluates the expression at one point given the inputs' values there (the f64 reference).
    pub fn eval(&self, inputs: &[f64]) -> f64 {
        match self {
            MapExpr::Input(k) => inputs.get(*k).copied().unwrap_or(f64::NAN),
            MapExpr::Const(c) => *c,
            MapExpr::Unary(f, x) => f.eval(x.eval(inputs)),
            MapExpr::Binary(f, a, b) => f.eval(a.eval(inputs), b.eval(inputs)),
        }
    }

    /// The expression with every `Input(k)` replaced by `by(k)` (how fused maps are composed).
    pub fn substitute(&self, by: &dyn Fn(usize) -> MapExpr) -> MapExpr {
        match self {
            MapExpr::Input(k) => by(*k),
            MapExpr::Const(v) => MapExpr::Const(*v),
            MapExpr::Unary(f, x) => MapExpr::Unary(*f, Box::new(x.substitute(by))),
            MapExpr::Binary(f, a, b) => {
                MapExpr::Binary(*f, Box::new(a.substitute(by)), Box::new(b.substitute(by)))
            }
        }
    }

    /// How many nodes (inputs, constants and functions) the expression has.
    pub fn size(&self) -> usize {
        match self {
            MapExpr::Input(_) | MapExpr::Const(_) => 1,
            MapExpr::Unary(_, a) => 1 + a.size(),
            MapExpr::Binary(_, a, b) => 1 + a.size() + b.size(),
        }
    }

    /// How many times the expression reads input `k`.
    pub fn reads(&self, k: usize) -> usize {
        match self {
            MapExpr::Input(j) => usize::from(*j == k),
            MapExpr::Const(_) => 0,
            MapExpr::Unary(_, x) => x.reads(k),
            MapExpr::Binary(_, a, b) => a.reads(k) + b.reads(k),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0f64, 0.0f64),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (3.0, 0.9999779095030014),
            (-2.0, -0.9953222650189527),
        ] {
            assert!(
                (erf(x) - want).abs() < 1e-14,
                "erf({x}) = {} want {want}",
                erf(x)
            );
        }
    }

    #[test]
    fn gradient_rows_match_finite_differences() {
        let h = 1e-6;
        for x in [-1.3, 0.2, 2.1] {
            let fd = (UnaryFn::Gelu.eval(x + h) - UnaryFn::Gelu.eval(x - h)) / (2.0 * h);
            assert!((fd - UnaryFn::GeluGrad.eval(x)).abs() < 1e-7);
            let fd2 = (UnaryFn::GeluGrad.eval(x + h) - UnaryFn::GeluGrad.eval(x - h)) / (2.0 * h);
            assert!((fd2 - UnaryFn::GeluGrad.derivative(x)).abs() < 1e-6);
            for t in [0.5, 2.0] {
                let fa = (BinaryFn::SigmoidT.eval(x + h, t) - BinaryFn::SigmoidT.eval(x - h, t))
                    / (2.0 * h);
                let ft = (BinaryFn::SigmoidT.eval(x, t + h) - BinaryFn::SigmoidT.eval(x, t - h))
                    / (2.0 * h);
                assert!((fa - BinaryFn::SigmoidTGradA.eval(x, t)).abs() < 1e-7);
                assert!((ft - BinaryFn::SigmoidTGradT.eval(x, t)).abs() < 1e-7);
            }
        }
        assert_eq!(BinaryFn::SigmoidTGradA.eval(0.3, 0.0), 1.0);
    }

    #[test]
    fn all_lists_every_function_once() {
        // A new function makes these matches fail to compile until it is given a position,
        // and then this test until `ALL` lists it.
        let unary = |f: UnaryFn| match f {
            UnaryFn::Neg => 0,
            UnaryFn::Recip => 1,
            UnaryFn::Step => 2,
            UnaryFn::Sigmoid => 3,
            UnaryFn::Relu => 4,
            UnaryFn::Gelu => 5,
            UnaryFn::Tanh => 6,
            UnaryFn::Exp => 7,
            UnaryFn::Log => 8,
            UnaryFn::Sqrt => 9,
            UnaryFn::Abs => 10,
            UnaryFn::Sin => 11,
            UnaryFn::Cos => 12,
            UnaryFn::GeluGrad => 13,
        };
        let binary = |f: BinaryFn| match f {
            BinaryFn::Add => 0,
            BinaryFn::Sub => 1,
            BinaryFn::Mul => 2,
            BinaryFn::Div => 3,
            BinaryFn::Pow => 4,
            BinaryFn::Max => 5,
            BinaryFn::Min => 6,
            BinaryFn::SigmoidT => 7,
            BinaryFn::SigmoidTGradA => 8,
            BinaryFn::SigmoidTGradT => 9,
        };
        let u: Vec<usize> = UnaryFn::ALL.iter().map(|&f| unary(f)).collect();
        assert_eq!(u, (0..UnaryFn::ALL.len()).collect::<Vec<_>>());
        let b: Vec<usize> = BinaryFn::ALL.iter().map(|&f| binary(f)).collect();
        assert_eq!(b, (0..BinaryFn::ALL.len()).collect::<Vec<_>>());
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let h = 1e-6;
        for f in [
            UnaryFn::Sigmoid,
            UnaryFn::Gelu,
            UnaryFn::Tanh,
            UnaryFn::Exp,
            UnaryFn::Log,
            UnaryFn::Sqrt,
            UnaryFn::Sin,
            UnaryFn::Cos,
            UnaryFn::Recip,
        ] {
            for x in [0.3, 1.7, 2.9] {
                let fd = (f.eval(x + h) - f.eval(x - h)) / (2.0 * h);
                assert!((fd - f.derivative(x)).abs() < 1e-6, "{f:?} at {x}");
            }
        }
    }
}
