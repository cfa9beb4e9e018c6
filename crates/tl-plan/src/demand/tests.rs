use super::*;

/// A checked program from source text (the demand tests' shared fixture).
pub(crate) fn checked(src: &str) -> CheckedProgram {
    let mut sources = tl_syntax::SourceMap::new();
    let (program, diags) =
        tl_syntax::load_source("t.tl", src, &mut sources, std::path::Path::new("."));
    assert!(diags.is_empty(), "{diags:?}");
    match tl_check::check(&program, &sources) {
        Ok(p) => p,
        Err(e) => panic!("{e:?}"),
    }
}

fn rewritten(src: &str, mode: Mode) -> Option<String> {
    let mut p = checked(src);
    let r = rewrite(&mut p, mode)?;
    Some(r.render(&p))
}

const GRAPH: &str = "Edge(98, 99)\nEdge(0, 1)\nEdge(1, 2)\nEdge(2, 0)\nEdge(3, 4)\n";

#[test]
fn a_bound_query_reads_a_single_source_copy() {
    let src = format!(
        "{GRAPH}Reach(x, y) <- Edge(x, y)\nReach(x, z) <- Reach(x, y), Edge(y, z)\nReach(1, y)?\n"
    );
    let text = rewritten(&src, Mode::Auto).unwrap_or_default();
    let expected = "\
  not computed: Reach
  Reach.bf: the tuples of Reach that demand reaches (arguments bf: b bound, f free)
  query `Reach(1, y)?` reads Reach.bf
  magic.Reach.bf(1)
  Reach.bf(x, y) <- magic.Reach.bf(x), Edge(x, y)
  Reach.bf(x, z) <- magic.Reach.bf(x), Reach.bf(x, y), Edge(y, z)
";
    assert!(text.ends_with(expected), "{text}");
}

#[test]
fn a_left_linear_closure_is_turned_around_for_its_source() {
    let src = format!(
        "{GRAPH}Reach(x, y) <- Edge(x, y)\nReach(x, z) <- Edge(x, y), Reach(y, z)\nR(y) <- Reach(3, y)\nR?\n"
    );
    let text = rewritten(&src, Mode::Auto).unwrap_or_default();
    assert!(
        text.contains("Reach.bf(x, z) <- magic.Reach.bf(x), Reach.bf(x, y), Edge(y, z)"),
        "{text}"
    );
    assert!(
        text.contains("R(y) <- Reach.bf(3, y)   (rewritten)"),
        "{text}"
    );
    assert!(!text.contains("magic.Reach.bf(y) <-"), "{text}");
}

#[test]
fn bindings_pass_sideways_through_a_body() {
    let src = format!(
        "{GRAPH}Start(2)\nReach(x, y) <- Edge(x, y)\nReach(x, z) <- Reach(x, y), Edge(y, z)\nR(y) <- Start(x), Reach(x, y)\nR?\n"
    );
    let text = rewritten(&src, Mode::Auto).unwrap_or_default();
    assert!(text.contains("magic.Reach.bf(x) <- Start(x)"), "{text}");
    assert!(
        text.contains("R(y) <- Start(x), Reach.bf(x, y)   (rewritten)"),
        "{text}"
    );
}

#[test]
fn a_relation_needed_whole_is_not_rewritten() {
    let rules = "Reach(x, y) <- Edge(x, y)\nReach(x, z) <- Reach(x, y), Edge(y, z)\n";
    for uses in [
        "Reach(1, y)?\nReach?\n",
        "Reach(1, y)?\nC = Reach(x, y)\nC?\n",
    ] {
        let src = format!("{GRAPH}{rules}{uses}");
        assert_eq!(rewritten(&src, Mode::Auto), None, "{uses}");
        assert!(rewritten(&src, Mode::Always).is_some(), "{uses}");
    }
}

#[test]
fn small_relations_and_growing_demand_stay_whole() {
    let small = "domain N = 10\nEdge(0, 1)\nReach(x, y) <- Edge(x, y)\n\
                 Reach(x, z) <- Reach(x, y), Edge(y, z)\nReach(1, y)?\n";
    assert_eq!(rewritten(small, Mode::Auto), None);
    // Same generation asked from one node: the magic relation grows by its own rule.
    let sg = format!(
        "{GRAPH}SG(x, y) <- Edge(p, x), Edge(p, y), x != y\nSG(x, y) <- Edge(a, x), SG(a, b), Edge(b, y)\nSG(1, y)?\n"
    );
    assert_eq!(rewritten(&sg, Mode::Auto), None);
    let text = rewritten(&sg, Mode::Always).unwrap_or_default();
    assert!(
        text.contains("magic.SG.bf(a) <- magic.SG.bf(x), Edge(a, x)"),
        "{text}"
    );
}

#[test]
fn negated_atoms_read_the_whole_relation() {
    let src = format!(
        "{GRAPH}Reach(x, y) <- Edge(x, y)\nReach(x, z) <- Reach(x, y), Edge(y, z)\n\
         Far(x, y) <- Reach(x, y), not Edge(x, y)\nFar(0, y)?\n"
    );
    let text = rewritten(&src, Mode::Always).unwrap_or_default();
    assert!(
        text.contains("Far.bf(x, y) <- magic.Far.bf(x), Reach.bf(x, y), not Edge(x, y)"),
        "{text}"
    );
}

#[test]
fn programs_that_train_are_left_alone() {
    let src = format!(
        "{GRAPH}Reach(x, y) <- Edge(x, y)\nReach(x, z) <- Reach(x, y), Edge(y, z)\nReach(1, y)?\n\
         param W[2] = 0\nLoss = (W[i] - 1)^2\nminimize Loss with sgd(lr=0.1) for 2 steps\n"
    );
    assert_eq!(rewritten(&src, Mode::Always), None);
}

#[test]
fn the_rewritten_program_is_stratified_and_keeps_tensor_ids() {
    let src = format!(
        "{GRAPH}Reach(x, y) <- Edge(x, y)\nReach(x, z) <- Reach(x, y), Edge(y, z)\n\
         Out(y) <- Reach(0, y), not Reach(y, 0)\nOut?\n"
    );
    let mut p = checked(&src);
    let before: Vec<String> = p.tensors.iter().map(|t| t.name.clone()).collect();
    let r = rewrite(&mut p, Mode::Always);
    assert!(r.is_some());
    for (k, name) in before.iter().enumerate() {
        assert_eq!(&p.tensors[k].name, name);
    }
    let again = tl_check::strata::stratify(&p);
    assert!(again.is_ok(), "{again:?}");
    // Reach is still read whole (through `not`), so its rules stay.
    let reach = p.tensor_named("Reach").unwrap_or(usize::MAX);
    assert_eq!(p.tensors[reach].rules.len(), 2);
}
