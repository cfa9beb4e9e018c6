//! The table's rows against finite differences, the f32 column against the f64 one, and
//! the CUDA templates.

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

#[test]
fn gelu_in_f32_is_within_a_millionth_everywhere() {
    // A dense sweep and a million random points over the whole range where the result is a
    // normal f32, against the f64 definition: gelu to a relative 1e-6, gelu' (Φ(x) + x·φ(x),
    // whose terms cancel at its zero near -0.75) to 1e-6 of the larger of it and 1.
    let mut worst = (0.0f64, 0.0f32, "");
    let mut check = |xf: f32| {
        for (f, name, floor) in [
            (UnaryFn::Gelu, "gelu", 0.0),
            (UnaryFn::GeluGrad, "gelu'", 1.0),
        ] {
            let want = f.eval(f64::from(xf));
            if want != 0.0 && want.abs() < f64::from(f32::MIN_POSITIVE) {
                continue;
            }
            let got = f64::from(f.eval_f32(xf));
            let err = if want == 0.0 {
                got.abs()
            } else {
                (got - want).abs() / want.abs().max(floor)
            };
            if err > worst.0 {
                worst = (err, xf, name);
            }
        }
    };
    let mut x = -13.0f64;
    while x <= 13.0 {
        check(x as f32);
        x += 0.000_37;
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..1_000_000 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        check(((state >> 40) as f64 / (1u64 << 24) as f64 * 26.0 - 13.0) as f32);
    }
    assert!(
        worst.0 <= 1e-6,
        "{} at {} is off by {:e}",
        worst.2,
        worst.1,
        worst.0
    );
}
