//! Rules that compute numbers: `a(x, y + 1) :- b(x, y).`, `c(x, z) :- b(x, y), z = y * 2.`,
//! `d(x) :- b(x, y), y + 1 < x.`
//!
//! A Tensor Logic axis has the extent its data gives it before anything runs, so a rule that
//! makes new numbers cannot be an equation over Soufflé's one number domain. Such a rule is
//! split in two: its atoms and plain comparisons become a hidden relation `computed'K` of the
//! variables they bind (an ordinary rule), and a [`ComputedRule`] keeps the rest — the
//! comparisons with arithmetic, the variables bound by `v = expression`, and the head. The
//! command line runs the program, reads each hidden relation, applies its computed rule to
//! every tuple and adds the head tuples as facts, and repeats until no fact changes
//! (`tl`'s `souffle` module). The numbers then join the number domain like any other.
//!
//! An aggregate (`n = count : { e(x, _) }`) is one more hidden relation, `aggregate'K`, of
//! the tuples its body ranges over: first the variables it shares with the rest of the rule
//! (which group it), then its own. Its value for one binding of the rule is computed from the
//! tuples of the group, and binds a variable like `n = …` does.

use std::collections::HashMap;

use super::parser::Term;
use crate::ast::Compare;
use crate::span::Span;

/// The tuples of each aggregate's hidden relation, by relation and then by the values of its
/// grouping variables: the values of its own variables.
pub type Groups = HashMap<String, HashMap<Vec<Value>, Vec<Vec<Value>>>>;

/// What an aggregate computes over its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateKind {
    /// The number of tuples (0 for none).
    Count,
    /// The sum of the target (0 for none).
    Sum,
    /// The least target (no value, so no head tuple, for none).
    Min,
    /// The greatest target (no value for none).
    Max,
}

/// An aggregate of a computed rule.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregateRule {
    /// The hidden variable its value binds (it stands for the aggregate in a comparison).
    pub var: String,
    /// What it computes.
    pub kind: AggregateKind,
    /// The term it adds up or compares, over the group's variables.
    pub target: Option<Term>,
    /// The hidden relation of its body's tuples.
    pub relation: String,
    /// Its grouping variables (the relation's first columns), shared with the rule.
    pub outer: Vec<String>,
    /// Its own variables (the remaining columns).
    pub inner: Vec<String>,
    /// Comparisons each row must pass, over its variables and the rule's (`y < x`).
    pub filters: Vec<(Compare, Term, Term)>,
    /// The aggregate term.
    pub span: Span,
}

/// A value of a Soufflé attribute.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    /// A `number`.
    Num(i64),
    /// A `symbol`.
    Sym(String),
}

/// The part of a rule with arithmetic that runs outside the tensor program.
#[derive(Clone, Debug, PartialEq)]
pub struct ComputedRule {
    /// The head relation.
    pub head: String,
    /// Its arguments.
    pub args: Vec<Term>,
    /// The hidden relation of the body's bindings.
    pub body: String,
    /// The hidden relation's attributes: the variables the body's atoms bind, in order.
    pub vars: Vec<String>,
    /// The comparisons with arithmetic, and those that bind a variable (`z = y * 2`).
    pub checks: Vec<(Compare, Term, Term)>,
    /// Its aggregates, each binding a hidden variable the checks read.
    pub aggregates: Vec<AggregateRule>,
    /// The whole rule.
    pub span: Span,
}

/// Why a computed rule gives no head tuple for a binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComputeError {
    /// What went wrong.
    pub message: String,
    /// Where: the term that computed it.
    pub span: Span,
}

/// Largest number `tl` stores: numbers index axes of at most 2^32 − 1 elements.
pub const MAX_NUMBER: i64 = u32::MAX as i64 - 1;

/// Smallest number `tl` stores: Soufflé's `number` is a signed 32-bit integer.
pub const MIN_NUMBER: i64 = i32::MIN as i64;

impl ComputedRule {
    /// The head tuple for one tuple of the hidden relation, or `None` when a comparison fails
    /// (or a `min`/`max` has an empty group); `groups` holds the aggregates' tuples.
    pub fn apply(
        &self,
        binding: &[Value],
        groups: &Groups,
    ) -> Result<Option<Vec<Value>>, ComputeError> {
        let mut env: Vec<(&str, Value)> = self
            .vars
            .iter()
            .map(String::as_str)
            .zip(binding.iter().cloned())
            .collect();
        let mut done = vec![false; self.checks.len()];
        let mut aggregated = vec![false; self.aggregates.len()];
        loop {
            let mut progress = false;
            for (k, agg) in self.aggregates.iter().enumerate() {
                if aggregated[k] {
                    continue;
                }
                let key: Option<Vec<Value>> = agg
                    .outer
                    .iter()
                    .map(|v| env.iter().find(|(n, _)| n == v).map(|(_, x)| x.clone()))
                    .collect();
                let Some(key) = key else { continue };
                let rows = groups
                    .get(&agg.relation)
                    .and_then(|g| g.get(&key))
                    .map_or(&[][..], Vec::as_slice);
                match agg.value(&env, rows)? {
                    Some(v) => env.push((agg.var.as_str(), v)),
                    None => return Ok(None),
                }
                aggregated[k] = true;
                progress = true;
            }
            for (k, (op, lhs, rhs)) in self.checks.iter().enumerate() {
                if done[k] {
                    continue;
                }
                let (a, b) = (eval(lhs, &env)?, eval(rhs, &env)?);
                match (a, b) {
                    (Some(a), Some(b)) => {
                        if !op.holds(&a, &b) {
                            return Ok(None);
                        }
                    }
                    // `v = expression` binds `v`.
                    (None, Some(v)) if *op == Compare::Eq => bind(lhs, v, &mut env),
                    (Some(v), None) if *op == Compare::Eq => bind(rhs, v, &mut env),
                    _ => continue,
                }
                done[k] = true;
                progress = true;
            }
            if !progress {
                break;
            }
        }
        if let Some(k) = done.iter().position(|d| !d) {
            return Err(ComputeError {
                message: "this comparison has a variable nothing binds".into(),
                span: self.checks[k].1.span().to(self.checks[k].2.span()),
            });
        }
        let mut out = Vec::with_capacity(self.args.len());
        for t in &self.args {
            let v = eval(t, &env)?.ok_or_else(|| ComputeError {
                message: "this head argument has a variable nothing binds".into(),
                span: t.span(),
            })?;
            if let Value::Num(n) = v {
                if !(MIN_NUMBER..=MAX_NUMBER).contains(&n) {
                    return Err(ComputeError {
                        message: format!(
                            "this rule computes the number {n}; `tl` stores numbers from {MIN_NUMBER} to {MAX_NUMBER}"
                        ),
                        span: t.span(),
                    });
                }
            }
            out.push(v);
        }
        Ok(Some(out))
    }
}

impl AggregateRule {
    /// The aggregate over one group's rows (the values of [`Self::inner`]), with the rule's
    /// bindings in `env`; `None` for the `min` or `max` of no rows.
    fn value(
        &self,
        env: &[(&str, Value)],
        rows: &[Vec<Value>],
    ) -> Result<Option<Value>, ComputeError> {
        let mut acc: Option<i64> = None;
        let mut count = 0i64;
        'rows: for row in rows {
            let mut local: Vec<(&str, Value)> = env.to_vec();
            local.extend(
                self.inner
                    .iter()
                    .map(String::as_str)
                    .zip(row.iter().cloned()),
            );
            for (op, lhs, rhs) in &self.filters {
                match (eval(lhs, &local)?, eval(rhs, &local)?) {
                    (Some(a), Some(b)) if op.holds(&a, &b) => {}
                    (Some(_), Some(_)) => continue 'rows,
                    _ => {
                        return Err(ComputeError {
                            message: "this comparison has a variable nothing binds".into(),
                            span: lhs.span().to(rhs.span()),
                        })
                    }
                }
            }
            count += 1;
            let Some(target) = &self.target else {
                continue;
            };
            let Some(Value::Num(x)) = eval(target, &local)? else {
                return Err(ComputeError {
                    message: "an aggregate's target must be a number of its tuples".into(),
                    span: target.span(),
                });
            };
            acc = Some(match (acc, self.kind) {
                (None, _) => x,
                (Some(a), AggregateKind::Sum) => a.checked_add(x).ok_or_else(|| ComputeError {
                    message: "this sum overflows 64 bits".into(),
                    span: self.span,
                })?,
                (Some(a), AggregateKind::Min) => a.min(x),
                (Some(a), _) => a.max(x),
            });
        }
        Ok(match (acc, self.kind) {
            (_, AggregateKind::Count) => Some(Value::Num(count)),
            (None, AggregateKind::Sum) => Some(Value::Num(0)),
            (acc, _) => acc.map(Value::Num),
        })
    }
}

fn bind<'e>(t: &'e Term, v: Value, env: &mut Vec<(&'e str, Value)>) {
    if let Term::Var((name, _)) = t {
        env.push((name.as_str(), v));
    }
}

/// Soufflé's arithmetic on numbers, in 64 bits: `None` on overflow or division by zero.
pub(super) fn arith(op: char, a: i64, b: i64) -> Option<i64> {
    match op {
        '+' => a.checked_add(b),
        '-' => a.checked_sub(b),
        '*' => a.checked_mul(b),
        '/' => a.checked_div(b),
        '%' => a.checked_rem(b),
        _ => None,
    }
}

/// A term's value, `None` while one of its variables is unbound; arithmetic in 64 bits, an
/// error on overflow or division by zero.
fn eval(t: &Term, env: &[(&str, Value)]) -> Result<Option<Value>, ComputeError> {
    Ok(match t {
        Term::Var((name, _)) => env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()),
        Term::Int(n, _) => Some(Value::Num(*n)),
        Term::Str(s, _) => Some(Value::Sym(s.clone())),
        Term::Arith { op, lhs, rhs, span } => {
            let (Some(a), Some(b)) = (eval(lhs, env)?, eval(rhs, env)?) else {
                return Ok(None);
            };
            let (Value::Num(a), Value::Num(b)) = (a, b) else {
                return Err(ComputeError {
                    message: "arithmetic on a symbol".into(),
                    span: *span,
                });
            };
            Some(Value::Num(arith(*op, a, b).ok_or_else(|| {
                ComputeError {
                    message: format!("`{a} {op} {b}` has no value (overflow or division by zero)"),
                    span: *span,
                }
            })?))
        }
        Term::Anon(_) | Term::Aggregate(_) => {
            return Err(ComputeError {
                message: "this term has no value here".into(),
                span: t.span(),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(name: &str) -> Term {
        Term::Var((name.into(), Span::default()))
    }

    fn add(a: Term, b: Term) -> Term {
        Term::Arith {
            op: '+',
            lhs: Box::new(a),
            rhs: Box::new(b),
            span: Span::default(),
        }
    }

    fn rule(args: Vec<Term>, checks: Vec<(Compare, Term, Term)>) -> ComputedRule {
        ComputedRule {
            head: "h".into(),
            args,
            body: "computed'1".into(),
            vars: vec!["a".into(), "b".into()],
            checks,
            aggregates: Vec::new(),
            span: Span::default(),
        }
    }

    #[test]
    fn heads_compute_and_comparisons_filter_and_bind() {
        let r = rule(vec![v("a"), add(v("a"), v("b"))], vec![]);
        assert_eq!(
            r.apply(&[Value::Num(2), Value::Num(3)], &Groups::new()),
            Ok(Some(vec![Value::Num(2), Value::Num(5)]))
        );
        let r = rule(
            vec![v("c")],
            vec![
                (
                    Compare::Lt,
                    add(v("a"), Term::Int(1, Span::default())),
                    v("b"),
                ),
                (Compare::Eq, v("c"), add(v("a"), v("b"))),
            ],
        );
        assert_eq!(
            r.apply(&[Value::Num(1), Value::Num(3)], &Groups::new()),
            Ok(Some(vec![Value::Num(4)]))
        );
        assert_eq!(
            r.apply(&[Value::Num(2), Value::Num(3)], &Groups::new()),
            Ok(None)
        );
    }

    #[test]
    fn numbers_outside_what_tl_stores_are_errors() {
        let minus = Term::Arith {
            op: '-',
            lhs: Box::new(v("a")),
            rhs: Box::new(v("b")),
            span: Span::default(),
        };
        let r = rule(vec![minus], vec![]);
        let e = r.apply(&[Value::Num(1), Value::Num(3)], &Groups::new());
        assert_eq!(e, Ok(Some(vec![Value::Num(-2)])));
        let e = r.apply(
            &[Value::Num(-MAX_NUMBER), Value::Num(MAX_NUMBER)],
            &Groups::new(),
        );
        assert!(
            matches!(e, Err(ComputeError { ref message, .. }) if message.contains("-8589934588"))
        );
        let div = Term::Arith {
            op: '/',
            lhs: Box::new(v("a")),
            rhs: Box::new(v("b")),
            span: Span::default(),
        };
        assert!(rule(vec![div], vec![])
            .apply(&[Value::Num(1), Value::Num(0)], &Groups::new())
            .is_err());
    }
}
