//! Negative numbers in relations: facts, CSV rows, rule constants and Soufflé arithmetic,
//! against answers computed here on random numbers.

mod common;

use common::Rng;
use std::collections::BTreeSet;

/// The rows of the JSON answer named `query`, each as numbers.
fn rows(answers: &[serde_json::Value], query: &str) -> BTreeSet<Vec<i64>> {
    let a = answers
        .iter()
        .find(|a| a["query"] == query)
        .unwrap_or_else(|| panic!("no answer {query} in {answers:?}"));
    a["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            r.as_array()
                .expect("a row")
                .iter()
                .map(|x| x.as_i64().expect("a number"))
                .collect()
        })
        .collect()
}

/// A random number below `n`.
fn below(rng: &mut Rng, n: u64) -> u64 {
    rng.next() % n
}

/// Random numbers from -60 to 60, some repeated.
fn numbers(rng: &mut Rng, n: u64) -> Vec<i64> {
    (0..n).map(|_| below(rng, 121) as i64 - 60).collect()
}

#[test]
fn facts_and_rules_compare_negative_numbers_as_numbers() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20 {
        let count = 1 + below(&mut rng, 12);
        let xs = numbers(&mut rng, count);
        let pivot = below(&mut rng, 41) as i64 - 20;
        let mut text: String = xs.iter().map(|x| format!("R({x})\n")).collect();
        text.push_str(&format!(
            "Lt(x, y) <- R(x), R(y), x < y\nBelow(x) <- R(x), x < {pivot}\nAt(x) <- R(x), x == {pivot}\nLt(x, y)?\nBelow(x)?\nAt(x)?\n"
        ));
        let (ok, answers, err) = common::run_json(&text, &[]);
        assert!(ok, "{err}\n{text}");
        let set: BTreeSet<i64> = xs.iter().copied().collect();
        let lt: BTreeSet<Vec<i64>> = set
            .iter()
            .flat_map(|&x| {
                set.iter()
                    .filter(move |&&y| x < y)
                    .map(move |&y| vec![x, y])
            })
            .collect();
        assert_eq!(rows(&answers, "Lt(x, y)"), lt, "{text}");
        let below: BTreeSet<Vec<i64>> = set
            .iter()
            .filter(|&&x| x < pivot)
            .map(|&x| vec![x])
            .collect();
        assert_eq!(rows(&answers, "Below(x)"), below, "{text}");
        let at: BTreeSet<Vec<i64>> = set
            .iter()
            .filter(|&&x| x == pivot)
            .map(|&x| vec![x])
            .collect();
        assert_eq!(rows(&answers, "At(x)"), at, "{text}");
    }
}

#[test]
fn csv_rows_with_negative_numbers_are_integers() {
    let dir = tempfile::tempdir().expect("a scratch folder");
    std::fs::write(dir.path().join("t.csv"), "Oslo,-5\nRome,12\nQuito,-14\n").expect("written");
    let prog = dir.path().join("p.tl");
    std::fs::write(
        &prog,
        "Temp(c, t) = \"t.csv\"\nCold(c) <- Temp(c, t), t < 0\nCold(c)?\nTemp(c, -5)?\nN[t] = Temp(c, t) t\nS = N[t]\nS?\n",
    )
    .expect("written");
    let prog = prog.to_string_lossy().into_owned();
    let answers = common::tl_json(&["run", "--json", "--device", &common::device(), &prog]);
    let lines: Vec<String> = answers.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        lines,
        [
            r#"{"query":"Cold(c)","vars":["c"],"rows":[["Oslo"],["Quito"]]}"#,
            r#"{"query":"Temp(c, -5)","vars":["c"],"rows":[["Oslo"]]}"#,
            // Σ over rows of t (an index used as a number is its number): -5 + 12 - 14.
            r#"{"query":"S","shape":[],"data":[-7]}"#,
        ]
    );
}

#[test]
fn souffle_arithmetic_computes_negative_numbers() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..10 {
        let count = 1 + below(&mut rng, 8);
        let xs = numbers(&mut rng, count);
        let dir = tempfile::tempdir().expect("a scratch folder");
        let facts: String = xs.iter().map(|x| format!("{x}\n")).collect();
        std::fs::write(dir.path().join("v.facts"), facts).expect("written");
        let prog = dir.path().join("p.dl");
        std::fs::write(
            &prog,
            ".decl v(x: number)\n.input v\n.decl d(x: number, y: number, z: number)\n.output d\nd(x, y, z) :- v(x), v(y), z = x - y - 3.\n.decl low(m: number)\n.output low\nlow(m) :- v(_), m = min x : { v(x) }.\n",
        )
        .expect("written");
        let (prog, facts) = (prog.to_string_lossy(), dir.path().to_string_lossy());
        let device = common::device();
        let answers = common::tl_json(&[
            "run", "--json", "--device", &device, &prog, "-F", &facts, "-D", "-",
        ]);
        let set: BTreeSet<i64> = xs.iter().copied().collect();
        let d: BTreeSet<Vec<i64>> = set
            .iter()
            .flat_map(|&x| set.iter().map(move |&y| vec![x, y, x - y - 3]))
            .collect();
        assert_eq!(rows(&answers, "d"), d, "{xs:?}");
        let low = set.iter().next().copied().expect("one number");
        assert_eq!(rows(&answers, "low"), BTreeSet::from([vec![low]]), "{xs:?}");
    }
}

#[test]
fn a_negative_number_on_an_axis_of_fixed_size_is_an_error() {
    let (ok, _, err) = common::run_raw("X = [1, 2, 3]\nR(x) <- X(x)\nR(-1)\nR(x)?\n", &[]);
    assert!(!ok);
    assert!(err.contains("TL01"), "{err}");
}

#[test]
fn the_dumped_plan_names_negative_constants_by_their_numbers() {
    let dir = tempfile::tempdir().expect("a scratch folder");
    let prog = dir.path().join("p.tl");
    std::fs::write(
        &prog,
        "E(-3, 1)\nE(1, 2)\nE(2, -3)\nReach(x, y) <- E(x, y)\nReach(x, z) <- Reach(x, y), E(y, z)\nR(y) <- Reach(-3, y)\nR(y)?\n",
    )
    .expect("written");
    let out = std::process::Command::new(common::tl_bin())
        .args(["check", "--dump-plan", "--goal-directed", "always"])
        .arg(&prog)
        .output()
        .expect("tl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("magic.Reach.bf(-3)"), "{text}");
    assert!(text.contains("R(y) <- Reach.bf(-3, y)"), "{text}");
}
