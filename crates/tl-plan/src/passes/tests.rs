use super::*;
use crate::graph::Op;
use crate::PlanOptions;

fn checked(text: &str) -> CheckedProgram {
    let (program, errors) = tl_syntax::parse(text, tl_syntax::FileId(0));
    assert!(errors.is_empty(), "{errors:?}");
    let sources = tl_syntax::SourceMap::default();
    tl_check::check(&program, &sources).unwrap_or_else(|e| panic!("{e:?}"))
}

/// Makes the first node read the last one, which comes after it.
fn read_later(g: &mut Graph) {
    let last = g.nodes.len() - 1;
    g.nodes[0].op = Op::Reduce {
        input: last,
        op: tl_core::ReduceOp::Sum,
    };
}

fn breaks_the_graph(f: &mut Fusing) {
    read_later(&mut f.graph);
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "graphs are verified in debug builds only"
)]
fn a_fusion_pass_that_breaks_the_graph_is_named() {
    let mut g = Graph::default();
    let x = g.push(Op::Load { tensor: 0 }, vec![0], vec![3]);
    let root = g.push(
        Op::Map {
            expr: tl_core::MapExpr::Input(0),
            inputs: vec![x],
        },
        vec![0],
        vec![3],
    );
    let mut passes: Vec<FusionPass> = FUSION
        .iter()
        .map(|p| FusionPass {
            name: p.name,
            run: p.run,
        })
        .collect();
    assert!(run_fusion(Fusing::new(g.clone(), root), &passes).is_ok());
    passes.insert(
        2,
        FusionPass {
            name: "deliberately broken",
            run: breaks_the_graph,
        },
    );
    let err = run_fusion(Fusing::new(g, root), &passes).err();
    let Some(Broken { pass, problem }) = err else {
        panic!("the broken graph was not caught");
    };
    assert_eq!(pass, "deliberately broken");
    assert!(problem.contains("comes later"), "{problem}");
}

fn breaks_a_plan(s: &mut Planning) -> Result<(), Vec<PlanError>> {
    if let Some(plan) = s.plan.equations.last_mut() {
        read_later(&mut plan.fused);
    }
    Ok(())
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "graphs are verified in debug builds only"
)]
fn a_program_pass_that_breaks_a_graph_is_named_at_its_statement() {
    let p = checked("A = [1, 2, 3]\nB[i] = relu(A[i] + 1)\nC[i] = A[i] B[i]\nC?\n");
    let mut planning = Planning {
        program: &p,
        shapes: (0..p.tensors.len()).map(|t| p.shape(t)).collect(),
        kinds: p.tensors.iter().map(|t| t.kind).collect(),
        plan: crate::plan_with(&p, PlanOptions::default()).unwrap_or_else(|e| panic!("{e:?}")),
    };
    let broken = [ProgramPass {
        name: "deliberately broken",
        run: breaks_a_plan,
    }];
    let Err(errors) = run_program(&mut planning, &broken) else {
        panic!("the broken graph was not caught");
    };
    let [PlanError::BrokenGraph {
        pass,
        problem,
        span,
    }] = &errors[..]
    else {
        panic!("{errors:?}");
    };
    assert_eq!(*pass, "deliberately broken");
    assert!(problem.contains("comes later"), "{problem}");
    let last = p.equations.last().map(|e| e.span);
    assert_eq!(Some(*span), last);
    let d = tl_syntax::ToDiagnostic::to_diagnostic(&errors[0]);
    assert_eq!(d.code, "TL0204");
}

#[test]
fn every_pass_has_a_distinct_name_within_its_list() {
    let mut names: Vec<&str> = PROGRAM.iter().map(|p| p.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), PROGRAM.len());
    let mut names: Vec<&str> = FUSION.iter().map(|p| p.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), FUSION.len());
}

#[test]
fn every_plan_has_its_own_number() {
    let p = checked(
        "Edge(1, 2)\nEdge(2, 3)\nPath(x, y) <- Edge(x, y)\nPath(x, z) <- Path(x, y), Edge(y, z)\n\
         X[e: 4, t: 3] = sin(e + t)\nparam W[4, 4] ~ normal(0, 0.3)\n\
         H[e, i, *t+1] = tanh(W[i, j] H[e, j, *t] + X[e, t])\nY[e] = H[e, i]\n",
    );
    let mut plan = crate::plan(&p).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(!plan.deltas.iter().all(Vec::is_empty) && !plan.loops.is_empty());
    let mut ids: Vec<usize> = plan.plans_mut().map(|q| q.id).collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count);
    assert_eq!(ids.last(), Some(&(count - 1)));
    // Each slot is typed by the tensor it holds values of.
    let h = p.tensors.iter().position(|t| t.name == "H");
    let slots: Vec<_> = plan
        .loops
        .iter()
        .flat_map(|l| &l.equations)
        .flat_map(|e| &e.slots)
        .collect();
    assert!(!slots.is_empty());
    for s in slots {
        let expected = match s.source {
            crate::loops::SlotSource::State { tensor, .. }
            | crate::loops::SlotSource::Row { tensor, .. } => Some(tensor),
            crate::loops::SlotSource::Step => None,
        };
        assert_eq!(plan.slot_source(s.id), expected);
    }
    assert!(h.is_some_and(|h| (0..100).any(|id| plan.slot_source(id) == Some(h))));
}

#[test]
fn a_count_computes_exactly_and_a_real_equation_in_the_run_type() {
    let p = checked(
        "Edge(1, 2)\nEdge(2, 3)\nEdge(1, 3)\nOut[x] += Edge(x, y)\nW[i: 4] = sin(i + 0.5)\n\
         S = W[i] W[i]\n",
    );
    let mut plan = crate::plan(&p).unwrap_or_else(|e| panic!("{e:?}"));
    let tensor = |name: &str| p.tensors.iter().position(|t| t.name == name);
    let (out, s) = (tensor("Out"), tensor("S"));
    let mut seen = 0;
    for q in plan.plans_mut() {
        let want = if Some(q.target) == out {
            Precision::Exact
        } else {
            Precision::Real
        };
        seen += usize::from(Some(q.target) == out || Some(q.target) == s);
        for graph in [&q.graph, &q.fused] {
            assert!(graph.nodes.iter().all(|n| n.precision == want), "{graph}");
        }
    }
    assert_eq!(seen, 2);
    // Dumped plans say which nodes are exact.
    assert!(crate::show::render(&p, &plan).contains(" f64"));
}

#[test]
fn a_node_reading_another_precision_breaks_the_graph() {
    let mut g = Graph::default();
    let x = g.push(Op::Load { tensor: 0 }, vec![0], vec![3]);
    g.push(
        Op::Map {
            expr: tl_core::MapExpr::Input(0),
            inputs: vec![x],
        },
        vec![0],
        vec![3],
    );
    assert_eq!(g.verify(), Ok(()));
    g.nodes[x].precision = Precision::Exact;
    let problem = g.verify().err().unwrap_or_default();
    assert!(problem.contains("another precision"), "{problem}");
}
