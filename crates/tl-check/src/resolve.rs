//! Pass 2: resolve equations, rules and queries. Each statement gets its own index variables;
//! writing a variable directly in an axis joins its domain with the axis's (union-find), and
//! arithmetic, slices and bare tensors leave hints for sizes settled later.

use crate::collect::{Checker, RuleConst};
use crate::error::CheckError;
use crate::program::{Access, BodyAtom, Comparison, Expr, Func, Index, IndexExpr, Term, VarInfo};
use crate::unify::Node;
use std::collections::HashMap;
use tl_core::ops::{UnaryFn, NORM_NAMES};
use tl_syntax::ast::{self, AccessStyle, ExprKind, IndexArg};
use tl_syntax::Span;

/// A size rule applied once domains are partly settled.
#[derive(Clone, Debug)]
pub enum Hint {
    /// A variable seen only inside arithmetic takes the extent of the axis it indexes.
    Arithmetic {
        /// The variable's node.
        var: Node,
        /// The axis's node.
        axis: Node,
    },
    /// A slice's variable runs over `start..end` of an axis.
    Slice {
        /// The slice variable's node.
        var: Node,
        /// The axis's node.
        axis: Node,
        /// First element.
        start: i64,
        /// One past the last (default: the axis's extent).
        end: Option<i64>,
        /// The slice's text.
        span: Span,
    },
    /// A left-hand placement on a placed axis ([`crate::place`]).
    Place(crate::place::PlaceHint),
}

/// The index variables of one statement.
#[derive(Default)]
pub struct Scope {
    /// Variable names by id.
    pub names: Vec<String>,
    /// Union-find node of each variable.
    pub nodes: Vec<Node>,
    /// First use of each variable.
    pub spans: Vec<Span>,
    /// Whether each variable indexes some axis directly.
    pub direct: Vec<bool>,
    map: HashMap<String, usize>,
}

impl Scope {
    /// The id of a named variable, creating it on first use.
    pub fn var(&mut self, ck: &mut Checker, name: &str, span: Span) -> usize {
        if let Some(&v) = self.map.get(name) {
            return v;
        }
        let v = self.fresh(ck, name, span);
        self.map.insert(name.to_string(), v);
        v
    }

    /// The id of a named variable, if the statement uses it.
    pub fn lookup(&self, name: &str) -> Option<usize> {
        self.map.get(name).copied()
    }

    /// A new unnamed variable.
    pub fn fresh(&mut self, ck: &mut Checker, name: &str, span: Span) -> usize {
        self.names.push(name.to_string());
        self.nodes
            .push(ck.uf.node(format!("index `{name}`"), String::new()));
        self.spans.push(span);
        self.direct.push(false);
        self.names.len() - 1
    }

    /// The variable infos, once domains are settled (filled in by `finish`).
    pub fn infos(&self) -> Vec<VarInfo> {
        self.names
            .iter()
            .map(|n| VarInfo {
                name: n.clone(),
                domain: 0,
                extent: 0,
            })
            .collect()
    }
}

/// A resolved statement still waiting for its variables' domains.
pub struct Pending<T> {
    /// The resolved statement.
    pub item: T,
    /// Its variables.
    pub scope: Scope,
    /// Left-hand positions whose index `concat` gives once extents are known.
    pub deferred: Vec<(usize, crate::place::PlaceForm)>,
}

impl Checker<'_> {
    /// Resolves one index argument at axis node `axis`.
    /// A slice runs over `slice_var` when given (an unnamed left-hand axis), else a new variable.
    pub fn index(
        &mut self,
        scope: &mut Scope,
        hints: &mut Vec<Hint>,
        arg: &IndexArg,
        axis: Node,
        slice_var: Option<usize>,
    ) -> Result<Index, CheckError> {
        Ok(match arg {
            IndexArg::Symbol { name, span } => {
                self.uf.add_symbol(axis, name, *span)?;
                Index::Symbol(name.clone(), axis)
            }
            // A read of a placed axis is soft: the variable is sized by its other uses.
            IndexArg::Expr(ast::IndexExpr::Var(id)) if self.placed_nodes.contains(&axis) => {
                let v = scope.var(self, &id.name, id.span);
                hints.push(Hint::Arithmetic {
                    var: scope.nodes[v],
                    axis,
                });
                Index::Expr(IndexExpr::Var(v))
            }
            IndexArg::Expr(ast::IndexExpr::Int(c, _)) if self.placed_nodes.contains(&axis) => {
                Index::Const(*c)
            }
            IndexArg::Expr(ast::IndexExpr::Var(id)) => {
                let v = scope.var(self, &id.name, id.span);
                scope.direct[v] = true;
                self.uf.union_at(scope.nodes[v], axis, id.span)?;
                Index::Var(v)
            }
            IndexArg::Expr(ast::IndexExpr::Int(c, span)) => {
                self.uf.add_integer(axis, *c, *span);
                Index::Const(*c)
            }
            IndexArg::Expr(e) => {
                let expr = index_expr(self, scope, e);
                let mut vs = Vec::new();
                expr.vars(&mut vs);
                for v in vs {
                    hints.push(Hint::Arithmetic {
                        var: scope.nodes[v],
                        axis,
                    });
                }
                Index::Expr(expr)
            }
            IndexArg::Slice { start, end, span } => {
                let v = match slice_var {
                    Some(v) => v,
                    None => scope.fresh(self, &format!("_{}", scope.names.len()), *span),
                };
                let start = start.unwrap_or(0);
                hints.push(Hint::Slice {
                    var: scope.nodes[v],
                    axis,
                    start,
                    end: *end,
                    span: *span,
                });
                Index::Slice { var: v, start }
            }
            IndexArg::Virtual { span, .. } => {
                return Err(crate::virtual_index::outside_a_step(*span))
            }
        })
    }

    /// Resolves a tensor read. Bare reads of tensors with axes get unnamed variables
    /// `_k`, aligned to the right against `anon` (the equation's unnamed axes).
    pub fn access(
        &mut self,
        scope: &mut Scope,
        hints: &mut Vec<Hint>,
        a: &ast::Access,
        anon: &[usize],
    ) -> Result<Access, CheckError> {
        if a.args.iter().any(crate::collect::is_virtual) {
            return self.step_access(scope, hints, a);
        }
        let tensor = self.by_name.get(&a.name.name).copied().unwrap_or(0);
        let axes = self.drafts[tensor].axes.clone();
        let indices = match a.style {
            AccessStyle::Bare => {
                if self.drafts[tensor].rank.is_none() {
                    self.unranked_bare.push((tensor, a.span));
                }
                if axes.len() > anon.len() {
                    return Err(CheckError::Misplaced {
                        what: format!(
                            "`{}` has {} axes; a bare name keeps all of them",
                            a.name.name,
                            axes.len()
                        ),
                        span: a.span,
                        hint: format!(
                            "name its indices, e.g. `{}[{}]`",
                            a.name.name,
                            index_names(axes.len())
                        ),
                    });
                }
                let offset = anon.len() - axes.len();
                let mut out = Vec::new();
                for (k, &axis) in axes.iter().enumerate() {
                    let v = anon[offset + k];
                    scope.direct[v] = true;
                    self.uf.union(scope.nodes[v], axis)?;
                    out.push(Index::Var(v));
                }
                out
            }
            _ => {
                // Trailing axes a read of slices leaves out are whole (NumPy's `Img[0:256]`).
                let mut args = a.args.clone();
                args.extend((0..self.implicit_axes(a)).map(|_| IndexArg::Slice {
                    start: None,
                    end: None,
                    span: a.span,
                }));
                let slices = args
                    .iter()
                    .filter(|x| matches!(x, IndexArg::Slice { .. }))
                    .count();
                if slices > anon.len() {
                    return Err(CheckError::Misplaced {
                        what: "a slice's axis needs a place on the left-hand side".into(),
                        span: a.span,
                        hint: "write the left-hand side without indices (`Mid = S[2:5]`), or use index arithmetic (`Y[i] = S[i+2]`)".into(),
                    });
                }
                let mut next_slice = anon.len() - slices;
                let mut out = Vec::new();
                for (arg, &axis) in args.iter().zip(&axes) {
                    let slice_var = if matches!(arg, IndexArg::Slice { .. }) {
                        next_slice += 1;
                        anon.get(next_slice - 1).copied()
                    } else {
                        None
                    };
                    out.push(self.index(scope, hints, arg, axis, slice_var)?);
                }
                out
            }
        };
        Ok(Access {
            tensor,
            indices,
            span: a.span,
        })
    }

    /// `dropout(x, p)`: the rate is a number in [0, 1).
    fn dropout(
        &mut self,
        scope: &mut Scope,
        hints: &mut Vec<Hint>,
        e: &ast::Expr,
        args: &[ast::Expr],
        anon: &[usize],
    ) -> Result<Expr, CheckError> {
        let [x, rate] = args else {
            return Err(CheckError::Arity {
                func: "dropout".into(),
                expected: "two arguments, the value and the rate",
                found: args.len(),
                span: e.span,
            });
        };
        let p = match &rate.kind {
            ExprKind::Number(p) => Some(*p),
            _ => None,
        };
        let Some(p) = p.filter(|p| (0.0..1.0).contains(p)) else {
            return Err(CheckError::Misplaced {
                what: "the rate of `dropout` is a number from 0 up to (not including) 1".into(),
                span: rate.span,
                hint: "write the rate as a literal, e.g. `dropout(H[e, h], 0.1)`".into(),
            });
        };
        let x = self.expr(scope, hints, x, anon)?;
        Ok(Expr::Call(Func::Dropout(p), vec![x], e.span))
    }

    /// Resolves a right-hand-side expression.
    pub fn expr(
        &mut self,
        scope: &mut Scope,
        hints: &mut Vec<Hint>,
        e: &ast::Expr,
        anon: &[usize],
    ) -> Result<Expr, CheckError> {
        Ok(match &e.kind {
            ExprKind::Number(x) => Expr::Number(*x),
            ExprKind::Index(id) => Expr::IndexValue(scope.var(self, &id.name, id.span)),
            ExprKind::Access(a) => Expr::Access(self.access(scope, hints, a, anon)?),
            ExprKind::Neg(x) => Expr::Neg(Box::new(self.expr(scope, hints, x, anon)?)),
            ExprKind::Binary { op, lhs, rhs } => Expr::Binary(
                *op,
                Box::new(self.expr(scope, hints, lhs, anon)?),
                Box::new(self.expr(scope, hints, rhs, anon)?),
            ),
            ExprKind::Call { func, args } => {
                let name = func.name.as_str();
                if name == "dropout" {
                    return self.dropout(scope, hints, e, args, anon);
                }
                if name == "concat" {
                    return Err(CheckError::Misplaced {
                        what: "`concat` places its arguments along a left-hand axis, so it is the whole right-hand side".into(),
                        span: e.span,
                        hint: "give it an equation of its own, `C[k] = concat(A[i], B[j])`, and use `C` here".into(),
                    });
                }
                let f = if let Some((_, u)) = UnaryFn::NAMES.iter().find(|(n, _)| *n == name) {
                    match (name, args.len()) {
                        ("sig", 2) => Func::SigmoidT,
                        (_, 1) => Func::Unary(*u),
                        ("sig", n) => {
                            return Err(CheckError::Arity {
                                func: name.into(),
                                expected: "one or two arguments",
                                found: n,
                                span: e.span,
                            })
                        }
                        (_, n) => {
                            return Err(CheckError::Arity {
                                func: name.into(),
                                expected: "one argument",
                                found: n,
                                span: e.span,
                            })
                        }
                    }
                } else if let Some((_, nf)) = NORM_NAMES.iter().find(|(n, _)| *n == name) {
                    if args.len() != 1 {
                        return Err(CheckError::Arity {
                            func: name.into(),
                            expected: "one argument",
                            found: args.len(),
                            span: e.span,
                        });
                    }
                    Func::Norm(*nf)
                } else {
                    let known: Vec<&str> = UnaryFn::NAMES
                        .iter()
                        .map(|(n, _)| *n)
                        .chain(NORM_NAMES.iter().map(|(n, _)| *n))
                        .chain(["dropout", "concat"])
                        .collect();
                    return Err(CheckError::UnknownName {
                        kind: "function",
                        name: name.into(),
                        span: func.span,
                        hint: format!("the functions are {}", known.join(", ")),
                    });
                };
                let args = args
                    .iter()
                    .map(|a| self.expr(scope, hints, a, anon))
                    .collect::<Result<Vec<_>, _>>()?;
                Expr::Call(f, args, e.span)
            }
        })
    }

    /// Resolves a rule-body or head argument into a term.
    pub fn term(
        &mut self,
        scope: &mut Scope,
        arg: &IndexArg,
        axis: Option<Node>,
    ) -> Result<Term, CheckError> {
        match arg {
            IndexArg::Expr(ast::IndexExpr::Var(id)) => {
                let v = scope.var(self, &id.name, id.span);
                if let Some(axis) = axis {
                    scope.direct[v] = true;
                    self.uf.union_at(scope.nodes[v], axis, id.span)?;
                }
                Ok(Term::Var(v))
            }
            IndexArg::Expr(ast::IndexExpr::Int(c, span)) => {
                if !(i64::from(i32::MIN)..i64::from(u32::MAX)).contains(c) {
                    return Err(CheckError::Misplaced {
                        what: format!("{c} is outside the numbers a relation holds"),
                        span: *span,
                        hint: format!("numbers run from {} to {}", i32::MIN, u32::MAX - 1),
                    });
                }
                match axis {
                    // Its element is known once the domain's origin is.
                    Some(axis) => {
                        self.uf.add_number(axis, *c, *span);
                        Ok(Term::Symbol(self.symbol_ref(RuleConst::Int(*c), axis)))
                    }
                    None => {
                        let c = u32::try_from(*c).map_err(|_| CheckError::Misplaced {
                            what: format!("{c} cannot be compared without a variable"),
                            span: *span,
                            hint: "compare a variable with a number: `x < -1`".into(),
                        })?;
                        Ok(Term::Const(c))
                    }
                }
            }
            IndexArg::Symbol { name, span } => {
                let axis = axis.ok_or_else(|| CheckError::Misplaced {
                    what: "compare a variable with a symbol, not two constants".into(),
                    span: *span,
                    hint: "e.g. `x != Bob`".into(),
                })?;
                self.uf.add_symbol(axis, name, *span)?;
                Ok(Term::Symbol(
                    self.symbol_ref(RuleConst::Symbol(name.clone()), axis),
                ))
            }
            IndexArg::Virtual { span, .. } => Err(CheckError::VirtualMisplaced {
                what: "rules have no steps".into(),
                span: *span,
                hint: "virtual indices belong in tensor equations: `S[i, *t+1] = f(S[j, *t])`"
                    .into(),
            }),
            other => Err(CheckError::Misplaced {
                what: "rules take variables, symbols and integers as arguments".into(),
                span: other.span(),
                hint: "index arithmetic and slices belong in tensor equations (`Y[i] = X[i+1]`)"
                    .into(),
            }),
        }
    }

    /// Resolves a comparison in a rule body; each side's domain is the other side's variable's.
    pub fn comparison(
        &mut self,
        scope: &mut Scope,
        op: ast::Compare,
        lhs: &IndexArg,
        rhs: &IndexArg,
    ) -> Result<Comparison, CheckError> {
        let var_node = |scope: &mut Scope, ck: &mut Checker, a: &IndexArg| match a {
            IndexArg::Expr(ast::IndexExpr::Var(id)) => {
                let v = scope.var(ck, &id.name, id.span);
                Some(scope.nodes[v])
            }
            _ => None,
        };
        let ln = var_node(scope, self, lhs);
        let rn = var_node(scope, self, rhs);
        if let (Some(a), Some(b)) = (ln, rn) {
            self.uf.union(a, b)?;
        }
        let lhs = self.term(scope, lhs, rn)?;
        let rhs = self.term(scope, rhs, ln)?;
        Ok(Comparison { op, lhs, rhs })
    }

    /// Resolves a body atom.
    pub fn body_atom(
        &mut self,
        scope: &mut Scope,
        atom: &ast::Atom,
        negated: bool,
    ) -> Result<BodyAtom, CheckError> {
        let tensor = self.by_name.get(&atom.name.name).copied().unwrap_or(0);
        let axes = self.drafts[tensor].axes.clone();
        let args = atom
            .args
            .iter()
            .zip(&axes)
            .map(|(a, &ax)| self.term(scope, a, Some(ax)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BodyAtom {
            tensor,
            args,
            negated,
        })
    }
}

pub fn index_expr(ck: &mut Checker, scope: &mut Scope, e: &ast::IndexExpr) -> IndexExpr {
    match e {
        ast::IndexExpr::Var(id) => IndexExpr::Var(scope.var(ck, &id.name, id.span)),
        ast::IndexExpr::Int(c, _) => IndexExpr::Const(*c),
        ast::IndexExpr::Binary { op, lhs, rhs, .. } => {
            let (a, b) = (index_expr(ck, scope, lhs), index_expr(ck, scope, rhs));
            // A divisor that is zero everywhere (`i/0`, `i % (2 - 2)`) is a mistake, not a
            // read outside the tensor.
            let divides = matches!(
                op,
                tl_syntax::ast::IndexOp::Div | tl_syntax::ast::IndexOp::Rem
            );
            if divides && b.eval(&[]) == Some(0) {
                ck.errors.push(CheckError::Misplaced {
                    what: "this index divides by zero".into(),
                    span: rhs.span(),
                    hint: "integer division and remainder in an index need a divisor other than 0"
                        .into(),
                });
            }
            IndexExpr::Binary(*op, Box::new(a), Box::new(b))
        }
    }
}

pub fn index_names(n: usize) -> String {
    ["i", "j", "k", "l", "m", "n"]
        .iter()
        .cycle()
        .take(n)
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}
