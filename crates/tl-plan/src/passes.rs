//! The planner's passes, in the order they run: the table of contents of this crate.
//!
//! [`PROGRAM`] turns a checked program into a [`ProgramPlan`], one pass at a time over a
//! [`Planning`]. One of them, the `fuse` pass, runs the graph passes of [`FUSION`] on every
//! plan.
//! In debug builds (and so in every test) [`Graph::verify`] checks each graph after every
//! pass, and a graph that fails names the pass that broke it ([`PlanError::BrokenGraph`],
//! [`Broken`]); release builds skip the checks.
//!
//! Before these passes, [`crate::demand::rewrite`] may rewrite the checked program itself so
//! that bound queries and rule bodies compute only the tuples they ask for (goal-directed
//! evaluation).

use crate::fuse::{self, Fusing};
use crate::{
    layers, loops, EquationPlan, Graph, NodeId, PlanError, Precision, ProgramPlan, TensorRef,
};
use std::fmt;
use tl_check::{CheckedProgram, TensorId, TensorKind};
use tl_syntax::Span;

/// The passes over a whole program, in order (each documented at its function below).
pub const PROGRAM: &[ProgramPass] = &[
    // Equations to graphs: summation sites, contraction order, placement.
    ProgramPass {
        name: "lower",
        run: lower_equations,
    },
    // Dense or sparse, per tensor.
    ProgramPass {
        name: "storage",
        run: choose_storage,
    },
    // Rules to dense graphs.
    ProgramPass {
        name: "rules",
        run: lower_rules,
    },
    // Recursive rules' delta variants.
    ProgramPass {
        name: "semi-naive",
        run: semi_naive,
    },
    // Layer recursions to row plans.
    ProgramPass {
        name: "layers",
        run: plan_layers,
    },
    // Virtual indices to step plans.
    ProgramPass {
        name: "loops",
        run: plan_loops,
    },
    // Every plan's fused twin, by the passes of `FUSION`.
    ProgramPass {
        name: "fuse",
        run: fuse_plans,
    },
    // Row plans spliced into their readers within a layer.
    ProgramPass {
        name: "splice rows",
        run: splice_rows,
    },
    // Equations spliced into their one reader.
    ProgramPass {
        name: "splice equations",
        run: splice_equations,
    },
    // Every node's element type: exact where the plan computes a count.
    ProgramPass {
        name: "types",
        run: type_nodes,
    },
    // Every plan's number, for the runtime's caches.
    ProgramPass {
        name: "number",
        run: number_plans,
    },
];

/// The fusion passes over one graph, in order (the `fuse` pass runs them on every plan, and
/// each splice on the plans it joins). Until `prune`, they rewrite nodes in place and share the
/// use counts of the lowered graph ([`Fusing::uses`]).
pub const FUSION: &[FusionPass] = &[
    // Elementwise chains become one map; constants are folded into expressions, and a map of
    // constants alone becomes a constant. After it, no map reads a single-use map it could
    // absorb, and no map reads a constant node.
    FusionPass {
        name: "chains",
        run: fuse::chains,
    },
    // A softmax or layer norm of a single-use map over its labels becomes one
    // `MapNormalize`; the map is marked absorbed so `epilogues` leaves it (and its product)
    // alone.
    FusionPass {
        name: "normalisations",
        run: fuse::normalisations,
    },
    // A map reading a single-use contraction once becomes a `ContractMap` (the contraction
    // with its epilogue), possibly taking the product's axis order when it is not the root.
    FusionPass {
        name: "epilogues",
        run: fuse::epilogues,
    },
    // A reduction of a single-use map becomes one `MapReduce`.
    FusionPass {
        name: "map reductions",
        run: fuse::map_reductions,
    },
    // A constant factor on a contraction's operand moves into its epilogue.
    FusionPass {
        name: "constant factors",
        run: fuse::constant_factors,
    },
    // Dead nodes dropped, the rest renumbered in order; use counts are exact from here on.
    FusionPass {
        name: "prune",
        run: fuse::prune,
    },
    // `softmax(f(Q·K))·V` becomes one `Attention` node; what it took in is dropped.
    FusionPass {
        name: "attention",
        run: fuse::attention,
    },
    // A map over single-use reductions along one of its axes becomes one `MapRows` (row
    // kernels: a layer norm written by hand); what it took in is dropped. After it, every node
    // is live.
    FusionPass {
        name: "rows",
        run: fuse::rows,
    },
];

// The program passes. Each keeps every graph of the plan well formed ([`Graph::verify`]).

/// **lower**: each equation's right-hand side becomes a graph of load / gather / map /
/// contract / reduce / normalise nodes ([`crate::lower`]): the projection rule decides where
/// each index is summed, and a join of several factors is contracted pairwise in the order
/// [`crate::order`] chooses (an equation whose largest intermediate would pass
/// [`crate::order::MAX_INTERMEDIATE_CELLS`] is an error, `TL0203`). The result is then laid
/// onto the left-hand side (*placement*: a permutation or broadcast, or a scatter when the
/// left-hand side has constants or arithmetic). Afterwards: one plan per equation, in the
/// checked program's order, each unfused (its `fused` graph empty until the `fuse` pass).
fn lower_equations(s: &mut Planning) -> Result<(), Vec<PlanError>> {
    let mut errors = Vec::new();
    for eq in &s.program.equations {
        match crate::plan_equation(s.program, &s.shapes, eq) {
            Ok(plan) => s.plan.equations.push(plan),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// **storage**: each tensor is dense or sparse (sorted tuples), by size and by who reads it
/// ([`crate::PlanOptions`]). Afterwards: `storage` holds one entry per tensor; graphs are
/// unchanged.
fn choose_storage(s: &mut Planning) -> Result<(), Vec<PlanError>> {
    let options = s.plan.options;
    s.plan.storage = crate::pick_storage(
        s.program,
        &s.shapes,
        options.dense_cells,
        options.dense_rules,
    );
    Ok(())
}

/// **rules**: each rule's body becomes a dense plan (a join of its atoms, existentials
/// summed, placed onto the head under `max`). Afterwards: one unfused plan per rule.
fn lower_rules(s: &mut Planning) -> Result<(), Vec<PlanError>> {
    s.plan.rules = s
        .program
        .rules
        .iter()
        .map(|r| crate::plan_rule(&s.kinds, &s.shapes, r, None))
        .collect::<Result<_, _>>()
        .map_err(|e| vec![e])?;
    Ok(())
}

/// **semi-naive**: a rule of a recursive stratum gets one variant per body atom over that
/// stratum, reading the last round's delta ([`crate::TensorRef::Delta`]) there. Afterwards:
/// `deltas` holds one list per rule, empty outside recursion, each plan unfused.
fn semi_naive(s: &mut Planning) -> Result<(), Vec<PlanError>> {
    let mut deltas = Vec::with_capacity(s.program.rules.len());
    for r in &s.program.rules {
        deltas.push(crate::semi_naive(s.program, &s.kinds, &s.shapes, r).map_err(|e| vec![e])?);
    }
    s.plan.deltas = deltas;
    Ok(())
}

/// **layers**: a recursive group whose equations write layer row `l + c` from rows at most
/// `l + c` gets row plans ([`crate::layers`]), so it runs one pass per layer instead of as a
/// fixpoint. Afterwards: `layers` holds those groups, their row plans unfused, and the shapes
/// of the slots ([`crate::TensorRef::Slot`]) the row plans read.
fn plan_layers(s: &mut Planning) -> Result<(), Vec<PlanError>> {
    s.plan.layers = layers::plan_layers(s.program, &s.shapes).map_err(|e| vec![e])?;
    Ok(())
}

/// **loops**: the equations that write a virtual index (`S[i, *t+1] = …`) get step plans
/// ([`crate::loops`]), run once per step. Afterwards: `loops` holds them, unfused; their slots
/// are numbered after the layers'.
fn plan_loops(s: &mut Planning) -> Result<(), Vec<PlanError>> {
    s.plan.loops = loops::plan_loops(s.program, &s.shapes, &mut s.plan.layers.slot_shapes)
        .map_err(|e| vec![e])?;
    Ok(())
}

/// **fuse**: every plan gets its fused twin ([`crate::fuse`], the passes of [`FUSION`]), used
/// by evaluations that record no backward pass. Afterwards: every plan's `fused` graph holds
/// only nodes its root depends on, and computes what `graph` does.
fn fuse_plans(s: &mut Planning) -> Result<(), Vec<PlanError>> {
    for plan in s.plan.plans_mut() {
        let (fused, root) =
            fuse::fuse(&plan.graph, plan.root).map_err(|b| vec![b.at(plan.span)])?;
        plan.fused = fused;
        plan.fused_root = root;
    }
    Ok(())
}

/// **splice rows**: within a layer recursion, an equation whose result only other equations
/// of the group read, in the same row, is spliced into its readers' fused row plans
/// ([`crate::inline::inline_rows`]). Afterwards: those plans are marked `inlined`; their
/// readers' fused plans and fused slots include them, fused again.
fn splice_rows(s: &mut Planning) -> Result<(), Vec<PlanError>> {
    for ls in &mut s.plan.layers.strata {
        crate::inline::inline_rows(s.program, ls).map_err(|e| vec![e])?;
    }
    Ok(())
}

/// **splice equations**: outside layer recursions, an equation whose one reader is another
/// equation is spliced into that reader's fused plan ([`crate::inline::inline_equations`]).
/// Afterwards: those plans are marked `inlined` and run only while a backward pass is
/// recorded; their readers' fused plans include them, fused again.
fn splice_equations(s: &mut Planning) -> Result<(), Vec<PlanError>> {
    let layers = &s.plan.layers;
    crate::inline::inline_equations(s.program, &mut s.plan.equations, layers).map_err(|e| vec![e])
}

/// A program part-way through planning: what the passes read and the plan they build.
pub struct Planning<'a> {
    /// The checked program.
    pub program: &'a CheckedProgram,
    /// The shape of each tensor.
    pub shapes: Vec<Vec<usize>>,
    /// The kind of each tensor.
    pub kinds: Vec<TensorKind>,
    /// The plan so far (empty lists before the passes that fill them).
    pub plan: ProgramPlan,
}

/// A pass over a whole program's plan.
pub struct ProgramPass {
    /// Its name, as a failure names it.
    pub name: &'static str,
    /// What it does.
    pub run: fn(&mut Planning) -> Result<(), Vec<PlanError>>,
}

/// A pass over one graph being fused.
pub struct FusionPass {
    /// Its name, as a failure names it.
    pub name: &'static str,
    /// What it does.
    pub run: fn(&mut Fusing),
}

/// A graph that a pass left failing [`Graph::verify`]: which pass, and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    /// The pass.
    pub pass: &'static str,
    /// What [`Graph::verify`] found.
    pub problem: String,
}

impl Broken {
    /// The planning error for the statement at `span`.
    pub fn at(self, span: Span) -> PlanError {
        PlanError::BrokenGraph {
            pass: self.pass,
            problem: self.problem,
            span,
        }
    }
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pass `{}` broke the graph: {}", self.pass, self.problem)
    }
}

/// Whether graphs are verified after each pass: in debug builds, and so in tests.
pub const VERIFY: bool = cfg!(debug_assertions);

/// `Ok` when `graph` is well formed or checks are off; otherwise blames `pass`.
pub fn verified(pass: &'static str, graph: &Graph) -> Result<(), Broken> {
    if !VERIFY {
        return Ok(());
    }
    graph.verify().map_err(|problem| Broken { pass, problem })
}

/// Sets every node's [`Precision`]: [`Precision::Exact`] in the plans of integer tensors (a
/// slot's plan by the tensor the slot holds), whose operands are relations and counts, read in
/// `f64`; [`Precision::Real`] elsewhere. Splicing joins only real tensors' plans, so a plan's
/// nodes share one precision, and a value changes type only where a tensor is read.
fn type_nodes(s: &mut Planning) -> Result<(), Vec<PlanError>> {
    let n = s.program.tensors.len();
    let targets: Vec<TensorId> = s.plan.plans_mut().map(|p| p.target).collect();
    let precisions: Vec<Precision> = targets
        .into_iter()
        .map(|t| {
            let holder = match TensorRef::of(t, n) {
                TensorRef::Tensor(x) | TensorRef::Delta(x) => Some(x),
                TensorRef::Slot(_) => s.plan.slot_source(t),
            };
            match holder.and_then(|x| s.kinds.get(x)) {
                Some(TensorKind::Integer) => Precision::Exact,
                _ => Precision::Real,
            }
        })
        .collect();
    for (plan, precision) in s.plan.plans_mut().zip(precisions) {
        for graph in [&mut plan.graph, &mut plan.fused] {
            graph.nodes.iter_mut().for_each(|n| n.precision = precision);
        }
    }
    Ok(())
}

/// Numbers the plans ([`EquationPlan::id`]) in [`ProgramPlan::plans_mut`] order. Afterwards:
/// no two plans share a number.
fn number_plans(s: &mut Planning) -> Result<(), Vec<PlanError>> {
    for (k, plan) in s.plan.plans_mut().enumerate() {
        plan.id = k;
    }
    Ok(())
}

/// Runs `passes` on a program's plan, verifying every graph after each.
pub fn run_program(s: &mut Planning, passes: &[ProgramPass]) -> Result<(), Vec<PlanError>> {
    for pass in passes {
        (pass.run)(s)?;
        if VERIFY {
            for plan in s.plan.plans_mut() {
                for graph in [&plan.graph, &plan.fused] {
                    verified(pass.name, graph).map_err(|b| vec![b.at(plan.span)])?;
                }
            }
        }
    }
    Ok(())
}

/// Runs `passes` on a graph being fused, verifying it after each; the graph and its root.
pub fn run_fusion(mut f: Fusing, passes: &[FusionPass]) -> Result<(Graph, NodeId), Broken> {
    for pass in passes {
        (pass.run)(&mut f);
        verified(pass.name, &f.graph)?;
    }
    Ok((f.graph, f.root))
}

impl ProgramPlan {
    /// Every plan: equations, rules, semi-naive variants, layer rows and loop steps.
    pub fn plans_mut(&mut self) -> impl Iterator<Item = &mut EquationPlan> {
        self.equations
            .iter_mut()
            .chain(self.rules.iter_mut())
            .chain(self.deltas.iter_mut().flatten().map(|(_, p)| p))
            .chain(
                self.layers
                    .strata
                    .iter_mut()
                    .flat_map(|l| l.equations.iter_mut().map(|re| &mut re.plan)),
            )
            .chain(
                self.loops
                    .iter_mut()
                    .flat_map(|l| l.equations.iter_mut().map(|st| &mut st.plan)),
            )
    }
}

#[cfg(test)]
mod tests;
