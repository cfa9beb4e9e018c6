use super::*;

fn input(k: usize) -> MapExpr {
    MapExpr::Input(k)
}

fn bin(f: BinaryFn, a: MapExpr, b: MapExpr) -> MapExpr {
    MapExpr::Binary(f, Box::new(a), Box::new(b))
}

fn un(f: UnaryFn, a: MapExpr) -> MapExpr {
    MapExpr::Unary(f, Box::new(a))
}

fn text(e: &MapExpr) -> String {
    let nodes = [3, 4, 7];
    formula(e, &|k| format!("%{}", nodes[k]))
}

#[test]
fn formulas_bracket_only_where_precedence_needs_it() {
    let sum = bin(BinaryFn::Add, input(0), input(1));
    assert_eq!(text(&un(UnaryFn::Relu, sum.clone())), "relu(%3 + %4)");
    assert_eq!(
        text(&bin(BinaryFn::Mul, sum.clone(), input(2))),
        "(%3 + %4) * %7"
    );
    assert_eq!(
        text(&bin(
            BinaryFn::Add,
            input(2),
            bin(BinaryFn::Mul, input(0), input(1))
        )),
        "%7 + %3 * %4"
    );
    // Left-associative: a right operand of the same precedence keeps its brackets.
    let diff = bin(BinaryFn::Sub, input(1), input(2));
    assert_eq!(
        text(&bin(BinaryFn::Sub, input(0), diff.clone())),
        "%3 - (%4 - %7)"
    );
    assert_eq!(text(&bin(BinaryFn::Sub, diff, input(0))), "%4 - %7 - %3");
    // `^` groups to the right.
    let pow = bin(BinaryFn::Pow, input(1), input(2));
    assert_eq!(
        text(&bin(BinaryFn::Pow, input(0), pow.clone())),
        "%3 ^ %4 ^ %7"
    );
    assert_eq!(text(&bin(BinaryFn::Pow, pow, input(0))), "(%4 ^ %7) ^ %3");
    assert_eq!(text(&un(UnaryFn::Neg, sum)), "-(%3 + %4)");
    assert_eq!(
        text(&bin(BinaryFn::Mul, input(0), MapExpr::Const(-2.5))),
        "%3 * (-2.5)"
    );
    assert_eq!(
        text(&bin(BinaryFn::Max, input(0), MapExpr::Const(0.0))),
        "max(%3, 0)"
    );
    assert_eq!(
        text(&bin(BinaryFn::Div, input(0), un(UnaryFn::Recip, input(1)))),
        "%3 / (1 / %4)"
    );
}

#[test]
fn a_graph_prints_one_line_per_node_with_its_names() {
    let mut g = Graph::default();
    let x = g.push(Op::Load { tensor: 0 }, vec![0, 2], vec![4, 3]);
    let w = g.push(Op::Load { tensor: 1 }, vec![2, 1], vec![3, 5]);
    let b = g.push(Op::Load { tensor: 2 }, vec![1], vec![5]);
    g.push(
        Op::ContractMap {
            a: x,
            b: w,
            expr: un(UnaryFn::Relu, bin(BinaryFn::Add, input(0), input(1))),
            inputs: vec![b],
        },
        vec![0, 1],
        vec![4, 5],
    );
    let tensors = ["X".to_string(), "W".to_string(), "B".to_string()];
    let names = Names {
        tensors: &tensors,
        vars: vec!["i".into(), "j".into(), "k".into()],
    };
    assert_eq!(
        g.show(&names).indented().to_string(),
        "  %0 = load X : [i: 4, k: 3]\n  %1 = load W : [k: 3, j: 5]\n  %2 = load B : [j: 5]\n  \
         %3 = relu(%0·%1 + %2) summing [k] : [i: 4, j: 5]\n"
    );
    // Without names, tensors and variables print by number.
    assert!(g
        .to_string()
        .contains("%3 = relu(%0·%1 + %2) summing [v2] : [v0: 4, v1: 5]"));
}
