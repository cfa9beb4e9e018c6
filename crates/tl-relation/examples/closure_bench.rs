//! Times the transitive closure of a random graph with 10^4 nodes and 5·10^4 edges.
//!
//! Run with `cargo run --release -p tl-relation --example closure_bench`. The graph is generated
//! from a fixed seed, so the tuple and iteration counts are reproducible.

use std::time::Instant;
use tl_relation::{evaluate_stratum, Limits, Literal, Relation, Rule, Term, Value};

/// A small deterministic generator (SplitMix64), enough for benchmark inputs.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn main() {
    let (nodes, edges): (u32, usize) = (10_000, 50_000);
    let mut rng = SplitMix(0x5EED);
    let values: Vec<Value> = (0..2 * edges)
        .map(|_| (rng.next() % u64::from(nodes)) as Value)
        .collect();
    let graph = Relation::from_flat(2, values);
    let var = Term::Var;
    let lit = |slot, a, b| Literal {
        slot,
        args: vec![var(a), var(b)],
        negated: false,
    };
    let rules = [
        // T(x, y) <- E(x, y).
        Rule {
            head: 1,
            head_args: vec![var(0), var(1)],
            body: vec![lit(0, 0, 1)],
            comparisons: vec![],
            var_extents: vec![nodes; 2],
        },
        // T(x, z) <- T(x, y), E(y, z).
        Rule {
            head: 1,
            head_args: vec![var(0), var(2)],
            body: vec![lit(1, 0, 1), lit(0, 1, 2)],
            comparisons: vec![],
            var_extents: vec![nodes; 3],
        },
    ];
    let mut slots = vec![graph, Relation::empty(2)];
    let start = Instant::now();
    let result = evaluate_stratum(
        &rules,
        &mut slots,
        &Limits {
            max_tuples: 200_000_000,
            ..Limits::default()
        },
    );
    let seconds = start.elapsed().as_secs_f64();
    match result {
        Ok(stats) => println!(
            "edges {} closure tuples {} iterations {} seconds {:.2}",
            slots[0].len(),
            slots[1].len(),
            stats.iterations,
            seconds
        ),
        Err(e) => eprintln!("closure failed after {seconds:.2} s: {e}"),
    }
}
