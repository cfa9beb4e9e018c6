//! Lowering one equation's right-hand side to a [`Graph`]: factors become loads, gathers,
//! constants and elementwise maps; each term contracts its factors pairwise in the order
//! [`crate::order`] chooses, summing the indices the projection rule assigns to it.

use crate::error::PlanError;
use crate::graph::{Graph, NodeId, Op};
use crate::order;
use crate::terms::{is_sum, split_factors, split_sum, TermId};
use std::collections::{HashMap, HashSet};
use tl_check::{Access, Expr, Func, Index, VarId, VarInfo};
use tl_core::{BinaryFn, MapExpr, ReduceOp, UnaryFn};
use tl_syntax::ast::BinOp;
use tl_syntax::Span;

/// Adds the variables an index uses to `out` (once each).
pub fn index_vars(ix: &Index, out: &mut Vec<VarId>) {
    match ix {
        Index::Var(v) | Index::Slice { var: v, .. } => {
            if !out.contains(v) {
                out.push(*v)
            }
        }
        Index::Expr(e) => e.vars(out),
        Index::Const(_) | Index::Symbol(..) => {}
    }
}

/// Lowers the expressions of one equation.
pub struct Lowerer<'a> {
    /// Shape of every tensor (semi-naive delta ids wrap around to their tensor).
    pub shapes: &'a [Vec<usize>],
    /// The equation's variables.
    pub vars: &'a [VarInfo],
    /// Variables summed at each term.
    pub sites: HashMap<TermId, Vec<VarId>>,
    /// How the outermost terms project.
    pub projection: ReduceOp,
    /// The dotted left-hand variable.
    pub norm_var: Option<VarId>,
    /// The graph being built.
    pub graph: Graph,
    /// The left-hand side's variables in order: results are laid out in this order where
    /// the choice is free, so the final placement is rarely a transposing copy.
    pub head: Vec<VarId>,
    /// The largest intermediate a join made so far (cells, saturating, and its labels):
    /// [`crate::plan_equation`] rejects an equation whose largest exceeds
    /// [`order::MAX_INTERMEDIATE_CELLS`].
    pub largest: Option<(u128, Vec<VarId>)>,
    next_term: TermId,
}

impl<'a> Lowerer<'a> {
    /// A lowerer for one equation.
    pub fn new(
        shapes: &'a [Vec<usize>],
        vars: &'a [VarInfo],
        sites: HashMap<TermId, Vec<VarId>>,
        projection: ReduceOp,
        norm_var: Option<VarId>,
    ) -> Self {
        Lowerer {
            shapes,
            vars,
            sites,
            projection,
            norm_var,
            graph: Graph::default(),
            head: Vec::new(),
            largest: None,
            next_term: 1,
        }
    }

    /// `labels` in the left-hand side's order; variables it lacks (summed later) go last, in
    /// the order given.
    fn head_ordered(&self, mut labels: Vec<VarId>) -> Vec<VarId> {
        labels.sort_by_key(|l| self.head.iter().position(|h| h == l).unwrap_or(usize::MAX));
        labels
    }

    fn shape_of(&self, labels: &[VarId]) -> Vec<usize> {
        labels.iter().map(|&v| self.vars[v].extent).collect()
    }

    fn labels(&self, n: NodeId) -> &[VarId] {
        &self.graph.nodes[n].labels
    }

    fn push(&mut self, op: Op, labels: Vec<VarId>) -> NodeId {
        let shape = self.shape_of(&labels);
        self.graph.push(op, labels, shape)
    }

    /// An elementwise map over the union of its inputs' labels.
    pub fn map(&mut self, expr: MapExpr, inputs: Vec<NodeId>) -> NodeId {
        let mut labels = Vec::new();
        for &i in &inputs {
            for &l in self.labels(i) {
                if !labels.contains(&l) {
                    labels.push(l);
                }
            }
        }
        let labels = self.head_ordered(labels);
        self.push(Op::Map { expr, inputs }, labels)
    }

    /// A map onto an explicit label order (for placing a result on the left-hand side).
    pub fn map_onto(&mut self, input: NodeId, labels: Vec<VarId>) -> NodeId {
        self.push(
            Op::Map {
                expr: MapExpr::Input(0),
                inputs: vec![input],
            },
            labels,
        )
    }

    fn constant(&mut self, c: f64) -> NodeId {
        self.push(Op::Const(c), Vec::new())
    }

    /// Lowers a tensor read.
    pub fn access(&mut self, a: &Access) -> NodeId {
        let mut labels = Vec::new();
        let plain = a.indices.iter().all(|ix| matches!(ix, Index::Var(_)));
        for ix in &a.indices {
            index_vars(ix, &mut labels);
        }
        if plain && labels.len() == a.indices.len() {
            self.push(Op::Load { tensor: a.tensor }, labels)
        } else {
            self.push(
                Op::Gather {
                    tensor: a.tensor,
                    indices: a.indices.clone(),
                },
                labels,
            )
        }
    }

    /// Lowers a sum; at the top level (`outer`), indices summed over the whole right-hand
    /// side use the equation's projection.
    pub fn sum(&mut self, e: &Expr, outer: bool) -> Result<NodeId, PlanError> {
        let root_sums = if outer {
            self.sites.get(&0).cloned().unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut nodes = Vec::new();
        let mut expr: Option<MapExpr> = None;
        for (k, (sign, t)) in split_sum(e).into_iter().enumerate() {
            let id = self.next_term;
            self.next_term += 1;
            nodes.push(self.term(t, id, outer)?);
            let input = MapExpr::Input(k);
            expr = Some(match expr {
                None if sign < 0.0 => MapExpr::Unary(UnaryFn::Neg, Box::new(input)),
                None => input,
                Some(acc) => MapExpr::Binary(
                    if sign < 0.0 {
                        BinaryFn::Sub
                    } else {
                        BinaryFn::Add
                    },
                    Box::new(acc),
                    Box::new(input),
                ),
            });
        }
        let node = match (nodes.len(), expr) {
            (1, Some(MapExpr::Input(0))) => nodes[0],
            (_, Some(expr)) => self.map(expr, nodes),
            (_, None) => self.constant(0.0),
        };
        Ok(self.reduce(
            node,
            &root_sums,
            if outer {
                self.projection
            } else {
                ReduceOp::Sum
            },
        ))
    }

    fn reduce(&mut self, node: NodeId, vars: &[VarId], op: ReduceOp) -> NodeId {
        if !self.labels(node).iter().any(|l| vars.contains(l)) {
            return node;
        }
        let keep: Vec<VarId> = self
            .labels(node)
            .iter()
            .copied()
            .filter(|l| !vars.contains(l))
            .collect();
        self.push(Op::Reduce { input: node, op }, keep)
    }

    fn term(&mut self, e: &Expr, id: TermId, outer: bool) -> Result<NodeId, PlanError> {
        let summed = self.sites.get(&id).cloned().unwrap_or_default();
        let (sign, factors) = split_factors(e);
        let mut coeff = sign;
        let mut nodes = Vec::new();
        for f in factors {
            if let (Expr::Number(x), false) = (f.expr, f.recip) {
                coeff *= x;
                continue;
            }
            if let (Expr::Number(x), true) = (f.expr, f.recip) {
                coeff /= x;
                continue;
            }
            nodes.push(self.signed_factor(&f)?);
        }
        let op = if outer {
            self.projection
        } else {
            ReduceOp::Sum
        };
        // A mean of one factor is one reduction (not a sum, then a scaling pass).
        let single_mean = op == ReduceOp::Mean && nodes.len() == 1 && !summed.is_empty();
        let mut node = match op {
            ReduceOp::Mean if single_mean => self.reduce(nodes[0], &summed, ReduceOp::Mean),
            ReduceOp::Sum | ReduceOp::Mean => self.contract_all(nodes, &summed),
            ReduceOp::Max | ReduceOp::Min => {
                let joined = nodes.len() > 1;
                let product = self.product(nodes);
                if joined {
                    // Every factor broadcast onto all the term's indices, then reduced.
                    let labels = self.labels(product).to_vec();
                    let cells = labels.iter().fold(1u128, |acc, &v| {
                        acc.saturating_mul(self.vars[v].extent as u128)
                    });
                    self.note_intermediate(cells, &labels);
                }
                self.reduce(product, &summed, op)
            }
        };
        if op == ReduceOp::Mean && !single_mean {
            let count: f64 = summed.iter().map(|&v| self.vars[v].extent as f64).product();
            if !summed.is_empty() {
                coeff /= count.max(1.0);
            }
        }
        if coeff != 1.0 {
            let c = self.constant(coeff);
            node = if self.graph.nodes[node].op == Op::Const(1.0) {
                c
            } else {
                self.map(
                    MapExpr::Binary(
                        BinaryFn::Mul,
                        Box::new(MapExpr::Input(0)),
                        Box::new(MapExpr::Input(1)),
                    ),
                    vec![node, c],
                )
            };
        }
        Ok(node)
    }

    /// The elementwise product of nodes (no summation), or the constant 1 for none.
    fn product(&mut self, nodes: Vec<NodeId>) -> NodeId {
        match nodes.len() {
            0 => self.constant(1.0),
            1 => nodes[0],
            _ => {
                let mut expr = MapExpr::Input(0);
                for k in 1..nodes.len() {
                    expr =
                        MapExpr::Binary(BinaryFn::Mul, Box::new(expr), Box::new(MapExpr::Input(k)));
                }
                self.map(expr, nodes)
            }
        }
    }

    /// Contracts factors pairwise, summing `summed`, in the order [`order::contraction_order`]
    /// picks; an index only one factor holds is summed out of it first.
    pub fn contract_all(&mut self, mut nodes: Vec<NodeId>, summed: &[VarId]) -> NodeId {
        if nodes.is_empty() {
            return self.constant(1.0);
        }
        let summed_set: HashSet<VarId> = summed.iter().copied().collect();
        let mut holders: HashMap<VarId, usize> = HashMap::new();
        for &n in &nodes {
            for &l in self.labels(n) {
                *holders.entry(l).or_default() += 1;
            }
        }
        // Sum out indices that only one factor has, before joining.
        for node in nodes.iter_mut() {
            let own: Vec<VarId> = self
                .labels(*node)
                .iter()
                .copied()
                .filter(|v| summed_set.contains(v) && holders.get(v) == Some(&1))
                .collect();
            *node = self.reduce(*node, &own, ReduceOp::Sum);
        }
        let factors: Vec<Vec<VarId>> = nodes.iter().map(|&n| self.labels(n).to_vec()).collect();
        let mut keep: Vec<VarId> = holders
            .keys()
            .copied()
            .filter(|v| !summed_set.contains(v))
            .collect();
        keep.sort_unstable();
        let vars = self.vars;
        let order = order::contraction_order(&factors, &keep, |v| vars[v].extent);
        let mut operands = nodes;
        for step in order.steps {
            let (a, b) = (operands[step.a], operands[step.b]);
            self.note_intermediate(step.cells, &step.keep);
            let c = if (self.covers(a, b) || self.covers(b, a))
                && step.keep.len() == self.labels(a).len().max(self.labels(b).len())
            {
                // Nothing is summed and one factor's indices are among the other's: a
                // broadcast elementwise product (a gain, a scale), not a matrix product.
                self.map(
                    MapExpr::Binary(
                        BinaryFn::Mul,
                        Box::new(MapExpr::Input(0)),
                        Box::new(MapExpr::Input(1)),
                    ),
                    vec![a, b],
                )
            } else {
                let keep = self.head_ordered(step.keep);
                self.push(Op::Contract { a, b }, keep)
            };
            operands.push(c);
        }
        let node = operands[operands.len() - 1];
        self.reduce(node, summed, ReduceOp::Sum)
    }

    /// Records an intermediate of `cells` cells over `labels` if it is the largest so far.
    fn note_intermediate(&mut self, cells: u128, labels: &[VarId]) {
        if self.largest.as_ref().is_none_or(|(c, _)| cells > *c) {
            self.largest = Some((cells, labels.to_vec()));
        }
    }

    /// Whether every index of node `small` is one of node `big`'s.
    fn covers(&self, big: NodeId, small: NodeId) -> bool {
        let b = self.labels(big);
        self.labels(small).iter().all(|l| b.contains(l))
    }

    /// Lowers one factor (no summation happens here; its indices stay as labels).
    fn factor(&mut self, e: &Expr) -> Result<NodeId, PlanError> {
        Ok(match e {
            Expr::Number(x) => self.constant(*x),
            Expr::Access(a) => self.access(a),
            Expr::IndexValue(v) => self.push(Op::IndexValue(*v), vec![*v]),
            Expr::Call(func, args, span) => self.call(*func, args, *span)?,
            Expr::Binary(BinOp::Pow, b, x) => {
                let b = if is_sum(b) {
                    self.sum(b, false)?
                } else {
                    self.inline(b)?
                };
                if matches!(**x, Expr::Number(n) if n == 2.0) {
                    // A square is a product (the same value as `powi(2)`, without a power
                    // function per element).
                    return Ok(self.map(
                        MapExpr::Binary(
                            BinaryFn::Mul,
                            Box::new(MapExpr::Input(0)),
                            Box::new(MapExpr::Input(0)),
                        ),
                        vec![b],
                    ));
                }
                let x = if is_sum(x) {
                    self.sum(x, false)?
                } else {
                    self.inline(x)?
                };
                self.map(
                    MapExpr::Binary(
                        BinaryFn::Pow,
                        Box::new(MapExpr::Input(0)),
                        Box::new(MapExpr::Input(1)),
                    ),
                    vec![b, x],
                )
            }
            Expr::Binary(BinOp::Add | BinOp::Sub, _, _) => self.sum(e, false)?,
            Expr::Binary(_, _, _) | Expr::Neg(_) => self.inline(e)?,
        })
    }

    /// A factor, as its reciprocal when it divides.
    fn signed_factor(&mut self, f: &crate::terms::Factor) -> Result<NodeId, PlanError> {
        let n = self.factor(f.expr)?;
        Ok(if f.recip {
            self.map(
                MapExpr::Unary(UnaryFn::Recip, Box::new(MapExpr::Input(0))),
                vec![n],
            )
        } else {
            n
        })
    }

    /// A product written inside a factor (e.g. a power's base): elementwise, nothing summed.
    fn inline(&mut self, e: &Expr) -> Result<NodeId, PlanError> {
        let (sign, factors) = split_factors(e);
        let mut nodes = Vec::new();
        for f in factors {
            nodes.push(self.signed_factor(&f)?);
        }
        let mut node = self.product(nodes);
        if sign < 0.0 {
            node = self.map(
                MapExpr::Unary(UnaryFn::Neg, Box::new(MapExpr::Input(0))),
                vec![node],
            );
        }
        Ok(node)
    }

    fn call(&mut self, func: Func, args: &[Expr], span: Span) -> Result<NodeId, PlanError> {
        let mut inputs = Vec::new();
        for a in args {
            inputs.push(self.sum(a, false)?);
        }
        Ok(match func {
            Func::Unary(f) => self.map(MapExpr::Unary(f, Box::new(MapExpr::Input(0))), inputs),
            Func::Dropout(p) => {
                let x = inputs.first().copied().unwrap_or(0);
                let mask = self.push(Op::DropMask { p }, self.labels(x).to_vec());
                self.map(
                    MapExpr::Binary(
                        BinaryFn::Mul,
                        Box::new(MapExpr::Input(0)),
                        Box::new(MapExpr::Input(1)),
                    ),
                    vec![x, mask],
                )
            }
            Func::SigmoidT => self.map(
                MapExpr::Binary(
                    BinaryFn::SigmoidT,
                    Box::new(MapExpr::Input(0)),
                    Box::new(MapExpr::Input(1)),
                ),
                inputs,
            ),
            Func::Norm(nf) => {
                let input = inputs.first().copied().unwrap_or(0);
                let labels = self.labels(input).to_vec();
                let name = if nf == tl_core::NormFn::Softmax {
                    "softmax"
                } else {
                    "lnorm"
                };
                let axis = match self.norm_var {
                    Some(v) if labels.contains(&v) => v,
                    Some(v) => {
                        return Err(PlanError::NormAxisUnused {
                            func: name.into(),
                            var: self.vars[v].name.clone(),
                            span,
                        })
                    }
                    None if labels.len() == 1 => labels[0],
                    None => {
                        return Err(PlanError::NoNormAxis {
                            func: name.into(),
                            span,
                        })
                    }
                };
                self.push(
                    Op::Normalize {
                        input,
                        axis,
                        func: nf,
                    },
                    labels,
                )
            }
        })
    }
}
