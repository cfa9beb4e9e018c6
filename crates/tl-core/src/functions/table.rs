//! The machinery behind the table of [`super`]: the macros that turn rows into the
//! enums and their methods, the template filler for CUDA expressions, and the traits through
//! which the CPU's loops receive each row's function statically.

use super::{BinaryFn, UnaryFn};

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
pub(super) fn fill(template: &str, args: &[(&str, &str)]) -> String {
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
            shown: $shown:literal,
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

            /// How plans print the function (`tl check --dump-plan`).
            pub fn name(self) -> &'static str {
                match self {
                    $(UnaryFn::$v => $shown,)*
                }
            }

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

            /// Hands the f32 function to `a`. The closure is inlined into the caller's loop
            /// even when large (`gelu`), so the loop's vector copies (`tl_backend`'s
            /// run-time dispatch) compute it at their width instead of calling it per element.
            #[inline(always)]
            pub fn apply_f32<A: Apply1<f32>>(self, a: A) -> A::Out {
                match self {
                    $(UnaryFn::$v => a.apply(#[inline(always)] |$x32: f32| -> f32 { $f32 }),)*
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
            shown: $shown:literal,
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

            /// How plans print the function when it is not an operator.
            pub fn name(self) -> &'static str {
                match self {
                    $(BinaryFn::$v => $shown,)*
                }
            }

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

            /// Hands the f32 function to `a`. The closure is inlined into the caller's loop
            /// even when large (`gelu`), so the loop's vector copies (`tl_backend`'s
            /// run-time dispatch) compute it at their width instead of calling it per element.
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
