//! Row fusion: a map over single-use reductions along one of its axes (a layer norm written
//! by hand) becomes one [`Op::MapRows`].

use super::*;

/// Row kernels: replaces each map that reads single-use reductions along one of its axes
/// (each over that axis of inputs spanning the map's labels, possibly reading earlier such
/// reductions, as a variance reads a mean) with one [`Op::MapRows`], then drops the nodes it
/// absorbed ([`prune`]: a reduction it took in may read a load it renamed, and would no longer
/// verify). Needs exact use counts.
pub fn rows(f: &mut Fusing) {
    let (g, uses) = (&mut f.graph, &f.uses);
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
            match trial.absorb(g, uses, i) {
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
        prune(f);
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
