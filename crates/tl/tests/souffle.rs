//! Soufflé programs end to end: `tl run prog.dl -F DIR -D DIR` writes each `.output` relation
//! as `NAME.csv`, tab-separated, one tuple per line, rows sorted (numbers numerically, symbols
//! by name), exactly as checked in under `examples/souffle/expected/`; and the front end's
//! decisions (`-D -`, `.input` beside facts, `filename=`/`delimiter=`, defaults) hold.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tl(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tl"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(["run", "--device", "cpu"])
        .args(args)
        .output()
        .expect("the tl binary runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "tl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_routes_example_writes_its_expected_csv_files() {
    let root = repo_root();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    ok(&tl(
        &root,
        &[
            "examples/souffle/routes.dl",
            "-F",
            "examples/souffle",
            "-D",
            out_dir,
        ],
    ));
    let expected = root.join("examples/souffle/expected");
    let mut names: Vec<String> = std::fs::read_dir(&expected)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "dead_end.csv",
            "one_stop.csv",
            "one_way.csv",
            "reach.csv",
            "short.csv"
        ]
    );
    for name in &names {
        let want = std::fs::read_to_string(expected.join(name)).unwrap();
        let got = std::fs::read_to_string(out.path().join(name)).unwrap();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn defaults_options_and_input_beside_facts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("edge.facts"), "a\tb\nb\tc\n").unwrap();
    std::fs::write(d.join("w.txt"), "3,x\n10,y\n2,x\n").unwrap();
    std::fs::write(
        d.join("p.dl"),
        ".decl edge(x: symbol, y: symbol)\n.input edge\nedge(\"c\", \"d\").\n\
         .decl path(x: symbol, y: symbol)\n.output path\n\
         path(x, y) :- edge(x, y).\npath(x, z) :- path(x, y), edge(y, z).\n\
         .decl w(n: number, s: symbol)\n.input w(filename=\"w.txt\", delimiter=\",\")\n\
         .decl big(n: number, s: symbol)\n.output big(filename=\"big.out\", delimiter=\";\")\n\
         big(n, s) :- w(n, s), n >= 3.\n\
         .decl nothing(x: symbol)\n.output nothing\nnothing(x) :- edge(x, _), !edge(_, _).\n",
    )
    .unwrap();
    // Without -F and -D, both are the current folder, as in Soufflé.
    ok(&tl(d, &["p.dl"]));
    assert_eq!(
        std::fs::read_to_string(d.join("path.csv")).unwrap(),
        "a\tb\na\tc\na\td\nb\tc\nb\td\nc\td\n"
    );
    // Numbers sort numerically, and the options name the file and the delimiter.
    assert_eq!(
        std::fs::read_to_string(d.join("big.out")).unwrap(),
        "3;x\n10;y\n"
    );
    assert_eq!(std::fs::read_to_string(d.join("nothing.csv")).unwrap(), "");
    // `-D -` prints the relations as query answers instead.
    let printed = ok(&tl(d, &["--json", "p.dl", "-D", "-"]));
    let first = printed.lines().next().unwrap();
    assert!(
        first.starts_with(r#"{"query":"path","vars":["x","y"],"rows":[["a","b"]"#),
        "{first}"
    );
}

#[test]
fn nullary_relations_are_true_or_false() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("p.dl"),
        ".decl p()\np().\n.decl q()\nq() :- p().\n.decl r()\nr() :- !p().\n\
         .output q\n.output r\n",
    )
    .unwrap();
    ok(&tl(d, &["p.dl"]));
    assert_eq!(std::fs::read_to_string(d.join("q.csv")).unwrap(), "()\n");
    assert_eq!(std::fs::read_to_string(d.join("r.csv")).unwrap(), "");
    let printed = ok(&tl(d, &["--json", "p.dl", "-D", "-"]));
    assert!(
        printed.starts_with(r#"{"query":"q","vars":[],"rows":[[]]}"#),
        "{printed}"
    );
}

#[test]
fn a_bad_facts_file_is_a_diagnostic_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("n.facts"), "1\n2.5\n").unwrap();
    std::fs::write(d.join("p.dl"), ".decl n(x: number)\n.input n\n.output n\n").unwrap();
    let out = tl(d, &["p.dl", "-D", "-"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("n.facts:2: column 1"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// The rows `tl run --json P -D -` prints for relation `name`, as text.
fn rows_of(printed: &str, name: &str) -> Vec<Vec<String>> {
    printed
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|a| a["query"] == name)
        .and_then(|a| a["rows"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|r| {
            r.as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|v| match v.as_str() {
                    Some(s) => s.to_string(),
                    None => v.to_string(),
                })
                .collect()
        })
        .collect()
}

#[test]
fn rules_that_compute_numbers_match_a_search_of_path_lengths() {
    // Every (node, length) of a walk from node 0 shorter than a bound, on random weighted
    // graphs, against a breadth-first search over (node, length) states.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (nodes, edges, bound) in [(4u64, 6, 12u64), (9, 20, 30), (15, 40, 25)] {
        let mut list = Vec::new();
        for _ in 0..edges {
            list.push((next() % nodes, next() % nodes, 1 + next() % 7));
        }
        let mut want = std::collections::BTreeSet::new();
        let mut todo = vec![(0u64, 0u64)];
        while let Some((x, d)) = todo.pop() {
            if want.insert((x, d)) {
                for &(a, b, w) in &list {
                    if a == x && d + w < bound {
                        todo.push((b, d + w));
                    }
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let facts: String = list
            .iter()
            .map(|(a, b, w)| format!("{a}\t{b}\t{w}\n"))
            .collect();
        std::fs::write(dir.path().join("edge.facts"), facts).unwrap();
        std::fs::write(
            dir.path().join("p.dl"),
            format!(
                ".decl edge(x: number, y: number, w: number)\n.input edge\n\
                 .decl walk(x: number, d: number)\n.output walk\nwalk(0, 0).\n\
                 walk(y, d + w) :- walk(x, d), edge(x, y, w), d + w < {bound}.\n"
            ),
        )
        .unwrap();
        let printed = ok(&tl(dir.path(), &["--json", "p.dl", "-D", "-"]));
        let got: std::collections::BTreeSet<(u64, u64)> = rows_of(&printed, "walk")
            .iter()
            .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
            .collect();
        assert_eq!(got, want, "{list:?}");
    }
}

#[test]
fn computed_numbers_feed_negation_and_bound_variables() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.dl"),
        ".decl num(n: number)\nnum(0). num(1). num(2). num(3). num(4). num(5). num(6). num(7).\n\
         .decl even(n: number)\neven(0).\neven(n + 2) :- even(n), n + 2 <= 7.\n\
         .decl odd(n: number)\n.output odd\nodd(n) :- num(n), !even(n).\n\
         .decl half(n: number, h: number)\n.output half\n\
         half(n, h) :- even(n), h = n / 2, h != 1.\n",
    )
    .unwrap();
    let printed = ok(&tl(dir.path(), &["--json", "p.dl", "-D", "-"]));
    let flat = |name| -> Vec<String> {
        rows_of(&printed, name)
            .into_iter()
            .map(|r| r.join(" "))
            .collect()
    };
    assert_eq!(flat("odd"), ["1", "3", "5", "7"]);
    assert_eq!(flat("half"), ["0 0", "4 2", "6 3"]);
}

#[test]
fn aggregates_match_a_reference_on_random_graphs() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (nodes, edges) in [(3u64, 4), (8, 15), (20, 60)] {
        let mut list = std::collections::BTreeSet::new();
        for _ in 0..edges {
            list.insert((next() % nodes, next() % nodes, next() % 10));
        }
        let dir = tempfile::tempdir().unwrap();
        let facts: String = list
            .iter()
            .map(|(a, b, w)| format!("n{a}\tn{b}\t{w}\n"))
            .collect();
        std::fs::write(dir.path().join("e.facts"), facts).unwrap();
        std::fs::write(
            dir.path().join("p.dl"),
            ".decl e(x: symbol, y: symbol, w: number)\n.input e\n\
             .decl node(x: symbol)\nnode(x) :- e(x, _, _).\nnode(y) :- e(_, y, _).\n\
             .decl reach(x: symbol, y: symbol)\nreach(x, y) :- e(x, y, _).\n\
             reach(x, z) :- reach(x, y), e(y, z, _).\n\
             .decl stats(x: symbol, out: number, total: number, reached: number)\n.output stats\n\
             stats(x, o, t, r) :- node(x), o = count : { e(x, _, _) }, \
             t = sum w : { e(x, _, w) }, r = count : { reach(x, _) }.\n\
             .decl light(x: symbol, lo: number, hi: number)\n.output light\n\
             light(x, lo, hi) :- node(x), lo = min w : { e(x, _, w) }, hi = max w : e(x, _, w), \
             hi - lo >= 2.\n",
        )
        .unwrap();
        let printed = ok(&tl(dir.path(), &["--json", "p.dl", "-D", "-"]));
        let mut node_set = std::collections::BTreeSet::new();
        for (a, b, _) in &list {
            node_set.insert(*a);
            node_set.insert(*b);
        }
        let mut stats = Vec::new();
        let mut light = Vec::new();
        for &x in &node_set {
            let out: Vec<u64> = list.iter().filter(|e| e.0 == x).map(|e| e.2).collect();
            // Nodes reachable from x by one edge or more.
            let mut seen = std::collections::BTreeSet::new();
            let mut todo: Vec<u64> = list.iter().filter(|e| e.0 == x).map(|e| e.1).collect();
            while let Some(y) = todo.pop() {
                if seen.insert(y) {
                    todo.extend(list.iter().filter(|e| e.0 == y).map(|e| e.1));
                }
            }
            let total: u64 = out.iter().sum();
            stats.push(format!("n{x} {} {total} {}", out.len(), seen.len()));
            if let (Some(lo), Some(hi)) = (out.iter().min(), out.iter().max()) {
                if hi - lo >= 2 {
                    light.push(format!("n{x} {lo} {hi}"));
                }
            }
        }
        // Rows print sorted by symbol name, as the reference's are.
        stats.sort();
        light.sort();
        let flat = |name| -> Vec<String> {
            rows_of(&printed, name)
                .into_iter()
                .map(|r| r.join(" "))
                .collect()
        };
        assert_eq!(flat("stats"), stats, "{list:?}");
        assert_eq!(flat("light"), light, "{list:?}");
    }
}
