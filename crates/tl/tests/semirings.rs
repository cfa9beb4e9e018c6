//! Recursion combined by min or max (the tropical semirings) is a least fixpoint that starts
//! from the operator's identity: shortest paths against Floyd–Warshall and max-product paths
//! (Viterbi) against the same recursion in f64, widest (bottleneck) paths against
//! Floyd–Warshall over (max, min), on random weighted graphs; unreached cells print `inf`.

mod common;

/// Runs `tl run --json --dtype f64` on `text`; the `data` of its one answer.
fn answer(text: &str) -> Vec<serde_json::Value> {
    let (ok, answers, err) = common::run_json(text, &["--dtype", "f64"]);
    assert!(ok, "{err}");
    answers
        .first()
        .and_then(|a| a["data"].as_array().cloned())
        .unwrap_or_default()
}

use common::Rng;

/// An n×n matrix with about half its cells 0 and the rest digits 1 to 9.
fn half_digits(rng: &mut Rng, n: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|_| {
            (0..n)
                .map(|_| {
                    if rng.next().is_multiple_of(2) {
                        0.0
                    } else {
                        (1 + rng.next() % 9) as f64
                    }
                })
                .collect()
        })
        .collect()
}

fn literal(m: &[Vec<f64>]) -> String {
    let rows: Vec<String> = m
        .iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().map(|x| format!("{x:e}")).collect();
            format!("[{}]", cells.join(", "))
        })
        .collect();
    format!("[{}]", rows.join(", "))
}

#[test]
fn shortest_paths_match_floyd_warshall() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for n in [1usize, 2, 7, 13] {
        // 1e30 stands for "no edge": finite, so paths through it are long, not infinite.
        let mut w = vec![vec![1e30; n]; n];
        for (i, row) in w.iter_mut().enumerate() {
            for (j, cell) in row.iter_mut().enumerate() {
                if i == j {
                    *cell = 0.0;
                } else if rng.next().is_multiple_of(3) {
                    *cell = (1 + rng.next() % 9) as f64 + 0.25;
                }
            }
        }
        let mut d = w.clone();
        for k in 0..n {
            for i in 0..n {
                for j in 0..n {
                    d[i][j] = d[i][j].min(d[i][k] + d[k][j]);
                }
            }
        }
        let text = format!(
            "W = {}\nDist[x, y] = W[x, y]\nDist[x, z] min= Dist[x, y] + W[y, z]\nDist?\n",
            literal(&w)
        );
        let got = answer(&text);
        let want: Vec<f64> = d.into_iter().flatten().collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            let g = g.as_f64().unwrap_or(f64::NAN);
            assert!(
                (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                "{g} vs {w}\n{text}"
            );
        }
    }
}

#[test]
fn max_product_paths_match_the_recursion_in_f64() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let n = 9;
    let p: Vec<Vec<f64>> = half_digits(&mut rng, n)
        .into_iter()
        .map(|row| row.into_iter().map(|d| d / 10.0).collect())
        .collect();
    // Best path probability: iterate to the fixpoint (probabilities below 1 make it finite).
    let mut v = p.clone();
    loop {
        let mut next = p.clone();
        for x in 0..n {
            for z in 0..n {
                for y in 0..n {
                    next[x][z] = next[x][z].max(v[x][y] * p[y][z]);
                }
            }
        }
        if next == v {
            break;
        }
        v = next;
    }
    let text = format!(
        "P = {}\nV[x, y] = P[x, y]\nV[x, z] max= V[x, y] P[y, z]\nV?\n",
        literal(&p)
    );
    let got = answer(&text);
    for (g, w) in got.iter().zip(v.iter().flatten()) {
        let g = g.as_f64().unwrap_or(f64::NAN);
        assert!((g - w).abs() <= 1e-12, "{g} vs {w}");
    }
}

#[test]
fn widest_paths_match_floyd_warshall_over_max_min() {
    let mut rng = Rng(0x853c_49e6_748f_ea9b);
    for n in [1usize, 3, 8, 11] {
        // Capacities 1..=9 on about half the pairs, 0 (no edge) elsewhere.
        let cap = half_digits(&mut rng, n);
        // Bottleneck paths of one edge or more: Floyd–Warshall over (max, min).
        let mut w = cap.clone();
        for k in 0..n {
            for i in 0..n {
                for j in 0..n {
                    w[i][j] = w[i][j].max(w[i][k].min(w[k][j]));
                }
            }
        }
        // min(a, b) is a - relu(a - b).
        let text = format!(
            "Cap = {}\nWide[x, y] = Cap[x, y]\nWide[x, z] max= Wide[x, y] - relu(Wide[x, y] - Cap[y, z])\nWide?\n",
            literal(&cap)
        );
        let got = answer(&text);
        let want: Vec<f64> = w.into_iter().flatten().collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.as_f64(), Some(*w), "{text}");
        }
    }
}

#[test]
fn unreached_cells_stay_infinite() {
    // In f32, 1e39 is +inf: no edge at all.
    let (ok, stdout, stderr) = common::run_raw(
        "W = [[0, 1, 1e39], [1e39, 0, 1e39], [1e39, 1e39, 0]]\nDist[x, y] = W[x, y]\nDist[x, z] min= Dist[x, y] + W[y, z]\nDist?\n",
        &[],
    );
    assert!(ok);
    assert_eq!(
        stdout.trim(),
        r#"{"query":"Dist","shape":[3,3],"data":[0.0,1.0,"inf","inf",0.0,"inf","inf","inf",0.0]}"#
    );
    assert!(stderr.is_empty());
}
