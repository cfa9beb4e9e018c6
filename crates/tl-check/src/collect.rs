//! Pass 1: find every tensor, its kind, rank and definition, and load its data.

use crate::data::{self, Loaded};
use crate::error::CheckError;
use crate::program::Init;
use crate::unify::{Node, Unifier};
use std::collections::{HashMap, HashSet};
use tl_core::HostTensor;
use tl_syntax::ast::{self, AccessStyle, DataSource, Expr, ExprKind, StmtKind};
use tl_syntax::{SourceMap, Span};

mod definitions;

/// Where a tensor's values come from, as far as pass 1 knows.
#[derive(Clone, Debug)]
pub enum Source {
    /// Nothing yet: derived (equations, rules, facts) or implicit.
    None,
    /// Dense data.
    Data(HostTensor, Span),
    /// Relation rows from a CSV file, column by column.
    Rows(tl_io::CsvColumns, Span),
    /// Relation tuples as element numbers, over axes whose extents are already fixed.
    Tuples(Vec<Vec<u32>>, Span),
    /// A weighted relation from a CSV file ([`crate::weighted`]): the key columns, and the
    /// value of each row.
    Weighted(tl_io::CsvColumns, Vec<f64>, Span),
    /// A declared parameter.
    Param(Init, Span),
    /// Dense data given in device memory ([`crate::inputs::Input::Device`]).
    External(Span),
}

/// A constant in a rule, resolved to an element once the domains are known.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleConst {
    /// A symbol.
    Symbol(String),
    /// A number (element `number - origin` of an integer domain).
    Int(i64),
}

/// A fact's argument before domains are settled.
#[derive(Clone, Debug)]
pub enum FactArg {
    /// A symbol.
    Symbol(String),
    /// An integer.
    Int(i64),
}

/// Everything pass 1 learns about one tensor.
#[derive(Clone, Debug)]
pub struct Draft {
    /// The name.
    pub name: String,
    /// First place it is seen.
    pub span: Span,
    /// Relation if facts, rules or a CSV define it.
    pub relation: bool,
    /// Used with brackets or bare somewhere (so a missing definition makes an implicit param).
    pub read_as_tensor: bool,
    /// Rank and where it was fixed.
    pub rank: Option<(usize, Span)>,
    /// One union-find node per axis, once the rank is known.
    pub axes: Vec<Node>,
    /// Data, rows or param.
    pub source: Source,
    /// Facts, with their statement spans.
    pub facts: Vec<(Vec<FactArg>, Span)>,
    /// Indices into the program's statements of equations defining it.
    pub equations: Vec<usize>,
    /// Indices of rules with it as head.
    pub rules: Vec<usize>,
    /// The first equation or rule defining it.
    pub derived_at: Option<Span>,
    /// The axes some equation places by arithmetic, a constant or `concat` ([`crate::place`]).
    pub placed: Vec<usize>,
    /// Read as an atom of a rule body (so, if nothing else defines it, an empty relation).
    pub in_rule_body: bool,
}

/// State shared by the checker's passes.
pub struct Checker<'a> {
    /// The program's files, for resolving data paths.
    pub sources: &'a SourceMap,
    /// Tensors by id.
    pub drafts: Vec<Draft>,
    /// Tensor ids by name.
    pub by_name: HashMap<String, usize>,
    /// Declared domains by name: their union-find node.
    pub domain_nodes: HashMap<String, Node>,
    /// The union-find.
    pub uf: Unifier,
    /// Tensors whose data is given from outside ([`crate::inputs`]): their data statements
    /// are skipped.
    pub given: HashSet<String>,
    /// Errors so far (checking goes on after an error to report several).
    pub errors: Vec<CheckError>,
    /// Constants written in rules, by the id a `Term::Symbol` holds: the constant and its axis
    /// node (its element is known once the domains are).
    pub symbol_refs: Vec<(RuleConst, Node)>,
    /// Safetensors files already read, by path, so a model's many `#name` reads load it once.
    pub safetensors: data::SafetensorsCache,
    /// The axis nodes of placed axes ([`crate::place`]), known once every rank is.
    pub placed_nodes: HashSet<Node>,
    /// Variables sized by the axis they index with arithmetic (class root to the axis's root).
    pub sized_by: HashMap<Node, Node>,
    /// Bare reads resolved before their tensor had a rank (read as scalars), with where.
    pub unranked_bare: Vec<(usize, Span)>,
    /// Tensors that an equation writes at a virtual index (`S[i, *t+1] = …`), by name, with
    /// the number of their loop.
    pub virtuals: HashMap<String, usize>,
    /// The node of each loop's number of steps, by loop number.
    pub loop_step_nodes: HashMap<usize, Node>,
    /// While the right-hand side of a step equation is resolved: its step variable and name.
    pub step: Option<(usize, String)>,
    /// Tensors read from a CSV file with a value column, by name: the name of the relation of
    /// their defined cells ([`crate::weighted`]).
    pub weighted: HashMap<String, String>,
}

impl<'a> Checker<'a> {
    /// A checker over a program's files.
    pub fn new(sources: &'a SourceMap) -> Self {
        Checker {
            sources,
            drafts: Vec::new(),
            by_name: HashMap::new(),
            domain_nodes: HashMap::new(),
            uf: Unifier::default(),
            errors: Vec::new(),
            symbol_refs: Vec::new(),
            given: HashSet::new(),
            safetensors: data::SafetensorsCache::default(),
            placed_nodes: HashSet::new(),
            sized_by: HashMap::new(),
            unranked_bare: Vec::new(),
            virtuals: HashMap::new(),
            loop_step_nodes: HashMap::new(),
            step: None,
            weighted: HashMap::new(),
        }
    }

    /// The id of the tensor with this name, creating it on first sight.
    pub fn tensor(&mut self, name: &str, span: Span) -> usize {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        self.drafts.push(Draft {
            name: name.to_string(),
            span,
            relation: false,
            read_as_tensor: false,
            rank: None,
            axes: Vec::new(),
            source: Source::None,
            facts: Vec::new(),
            equations: Vec::new(),
            rules: Vec::new(),
            derived_at: None,
            placed: Vec::new(),
            in_rule_body: false,
        });
        self.by_name.insert(name.to_string(), self.drafts.len() - 1);
        self.drafts.len() - 1
    }

    /// Fixes a tensor's rank (creating its axis nodes), or checks it against the known one.
    pub fn set_rank(&mut self, id: usize, rank: usize, span: Span) -> bool {
        match self.drafts[id].rank {
            Some((r, first)) if r != rank => {
                self.errors.push(CheckError::RankMismatch {
                    tensor: self.drafts[id].name.clone(),
                    expected: r,
                    found: rank,
                    span,
                    first,
                });
                false
            }
            Some(_) => true,
            None => {
                self.drafts[id].rank = Some((rank, span));
                let name = self.drafts[id].name.clone();
                self.drafts[id].axes = (0..rank)
                    .map(|k| {
                        self.uf
                            .node(format!("axis {k} of `{name}`"), format!("{name}.{k}"))
                    })
                    .collect();
                true
            }
        }
    }

    pub(crate) fn set_source(&mut self, id: usize, source: Source, span: Span) {
        if let Some(first) = source_span(&self.drafts[id].source) {
            self.errors.push(CheckError::Redefined {
                tensor: self.drafts[id].name.clone(),
                detail: "by data or `param` more than once".into(),
                span,
                first,
            });
            return;
        }
        self.drafts[id].source = source;
    }

    /// Pass 1 over all statements.
    pub fn collect(&mut self, program: &ast::Program) {
        self.virtuals = crate::virtual_index::virtual_tensors(program);
        for (k, stmt) in program.stmts.iter().enumerate() {
            if let Err(e) = self.collect_stmt(k, stmt) {
                self.errors.push(e);
            }
        }
    }

    fn collect_stmt(&mut self, k: usize, stmt: &ast::Stmt) -> Result<(), CheckError> {
        match &stmt.kind {
            StmtKind::Fact(atom) => {
                let id = self.atom(atom);
                self.drafts[id].relation = true;
                let args = atom
                    .args
                    .iter()
                    .map(|a| match a {
                        ast::IndexArg::Symbol { name, .. } => Ok(FactArg::Symbol(name.clone())),
                        // Element numbers are 32-bit: the numbers run from -2^31 to 2^32 - 2.
                        ast::IndexArg::Expr(ast::IndexExpr::Int(v, span))
                            if *v < i64::from(i32::MIN) || *v >= i64::from(u32::MAX) =>
                        {
                            Err(CheckError::Misplaced {
                                what: format!(
                                    "the fact argument {v} is outside the numbers a relation holds ({} to {})",
                                    i32::MIN,
                                    u32::MAX - 1
                                ),
                                hint:
                                    "integer arguments are 32-bit; use a symbol for other values"
                                        .into(),
                                span: *span,
                            })
                        }
                        ast::IndexArg::Expr(ast::IndexExpr::Int(v, _)) => Ok(FactArg::Int(*v)),
                        other => Err(CheckError::Misplaced {
                            what: "a fact's arguments must be constants".into(),
                            span: other.span(),
                            hint: "write a symbol such as `Alice`, or an integer; a rule uses `<-`"
                                .into(),
                        }),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let axes = self.drafts[id].axes.clone();
                for ((arg, syntax), &axis) in args.iter().zip(&atom.args).zip(&axes) {
                    match arg {
                        FactArg::Symbol(s) => self.uf.add_symbol(axis, s, syntax.span())?,
                        FactArg::Int(v) => self.uf.add_number(axis, *v, syntax.span()),
                    }
                }
                self.drafts[id].facts.push((args, stmt.span));
            }
            StmtKind::Rule(rule) => {
                let head = self.atom(&rule.head);
                self.drafts[head].relation = true;
                self.drafts[head].rules.push(k);
                self.drafts[head].derived_at.get_or_insert(stmt.span);
                for item in &rule.body {
                    if let ast::BodyItem::Atom { atom, .. } = item {
                        let id = self.atom(atom);
                        self.drafts[id].in_rule_body = true;
                    }
                }
            }
            StmtKind::Equation(eq) => {
                let id = self.tensor(&eq.lhs.name.name, eq.lhs.name.span);
                if let Some(ix) = &eq.lhs.indices {
                    let rank = ix.iter().filter(|x| !is_virtual(&x.arg)).count();
                    self.set_rank(id, rank, eq.lhs.span);
                }
                self.drafts[id].equations.push(k);
                self.drafts[id].derived_at.get_or_insert(stmt.span);
                for p in crate::place::placed_positions(eq) {
                    if !self.drafts[id].placed.contains(&p) {
                        self.drafts[id].placed.push(p);
                    }
                }
                self.note_expr(&eq.rhs);
            }
            StmtKind::Data(def) => self.data(def)?,
            StmtKind::Param(p) => {
                let id = self.tensor(&p.name.name, p.name.span);
                self.set_rank(id, p.dims.len(), stmt.span);
                self.drafts[id].read_as_tensor = true;
                let init = match &p.init {
                    None => Init::Xavier,
                    Some(ast::Init::Constant(c, _)) => Init::Constant(*c),
                    Some(ast::Init::Random(call)) => init_call(call)?,
                };
                self.set_source(id, Source::Param(init, stmt.span), stmt.span);
                for (axis, dim) in p.dims.iter().enumerate() {
                    let node = self.drafts[id].axes.get(axis).copied();
                    match (dim, node) {
                        (ast::DimSpec::Size(n, span), Some(node)) => {
                            self.uf.set_extent(node, *n as usize, *span)?
                        }
                        (ast::DimSpec::Domain(d), Some(node)) => {
                            let dn = self.domain_node(d)?;
                            self.uf.union(node, dn)?;
                        }
                        _ => {}
                    }
                }
            }
            StmtKind::Const(c) => {
                let id = self.tensor(&c.name.name, c.name.span);
                self.set_rank(id, c.value.shape.len(), stmt.span);
                self.drafts[id].read_as_tensor = true;
                self.set_source(
                    id,
                    Source::Data(data::literal(&c.value), stmt.span),
                    stmt.span,
                );
                self.fix_shape(id, &c.value.shape, stmt.span)?;
            }
            StmtKind::Domain(d) => {
                let node = self
                    .uf
                    .node(format!("domain `{}`", d.name.name), d.name.name.clone());
                match &d.members {
                    ast::DomainMembers::Symbols(syms) => {
                        let names: Vec<String> = syms.iter().map(|(s, _)| s.clone()).collect();
                        self.uf.close(node, &d.name.name, &names, d.name.span);
                    }
                    ast::DomainMembers::Range(n, span) => {
                        self.uf.set_extent(node, *n as usize, *span)?
                    }
                }
                if self
                    .domain_nodes
                    .insert(d.name.name.clone(), node)
                    .is_some()
                {
                    return Err(CheckError::Misplaced {
                        what: format!("domain `{}` is declared twice", d.name.name),
                        span: d.name.span,
                        hint: "keep one declaration".into(),
                    });
                }
            }
            StmtKind::Query(q) => self.note_access(&q.access),
            StmtKind::Write(w) => {
                for t in &w.tensors {
                    self.tensor(&t.name, t.span);
                }
            }
            StmtKind::Minimize(m) => {
                self.tensor(&m.loss.name, m.loss.span);
            }
            StmtKind::Import(_) => {}
        }
        Ok(())
    }

    /// Records a constant written in a rule and returns the id a `Term::Symbol` refers to it
    /// by.
    pub fn symbol_ref(&mut self, constant: RuleConst, axis: Node) -> u32 {
        self.symbol_refs.push((constant, axis));
        (self.symbol_refs.len() - 1) as u32
    }

    /// The union-find node of a declared domain.
    pub fn domain_node(&mut self, name: &ast::Ident) -> Result<Node, CheckError> {
        self.domain_nodes
            .get(&name.name)
            .copied()
            .ok_or_else(|| CheckError::UnknownName {
                kind: "domain",
                name: name.name.clone(),
                span: name.span,
                hint: "declare it first, e.g. `domain Person = {Alice, Bob}` or `domain N = 10`"
                    .into(),
            })
    }

    fn atom(&mut self, atom: &ast::Atom) -> usize {
        let id = self.tensor(&atom.name.name, atom.name.span);
        self.set_rank(id, atom.args.len(), atom.span);
        id
    }

    fn note_access(&mut self, a: &ast::Access) {
        let id = self.tensor(&a.name.name, a.name.span);
        if a.args.iter().any(is_virtual) {
            // A read at a step is checked against the tensor's rank when it is resolved;
            // a `*` where it means nothing is an error then, not a rank to learn from.
            self.drafts[id].read_as_tensor = true;
            return;
        }
        match a.style {
            AccessStyle::Bare => self.drafts[id].read_as_tensor = true,
            AccessStyle::Bracket => {
                self.drafts[id].read_as_tensor = true;
                let rank = a.args.len() + self.implicit_axes(a);
                self.set_rank(id, rank, a.span);
            }
            AccessStyle::Paren => {
                self.set_rank(id, a.args.len(), a.span);
            }
        }
    }

    fn note_expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Number(_) | ExprKind::Index(_) => {}
            ExprKind::Access(a) => self.note_access(a),
            ExprKind::Call { args, .. } => args.iter().for_each(|a| self.note_expr(a)),
            ExprKind::Neg(x) => self.note_expr(x),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.note_expr(lhs);
                self.note_expr(rhs);
            }
        }
    }

    pub(crate) fn fix_shape(
        &mut self,
        id: usize,
        shape: &[usize],
        span: Span,
    ) -> Result<(), CheckError> {
        for (k, &n) in shape.iter().enumerate() {
            if let Some(&node) = self.drafts[id].axes.get(k) {
                self.uf.set_extent(node, n, span)?;
            }
        }
        Ok(())
    }

    /// Adds the values of CSV columns to the domains of their axes: an integer column needs
    /// an extent past its largest value, a symbol column adds its symbols.
    pub(crate) fn column_domains(
        &mut self,
        tensor: &str,
        axes: &[Node],
        columns: &[tl_io::CsvColumn],
        span: Span,
    ) -> Result<(), CheckError> {
        for (position, (column, &axis)) in columns.iter().zip(axes).enumerate() {
            match column {
                tl_io::CsvColumn::Ints(values) => {
                    let (Some(&min), Some(&max)) = (values.iter().min(), values.iter().max())
                    else {
                        continue;
                    };
                    // Element numbers are 32-bit: the numbers run from -2^31 to 2^32 - 2.
                    if min < i64::from(i32::MIN) {
                        return Err(CheckError::Data {
                            message: format!(
                                "`{tensor}` has the integer {min} in column {}, below the smallest number a relation holds, {}",
                                position + 1,
                                i32::MIN
                            ),
                            hint: Some("integer columns index axes; renumber the values, or quote them so they read as symbols".into()),
                            span,
                        });
                    }
                    if max >= i64::from(u32::MAX) {
                        return Err(CheckError::Data {
                            message: format!(
                                "`{tensor}` has the integer {max} in column {}, past the largest element number, {}",
                                position + 1,
                                u32::MAX - 1
                            ),
                            hint: Some("integer columns index axes; renumber the values, or quote them so they read as symbols".into()),
                            span,
                        });
                    }
                    self.uf.add_number(axis, max, span);
                    self.uf.add_number(axis, min, span);
                }
                tl_io::CsvColumn::Symbols { names, .. } => {
                    for name in names {
                        self.uf.add_symbol(axis, name, span)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether an index argument is a virtual index (`*t`).
pub fn is_virtual(arg: &ast::IndexArg) -> bool {
    matches!(arg, ast::IndexArg::Virtual { .. })
}

impl Checker<'_> {
    /// How many whole trailing axes a read of slices only leaves implicit, as NumPy does
    /// (`X = Img[0:256]` on a rank-3 `Img` is `Img[0:256, :, :]`): the tensor's known rank
    /// less the slices given; 0 for any other read.
    pub(crate) fn implicit_axes(&self, a: &ast::Access) -> usize {
        let slices_only = matches!(a.style, ast::AccessStyle::Bracket)
            && !a.args.is_empty()
            && a.args
                .iter()
                .all(|x| matches!(x, ast::IndexArg::Slice { .. }));
        let rank = self
            .by_name
            .get(&a.name.name)
            .and_then(|&t| self.drafts[t].rank)
            .map_or(0, |(r, _)| r);
        if slices_only {
            rank.saturating_sub(a.args.len())
        } else {
            0
        }
    }
}

/// Where a tensor's data or `param` statement is, if it has one.
pub(crate) fn source_span(s: &Source) -> Option<Span> {
    match s {
        Source::None => None,
        Source::Data(_, span)
        | Source::Rows(_, span)
        | Source::Weighted(_, _, span)
        | Source::Tuples(_, span)
        | Source::Param(_, span)
        | Source::External(span) => Some(*span),
    }
}

fn init_call(call: &ast::Call) -> Result<Init, CheckError> {
    let name = &call.name.name;
    let nums: Vec<f64> = call
        .args
        .iter()
        .enumerate()
        .map(|(k, a)| match &a.value {
            ast::ArgValue::Number(x) => Ok(*x),
            _ => Err(CheckError::BadOption {
                what: format!("argument {} of `{name}`", k + 1),
                expected: "a number",
                example:
                    "numbers: `normal(mean, std)` or `uniform(low, high)`, e.g. `normal(0, 0.1)`"
                        .into(),
                span: a.span,
            }),
        })
        .collect::<Result<_, _>>()?;
    let two = |default: (f64, f64)| -> Result<(f64, f64), CheckError> {
        match nums.as_slice() {
            [] => Ok(default),
            [a] => Ok((*a, default.1)),
            [a, b] => Ok((*a, *b)),
            _ => Err(CheckError::Arity {
                func: call.name.name.clone(),
                expected: "at most two numbers",
                found: nums.len(),
                span: call.span,
            }),
        }
    };
    match call.name.name.as_str() {
        "normal" => two((0.0, 1.0)).map(|(m, s)| Init::Normal(m, s)),
        "uniform" => two((0.0, 1.0)).map(|(a, b)| Init::Uniform(a, b)),
        "xavier" if nums.is_empty() => Ok(Init::Xavier),
        "xavier" => Err(CheckError::Arity { func: "xavier".into(), expected: "no arguments", found: nums.len(), span: call.span }),
        other => Err(CheckError::UnknownName {
            kind: "initialiser",
            name: other.into(),
            span: call.name.span,
            hint: "the initialisers are normal(mean, std), uniform(low, high), xavier, or `= constant`".into(),
        }),
    }
}
