//! Weighted relations: a CSV file with one column more than its tensor has indices,
//! `W[x, y] = "edges.csv"` over rows `a,b,2.5`, reads the last column as the value of the
//! cell its other columns name. Cells no row names are *undefined*.
//!
//! What an undefined cell means depends on how it is combined (docs/language.md, "Weighted
//! relations from CSV"):
//! - in a sum, and when the tensor is printed or written, it is 0, like every element never
//!   defined;
//! - in an equation whose left-hand side combines by `min=` or `max=` (its `=` equations
//!   included), a term counts only where each weighted tensor it reads has an entry, so a
//!   missing edge is no path rather than an edge of weight 0. This is done by adding
//!   `- log(W.defined[…])` (for `min`) or `+ log(W.defined[…])` (for `max`) to the right-hand
//!   side: 0 where the cell is defined, so defined terms are unchanged exactly, and the
//!   operator's identity (+∞ or −∞) where it is not;
//! - as a relation (`W(x, y)` in a rule body, or read with parentheses in an equation), it is
//!   the relation of defined cells, `W.defined`.
//!
//! The checker keeps the values dense (a tensor over the key columns' domains) beside the
//! relation `W.defined`, a sparse set of tuples.

use crate::collect::{Checker, Source};
use crate::error::CheckError;
use std::collections::{HashMap, HashSet};
use tl_core::{DType, HostTensor};
use tl_syntax::ast::{self, AccessStyle, BinOp, Expr, ExprKind, IndexArg, IndexExpr, StmtKind};
use tl_syntax::Span;

/// The hint of errors in weighted files.
pub const HINT: &str = "a weighted CSV file has one key column per index and the value last";

/// Most cells the dense values of a weighted relation may have (2^31).
const MAX_CELLS: usize = 1 << 31;

/// The name of the relation of a weighted tensor's defined cells.
pub fn support_name(tensor: &str) -> String {
    format!("{tensor}.defined")
}

impl Checker<'_> {
    /// Pass 1 for `W[x, y] = "file.csv"` whose file has one column more than `W` has indices:
    /// the key columns size `W`'s axes, the last column holds the values, and the relation
    /// `W.defined` of the rows' keys shares `W`'s axes.
    pub(crate) fn weighted_data(
        &mut self,
        id: usize,
        def: &ast::DataDef,
        mut rows: tl_io::CsvColumns,
        span: Span,
    ) -> Result<(), CheckError> {
        let name = def.lhs.name.name.clone();
        let Some(column) = rows.columns.pop() else {
            return Ok(());
        };
        let position = rows.columns.len() + 1;
        let values = match values_of(&name, column.clone(), position, 1, span) {
            Err(_) if is_header(&column) => {
                drop_first_row(&mut rows);
                let mut column = column;
                drop_first_row_of(&mut column);
                values_of(&name, column, position, 2, span)?
            }
            other => other?,
        };
        let support = self.tensor(&support_name(&name), def.lhs.name.span);
        self.drafts[support].relation = true;
        self.drafts[id].read_as_tensor = true;
        let rank = rows.columns.len();
        if self.set_rank(id, rank, span) && self.set_rank(support, rank, span) {
            let axes = self.drafts[id].axes.clone();
            let shared = self.drafts[support].axes.clone();
            for (&a, &b) in axes.iter().zip(&shared) {
                self.uf.union(a, b)?;
            }
            self.column_domains(&name, &axes, &rows.columns, span)?;
        }
        self.weighted.insert(name, support_name(&def.lhs.name.name));
        self.drafts[support].source = Source::Rows(rows.clone(), span);
        self.drafts[id].source = Source::Weighted(rows, values, span);
        Ok(())
    }
}

/// The value column as numbers: integers as they are, other fields parsed as reals
/// (`2.5`, `-1`, `1e-3`, `inf`); errors count rows from `first` (2 after a header).
fn values_of(
    tensor: &str,
    column: tl_io::CsvColumn,
    position: usize,
    first: usize,
    span: Span,
) -> Result<Vec<f64>, CheckError> {
    match column {
        tl_io::CsvColumn::Ints(v) => Ok(v.into_iter().map(|x| x as f64).collect()),
        tl_io::CsvColumn::Symbols { ids, names } => {
            let parsed: Vec<Option<f64>> =
                names.iter().map(|n| n.trim().parse::<f64>().ok()).collect();
            ids.iter()
                .enumerate()
                .map(|(row, &k)| {
                    parsed.get(k as usize).copied().flatten().ok_or_else(|| {
                        let text = names.get(k as usize).map_or("", String::as_str);
                        CheckError::Data {
                            message: format!(
                                "`{tensor}` reads column {position} as its values, but row {} holds `{text}`, not a number",
                                row + first
                            ),
                            hint: Some(HINT.into()),
                            span,
                        }
                    })
                })
                .collect()
        }
    }
}

/// Whether the first row is a header: its value is not a number, and it is not the only row.
fn is_header(column: &tl_io::CsvColumn) -> bool {
    match column {
        tl_io::CsvColumn::Ints(_) => false,
        tl_io::CsvColumn::Symbols { ids, names } => {
            ids.len() > 1
                && ids
                    .first()
                    .and_then(|&k| names.get(k as usize))
                    .is_some_and(|n| n.trim().parse::<f64>().is_err())
        }
    }
}

/// Removes the first row (a header) from every column.
fn drop_first_row(rows: &mut tl_io::CsvColumns) {
    rows.rows = rows.rows.saturating_sub(1);
    rows.columns.iter_mut().for_each(drop_first_row_of);
}

/// Removes the first row of one column; a symbol only the header used is forgotten, so it
/// joins no domain.
fn drop_first_row_of(column: &mut tl_io::CsvColumn) {
    match column {
        tl_io::CsvColumn::Ints(v) => {
            if !v.is_empty() {
                v.remove(0);
            }
        }
        tl_io::CsvColumn::Symbols { ids, names } => {
            if ids.is_empty() {
                return;
            }
            ids.remove(0);
            let mut renumber: Vec<Option<u32>> = vec![None; names.len()];
            let mut kept: Vec<String> = Vec::new();
            for id in ids.iter_mut() {
                let k = *id as usize;
                if let Some(slot) = renumber.get_mut(k) {
                    *id = *slot.get_or_insert_with(|| {
                        kept.push(names.get(k).cloned().unwrap_or_default());
                        (kept.len() - 1) as u32
                    });
                }
            }
            *names = kept;
        }
    }
}

/// The dense values of a weighted relation (0 where no row is), from each row's element
/// numbers; an error for a key given two different values or values too many to hold.
pub fn dense(
    tensor: &str,
    keys: &[Vec<Option<u32>>],
    values: &[f64],
    shape: Vec<usize>,
) -> Result<HostTensor, String> {
    let cells = shape
        .iter()
        .try_fold(1usize, |n, &e| n.checked_mul(e))
        .filter(|&n| n <= MAX_CELLS)
        .ok_or_else(|| {
            format!("the values of `{tensor}` over its domains {shape:?} would take more than 2^31 cells")
        })?;
    let mut data = vec![0.0f64; cells];
    let mut seen = vec![false; cells];
    for (row, &value) in values.iter().enumerate() {
        let mut at = 0usize;
        for (column, &extent) in keys.iter().zip(&shape) {
            // Every key is in its domain: the domains were built from these columns.
            let Some(Some(k)) = column.get(row) else {
                return Err(format!(
                    "row {} of `{tensor}` has a key outside its domain",
                    row + 1
                ));
            };
            at = at * extent + *k as usize;
        }
        if seen[at] && data[at].to_bits() != value.to_bits() {
            return Err(format!(
                "row {} of `{tensor}` gives a cell the value {value}, which an earlier row gave {}",
                row + 1,
                data[at]
            ));
        }
        seen[at] = true;
        data[at] = value;
    }
    Ok(HostTensor::from_f64(shape, data, DType::F64))
}

/// How the equations of a left-hand side combine, where it matters here.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Extreme {
    Min,
    Max,
}

/// The program with weighted tensors read as described in the module documentation, or
/// `None` when it reads none.
pub fn rewrite(program: &ast::Program, weighted: &HashMap<String, String>) -> Option<ast::Program> {
    if weighted.is_empty() {
        return None;
    }
    let mut combine: HashMap<&str, Extreme> = HashMap::new();
    for stmt in &program.stmts {
        if let StmtKind::Equation(eq) = &stmt.kind {
            let e = match eq.projection {
                ast::Projection::Min => Extreme::Min,
                ast::Projection::Max => Extreme::Max,
                _ => continue,
            };
            combine.insert(eq.lhs.name.name.as_str(), e);
        }
    }
    let mut out = program.clone();
    for stmt in &mut out.stmts {
        match &mut stmt.kind {
            StmtKind::Rule(rule) => {
                for item in &mut rule.body {
                    if let ast::BodyItem::Atom { atom, .. } = item {
                        if let Some(s) = weighted.get(&atom.name.name) {
                            atom.name.name = s.clone();
                        }
                    }
                }
            }
            StmtKind::Equation(eq) => {
                relations(&mut eq.rhs, weighted);
                if let Some(&e) = combine.get(eq.lhs.name.name.as_str()) {
                    penalise(eq, e, weighted);
                }
            }
            _ => {}
        }
    }
    Some(out)
}

/// Reads with parentheses of a weighted tensor read its defined cells.
fn relations(e: &mut Expr, weighted: &HashMap<String, String>) {
    match &mut e.kind {
        ExprKind::Access(a) if a.style == AccessStyle::Paren => {
            if let Some(s) = weighted.get(&a.name.name) {
                a.name.name = s.clone();
            }
        }
        ExprKind::Call { args, .. } => args.iter_mut().for_each(|a| relations(a, weighted)),
        ExprKind::Neg(x) => relations(x, weighted),
        ExprKind::Binary { lhs, rhs, .. } => {
            relations(lhs, weighted);
            relations(rhs, weighted);
        }
        _ => {}
    }
}

/// Adds `∓ log(W.defined[…])` for each weighted read of a min- or max-combined equation
/// whose indices all live at the outermost level (on the left, or in a factor of the
/// outermost sum), so that adding the term moves no summation.
fn penalise(eq: &mut ast::Equation, e: Extreme, weighted: &HashMap<String, String>) {
    let mut outer: HashSet<String> = HashSet::new();
    for ix in eq.lhs.indices.iter().flatten() {
        vars_of(&ix.arg, &mut outer);
    }
    top_level_vars(&eq.rhs, &mut outer);
    let mut reads = Vec::new();
    weighted_reads(&eq.rhs, weighted, &mut reads);
    for (access, support) in reads {
        let mut vars = HashSet::new();
        access.args.iter().for_each(|a| vars_of(a, &mut vars));
        if !vars.is_subset(&outer) {
            continue;
        }
        let span = access.span;
        let defined = Expr {
            kind: ExprKind::Access(ast::Access {
                name: ast::Ident {
                    name: support,
                    span: access.name.span,
                },
                style: access.style,
                args: access.args.clone(),
                span,
            }),
            span,
        };
        let log = Expr {
            kind: ExprKind::Call {
                func: ast::Ident {
                    name: "log".into(),
                    span,
                },
                args: vec![defined],
            },
            span,
        };
        let rhs = std::mem::replace(
            &mut eq.rhs,
            Expr {
                kind: ExprKind::Number(0.0),
                span,
            },
        );
        let op = match e {
            Extreme::Min => BinOp::Sub,
            Extreme::Max => BinOp::Add,
        };
        eq.rhs = Expr {
            span: rhs.span,
            kind: ExprKind::Binary {
                op,
                lhs: Box::new(rhs),
                rhs: Box::new(log),
            },
        };
    }
}

/// Every bracketed or bare read of a weighted tensor, with its relation's name.
fn weighted_reads(
    e: &Expr,
    weighted: &HashMap<String, String>,
    out: &mut Vec<(ast::Access, String)>,
) {
    match &e.kind {
        ExprKind::Access(a) if a.style != AccessStyle::Paren => {
            if let Some(s) = weighted.get(&a.name.name) {
                out.push((a.clone(), s.clone()));
            }
        }
        ExprKind::Call { args, .. } => args.iter().for_each(|a| weighted_reads(a, weighted, out)),
        ExprKind::Neg(x) => weighted_reads(x, weighted, out),
        ExprKind::Binary { lhs, rhs, .. } => {
            weighted_reads(lhs, weighted, out);
            weighted_reads(rhs, weighted, out);
        }
        _ => {}
    }
}

/// Index variables of the factors of the outermost sum: through `+`, `-`, `*` and `/`, but
/// not into function arguments or powers, which are sums of their own.
fn top_level_vars(e: &Expr, out: &mut HashSet<String>) {
    match &e.kind {
        ExprKind::Access(a) => a.args.iter().for_each(|x| vars_of(x, out)),
        ExprKind::Index(v) => {
            out.insert(v.name.clone());
        }
        ExprKind::Neg(x) => top_level_vars(x, out),
        ExprKind::Binary {
            op: BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div,
            lhs,
            rhs,
        } => {
            top_level_vars(lhs, out);
            top_level_vars(rhs, out);
        }
        _ => {}
    }
}

/// The index variables an argument names.
fn vars_of(arg: &IndexArg, out: &mut HashSet<String>) {
    fn walk(e: &IndexExpr, out: &mut HashSet<String>) {
        match e {
            IndexExpr::Var(v) => {
                out.insert(v.name.clone());
            }
            IndexExpr::Int(..) => {}
            IndexExpr::Binary { lhs, rhs, .. } => {
                walk(lhs, out);
                walk(rhs, out);
            }
        }
    }
    match arg {
        IndexArg::Expr(e) => walk(e, out),
        IndexArg::Virtual { var, .. } => {
            out.insert(var.name.clone());
        }
        IndexArg::Slice { .. } | IndexArg::Symbol { .. } => {}
    }
}
