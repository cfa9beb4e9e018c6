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
//! The pass is applied to graphs that are evaluated without a backward pass; autograd works on
//! the unfused graph, whose every intermediate value it needs.

use crate::graph::{Graph, NodeId, Op};
use tl_check::VarId;
use tl_core::{MapExpr, NormFn, ReduceOp};

/// The most nodes a map's expression may have to be absorbed into a reader that reads it
/// twice.
const SMALL_MAP: usize = 8;

/// The fused form of `graph` and the id its `root` has there.
pub fn fuse(graph: &Graph, root: NodeId) -> (Graph, NodeId) {
    let mut g = graph.clone();
    let uses = use_counts(&g, root);
    // First each map absorbs the single-use maps it reads once (a chain becomes one kernel).
    for id in 0..g.nodes.len() {
        let Op::Map { expr, inputs } = &g.nodes[id].op else {
            continue;
        };
        let (mut expr, mut inputs) = fold_constants(&g, expr, inputs);
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
            (expr, inputs) = fold_constants(&g, &expr, &inputs);
        }
        g.nodes[id].op = if inputs.is_empty() {
            // Constants only (`1 / sqrt(32)`): computed here, once.
            Op::Const(expr.eval(&[]))
        } else {
            Op::Map { expr, inputs }
        };
    }
    // Maps taken into a normalisation, which the epilogue pass must leave alone.
    let mut absorbed = vec![false; g.nodes.len()];
    // A softmax or layer norm of a single-use map computes the map's values as it reads its
    // rows (the scores' scale and mask inside the softmax); this comes before epilogues, so
    // the product under such a map is left plain and the map runs where it is free.
    for id in 0..g.nodes.len() {
        let Op::Normalize { input, axis, func } = g.nodes[id].op else {
            continue;
        };
        let Op::Map { expr, inputs } = &g.nodes[input].op else {
            continue;
        };
        if uses[input] != 1 || g.nodes[input].labels != g.nodes[id].labels {
            continue;
        }
        g.nodes[id].op = Op::MapNormalize {
            expr: expr.clone(),
            inputs: inputs.clone(),
            axis,
            func,
        };
        absorbed[input] = true;
    }
    // Then each map takes in a single-use contraction it reads once, as the epilogue's product.
    for id in (0..g.nodes.len()).filter(|&id| !absorbed[id]) {
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
    // A reduction of a single-use map computes the map's values as it reads them, so they
    // never reach memory: one kernel, not two.
    for id in 0..g.nodes.len() {
        let Op::Reduce { input, op } = g.nodes[id].op else {
            continue;
        };
        let Op::Map { expr, inputs } = &g.nodes[input].op else {
            continue;
        };
        if uses[input] != 1 {
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
    // Last, a constant factor on a product's operand moves into its epilogue:
    // (c·A)·B = c·(A·B), which saves the pass that scaled the operand.
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
    let (g, root) = prune(&g, root);
    let (g, root) = attention(g, root);
    rows(g, root)
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

/// The nodes the root depends on, renumbered in order.
fn prune(g: &Graph, root: NodeId) -> (Graph, NodeId) {
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

/// Replaces each map that reads single-use reductions along one of its axes (each over that
/// axis of inputs spanning the map's labels, possibly reading earlier such reductions, as a
/// variance reads a mean) with one [`Op::MapRows`].
fn rows(mut g: Graph, root: NodeId) -> (Graph, NodeId) {
    let uses = use_counts(&g, root);
    let mut found = false;
    for id in 0..g.nodes.len() {
        let Op::Map { expr, inputs } = &g.nodes[id].op else {
            continue;
        };
        let (expr, inputs) = (expr.clone(), inputs.clone());
        let mut rows = RowFusion {
            labels: g.nodes[id].labels.clone(),
            shape: g.nodes[id].shape.clone(),
            axis: None,
            merged: Vec::new(),
            reductions: Vec::new(),
            renames: Vec::new(),
        };
        // Each input: a merged input, or (as a placeholder) a reduction.
        let mut at = Vec::with_capacity(inputs.len());
        for &i in &inputs {
            let mut trial = rows.clone();
            match trial.absorb(&g, &uses, i) {
                Some(j) => {
                    rows = trial;
                    at.push(PLACEHOLDER + j);
                }
                None => at.push(rows.index_of(i)),
            }
        }
        let Some(axis) = rows.axis else { continue };
        let n = rows.merged.len();
        let settle = |k: usize| {
            MapExpr::Input(if k >= PLACEHOLDER {
                n + k - PLACEHOLDER
            } else {
                k
            })
        };
        let expr = expr
            .substitute(&|k| MapExpr::Input(at[k]))
            .substitute(&settle);
        let reductions = rows
            .reductions
            .iter()
            .map(|(e, op)| (e.substitute(&settle), *op))
            .collect();
        for &(node, from, to) in &rows.renames {
            let swap = |v: VarId| if v == from { to } else { v };
            let n = &mut g.nodes[node];
            n.op = n.op.relabelled(&swap);
            n.labels.iter_mut().for_each(|l| *l = swap(*l));
        }
        g.nodes[id].op = Op::MapRows {
            expr,
            inputs: rows.merged,
            reductions,
            axis,
        };
        found = true;
    }
    if found {
        prune(&g, root)
    } else {
        (g, root)
    }
}

/// Input numbers from here on stand for reductions while a [`RowFusion`] is built.
const PLACEHOLDER: usize = 1 << 20;

/// A [`Op::MapRows`] being assembled for a map over `labels`.
#[derive(Clone)]
struct RowFusion {
    labels: Vec<VarId>,
    shape: Vec<usize>,
    axis: Option<VarId>,
    merged: Vec<NodeId>,
    reductions: Vec<(MapExpr, ReduceOp)>,
    /// Loads whose summed label becomes the axis: (node, from, to).
    renames: Vec<(NodeId, VarId, VarId)>,
}

impl RowFusion {
    fn index_of(&mut self, n: NodeId) -> usize {
        match self.merged.iter().position(|&x| x == n) {
            Some(k) => k,
            None => {
                self.merged.push(n);
                self.merged.len() - 1
            }
        }
    }

    /// Takes in reduction node `i` and the reductions it reads, returning its number among
    /// the reductions; `None` (leaving `self` partly changed: try it on a copy) when it does
    /// not fit.
    fn absorb(&mut self, g: &Graph, uses: &[usize], i: NodeId) -> Option<usize> {
        let (e, ins, op, over) = match &g.nodes[i].op {
            Op::Reduce { input, op } => (
                MapExpr::Input(0),
                vec![*input],
                *op,
                g.nodes[*input].labels.clone(),
            ),
            Op::MapReduce {
                expr,
                inputs,
                over,
                op,
                ..
            } => (expr.clone(), inputs.clone(), *op, over.clone()),
            _ => return None,
        };
        let kept = &g.nodes[i].labels;
        let missing: Vec<VarId> = self
            .labels
            .iter()
            .filter(|l| !kept.contains(l))
            .copied()
            .collect();
        let summed: Vec<VarId> = over.iter().filter(|l| !kept.contains(l)).copied().collect();
        let ([a], [r]) = (&missing[..], &summed[..]) else {
            return None;
        };
        let (a, r) = (*a, *r);
        let spans = kept.len() + 1 == self.labels.len()
            && kept.iter().all(|l| self.labels.contains(l))
            && (r == a || !self.labels.contains(&r));
        if uses[i] != 1 || !spans || self.axis.is_some_and(|x| x != a) {
            return None;
        }
        self.axis = Some(a);
        let mut at = Vec::with_capacity(ins.len());
        for &n in &ins {
            let node = &g.nodes[n];
            if node.labels.len() == kept.len() && node.labels.iter().all(|l| kept.contains(l)) {
                // A value per row: an earlier reduction, or an input broadcast along the axis.
                let mut trial = self.clone();
                match trial.absorb(g, uses, n) {
                    Some(j) => {
                        *self = trial;
                        at.push(PLACEHOLDER + j);
                    }
                    None => at.push(self.index_of(n)),
                }
                continue;
            }
            if r != a {
                // A reduction spliced in from another equation sums its own variable: it is
                // the map's axis when the extents agree and the input is a load read nowhere
                // else, which can be renamed in place.
                let axis_extent = self
                    .labels
                    .iter()
                    .position(|&l| l == a)
                    .map(|k| self.shape[k]);
                let renamable = uses[n] == 1
                    && matches!(node.op, Op::Load { .. } | Op::Gather { .. })
                    && extent_of(g, &[n], r) == axis_extent;
                if !renamable {
                    return None;
                }
                self.renames.push((n, r, a));
            }
            at.push(self.index_of(n));
        }
        self.reductions
            .push((e.substitute(&|k| MapExpr::Input(at[k])), op));
        Some(self.reductions.len() - 1)
    }
}

/// The extent of label `l` in the first of `nodes` that has it.
fn extent_of(g: &Graph, nodes: &[NodeId], l: VarId) -> Option<usize> {
    nodes.iter().find_map(|&n| {
        let node = &g.nodes[n];
        node.labels
            .iter()
            .position(|&x| x == l)
            .map(|k| node.shape[k])
    })
}

/// Replaces `softmax_key(f(Q·K, …))·V` (the product, the softmax and its function each used
/// once, the outer product summing only `key`) with one [`Op::Attention`] node.
fn attention(mut g: Graph, root: NodeId) -> (Graph, NodeId) {
    let uses = use_counts(&g, root);
    let mut found = false;
    for id in 0..g.nodes.len() {
        let (a, b) = match &g.nodes[id].op {
            Op::Contract { a, b } => (*a, *b),
            Op::ContractMap {
                a,
                b,
                expr: MapExpr::Input(0),
                inputs,
            } if inputs.is_empty() => (*a, *b),
            _ => continue,
        };
        let Some(mut op) = [(a, b), (b, a)]
            .into_iter()
            .find_map(|(w, v)| attention_of(&g, &uses, id, w, v))
        else {
            continue;
        };
        // A constant factor in the epilogue of the queries' or keys' product moves into the
        // scores' function ((c·Q)·K = c·(Q·K)), leaving the projection a plain GEMM epilogue.
        if let Op::Attention { q, k, expr, .. } = &mut op {
            for n in [*q, *k] {
                let Op::ContractMap {
                    expr: inner,
                    inputs,
                    a,
                    b,
                } = &g.nodes[n].op
                else {
                    continue;
                };
                let Some((rest, c)) = split_factor(inner) else {
                    continue;
                };
                if uses[n] != 1 {
                    continue;
                }
                g.nodes[n].op = Op::ContractMap {
                    a: *a,
                    b: *b,
                    expr: rest,
                    inputs: inputs.clone(),
                };
                let scaled = MapExpr::Binary(
                    tl_core::BinaryFn::Mul,
                    Box::new(MapExpr::Input(0)),
                    Box::new(MapExpr::Const(c)),
                );
                *expr = expr.substitute(&|j| {
                    if j == 0 {
                        scaled.clone()
                    } else {
                        MapExpr::Input(j)
                    }
                });
            }
        }
        g.nodes[id].op = op;
        found = true;
    }
    if found {
        prune(&g, root)
    } else {
        (g, root)
    }
}

/// The attention node for `out = weights · v`, when `weights` is a single-use softmax of a
/// function of a single-use product `q · k` over the same labels and `out` sums only the
/// softmax's axis.
fn attention_of(g: &Graph, uses: &[usize], out: NodeId, w: NodeId, v: NodeId) -> Option<Op> {
    let (expr, inputs, key) = match &g.nodes[w].op {
        Op::MapNormalize {
            expr,
            inputs,
            axis,
            func: NormFn::Softmax,
        } => (expr.clone(), inputs.clone(), axis),
        // A softmax of the product itself: the identity function of it.
        Op::Normalize {
            input,
            axis,
            func: NormFn::Softmax,
        } => (MapExpr::Input(0), vec![*input], axis),
        _ => return None,
    };
    let (key, scores) = (*key, &g.nodes[w].labels);
    let kept = &g.nodes[out].labels;
    let sums_only_key = !kept.contains(&key)
        && g.nodes[v].labels.contains(&key)
        && scores
            .iter()
            .chain(&g.nodes[v].labels)
            .all(|l| *l == key || kept.contains(l));
    if uses[w] != 1 || !sums_only_key {
        return None;
    }
    let same_labels = |n: NodeId| {
        let (mut x, mut y) = (g.nodes[n].labels.clone(), scores.clone());
        x.sort_unstable();
        y.sort_unstable();
        x == y
    };
    let (pos, q, k, inner) = inputs.iter().enumerate().find_map(|(pos, &i)| {
        if uses[i] != 1 || !same_labels(i) {
            return None;
        }
        match &g.nodes[i].op {
            Op::Contract { a, b } => Some((pos, *a, *b, MapExpr::Input(0))),
            Op::ContractMap { a, b, expr, inputs } if inputs.is_empty() => {
                Some((pos, *a, *b, expr.clone()))
            }
            _ => None,
        }
    })?;
    let (in_q, in_k) = (
        g.nodes[q].labels.contains(&key),
        g.nodes[k].labels.contains(&key),
    );
    let (q, k) = match (in_q, in_k) {
        (false, true) => (q, k),
        (true, false) => (k, q),
        _ => return None,
    };
    let (expr, others) = product_first(&expr, &inputs, pos, &inner);
    Some(Op::Attention {
        q,
        k,
        v,
        expr,
        inputs: others,
        scores: scores.clone(),
        key,
    })
}

#[cfg(test)]
mod tests;
