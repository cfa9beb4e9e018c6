//! A naive evaluator of Soufflé programs, written for checking `tl` against: relations are
//! sets of tuples, rules are applied by nested loops over their atoms until nothing changes,
//! stratum by stratum, and aggregates and arithmetic are computed as Soufflé defines them. It
//! shares only the parser with `tl`; lowering, the settling runs and the engine are what it
//! checks. Programs outside its reach (disjunctions, errors, too many tuples) are skipped.

use std::collections::{BTreeMap, BTreeSet};
use tl_syntax::ast::Compare;
use tl_syntax::souffle::parser::{Aggregate, Body, Item, SAtom, Term};
use tl_syntax::FileId;

/// A value of an attribute.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum V {
    /// A number.
    N(i64),
    /// A symbol.
    S(String),
}

/// Relations by name.
pub type Db = BTreeMap<String, BTreeSet<Vec<V>>>;

/// Most tuples the reference holds before it gives up on a program.
const MAX_TUPLES: usize = 20_000;
/// Most rounds of one stratum.
const MAX_ROUNDS: usize = 500;

/// The `.output` relations of `text` as Soufflé defines them, or why the program was skipped.
pub fn evaluate(text: &str) -> Result<Db, &'static str> {
    let tokens = tl_syntax::souffle::lexer::lex(text, FileId(0));
    let (items, errors) = tl_syntax::souffle::parser::parse(&tokens);
    if !errors.is_empty() {
        return Err("does not parse");
    }
    let mut db = Db::new();
    let mut outputs = Vec::new();
    let mut rules: Vec<(SAtom, Vec<Body>)> = Vec::new();
    for item in &items {
        match item {
            Item::Decl { name, .. } => {
                db.entry(name.0.clone()).or_default();
            }
            Item::Io {
                output: true, name, ..
            } => outputs.push(name.0.clone()),
            Item::Clause { heads, body, .. } => {
                for head in heads {
                    match body {
                        None => {
                            let tuple = head
                                .args
                                .iter()
                                .map(|t| eval(t, &[]).ok().flatten())
                                .collect::<Option<Vec<V>>>()
                                .ok_or("a fact that is not constant")?;
                            db.entry(head.name.0.clone()).or_default().insert(tuple);
                        }
                        Some(b) => rules.push((head.clone(), conjuncts(b)?)),
                    }
                }
            }
            _ => {}
        }
    }
    for stratum in strata(&rules)? {
        for _ in 0..MAX_ROUNDS {
            let mut changed = false;
            for (head, body) in stratum.iter().map(|&k| &rules[k]) {
                for tuple in apply(head, body, &db)? {
                    changed |= db.entry(head.name.0.clone()).or_default().insert(tuple);
                }
            }
            if db.values().map(BTreeSet::len).sum::<usize>() > MAX_TUPLES {
                return Err("too many tuples");
            }
            if !changed {
                break;
            }
        }
    }
    Ok(outputs
        .into_iter()
        .map(|o| {
            let rows = db.get(&o).cloned().unwrap_or_default();
            (o, rows)
        })
        .collect())
}

fn conjuncts(b: &Body) -> Result<Vec<Body>, &'static str> {
    match b {
        Body::And(items) => Ok(items
            .iter()
            .map(conjuncts)
            .collect::<Result<Vec<_>, _>>()?
            .concat()),
        Body::Or(_) => Err("a disjunction"),
        other => Ok(vec![other.clone()]),
    }
}

/// Rules grouped by stratum, in order: a negated or aggregated relation is computed first.
fn strata(rules: &[(SAtom, Vec<Body>)]) -> Result<Vec<Vec<usize>>, &'static str> {
    let mut level: BTreeMap<String, usize> = BTreeMap::new();
    let mut edges: Vec<(String, String, usize)> = Vec::new();
    for (head, body) in rules {
        for lit in body {
            let mut add = |atom: &SAtom, strict: usize| {
                edges.push((head.name.0.clone(), atom.name.0.clone(), strict))
            };
            match lit {
                Body::Atom(a) => add(a, 0),
                Body::Not(a) => add(a, 1),
                Body::Compare { lhs, rhs, .. } => {
                    for t in [lhs, rhs] {
                        if let Term::Aggregate(agg) = t {
                            for inner in conjuncts(&agg.body)? {
                                if let Body::Atom(a) | Body::Not(a) = &inner {
                                    add(a, 1);
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let limit = edges.len() + 1;
    loop {
        let mut changed = false;
        for (h, d, strict) in &edges {
            let need = level.get(d).copied().unwrap_or(0) + strict;
            let have = level.entry(h.clone()).or_insert(0);
            if *have < need {
                *have = need;
                changed = true;
                if need > limit {
                    return Err("not stratified");
                }
            }
        }
        if !changed {
            break;
        }
    }
    let top = level.values().copied().max().unwrap_or(0);
    Ok((0..=top)
        .map(|s| {
            (0..rules.len())
                .filter(|&k| level.get(rules[k].0.name.0.as_str()).copied().unwrap_or(0) == s)
                .collect()
        })
        .collect())
}

type Env = Vec<(String, V)>;

/// The head tuples a rule derives from `db`.
fn apply(head: &SAtom, body: &[Body], db: &Db) -> Result<Vec<Vec<V>>, &'static str> {
    let mut out = Vec::new();
    for env in solve(body, Vec::new(), db, &outside_vars(head, body))? {
        let tuple = head
            .args
            .iter()
            .map(|t| eval(t, &env).map(|v| v.ok_or("an unbound head variable")))
            .collect::<Result<Result<Vec<V>, _>, _>>()??;
        out.push(tuple);
    }
    Ok(out)
}

/// Variables used outside aggregates (the ones an aggregate's body shares with its rule).
fn outside_vars(head: &SAtom, body: &[Body]) -> Vec<String> {
    let mut vars = Vec::new();
    let mut term = |t: &Term| collect_vars(t, &mut vars);
    head.args.iter().for_each(&mut term);
    for lit in body {
        match lit {
            Body::Atom(a) | Body::Not(a) => a.args.iter().for_each(&mut term),
            Body::Compare { lhs, rhs, .. } => {
                for t in [lhs, rhs] {
                    if !matches!(t, Term::Aggregate(_)) {
                        term(t);
                    }
                }
            }
            _ => {}
        }
    }
    vars
}

fn collect_vars(t: &Term, out: &mut Vec<String>) {
    match t {
        Term::Var((n, _)) => out.push(n.clone()),
        Term::Arith { lhs, rhs, .. } => {
            collect_vars(lhs, out);
            collect_vars(rhs, out);
        }
        _ => {}
    }
}

/// Every binding that satisfies `lits` from `env`: atoms first, by nested loops, then the
/// negations and comparisons as their variables become bound (`v = …` binds `v`).
fn solve(lits: &[Body], env: Env, db: &Db, outside: &[String]) -> Result<Vec<Env>, &'static str> {
    let mut envs = vec![env];
    for lit in lits {
        if let Body::Atom(a) = lit {
            let mut next = Vec::new();
            for env in &envs {
                for tuple in db.get(&a.name.0).into_iter().flatten() {
                    if let Some(e) = unify(&a.args, tuple, env.clone())? {
                        next.push(e);
                    }
                }
            }
            envs = next;
        }
    }
    let rest: Vec<&Body> = lits
        .iter()
        .filter(|l| !matches!(l, Body::Atom(_)))
        .collect();
    let mut out = Vec::new();
    'env: for mut env in envs {
        let mut done = vec![false; rest.len()];
        loop {
            let mut progress = false;
            for (k, lit) in rest.iter().enumerate() {
                if done[k] {
                    continue;
                }
                match lit {
                    Body::Not(a) => {
                        let found = db
                            .get(&a.name.0)
                            .into_iter()
                            .flatten()
                            .map(|t| unify(&a.args, t, env.clone()))
                            .collect::<Result<Vec<_>, _>>()?;
                        if found.iter().any(Option::is_some) {
                            continue 'env;
                        }
                    }
                    Body::Compare { op, lhs, rhs, .. } => {
                        let a = value(lhs, &env, db, outside)?;
                        let b = value(rhs, &env, db, outside)?;
                        match (a, b) {
                            (Some(a), Some(b)) => {
                                if !op.holds(&a, &b) {
                                    continue 'env;
                                }
                            }
                            (None, Some(v)) if *op == Compare::Eq => match lhs {
                                Term::Var((n, _)) => env.push((n.clone(), v)),
                                _ => continue,
                            },
                            (Some(v), None) if *op == Compare::Eq => match rhs {
                                Term::Var((n, _)) => env.push((n.clone(), v)),
                                _ => continue,
                            },
                            _ => continue,
                        }
                    }
                    _ => return Err("an unexpected literal"),
                }
                done[k] = true;
                progress = true;
            }
            if !progress {
                break;
            }
        }
        if done.iter().any(|d| !d) {
            return Err("an ungrounded variable");
        }
        out.push(env);
    }
    Ok(out)
}

/// Binds an atom's arguments to a tuple, or `None` when they disagree.
fn unify(args: &[Term], tuple: &[V], mut env: Env) -> Result<Option<Env>, &'static str> {
    for (t, v) in args.iter().zip(tuple) {
        match t {
            Term::Anon(_) => {}
            Term::Var((n, _)) => match env.iter().find(|(m, _)| m == n) {
                Some((_, bound)) if bound != v => return Ok(None),
                Some(_) => {}
                None => env.push((n.clone(), v.clone())),
            },
            other => match eval(other, &env)? {
                Some(x) if &x == v => {}
                Some(_) => return Ok(None),
                None => return Err("arithmetic on an unbound variable in an atom"),
            },
        }
    }
    Ok(Some(env))
}

/// A term's value, with aggregates: `None` while a variable (or a grouping variable of an
/// aggregate) is unbound.
fn value(t: &Term, env: &Env, db: &Db, outside: &[String]) -> Result<Option<V>, &'static str> {
    match t {
        Term::Aggregate(agg) => aggregate(agg, env, db, outside),
        _ => eval(t, env),
    }
}

fn aggregate(
    agg: &Aggregate,
    env: &Env,
    db: &Db,
    outside: &[String],
) -> Result<Option<V>, &'static str> {
    let lits = conjuncts(&agg.body)?;
    let mut inside = Vec::new();
    for lit in &lits {
        match lit {
            Body::Atom(a) | Body::Not(a) => {
                a.args.iter().for_each(|t| collect_vars(t, &mut inside))
            }
            Body::Compare { lhs, rhs, .. } => {
                collect_vars(lhs, &mut inside);
                collect_vars(rhs, &mut inside);
            }
            _ => {}
        }
    }
    // The grouping variables: those the rest of the rule uses; wait until they are bound.
    let mut start = Env::new();
    for v in inside.iter().filter(|v| outside.contains(v)) {
        match env.iter().find(|(n, _)| n == v) {
            Some(b) => start.push(b.clone()),
            None => return Ok(None),
        }
    }
    let matches = solve(&lits, start, db, &[])?;
    let mut acc: Option<i64> = None;
    for m in &matches {
        let Some(target) = &agg.target else { continue };
        let Some(V::N(x)) = eval(target, m)? else {
            return Err("a target that is not a number");
        };
        acc = Some(match (acc, agg.word.as_str()) {
            (None, _) => x,
            (Some(a), "sum") => a.checked_add(x).ok_or("overflow")?,
            (Some(a), "min") => a.min(x),
            (Some(a), _) => a.max(x),
        });
    }
    Ok(match agg.word.as_str() {
        "count" => Some(V::N(matches.len() as i64)),
        "sum" => Some(V::N(acc.unwrap_or(0))),
        "min" | "max" => acc.map(V::N),
        _ => return Err("an aggregate the reference does not know"),
    })
}

fn eval(t: &Term, env: &[(String, V)]) -> Result<Option<V>, &'static str> {
    Ok(match t {
        Term::Var((n, _)) => env.iter().find(|(m, _)| m == n).map(|(_, v)| v.clone()),
        Term::Int(n, _) => Some(V::N(*n)),
        Term::Str(s, _) => Some(V::S(s.clone())),
        Term::Arith { op, lhs, rhs, .. } => {
            let (Some(V::N(a)), Some(V::N(b))) = (eval(lhs, env)?, eval(rhs, env)?) else {
                return Ok(None);
            };
            let r = match op {
                '+' => a.checked_add(b),
                '-' => a.checked_sub(b),
                '*' => a.checked_mul(b),
                '/' => a.checked_div(b),
                '%' => a.checked_rem(b),
                _ => None,
            };
            Some(V::N(r.ok_or("overflow or division by zero")?))
        }
        _ => return Err("a term the reference does not evaluate here"),
    })
}
