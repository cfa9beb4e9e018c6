//! The plan as text, for `tl check --dump-plan` and for messages: one line per node, its
//! elementwise expressions written as formulas over the nodes they read, e.g.
//! `%5 = relu(%1·%2 + %4) summing [k] : [i: 64, j: 128]`.

use crate::graph::{Graph, NodeId, Op, Precision};
use crate::layers::Row;
use crate::loops::SlotSource;
use crate::{EquationPlan, Placement, ProgramPlan, TensorRef};
use std::fmt::{self, Write};
use tl_check::{CheckedProgram, Index, IndexExpr, TensorId, VarId};
use tl_core::{BinaryFn, MapExpr, NormFn, ReduceOp, UnaryFn};
use tl_syntax::ast::IndexOp;

/// The names a graph is printed with: its tensors' and its index variables'.
#[derive(Clone, Debug, Default)]
pub struct Names<'a> {
    /// The name of each tensor id (ids past the list print as `t7`).
    pub tensors: &'a [String],
    /// The name of each variable (ids past the list print as `v7`).
    pub vars: Vec<String>,
}

/// The name of every tensor id a plan of `p` reads: its tensors, then their semi-naive deltas
/// (`ΔT`), then the slots of layer rows (`X@l+1`: row `l + 1` of `X`, `l` the layer) and of
/// loop steps (`S@t-1`: `S` at step `t - 1`; `step`: the step number).
pub fn tensor_names(p: &CheckedProgram, plan: &ProgramPlan) -> Vec<String> {
    let n = p.tensors.len();
    let name = |t: TensorId| {
        p.tensors
            .get(t)
            .map_or_else(|| format!("t{t}"), |d| d.name.clone())
    };
    let ids = TensorRef::Slot(plan.layers.slot_shapes.len()).id(n);
    let mut names: Vec<String> = (0..ids)
        .map(|id| match TensorRef::of(id, n) {
            TensorRef::Tensor(t) => name(t),
            TensorRef::Delta(t) => format!("Δ{}", name(t)),
            TensorRef::Slot(k) => format!("slot{k}"),
        })
        .collect();
    let offset = |base: &str, c: i64| match c {
        0 => base.to_string(),
        c if c > 0 => format!("{base}+{c}"),
        c => format!("{base}{c}"),
    };
    let mut set = |id: TensorId, text: String| {
        if let Some(slot) = names.get_mut(id) {
            *slot = text;
        }
    };
    for ls in &plan.layers.strata {
        for re in &ls.equations {
            for slot in re.slots.iter().chain(&re.fused_slots) {
                let row = match slot.row {
                    Row::Offset(c) => offset("l", c),
                    Row::Fixed(c) => c.to_string(),
                };
                set(slot.id, format!("{}@{row}", name(slot.source)));
            }
        }
    }
    for l in &plan.loops {
        for slot in l.equations.iter().flat_map(|s| &s.slots) {
            let text = match &slot.source {
                SlotSource::State { tensor, offset: c }
                | SlotSource::Row {
                    tensor, offset: c, ..
                } => {
                    format!("{}@{}", name(*tensor), offset("t", *c))
                }
                SlotSource::Step => "step".to_string(),
            };
            set(slot.id, text);
        }
    }
    names
}

impl<'a> Names<'a> {
    /// The names in one plan: `tensors` (from [`tensor_names`]) and the plan's variables. Two
    /// variables of the plan's graphs that share a name (as after splicing one equation into
    /// another) are told apart: the first keeps it, the next is `name#2`, and so on.
    pub fn of(tensors: &'a [String], eq: &EquationPlan) -> Names<'a> {
        let mut used = vec![false; eq.vars.len()];
        for g in [&eq.graph, &eq.fused] {
            for v in g.nodes.iter().flat_map(node_vars) {
                if let Some(u) = used.get_mut(v) {
                    *u = true;
                }
            }
        }
        let mut vars = Vec::with_capacity(eq.vars.len());
        for (v, info) in eq.vars.iter().enumerate() {
            let earlier = (0..v)
                .filter(|&w| used[w] && eq.vars[w].name == info.name)
                .count();
            vars.push(if used[v] && earlier > 0 {
                format!("{}#{}", info.name, earlier + 1)
            } else {
                info.name.clone()
            });
        }
        Names { tensors, vars }
    }

    fn tensor(&self, t: TensorId) -> String {
        self.tensors
            .get(t)
            .cloned()
            .unwrap_or_else(|| format!("t{t}"))
    }

    fn var(&self, v: VarId) -> String {
        self.vars.get(v).cloned().unwrap_or_else(|| format!("v{v}"))
    }

    fn var_list(&self, vs: &[VarId]) -> String {
        vs.iter()
            .map(|&v| self.var(v))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every variable a node names: its labels and those of its operation.
fn node_vars(n: &crate::graph::Node) -> Vec<VarId> {
    let mut vs = n.labels.clone();
    match &n.op {
        Op::Gather { indices, .. } => {
            for ix in indices {
                crate::lower::index_vars(ix, &mut vs);
            }
        }
        Op::IndexValue(v) => vs.push(*v),
        Op::MapReduce { over, .. } => vs.extend(over),
        Op::MapNormalize { axis, .. } | Op::Normalize { axis, .. } | Op::MapRows { axis, .. } => {
            vs.push(*axis)
        }
        Op::Attention { scores, key, .. } => {
            vs.extend(scores);
            vs.push(*key);
        }
        _ => {}
    }
    vs
}

/// A graph with the names to print it by ([`Graph::show`]).
pub struct Shown<'a> {
    graph: &'a Graph,
    names: &'a Names<'a>,
    indent: &'static str,
}

impl Graph {
    /// The graph as text, one line per node, with `names` for its tensors and variables.
    pub fn show<'a>(&'a self, names: &'a Names<'a>) -> Shown<'a> {
        Shown {
            graph: self,
            names,
            indent: "",
        }
    }
}

impl Shown<'_> {
    /// The same, each line indented by two spaces.
    pub fn indented(self) -> Self {
        Shown {
            indent: "  ",
            ..self
        }
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (g, names) = (self.graph, self.names);
        for (id, n) in g.nodes.iter().enumerate() {
            let axes = n
                .labels
                .iter()
                .zip(&n.shape)
                .map(|(&l, e)| format!("{}: {e}", names.var(l)))
                .collect::<Vec<_>>()
                .join(", ");
            let indent = self.indent;
            let exact = match n.precision {
                Precision::Exact => " f64",
                Precision::Real => "",
            };
            let text = node_text(g, id, names);
            writeln!(f, "{indent}%{id} = {text} : [{axes}]{exact}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.show(&Names::default()))
    }
}

/// What node `id` computes, as text.
fn node_text(g: &Graph, id: NodeId, names: &Names) -> String {
    let node = &g.nodes[id];
    // The labels of `inputs` that this node lacks: what it sums or reduces.
    let dropped = |inputs: &[NodeId]| {
        let mut out: Vec<VarId> = Vec::new();
        for &i in inputs {
            for &l in g.nodes.get(i).map_or(&[][..], |n| &n.labels[..]) {
                if !node.labels.contains(&l) && !out.contains(&l) {
                    out.push(l);
                }
            }
        }
        out
    };
    let summing = |inputs: &[NodeId]| {
        let vs = dropped(inputs);
        if vs.is_empty() {
            String::new()
        } else {
            format!(" summing [{}]", names.var_list(&vs))
        }
    };
    let node_ref = |inputs: &[NodeId]| {
        let inputs = inputs.to_vec();
        move |k: usize| inputs.get(k).map_or(format!("in{k}"), |i| format!("%{i}"))
    };
    match &node.op {
        Op::Load { tensor } => format!("load {}", names.tensor(*tensor)),
        Op::Gather { tensor, indices } => {
            let ix: Vec<String> = indices.iter().map(|i| index_text(i, names)).collect();
            format!("gather {}[{}]", names.tensor(*tensor), ix.join(", "))
        }
        Op::Const(c) => format!("const {c}"),
        Op::IndexValue(v) => format!("index {}", names.var(*v)),
        Op::DropMask { p } => format!("dropout mask, rate {p}"),
        Op::Map { expr, inputs } => formula(expr, &node_ref(inputs)),
        Op::Contract { a, b } => format!("%{a}·%{b}{}", summing(&[*a, *b])),
        Op::ContractMap { a, b, expr, inputs } => {
            let input = node_ref(inputs);
            let text = formula(expr, &|k| match k {
                0 => format!("%{a}·%{b}"),
                k => input(k - 1),
            });
            format!("{text}{}", summing(&[*a, *b]))
        }
        Op::Reduce { input, op } => {
            let over = names.var_list(&dropped(&[*input]));
            format!("{} %{input} over [{over}]", reduce_name(*op))
        }
        Op::MapReduce {
            expr,
            inputs,
            over,
            op,
            ..
        } => {
            let reduced: Vec<VarId> = over
                .iter()
                .filter(|l| !node.labels.contains(l))
                .copied()
                .collect();
            format!(
                "{}({}) over [{}]",
                reduce_name(*op),
                formula(expr, &node_ref(inputs)),
                names.var_list(&reduced)
            )
        }
        Op::Normalize { input, axis, func } => {
            format!("{}(%{input}) along {}", norm_name(*func), names.var(*axis))
        }
        Op::MapNormalize {
            expr,
            inputs,
            axis,
            func,
        } => format!(
            "{}({}) along {}",
            norm_name(*func),
            formula(expr, &node_ref(inputs)),
            names.var(*axis)
        ),
        Op::MapRows {
            expr,
            inputs,
            reductions,
            axis,
        } => {
            let n = inputs.len();
            let input = node_ref(inputs);
            let term = |k: usize| {
                if k < n {
                    input(k)
                } else {
                    format!("r{}", k - n)
                }
            };
            let mut text = format!(
                "rows along {}: {} where",
                names.var(*axis),
                formula(expr, &term)
            );
            for (j, (e, op)) in reductions.iter().enumerate() {
                let sep = if j == 0 { " " } else { ", " };
                let _ = write!(
                    text,
                    "{sep}r{j} = {}({})",
                    reduce_name(*op),
                    formula(e, &term)
                );
            }
            text
        }
        Op::Attention {
            q,
            k,
            v,
            expr,
            inputs,
            key,
            ..
        } => {
            let input = node_ref(inputs);
            let scores = formula(expr, &|j| match j {
                0 => format!("%{q}·%{k}"),
                j => input(j - 1),
            });
            format!(
                "attention softmax({scores}) along {key} · %{v} summing [{key}]",
                key = names.var(*key)
            )
        }
    }
}

/// How a placement reads in a plan's header.
pub fn placement_text(placement: &Placement, names: &Names) -> String {
    match placement {
        Placement::Direct => "Direct".into(),
        Placement::Scatter { indices, op } => {
            let ix: Vec<String> = indices.iter().map(|i| index_text(i, names)).collect();
            format!("scatter onto [{}] by {}", ix.join(", "), reduce_name(*op))
        }
    }
}

fn reduce_name(op: ReduceOp) -> &'static str {
    match op {
        ReduceOp::Sum => "sum",
        ReduceOp::Max => "max",
        ReduceOp::Min => "min",
        ReduceOp::Mean => "mean",
    }
}

fn norm_name(f: NormFn) -> &'static str {
    match f {
        NormFn::Softmax => "softmax",
        NormFn::LayerNorm => "lnorm",
    }
}

/// An index of a gather or scatter as written.
fn index_text(ix: &Index, names: &Names) -> String {
    match ix {
        Index::Var(v) => names.var(*v),
        Index::Const(c) => c.to_string(),
        Index::Expr(e) => index_expr_text(e, names, 0),
        Index::Slice { var, start } => format!("{start} + {}", names.var(*var)),
        Index::Symbol(s, _) => s.clone(),
    }
}

fn index_expr_text(e: &IndexExpr, names: &Names, outer: u8) -> String {
    match e {
        IndexExpr::Var(v) => names.var(*v),
        IndexExpr::Const(c) => c.to_string(),
        IndexExpr::Binary(op, a, b) => {
            let (sym, prec) = match op {
                IndexOp::Add => ("+", 1),
                IndexOp::Sub => ("-", 1),
                IndexOp::Mul => ("*", 2),
                IndexOp::Div => ("/", 2),
                IndexOp::Rem => ("%", 2),
            };
            let text = format!(
                "{} {sym} {}",
                index_expr_text(a, names, prec),
                index_expr_text(b, names, prec + 1)
            );
            bracket(text, prec < outer)
        }
    }
}

fn bracket(text: String, needed: bool) -> String {
    if needed {
        format!("({text})")
    } else {
        text
    }
}

/// An elementwise expression as a formula, `Input(k)` written as `input(k)`.
pub fn formula(expr: &MapExpr, input: &dyn Fn(usize) -> String) -> String {
    written(expr, input, 0)
}

/// `expr` inside an operator of precedence `outer` (0 at the top, 4 for a unary minus's operand).
fn written(expr: &MapExpr, input: &dyn Fn(usize) -> String, outer: u8) -> String {
    match expr {
        MapExpr::Input(k) => input(*k),
        MapExpr::Const(c) if *c < 0.0 => bracket(c.to_string(), outer > 0),
        MapExpr::Const(c) => c.to_string(),
        MapExpr::Unary(UnaryFn::Neg, x) => bracket(format!("-{}", written(x, input, 4)), outer > 3),
        MapExpr::Unary(UnaryFn::Recip, x) => {
            bracket(format!("1 / {}", written(x, input, 3)), outer > 2)
        }
        MapExpr::Unary(f, x) => format!("{}({})", f.name(), written(x, input, 0)),
        MapExpr::Binary(BinaryFn::Pow, a, b) => bracket(
            // `^` groups to the right.
            format!("{} ^ {}", written(a, input, 5), written(b, input, 4)),
            outer > 4,
        ),
        MapExpr::Binary(f, a, b) => {
            let infix = match f {
                BinaryFn::Add => Some(("+", 1)),
                BinaryFn::Sub => Some(("-", 1)),
                BinaryFn::Mul => Some(("*", 2)),
                BinaryFn::Div => Some(("/", 2)),
                _ => None,
            };
            match infix {
                Some((sym, prec)) => bracket(
                    format!(
                        "{} {sym} {}",
                        written(a, input, prec),
                        written(b, input, prec + 1)
                    ),
                    outer > prec,
                ),
                None => format!(
                    "{}({}, {})",
                    f.name(),
                    written(a, input, 0),
                    written(b, input, 0)
                ),
            }
        }
    }
}

/// The whole plan as `tl check --dump-plan` prints it: each equation's and rule's plan, its
/// unfused graph then its fused one, then each layer row plan's fused graph.
pub fn render(p: &CheckedProgram, plan: &ProgramPlan) -> String {
    let mut out = String::new();
    // A spliced plan runs inside its readers' fused plans (and on its own only while
    // gradients are recorded).
    let spliced = |e: &EquationPlan| {
        if e.inlined {
            " (spliced into its readers)"
        } else {
            ""
        }
    };
    let name = |t: TensorId| {
        p.tensors
            .get(t)
            .map_or_else(|| format!("t{t}"), |d| d.name.clone())
    };
    let tensors = tensor_names(p, plan);
    for (k, e) in plan.equations.iter().chain(&plan.rules).enumerate() {
        let names = Names::of(&tensors, e);
        let _ = write!(
            out,
            "plan {k} → {} ({}){}:\n{}fused: {} kernel launches (unfused: {}):\n{}",
            name(e.target),
            placement_text(&e.placement, &names),
            spliced(e),
            e.graph.show(&names).indented(),
            e.fused.kernel_count(),
            e.graph.kernel_count(),
            e.fused.show(&names).indented()
        );
    }
    for stratum in &plan.layers.strata {
        for re in &stratum.equations {
            let names = Names::of(&tensors, &re.plan);
            let _ = write!(
                out,
                "row plan → {} (one layer row){}: fused: {} kernel launches (unfused: {}):\n{}",
                name(re.target),
                spliced(&re.plan),
                re.plan.fused.kernel_count(),
                re.plan.graph.kernel_count(),
                re.plan.fused.show(&names).indented()
            );
        }
    }
    for l in &plan.loops {
        for step in &l.equations {
            let names = Names::of(&tensors, &step.plan);
            let _ = write!(
                out,
                "step plan → {} (one step): fused: {} kernel launches (unfused: {}):\n{}",
                name(step.plan.target),
                step.plan.fused.kernel_count(),
                step.plan.graph.kernel_count(),
                step.plan.fused.show(&names).indented()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests;
