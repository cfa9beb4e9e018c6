use super::*;
use std::time::Instant;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

fn cells(set: &[VarId], ext: &[usize]) -> u128 {
    set.iter().map(|&v| ext[v] as u128).product()
}

/// The result of joining `a` and `b` while `others` are still to come.
fn joined(a: &[VarId], b: &[VarId], others: &[&Vec<VarId>], keep: &[VarId]) -> Vec<VarId> {
    let mut out: Vec<VarId> = a.to_vec();
    out.extend(b.iter().filter(|v| !a.contains(v)));
    out.retain(|v| keep.contains(v) || others.iter().any(|o| o.contains(v)));
    out.sort_unstable();
    out
}

/// Replays `order`, checking that it joins every factor exactly once and that each step
/// keeps exactly the kept indices and those a later operand holds, with the sizes stated.
fn assert_valid(factors: &[Vec<VarId>], keep: &[VarId], ext: &[usize], order: &Order) {
    let n = factors.len();
    assert_eq!(order.steps.len(), n.saturating_sub(1));
    let mut sets: Vec<Vec<VarId>> = factors.to_vec();
    let mut used = vec![false; n + order.steps.len()];
    let (mut flops, mut largest) = (0u128, 0u128);
    for step in &order.steps {
        assert!(step.a != step.b && step.a < sets.len() && step.b < sets.len());
        assert!(!used[step.a] && !used[step.b], "an operand is read twice");
        used[step.a] = true;
        used[step.b] = true;
        let others: Vec<&Vec<VarId>> = (0..sets.len())
            .filter(|&k| !used[k])
            .map(|k| &sets[k])
            .collect();
        let expected = joined(&sets[step.a], &sets[step.b], &others, keep);
        let mut got = step.keep.clone();
        got.sort_unstable();
        assert_eq!(got, expected);
        assert_eq!(step.cells, cells(&got, ext));
        let mut all = sets[step.a].clone();
        all.extend(sets[step.b].iter().filter(|v| !sets[step.a].contains(v)));
        flops += cells(&all, ext);
        largest = largest.max(step.cells);
        sets.push(got);
    }
    assert_eq!((order.flops, order.largest), (flops, largest));
}

/// The fewest multiply-adds over every sequence of pairwise joins, and among those the
/// smallest largest intermediate: (multiply-adds, largest).
fn brute_force(sets: &[Vec<VarId>], keep: &[VarId], ext: &[usize]) -> (u128, u128) {
    if sets.len() < 2 {
        return (0, 0);
    }
    let mut best = (u128::MAX, u128::MAX);
    for i in 0..sets.len() {
        for j in i + 1..sets.len() {
            let others: Vec<&Vec<VarId>> = (0..sets.len())
                .filter(|&k| k != i && k != j)
                .map(|k| &sets[k])
                .collect();
            let c = joined(&sets[i], &sets[j], &others, keep);
            let mut all = sets[i].clone();
            all.extend(sets[j].iter().filter(|v| !sets[i].contains(v)));
            let mut rest: Vec<Vec<VarId>> = others.into_iter().cloned().collect();
            let size = cells(&c, ext);
            rest.push(c);
            let (f, l) = brute_force(&rest, keep, ext);
            best = best.min((f + cells(&all, ext), l.max(size)));
        }
    }
    best
}

/// Random index sets: `n` factors over `m` indices of extents 1 to 4, each index kept
/// with probability 1/4.
fn random_join(rng: &mut Rng, n: usize, m: usize) -> (Vec<Vec<VarId>>, Vec<VarId>, Vec<usize>) {
    let ext: Vec<usize> = (0..m).map(|_| 1 + rng.below(4)).collect();
    let factors = (0..n)
        .map(|_| {
            let mut f: Vec<VarId> = (0..m).filter(|_| rng.below(3) == 0).collect();
            if f.is_empty() && rng.below(2) == 0 {
                f.push(rng.below(m));
            }
            f
        })
        .collect();
    let keep = (0..m).filter(|_| rng.below(4) == 0).collect();
    (factors, keep, ext)
}

/// A Bayesian network's factors over binary variables: variable k with up to three
/// parents among the `width` before it (so the treewidth is at most `width`).
fn window_model(rng: &mut Rng, n: usize, width: usize) -> Vec<Vec<VarId>> {
    (0..n)
        .map(|k| {
            let mut f: Vec<VarId> = Vec::new();
            let want = rng.below(4).min(k.min(width));
            while f.len() < want {
                let p = k - 1 - rng.below(k.min(width));
                if !f.contains(&p) {
                    f.push(p);
                }
            }
            f.push(k);
            f
        })
        .collect()
}

#[test]
fn exhaustive_search_is_optimal_on_small_joins() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..400 {
        let n = 2 + rng.below(5);
        let m = 1 + rng.below(6);
        let (factors, keep, ext) = random_join(&mut rng, n, m);
        let order = contraction_order(&factors, &keep, |v| ext[v]);
        assert_valid(&factors, &keep, &ext, &order);
        assert_eq!(
            (order.flops, order.largest),
            brute_force(&factors, &keep, &ext),
            "{factors:?} keeping {keep:?} over {ext:?}"
        );
    }
}

#[test]
fn elimination_orders_are_valid_contractions() {
    let mut rng = Rng(42);
    for _ in 0..100 {
        let n = EXHAUSTIVE_FACTORS + 1 + rng.below(40);
        let m = 1 + rng.below(30);
        let (factors, keep, ext) = random_join(&mut rng, n, m);
        let order = contraction_order(&factors, &keep, |v| ext[v]);
        assert_valid(&factors, &keep, &ext, &order);
    }
}

#[test]
fn products_of_thousands_of_factors_are_ordered_in_near_linear_time() {
    let two = |_: VarId| 2;
    for n in [1_000, 10_000] {
        let chain: Vec<Vec<VarId>> = (0..n).map(|k| vec![k, k + 1]).collect();
        let scalars: Vec<Vec<VarId>> = vec![Vec::new(); n];
        let same: Vec<Vec<VarId>> = vec![vec![0]; n];
        let start = Instant::now();
        let by_chain = contraction_order(&chain, &[0, n], two);
        let by_scalars = contraction_order(&scalars, &[], two);
        let summed = contraction_order(&same, &[], two);
        let kept = contraction_order(&same, &[0], two);
        let took = start.elapsed();
        eprintln!("{n} factors (a chain, scalars, equal vectors twice): {took:?}");
        // A matrix chain needs nothing larger than one matrix; equal vectors nothing
        // larger than one vector.
        assert_eq!(by_chain.largest, 4);
        assert_eq!((summed.largest, kept.largest), (2, 2));
        assert_eq!(by_scalars.largest, 1);
        for order in [&by_chain, &by_scalars, &summed, &kept] {
            assert_eq!(order.steps.len(), n - 1);
        }
        assert!(
            took.as_secs_f64() < 1.0,
            "{n} factors took {took:?} to order"
        );
    }
}

#[test]
fn intermediates_stay_within_the_treewidth() {
    let mut rng = Rng(7);
    for width in 1..=5 {
        for _ in 0..5 {
            let factors = window_model(&mut rng, 300, width);
            let order = contraction_order(&factors, &[], |_| 2);
            assert_valid(&factors, &[], &vec![2; 300], &order);
            // Eliminating a variable with at most `width` neighbours joins factors over
            // at most `width + 1` variables.
            assert!(
                order.largest <= 1 << (width + 1),
                "treewidth {width}: an intermediate of {} cells",
                order.largest
            );
        }
    }
    // A grid 8 wide (each variable's parents: its left and upper neighbours).
    let grid: Vec<Vec<VarId>> = (0..224)
        .map(|k| {
            let mut f = Vec::new();
            if k % 8 > 0 {
                f.push(k - 1);
            }
            if k >= 8 {
                f.push(k - 8);
            }
            f.push(k);
            f
        })
        .collect();
    let order = contraction_order(&grid, &[], |_| 2);
    assert!(order.largest <= 1 << 9, "{}", order.largest);
}

#[test]
fn a_densely_joined_set_of_factors_has_a_large_intermediate() {
    // Every pair of five indices shares a factor (the complete graph K5): any order keeps
    // four indices at once, 300^4 cells, past the limit.
    let mut factors = Vec::new();
    for a in 0..5 {
        for b in a + 1..5 {
            factors.push(vec![a, b]);
        }
    }
    let order = contraction_order(&factors, &[], |_| 300);
    assert!(order.largest > MAX_INTERMEDIATE_CELLS);
    let largest = order
        .steps
        .iter()
        .max_by_key(|s| s.cells)
        .map(|s| s.keep.len());
    assert_eq!(largest, Some(4));
}
