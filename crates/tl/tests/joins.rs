//! Joins of many factors. Generated graphical models (random DAGs over binary and ternary
//! variables, at most three parents each, one table of unnormalised positive numbers per
//! variable) are written as programs whose equations join every table at once, the partition
//! function `Z = P0[x0] P1[x0, x1] …` and one marginal `M[x] = …`; `tl run --json --dtype f64`
//! must agree with the same sums computed here in f64, by variable elimination or, for small
//! models, over every assignment. Products of many equal factors are checked the same way.

use std::process::Command;
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() >> 33) as usize % n.max(1)
    }

    /// Uniform in [0.05, 1).
    fn weight(&mut self) -> f64 {
        0.05 + 0.95 * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One table per variable, over its parents and itself (row-major, the variable last).
struct Model {
    sizes: Vec<usize>,
    scopes: Vec<Vec<usize>>,
    tables: Vec<Vec<f64>>,
}

/// A random DAG over `n` variables: variable k has up to three parents among the `width`
/// variables before it (so the treewidth is at most `width`); with `ternary`, about half the
/// variables have three values.
fn model(rng: &mut Rng, n: usize, width: usize, ternary: bool) -> Model {
    let sizes: Vec<usize> = (0..n)
        .map(|_| if ternary && rng.below(2) == 0 { 3 } else { 2 })
        .collect();
    let mut scopes = Vec::new();
    let mut tables = Vec::new();
    for k in 0..n {
        let window = k.min(width);
        let want = rng.below(4).min(window);
        let mut scope: Vec<usize> = Vec::new();
        while scope.len() < want {
            let p = k - 1 - rng.below(window);
            if !scope.contains(&p) {
                scope.push(p);
            }
        }
        scope.sort_unstable();
        scope.push(k);
        let cells: usize = scope.iter().map(|&v| sizes[v]).product();
        tables.push((0..cells).map(|_| rng.weight()).collect());
        scopes.push(scope);
    }
    Model {
        sizes,
        scopes,
        tables,
    }
}

/// A nested list literal of a table over `shape`.
fn literal(values: &[f64], shape: &[usize]) -> String {
    match shape.split_first() {
        None => format!("{:?}", values[0]),
        Some((&n, rest)) => {
            let stride = values.len() / n;
            let parts: Vec<String> = (0..n)
                .map(|i| literal(&values[i * stride..(i + 1) * stride], rest))
                .collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

/// The program: every table, `Z` (the sum of the product of all tables) and `M[x{keep}]`.
fn program(m: &Model, keep: usize) -> String {
    let mut out = String::new();
    let mut join = Vec::new();
    for (k, (scope, table)) in m.scopes.iter().zip(&m.tables).enumerate() {
        let shape: Vec<usize> = scope.iter().map(|&v| m.sizes[v]).collect();
        out.push_str(&format!("P{k} = {}\n", literal(table, &shape)));
        let vars: Vec<String> = scope.iter().map(|v| format!("x{v}")).collect();
        join.push(format!("P{k}[{}]", vars.join(", ")));
    }
    let join = join.join(" ");
    out.push_str(&format!("Z = {join}\nM[x{keep}] = {join}\nZ?\nM?\n"));
    out
}

/// Runs `program` with `tl run --json --dtype f64` (the CPU), returning each answer's data
/// and how long the run took.
fn run(program: &str) -> (Vec<Vec<f64>>, Duration) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("model.tl");
    std::fs::write(&path, program).unwrap_or_else(|e| panic!("cannot write program: {e}"));
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tl"))
        .args(["run", "--json", "--device", "cpu", "--dtype", "f64"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tl: {e}"));
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l}: {e}"));
            v["data"]
                .as_array()
                .unwrap_or_else(|| panic!("no data in {l}"))
                .iter()
                .map(|x| x.as_f64().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    (answers, took)
}

/// Row-major position of `assignment` (indexed by variable) in a table over `scope`.
fn position(scope: &[usize], sizes: &[usize], assignment: &[usize]) -> usize {
    scope
        .iter()
        .fold(0, |acc, &v| acc * sizes[v] + assignment[v])
}

/// Steps `assignment` over the variables of `scope` (last fastest); false after the last.
fn advance(scope: &[usize], sizes: &[usize], assignment: &mut [usize]) -> bool {
    for &v in scope.iter().rev() {
        assignment[v] += 1;
        if assignment[v] < sizes[v] {
            return true;
        }
        assignment[v] = 0;
    }
    false
}

/// The marginal over `keep`, summing the product of all tables over every assignment.
fn brute_force(m: &Model, keep: usize) -> Vec<f64> {
    let all: Vec<usize> = (0..m.sizes.len()).collect();
    let mut assignment = vec![0; m.sizes.len()];
    let mut marginal = vec![0.0; m.sizes[keep]];
    loop {
        let p: f64 = m
            .scopes
            .iter()
            .zip(&m.tables)
            .map(|(s, t)| t[position(s, &m.sizes, &assignment)])
            .product();
        marginal[assignment[keep]] += p;
        if !advance(&all, &m.sizes, &mut assignment) {
            return marginal;
        }
    }
}

/// The marginal over `keep` by variable elimination, each step removing the variable whose
/// factors together span the fewest cells.
fn eliminate(m: &Model, keep: usize) -> Vec<f64> {
    let sizes = &m.sizes;
    let mut factors: Vec<(Vec<usize>, Vec<f64>)> = m
        .scopes
        .iter()
        .cloned()
        .zip(m.tables.iter().cloned())
        .collect();
    let mut left: Vec<usize> = (0..sizes.len()).filter(|&v| v != keep).collect();
    let span = |factors: &[(Vec<usize>, Vec<f64>)], v: usize| {
        let mut scope: Vec<usize> = Vec::new();
        for (s, _) in factors.iter().filter(|(s, _)| s.contains(&v)) {
            scope.extend(s);
        }
        scope.sort_unstable();
        scope.dedup();
        scope
    };
    let mut assignment = vec![0; sizes.len()];
    while !left.is_empty() {
        let cells = |v: usize| -> usize { span(&factors, v).iter().map(|&u| sizes[u]).product() };
        let (at, _) = left
            .iter()
            .enumerate()
            .min_by_key(|(_, &v)| cells(v))
            .unwrap_or((0, &0));
        let v = left.swap_remove(at);
        let scope = span(&factors, v);
        let (holding, rest): (Vec<_>, Vec<_>) =
            factors.into_iter().partition(|(s, _)| s.contains(&v));
        let out_scope: Vec<usize> = scope.iter().copied().filter(|&u| u != v).collect();
        let mut table = vec![0.0; out_scope.iter().map(|&u| sizes[u]).product()];
        for &u in &scope {
            assignment[u] = 0;
        }
        loop {
            let p: f64 = holding
                .iter()
                .map(|(s, t)| t[position(s, sizes, &assignment)])
                .product();
            table[position(&out_scope, sizes, &assignment)] += p;
            if !advance(&scope, sizes, &mut assignment) {
                break;
            }
        }
        factors = rest;
        factors.push((out_scope, table));
    }
    (0..sizes[keep])
        .map(|x| {
            assignment[keep] = x;
            factors
                .iter()
                .map(|(s, t)| t[position(s, sizes, &assignment)])
                .product()
        })
        .collect()
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} against {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-9 * w.abs(),
            "{what}: {got:?} against {want:?}"
        );
    }
}

/// Runs model `m` and checks Z and the marginal of `keep` against `marginal`.
fn check(m: &Model, keep: usize, marginal: &[f64], what: &str) -> Duration {
    let (answers, took) = run(&program(m, keep));
    assert_eq!(answers.len(), 2, "{what}");
    assert_close(&answers[0], &[marginal.iter().sum::<f64>()], what);
    assert_close(&answers[1], marginal, what);
    took
}

#[test]
fn small_models_match_a_sum_over_every_assignment() {
    let mut rng = Rng(0x5eed);
    for trial in 0..4 {
        // Parents anywhere before: no bound on the treewidth but the model's size.
        let m = model(&mut rng, 11, 11, trial % 2 == 1);
        let keep = rng.below(11);
        let exact = brute_force(&m, keep);
        assert_close(&eliminate(&m, keep), &exact, "the reference itself");
        check(&m, keep, &exact, &format!("small model {trial}"));
    }
}

#[test]
fn models_with_hundreds_of_factors_match_variable_elimination() {
    let mut rng = Rng(2024);
    // (variables, window of parents, ternary variables). The last two have treewidths near
    // 14 and 20: orders that ignore the graph need intermediates of 10^10 cells and more.
    for (n, width, ternary) in [
        (300, 4, false),
        (200, 8, true),
        (223, 30, true),
        (223, 60, false),
    ] {
        let m = model(&mut rng, n, width, ternary);
        let keep = n / 2;
        let want = eliminate(&m, keep);
        check(&m, keep, &want, &format!("{n} factors, window {width}"));
    }
}

#[test]
fn a_223_factor_binary_model_of_treewidth_3_answers_in_seconds() {
    let mut rng = Rng(223);
    let m = model(&mut rng, 223, 3, false);
    let want = eliminate(&m, 111);
    let took = check(&m, 111, &want, "223 factors");
    eprintln!("223 binary factors, treewidth at most 3: {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn products_of_many_equal_factors_are_planned_quickly_and_exactly() {
    let x = [1.001, 0.999, 1.0, 0.5];
    for n in [3, 1000] {
        let factors = |f: &str| vec![f; n].join(" ");
        let program = format!(
            "S = 1.001\nX = [1.001, 0.999, 1.0, 0.5]\nA = {}\nB[i] = {}\nC = {}\nA?\nB?\nC?\n",
            factors("S"),
            factors("X[i]"),
            factors("X[i]")
        );
        let (answers, took) = run(&program);
        let powers: Vec<f64> = x.iter().map(|v: &f64| v.powi(n as i32)).collect();
        assert_close(&answers[0], &[powers[0]], "a product of scalars");
        assert_close(&answers[1], &powers, "a product of equal vectors");
        assert_close(&answers[2], &[powers.iter().sum()], "their sum");
        assert!(took < Duration::from_secs(5), "{n} factors took {took:?}");
    }
}
