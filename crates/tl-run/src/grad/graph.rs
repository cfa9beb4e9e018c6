//! Reverse mode through one recorded plan: the gradient rule of each kind of node.

use super::*;
use tl_backend::Calls;

impl Engine<'_> {
    /// Backpropagates `g_root` through one recorded plan, adding into `grads` for every tensor
    /// with `wanted[t]`.
    pub(crate) fn graph_backward(
        &mut self,
        plan: &EquationPlan,
        g_root: Tensor,
        grads: &mut Grads,
        wanted: &[bool],
    ) -> Result<(), RunError> {
        let span = plan.span;
        let key = plan.id;
        let vals = self
            .traces
            .get(&key)
            .cloned()
            .ok_or_else(|| RunError::Unsupported {
                what: "internal: no recorded forward pass for the backward pass".into(),
                hint: None,
                span,
            })?;
        let nodes = &plan.graph.nodes;
        let mut req = vec![false; nodes.len()];
        for (id, node) in nodes.iter().enumerate() {
            req[id] = match &node.op {
                Op::Load { tensor } | Op::Gather { tensor, .. } => wanted
                    .get(self.grad_index(*tensor))
                    .copied()
                    .unwrap_or(false),
                Op::Const(_) | Op::IndexValue(_) | Op::DropMask { .. } => false,
                _ => plan.graph.inputs(id).iter().any(|&i| req[i]),
            };
        }
        let mut gn: Vec<Option<Tensor>> = vec![None; nodes.len()];
        if req[plan.root] {
            gn[plan.root] = Some(g_root);
        }
        let be = self.backend;
        for id in (0..nodes.len()).rev() {
            let Some(g) = gn[id].take() else { continue };
            let node = &nodes[id];
            match &node.op {
                Op::Load { tensor } => {
                    let entry = grads
                        .get_mut(self.grad_index(*tensor))
                        .ok_or_else(|| no_entry(span))?;
                    self.accumulate(entry, g, span)?
                }
                Op::Gather { tensor, indices } => {
                    let shape = self.shape(*tensor);
                    let idx = self.cached_index(plan, false, id, || {
                        index_vector(&plan.vars, &node.labels, indices, &shape)
                    });
                    let back = be
                        .scatter_shared(&g, &idx, &shape, ReduceOp::Sum)
                        .map_err(self.err(span))?;
                    let entry = grads
                        .get_mut(self.grad_index(*tensor))
                        .ok_or_else(|| no_entry(span))?;
                    self.accumulate(entry, back, span)?;
                }
                Op::Const(_) | Op::IndexValue(_) | Op::DropMask { .. } => {}
                Op::Map { expr, inputs } => {
                    for (k, &i) in inputs.iter().enumerate() {
                        if !req[i] || !expr.uses(k) {
                            continue;
                        }
                        let d = mul(expr.derivative(k), input(inputs.len()));
                        let full = if d == input(inputs.len()) {
                            // The local derivative is 1 (a sum's term): the gradient passes
                            // through as it is, with no pass over memory.
                            g.clone()
                        } else {
                            // Only the inputs the derivative reads are passed (and read).
                            let mut args: Vec<(&Tensor, &[usize])> = Vec::new();
                            let mut slot = vec![usize::MAX; inputs.len() + 1];
                            for (j, arg) in inputs
                                .iter()
                                .map(|&j| (&vals[j], nodes[j].labels.as_slice()))
                                .chain([(&g, node.labels.as_slice())])
                                .enumerate()
                            {
                                if d.uses(j) {
                                    slot[j] = args.len();
                                    args.push(arg);
                                }
                            }
                            let d = d.substitute(&|j| input(slot[j]));
                            self.map_labelled(&d, &args, &node.labels, &node.shape, span)?
                        };
                        let gi = self.sum_to(
                            &full,
                            &node.labels,
                            &nodes[i].labels,
                            &nodes[i].shape,
                            span,
                        )?;
                        self.accumulate(&mut gn[i], gi, span)?;
                    }
                }
                Op::ContractMap { .. }
                | Op::MapReduce { .. }
                | Op::MapNormalize { .. }
                | Op::MapRows { .. }
                | Op::Attention { .. } => {
                    return Err(RunError::Unsupported {
                        what: "internal: the backward pass reads unfused graphs only".into(),
                        hint: None,
                        span,
                    })
                }
                Op::Contract { a, b } => {
                    for (x, other) in [(*a, *b), (*b, *a)] {
                        if !req[x] {
                            continue;
                        }
                        // A read at shifted indices (a convolution's input): its source's
                        // gradient as a product with the other operand reversed.
                        if let Op::Gather { tensor, .. } = &nodes[x].op {
                            let ids = (id, x, other);
                            if let Some(dx) =
                                self.transposed_gradient(plan, ids, &g, &vals[other], span)?
                            {
                                let entry = grads
                                    .get_mut(self.grad_index(*tensor))
                                    .ok_or_else(|| no_entry(span))?;
                                self.accumulate(entry, dx, span)?;
                                continue;
                            }
                        }
                        let (lx, lo) = (&nodes[x].labels, &nodes[other].labels);
                        let present: Vec<usize> = lx
                            .iter()
                            .copied()
                            .filter(|l| node.labels.contains(l) || lo.contains(l))
                            .collect();
                        let l32 = |v: &[usize]| v.iter().map(|&l| l as u32).collect::<Vec<u32>>();
                        let gx = self
                            .multiply(
                                &g,
                                &l32(&node.labels),
                                &vals[other],
                                &l32(lo),
                                &l32(&present),
                                self.dtype(),
                            )
                            .map_err(self.err(span))?;
                        let gx = if present.len() == lx.len() {
                            gx
                        } else {
                            self.map_labelled(
                                &input(0),
                                &[(&gx, &present)],
                                lx,
                                &nodes[x].shape,
                                span,
                            )?
                        };
                        self.accumulate(&mut gn[x], gx, span)?;
                    }
                }
                Op::Reduce { input: i, op } => {
                    let (li, si) = (&nodes[*i].labels, &nodes[*i].shape);
                    let gi = match op {
                        ReduceOp::Sum => {
                            self.map_labelled(&input(0), &[(&g, &node.labels)], li, si, span)?
                        }
                        ReduceOp::Mean => {
                            let count: f64 = si.iter().product::<usize>() as f64
                                / node.shape.iter().product::<usize>().max(1) as f64;
                            self.map_labelled(
                                &bin(
                                    BinaryFn::Mul,
                                    input(0),
                                    MapExpr::Const(1.0 / count.max(1.0)),
                                ),
                                &[(&g, &node.labels)],
                                li,
                                si,
                                span,
                            )?
                        }
                        ReduceOp::Max | ReduceOp::Min => self.map_labelled(
                            &mul(input(0), equal(input(1), input(2))),
                            &[
                                (&g, &node.labels),
                                (&vals[*i], li),
                                (&vals[id], &node.labels),
                            ],
                            li,
                            si,
                            span,
                        )?,
                    };
                    self.accumulate(&mut gn[*i], gi, span)?;
                }
                Op::Normalize {
                    input: i,
                    axis,
                    func,
                } => {
                    let labels = &node.labels;
                    let rest: Vec<usize> = labels.iter().copied().filter(|l| l != axis).collect();
                    let rest_shape: Vec<usize> =
                        rest.iter().map(|&l| plan.vars[l].extent).collect();
                    let y = &vals[id];
                    let gy = self.map_labelled(
                        &bin(BinaryFn::Mul, input(0), input(1)),
                        &[(&g, labels), (y, labels)],
                        labels,
                        &node.shape,
                        span,
                    )?;
                    let s_gy = self.sum_to(&gy, labels, &rest, &rest_shape, span)?;
                    let gi = match func {
                        NormFn::Softmax => self.map_labelled(
                            &mul(input(0), bin(BinaryFn::Sub, input(1), input(2))),
                            &[(y, labels), (&g, labels), (&s_gy, &rest)],
                            labels,
                            &node.shape,
                            span,
                        )?,
                        NormFn::LayerNorm => {
                            let len = plan.vars[*axis].extent.max(1) as f64;
                            let x = &vals[*i];
                            let s_x = self.sum_to(x, labels, &rest, &rest_shape, span)?;
                            let centred = self.map_labelled(
                                &bin(
                                    BinaryFn::Sub,
                                    input(0),
                                    bin(BinaryFn::Mul, input(1), MapExpr::Const(1.0 / len)),
                                ),
                                &[(x, labels), (&s_x, &rest)],
                                labels,
                                &node.shape,
                                span,
                            )?;
                            let sq = self.map_labelled(
                                &bin(BinaryFn::Mul, input(0), input(0)),
                                &[(&centred, labels)],
                                labels,
                                &node.shape,
                                span,
                            )?;
                            let s_sq = self.sum_to(&sq, labels, &rest, &rest_shape, span)?;
                            let s_g = self.sum_to(&g, labels, &rest, &rest_shape, span)?;
                            // (g − mean g − y·mean(g·y)) / sqrt(var + eps)
                            let inv_len = MapExpr::Const(1.0 / len);
                            let sigma = un(
                                UnaryFn::Sqrt,
                                bin(
                                    BinaryFn::Add,
                                    bin(BinaryFn::Mul, input(3), inv_len.clone()),
                                    MapExpr::Const(tl_backend::ops::LAYER_NORM_EPS),
                                ),
                            );
                            let num = bin(
                                BinaryFn::Sub,
                                bin(
                                    BinaryFn::Sub,
                                    input(0),
                                    bin(BinaryFn::Mul, input(1), inv_len.clone()),
                                ),
                                bin(
                                    BinaryFn::Mul,
                                    input(4),
                                    bin(BinaryFn::Mul, input(2), inv_len),
                                ),
                            );
                            self.map_labelled(
                                &bin(BinaryFn::Div, num, sigma),
                                &[
                                    (&g, labels),
                                    (&s_g, &rest),
                                    (&s_gy, &rest),
                                    (&s_sq, &rest),
                                    (y, labels),
                                ],
                                labels,
                                &node.shape,
                                span,
                            )?
                        }
                    };
                    self.accumulate(&mut gn[*i], gi, span)?;
                }
            }
        }
        Ok(())
    }
}
