//! 16-bit training keeps f32 master weights: an Adam step of 1e-3 on weights near 1 is below
//! bf16's resolution there (2^-7), so updating the 16-bit values themselves would lose most
//! steps; updated through their f32 copies, bf16 and f16 runs end where an f32 run ends. A
//! checkpoint keeps the master copies, so a resumed 16-bit run ends exactly where an
//! uninterrupted one does.

mod common;

/// A least-squares fit with a small learning rate; `Loss` before and after, then `W`.
const FIT: &str = "X[e: 32, i: 8] = sin(0.7 e + 1.3 i)\nT[e] = cos(0.3 e)\nparam W[8] ~ normal(0, 1)\nY[e] = W[i] X[e, i]\nLoss avg= (Y[e] - T[e])^2\nLoss?\nminimize Loss with adam(lr=0.001) for 300 steps\nLoss?\nW?\n";

/// The answers of `text` run with `args`.
fn answers(text: &str, args: &[&str]) -> Vec<Vec<f64>> {
    let (ok, out, err) = common::run_json(text, args);
    assert!(ok, "{err}");
    out.iter().map(common::data).collect()
}

#[test]
fn sixteen_bit_runs_train_like_f32() {
    let wide = answers(FIT, &["--dtype", "f32"]);
    let (before, after) = (wide[0][0], wide[1][0]);
    assert!(after < 0.6 * before, "f32 trains: {before} -> {after}");
    for dtype in ["bf16", "f16"] {
        let narrow = answers(FIT, &["--dtype", dtype]);
        let end = narrow[1][0];
        assert!(
            (end - after).abs() <= 0.01 * after,
            "{dtype} ends at {end}, f32 at {after}"
        );
    }
}

#[test]
fn a_resumed_sixteen_bit_run_ends_where_an_uninterrupted_one_ends() {
    let dir = tempfile::tempdir().expect("a scratch folder");
    let ck = dir.path().join("ck");
    let ck = ck.to_string_lossy();
    let whole = answers(FIT, &["--dtype", "bf16"]);
    let half = FIT.replace("for 300 steps", "for 150 steps");
    answers(&half, &["--dtype", "bf16", "--checkpoint", &ck]);
    let resumed = answers(FIT, &["--dtype", "bf16", "--resume", &ck]);
    assert_eq!(whole[1], resumed[1], "loss");
    assert_eq!(whole[2], resumed[2], "W");
}
