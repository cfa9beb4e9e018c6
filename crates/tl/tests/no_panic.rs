//! Property test: nothing a program does makes the pipeline panic or blame the engine.
//!
//! Random and mutated programs go through parse → check → plan → run in-process
//! (`tl_fuzz::pipeline`, as the fuzz targets in `fuzz/` do), each inside
//! `std::panic::catch_unwind`; a panic, a span outside the source or an error that calls
//! itself a problem in the engine fails the test with the program that caused it (proptest
//! shrinks it first). Errors of the program are fine.
//!
//! Inputs, from three properties:
//! - random token sequences from the language's vocabulary (names, indices, operators, brackets,
//!   numbers, `<-`, `not`, `?`, `max=`, keywords, strings, newlines);
//! - mutations of the example programs in `examples/*.tl` (those without data files): tokens
//!   deleted, duplicated, swapped, replaced or inserted, numbers changed;
//! - small structured programs (literals, facts, equations, rules, queries) that usually get past
//!   the parser and checker, so the planner and the engine are exercised too;
//! - programs of the fuzzers' grammar-aware generator (`tl_fuzz::generate`) from random bytes.
//!
//! A program that checks is run only when its tensors hold at most 10^5 cells in total, no
//! equation or rule ranges over more than 10^6 index combinations and no `minimize` takes more
//! than 50 steps (so each case stays fast); it is still parsed, checked and planned. Data paths resolve against a scratch folder under
//! the system temp dir, so file writes in random programs land there.
//!
//! By default 10^4 cases in total are split over the properties; set `TL_FUZZ_CASES` for more:
//!
//!     TL_FUZZ_CASES=1000000 cargo test --release -p tl --test no_panic
//!
//! (10^4 cases take well under a minute in release on 2 cores.)

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Total cases across the properties (`TL_FUZZ_CASES`, default 10^4).
fn total_cases() -> u32 {
    std::env::var("TL_FUZZ_CASES")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(10_000)
}

fn config(share: u32) -> ProptestConfig {
    let mut c = ProptestConfig::with_cases((total_cases() * share / 5).max(1));
    c.failure_persistence = None;
    c
}

/// A scratch folder that relative paths in fuzzed programs resolve against.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("tl-no-panic-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&d);
        d
    })
}

/// Runs one program through every phase (`tl_fuzz::pipeline`): the phases may fail, but must
/// not panic, and no error may blame the engine.
fn pipeline(text: &str) -> Result<(), tl_fuzz::pipeline::Finding> {
    tl_fuzz::pipeline::run(text, scratch())
}

/// Runs `pipeline`, turning a panic or a finding into a test failure that shows the program.
fn no_panic(text: &str) -> Result<(), TestCaseError> {
    match catch_unwind(AssertUnwindSafe(|| pipeline(text))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(finding)) => Err(TestCaseError::fail(format!("{finding}\nprogram:\n{text}"))),
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(TestCaseError::fail(format!(
                "panicked: {msg}\nprogram:\n{text}"
            )))
        }
    }
}

/// The language's vocabulary, for random token sequences.
const VOCAB: &[&str] = &[
    "A",
    "B",
    "W",
    "X",
    "Y",
    "Parent",
    "Edge",
    "Loss",
    "Person",
    "Alice",
    "Bob",
    "i",
    "j",
    "k",
    "x",
    "y",
    "p'",
    "e",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    ":",
    "=",
    "+=",
    "max=",
    "min=",
    "avg=",
    "<-",
    "not",
    "?",
    "+",
    "-",
    "*",
    "/",
    "^",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "~",
    "#",
    "0",
    "1",
    "2",
    "3",
    "-1",
    "0.5",
    "1e-3",
    "1e9",
    "99999999999999999999",
    "\"a.npy\"",
    "\"out.npy\"",
    "\"m.safetensors#w\"",
    "\"r.csv\"",
    "\"\"",
    "\"{l}\"",
    "param",
    "const",
    "domain",
    "minimize",
    "with",
    "for",
    "steps",
    "epochs",
    "batch",
    "schedule",
    "import",
    "sgd",
    "adam",
    "adamw",
    "lr",
    "cosine",
    "warmup",
    "normal",
    "uniform",
    "xavier",
    "step",
    "sig",
    "relu",
    "gelu",
    "tanh",
    "exp",
    "log",
    "sqrt",
    "abs",
    "sin",
    "cos",
    "softmax",
    "lnorm",
    "\n",
    "\n",
    "\n",
    "i.",
    "p'.",
    "i+1",
    "x/2",
    "2:5",
    "1:",
    ":3",
];

/// Splits a program into tokens: runs of name characters, numbers, strings, newlines, and
/// single punctuation characters (two-character operators are kept together).
fn tokenize(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            out.push("\n".to_string());
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '"' && chars[i] != '\n' {
                i += 1;
            }
            i = (i + 1).min(chars.len());
            out.push(chars[start..i].iter().collect());
        } else if c.is_alphanumeric() || c == '_' || c == '\'' || c == '.' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '\'' | '.'))
            {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["<-", "<=", ">=", "==", "!=", "+="].contains(&two.as_str()) {
                out.push(two);
                i += 2;
            } else {
                out.push(c.to_string());
                i += 1;
            }
        }
    }
    out
}

fn detokenize(tokens: &[String]) -> String {
    let mut s = String::new();
    for t in tokens {
        if t == "\n" {
            s.push('\n');
        } else {
            if !s.is_empty() && !s.ends_with('\n') {
                s.push(' ');
            }
            s.push_str(t);
        }
    }
    s
}

/// The example programs that need no data files, tokenized.
fn examples() -> &'static Vec<Vec<String>> {
    static EX: OnceLock<Vec<Vec<String>>> = OnceLock::new();
    EX.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "tl"));
        files.sort();
        let mut out: Vec<Vec<String>> = files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter(|t| !t.contains('"'))
            .map(|t| tokenize(&t))
            .collect();
        if out.is_empty() {
            // Run from elsewhere without the examples: a built-in stand-in.
            out.push(tokenize(
                "Parent(Alice, Bob)\nAncestor(x, y) <- Parent(x, y)\nAncestor(x, z) <- Ancestor(x, y), Parent(y, z)\nAncestor(Alice, x)?\nA = [[1, 2], [3, 4]]\nC[i, k] = A[i, j] A[j, k]\nC?\n",
            ));
        }
        out
    })
}

#[derive(Clone, Debug)]
enum Mutation {
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Replace(usize, usize),
    Insert(usize, usize),
    Number(usize, i64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let n = VOCAB.len();
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (any::<usize>(), 0..n).prop_map(|(a, b)| Mutation::Replace(a, b)),
        (any::<usize>(), 0..n).prop_map(|(a, b)| Mutation::Insert(a, b)),
        (any::<usize>(), -3i64..40).prop_map(|(a, v)| Mutation::Number(a, v)),
    ]
}

fn mutate(mut toks: Vec<String>, muts: &[Mutation]) -> String {
    for m in muts {
        let len = toks.len();
        if len == 0 {
            toks.push(VOCAB[0].to_string());
            continue;
        }
        match *m {
            Mutation::Delete(a) => {
                toks.remove(a % len);
            }
            Mutation::Duplicate(a) => {
                let t = toks[a % len].clone();
                toks.insert(a % len, t);
            }
            Mutation::Swap(a, b) => toks.swap(a % len, b % len),
            Mutation::Replace(a, b) => toks[a % len] = VOCAB[b].to_string(),
            Mutation::Insert(a, b) => toks.insert(a % (len + 1), VOCAB[b].to_string()),
            Mutation::Number(a, v) => {
                // Change the first number at or after position a (wrapping).
                if let Some(k) = (0..len)
                    .map(|k| (a + k) % len)
                    .find(|&k| toks[k].parse::<f64>().is_ok())
                {
                    toks[k] = v.to_string();
                }
            }
        }
    }
    detokenize(&toks)
}

// --- structured programs -------------------------------------------------------------------
// Every tensor keeps one rank (A: 1, B and C and E: 2, D: 0) and every relation is binary over
// symbols, so most of these programs check, plan and run.

const PRELUDE: &str = "A = [1, -2, 3]\nB = [[1, 0, 2], [0.5, -1, 1], [2, 2, -3]]\nD = 2\nP(Al, Bo)\nP(Bo, Cy)\nQ(Cy, Al)\n";
const RANKED: &[(&str, usize)] = &[("A", 1), ("B", 2), ("C", 2), ("E", 2), ("D", 0)];
const RELS: &[&str] = &["P", "Q", "R", "S"];
const FUNCS: &[&str] = &[
    "", "relu", "sig", "exp", "step", "softmax", "lnorm", "tanh", "log", "sqrt",
];
const OPS: &[&str] = &["=", "+=", "max=", "min=", "avg="];

fn index() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(&["i", "j", "k"][..]).prop_map(str::to_string),
        1 => (0usize..4).prop_map(|n| n.to_string()),
        1 => prop::sample::select(&["i+1", "j-1", "k/2", "i+j"][..]).prop_map(str::to_string),
        1 => (0usize..3, 1usize..4).prop_map(|(a, b)| format!("{a}:{}", a + b)),
    ]
}

fn access() -> impl Strategy<Value = String> {
    (
        prop::sample::select(RANKED),
        prop::collection::vec(index(), 2),
    )
        .prop_map(|((t, r), ix)| {
            if r == 0 {
                t.to_string()
            } else {
                format!("{t}[{}]", ix[..r].join(", "))
            }
        })
}

fn rhs() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(access(), 1..4),
        prop::sample::select(FUNCS),
        prop::sample::select(
            &[
                "",
                " + 1",
                " - D",
                " * 2",
                " / A[i]",
                "^2",
                " + A[j] B[j, k]",
            ][..],
        ),
        prop::sample::select(&["", " P(i, j)", " not_used"][..]),
    )
        .prop_map(|(atoms, f, tail, rel)| {
            let rel = if rel == " not_used" { "" } else { rel };
            let body = format!("{}{tail}{rel}", atoms.join(" "));
            if f.is_empty() {
                body
            } else {
                format!("{f}({body})")
            }
        })
}

fn statement() -> impl Strategy<Value = String> {
    let lhs2 = prop::collection::vec(
        prop::sample::select(&["i", "j", "k", "i.", "j.", "k: 3", "j: 2"][..]),
        2,
    );
    prop_oneof![
        4 => (prop::sample::select(&["C", "E"][..]), lhs2, prop::sample::select(OPS), rhs())
            .prop_map(|(t, ix, op, r)| format!("{t}[{}] {op} {r}", ix.join(", "))),
        1 => (prop::sample::select(OPS), rhs()).prop_map(|(op, r)| format!("F {op} {r}")),
        2 => (
            prop::sample::select(RELS),
            prop::sample::select(&["Al", "Bo", "Cy", "Di"][..]),
            prop::sample::select(&["Al", "Bo", "Cy"][..]),
        )
            .prop_map(|(r, a, b)| format!("{r}({a}, {b})")),
        3 => (
            prop::sample::select(&["R", "S"][..]),
            prop::sample::select(RELS),
            prop::sample::select(RELS),
            any::<bool>(),
            prop::sample::select(&["", ", x != y", ", x == Al", ", z != Bo"][..]),
        )
            .prop_map(|(h, a, b, neg, cmp)| {
                let not = if neg { "not " } else { "" };
                format!("{h}(x, y) <- {a}(x, z), P(x, y), {not}{b}(z, y){cmp}")
            }),
        1 => Just("domain N = 3\nG[i: N, j: N] = B[i, j]".to_string()),
        1 => Just("param W[3, 3] ~ normal(0, 1)\nC[i, j] = W[i, j] B[j, k]".to_string()),
        1 => Just("\"out.npy\" = B".to_string()),
        3 => access().prop_map(|a| format!("{a}?")),
        2 => (
            prop::sample::select(RELS),
            prop::collection::vec(prop::sample::select(&["x", "y", "Al", "Cy"][..]), 2),
        )
            .prop_map(|(r, a)| format!("{r}({})?", a.join(", "))),
    ]
}

fn structured() -> impl Strategy<Value = String> {
    prop::collection::vec(statement(), 1..8).prop_map(|s| format!("{PRELUDE}{}", s.join("\n")))
}

proptest! {
    #![proptest_config(config(1))]
    #[test]
    fn random_token_sequences_do_not_panic(
        toks in prop::collection::vec(prop::sample::select(VOCAB), 0..40)
    ) {
        let toks: Vec<String> = toks.into_iter().map(str::to_string).collect();
        no_panic(&detokenize(&toks))?;
    }
}

proptest! {
    #![proptest_config(config(2))]
    #[test]
    fn mutated_examples_do_not_panic(
        which in any::<usize>(),
        muts in prop::collection::vec(mutation(), 1..5)
    ) {
        let ex = examples();
        let text = mutate(ex[which % ex.len()].clone(), &muts);
        no_panic(&text)?;
    }
}

proptest! {
    #![proptest_config(config(1))]
    #[test]
    fn structured_programs_do_not_panic(
        stmts in structured()
    ) {
        no_panic(&stmts)?;
    }
}

proptest! {
    #![proptest_config(config(1))]
    #[test]
    fn generated_programs_do_not_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..256)
    ) {
        no_panic(&tl_fuzz::generate::program(&bytes))?;
    }
}

#[test]
fn the_examples_themselves_run() {
    for toks in examples() {
        no_panic(&detokenize(toks)).unwrap();
    }
}
