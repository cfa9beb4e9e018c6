//! Attention fusion: `softmax(f(Q·K))·V` becomes one [`Op::Attention`].

use super::*;

/// Attention: replaces `softmax_key(f(Q·K, …))·V` (the product, the softmax and its function
/// each used once, the outer product summing only `key`) with one [`Op::Attention`] node,
/// then drops the nodes it took in ([`prune`]). Needs exact use counts.
pub fn attention(f: &mut Fusing) {
    let (g, uses) = (&mut f.graph, &f.uses);
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
            .find_map(|(w, v)| attention_of(g, uses, id, w, v))
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
        prune(f);
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
