//! Fusion: fewer, larger kernels for evaluation.
//!
//! Memory-bound nodes are merged into their consumer so that each value crosses memory once:
//! - a map reading another map (over the same indices or fewer, used nowhere else) absorbs
//!   it, so a chain of elementwise nodes becomes one generated kernel; constants are written
//!   into the expression (kernels take them as arguments), and a map of constants alone is
//!   computed at plan time;
//! - a map reading a contraction (over the same labels, used nowhere else) becomes the
//!   contraction's epilogue ([`Op::ContractMap`]), which a backend runs inside its GEMM where it
//!   can (bias, residual and ReLU on cuBLASLt) and right after it otherwise;
//! - a reduction, softmax or layer norm of a single-use map computes the map's values as it
//!   reads them ([`Op::MapReduce`], [`Op::MapNormalize`]), so they never reach memory;
//! - a constant factor on an operand of a product moves into the product's epilogue
//!   (`(Q / sqrt(32)) K` scales the scores, not `Q`; on cuBLASLt it is the GEMM's alpha).
//! - a map reading single-use reductions of its inputs along one of its axes (the mean and
//!   the variance of a layer norm written by hand) becomes one [`Op::MapRows`], which a
//!   backend may compute a row at a time in one pass;
//! - a product with V of a softmax of a function of another product (`softmax(Q·K/√d + M)·V`,
//!   each single-use) becomes one [`Op::Attention`], which a backend may compute without
//!   storing the scores.
//!
//! Each rule above is a pass of its own, a function of a [`Fusing`] graph; [`crate::passes::FUSION`]
//! lists them in the order they run. Fusion is applied to graphs that are evaluated without a
//! backward pass; autograd works on the unfused graph, whose every intermediate value it needs.

use crate::graph::{Graph, NodeId, Op};
use crate::passes::{self, Broken};
pub(crate) use attention::attention;
pub(crate) use rows::rows;
use tl_check::VarId;
use tl_core::{MapExpr, NormFn, ReduceOp};

/// The most nodes a map's expression may have to be absorbed into a reader that reads it
/// twice.
const SMALL_MAP: usize = 8;

/// A graph part-way through fusion, with what its passes share.
#[derive(Clone, Debug)]
pub struct Fusing {
    /// The graph; the passes before the first [`prune`] rewrite its nodes in place, leaving
    /// the nodes they absorb where they are, read by nothing.
    pub graph: Graph,
    /// The node holding the result.
    pub root: NodeId,
    /// How many times each node is read, the root's use counted as the result. Counted on the
    /// lowered graph and kept through the in-place passes (a node they absorb still counts as
    /// a reader of its inputs), recounted by [`prune`].
    pub uses: Vec<usize>,
    /// Maps taken into a normalisation ([`normalisations`]), which [`epilogues`] leaves alone.
    pub absorbed: Vec<bool>,
}

impl Fusing {
    /// A graph about to be fused.
    pub fn new(graph: Graph, root: NodeId) -> Self {
        let uses = use_counts(&graph, root);
        let absorbed = vec![false; graph.nodes.len()];
        Fusing {
            graph,
            root,
            uses,
            absorbed,
        }
    }
}

/// The fused form of `graph` and the id its `root` has there: the passes of
/// [`passes::FUSION`] in order, each checked by [`Graph::verify`] in debug builds.
pub fn fuse(graph: &Graph, root: NodeId) -> Result<(Graph, NodeId), Broken> {
    passes::run_fusion(Fusing::new(graph.clone(), root), passes::FUSION)
}

/// Elementwise chains: each map absorbs the single-use maps it reads, so a chain becomes one
/// kernel, and writes the constants it reads into its expression; a map of constants alone
/// becomes a constant.
pub fn chains(f: &mut Fusing) {
    let (g, uses) = (&mut f.graph, &f.uses);
    for id in 0..g.nodes.len() {
        let Op::Map { expr, inputs } = &g.nodes[id].op else {
            continue;
        };
        let (mut expr, mut inputs) = fold_constants(g, expr, inputs);
        // Absorb single-use maps, until none is left. An absorbed map over fewer indices (a
        // per-row scale, say) is recomputed for every element that reads it: a few arithmetic
        // operations instead of a round trip through memory. A small map read twice (the `Z`
        // of `Z^2`) is absorbed too: its two copies cost less than storing it, and a compiler
        // computes them once.
        while let Some((pos, inner, inner_inputs)) = (0..inputs.len()).find_map(|k| {
            let i = inputs[k];
            match &g.nodes[i].op {
                Op::Map {
                    expr: e,
                    inputs: ins,
                } if uses[i] == 1
                    && (expr.reads(k) == 1 || (expr.reads(k) == 2 && e.size() <= SMALL_MAP))
                    && g.nodes[i]
                        .labels
                        .iter()
                        .all(|l| g.nodes[id].labels.contains(l)) =>
                {
                    Some((k, e.clone(), ins.clone()))
                }
                _ => None,
            }
        }) {
            let base = inputs.len();
            let shifted = inner.substitute(&|k| MapExpr::Input(base + k));
            expr = expr.substitute(&|k| {
                if k == pos {
                    shifted.clone()
                } else {
                    MapExpr::Input(k)
                }
            });
            inputs.extend(inner_inputs);
            (expr, inputs) = compact(&expr, &inputs);
            (expr, inputs) = fold_constants(g, &expr, &inputs);
        }
        g.nodes[id].op = if inputs.is_empty() {
            // Constants only (`1 / sqrt(32)`): computed here, once.
            Op::Const(expr.eval(&[]))
        } else {
            Op::Map { expr, inputs }
        };
    }
}

/// Normalisations of maps: a softmax or layer norm of a single-use map computes the map's
/// values as it reads its rows (the scores' scale and mask inside the softmax). This comes
/// before [`epilogues`], so the product under such a map is left plain and the map runs where
/// it is free.
pub fn normalisations(f: &mut Fusing) {
    let g = &mut f.graph;
    f.absorbed = vec![false; g.nodes.len()];
    for id in 0..g.nodes.len() {
        let Op::Normalize { input, axis, func } = g.nodes[id].op else {
            continue;
        };
        let Op::Map { expr, inputs } = &g.nodes[input].op else {
            continue;
        };
        if f.uses[input] != 1 || g.nodes[input].labels != g.nodes[id].labels {
            continue;
        }
        g.nodes[id].op = Op::MapNormalize {
            expr: expr.clone(),
            inputs: inputs.clone(),
            axis,
            func,
        };
        f.absorbed[input] = true;
    }
}

/// Contraction epilogues: each map (not taken into a normalisation) takes in a single-use
/// contraction it reads once, as the epilogue's product.
pub fn epilogues(f: &mut Fusing) {
    let (g, uses, root) = (&mut f.graph, &f.uses, f.root);
    for id in (0..g.nodes.len()).filter(|&id| !f.absorbed.get(id).copied().unwrap_or(false)) {
        let Op::Map { expr, inputs } = &g.nodes[id].op else {
            continue;
        };
        let (expr, inputs) = (expr.clone(), inputs.clone());
        // Every reader of a node other than the root finds its axes by label, so such a map
        // may take its product's axis order: the epilogue then writes what the GEMM produces
        // instead of a permutation of it.
        let reorderable = |i: NodeId| {
            let (mut x, mut y) = (g.nodes[i].labels.clone(), g.nodes[id].labels.clone());
            x.sort_unstable();
            y.sort_unstable();
            id != root && x == y
        };
        let product = (0..inputs.len()).find_map(|k| {
            let i = inputs[k];
            match g.nodes[i].op {
                Op::Contract { a, b }
                    if uses[i] == 1
                        && expr.reads(k) == 1
                        && (g.nodes[i].labels == g.nodes[id].labels || reorderable(i)) =>
                {
                    Some((k, a, b, i))
                }
                _ => None,
            }
        });
        if let Some((_, _, _, i)) = product {
            g.nodes[id].labels = g.nodes[i].labels.clone();
            g.nodes[id].shape = g.nodes[i].shape.clone();
        }
        g.nodes[id].op = match product {
            Some((pos, a, b, _)) => {
                let (expr, extra) = product_first(&expr, &inputs, pos, &MapExpr::Input(0));
                Op::ContractMap {
                    a,
                    b,
                    expr,
                    inputs: extra,
                }
            }
            None => Op::Map { expr, inputs },
        };
    }
}

/// Reductions of maps: a reduction of a single-use map computes the map's values as it reads
/// them, so they never reach memory: one kernel, not two.
pub fn map_reductions(f: &mut Fusing) {
    let g = &mut f.graph;
    for id in 0..g.nodes.len() {
        let Op::Reduce { input, op } = g.nodes[id].op else {
            continue;
        };
        let Op::Map { expr, inputs } = &g.nodes[input].op else {
            continue;
        };
        if f.uses[input] != 1 {
            continue;
        }
        let kept = g.nodes[id].labels.clone();
        let mut over = kept.clone();
        let mut over_shape = g.nodes[id].shape.clone();
        for (l, &n) in g.nodes[input].labels.iter().zip(&g.nodes[input].shape) {
            if !kept.contains(l) {
                over.push(*l);
                over_shape.push(n);
            }
        }
        g.nodes[id].op = Op::MapReduce {
            expr: expr.clone(),
            inputs: inputs.clone(),
            over,
            over_shape,
            op,
        };
    }
}

/// Constant factors: a constant factor on a product's operand moves into its epilogue,
/// (c·A)·B = c·(A·B), which saves the pass that scaled the operand.
pub fn constant_factors(f: &mut Fusing) {
    let (g, uses) = (&mut f.graph, &f.uses);
    for id in 0..g.nodes.len() {
        let (a, b, expr, extra) = match &g.nodes[id].op {
            Op::Contract { a, b } => (*a, *b, MapExpr::Input(0), Vec::new()),
            Op::ContractMap { a, b, expr, inputs } => (*a, *b, expr.clone(), inputs.clone()),
            _ => continue,
        };
        let scaled = |x: NodeId| match &g.nodes[x].op {
            Op::Map { expr, inputs } if uses[x] == 1 && inputs.len() == 1 => {
                constant_factor(expr).map(|c| (inputs[0], c))
            }
            _ => None,
        };
        let (a, b, c) = match (scaled(a), scaled(b)) {
            (Some((a, ca)), Some((b, cb))) => (a, b, ca * cb),
            (Some((a, c)), None) => (a, b, c),
            (None, Some((b, c))) => (a, b, c),
            (None, None) => continue,
        };
        let product = MapExpr::Binary(
            tl_core::BinaryFn::Mul,
            Box::new(MapExpr::Input(0)),
            Box::new(MapExpr::Const(c)),
        );
        let expr = expr.substitute(&|k| {
            if k == 0 {
                product.clone()
            } else {
                MapExpr::Input(k)
            }
        });
        g.nodes[id].op = Op::ContractMap {
            a,
            b,
            expr,
            inputs: extra,
        };
    }
}

/// `expr` over `inputs` with input `pos` (a product) replaced by `product` (an expression of
/// `Input(0)`, the product) and the other inputs numbered from 1 in order, with those inputs:
/// the form of an epilogue or of the scores' function of an attention node.
fn product_first(
    expr: &MapExpr,
    inputs: &[NodeId],
    pos: usize,
    product: &MapExpr,
) -> (MapExpr, Vec<NodeId>) {
    let others = inputs
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != pos)
        .map(|(_, &i)| i)
        .collect();
    let expr = expr.substitute(&|j| match j.cmp(&pos) {
        std::cmp::Ordering::Equal => product.clone(),
        std::cmp::Ordering::Less => MapExpr::Input(j + 1),
        std::cmp::Ordering::Greater => MapExpr::Input(j),
    });
    (expr, others)
}

/// `c` when `expr` is `Input(0)` times (or divided by) the constant `c`.
fn constant_factor(expr: &MapExpr) -> Option<f64> {
    match split_factor(expr) {
        Some((MapExpr::Input(0), c)) => Some(c),
        _ => None,
    }
}

/// `(e, c)` when `expr` is `e` times (or divided by) the constant `c`.
fn split_factor(expr: &MapExpr) -> Option<(MapExpr, f64)> {
    use tl_core::BinaryFn::{Div, Mul};
    match expr {
        MapExpr::Binary(Mul, x, y) => match (&**x, &**y) {
            (e, MapExpr::Const(c)) | (MapExpr::Const(c), e) => Some((e.clone(), *c)),
            _ => None,
        },
        MapExpr::Binary(Div, x, k) => match &**k {
            MapExpr::Const(c) if *c != 0.0 => Some(((**x).clone(), 1.0 / c)),
            _ => None,
        },
        _ => None,
    }
}

/// Writes the constants a map reads into its expression (kernels take them as arguments, so
/// no constant needs a tensor or a launch of its own), dropping those inputs.
fn fold_constants(g: &Graph, expr: &MapExpr, inputs: &[NodeId]) -> (MapExpr, Vec<NodeId>) {
    let folded = expr.substitute(&|k| match g.nodes[inputs[k]].op {
        Op::Const(c) => MapExpr::Const(c),
        _ => MapExpr::Input(k),
    });
    compact(&folded, inputs)
}

/// How many times each node is read, counting the root's use as the result.
fn use_counts(g: &Graph, root: NodeId) -> Vec<usize> {
    let mut uses = vec![0usize; g.nodes.len()];
    for id in 0..g.nodes.len() {
        for i in g.inputs(id) {
            uses[i] += 1;
        }
    }
    if let Some(u) = uses.get_mut(root) {
        *u += 1;
    }
    uses
}

/// Drops inputs the expression no longer reads and merges repeated ones, renumbering.
fn compact(expr: &MapExpr, inputs: &[NodeId]) -> (MapExpr, Vec<NodeId>) {
    let mut kept: Vec<NodeId> = Vec::new();
    let mut at = vec![0usize; inputs.len()];
    for (k, &i) in inputs.iter().enumerate() {
        if !expr.uses(k) {
            continue;
        }
        at[k] = match kept.iter().position(|&x| x == i) {
            Some(p) => p,
            None => {
                kept.push(i);
                kept.len() - 1
            }
        };
    }
    (expr.substitute(&|k| MapExpr::Input(at[k])), kept)
}

/// Dead nodes: drops the nodes the root does not depend on (those earlier passes absorbed),
/// renumbering the rest in order, and recounts uses, which are then exact.
pub fn prune(f: &mut Fusing) {
    let (g, root) = pruned(&f.graph, f.root);
    *f = Fusing::new(g, root);
}

/// The nodes the root depends on, renumbered in order.
fn pruned(g: &Graph, root: NodeId) -> (Graph, NodeId) {
    let mut live = vec![false; g.nodes.len()];
    if root < live.len() {
        live[root] = true;
    }
    for id in (0..g.nodes.len()).rev() {
        if live[id] {
            for i in g.inputs(id) {
                live[i] = true;
            }
        }
    }
    let mut new_id = vec![0usize; g.nodes.len()];
    let mut out = Graph::default();
    for (id, node) in g.nodes.iter().enumerate() {
        if !live[id] {
            continue;
        }
        let op = node.op.renumbered(&|i| new_id[i]);
        new_id[id] = out.push(op, node.labels.clone(), node.shape.clone());
    }
    let root = new_id.get(root).copied().unwrap_or(0);
    (out, root)
}

mod attention;
mod rows;
#[cfg(test)]
mod tests;
