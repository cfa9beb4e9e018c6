//! Placement and `concat`: a tensor placed by several equations holds every placement (the
//! smallest extent that does), a placement past a fixed extent or before 0 is an error, reads
//! of a placed axis are soft, and `concat` (flatten and append) agrees with a reference built
//! here, forwards and backwards (one exact SGD step from known parameters).

mod common;

use common::{data, fails, run_json};

fn run(text: &str) -> (bool, Vec<serde_json::Value>, String) {
    run_json(text, &["--dtype", "f64"])
}

/// The shape and data of each answer.
fn dense(text: &str) -> Vec<(Vec<usize>, Vec<f64>)> {
    let (ok, answers, err) = run(text);
    assert!(ok, "{text}\n{err}");
    answers
        .iter()
        .map(|a| {
            let shape = a["shape"]
                .as_array()
                .map(|s| s.iter().filter_map(|x| x.as_u64()).map(|x| x as usize))
                .into_iter()
                .flatten()
                .collect();
            (shape, data(a))
        })
        .collect()
}

/// Deterministic values in [-1, 1), never 0.
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0 + 1e-3
        })
        .collect()
}

/// A nested literal of `data` in `shape`.
fn literal(shape: &[usize], data: &[f64]) -> String {
    match shape {
        [] => format!("{:e}", data[0]),
        [n, rest @ ..] => {
            let step: usize = rest.iter().product();
            let parts: Vec<String> = (0..*n)
                .map(|k| literal(rest, &data[k * step..(k + 1) * step]))
                .collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

fn close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-12 * (1.0 + w.abs()),
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn every_placement_of_every_equation_is_held() {
    let both = [
        "U = [1, 2, 3]\nB = [7, 8]\nC[i] = U[i]\nC[i + 3] = B[i]\nC?\n",
        "U = [1, 2, 3]\nB = [7, 8]\nC[i + 3] = B[i]\nC[i] = U[i]\nC?\n",
    ];
    for text in both {
        assert_eq!(
            dense(text),
            vec![(vec![5], vec![1.0, 2.0, 3.0, 7.0, 8.0])],
            "{text}"
        );
    }
    // An annotation on a placed index sizes the axis, and cells nothing places are 0.
    assert_eq!(
        dense("B = [1, 2]\nC[i + 1: 5] = B[i]\nC?\n"),
        vec![(vec![5], vec![0.0, 1.0, 2.0, 0.0, 0.0])]
    );
    // Reads of a placed axis are soft: `i` keeps the extent of `U`, and `C` its own.
    assert_eq!(
        dense("U = [1, 2, 3]\nC[i + 1] = U[i]\nD[i] = C[i] U[i]\nD?\nC?\n"),
        vec![
            (vec![3], vec![0.0, 2.0, 6.0]),
            (vec![4], vec![0.0, 1.0, 2.0, 3.0])
        ]
    );
    // A recurrence whose index walks the very axis it places stops at its end.
    assert_eq!(
        dense("domain N = 5\nC[i: N] = 0\nC[0] = 1\nC[i + 1] = 2 C[i]\nC?\n"),
        vec![(vec![5], vec![1.0, 2.0, 4.0, 8.0, 16.0])]
    );
}

#[test]
fn placements_outside_a_fixed_extent_are_errors() {
    fails(
        "U = [1, 2, 3]\nB = [7, 8]\nC[i: 3] = U[i]\nC[i + 3] = B[i]\nC?\n",
        "TL0120",
        "4:3",
    );
    fails(
        "domain N = 4\nB = [7, 8, 9]\nC[i: N] = 1\nC[i + 2] = B[i]\nC?\n",
        "TL0120",
        "4:3",
    );
    fails("B = [1, 2]\nC[i - 1] = B[i]\nC?\n", "TL0120", "2:3");
    fails("A = [1, 2]\nC[i] = 2 concat(A[i])\nC?\n", "TL0114", "2:10");
    fails(
        "A = [1, 2]\nB = [3]\nC[k] = concat(A[i], B[j] A[i])\nC?\n",
        "TL0114",
        "3:21",
    );
}

#[test]
fn concat_appends_along_the_new_index() {
    for (n, m, r) in [(1, 1, 1), (5, 3, 4), (7, 2, 9)] {
        let (a, b, c) = (values(n, 1), values(m, 2), values(r, 3));
        let text = format!(
            "A = {}\nB = {}\nE = {}\nC[k] = concat(A[i], 2 B[j] + 1, E[q])\nC?\n",
            literal(&[n], &a),
            literal(&[m], &b),
            literal(&[r], &c)
        );
        let mut want = a.clone();
        want.extend(b.iter().map(|x| 2.0 * x + 1.0));
        want.extend(&c);
        let got = dense(&text);
        assert_eq!(got[0].0, vec![n + m + r]);
        close(&got[0].1, &want);
    }
    // Rows of matrices: the kept index `p` stays, `i` and `j` are laid along `k`.
    let text = "A = [[1, 2], [3, 4]]\nB = [[5], [6]]\nC[p, k] = concat(A[p, i], B[p, j])\nC?\n";
    assert_eq!(
        dense(text),
        vec![(vec![2, 3], vec![1.0, 2.0, 5.0, 3.0, 4.0, 6.0])]
    );
}

#[test]
fn concat_of_one_argument_flattens_row_major() {
    for (b, h, p, v) in [(1, 1, 1, 1), (2, 3, 4, 5), (3, 2, 1, 7)] {
        let attn = values(b * h * p * v, 4);
        let text = format!(
            "Attn = {}\nMerge[b, p, m] = concat(Attn[b, h, p, v])\nMerge?\n",
            literal(&[b, h, p, v], &attn)
        );
        let mut want = vec![0.0; b * p * h * v];
        for bi in 0..b {
            for hi in 0..h {
                for pi in 0..p {
                    for vi in 0..v {
                        let m = hi * v + vi;
                        want[(bi * p + pi) * h * v + m] = attn[((bi * h + hi) * p + pi) * v + vi];
                    }
                }
            }
        }
        let got = dense(&text);
        assert_eq!(got[0].0, vec![b, p, h * v]);
        close(&got[0].1, &want);
    }
}

#[test]
fn gradients_flow_through_placements_and_concat() {
    // One SGD step of lr 1 from zero on Loss = W[k] C[k] leaves each parameter at minus the
    // weight of the cell it was placed in.
    let w = values(6, 5);
    let text = format!(
        "W = {}\nparam P[3] = 0\nparam Q[2] = 0\nparam R = 0\n\
         C[k] = concat(P[i], Q[j])\nC[5] = R\nLoss = W[k] C[k]\n\
         minimize Loss with sgd(lr=1) for 1 steps\nP?\nQ?\nR?\n",
        literal(&[6], &w)
    );
    let got = dense(&text);
    close(&got[0].1, &[-w[0], -w[1], -w[2]]);
    close(&got[1].1, &[-w[3], -w[4]]);
    close(&got[2].1, &[-w[5]]);
    // Flattening: A[h, p, v] lands at M[p, h·|v| + v].
    let (h, p, v) = (2, 3, 4);
    let w2 = values(p * h * v, 6);
    let text = format!(
        "W = {}\nparam A[{h}, {p}, {v}] = 0\nM[p, m] = concat(A[h, p, v])\n\
         Loss = W[p, m] M[p, m]\nminimize Loss with sgd(lr=1) for 1 steps\nA?\n",
        literal(&[p, h * v], &w2)
    );
    let got = dense(&text);
    let mut want = vec![0.0; h * p * v];
    for hi in 0..h {
        for pi in 0..p {
            for vi in 0..v {
                want[(hi * p + pi) * v + vi] = -w2[pi * h * v + hi * v + vi];
            }
        }
    }
    close(&got[0].1, &want);
}

#[test]
fn a_read_of_leading_slices_keeps_the_trailing_axes_whole() {
    // NumPy's `A[1:3]` on a rank-3 array: the slice of the first axis, the others whole.
    let base = "A[i: 4, j: 2, k: 3] = 100 i + 10 j + k\n";
    let got = dense(&format!("{base}B = A[1:3]\nB?\nC = A[0:1, 1:2]\nC?\n"));
    let b: Vec<f64> = (1..3)
        .flat_map(|i| {
            (0..2).flat_map(move |j| (0..3).map(move |k| f64::from(100 * i + 10 * j + k)))
        })
        .collect();
    assert_eq!(got[0], (vec![2, 2, 3], b));
    assert_eq!(got[1], (vec![1, 1, 3], vec![10.0, 11.0, 12.0]));
    // A read with too few named indices is still an error.
    fails(&format!("{base}D[i] = A[i]\nD?\n"), "TL0105", "2:8");
}
