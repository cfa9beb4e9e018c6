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

use super::parser::Term;
use crate::ast::CompareOp;
use crate::span::Span;

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
    pub checks: Vec<(CompareOp, Term, Term)>,
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

impl ComputedRule {
    /// The head tuple for one tuple of the hidden relation, or `None` when a comparison fails.
    pub fn apply(&self, binding: &[Value]) -> Result<Option<Vec<Value>>, ComputeError> {
        let mut env: Vec<(&str, Value)> = self
            .vars
            .iter()
            .map(String::as_str)
            .zip(binding.iter().cloned())
            .collect();
        let mut done = vec![false; self.checks.len()];
        loop {
            let mut progress = false;
            for (k, (op, lhs, rhs)) in self.checks.iter().enumerate() {
                if done[k] {
                    continue;
                }
                let (a, b) = (eval(lhs, &env)?, eval(rhs, &env)?);
                match (a, b) {
                    (Some(a), Some(b)) => {
                        if !holds(*op, &a, &b) {
                            return Ok(None);
                        }
                    }
                    // `v = expression` binds `v`.
                    (None, Some(v)) if *op == CompareOp::Eq => bind(lhs, v, &mut env),
                    (Some(v), None) if *op == CompareOp::Eq => bind(rhs, v, &mut env),
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
                if !(0..=MAX_NUMBER).contains(&n) {
                    return Err(ComputeError {
                        message: format!(
                            "this rule computes the number {n}; `tl` stores numbers from 0 to {MAX_NUMBER}"
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

fn bind<'e>(t: &'e Term, v: Value, env: &mut Vec<(&'e str, Value)>) {
    if let Term::Var((name, _)) = t {
        env.push((name.as_str(), v));
    }
}

/// A comparison of two values: numbers by value, symbols by text.
fn holds(op: CompareOp, a: &Value, b: &Value) -> bool {
    match op {
        CompareOp::Eq => a == b,
        CompareOp::Ne => a != b,
        CompareOp::Lt => a < b,
        CompareOp::Le => a <= b,
        CompareOp::Gt => a > b,
        CompareOp::Ge => a >= b,
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
            let r = match op {
                '+' => a.checked_add(b),
                '-' => a.checked_sub(b),
                '*' => a.checked_mul(b),
                '/' => a.checked_div(b),
                '%' => a.checked_rem(b),
                _ => None,
            };
            Some(Value::Num(r.ok_or_else(|| ComputeError {
                message: format!("`{a} {op} {b}` has no value (overflow or division by zero)"),
                span: *span,
            })?))
        }
        Term::Anon(s) | Term::Aggregate(_, s) => {
            return Err(ComputeError {
                message: "this term has no value here".into(),
                span: *s,
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

    fn rule(args: Vec<Term>, checks: Vec<(CompareOp, Term, Term)>) -> ComputedRule {
        ComputedRule {
            head: "h".into(),
            args,
            body: "computed'1".into(),
            vars: vec!["a".into(), "b".into()],
            checks,
            span: Span::default(),
        }
    }

    #[test]
    fn heads_compute_and_comparisons_filter_and_bind() {
        let r = rule(vec![v("a"), add(v("a"), v("b"))], vec![]);
        assert_eq!(
            r.apply(&[Value::Num(2), Value::Num(3)]),
            Ok(Some(vec![Value::Num(2), Value::Num(5)]))
        );
        let r = rule(
            vec![v("c")],
            vec![
                (
                    CompareOp::Lt,
                    add(v("a"), Term::Int(1, Span::default())),
                    v("b"),
                ),
                (CompareOp::Eq, v("c"), add(v("a"), v("b"))),
            ],
        );
        assert_eq!(
            r.apply(&[Value::Num(1), Value::Num(3)]),
            Ok(Some(vec![Value::Num(4)]))
        );
        assert_eq!(r.apply(&[Value::Num(2), Value::Num(3)]), Ok(None));
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
        let e = r.apply(&[Value::Num(1), Value::Num(3)]);
        assert!(matches!(e, Err(ComputeError { ref message, .. }) if message.contains("-2")));
        let div = Term::Arith {
            op: '/',
            lhs: Box::new(v("a")),
            rhs: Box::new(v("b")),
            span: Span::default(),
        };
        assert!(rule(vec![div], vec![])
            .apply(&[Value::Num(1), Value::Num(0)])
            .is_err());
    }
}
