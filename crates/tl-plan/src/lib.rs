//! Plans the evaluation of a checked program: a pass manager over the plan. [`passes`] lists
//! the passes in the order they run (lowering with its contraction order and placement,
//! storage, rules, semi-naive variants, layer rows, loop steps, fusion, splicing), each with
//! what it guarantees to the passes after it; [`Graph::verify`] checks every graph after every
//! pass in debug builds.
#![deny(missing_docs)]
// Library code reports failures as errors; only tests may unwrap.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod closure;
pub mod demand;
pub mod error;
pub mod fuse;
pub mod graph;
pub mod inline;
pub mod layers;
pub mod loops;
pub mod lower;
pub mod order;
pub mod passes;
pub mod rules;
pub mod show;
pub mod tensor_ref;
pub mod terms;

pub use error::PlanError;
pub use graph::{Graph, Node, NodeId, Op, Precision};
pub use tensor_ref::TensorRef;

use lower::Lowerer;
use tl_check::{CheckedProgram, Equation, Index, Rule, TensorId, TensorKind, VarId, VarInfo};
use tl_core::ReduceOp;
use tl_syntax::ast::Projection;
use tl_syntax::Span;

/// How a result reaches its left-hand side.
#[derive(Clone, Debug, PartialEq)]
pub enum Placement {
    /// The root's labels are the left-hand variables in axis order.
    Direct,
    /// The root is over the left-hand side's variables; each point is written to the cell its
    /// indices compute (constants, arithmetic, repeated variables), combined by `op`; points
    /// outside the tensor are dropped.
    Scatter {
        /// One index per left-hand axis.
        indices: Vec<Index>,
        /// How points landing on one cell combine.
        op: ReduceOp,
    },
}

/// The plan of one equation or rule: a graph whose root is the value written to `target`.
#[derive(Clone, Debug)]
pub struct EquationPlan {
    /// This plan's number, distinct among the plans of one [`ProgramPlan`] (given by the
    /// last pass, `number`): what caches of per-plan values are keyed by.
    pub id: usize,
    /// The tensor written.
    pub target: TensorId,
    /// The nodes.
    pub graph: Graph,
    /// The node holding the result.
    pub root: NodeId,
    /// The graph with elementwise work fused (see [`fuse`]), for evaluations that keep no
    /// intermediate values for a backward pass; empty until the fuse pass ([`passes`]).
    pub fused: Graph,
    /// The node of `fused` holding the result.
    pub fused_root: NodeId,
    /// How the root reaches the target.
    pub placement: Placement,
    /// Whether this plan is spliced into its readers' fused plans ([`inline`]): then it runs
    /// only while a backward pass is recorded.
    pub inlined: bool,
    /// How this result combines with the target's other equations.
    pub combine: ReduceOp,
    /// The equation's variables.
    pub vars: Vec<VarInfo>,
    /// The statement.
    pub span: Span,
}

/// How a relation is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// A dense 0/1 (or real) tensor.
    Dense,
    /// Sorted, deduplicated tuples.
    Sparse,
}

/// Relations with at most this many cells are always dense.
pub const DENSE_CELLS: u128 = 1 << 22;

/// On a GPU, relations with at most this many cells are dense (256 MiB as Booleans): their
/// joins are matrix products on the tensor cores, far faster there than tuple joins.
pub const ACCELERATOR_DENSE_CELLS: u128 = 1 << 28;

/// Choices the planner makes for the device a program runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    /// Relations with at most this many cells may be stored dense; larger ones defined only
    /// by facts and rules are sorted tuples, evaluated by the tuple engine.
    pub dense_cells: u128,
    /// Whether relations defined by rules that no real equation reads are still dense when
    /// they fit (Boolean matrix products); otherwise they are left to the tuple engine, or on
    /// a GPU to its path engine, which beat dense products there too.
    pub dense_rules: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            dense_cells: DENSE_CELLS,
            dense_rules: false,
        }
    }
}

impl PlanOptions {
    /// The options for a backend: larger dense relations on an accelerator (for the
    /// relations real equations read).
    pub fn for_accelerator(accelerator: bool) -> Self {
        PlanOptions {
            dense_cells: if accelerator {
                ACCELERATOR_DENSE_CELLS
            } else {
                DENSE_CELLS
            },
            dense_rules: false,
        }
    }
}

/// The plan of a whole program.
#[derive(Clone, Debug)]
pub struct ProgramPlan {
    /// One plan per equation (same order as the checked program's).
    pub equations: Vec<EquationPlan>,
    /// One dense plan per rule.
    pub rules: Vec<EquationPlan>,
    /// For each rule, one plan per body atom over a tensor of the rule's recursive stratum,
    /// reading that atom from the delta ([`TensorRef::Delta`]).
    pub deltas: Vec<Vec<(usize, EquationPlan)>>,
    /// Storage of each tensor.
    pub storage: Vec<Storage>,
    /// The options it was planned with (mini-batch re-plans reuse them).
    pub options: PlanOptions,
    /// Recursive strata that run one layer row at a time (see [`layers`]).
    pub layers: layers::Layers,
    /// Loops over virtual indices, run one step at a time (see [`loops`]).
    pub loops: Vec<loops::LoopPlan>,
}

impl ProgramPlan {
    /// The loop that stratum `s` is, if it is one.
    pub fn loop_of_stratum(&self, s: usize) -> Option<&loops::LoopPlan> {
        self.loops.iter().find(|l| l.stratum == s)
    }

    /// The program tensor a slot id ([`TensorRef::Slot`]) holds values of (a row of it, or
    /// it at another step), so that the slot is typed like it; `None` for a loop's step
    /// number and for ids that are not slots of this plan.
    pub fn slot_source(&self, id: TensorId) -> Option<TensorId> {
        let layered = self
            .layers
            .strata
            .iter()
            .flat_map(|l| &l.equations)
            .flat_map(|e| &e.slots)
            .find(|s| s.id == id)
            .map(|s| s.source);
        layered.or_else(|| {
            let slot = self
                .loops
                .iter()
                .flat_map(|l| &l.equations)
                .flat_map(|e| &e.slots)
                .find(|s| s.id == id)?;
            match slot.source {
                loops::SlotSource::State { tensor, .. } | loops::SlotSource::Row { tensor, .. } => {
                    Some(tensor)
                }
                loops::SlotSource::Step => None,
            }
        })
    }
}

fn projection_op(p: Projection) -> ReduceOp {
    match p {
        Projection::Assign | Projection::Add => ReduceOp::Sum,
        Projection::Max => ReduceOp::Max,
        Projection::Min => ReduceOp::Min,
        Projection::Avg => ReduceOp::Mean,
    }
}

/// Lays a root onto left-hand `indices`: a direct map when they are distinct variables,
/// otherwise a scatter over the variables they use.
fn place(lw: &mut Lowerer, root: NodeId, indices: &[Index], op: ReduceOp) -> (NodeId, Placement) {
    let direct: Option<Vec<VarId>> = indices
        .iter()
        .map(|ix| {
            if let Index::Var(v) = ix {
                Some(*v)
            } else {
                None
            }
        })
        .collect();
    let distinct = direct.as_ref().is_some_and(|vs| {
        let mut s = vs.clone();
        s.sort_unstable();
        s.dedup();
        s.len() == vs.len()
    });
    let (labels, placement) = match direct {
        Some(vs) if distinct => (vs, Placement::Direct),
        _ => {
            let mut vs = Vec::new();
            for ix in indices {
                lower::index_vars(ix, &mut vs);
            }
            (
                vs,
                Placement::Scatter {
                    indices: indices.to_vec(),
                    op: if op == ReduceOp::Mean {
                        ReduceOp::Mean
                    } else {
                        op
                    },
                },
            )
        }
    };
    let node = if lw.graph.nodes[root].labels == labels {
        root
    } else {
        lw.map_onto(root, labels)
    };
    (node, placement)
}

/// Lowers and places one equation (the `lower` pass of [`passes`]); its fused graph is left
/// empty for the fuse pass.
pub fn plan_equation(
    p: &CheckedProgram,
    shapes: &[Vec<usize>],
    eq: &Equation,
) -> Result<EquationPlan, PlanError> {
    let mut kept = Vec::new();
    for ix in &eq.lhs_indices {
        lower::index_vars(ix, &mut kept);
    }
    let sites = terms::summation_sites(&eq.rhs, &kept);
    let op = projection_op(eq.projection);
    let mut lw = Lowerer::new(shapes, &eq.vars, sites, op, eq.norm_var);
    lw.head = kept;
    let root = lw.sum(&eq.rhs, true)?;
    passes::verified("lower", &lw.graph).map_err(|b| b.at(eq.span))?;
    if let Some((cells, labels)) = &lw.largest {
        if *cells > order::MAX_INTERMEDIATE_CELLS {
            return Err(PlanError::TooLarge {
                tensor: p
                    .tensors
                    .get(eq.lhs)
                    .map_or_else(String::new, |t| t.name.clone()),
                cells: *cells,
                limit: order::MAX_INTERMEDIATE_CELLS,
                indices: labels.iter().map(|&v| eq.vars[v].name.clone()).collect(),
                span: eq.span,
            });
        }
    }
    let scatter_op = if op == ReduceOp::Mean {
        ReduceOp::Mean
    } else {
        op
    };
    let (root, placement) = place(&mut lw, root, &eq.lhs_indices, scatter_op);
    passes::verified("place", &lw.graph).map_err(|b| b.at(eq.span))?;
    let combine = if op == ReduceOp::Mean {
        ReduceOp::Sum
    } else {
        op
    };
    Ok(EquationPlan {
        id: 0,
        target: eq.lhs,
        graph: lw.graph,
        root,
        fused: Graph::default(),
        fused_root: 0,
        placement,
        inlined: false,
        combine,
        vars: eq.vars.clone(),
        span: eq.span,
    })
}

/// Lowers and places one rule (dense), optionally reading body atom `delta.0` from tensor
/// `delta.1`; its fused graph is left empty for the fuse pass.
pub fn plan_rule(
    kinds: &[TensorKind],
    shapes: &[Vec<usize>],
    rule: &Rule,
    delta: Option<(usize, usize)>,
) -> Result<EquationPlan, PlanError> {
    let mut lw = Lowerer::new(shapes, &rule.vars, Default::default(), ReduceOp::Sum, None);
    for ix in &rules::head_indices(rule) {
        lower::index_vars(ix, &mut lw.head);
    }
    let body = lw.rule_body(rule, kinds, delta);
    passes::verified("lower", &lw.graph).map_err(|b| b.at(rule.span))?;
    let (root, placement) = place(&mut lw, body, &rules::head_indices(rule), ReduceOp::Max);
    passes::verified("place", &lw.graph).map_err(|b| b.at(rule.span))?;
    Ok(EquationPlan {
        id: 0,
        target: rule.head,
        graph: lw.graph,
        root,
        fused: Graph::default(),
        fused_root: 0,
        placement,
        inlined: false,
        combine: ReduceOp::Max,
        vars: rule.vars.clone(),
        span: rule.span,
    })
}

/// Plans the whole program with the default (CPU) options.
pub fn plan(p: &CheckedProgram) -> Result<ProgramPlan, Vec<PlanError>> {
    plan_with(p, PlanOptions::default())
}

/// Plans the whole program: the passes of [`passes::PROGRAM`] in order.
pub fn plan_with(p: &CheckedProgram, options: PlanOptions) -> Result<ProgramPlan, Vec<PlanError>> {
    let n = p.tensors.len();
    let mut planning = passes::Planning {
        program: p,
        shapes: (0..n).map(|t| p.shape(t)).collect(),
        kinds: p.tensors.iter().map(|t| t.kind).collect(),
        plan: ProgramPlan {
            equations: Vec::new(),
            rules: Vec::new(),
            deltas: Vec::new(),
            storage: Vec::new(),
            options,
            layers: layers::Layers::default(),
            loops: Vec::new(),
        },
    };
    passes::run_program(&mut planning, passes::PROGRAM)?;
    Ok(planning.plan)
}

/// Dense or sparse, per tensor. A relation defined only by facts and rules is sorted tuples,
/// evaluated by the tuple engine, when it has more than `dense_cells` cells, or, on the CPU
/// (`dense_readers` false), whenever no real equation reads it: there the tuple engine's
/// joins, bitsets and closure beat Boolean matrix products at every size. Every relation a rule
/// derives within the stratum of a sparse one is sparse too.
pub(crate) fn pick_storage(
    p: &CheckedProgram,
    shapes: &[Vec<usize>],
    dense_cells: u128,
    dense_readers: bool,
) -> Vec<Storage> {
    let mut read_by_real = vec![false; p.tensors.len()];
    for eq in &p.equations {
        if p.tensors[eq.lhs].kind == TensorKind::Integer {
            continue;
        }
        let mut reads = Vec::new();
        tl_check::strata::collect_reads(&eq.rhs, &mut reads);
        for (t, _) in reads {
            read_by_real[t] = true;
        }
    }
    let mut storage: Vec<Storage> = p
        .tensors
        .iter()
        .zip(shapes)
        .enumerate()
        .map(|(id, (t, s))| {
            let cells: u128 = s.iter().map(|&e| e as u128).product();
            let rules_only = t.kind == TensorKind::Relation && t.equations.is_empty();
            let tuples_pay = !dense_readers && !read_by_real[id];
            if rules_only && (cells > dense_cells || tuples_pay) {
                Storage::Sparse
            } else {
                Storage::Dense
            }
        })
        .collect();
    for stratum in &p.strata {
        let any_sparse = stratum
            .tensors
            .iter()
            .any(|&t| storage[t] == Storage::Sparse);
        if any_sparse {
            for &t in &stratum.tensors {
                if p.tensors[t].equations.is_empty() {
                    storage[t] = Storage::Sparse;
                }
            }
        }
    }
    storage
}

/// The semi-naive variants of a rule whose body reads tensors of its own recursive stratum.
pub(crate) fn semi_naive(
    p: &CheckedProgram,
    kinds: &[TensorKind],
    shapes: &[Vec<usize>],
    rule: &Rule,
) -> Result<Vec<(usize, EquationPlan)>, PlanError> {
    let Some(stratum) = p
        .strata
        .iter()
        .find(|s| s.recursive && s.tensors.contains(&rule.head))
    else {
        return Ok(Vec::new());
    };
    let n = p.tensors.len();
    let mut delta_shapes = shapes.to_vec();
    delta_shapes.extend_from_slice(shapes);
    rule.body
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.negated && stratum.tensors.contains(&a.tensor))
        .map(|(k, a)| {
            let plan = plan_rule(
                kinds,
                &delta_shapes,
                rule,
                Some((k, TensorRef::Delta(a.tensor).id(n))),
            )?;
            Ok((k, plan))
        })
        .collect()
}
