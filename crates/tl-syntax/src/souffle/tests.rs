//! The Soufflé front end on text alone: what each construct lowers to, and which error each
//! mistake or unsupported construct gives.

use super::{parse_souffle, Options, Output};
use crate::ast::{BodyItem, DataSource, IndexArg, IndexExpr, StmtKind};
use crate::span::FileId;
use std::path::PathBuf;

fn options(output: Output) -> Options {
    Options {
        fact_dir: PathBuf::from("/facts"),
        output,
    }
}

fn lower(text: &str) -> Vec<StmtKind> {
    let (program, _, errors) = parse_souffle(text, FileId(0), &options(Output::Stdout));
    assert!(errors.is_empty(), "{errors:?}");
    program.stmts.into_iter().map(|s| s.kind).collect()
}

fn codes(text: &str) -> Vec<&'static str> {
    let (_, _, errors) = parse_souffle(text, FileId(0), &options(Output::Stdout));
    errors.iter().map(|e| e.code()).collect()
}

fn rules(stmts: &[StmtKind]) -> Vec<String> {
    stmts
        .iter()
        .filter_map(|s| match s {
            StmtKind::Rule(r) => Some(format!(
                "{}/{}",
                r.head.name.name,
                r.body
                    .iter()
                    .map(|b| match b {
                        BodyItem::Atom { negated, atom } => {
                            format!(
                                "{}{}({})",
                                if *negated { "!" } else { "" },
                                atom.name.name,
                                atom.args.len()
                            )
                        }
                        BodyItem::Compare { .. } => "cmp".into(),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn facts_rules_and_disjunctions() {
    let stmts = lower(
        ".decl e(x: symbol, n: number)\n e(\"a\", 2).\n\
         .decl r(x: symbol)\n r(X) :- e(X, n), (n > 1 ; n = 0).\n.output r\n",
    );
    let StmtKind::Fact(f) = &stmts[0] else {
        panic!("{:?}", stmts[0])
    };
    assert!(matches!(&f.args[0], IndexArg::Symbol { name, .. } if name == "a"));
    assert!(matches!(&f.args[1], IndexArg::Expr(IndexExpr::Int(2, _))));
    // One rule per alternative of the disjunction.
    let own: Vec<String> = rules(&stmts)
        .into_iter()
        .filter(|r| r.starts_with("r/"))
        .collect();
    assert_eq!(own, ["r/e(2),cmp", "r/e(2),cmp"]);
    assert!(stmts
        .iter()
        .any(|s| matches!(s, StmtKind::Query(q) if q.access.name.name == "r")));
}

#[test]
fn anonymous_variables_are_projected_away() {
    let stmts = lower(
        ".decl e(x: symbol, y: symbol)\n.decl r(x: symbol)\ne(\"a\", \"b\").\n\
         r(x) :- e(x, _), !e(_, x).\n",
    );
    let all = rules(&stmts);
    assert!(all.contains(&"e'_x/e(2)".to_string()), "{all:?}");
    assert!(all.contains(&"e'x_/e(2)".to_string()), "{all:?}");
    assert!(all.contains(&"r/e'x_(1),!e'_x(1)".to_string()), "{all:?}");
}

#[test]
fn every_attribute_of_a_type_shares_one_domain() {
    let all = rules(&lower(
        ".decl e(x: symbol, n: number)\n.decl f(y: symbol)\n",
    ));
    assert_eq!(all, ["symbol'/e(2)", "number'/e(2)", "symbol'/f(1)"]);
}

#[test]
fn input_and_output_directives() {
    let (program, _, errors) = parse_souffle(
        ".decl e(x: symbol, n: number)\n.input e(filename=\"in.tsv\", delimiter=\",\")\n\
         .output e\n",
        FileId(0),
        &options(Output::Dir(PathBuf::from("/out"))),
    );
    assert!(errors.is_empty(), "{errors:?}");
    let mut data = None;
    let mut write = None;
    for s in &program.stmts {
        match &s.kind {
            StmtKind::Data(d) => data = Some(d.clone()),
            StmtKind::Write(w) => write = Some(w.clone()),
            _ => {}
        }
    }
    let DataSource::Delimited(d) = data.expect("a data statement").source else {
        panic!("not delimited")
    };
    assert_eq!(d.file.path, "/facts/in.tsv");
    assert_eq!((d.delimiter, d.numbers), (',', vec![false, true]));
    let w = write.expect("a write");
    assert_eq!(
        (w.file.path.as_str(), w.delimiter),
        ("/out/e.csv", Some('\t'))
    );
}

#[test]
fn an_input_relation_with_rules_reads_into_a_relation_of_its_own() {
    let stmts = lower(".decl e(x: symbol)\n.input e\ne(\"z\").\n");
    assert!(rules(&stmts).contains(&"e/e'input(1)".to_string()));
}

#[test]
fn types_resolve_through_subtypes_and_unions() {
    lower(".type A <: symbol\n.type B <: A\n.type C = A | B\n.decl r(x: C)\nr(\"q\").\n");
    assert_eq!(
        codes(".type A <: symbol\n.type N <: number\n.type U = A | N\n"),
        ["TL0039"]
    );
    assert_eq!(codes(".decl r(x: Nope)\n"), ["TL0033"]);
    assert_eq!(codes(".type A = B\n.type B = A\n"), ["TL0032"]);
}

#[test]
fn mistakes_have_their_codes() {
    assert_eq!(codes("r(\"a)."), ["TL0030"]);
    assert_eq!(codes(".decl r(x: symbol)\nr(x) <- r(x)."), ["TL0031"]);
    assert_eq!(codes("r(\"a\")."), ["TL0033"]);
    assert_eq!(codes(".decl r(x: symbol)\nr(\"a\", \"b\")."), ["TL0034"]);
    assert_eq!(codes(".decl r(x: symbol)\nr(x) :- r(y)."), ["TL0035"]);
    assert_eq!(
        codes(".decl r(x: symbol)\nr(x) :- r(x), !r(y)."),
        ["TL0035"]
    );
    assert_eq!(codes(".decl r(x: symbol)\nr(_) :- r(_)."), ["TL0036"]);
    assert_eq!(codes(".decl r(x: symbol)\n.decl r(y: symbol)"), ["TL0037"]);
    assert_eq!(
        codes(".decl r(x: symbol)\n.input r(delimiter=\"ab\")"),
        ["TL0038"]
    );
    assert_eq!(codes(".decl r(x: number)\nr(\"a\")."), ["TL0039"]);
    // Equality grounds a variable from a grounded one.
    assert!(codes(".decl r(x: symbol)\nr(y) :- r(x), y = x.").is_empty());
}

#[test]
fn unsupported_constructs_name_themselves() {
    for text in [
        ".comp C { }",
        ".decl r(x: number)\nr(n) :- r(m), n = mean x : { r(x) }.",
        ".decl r(x: number)\nr(n) :- r(m), n = count : { r(1) ; r(2) }.",
        ".decl r(x: number)\nr(count : { r(_) }) :- r(1).",
        ".decl r(x: number)\nr(-2147483649).",
        ".decl r(x: number)\nr(@f(1)).",
        ".decl r(x: number)\nr(x) <= r(y) :- r(x), r(y).",
        ".decl r(x: float)",
        ".type T = [a: number]",
        "#include \"x.dl\"",
        ".decl r(x: symbol)\nr(\"a\").\n.plan 0: (1)",
        ".decl r(x: number) eqrel",
        ".decl r(x: symbol)\nr(x) :- r(y), x = cat(y, \"s\").",
    ] {
        assert_eq!(codes(text), ["TL0032"], "{text}");
    }
}

#[test]
fn rules_with_arithmetic_on_variables_are_split() {
    let text = ".decl r(a: number, b: number)\n.decl s(a: number, c: number)\n\
                s(a, a + b) :- r(a, b), a < b, c = b * 2, c > 3.\n";
    let (program, computed, errors) = parse_souffle(text, FileId(0), &options(Output::Stdout));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(computed.len(), 1);
    let c = &computed[0];
    assert_eq!((c.head.as_str(), c.body.as_str()), ("s", "computed'1"));
    assert_eq!(c.vars, ["a", "b"]);
    // `a < b` stays a rule's comparison; `c = b * 2` and `c > 3` are the computed rule's.
    assert_eq!(c.checks.len(), 2);
    let hidden = program
        .stmts
        .iter()
        .find_map(|s| match &s.kind {
            StmtKind::Rule(r) if r.head.name.name == "computed'1" => Some(r),
            _ => None,
        })
        .map(|r| r.body.len());
    assert_eq!(hidden, Some(2));
    use super::computed::Value::Num;
    assert_eq!(
        c.apply(&[Num(1), Num(2)], &Default::default()),
        Ok(Some(vec![Num(1), Num(3)]))
    );
    assert_eq!(c.apply(&[Num(1), Num(1)], &Default::default()), Ok(None));
}

#[test]
fn recursion_through_an_aggregate_or_a_computed_negation_is_rejected() {
    assert_eq!(
        codes(".decl r(n: number)\nr(0).\nr(n) :- n = count : { r(_) }.\n"),
        ["TL0110"]
    );
    assert_eq!(
        codes(".decl q(n: number)\n.decl p(n: number)\np(n + 1) :- q(n), !p(n).\n"),
        ["TL0110"]
    );
    // Recursion through arithmetic alone is fine (it is monotone).
    assert!(codes(".decl p(n: number)\np(0).\np(n + 1) :- p(n), n < 3.\n").is_empty());
}

#[test]
fn several_errors_are_reported_in_one_run() {
    assert_eq!(
        codes(".decl r(x: symbol)\nr(x) :- .\nr(\"a\", \"b\").\nr(\"ok\").\ns(\"b\").\n"),
        ["TL0031", "TL0034", "TL0033"]
    );
}

#[test]
fn hostile_text_never_panics() {
    for text in [
        "(((((",
        "r(",
        ".decl",
        ".decl r(",
        "\u{feff}.decl r()",
        "r() :- (((x",
        "-",
        "\"",
        "/*",
    ] {
        let _ = parse_souffle(text, FileId(0), &options(Output::Stdout));
    }
    let deep = format!(
        ".decl r(x: number)\nr(x) :- r(x), x = {}1{}.",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    assert_eq!(codes(&deep), ["TL0032"]);
}
