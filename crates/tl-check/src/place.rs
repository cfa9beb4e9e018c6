//! Placement: left-hand sides that put elements at computed positions (`C[i + 3] = B[i]`,
//! `X[0, p] = E[p]`, `concat`).
//!
//! An axis that some equation indexes on the left with anything but a plain variable is a
//! *placed axis*. Its extent is not joined with the variables that index it: it is the smallest
//! that holds every placement of every equation of the tensor, unless an annotation or a domain
//! on the left fixes it, in which case a placement outside it is an error. Reads of a placed
//! axis are soft, like reads with index arithmetic: the reading variable takes its extent from
//! its other uses, and cells past the axis read 0. This is what lets a recurrence such as
//! `X[l+1] = Y[l]` hold one more row than `Y`, and `C[i] = U[i]`, `C[i+3] = B[i]` hold both.
//!
//! `concat` is sugar for placement: one argument flattens the argument's indices that are not
//! on the left, row-major, into the one new left index; several arguments are laid one after
//! another along it. Both become placements whose offsets are known once extents are settled.

use crate::collect::Checker;
use crate::error::CheckError;
use crate::program::{Index, IndexExpr, VarId};
use crate::unify::Node;
use std::collections::HashMap;
use tl_syntax::ast::{self, ExprKind, IndexArg};
use tl_syntax::Span;

/// Where one equation places its elements along one placed axis.
#[derive(Clone, Debug)]
pub enum PlaceForm {
    /// An index expression over the equation's variables.
    Expr(IndexExpr),
    /// `concat` with one argument: the row-major position of these variables.
    Flatten(Vec<VarId>),
    /// `concat` with several arguments: the variable, shifted past the extents of the earlier
    /// arguments' new indices (their nodes).
    Shift {
        /// The argument's new index.
        var: VarId,
        /// The new indices of the arguments before it.
        before: Vec<Node>,
    },
}

/// One placement, waiting for its variables' extents.
#[derive(Clone, Debug)]
pub struct PlaceHint {
    /// The placed axis's node.
    pub axis: Node,
    /// The tensor and the axis's position, for messages.
    pub tensor: String,
    /// The axis's position in the tensor.
    pub position: usize,
    /// Where the elements go.
    pub form: PlaceForm,
    /// The nodes of the equation's variables.
    pub vars: Vec<Node>,
    /// The left-hand index.
    pub span: Span,
}

/// What `concat` asks of one left-hand position, resolved by name before the equation's
/// variables exist.
#[derive(Clone, Debug)]
pub enum ConcatPart {
    /// Flatten these right-hand indices (in order) into the position.
    Flatten(Vec<String>),
    /// Lay this argument's new index after the earlier arguments' new indices.
    Shift {
        /// The argument's index not on the left.
        name: String,
        /// The earlier arguments' new indices.
        before: Vec<Node>,
    },
}

/// The left-hand positions an equation places by arithmetic, a constant or `concat`.
pub fn placed_positions(eq: &ast::Equation) -> Vec<usize> {
    let Some(indices) = &eq.lhs.indices else {
        return Vec::new();
    };
    let mut out: Vec<usize> = indices
        .iter()
        .filter(|ix| !matches!(ix.arg, IndexArg::Virtual { .. }))
        .enumerate()
        .filter(|(_, ix)| !matches!(ix.arg, IndexArg::Expr(ast::IndexExpr::Var(_))))
        .filter(|(_, ix)| {
            !matches!(
                ix.arg,
                IndexArg::Slice { .. } | IndexArg::Symbol { .. } | IndexArg::Virtual { .. }
            )
        })
        .map(|(k, _)| k)
        .collect();
    if let Some(args) = concat_args(&eq.rhs) {
        if let Ok(k) = concat_position(eq, args) {
            out.push(k);
        }
    }
    out
}

/// The arguments of a right-hand side that is a `concat` call.
pub fn concat_args(rhs: &ast::Expr) -> Option<&[ast::Expr]> {
    match &rhs.kind {
        ExprKind::Call { func, args } if func.name == "concat" => Some(args),
        _ => None,
    }
}

/// The one left-hand index that no argument of `concat` uses: where the arguments go.
pub fn concat_position(eq: &ast::Equation, args: &[ast::Expr]) -> Result<usize, CheckError> {
    let on_right: Vec<String> = args.iter().flat_map(index_names).collect();
    let indices = eq.lhs.indices.as_deref().unwrap_or(&[]);
    let fresh: Vec<usize> = indices
        .iter()
        .filter(|ix| !matches!(ix.arg, IndexArg::Virtual { .. }))
        .enumerate()
        .filter(|(_, ix)| match &ix.arg {
            IndexArg::Expr(ast::IndexExpr::Var(id)) => !on_right.contains(&id.name),
            _ => false,
        })
        .map(|(k, _)| k)
        .collect();
    match fresh.as_slice() {
        [k] => Ok(*k),
        _ => Err(CheckError::Misplaced {
            what: format!(
                "`concat` needs exactly one left-hand index that its arguments do not use; this left-hand side has {}",
                fresh.len()
            ),
            span: eq.lhs.span,
            hint: "write the new axis once on the left: `Merge[b, p, m] = concat(Attn[b, h, p, v])` or `C[k] = concat(A[i], B[j])`".into(),
        }),
    }
}

/// Adds the variables an index expression names to `out`, in order, without repeats.
pub fn index_expr_names(e: &ast::IndexExpr, out: &mut Vec<String>) {
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match e {
            ast::IndexExpr::Var(id) => {
                if !out.contains(&id.name) {
                    out.push(id.name.clone());
                }
            }
            ast::IndexExpr::Int(..) => {}
            ast::IndexExpr::Binary { lhs, rhs, .. } => {
                stack.push(rhs);
                stack.push(lhs);
            }
        }
    }
}

/// Every index variable an expression names, in order of first appearance.
pub fn index_names(e: &ast::Expr) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match &e.kind {
            ExprKind::Number(_) => {}
            ExprKind::Index(id) => {
                if !out.contains(&id.name) {
                    out.push(id.name.clone());
                }
            }
            ExprKind::Access(a) => {
                for arg in &a.args {
                    if let IndexArg::Expr(x) = arg {
                        index_expr_names(x, &mut out);
                    }
                }
            }
            ExprKind::Call { args, .. } => stack.extend(args.iter().rev()),
            ExprKind::Neg(x) => stack.push(x),
            ExprKind::Binary { lhs, rhs, .. } => {
                stack.push(rhs);
                stack.push(lhs);
            }
        }
    }
    out
}

/// What a placement writes along its axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reach {
    /// A variable's extent is not known yet.
    Unknown,
    /// Nothing: a variable has extent 0.
    Empty,
    /// Positions `lo..=hi`.
    Range(i64, i64),
    /// The arithmetic overflows i64.
    Overflow,
}

/// The lowest and highest position a placement writes, given each variable's extent.
pub fn reach(
    form: &PlaceForm,
    extent: &mut dyn FnMut(Node) -> Option<usize>,
    vars: &[Node],
) -> Reach {
    let mut of_node = |n: Node| extent(n).map(|e| i64::try_from(e).unwrap_or(i64::MAX));
    let mut of = |v: VarId| vars.get(v).and_then(|&n| of_node(n));
    let range = |lo: Option<i64>, n: i64| match lo.and_then(|lo| Some((lo, lo.checked_add(n - 1)?)))
    {
        _ if n <= 0 => Reach::Empty,
        Some((lo, hi)) => Reach::Range(lo, hi),
        None => Reach::Overflow,
    };
    match form {
        PlaceForm::Flatten(vs) => {
            let mut n: Option<i64> = Some(1);
            for &v in vs {
                let Some(e) = of(v) else {
                    return Reach::Unknown;
                };
                n = n.and_then(|n| n.checked_mul(e));
            }
            match n {
                Some(n) => range(Some(0), n),
                None => Reach::Overflow,
            }
        }
        PlaceForm::Shift { var, before } => {
            let Some(n) = of(*var) else {
                return Reach::Unknown;
            };
            let mut offset: Option<i64> = Some(0);
            for &b in before {
                let Some(e) = extent(b) else {
                    return Reach::Unknown;
                };
                offset = offset.and_then(|o| o.checked_add(i64::try_from(e).ok()?));
            }
            range(offset, n)
        }
        PlaceForm::Expr(e) => {
            let mut used = Vec::new();
            e.vars(&mut used);
            used.sort_unstable();
            used.dedup();
            let mut sizes = Vec::new();
            for &v in &used {
                let Some(n) = of(v) else {
                    return Reach::Unknown;
                };
                sizes.push(n);
            }
            if sizes.contains(&0) {
                return Reach::Empty;
            }
            match expr_range(e, &used, &sizes) {
                Some(Some((lo, hi))) => Reach::Range(lo, hi),
                Some(None) => Reach::Empty,
                None => Reach::Overflow,
            }
        }
    }
}

/// The range of an index expression over a box of variable values: exact by enumeration when
/// the box is small, else from its corners (exact for the monotone arithmetic placements use).
/// `None` when the arithmetic overflows; `Some(None)` when no point places anything.
fn expr_range(e: &IndexExpr, used: &[VarId], sizes: &[i64]) -> Option<Option<(i64, i64)>> {
    const EXACT_POINTS: i64 = 1 << 20;
    let points = sizes
        .iter()
        .try_fold(1i64, |a, &s| a.checked_mul(s))
        .filter(|&p| p <= EXACT_POINTS);
    let slots = used.iter().max().map_or(0, |&m| m + 1);
    let mut point = vec![0i64; slots];
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    let mut visit = |point: &[i64]| -> Option<()> {
        match e.eval(point) {
            Some(x) => {
                lo = lo.min(x);
                hi = hi.max(x);
                Some(())
            }
            // A constant zero divisor is reported where it is written; it places nothing.
            None if e.divides_by_zero() => Some(()),
            None => None,
        }
    };
    match points {
        Some(p) => {
            for flat in 0..p {
                let mut rest = flat;
                for (k, &v) in used.iter().enumerate() {
                    point[v] = rest % sizes[k];
                    rest /= sizes[k];
                }
                visit(&point)?;
            }
        }
        None => {
            let n = used.len().min(16);
            for mask in 0u32..(1 << n) {
                for (k, &v) in used.iter().enumerate() {
                    point[v] = if k < n && mask & (1 << k) != 0 {
                        sizes[k] - 1
                    } else {
                        0
                    };
                }
                visit(&point)?;
            }
        }
    }
    Some((lo <= hi).then_some((lo, hi)))
}

impl Checker<'_> {
    /// Resolves one left-hand index on a placed axis: its variables are not joined with the
    /// axis (a plain variable takes the axis's extent only when nothing else sizes it), and an
    /// annotation or domain on it fixes the axis's extent.
    pub fn place_lhs(
        &mut self,
        scope: &mut crate::resolve::Scope,
        hints: &mut Vec<crate::resolve::Hint>,
        ix: &ast::LhsIndex,
        axis: Node,
    ) -> Result<(Index, PlaceForm), CheckError> {
        self.place_lhs_extent(ix, axis)?;
        if ix.dotted {
            return Err(CheckError::Misplaced {
                what: "a placed axis cannot be a normalising axis".into(),
                span: ix.arg.span(),
                hint: "normalise in an equation of its own, then place its result".into(),
            });
        }
        let expr = match &ix.arg {
            IndexArg::Expr(ast::IndexExpr::Int(c, _)) => {
                return Ok((Index::Const(*c), PlaceForm::Expr(IndexExpr::Const(*c))))
            }
            IndexArg::Expr(e) => crate::resolve::index_expr(self, scope, e),
            IndexArg::Symbol { span, .. }
            | IndexArg::Slice { span, .. }
            | IndexArg::Virtual { span, .. } => return Err(CheckError::Misplaced {
                what: "this axis places elements by position, so it takes no symbol or slice here"
                    .into(),
                span: *span,
                hint:
                    "index it with a variable, an integer or arithmetic, as its other equations do"
                        .into(),
            }),
        };
        let mut vs = Vec::new();
        expr.vars(&mut vs);
        for v in vs {
            hints.push(crate::resolve::Hint::Arithmetic {
                var: scope.nodes[v],
                axis,
            });
        }
        Ok((Index::Expr(expr.clone()), PlaceForm::Expr(expr)))
    }

    /// An annotation or domain on a placed left-hand index fixes the axis's extent.
    pub fn place_lhs_extent(&mut self, ix: &ast::LhsIndex, axis: Node) -> Result<(), CheckError> {
        match &ix.extent {
            Some(ast::ExtentAnn::Size(n, s)) => self.uf.set_extent(axis, *n as usize, *s),
            Some(ast::ExtentAnn::Domain(d)) => {
                let dn = self.domain_node(d)?;
                self.uf.union(axis, dn)
            }
            None => Ok(()),
        }
    }

    /// The extents of placed axes known before any placement is applied: those fixed by an
    /// annotation, a domain or a join.
    pub fn fixed_placements(&mut self, hints: &[PlaceHint]) -> HashMap<Node, usize> {
        let mut fixed = HashMap::new();
        for h in hints {
            if let Some(e) = self.uf.known_extent(h.axis) {
                fixed.insert(self.uf.find(h.axis), e);
            }
        }
        fixed
    }

    /// Sizes placed axes whose every placement is known (or, with `partial`, the first axis
    /// with some placement known, ignoring the rest). Returns whether anything changed.
    pub fn apply_placements(
        &mut self,
        hints: &[PlaceHint],
        partial: bool,
    ) -> Result<bool, CheckError> {
        let mut groups: Vec<(Node, Vec<&PlaceHint>)> = Vec::new();
        for h in hints {
            let root = self.uf.find(h.axis);
            match groups.iter_mut().find(|(r, _)| *r == root) {
                Some((_, g)) => g.push(h),
                None => groups.push((root, vec![h])),
            }
        }
        for (root, group) in groups {
            // Known already: fixed before any placement, or sized by an earlier round.
            if self.uf.known_extent(root).is_some() {
                continue;
            }
            let mut top: Option<i64> = None;
            let mut all = true;
            for h in &group {
                let mut ext = |n: Node| self.uf.known_extent(n);
                match reach(&h.form, &mut ext, &h.vars) {
                    Reach::Range(_, hi) => top = Some(top.map_or(hi, |t| t.max(hi))),
                    Reach::Empty => top = Some(top.unwrap_or(-1)),
                    Reach::Unknown => all = false,
                    Reach::Overflow => return Err(too_far(h.span)),
                }
            }
            let Some(top) = top else { continue };
            if all || partial {
                let first = group[0];
                let extent = top
                    .checked_add(1)
                    .map(|e| usize::try_from(e.max(0)).unwrap_or(usize::MAX))
                    .ok_or_else(|| too_far(first.span))?;
                self.uf.set_extent(root, extent, first.span)?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Once every extent is settled: each placement lies within its axis. A placement past a
    /// fixed extent, or before position 0, would lose elements: an error, never a silent drop.
    pub fn check_placements(
        &mut self,
        hints: &[PlaceHint],
        fixed: &HashMap<Node, usize>,
    ) -> Result<(), CheckError> {
        for h in hints {
            let root = self.uf.find(h.axis);
            let Some(extent) = self.uf.known_extent(root) else {
                continue;
            };
            // A variable that runs over the very axis it places (`C[i+1] = 2 C[i]`, with `i`
            // sized by nothing else) walks that axis: its last step has nowhere to go, and
            // nothing is lost by not writing it.
            if let PlaceForm::Expr(e) = &h.form {
                let mut used = Vec::new();
                e.vars(&mut used);
                let walks = used.iter().filter_map(|&v| h.vars.get(v)).any(|&n| {
                    let r = self.uf.find(n);
                    self.sized_by.get(&r) == Some(&root)
                });
                if walks {
                    continue;
                }
            }
            let mut ext = |n: Node| self.uf.known_extent(n);
            let (lo, hi) = match reach(&h.form, &mut ext, &h.vars) {
                Reach::Range(lo, hi) => (lo, hi),
                Reach::Overflow => return Err(too_far(h.span)),
                Reach::Unknown | Reach::Empty => continue,
            };
            let past = usize::try_from(hi).map_or(lo < 0, |hi| hi >= extent);
            if lo < 0 || past {
                return Err(CheckError::PlacedOutside {
                    tensor: h.tensor.clone(),
                    position: h.position,
                    lo,
                    hi,
                    extent,
                    fixed: fixed.contains_key(&root),
                    span: h.span,
                });
            }
        }
        Ok(())
    }
}

/// A placement whose positions overflow i64.
fn too_far(span: Span) -> CheckError {
    CheckError::Misplaced {
        what: "this left-hand index reaches past the largest position an axis can have (2^63 - 1)"
            .into(),
        span,
        hint: "place elements at positions a tensor can hold; index arithmetic on the left sizes the axis".into(),
    }
}

/// The index a deferred `concat` placement becomes once extents are known.
pub fn concat_index(
    form: &PlaceForm,
    extent: &dyn Fn(VarId) -> usize,
    node: &mut dyn FnMut(Node) -> usize,
) -> Index {
    match form {
        PlaceForm::Flatten(vs) => {
            let mut e: Option<IndexExpr> = None;
            for &v in vs {
                e = Some(match e {
                    None => IndexExpr::Var(v),
                    Some(prev) => IndexExpr::Binary(
                        ast::IndexOp::Add,
                        Box::new(IndexExpr::Binary(
                            ast::IndexOp::Mul,
                            Box::new(prev),
                            Box::new(IndexExpr::Const(
                                i64::try_from(extent(v)).unwrap_or(i64::MAX),
                            )),
                        )),
                        Box::new(IndexExpr::Var(v)),
                    ),
                });
            }
            Index::Expr(e.unwrap_or(IndexExpr::Const(0)))
        }
        PlaceForm::Shift { var, before } => {
            let offset = before
                .iter()
                .fold(0usize, |a, &b| a.saturating_add(node(b)));
            Index::Expr(IndexExpr::Binary(
                ast::IndexOp::Add,
                Box::new(IndexExpr::Var(*var)),
                Box::new(IndexExpr::Const(i64::try_from(offset).unwrap_or(i64::MAX))),
            ))
        }
        PlaceForm::Expr(e) => Index::Expr(e.clone()),
    }
}

/// A `concat` part as a placement over the equation's variables, once its right-hand side is
/// resolved.
pub fn concat_form(scope: &mut crate::resolve::Scope, part: ConcatPart) -> PlaceForm {
    match part {
        ConcatPart::Flatten(names) => {
            PlaceForm::Flatten(names.iter().filter_map(|n| scope.lookup(n)).collect())
        }
        ConcatPart::Shift { name, before } => PlaceForm::Shift {
            var: scope.lookup(&name).unwrap_or(0),
            before,
        },
    }
}
