//! Pass 2 over whole statements: equations and rules become their resolved forms, waiting
//! only for domains to be settled.

use crate::collect::{is_virtual, Checker};
use crate::error::CheckError;
use crate::place::{self, ConcatPart, PlaceHint};
use crate::program::{Equation, Index, Rule};
use crate::resolve::{Hint, Pending, Scope};
use crate::unify::Node;
use tl_syntax::ast::{self, AccessStyle, ExprKind, IndexArg, StmtKind};

/// Resolved equations and rules with their scopes, and the size hints they left.
#[derive(Default)]
pub struct Resolved {
    /// Equations in statement order.
    pub equations: Vec<Pending<Equation>>,
    /// Rules in statement order.
    pub rules: Vec<Pending<Rule>>,
    /// Size hints.
    pub hints: Vec<Hint>,
    /// For each equation, its step variable when it writes a step (`S[i, *t+1] = …`).
    pub step_vars: Vec<Option<usize>>,
}

/// A resolved equation and its step variable, if it writes a step.
type Stepped = (Pending<Equation>, Option<usize>);

impl Resolved {
    fn extend(&mut self, equations: Vec<Stepped>) {
        for (p, step) in equations {
            self.equations.push(p);
            self.step_vars.push(step);
        }
    }
}

impl Checker<'_> {
    /// Pass 2 over every equation and rule.
    pub fn resolve_all(&mut self, program: &ast::Program) -> Resolved {
        let mut out = Resolved::default();
        let mut bare = Vec::new();
        let placed: Vec<Node> = self
            .drafts
            .iter()
            .flat_map(|d| d.placed.iter().filter_map(|&k| d.axes.get(k).copied()))
            .collect();
        self.placed_nodes.extend(placed);
        for stmt in &program.stmts {
            let result = match &stmt.kind {
                // A left-hand side without indices takes its axes from the bare tensors its
                // right-hand side reads: resolved below, once those have their rank.
                StmtKind::Equation(eq) if eq.lhs.indices.is_none() => {
                    bare.push((eq, stmt.span));
                    Ok(())
                }
                StmtKind::Equation(eq) => self
                    .equations(eq, stmt.span, &mut out.hints)
                    .map(|ps| out.extend(ps)),
                StmtKind::Rule(rule) => self.rule(rule, stmt.span).map(|p| out.rules.push(p)),
                _ => Ok(()),
            };
            if let Err(e) = result {
                self.errors.push(e);
            }
        }
        let known = |name: &str| {
            self.by_name
                .get(name)
                .is_some_and(|&t| self.drafts[t].rank.is_some())
        };
        let order = bare_order(&bare, known);
        for k in order {
            let (eq, span) = bare[k];
            if let Err(e) = self
                .equations(eq, span, &mut out.hints)
                .map(|ps| out.extend(ps))
            {
                self.errors.push(e);
            }
        }
        // A bare read resolved before its tensor had a rank was read as a scalar; a tensor that
        // turned out to have axes cannot be read so (a bare name keeps all of its axes).
        for (t, span) in std::mem::take(&mut self.unranked_bare) {
            if let Some((rank, _)) = self.drafts[t].rank.filter(|(r, _)| *r > 0) {
                let name = self.drafts[t].name.clone();
                self.errors.push(CheckError::Misplaced {
                    what: format!("`{name}` has {rank} axes; a bare name keeps all of them"),
                    span,
                    hint: format!(
                        "name its indices where it is read, e.g. `{name}[{}]`",
                        crate::resolve::index_names(rank)
                    ),
                });
            }
        }
        out
    }

    /// Resolves an equation; a `concat` right-hand side becomes one equation per argument
    /// ([`crate::place`]).
    fn equations(
        &mut self,
        eq: &ast::Equation,
        span: tl_syntax::Span,
        hints: &mut Vec<Hint>,
    ) -> Result<Vec<Stepped>, CheckError> {
        let Some(args) = place::concat_args(&eq.rhs) else {
            return Ok(vec![self.equation(eq, &eq.rhs, None, span, hints)?]);
        };
        let pos = place::concat_position(eq, args)?;
        let mut on_left = Vec::new();
        let kept = eq.lhs.indices.iter().flatten();
        for (k, ix) in kept.filter(|ix| !is_virtual(&ix.arg)).enumerate() {
            if let (IndexArg::Expr(e), true) = (&ix.arg, k != pos) {
                place::index_expr_names(e, &mut on_left);
            }
        }
        let new_names = |arg: &ast::Expr| -> Vec<String> {
            place::index_names(arg)
                .into_iter()
                .filter(|n| !on_left.contains(n))
                .collect()
        };
        match args {
            [] => Err(CheckError::Arity {
                func: "concat".into(),
                expected: "one or more arguments",
                found: 0,
                span: eq.rhs.span,
            }),
            [arg] => {
                let names = new_names(arg);
                if names.is_empty() {
                    return Err(CheckError::Misplaced {
                        what: "`concat` of one argument flattens its indices that are not on the left, and this one has none".into(),
                        span: arg.span,
                        hint: "e.g. `Merge[b, p, m] = concat(Attn[b, h, p, v])` flattens `h` and `v` into `m`".into(),
                    });
                }
                let part = ConcatPart::Flatten(names);
                Ok(vec![self.equation(
                    eq,
                    arg,
                    Some((pos, part)),
                    span,
                    hints,
                )?])
            }
            _ => {
                let mut before = Vec::new();
                let mut out = Vec::new();
                for arg in args {
                    let names = new_names(arg);
                    let [name] = names.as_slice() else {
                        return Err(CheckError::Misplaced {
                            what: format!("each argument of a `concat` of several needs exactly one index that is not on the left; this one has {}", names.len()),
                            span: arg.span,
                            hint: "e.g. `C[k] = concat(A[i], B[j])` lays `i` and then `j` along `k`".into(),
                        });
                    };
                    let part = ConcatPart::Shift {
                        name: name.clone(),
                        before: before.clone(),
                    };
                    let p = self.equation(eq, arg, Some((pos, part)), span, hints)?;
                    if let Some(v) = p.0.scope.lookup(name) {
                        before.push(p.0.scope.nodes[v]);
                    }
                    out.push(p);
                }
                Ok(out)
            }
        }
    }

    fn equation(
        &mut self,
        eq: &ast::Equation,
        rhs: &ast::Expr,
        concat: Option<(usize, ConcatPart)>,
        span: tl_syntax::Span,
        hints: &mut Vec<Hint>,
    ) -> Result<Stepped, CheckError> {
        let lhs = self.by_name.get(&eq.lhs.name.name).copied().unwrap_or(0);
        let mut scope = Scope::default();
        let mut lhs_indices = Vec::new();
        let mut norm_var = None;
        let mut anon = Vec::new();
        let mut places = Vec::new();
        let mut deferred_part = None;
        let step = match &eq.lhs.indices {
            Some(indices) => self.step_head(&mut scope, indices, &eq.lhs.name.name)?,
            None => None,
        };
        match &eq.lhs.indices {
            Some(indices) => {
                let axes = self.drafts[lhs].axes.clone();
                let kept = indices.iter().filter(|ix| !is_virtual(&ix.arg));
                for (k, (ix, &axis)) in kept.zip(&axes).enumerate() {
                    if let Some((_, part)) = concat.as_ref().filter(|(p, _)| *p == k) {
                        places.push((k, axis, None, ix.arg.span()));
                        deferred_part = Some(part.clone());
                        self.place_lhs_extent(ix, axis)?;
                        lhs_indices.push(Index::Const(0));
                        continue;
                    }
                    if self.placed_nodes.contains(&axis) {
                        let (index, form) = self.place_lhs(&mut scope, hints, ix, axis)?;
                        places.push((k, axis, Some(form), ix.arg.span()));
                        lhs_indices.push(index);
                        continue;
                    }
                    if let IndexArg::Slice { span, .. } = &ix.arg {
                        return Err(CheckError::Misplaced {
                            what: "a slice cannot be assigned to".into(),
                            span: *span,
                            hint: "slice on the right-hand side: `Mid = S[2:5]`".into(),
                        });
                    }
                    let index = self.index(&mut scope, hints, &ix.arg, axis, None)?;
                    if let (Index::Var(v), Some(ann)) = (&index, &ix.extent) {
                        match ann {
                            ast::ExtentAnn::Size(n, s) => {
                                self.uf.set_extent(scope.nodes[*v], *n as usize, *s)?
                            }
                            ast::ExtentAnn::Domain(d) => {
                                let dn = self.domain_node(d)?;
                                self.uf.union(scope.nodes[*v], dn)?;
                            }
                        }
                    }
                    if ix.dotted {
                        match index {
                            Index::Var(v) => norm_var = Some(v),
                            _ => {
                                return Err(CheckError::Misplaced {
                                    what: "only a plain index can be dotted".into(),
                                    span: ix.arg.span(),
                                    hint: "write e.g. `A[p, q.]`".into(),
                                })
                            }
                        }
                    }
                    lhs_indices.push(index);
                }
            }
            None => {
                let rank = self.anon_rank(&eq.rhs);
                let axes = match self.drafts[lhs].rank {
                    Some(_) => self.drafts[lhs].axes.clone(),
                    None => {
                        self.set_rank(lhs, rank, eq.lhs.span);
                        self.drafts[lhs].axes.clone()
                    }
                };
                for (k, &axis) in axes.iter().enumerate() {
                    let v = scope.fresh(self, &format!("_{k}"), eq.lhs.span);
                    scope.direct[v] = true;
                    self.uf.union(scope.nodes[v], axis)?;
                    lhs_indices.push(Index::Var(v));
                    anon.push(v);
                }
            }
        }
        if let Some((v, _)) = step {
            let mut used = Vec::new();
            for ix in &lhs_indices {
                crate::loops::index_vars(ix, &mut used);
            }
            if used.contains(&v) || norm_var == Some(v) {
                return Err(CheckError::VirtualMisplaced {
                    what: format!("`{}` is both the step and an axis here", scope.names[v]),
                    span: scope.spans[v],
                    hint: "the step variable names no axis of the tensor it writes; use another name for the axis".into(),
                });
            }
            self.step = Some((v, scope.names[v].clone()));
        }
        let rhs = self.expr(&mut scope, hints, rhs, &anon);
        self.step = None;
        let rhs = rhs?;
        let name = &eq.lhs.name.name;
        let mut deferred = Vec::new();
        for (position, axis, form, at) in places {
            let form = match (form, deferred_part.take()) {
                (Some(form), part) => {
                    deferred_part = part;
                    form
                }
                (None, Some(part)) => {
                    let form = place::concat_form(&mut scope, part);
                    deferred.push((position, form.clone()));
                    form
                }
                (None, None) => continue,
            };
            hints.push(Hint::Place(PlaceHint {
                axis,
                tensor: name.clone(),
                position,
                form,
                vars: scope.nodes.clone(),
                span: at,
            }));
        }
        if let Some((v, offset)) = step {
            lhs_indices.push(crate::loops::step_index(v, offset));
        }
        let vars = scope.infos();
        Ok((
            Pending {
                item: Equation {
                    lhs,
                    lhs_indices,
                    norm_var,
                    projection: eq.projection,
                    rhs,
                    vars,
                    span,
                },
                scope,
                deferred,
            },
            step.map(|(v, _)| v),
        ))
    }

    /// The step variable and offset of a left-hand side written at a virtual index
    /// (`S[i, *t+1]`), with the step's extent annotation applied; `None` without one.
    fn step_head(
        &mut self,
        scope: &mut Scope,
        indices: &[ast::LhsIndex],
        tensor: &str,
    ) -> Result<Option<(usize, i64)>, CheckError> {
        let mut stepped = indices.iter().filter(|ix| is_virtual(&ix.arg));
        let Some(ix) = stepped.next() else {
            return Ok(None);
        };
        if let Some(second) = stepped.next() {
            return Err(CheckError::VirtualMisplaced {
                what: "a left-hand side has at most one virtual index".into(),
                span: second.arg.span(),
                hint:
                    "a loop runs over one step variable; nest a second loop in a tensor of its own"
                        .into(),
            });
        }
        let IndexArg::Virtual { var, offset, span } = &ix.arg else {
            return Ok(None);
        };
        if ix.dotted {
            return Err(CheckError::VirtualMisplaced {
                what: "a virtual index has no axis to normalise along".into(),
                span: *span,
                hint: "put the `.` on an index without `*`".into(),
            });
        }
        let v = scope.var(self, &var.name, var.span);
        let group = self.virtuals.get(tensor).copied().unwrap_or(0);
        let steps = self.loop_steps(group);
        self.uf.union_at(scope.nodes[v], steps, var.span)?;
        match &ix.extent {
            Some(ast::ExtentAnn::Size(n, s)) => {
                self.uf.set_extent(scope.nodes[v], *n as usize, *s)?
            }
            Some(ast::ExtentAnn::Domain(d)) => {
                let dn = self.domain_node(d)?;
                self.uf.union(scope.nodes[v], dn)?;
            }
            None => {}
        }
        Ok(Some((v, *offset)))
    }

    /// The number of unnamed axes a right-hand side keeps: the most axes of any bare tensor
    /// read, or of slices in one read.
    fn anon_rank(&self, e: &ast::Expr) -> usize {
        match &e.kind {
            ExprKind::Number(_) | ExprKind::Index(_) => 0,
            ExprKind::Access(a) => match a.style {
                AccessStyle::Bare => self
                    .by_name
                    .get(&a.name.name)
                    .and_then(|&t| self.drafts[t].rank)
                    .map_or(0, |(r, _)| r),
                _ => {
                    a.args
                        .iter()
                        .filter(|x| matches!(x, IndexArg::Slice { .. }))
                        .count()
                        + self.implicit_axes(a)
                }
            },
            ExprKind::Call { args, .. } => {
                args.iter().map(|a| self.anon_rank(a)).max().unwrap_or(0)
            }
            ExprKind::Neg(x) => self.anon_rank(x),
            ExprKind::Binary { lhs, rhs, .. } => self.anon_rank(lhs).max(self.anon_rank(rhs)),
        }
    }

    fn rule(
        &mut self,
        rule: &ast::Rule,
        span: tl_syntax::Span,
    ) -> Result<Pending<Rule>, CheckError> {
        let head = self.by_name.get(&rule.head.name.name).copied().unwrap_or(0);
        let mut scope = Scope::default();
        let axes = self.drafts[head].axes.clone();
        let head_args = rule
            .head
            .args
            .iter()
            .zip(&axes)
            .map(|(a, &ax)| self.term(&mut scope, a, Some(ax)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut body = Vec::new();
        let mut comparisons = Vec::new();
        for item in &rule.body {
            match item {
                ast::BodyItem::Atom { negated, atom } => {
                    body.push(self.body_atom(&mut scope, atom, *negated)?)
                }
                ast::BodyItem::Compare { op, lhs, rhs, .. } => {
                    comparisons.push(self.comparison(&mut scope, *op, lhs, rhs)?)
                }
            }
        }
        let vars = scope.infos();
        Ok(Pending {
            item: Rule {
                head,
                head_args,
                body,
                comparisons,
                vars,
                span,
            },
            scope,
            deferred: Vec::new(),
        })
    }
}

/// The order in which to resolve equations with a bare left-hand side (`Z = A + B`): each
/// after the bare-left-hand equations of the tensors it reads bare whose rank is not `known`
/// otherwise, so that their ranks are known whatever order the program lists them in
/// (definitions are order-free). Equations in a cycle keep their listed order. Kahn's
/// algorithm, linear in the equations' sizes.
fn bare_order(
    bare: &[(&ast::Equation, tl_syntax::Span)],
    known: impl Fn(&str) -> bool,
) -> Vec<usize> {
    use std::collections::HashMap;
    let mut defines: HashMap<&str, Vec<usize>> = HashMap::new();
    for (k, (eq, _)) in bare.iter().enumerate() {
        defines
            .entry(eq.lhs.name.name.as_str())
            .or_default()
            .push(k);
    }
    let mut waits = vec![0usize; bare.len()];
    let mut unblocks: Vec<Vec<usize>> = vec![Vec::new(); bare.len()];
    let mut names = Vec::new();
    for (k, (eq, _)) in bare.iter().enumerate() {
        names.clear();
        bare_reads(&eq.rhs, &mut names);
        names.sort_unstable();
        names.dedup();
        // A tensor whose rank other statements already give needs no wait.
        for name in names.iter().filter(|n| !known(n)) {
            for &d in defines.get(name).map_or(&[][..], Vec::as_slice) {
                if d != k {
                    waits[k] += 1;
                    unblocks[d].push(k);
                }
            }
        }
    }
    let mut order = Vec::with_capacity(bare.len());
    let mut done = vec![false; bare.len()];
    let mut ready: Vec<usize> = (0..bare.len()).rev().filter(|&k| waits[k] == 0).collect();
    let mut next_listed = 0;
    while order.len() < bare.len() {
        let k = match ready.pop() {
            Some(k) => k,
            // A cycle: take the first one still waiting, in listed order.
            None => {
                while done[next_listed] {
                    next_listed += 1;
                }
                next_listed
            }
        };
        if std::mem::replace(&mut done[k], true) {
            continue;
        }
        order.push(k);
        for &u in &unblocks[k] {
            waits[u] = waits[u].saturating_sub(1);
            if waits[u] == 0 && !done[u] {
                ready.push(u);
            }
        }
    }
    order
}

/// The names of the tensors an expression reads bare (without brackets).
fn bare_reads<'e>(e: &'e ast::Expr, out: &mut Vec<&'e str>) {
    match &e.kind {
        ExprKind::Access(a) if a.style == AccessStyle::Bare => out.push(a.name.name.as_str()),
        ExprKind::Access(_) | ExprKind::Number(_) | ExprKind::Index(_) => {}
        ExprKind::Call { args, .. } => args.iter().for_each(|a| bare_reads(a, out)),
        ExprKind::Neg(x) => bare_reads(x, out),
        ExprKind::Binary { lhs, rhs, .. } => {
            bare_reads(lhs, out);
            bare_reads(rhs, out);
        }
    }
}
