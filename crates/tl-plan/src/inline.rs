//! Splicing row plans into their readers. Within a layer recursion, a tensor that other
//! equations of the group read in the same row, and that nothing else in the program reads
//! (no other equation, rule, query, write or objective), need not be stored: its row plan is
//! spliced into its reader's, and fusion then sees both equations as one graph. That is how
//! `A = softmax(Q K / √d + M)` and `C = A V`, written as two equations, become one attention
//! node, and a layer norm written as four equations one row kernel ([`crate::fuse`]).
//!
//! A tensor read by one equation is spliced into it whatever it costs, since it is computed
//! once either way. One read by several is spliced into each only when it and all of them are
//! elementwise work and reductions (no products): recomputing it inside row kernels costs
//! arithmetic, where storing it costs a round trip through memory.
//!
//! Outside layer recursions the same holds for a tensor of a stratum of its own that one
//! equation of a later non-recursive stratum reads once and nothing else reads
//! ([`inline_equations`]): a top-level `A = softmax(…)` read only by `C = A V` is spliced
//! into `C`.
//!
//! Only the fused plans change. While a backward pass is recorded every equation still runs
//! on its own, unfused, since the gradient needs each intermediate value.

use crate::fuse::fuse;
use crate::graph::{Graph, NodeId, Op};
use crate::layers::{LayeredStratum, Layers, Row};
use crate::passes::verified;
use crate::{EquationPlan, Placement, PlanError};
use tl_check::{CheckedProgram, Command, Expr, TensorId, TensorKind, VarInfo};

/// Splices every row plan that qualifies into its reader's fused plan, marking it
/// [`crate::EquationPlan::inlined`], and fuses those readers again.
pub fn inline_rows(p: &CheckedProgram, ls: &mut LayeredStratum) -> Result<(), PlanError> {
    // The working (unfused) graph of each row equation, with what was spliced into it.
    let mut spliced: Vec<(Graph, NodeId)> = ls
        .equations
        .iter()
        .map(|re| (re.plan.graph.clone(), re.plan.root))
        .collect();
    let mut changed = vec![false; ls.equations.len()];
    for t in ls.order.clone() {
        let Some((producer, sites)) = splice_sites(p, ls, &spliced, t) else {
            continue;
        };
        for (reader, load) in sites {
            let producer_vars = ls.equations[producer].plan.vars.clone();
            let joined = splice(
                (&spliced[producer].0, spliced[producer].1),
                (&spliced[reader].0, spliced[reader].1),
                load,
                &producer_vars,
                &mut ls.equations[reader].plan.vars,
            );
            spliced[reader] = joined;
            let extra = ls.equations[producer].fused_slots.clone();
            let reader_eq = &mut ls.equations[reader];
            reader_eq.fused_slots.retain(|s| s.source != t);
            reader_eq.fused_slots.extend(extra);
            changed[reader] = true;
        }
        ls.equations[producer].plan.inlined = true;
    }
    for (k, re) in ls.equations.iter_mut().enumerate() {
        if changed[k] {
            let (graph, root) = &spliced[k];
            verified("splice rows", graph).map_err(|b| b.at(re.plan.span))?;
            let (fused, fused_root) = fuse(graph, *root).map_err(|b| b.at(re.plan.span))?;
            re.plan.fused = fused;
            re.plan.fused_root = fused_root;
        }
    }
    Ok(())
}

/// For tensor `t`: its row equation, and each reader's row equation with the node of its
/// graph that loads `t`, when `t` can be spliced into all of them.
fn splice_sites(
    p: &CheckedProgram,
    ls: &LayeredStratum,
    spliced: &[(Graph, NodeId)],
    t: TensorId,
) -> Option<(usize, Vec<(usize, NodeId)>)> {
    let defining: Vec<usize> = (0..ls.equations.len())
        .filter(|&k| ls.equations[k].target == t)
        .collect();
    let [producer] = defining[..] else {
        return None;
    };
    let every_row = |k: usize| {
        let re = &ls.equations[k];
        re.head == Row::Offset(0) && re.extent == ls.rows_of(t) && !re.plan.inlined
    };
    if !every_row(producer) || ls.equations[producer].plan.placement != Placement::Direct {
        return None;
    }
    // The reads of `t` among the group's row plans: each in the same row, at most one per
    // reader.
    let reads: Vec<(usize, usize)> = ls
        .equations
        .iter()
        .enumerate()
        .flat_map(|(k, re)| {
            re.slots
                .iter()
                .filter(|s| s.source == t)
                .map(move |s| (k, s.id))
        })
        .collect();
    if reads.is_empty() || read_elsewhere(p, ls, t) {
        return None;
    }
    let mut readers: Vec<usize> = reads.iter().map(|&(k, _)| k).collect();
    readers.dedup();
    let shared = reads.len() > 1;
    if readers.len() != reads.len()
        || (shared
            && !(cheap(&spliced[producer].0) && readers.iter().all(|&r| cheap(&spliced[r].0))))
    {
        return None;
    }
    let mut sites = Vec::with_capacity(reads.len());
    for (reader, slot) in reads {
        let row = ls.equations[reader]
            .slots
            .iter()
            .find(|s| s.id == slot)
            .map(|s| s.row);
        if reader == producer || !every_row(reader) || row != Some(Row::Offset(0)) {
            return None;
        }
        // The reader's graph reads the slot through exactly one plain load.
        let (graph, _) = &spliced[reader];
        let touching: Vec<NodeId> = (0..graph.nodes.len())
            .filter(|&i| match &graph.nodes[i].op {
                Op::Load { tensor } | Op::Gather { tensor, .. } => *tensor == slot,
                _ => false,
            })
            .collect();
        match touching[..] {
            [load] if loads_result(graph, load, &spliced[producer]) => sites.push((reader, load)),
            _ => return None,
        }
    }
    Some((producer, sites))
}

/// Whether node `load` of `graph` is a plain load with one label per axis of the producer's
/// result, which the splice renames the producer's result variables to.
fn loads_result(graph: &Graph, load: NodeId, (producer, root): &(Graph, NodeId)) -> bool {
    matches!(graph.nodes[load].op, Op::Load { .. })
        && graph.nodes[load].labels.len() == producer.nodes[*root].labels.len()
}

/// Whether a graph is elementwise work and reductions only (no products, gathers or
/// normalisations), cheap enough to recompute inside the row kernels of several readers.
fn cheap(g: &Graph) -> bool {
    g.nodes.iter().all(|n| {
        matches!(
            n.op,
            Op::Load { .. } | Op::Const(_) | Op::Map { .. } | Op::Reduce { .. }
        )
    })
}

/// Whether anything outside the group's row plans reads `t`: an equation of another tensor,
/// a rule, a query, a write, or a training objective.
fn read_elsewhere(p: &CheckedProgram, ls: &LayeredStratum, t: TensorId) -> bool {
    let group: Vec<TensorId> = ls.order.clone();
    let by_equation = p
        .equations
        .iter()
        .any(|eq| !group.contains(&eq.lhs) && reads(&eq.rhs, t));
    by_equation || read_by_command_or_rule(p, t)
}

/// Whether a rule, a query, a write or a training objective reads `t`.
fn read_by_command_or_rule(p: &CheckedProgram, t: TensorId) -> bool {
    let by_rule = p.rules.iter().any(|r| r.body.iter().any(|a| a.tensor == t));
    let by_command = p.commands.iter().any(|c| match c {
        Command::Query { tensor, .. } => *tensor == t,
        Command::Write { tensors, .. } => tensors.contains(&t),
        Command::Minimize(spec) => spec.loss == t,
    });
    by_rule || by_command
}

/// Whether an expression reads tensor `t`.
fn reads(e: &Expr, t: TensorId) -> bool {
    let mut found = Vec::new();
    tl_check::strata::collect_reads(e, &mut found);
    found.iter().any(|&(u, _)| u == t)
}

/// The reader's graph with node `load` replaced by the producer's graph: the producer's
/// nodes first, its result variables renamed to the labels of `load` and its other variables
/// numbered after the reader's (whose variable list grows by the producer's).
fn splice(
    (inner, inner_root): (&Graph, NodeId),
    (outer, outer_root): (&Graph, NodeId),
    load: NodeId,
    producer_vars: &[VarInfo],
    reader_vars: &mut Vec<VarInfo>,
) -> (Graph, NodeId) {
    let base = reader_vars.len();
    let produced = inner.nodes[inner_root].labels.clone();
    let wanted = outer.nodes[load].labels.clone();
    let var = |v: usize| match produced.iter().position(|&x| x == v) {
        Some(a) => wanted[a],
        None => base + v,
    };
    let mut g = Graph::default();
    for n in &inner.nodes {
        g.push(
            n.op.relabelled(&var),
            n.labels.iter().map(|&v| var(v)).collect(),
            n.shape.clone(),
        );
    }
    let shift = inner.nodes.len();
    let id = |i: NodeId| if i == load { inner_root } else { i + shift };
    for n in &outer.nodes {
        g.push(n.op.renumbered(&id), n.labels.clone(), n.shape.clone());
    }
    reader_vars.extend_from_slice(producer_vars);
    (g, id(outer_root))
}

/// Splicing stops once a reader's graph would pass this many nodes: a long chain of
/// equations (`X2 = X1 + 1`, `X3 = X2 + 1`, …) would otherwise become one ever larger
/// expression, costing time and memory quadratic in its length to plan and a kernel too
/// large to compile; past the cap it is evaluated in pieces of about this size.
const SPLICE_NODES_MAX: usize = 64;

/// Splices top-level equations (outside layer recursions) into their one reader: a tensor of
/// a stratum of its own, defined by one equation, read by one equation of another
/// non-recursive stratum outside any layer recursion (once, through a plain load) and by
/// nothing else, becomes part of that equation's fused plan, fused again.
pub fn inline_equations(
    p: &CheckedProgram,
    plans: &mut [EquationPlan],
    layers: &Layers,
) -> Result<(), PlanError> {
    let mut spliced: Vec<(Graph, NodeId)> =
        plans.iter().map(|e| (e.graph.clone(), e.root)).collect();
    let mut changed = vec![false; plans.len()];
    // Indexes made once (programs may have 10^5 equations): each tensor's stratum, the
    // equations that read it, and whether a rule or a command reads it.
    let mut stratum_of = vec![None; p.tensors.len()];
    for (k, s) in p.strata.iter().enumerate() {
        for &t in &s.tensors {
            if let Some(slot) = stratum_of.get_mut(t) {
                *slot = Some(k);
            }
        }
    }
    let mut readers_of: Vec<Vec<usize>> = vec![Vec::new(); p.tensors.len()];
    let mut found = Vec::new();
    for (e, eq) in p.equations.iter().enumerate() {
        found.clear();
        tl_check::strata::collect_reads(&eq.rhs, &mut found);
        for &(t, _) in &found {
            if let Some(list) = readers_of.get_mut(t) {
                if list.last() != Some(&e) {
                    list.push(e);
                }
            }
        }
    }
    let mut outside = vec![false; p.tensors.len()];
    for t in p.rules.iter().flat_map(|r| r.body.iter().map(|a| a.tensor)) {
        outside[t] = true;
    }
    // Step equations read tensors every step of their loop, and their loops' tensors are
    // computed only there.
    for l in &p.loops {
        for s in &l.equations {
            found.clear();
            tl_check::strata::collect_reads(&s.equation.rhs, &mut found);
            found.iter().for_each(|&(t, _)| outside[t] = true);
        }
        l.tensors.iter().for_each(|x| outside[x.tensor] = true);
    }
    for c in &p.commands {
        match c {
            Command::Query { tensor, .. } => outside[*tensor] = true,
            Command::Write { tensors, .. } => tensors.iter().for_each(|&t| outside[t] = true),
            Command::Minimize(spec) => outside[spec.loss] = true,
        }
    }
    let plain = |t: TensorId| {
        stratum_of[t].is_some_and(|s| !p.strata[s].recursive && layers.stratum(s).is_none())
            && p.loop_of(t).is_none()
    };
    for stratum in &p.strata {
        let [t] = stratum.tensors[..] else { continue };
        let decl = &p.tensors[t];
        let [producer] = decl.equations[..] else {
            continue;
        };
        let defined_once = decl.kind == TensorKind::Real
            && decl.rules.is_empty()
            && decl.facts.is_empty()
            && plain(t)
            && plans[producer].placement == Placement::Direct;
        if !defined_once || outside[t] {
            continue;
        }
        let [reader] = readers_of[t][..] else {
            continue;
        };
        if reader == producer || !plain(p.equations[reader].lhs) {
            continue;
        }
        let (graph, root) = &spliced[reader];
        let touching: Vec<NodeId> = (0..graph.nodes.len())
            .filter(|&i| match &graph.nodes[i].op {
                Op::Load { tensor } | Op::Gather { tensor, .. } => *tensor == t,
                _ => false,
            })
            .collect();
        let [load] = touching[..] else { continue };
        if !loads_result(graph, load, &spliced[producer]) {
            continue;
        }
        let (inner, inner_root) = (&spliced[producer].0, spliced[producer].1);
        if inner.nodes.len() + graph.nodes.len() > SPLICE_NODES_MAX {
            continue;
        }
        let producer_vars = plans[producer].vars.clone();
        let joined = splice(
            (inner, inner_root),
            (graph, *root),
            load,
            &producer_vars,
            &mut plans[reader].vars,
        );
        spliced[reader] = joined;
        plans[producer].inlined = true;
        changed[reader] = true;
    }
    for (k, plan) in plans.iter_mut().enumerate() {
        // A plan spliced into its reader runs only there (or unfused, while training).
        if changed[k] && !plan.inlined {
            let (graph, root) = &spliced[k];
            verified("splice equations", graph).map_err(|b| b.at(plan.span))?;
            let (fused, fused_root) = fuse(graph, *root).map_err(|b| b.at(plan.span))?;
            plan.fused = fused;
            plan.fused_root = fused_root;
        }
    }
    Ok(())
}
