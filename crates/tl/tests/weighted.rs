//! Weighted relations read from CSV (`W[x, y] = "edges.csv"`, the last column the value):
//! shortest paths against Dijkstra, widest paths against Floyd–Warshall over (max, min) and
//! max-product paths against Floyd–Warshall over (max, ×), on random sparse graphs whose
//! missing edges must count as no edge (not as weight 0); sums read missing cells as 0 and a
//! read with parentheses is the relation of the defined cells.

mod common;

use std::collections::BinaryHeap;

use common::Rng;

/// A random directed graph on `n` nodes, each edge with probability about `1/every`, and its
/// weight from `weight`, distinct (from, to) pairs only.
fn graph(
    rng: &mut Rng,
    n: usize,
    every: u64,
    mut weight: impl FnMut(&mut Rng) -> f64,
) -> Vec<(usize, usize, f64)> {
    let mut edges = Vec::new();
    for a in 0..n {
        for b in 0..n {
            if rng.next().is_multiple_of(every) {
                let w = weight(rng);
                edges.push((a, b, w));
            }
        }
    }
    edges
}

/// Runs `program` (which reads `w.csv`) beside a CSV of `edges`, node `k` written as
/// `name(k)`; the `data` of its first answer as numbers (`inf` strings become infinities).
fn run(
    program: &str,
    edges: &[(usize, usize, f64)],
    name: fn(usize) -> String,
    args: &[&str],
) -> Vec<f64> {
    numbers(&answer(program, edges, name, args)["data"])
}

/// JSON numbers and `"inf"`/`"-inf"` strings as numbers.
fn numbers(data: &serde_json::Value) -> Vec<f64> {
    data.as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v| match v.as_str() {
            Some("inf") => f64::INFINITY,
            Some("-inf") => f64::NEG_INFINITY,
            Some(other) => panic!("unexpected `{other}`"),
            None => v.as_f64().unwrap_or(f64::NAN),
        })
        .collect()
}

/// [`run`]'s first answer as it is.
fn answer(
    program: &str,
    edges: &[(usize, usize, f64)],
    name: fn(usize) -> String,
    args: &[&str],
) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let csv: String = edges
        .iter()
        .map(|(a, b, w)| format!("{},{},{w}\n", name(*a), name(*b)))
        .collect();
    std::fs::write(dir.path().join("w.csv"), csv).unwrap_or_else(|e| panic!("{e}"));
    let text = program.replace("w.csv", &dir.path().join("w.csv").display().to_string());
    let (ok, answers, err) = common::run_json(&text, args);
    assert!(ok, "{err}\n{text}");
    answers.first().cloned().unwrap_or_default()
}

/// Nodes that appear on no edge are not in the domain: the nodes that do, in order.
fn nodes_of(edges: &[(usize, usize, f64)]) -> Vec<usize> {
    let mut v: Vec<usize> = edges.iter().flat_map(|e| [e.0, e.1]).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Shortest distances from `s` over at least one edge (Dijkstra from each successor).
fn dijkstra(n: usize, edges: &[(usize, usize, f64)], s: usize) -> Vec<f64> {
    let mut dist = vec![f64::INFINITY; n];
    let mut heap = BinaryHeap::new();
    // Keys are negated distances scaled to integers: weights are multiples of 1/4.
    let key = |d: f64| -((d * 4.0).round() as i64);
    for &(a, b, w) in edges {
        if a == s && w < dist[b] {
            dist[b] = w;
            heap.push((key(w), b));
        }
    }
    while let Some((k, u)) = heap.pop() {
        if k != key(dist[u]) {
            continue;
        }
        for &(a, b, w) in edges {
            if a == u && dist[u] + w < dist[b] {
                dist[b] = dist[u] + w;
                heap.push((key(dist[b]), b));
            }
        }
    }
    dist
}

const SHORTEST: &str =
    "W[x, y] = \"w.csv\"\nDist[x, y] = W[x, y]\nDist[x, z] min= Dist[x, y] + W[y, z]\nDist?\n";

#[test]
fn shortest_paths_over_a_weighted_csv_match_dijkstra() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (n, every) in [(1usize, 1u64), (5, 3), (17, 5), (40, 9)] {
        // Weights from 0 to 9.75 in quarters: exact in f32, and 0 is a real edge.
        let edges = graph(&mut rng, n, every, |r| (r.next() % 40) as f64 / 4.0);
        let nodes = nodes_of(&edges);
        for dtype in ["f32", "f64"] {
            let got = run(SHORTEST, &edges, |k| k.to_string(), &["--dtype", dtype]);
            // Integer node ids: the domain is 0 … max id.
            let m = nodes.last().map_or(0, |x| x + 1);
            assert_eq!(got.len(), m * m, "n = {n}");
            for s in 0..m {
                let want = dijkstra(m, &edges, s);
                assert_eq!(
                    &got[s * m..(s + 1) * m],
                    &want[..],
                    "n = {n}, {dtype}, from {s}"
                );
            }
        }
    }
}

#[test]
fn symbol_nodes_and_unreached_cells() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let edges = graph(&mut rng, 12, 6, |r| 0.5 + (r.next() % 20) as f64 / 4.0);
    let nodes = nodes_of(&edges);
    let a = answer(SHORTEST, &edges, |k| format!("city{k}"), &[]);
    let got = numbers(&a["data"]);
    // The rows' labels say which node each row is.
    let order: Vec<usize> = a["labels"][0]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|l| l.as_str()?.strip_prefix("city")?.parse().ok())
        .collect();
    assert_eq!(order.len(), nodes.len());
    let m = order.len();
    assert_eq!(got.len(), m * m);
    let mut unreached = 0;
    for (i, &s) in order.iter().enumerate() {
        let want = dijkstra(12, &edges, s);
        for (j, &t) in order.iter().enumerate() {
            assert_eq!(got[i * m + j], want[t], "{s} to {t}");
            unreached += usize::from(want[t].is_infinite());
        }
    }
    assert!(unreached > 0, "the graph should leave some pairs unreached");
}

#[test]
fn widest_paths_treat_a_missing_edge_as_none_and_capacity_zero_as_an_edge() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for (n, every) in [(6usize, 3u64), (19, 6)] {
        let edges = graph(&mut rng, n, every, |r| (r.next() % 8) as f64);
        let m = nodes_of(&edges).last().map_or(0, |x| x + 1);
        let mut d = vec![vec![f64::NEG_INFINITY; m]; m];
        for &(a, b, w) in &edges {
            d[a][b] = w;
        }
        for k in 0..m {
            for i in 0..m {
                for j in 0..m {
                    d[i][j] = d[i][j].max(d[i][k].min(d[k][j]));
                }
            }
        }
        let program = "Cap[x, y] = \"w.csv\"\nWide[x, y] = Cap[x, y]\nWide[x, z] max= Wide[x, y] - relu(Wide[x, y] - Cap[y, z])\nWide?\n";
        let got = run(program, &edges, |k| k.to_string(), &[]);
        let want: Vec<f64> = d.into_iter().flatten().collect();
        assert_eq!(got, want, "n = {n}");
    }
}

#[test]
fn max_product_paths_match_floyd_warshall() {
    let mut rng = Rng(0x0bad_cafe_dead_beef);
    for (n, every) in [(7usize, 3u64), (23, 7)] {
        // Probabilities in sixteenths, 0 included (an edge that cannot be taken).
        let edges = graph(&mut rng, n, every, |r| (r.next() % 17) as f64 / 16.0);
        let m = nodes_of(&edges).last().map_or(0, |x| x + 1);
        let mut d: Vec<Vec<Option<f64>>> = vec![vec![None; m]; m];
        for &(a, b, w) in &edges {
            d[a][b] = Some(w);
        }
        for k in 0..m {
            for i in 0..m {
                for j in 0..m {
                    if let (Some(x), Some(y)) = (d[i][k], d[k][j]) {
                        d[i][j] = Some(d[i][j].map_or(x * y, |c| c.max(x * y)));
                    }
                }
            }
        }
        let program = "P[x, y] = \"w.csv\"\nBest[x, y] = P[x, y]\nBest[x, z] max= Best[x, y] P[y, z]\nBest?\n";
        let got = run(program, &edges, |k| k.to_string(), &["--dtype", "f64"]);
        let want: Vec<f64> = d
            .into_iter()
            .flatten()
            .map(|c| c.unwrap_or(f64::NEG_INFINITY))
            .collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g == w || (g - w).abs() <= 1e-12,
                "{g} vs {w}\n{got:?}\n{want:?}"
            );
        }
    }
}

#[test]
fn sums_read_missing_cells_as_zero_and_parentheses_read_the_defined_cells() {
    let edges = [(0, 1, 2.5), (0, 2, 0.0), (2, 1, -1.0)];
    let out = run(
        "W[x, y] = \"w.csv\"\nOut[x] = W[x, y]\nOut?\n",
        &edges,
        |k| k.to_string(),
        &[],
    );
    assert_eq!(out, [2.5, 0.0, -1.0]);
    let count = run(
        "W[x, y] = \"w.csv\"\nN = W(x, y)\nN?\n",
        &edges,
        |k| k.to_string(),
        &[],
    );
    assert_eq!(count, [3.0]);
    let rule = "W[x, y] = \"w.csv\"\nR(x, z) <- W(x, y), W(y, z)\nN = R(x, z)\nN?\n";
    assert_eq!(run(rule, &edges, |k| k.to_string(), &[]), [1.0]);
}

/// Runs `program` beside `csv` (as `w.csv`); the error codes it prints.
fn codes(program: &str, csv: &str) -> String {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("w.csv"), csv).unwrap_or_else(|e| panic!("{e}"));
    let text = program.replace("w.csv", &dir.path().join("w.csv").display().to_string());
    let (ok, _, err) = common::run_raw(&text, &[]);
    assert!(!ok, "{text} should fail");
    err
}

#[test]
fn bad_weighted_files_are_located_errors() {
    let p = "W[x, y] = \"w.csv\"\nW?\n";
    let err = codes(p, "a,b,1\nb,c,heavy\n");
    assert!(
        err.contains("TL0115") && err.contains("row 2 holds `heavy`"),
        "{err}"
    );
    let err = codes(p, "a,b,1\na,b,2\n");
    assert!(
        err.contains("TL0115") && err.contains("which an earlier row gave 1"),
        "{err}"
    );
    let err = codes("W[x] = \"w.csv\"\nW?\n", "a,b,1,2\n");
    assert!(err.contains("TL0") && err.contains("W"), "{err}");
    // A first row whose value is not a number is a header; its names join no domain.
    let (ok, answers, err) = {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("w.csv"), "from,to,km\na,b,1.5\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let text = format!("W[x, y] = \"{}\"\nW?\n", dir.path().join("w.csv").display());
        common::run_json(&text, &[])
    };
    assert!(ok, "{err}");
    assert_eq!(numbers(&answers[0]["data"]), [1.5]);
    assert_eq!(answers[0]["labels"], serde_json::json!([["a"], ["b"]]));
    // The same cell twice with the same value is one entry.
    let (ok, answers, err) = {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("w.csv"), "a,b,1\na,b,1\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let text = format!(
            "W[x, y] = \"{}\"\nN = W(x, y)\nN?\n",
            dir.path().join("w.csv").display()
        );
        common::run_json(&text, &[])
    };
    assert!(ok, "{err}");
    assert_eq!(numbers(&answers[0]["data"]), [1.0]);
}
