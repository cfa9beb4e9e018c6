//! Parser tests: every statement form, precedence and juxtaposition, and continuation lines.

use super::parse;
use crate::ast::*;
use crate::span::{FileId, Span};

/// Parses text that must be free of errors.
#[track_caller]
fn parse_ok(text: &str) -> Vec<StmtKind> {
    let (program, errors) = parse(text, FileId(0));
    assert!(
        errors.is_empty(),
        "unexpected errors for {text:?}: {errors:?}"
    );
    program.stmts.into_iter().map(|s| s.kind).collect()
}

/// Parses one statement that must be free of errors.
#[track_caller]
fn parse_one(text: &str) -> StmtKind {
    let mut stmts = parse_ok(text);
    assert_eq!(stmts.len(), 1, "expected one statement in {text:?}");
    stmts.remove(0)
}

/// The `Debug` text of a value with every span blanked, so trees compare without positions.
fn replace_spans(debug: &str) -> String {
    let mut out = String::new();
    let mut rest = debug;
    while let Some(at) = rest.find("Span {") {
        out.push_str(&rest[..at]);
        out.push('_');
        rest = rest[at..].split_once('}').map_or("", |(_, after)| after);
    }
    out.push_str(rest);
    out
}

#[track_caller]
fn parses_as(text: &str, expected: StmtKind) {
    let got = replace_spans(&format!("{:?}", parse_one(text)));
    assert_eq!(got, replace_spans(&format!("{expected:?}")), "for {text:?}");
}

fn id(name: &str) -> Ident {
    Ident {
        name: name.into(),
        span: Span::default(),
    }
}

fn var(name: &str) -> IndexArg {
    IndexArg::Expr(IndexExpr::Var(id(name)))
}

fn int(n: i64) -> IndexArg {
    IndexArg::Expr(IndexExpr::Int(n, Span::default()))
}

fn sym(name: &str) -> IndexArg {
    IndexArg::Symbol {
        name: name.into(),
        span: Span::default(),
    }
}

fn atom(name: &str, args: Vec<IndexArg>) -> Atom {
    Atom {
        name: id(name),
        args,
        span: Span::default(),
    }
}

fn lhs_index(arg: IndexArg) -> LhsIndex {
    LhsIndex {
        arg,
        dotted: false,
        extent: None,
    }
}

fn lhs(name: &str, indices: Option<Vec<LhsIndex>>) -> Lhs {
    Lhs {
        name: id(name),
        indices,
        span: Span::default(),
    }
}

fn call(name: &str, args: Vec<(Option<&str>, ArgValue)>) -> Call {
    Call {
        name: id(name),
        args: args
            .into_iter()
            .map(|(key, value)| CallArg {
                name: key.map(id),
                value,
                span: Span::default(),
            })
            .collect(),
        span: Span::default(),
    }
}

fn array(shape: Vec<usize>, data: Vec<f64>) -> ArrayLit {
    ArrayLit {
        shape,
        data,
        span: Span::default(),
    }
}

/// A compact prefix rendering of an expression, for precedence tests.
fn sx(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Number(n) => n.to_string(),
        ExprKind::Index(id) => format!("#{}", id.name),
        ExprKind::Access(a) => {
            let args: Vec<String> = a.args.iter().map(ix).collect();
            match a.style {
                AccessStyle::Bare => a.name.name.clone(),
                AccessStyle::Bracket => format!("{}[{}]", a.name.name, args.join(",")),
                AccessStyle::Paren => format!("{}({})", a.name.name, args.join(",")),
            }
        }
        ExprKind::Call { func, args } => {
            let args: Vec<String> = args.iter().map(sx).collect();
            format!("({} {})", func.name, args.join(" "))
        }
        ExprKind::Neg(inner) => format!("(neg {})", sx(inner)),
        ExprKind::Binary { op, lhs, rhs } => {
            let op = match op {
                BinOp::Add => "+",
                BinOp::Sub => "-",
                BinOp::Mul => "*",
                BinOp::Div => "/",
                BinOp::Pow => "^",
            };
            format!("({op} {} {})", sx(lhs), sx(rhs))
        }
    }
}

fn ix(arg: &IndexArg) -> String {
    fn ie(e: &IndexExpr) -> String {
        match e {
            IndexExpr::Var(v) => v.name.clone(),
            IndexExpr::Int(n, _) => n.to_string(),
            IndexExpr::Binary { op, lhs, rhs, .. } => {
                let op = match op {
                    IndexOp::Add => "+",
                    IndexOp::Sub => "-",
                    IndexOp::Mul => "*",
                    IndexOp::Div => "/",
                    IndexOp::Rem => "%",
                };
                format!("({op} {} {})", ie(lhs), ie(rhs))
            }
        }
    }
    match arg {
        IndexArg::Expr(e) => ie(e),
        IndexArg::Symbol { name, .. } => format!("'{name}"),
        IndexArg::Slice { start, end, .. } => format!(
            "{}:{}",
            start.map_or(String::new(), |s| s.to_string()),
            end.map_or(String::new(), |s| s.to_string())
        ),
        IndexArg::Virtual { var, offset, .. } => format!("*{}{offset:+}", var.name),
    }
}

/// The right-hand side of a one-equation program, rendered by [`sx`].
#[track_caller]
fn rhs(text: &str) -> String {
    match parse_one(text) {
        StmtKind::Equation(eq) => sx(&eq.rhs),
        other => panic!("not an equation: {other:?}"),
    }
}

#[test]
fn datalog_example() {
    let stmts = parse_ok(
        "# Datalog\nParent(Alice, Bob)\nParent(Bob, Carol).\n\
         Ancestor(x, y) <- Parent(x, y)\n\
         Ancestor(x, z) <- Ancestor(x, y), Parent(y, z)\nAncestor(Alice, x)?\n",
    );
    assert_eq!(stmts.len(), 5);
    assert_eq!(
        replace_spans(&format!("{:?}", stmts[1])),
        replace_spans(&format!(
            "{:?}",
            StmtKind::Fact(atom("Parent", vec![sym("Bob"), sym("Carol")]))
        ))
    );
    parses_as(
        "Ancestor(x, z) <- Ancestor(x, y), Parent(y, z)",
        StmtKind::Rule(Rule {
            head: atom("Ancestor", vec![var("x"), var("z")]),
            body: vec![
                BodyItem::Atom {
                    negated: false,
                    atom: atom("Ancestor", vec![var("x"), var("y")]),
                },
                BodyItem::Atom {
                    negated: false,
                    atom: atom("Parent", vec![var("y"), var("z")]),
                },
            ],
        }),
    );
    parses_as(
        "Ancestor(Alice, x)?",
        StmtKind::Query(Query {
            access: Access {
                name: id("Ancestor"),
                style: AccessStyle::Paren,
                args: vec![sym("Alice"), var("x")],
                span: Span::default(),
            },
        }),
    );
}

#[test]
fn facts_take_symbols_strings_and_integers() {
    parses_as(
        "Lives(\"New York\", Bob, 3)",
        StmtKind::Fact(atom("Lives", vec![sym("New York"), sym("Bob"), int(3)])),
    );
}

#[test]
fn negation_and_comparisons_in_rule_bodies() {
    parses_as(
        "Head(x, y) <- A(x, y), not B(x), x != y, x < 3, x == Bob",
        StmtKind::Rule(Rule {
            head: atom("Head", vec![var("x"), var("y")]),
            body: vec![
                BodyItem::Atom {
                    negated: false,
                    atom: atom("A", vec![var("x"), var("y")]),
                },
                BodyItem::Atom {
                    negated: true,
                    atom: atom("B", vec![var("x")]),
                },
                BodyItem::Compare {
                    op: Compare::Ne,
                    lhs: var("x"),
                    rhs: var("y"),
                    span: Span::default(),
                },
                BodyItem::Compare {
                    op: Compare::Lt,
                    lhs: var("x"),
                    rhs: int(3),
                    span: Span::default(),
                },
                BodyItem::Compare {
                    op: Compare::Eq,
                    lhs: var("x"),
                    rhs: sym("Bob"),
                    span: Span::default(),
                },
            ],
        }),
    );
}

#[test]
fn equations_with_every_projection() {
    for (op, projection) in [
        ("=", Projection::Assign),
        ("+=", Projection::Add),
        ("max=", Projection::Max),
        ("min=", Projection::Min),
        ("avg=", Projection::Avg),
    ] {
        match parse_one(&format!("Y[i] {op} W[i, j] X[j]")) {
            StmtKind::Equation(eq) => {
                assert_eq!(eq.projection, projection);
                assert_eq!(eq.lhs.name.name, "Y");
                assert_eq!(sx(&eq.rhs), "(* W[i,j] X[j])");
            }
            other => panic!("not an equation: {other:?}"),
        }
    }
}

#[test]
fn left_hand_sides_with_dots_extents_and_arithmetic() {
    let StmtKind::Equation(eq) = parse_one("A[p, p'.] = softmax(S[p, p'])") else {
        panic!("not an equation");
    };
    let indices = eq.lhs.indices.unwrap_or_default();
    assert_eq!(indices.len(), 2);
    assert!(!indices[0].dotted && indices[1].dotted);
    assert_eq!(ix(&indices[1].arg), "p'");

    let StmtKind::Equation(eq) = parse_one("Likes[p: Person, q: Person, x: 7] = F(p, q)") else {
        panic!("not an equation");
    };
    let indices = eq.lhs.indices.unwrap_or_default();
    assert!(matches!(&indices[0].extent, Some(ExtentAnn::Domain(d)) if d.name == "Person"));
    assert!(matches!(indices[2].extent, Some(ExtentAnn::Size(7, _))));

    let StmtKind::Equation(eq) = parse_one("Pool[x/2] max= S[x]") else {
        panic!("not an equation");
    };
    let indices = eq.lhs.indices.unwrap_or_default();
    assert_eq!(ix(&indices[0].arg), "(/ x 2)");

    let StmtKind::Equation(eq) = parse_one("Loss = Y") else {
        panic!("not an equation");
    };
    assert_eq!(eq.lhs.indices, None);
}

#[test]
fn index_arithmetic_and_slices() {
    assert_eq!(
        rhs("C[x] = Img[x+dx, 2*i+1, -1, (x-1)%3]"),
        "Img[(+ x dx),(+ (* 2 i) 1),-1,(% (- x 1) 3)]"
    );
    assert_eq!(rhs("Mid = S[2:5, :5, 2:, -3:-1]"), "S[2:5,:5,2:,-3:-1]");
}

#[test]
fn data_definitions_from_literals_and_files() {
    parses_as(
        "M = [[1, 2], [3, -4]]",
        StmtKind::Data(DataDef {
            lhs: lhs("M", None),
            source: DataSource::Array(array(vec![2, 2], vec![1.0, 2.0, 3.0, -4.0])),
        }),
    );
    parses_as(
        "W = [0.2, 1.9, -0.7]",
        StmtKind::Data(DataDef {
            lhs: lhs("W", None),
            source: DataSource::Array(array(vec![3], vec![0.2, 1.9, -0.7])),
        }),
    );
    parses_as(
        "Wq[l, i, j] = \"m.safetensors#enc.{l}.q.weight\"",
        StmtKind::Data(DataDef {
            lhs: lhs(
                "Wq",
                Some(vec![
                    lhs_index(var("l")),
                    lhs_index(var("i")),
                    lhs_index(var("j")),
                ]),
            ),
            source: DataSource::File(FileRef {
                path: "m.safetensors".into(),
                selector: Some("enc.{l}.q.weight".into()),
                span: Span::default(),
            }),
        }),
    );
    parses_as(
        "Parent = \"parent.csv\"",
        StmtKind::Data(DataDef {
            lhs: lhs("Parent", None),
            source: DataSource::File(FileRef {
                path: "parent.csv".into(),
                selector: None,
                span: Span::default(),
            }),
        }),
    );
}

#[test]
fn write_commands() {
    parses_as(
        "\"out.safetensors\" = W1, B1",
        StmtKind::Write(WriteCmd {
            file: FileRef {
                path: "out.safetensors".into(),
                selector: None,
                span: Span::default(),
            },
            tensors: vec![id("W1"), id("B1")],
            delimiter: None,
        }),
    );
}

#[test]
fn param_declarations() {
    parses_as(
        "param W[8, Person] ~ normal(0, -0.5)",
        StmtKind::Param(ParamDecl {
            name: id("W"),
            dims: vec![
                DimSpec::Size(8, Span::default()),
                DimSpec::Domain(id("Person")),
            ],
            init: Some(Init::Random(call(
                "normal",
                vec![
                    (None, ArgValue::Number(0.0)),
                    (None, ArgValue::Number(-0.5)),
                ],
            ))),
        }),
    );
    parses_as(
        "param B[8] = 0",
        StmtKind::Param(ParamDecl {
            name: id("B"),
            dims: vec![DimSpec::Size(8, Span::default())],
            init: Some(Init::Constant(0.0, Span::default())),
        }),
    );
    parses_as(
        "param W[4]",
        StmtKind::Param(ParamDecl {
            name: id("W"),
            dims: vec![DimSpec::Size(4, Span::default())],
            init: None,
        }),
    );
    parses_as(
        "param V[3] ~ xavier",
        StmtKind::Param(ParamDecl {
            name: id("V"),
            dims: vec![DimSpec::Size(3, Span::default())],
            init: Some(Init::Random(call("xavier", vec![]))),
        }),
    );
}

#[test]
fn const_and_domain_declarations() {
    parses_as(
        "const Lr = -0.01",
        StmtKind::Const(ConstDecl {
            name: id("Lr"),
            value: array(vec![], vec![-0.01]),
        }),
    );
    parses_as(
        "const V = [1, 2]",
        StmtKind::Const(ConstDecl {
            name: id("V"),
            value: array(vec![2], vec![1.0, 2.0]),
        }),
    );
    parses_as(
        "domain City = {Paris, \"New York\"}",
        StmtKind::Domain(DomainDecl {
            name: id("City"),
            members: DomainMembers::Symbols(vec![
                ("Paris".into(), Span::default()),
                ("New York".into(), Span::default()),
            ]),
        }),
    );
    parses_as(
        "domain N = 10",
        StmtKind::Domain(DomainDecl {
            name: id("N"),
            members: DomainMembers::Range(10, Span::default()),
        }),
    );
}

#[test]
fn minimize_with_all_clauses() {
    parses_as(
        "minimize Loss with adam(lr=0.05, beta1=0.9, amsgrad=false, scale=Lr) for 20 epochs \
         batch e 64 schedule cosine(warmup=50)",
        StmtKind::Minimize(Minimize {
            loss: id("Loss"),
            optimizer: call(
                "adam",
                vec![
                    (Some("lr"), ArgValue::Number(0.05)),
                    (Some("beta1"), ArgValue::Number(0.9)),
                    (Some("amsgrad"), ArgValue::Bool(false)),
                    (Some("scale"), ArgValue::Name(id("Lr"))),
                ],
            ),
            duration: Duration::Epochs(20, Span::default()),
            batch: Some(Batch {
                index: id("e"),
                size: 64,
                span: Span::default(),
            }),
            schedule: Some(call(
                "cosine",
                vec![(Some("warmup"), ArgValue::Number(50.0))],
            )),
        }),
    );
    let StmtKind::Minimize(m) = parse_one("minimize Loss with sgd(0.1, max=2) for 500 steps")
    else {
        panic!("not a minimize");
    };
    assert!(matches!(m.duration, Duration::Steps(500, _)));
    assert_eq!(
        m.optimizer.args[1].name.as_ref().map(|n| n.name.as_str()),
        Some("max")
    );
}

#[test]
fn queries_and_imports() {
    for (text, style, n) in [
        ("Y?", AccessStyle::Bare, 0),
        ("Y[2]?", AccessStyle::Bracket, 1),
        ("Y[i, 2]?", AccessStyle::Bracket, 2),
    ] {
        let StmtKind::Query(q) = parse_one(text) else {
            panic!("not a query: {text}");
        };
        assert_eq!((q.access.style, q.access.args.len()), (style, n));
    }
    let StmtKind::Import(lit) = parse_one("import \"lib.tl\"") else {
        panic!("not an import");
    };
    assert_eq!(lit.value, "lib.tl");
}

#[test]
fn precedence_and_juxtaposition() {
    assert_eq!(
        rhs("Y[e] = sig(W[h] H[e, h] + B)"),
        "(sig (+ (* W[h] H[e,h]) B))"
    );
    assert_eq!(
        rhs("K[i, i'] = exp(-(X[i, j] - X[i', j])^2 / Var)"),
        "(exp (/ (neg (^ (- X[i,j] X[i',j]) 2)) Var))"
    );
    assert_eq!(
        rhs("P[p, d] = Even(d) sin(P[p] / 10000^(D[d] / Dm)) + Odd(d) cos(Q)"),
        "(+ (* Even(d) (sin (/ P[p] (^ 10000 (/ D[d] Dm))))) (* Odd(d) (cos Q)))"
    );
    assert_eq!(rhs("Loss = (Y[e] - T[e])^2"), "(^ (- Y[e] T[e]) 2)");
    assert_eq!(
        rhs("S = A[i,j] B[j] / sqrt(Dk)"),
        "(/ (* A[i,j] B[j]) (sqrt Dk))"
    );
    assert_eq!(rhs("S = A[i] - B[i]"), "(- A[i] B[i])");
    assert_eq!(rhs("S = -X[i]"), "(neg X[i])");
    assert_eq!(rhs("S = 2 X 3"), "(* (* 2 X) 3)");
    assert_eq!(rhs("S = A^B^2"), "(^ A (^ B 2))");
    assert_eq!(rhs("S = -A^2"), "(neg (^ A 2))");
    assert_eq!(rhs("S = A * B + C / D (E)"), "(+ (* A B) (/ C D('E)))");
    assert_eq!(rhs("S = sig(X, T) 1e-3"), "(* (sig X T) 0.001)");
}

#[test]
fn statements_continue_across_lines() {
    let stmts = parse_ok(
        "Y[i] = W[i, j] X[j] +\n    B[i]\nM = [[1, 2],\n     [3, 4]]\n\
         Head(x) <-\n  A(x),\n  B(x)\nZ =\n  sig(\n  Y)\n",
    );
    assert_eq!(stmts.len(), 4);
    let StmtKind::Equation(eq) = &stmts[0] else {
        panic!("not an equation");
    };
    assert_eq!(sx(&eq.rhs), "(+ (* W[i,j] X[j]) B[i])");
}

#[test]
fn xor_and_attention_examples_parse() {
    let xor = "X = [[0, 0], [0, 1], [1, 0], [1, 1]]\nT = [0, 1, 1, 0]\n\
        param W1[8, 2] ~ normal(0, 1)\nparam B1[8] = 0\nparam W2[8] ~ normal(0, 1)\n\
        param B2 = 0\nH[e, h] = tanh(W1[h, i] X[e, i] + B1[h])\n\
        Y[e] = sig(W2[h] H[e, h] + B2)\nLoss avg= (Y[e] - T[e])^2\n\
        minimize Loss with adam(lr=0.05) for 2000 steps\nY?\n";
    assert_eq!(parse_ok(xor).len(), 11);
    let attention = "Q[p, k] = Wq[k, d] X[p, d]\nK[p, k] = Wk[k, d] X[p, d]\n\
        V[p, v] = Wv[v, d] X[p, d]\nA[p, p'.] = softmax(Q[p, k] K[p', k] / sqrt(Dk))\n\
        Out[p, v] = A[p, p'] V[p', v]\n";
    assert_eq!(parse_ok(attention).len(), 5);
}

mod tokenized;
