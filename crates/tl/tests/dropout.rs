//! `dropout(x, p)`: the identity outside training; in each training step a fresh mask that
//! zeroes each element with probability p and scales the rest by 1 / (1 - p), drawn from the
//! run's seeded generator. The mask is read off exactly through the gradient of one SGD step:
//! with `Loss = X[i] dropout(A[i], p)` and `A` starting at 0, a step of lr 1 leaves
//! `A = -X · mask`.

mod common;

use common::{data, fails, run_json};

fn answers(text: &str, seed: &str) -> Vec<Vec<f64>> {
    let (ok, answers, err) = run_json(text, &["--dtype", "f64", "--seed", seed]);
    assert!(ok, "{text}\n{err}");
    answers.iter().map(data).collect()
}

/// One (or `steps`) SGD steps of lr 1 on `Loss = Xd[i] A[i]`-style programs over `n` ones.
fn program(n: usize, p: f64, steps: usize, on_data: bool) -> String {
    let body = if on_data {
        // Dropout on data alone: nothing it reads is learned, yet every step draws anew.
        format!("Xd[i] = dropout(X[i], {p})\nLoss = Xd[i] A[i]\n")
    } else {
        format!("Loss = X[i] dropout(A[i], {p})\n")
    };
    format!(
        "domain N = {n}\nX[i: N] = 1\nparam A[{n}] = 0\n{body}\
         minimize Loss with sgd(lr=1) for {steps} steps\nA?\n"
    )
}

#[test]
fn dropout_is_the_identity_outside_training() {
    let out = answers("X = [0.5, -2, 3, 7]\nY[i] = dropout(X[i], 0.9)\nY?\n", "0");
    assert_eq!(out, vec![vec![0.5, -2.0, 3.0, 7.0]]);
}

#[test]
fn a_training_step_drops_a_fraction_p_and_scales_the_rest() {
    let (n, p) = (20_000, 0.3);
    for on_data in [false, true] {
        let a = &answers(&program(n, p, 1, on_data), "5")[0];
        let keep = 1.0 / (1.0 - p);
        let zeros = a.iter().filter(|&&x| x == 0.0).count();
        let kept = a.iter().filter(|&&x| (x + keep).abs() < 1e-12).count();
        assert_eq!(zeros + kept, n, "every element is 0 or -1/(1-p)");
        // Binomial(n, p): mean 6000, standard deviation about 65.
        let expected = p * n as f64;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (zeros as f64 - expected).abs() < 5.0 * sd,
            "{zeros} zeros of {n} (on data: {on_data})"
        );
    }
}

#[test]
fn each_step_draws_a_fresh_mask_from_the_seed() {
    let (n, p) = (20_000, 0.5);
    let a = &answers(&program(n, p, 2, false), "7")[0];
    // Two steps: A = -(m1 + m2) with each m in {0, 2}; one mask reused would never give -2.
    let once = a.iter().filter(|&&x| (x + 2.0).abs() < 1e-12).count();
    let expected = 2.0 * p * (1.0 - p) * n as f64;
    assert!(
        (once as f64 - expected).abs() < 5.0 * (expected * 0.5).sqrt(),
        "{once} elements kept in exactly one of two steps"
    );
    // The same seed repeats the run exactly; another seed draws other masks.
    assert_eq!(a, &answers(&program(n, p, 2, false), "7")[0]);
    assert_ne!(a, &answers(&program(n, p, 2, false), "8")[0]);
}

#[test]
fn each_mini_batch_step_draws_a_fresh_mask() {
    // One example per batch, two steps: as above, A = -(m1 + m2), so elements kept in exactly
    // one step read -2; a mask drawn again from the seed at every step would give none.
    let (n, p) = (20_000, 0.5);
    let text = format!(
        "domain N = {n}\nX[e: 2, i: N] = 1\nparam A[{n}] = 0\n\
         Loss = X[e, i] dropout(A[i], {p})\n\
         minimize Loss with sgd(lr=1) for 2 steps batch e 1\nA?\n"
    );
    let a = &answers(&text, "3")[0];
    let once = a.iter().filter(|&&x| (x + 2.0).abs() < 1e-12).count();
    let expected = 2.0 * p * (1.0 - p) * n as f64;
    assert!(
        (once as f64 - expected).abs() < 5.0 * (expected * 0.5).sqrt(),
        "{once} elements kept in exactly one of two mini-batch steps"
    );
    assert_eq!(a, &answers(&text, "3")[0]);
}

#[test]
fn the_rate_is_a_number_below_one() {
    fails(
        "X = [1, 2]\nY[i] = dropout(X[i], 1)\nY?\n",
        "TL0114",
        "2:22",
    );
    fails(
        "X = [1, 2]\nY[i] = dropout(X[i], X[0])\nY?\n",
        "TL0114",
        "2:22",
    );
    fails("X = [1, 2]\nY[i] = dropout(X[i])\nY?\n", "TL0112", "2:8");
}

#[test]
fn each_layer_of_a_layer_recursion_draws_its_own_mask() {
    // H[1] = dropout(H[0] + A[0]), H[2] = dropout(H[1] + A[1]), Loss = Σ H[2]: one step of lr
    // 1 from A = 0 leaves A[0] = -4·m1·m2 (and A[1] = -2·m2). With each layer's own mask about
    // a quarter of A[0] is -4; had both layers drawn one mask, half would be.
    let n = 8_000;
    let text = format!(
        "domain N = {n}\nX[i: N] = 1\nparam A[2, {n}] = 0\nH[0, i] = X[i]\n\
         H[l+1, i] = dropout(H[l, i] + A[l, i], 0.5)\nLoss = H[2, i]\n\
         minimize Loss with sgd(lr=1) for 1 steps\nA?\n"
    );
    let a = &answers(&text, "3")[0];
    let first = &a[..n];
    let both = first.iter().filter(|&&x| (x + 4.0).abs() < 1e-12).count();
    assert_eq!(
        both + first.iter().filter(|&&x| x == 0.0).count(),
        n,
        "every element of A[0] is 0 or -4"
    );
    // Binomial(n, 1/4): mean 2000, standard deviation about 39.
    let sd = (n as f64 * 0.25 * 0.75).sqrt();
    assert!(
        (both as f64 - n as f64 / 4.0).abs() < 5.0 * sd,
        "{both} of {n} elements kept by both layers"
    );
}
