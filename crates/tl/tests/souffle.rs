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
    std::fs::write(d.join("n.facts"), "1\n-2\n").unwrap();
    std::fs::write(d.join("p.dl"), ".decl n(x: number)\n.input n\n.output n\n").unwrap();
    let out = tl(d, &["p.dl", "-D", "-"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("n.facts:2: column 1"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
