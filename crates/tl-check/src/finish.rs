//! Pass 3: settle every extent (direct uses first, then arithmetic and slice hints, then integer
//! constants), turn union-find classes into domains, and assemble the checked tensors.

use crate::collect::{source_span, Checker, FactArg, RuleConst, Source};
use crate::error::CheckError;
use crate::place::PlaceHint;
use crate::program::{
    Definition, Domain, DomainId, Equation, Expr, Index, IndexExpr, Rule, TensorDecl, TensorKind,
    Term, VarInfo,
};
use crate::resolve::{Hint, Pending};
use crate::statements::Resolved;
use crate::unify::Node;
use std::collections::HashMap;
use tl_syntax::ast::BinOp;

/// Domains by union-find class, built once every class is settled.
pub struct Domains {
    /// The domains, by id.
    pub list: Vec<Domain>,
    by_root: HashMap<Node, DomainId>,
}

impl Checker<'_> {
    fn apply_hints(&mut self, hints: &[Hint]) -> Result<bool, CheckError> {
        let mut changed = false;
        for h in hints {
            match h {
                Hint::Arithmetic { var, axis } => {
                    if self.uf.known_extent(*var).is_none() {
                        if let Some(e) = self.uf.known_extent(*axis) {
                            let span = self
                                .uf
                                .info(*axis)
                                .extent
                                .map(|(_, s)| s)
                                .unwrap_or_default();
                            self.uf.set_extent(*var, e, span)?;
                            let (v, a) = (self.uf.find(*var), self.uf.find(*axis));
                            self.sized_by.insert(v, a);
                            changed = true;
                        }
                    }
                }
                Hint::Slice {
                    var,
                    axis,
                    start,
                    end,
                    span,
                } => {
                    if self.uf.known_extent(*var).is_some() && end.is_none() {
                        continue;
                    }
                    let axis_extent = self.uf.known_extent(*axis);
                    let end = match (end, axis_extent) {
                        (Some(e), _) => *e,
                        (None, Some(n)) => n as i64,
                        (None, None) => continue,
                    };
                    if let Some(n) = axis_extent {
                        if *start < 0 || end > n as i64 || end < *start {
                            return Err(CheckError::Misplaced {
                                what: format!(
                                    "slice {start}:{end} does not fit an axis of {n} values"
                                ),
                                span: *span,
                                hint: format!("slices are half-open and lie within 0:{n}"),
                            });
                        }
                    }
                    let len = (end - start).max(0) as usize;
                    if self.uf.known_extent(*var) != Some(len) {
                        self.uf.set_extent(*var, len, *span)?;
                        changed = true;
                    }
                }
                Hint::Place(_) => {}
            }
        }
        Ok(changed)
    }

    /// Settles every class, applying hints until nothing changes.
    /// Placed axes ([`crate::place`]) are sized once every placement is known; when some
    /// never is (a variable sized only by the axis it places), one axis at a time is sized from
    /// the placements that are known, and everything settles again. Last, every placement is
    /// checked to lie within its axis.
    pub fn settle(&mut self, resolved: &Resolved) -> Result<(), CheckError> {
        let nodes: Vec<Node> = self.all_nodes(resolved);
        let places: Vec<PlaceHint> = resolved
            .hints
            .iter()
            .filter_map(|h| match h {
                Hint::Place(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        for &n in &nodes {
            self.uf.settle(n, false)?;
        }
        let fixed = self.fixed_placements(&places);
        loop {
            for use_constants in [false, true] {
                loop {
                    for &n in &nodes {
                        self.uf.settle(n, use_constants)?;
                    }
                    let hinted = self.apply_hints(&resolved.hints)?;
                    let placed = self.apply_placements(&places, false)?;
                    if !hinted && !placed {
                        break;
                    }
                }
            }
            if !self.apply_placements(&places, true)? {
                break;
            }
        }
        self.check_placements(&places, &fixed)
    }

    fn all_nodes(&self, resolved: &Resolved) -> Vec<Node> {
        let mut nodes: Vec<Node> = self
            .drafts
            .iter()
            .flat_map(|d| d.axes.iter().copied())
            .collect();
        nodes.extend(
            resolved
                .equations
                .iter()
                .flat_map(|p| p.scope.nodes.iter().copied()),
        );
        nodes.extend(
            resolved
                .rules
                .iter()
                .flat_map(|p| p.scope.nodes.iter().copied()),
        );
        nodes.extend(self.domain_nodes.values().copied());
        nodes.extend(self.loop_step_nodes.values().copied());
        nodes
    }

    /// Builds the domains; reports every index or axis whose size is still unknown.
    pub fn domains(&mut self, resolved: &Resolved) -> Domains {
        let mut out = Domains {
            list: Vec::new(),
            by_root: HashMap::new(),
        };
        let mut unsized_reported: Vec<Node> = Vec::new();
        let mut report = |ck: &mut Checker, node: Node, name: &str, span| {
            let root = ck.uf.find(node);
            if ck.uf.known_extent(node).is_none() && !unsized_reported.contains(&root) {
                unsized_reported.push(root);
                ck.errors.push(CheckError::UnsizedIndex {
                    index: name.to_string(),
                    span,
                });
            }
        };
        for p in resolved
            .equations
            .iter()
            .map(|p| (&p.scope, p.item.span))
            .chain(resolved.rules.iter().map(|p| (&p.scope, p.item.span)))
        {
            let (scope, _) = p;
            for (k, &n) in scope.nodes.iter().enumerate() {
                report(self, n, &scope.names[k], scope.spans[k]);
            }
        }
        for t in 0..self.drafts.len() {
            for (k, &n) in self.drafts[t].axes.clone().iter().enumerate() {
                let name = format!("axis {k} of `{}`", self.drafts[t].name);
                let span = self.drafts[t].span;
                report(self, n, &name, span);
            }
        }
        for n in self.all_nodes(resolved) {
            let root = self.uf.find(n);
            if out.by_root.contains_key(&root) {
                continue;
            }
            let info = self.uf.info(root).clone();
            let extent = self.uf.known_extent(root).unwrap_or(0);
            let name = if info.name.is_empty() {
                format!("domain{}", out.list.len())
            } else {
                info.name.clone()
            };
            out.by_root.insert(root, out.list.len());
            let symbols = self.uf.ordered_symbols(root);
            let origin = match info.lowest {
                Some((low, _)) if info.from_numbers => low,
                _ => 0,
            };
            out.list
                .push(Domain::new(name, extent, symbols).with_origin(origin));
        }
        out
    }
}

impl Domains {
    /// The domain of a node's class.
    pub fn of(&self, ck: &mut Checker, node: Node) -> DomainId {
        let root = ck.uf.find(node);
        self.by_root.get(&root).copied().unwrap_or(0)
    }
}

/// Replaces symbols with element indices throughout one resolved statement.
pub struct SymbolFixer<'d> {
    /// The settled domains.
    pub domains: &'d Domains,
}

impl SymbolFixer<'_> {
    fn index(&self, ck: &mut Checker, ix: &mut Index) {
        if let Index::Symbol(name, node) = ix {
            let d = self.domains.of(ck, *node);
            let pos = self.domains.list[d].index_of(name).map_or(-1, |p| p as i64);
            *ix = Index::Const(pos);
        }
    }

    fn expr(&self, ck: &mut Checker, e: &mut Expr, vars: &[VarInfo]) {
        match e {
            Expr::Access(a) => {
                for (k, ix) in a.indices.iter_mut().enumerate() {
                    self.index(ck, ix);
                    self.numbered(ck, a.tensor, k, ix);
                    self.plain(ck, a.tensor, k, ix, vars);
                }
            }
            Expr::Call(_, args, _) => args.iter_mut().for_each(|a| self.expr(ck, a, vars)),
            Expr::Neg(x) => self.expr(ck, x, vars),
            Expr::Binary(_, a, b) => {
                self.expr(ck, a, vars);
                self.expr(ck, b, vars);
            }
            // An index used as a number is its element's number.
            Expr::IndexValue(v) => {
                let origin = vars
                    .get(*v)
                    .map_or(0, |i| self.domains.list[i.domain].origin);
                if origin != 0 {
                    *e = Expr::Binary(
                        BinOp::Add,
                        Box::new(Expr::IndexValue(*v)),
                        Box::new(Expr::Number(origin as f64)),
                    );
                }
            }
            Expr::Number(_) => {}
        }
    }

    /// An integer constant on an axis whose numbers start below 0 names the element of that
    /// number (`Temp[Oslo, -5]`).
    fn numbered(&self, ck: &mut Checker, tensor: usize, k: usize, ix: &mut Index) {
        let Index::Const(c) = ix else {
            return;
        };
        let Some(&axis) = ck.drafts.get(tensor).and_then(|d| d.axes.get(k)) else {
            return;
        };
        let domain = &self.domains.list[self.domains.of(ck, axis)];
        if domain.origin != 0 {
            *c = domain.element_of_int(*c).map_or(-1, |p| p as i64);
        }
    }

    /// A plain variable on a placed axis ([`crate::place`]) whose extent is the axis's own is
    /// an ordinary index again (a direct read or write, no gather or scatter).
    fn plain(&self, ck: &mut Checker, tensor: usize, k: usize, ix: &mut Index, vars: &[VarInfo]) {
        let Index::Expr(IndexExpr::Var(v)) = ix else {
            return;
        };
        let Some(&axis) = ck.drafts.get(tensor).and_then(|d| d.axes.get(k)) else {
            return;
        };
        let extent = self.domains.list[self.domains.of(ck, axis)].extent;
        if vars.get(*v).is_some_and(|info| info.extent == extent) {
            *ix = Index::Var(*v);
        }
    }

    fn term(&self, ck: &mut Checker, t: &mut Term) {
        if let Term::Symbol(k) = *t {
            let (constant, node) = ck.symbol_refs[k as usize].clone();
            let domain = &self.domains.list[self.domains.of(ck, node)];
            let element = match constant {
                RuleConst::Symbol(name) => domain.index_of(&name),
                RuleConst::Int(v) => domain.element_of_int(v),
            };
            *t = Term::Const(element.map_or(u32::MAX, |p| p as u32));
        }
    }

    /// Finishes an equation: symbols resolved and variables sized.
    pub fn equation(&self, ck: &mut Checker, mut p: Pending<Equation>) -> Equation {
        for (k, v) in p.item.vars.iter_mut().enumerate() {
            v.domain = self.domains.of(ck, p.scope.nodes[k]);
            v.extent = self.domains.list[v.domain].extent;
        }
        let vars = p.item.vars.clone();
        for (position, form) in &p.deferred {
            let extent = |v: usize| vars.get(v).map_or(0, |i| i.extent);
            let mut node = |n: Node| self.domains.list[self.domains.of(ck, n)].extent;
            let index = crate::place::concat_index(form, &extent, &mut node);
            if let Some(ix) = p.item.lhs_indices.get_mut(*position) {
                *ix = index;
            }
        }
        for (k, ix) in p.item.lhs_indices.iter_mut().enumerate() {
            self.index(ck, ix);
            self.numbered(ck, p.item.lhs, k, ix);
            self.plain(ck, p.item.lhs, k, ix, &vars);
        }
        self.expr(ck, &mut p.item.rhs, &vars);
        p.item
    }

    /// Finishes a rule.
    pub fn rule(&self, ck: &mut Checker, mut p: Pending<Rule>) -> Rule {
        for t in p.item.head_args.iter_mut() {
            self.term(ck, t);
        }
        for a in p.item.body.iter_mut() {
            for t in a.args.iter_mut() {
                self.term(ck, t);
            }
        }
        for c in p.item.comparisons.iter_mut() {
            self.term(ck, &mut c.lhs);
            self.term(ck, &mut c.rhs);
        }
        for (k, v) in p.item.vars.iter_mut().enumerate() {
            v.domain = self.domains.of(ck, p.scope.nodes[k]);
            v.extent = self.domains.list[v.domain].extent;
        }
        p.item
    }

    /// Each CSV column's values as element numbers of its axis's domain: integers are their
    /// own number (or a symbol's, in a symbolic domain), symbols are looked up once per
    /// distinct symbol; `None` where a value is not in the domain.
    fn element_numbers(
        &self,
        columns: &[tl_io::CsvColumn],
        axes: &[DomainId],
    ) -> Vec<Vec<Option<u32>>> {
        columns
            .iter()
            .zip(axes)
            .map(|(column, &dom)| {
                let domain = &self.domains.list[dom];
                match column {
                    tl_io::CsvColumn::Ints(values) => values
                        .iter()
                        .map(|&v| domain.element_of_int(v).map(|p| p as u32))
                        .collect(),
                    tl_io::CsvColumn::Symbols { ids, names } => {
                        let of_name: Vec<Option<u32>> = names
                            .iter()
                            .map(|n| domain.index_of(n).map(|p| p as u32))
                            .collect();
                        ids.iter()
                            .map(|&i| of_name.get(i as usize).copied().flatten())
                            .collect()
                    }
                }
            })
            .collect()
    }

    /// Builds the checked tensor declarations (facts and CSV rows become element indices).
    pub fn tensors(&self, ck: &mut Checker) -> Vec<TensorDecl> {
        let mut out = Vec::new();
        for t in 0..ck.drafts.len() {
            let d = ck.drafts[t].clone();
            let axes: Vec<DomainId> = d.axes.iter().map(|&n| self.domains.of(ck, n)).collect();
            // A tensor that only rule bodies read, and nothing defines, is an empty relation
            // (kept as tuples, not as cells of its domains).
            let empty_relation = d.in_rule_body
                && !d.read_as_tensor
                && matches!(d.source, Source::None)
                && d.equations.is_empty();
            let kind = if d.relation || empty_relation {
                TensorKind::Relation
            } else {
                TensorKind::Real
            };
            let derived = !d.equations.is_empty() || !d.rules.is_empty();
            let mut facts = Vec::new();
            for (args, _) in &d.facts {
                let tuple: Option<Vec<u32>> = args
                    .iter()
                    .zip(&axes)
                    .map(|(a, &dom)| match a {
                        FactArg::Symbol(s) => self.domains.list[dom].index_of(s).map(|p| p as u32),
                        FactArg::Int(v) => {
                            self.domains.list[dom].element_of_int(*v).map(|p| p as u32)
                        }
                    })
                    .collect();
                facts.extend(tuple);
            }
            let def = match &d.source {
                _ if derived => {
                    // Data of a tensor written at steps is its value before the loop.
                    let start =
                        ck.virtuals.contains_key(&d.name) && matches!(d.source, Source::Data(..));
                    if let Some(data) = source_span(&d.source).filter(|_| !start) {
                        // The later of the two definitions is the one reported as repeated.
                        let derived = d.derived_at.unwrap_or(d.span);
                        let key = |s: tl_syntax::Span| (s.file, s.start);
                        let (first, span) = if key(data) <= key(derived) {
                            (data, derived)
                        } else {
                            (derived, data)
                        };
                        ck.errors.push(CheckError::Redefined {
                            tensor: d.name.clone(),
                            detail: "by data and by equations or rules".into(),
                            span,
                            first,
                        });
                    }
                    Definition::Derived
                }
                Source::Data(h, _) => Definition::Data(h.clone()),
                Source::External(_) => Definition::External,
                Source::Param(init, _) => Definition::Param(init.clone()),
                Source::Rows(rows, _) => {
                    let numbers = self.element_numbers(&rows.columns, &axes);
                    let mut tuples = std::mem::take(&mut facts);
                    tuples.reserve(rows.rows);
                    for i in 0..rows.rows {
                        let tuple: Option<Vec<u32>> = numbers
                            .iter()
                            .map(|c| c.get(i).copied().flatten())
                            .collect();
                        tuples.extend(tuple);
                    }
                    Definition::Tuples(tuples)
                }
                Source::Weighted(keys, values, span) => {
                    let numbers = self.element_numbers(&keys.columns, &axes);
                    let shape: Vec<usize> =
                        axes.iter().map(|&a| self.domains.list[a].extent).collect();
                    match crate::weighted::dense(&d.name, &numbers, values, shape) {
                        Ok(t) => Definition::Data(t),
                        Err(message) => {
                            ck.errors.push(CheckError::Data {
                                message,
                                hint: Some(crate::weighted::HINT.into()),
                                span: *span,
                            });
                            Definition::Tuples(Vec::new())
                        }
                    }
                }
                Source::Tuples(tuples, _) => {
                    let mut all = std::mem::take(&mut facts);
                    all.extend(tuples.iter().cloned());
                    Definition::Tuples(all)
                }
                Source::None if d.relation || !d.facts.is_empty() => {
                    Definition::Tuples(std::mem::take(&mut facts))
                }
                Source::None if d.read_as_tensor => Definition::ImplicitParam,
                Source::None => Definition::Tuples(Vec::new()),
            };
            out.push(TensorDecl {
                name: d.name,
                span: d.span,
                kind,
                axes,
                def,
                facts,
                equations: Vec::new(),
                rules: Vec::new(),
            });
        }
        out
    }
}
