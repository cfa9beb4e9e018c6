//! The plan's IR: an arena of nodes, each a tensor whose axes are labelled by the equation's
//! index variables. [`crate::show`] prints it one line per node, e.g.
//! `%4 = %1·%2 summing [j] : [i: 64, k: 128]`.

use tl_check::{Index, IndexExpr, TensorId, VarId};
use tl_core::{MapExpr, NormFn, ReduceOp};

/// Index of a node in its [`Graph`].
pub type NodeId = usize;

/// What a node computes.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A tensor read whose indices are distinct plain variables: the node's labels are those
    /// variables in axis order (no data moves).
    Load {
        /// The tensor: a program tensor, a semi-naive delta or a slot ([`crate::TensorRef`]).
        tensor: TensorId,
    },
    /// A tensor read with constants, arithmetic, slices or a repeated variable: a gather over
    /// the node's labels (the distinct variables of the access). Reads outside the tensor are 0.
    Gather {
        /// The tensor.
        tensor: TensorId,
        /// One index per axis.
        indices: Vec<Index>,
    },
    /// A scalar constant.
    Const(f64),
    /// The value of an index variable at each point (`0, 1, …, n-1` along its one axis).
    IndexValue(VarId),
    /// `dropout`'s mask over this node's labels: in a training step, a fresh draw of 0 (with
    /// probability `p`) or `1 / (1 - p)` at each point; everywhere else 1.
    DropMask {
        /// The rate.
        p: f64,
    },
    /// A fused elementwise expression of its inputs, broadcast onto this node's labels.
    Map {
        /// The expression (`Input(k)` is `inputs[k]`).
        expr: MapExpr,
        /// The input nodes.
        inputs: Vec<NodeId>,
    },
    /// Pairwise sum-product contraction onto this node's labels.
    Contract {
        /// Left operand.
        a: NodeId,
        /// Right operand.
        b: NodeId,
    },
    /// A contraction with an elementwise epilogue (made by fusion): `expr` reads the product of
    /// `a` and `b` as `Input(0)` and `inputs[k]` as `Input(k + 1)`, broadcast onto this node's
    /// labels.
    ContractMap {
        /// Left operand.
        a: NodeId,
        /// Right operand.
        b: NodeId,
        /// The epilogue.
        expr: MapExpr,
        /// The epilogue's other inputs.
        inputs: Vec<NodeId>,
    },
    /// Reduces the input's labels that this node lacks.
    Reduce {
        /// The input.
        input: NodeId,
        /// How.
        op: ReduceOp,
    },
    /// A reduction of an elementwise expression (made by fusion): `expr` over `inputs`,
    /// broadcast onto the labels `over` (this node's labels, then the reduced ones), reduced
    /// with `op` to this node's labels, without storing the expression's values.
    MapReduce {
        /// The expression (`Input(k)` is `inputs[k]`).
        expr: MapExpr,
        /// The input nodes.
        inputs: Vec<NodeId>,
        /// The expression's labels: this node's, then the reduced ones.
        over: Vec<VarId>,
        /// The extents of `over`.
        over_shape: Vec<usize>,
        /// How.
        op: ReduceOp,
    },
    /// Softmax or layer norm along one labelled axis of an elementwise expression (made by
    /// fusion): `expr` over `inputs`, broadcast onto this node's labels, normalised without
    /// storing the expression's values.
    MapNormalize {
        /// The expression (`Input(k)` is `inputs[k]`).
        expr: MapExpr,
        /// The input nodes.
        inputs: Vec<NodeId>,
        /// The axis's variable.
        axis: VarId,
        /// Which function.
        func: NormFn,
    },
    /// A map that also reads reductions along one of its axes (made by fusion): reduction
    /// `j` is `reductions[j].1` along `axis` of `reductions[j].0` over `inputs`, read by `expr`
    /// as `Input(inputs.len() + j)`. A backend may compute each row in one pass.
    MapRows {
        /// The map (`Input(k)` is `inputs[k]`, then the reductions).
        expr: MapExpr,
        /// The input nodes, broadcast onto this node's labels.
        inputs: Vec<NodeId>,
        /// Each reduction: its expression over `inputs`, and how it reduces.
        reductions: Vec<(MapExpr, ReduceOp)>,
        /// The axis reduced, a label of this node.
        axis: VarId,
    },
    /// Attention (made by fusion): the softmax along `key` of `expr` over the product of `q`
    /// and `k` (`Input(0)`, labelled `scores`) and `inputs` (`Input(k + 1)`, broadcast onto
    /// `scores`), contracted with `v` over `key` onto this node's labels. A backend may compute
    /// it without storing the scores.
    Attention {
        /// Queries.
        q: NodeId,
        /// Keys.
        k: NodeId,
        /// Values.
        v: NodeId,
        /// The scores' function of the product and `inputs`.
        expr: MapExpr,
        /// The scores' other inputs.
        inputs: Vec<NodeId>,
        /// The labels of the scores.
        scores: Vec<VarId>,
        /// The label the softmax runs along.
        key: VarId,
    },
    /// Softmax or layer norm along one labelled axis.
    Normalize {
        /// The input.
        input: NodeId,
        /// The axis's variable.
        axis: VarId,
        /// Which function.
        func: NormFn,
    },
}

impl Op {
    /// The same operation reading node `f(i)` wherever it read node `i` (for passes that
    /// renumber or splice graphs).
    pub fn renumbered(&self, f: &dyn Fn(NodeId) -> NodeId) -> Op {
        let all = |v: &[NodeId]| v.iter().map(|&i| f(i)).collect::<Vec<_>>();
        let mut op = self.clone();
        match &mut op {
            Op::Map { inputs, .. }
            | Op::MapReduce { inputs, .. }
            | Op::MapRows { inputs, .. }
            | Op::MapNormalize { inputs, .. } => *inputs = all(inputs),
            Op::Contract { a, b } => (*a, *b) = (f(*a), f(*b)),
            Op::ContractMap { a, b, inputs, .. } => {
                (*a, *b) = (f(*a), f(*b));
                *inputs = all(inputs);
            }
            Op::Attention {
                q, k, v, inputs, ..
            } => {
                (*q, *k, *v) = (f(*q), f(*k), f(*v));
                *inputs = all(inputs);
            }
            Op::Reduce { input, .. } | Op::Normalize { input, .. } => *input = f(*input),
            Op::Load { .. }
            | Op::Gather { .. }
            | Op::Const(_)
            | Op::IndexValue(_)
            | Op::DropMask { .. } => {}
        }
        op
    }

    /// The same operation with every index variable `v` it names replaced by `f(v)` (for
    /// splicing one equation's graph into another's, whose variables are numbered apart).
    pub fn relabelled(&self, f: &dyn Fn(VarId) -> VarId) -> Op {
        let mut op = self.clone();
        match &mut op {
            Op::Gather { indices, .. } => {
                for ix in indices.iter_mut() {
                    *ix = relabel_index(ix, f);
                }
            }
            Op::IndexValue(v) => *v = f(*v),
            Op::MapReduce { over, .. } => over.iter_mut().for_each(|v| *v = f(*v)),
            Op::MapNormalize { axis, .. }
            | Op::Normalize { axis, .. }
            | Op::MapRows { axis, .. } => *axis = f(*axis),
            Op::Attention { scores, key, .. } => {
                scores.iter_mut().for_each(|v| *v = f(*v));
                *key = f(*key);
            }
            Op::Load { .. }
            | Op::Const(_)
            | Op::DropMask { .. }
            | Op::Map { .. }
            | Op::Contract { .. }
            | Op::ContractMap { .. }
            | Op::Reduce { .. } => {}
        }
        op
    }
}

/// An index with its variables renamed by `f`.
fn relabel_index(ix: &Index, f: &dyn Fn(VarId) -> VarId) -> Index {
    match ix {
        Index::Var(v) => Index::Var(f(*v)),
        Index::Expr(e) => Index::Expr(relabel_index_expr(e, f)),
        Index::Slice { var, start } => Index::Slice {
            var: f(*var),
            start: *start,
        },
        Index::Const(_) | Index::Symbol(..) => ix.clone(),
    }
}

fn relabel_index_expr(e: &IndexExpr, f: &dyn Fn(VarId) -> VarId) -> IndexExpr {
    match e {
        IndexExpr::Var(v) => IndexExpr::Var(f(*v)),
        IndexExpr::Const(c) => IndexExpr::Const(*c),
        IndexExpr::Binary(op, a, b) => IndexExpr::Binary(
            *op,
            Box::new(relabel_index_expr(a, f)),
            Box::new(relabel_index_expr(b, f)),
        ),
    }
}

/// The element type a node computes in. Plans are made before a run's `--dtype` is known, so a
/// node names one of the run's two types: the real tensors' type, or `f64`, in which sums over
/// relations (counts, `TensorKind::Integer`) are exact up to 2^53.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// The run's real type (`--dtype`).
    #[default]
    Real,
    /// `f64` whatever the run's real type: counts stay exact.
    Exact,
}

/// One node: its operation, the variables labelling its axes, its shape and its element type.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What it computes.
    pub op: Op,
    /// The variable of each axis.
    pub labels: Vec<VarId>,
    /// The extent of each axis.
    pub shape: Vec<usize>,
    /// The type it computes in (the `types` pass sets it; [`Precision::Real`] before).
    pub precision: Precision,
}

/// An arena of nodes in evaluation order (inputs before users).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    /// The nodes.
    pub nodes: Vec<Node>,
}

impl Graph {
    /// Appends a node and returns its id.
    pub fn push(&mut self, op: Op, labels: Vec<VarId>, shape: Vec<usize>) -> NodeId {
        self.nodes.push(Node {
            op,
            labels,
            shape,
            precision: Precision::Real,
        });
        self.nodes.len() - 1
    }

    /// The inputs of a node.
    pub fn inputs(&self, id: NodeId) -> Vec<NodeId> {
        match &self.nodes[id].op {
            Op::Map { inputs, .. }
            | Op::MapReduce { inputs, .. }
            | Op::MapRows { inputs, .. }
            | Op::MapNormalize { inputs, .. } => inputs.clone(),
            Op::Contract { a, b } => vec![*a, *b],
            Op::ContractMap { a, b, inputs, .. } => {
                [*a, *b].into_iter().chain(inputs.iter().copied()).collect()
            }
            Op::Attention {
                q, k, v, inputs, ..
            } => [*q, *k, *v]
                .into_iter()
                .chain(inputs.iter().copied())
                .collect(),
            Op::Reduce { input, .. } | Op::Normalize { input, .. } => vec![*input],
            Op::Load { .. }
            | Op::Gather { .. }
            | Op::Const(_)
            | Op::IndexValue(_)
            | Op::DropMask { .. } => Vec::new(),
        }
    }

    /// How many launches evaluating the graph takes (every node but loads and constants).
    pub fn kernel_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| !matches!(n.op, Op::Load { .. } | Op::Const(_)))
            .count()
    }

    /// Checks the invariants every pass must keep: inputs precede users and share their
    /// precision, labels are distinct and match shapes, reductions drop labels, contractions keep only their operands' labels.
    pub fn verify(&self) -> Result<(), String> {
        for (id, n) in self.nodes.iter().enumerate() {
            if n.labels.len() != n.shape.len() {
                return Err(format!(
                    "%{id}: {} labels for {} axes",
                    n.labels.len(),
                    n.shape.len()
                ));
            }
            let mut seen = n.labels.clone();
            seen.sort_unstable();
            seen.dedup();
            if seen.len() != n.labels.len() {
                return Err(format!("%{id}: repeated label"));
            }
            for i in self.inputs(id) {
                if i >= id {
                    return Err(format!("%{id} reads %{i}, which comes later"));
                }
                // Values change type only where a tensor is read.
                if self.nodes[i].precision != n.precision {
                    return Err(format!("%{id} reads %{i}, of another precision"));
                }
                if let Op::Reduce { .. } = n.op {
                    if !n.labels.iter().all(|l| self.nodes[i].labels.contains(l)) {
                        return Err(format!("%{id}: reduction adds a label"));
                    }
                }
                if let Op::MapReduce { over, .. } = &n.op {
                    if !self.nodes[i].labels.iter().all(|l| over.contains(l)) {
                        return Err(format!("%{id}: an input has a label outside the map"));
                    }
                }
            }
            if let Op::MapReduce {
                over, over_shape, ..
            } = &n.op
            {
                if over.len() != over_shape.len() || !over.starts_with(&n.labels) {
                    return Err(format!(
                        "%{id}: the map's labels must start with the result's"
                    ));
                }
            }
            if let Op::Contract { a, b } | Op::ContractMap { a, b, .. } = n.op {
                let (la, lb) = (&self.nodes[a].labels, &self.nodes[b].labels);
                if !n.labels.iter().all(|l| la.contains(l) || lb.contains(l)) {
                    return Err(format!(
                        "%{id}: contraction output label not in its operands"
                    ));
                }
            }
        }
        Ok(())
    }
}
