//! Soufflé rules that compute numbers ([`tl_syntax::souffle::computed`]): the program runs on
//! the CPU without its commands, each computed rule is applied to every tuple of its hidden
//! relation, and the head tuples become facts of the next run, until no fact changes. The
//! program with those facts is then what `tl run` compiles, on any device. Lives with the
//! engine, which it drives, so that the command line and the fuzzer share it.

use crate::{Engine, RunOptions};
use std::collections::{BTreeSet, HashMap};
use tl_backend::cpu::CpuBackend;
use tl_check::CheckedProgram;
use tl_syntax::ast::{self, Atom, IndexArg, IndexExpr, Stmt, StmtKind};
use tl_syntax::souffle::computed::Groups;
use tl_syntax::souffle::{ComputedRule, Value};
use tl_syntax::{Diagnostic, SourceMap, Span, ToDiagnostic};

/// A computed head tuple: the relation and its values.
type Fact = (String, Vec<Value>);

/// Memory counted for one computed fact on its way through a run (a statement, then checked
/// and planned). A deliberate over-estimate: a program whose facts grow without bound peaked
/// at about 0.5 KB of resident memory per fact here; the margin keeps the stop well before
/// the limit.
const BYTES_PER_FACT: usize = 4096;

/// The program with the facts its computed rules derive in at most `rounds` runs, each with
/// `options` (its memory limit, say), or the diagnostics that stop it.
pub fn settle(
    program: ast::Program,
    computed: &[ComputedRule],
    sources: &SourceMap,
    rounds: usize,
    options: &RunOptions,
) -> Result<ast::Program, Vec<Diagnostic>> {
    let base = ast::Program {
        stmts: program
            .stmts
            .iter()
            .filter(|s| !matches!(s.kind, StmtKind::Query(_) | StmtKind::Write(_)))
            .cloned()
            .collect(),
    };
    let mut facts: BTreeSet<Fact> = BTreeSet::new();
    let mut span = computed.first().map_or_else(Span::default, |c| c.span);
    for _ in 0..rounds {
        let round = with_facts(&base, &facts);
        let checked = tl_check::check(&round, sources).map_err(|e| diagnostics(&e))?;
        let plan = tl_plan::plan(&checked).map_err(|e| diagnostics(&e))?;
        let next = derive(&checked, &plan, computed, options)?;
        if next == facts {
            return Ok(with_facts(&program, &facts));
        }
        // The rule blamed if this never ends: one whose head gained or lost a fact.
        let changed = next
            .symmetric_difference(&facts)
            .next()
            .map(|(r, _)| r.clone());
        if let Some(rule) = computed.iter().find(|c| Some(&c.head) == changed.as_ref()) {
            span = rule.span;
        }
        let budget = crate::host_memory::budget_now(options.max_memory);
        if next.len().saturating_mul(BYTES_PER_FACT) > budget {
            return Err(vec![Diagnostic::error(
                "TL0317",
                format!(
                    "rules that compute numbers have made {} facts, about {} MB to run, more than the {} MB the run may use",
                    next.len(),
                    next.len().saturating_mul(BYTES_PER_FACT) >> 20,
                    budget >> 20
                ),
                span,
                "this rule computes numbers",
            )
            .with_help("bound the recursion with a comparison (`n < 100`), or allow more memory with `--max-memory`")]);
        }
        facts = next;
    }
    Err(vec![Diagnostic::error(
        "TL0317",
        format!("rules that compute numbers still make new facts after {rounds} runs"),
        span,
        "this rule computes numbers",
    )
    .with_help(
        "bound the recursion with a comparison (`n < 100`), or allow more runs with `--max-iters`",
    )])
}

/// Errors of a phase as diagnostics.
fn diagnostics<E: ToDiagnostic>(errors: &[E]) -> Vec<Diagnostic> {
    errors.iter().map(ToDiagnostic::to_diagnostic).collect()
}

/// `program` with the facts added.
fn with_facts(program: &ast::Program, facts: &BTreeSet<Fact>) -> ast::Program {
    let mut out = program.clone();
    for (relation, values) in facts {
        let span = Span::default();
        let args = values
            .iter()
            .map(|v| match v {
                Value::Num(n) => IndexArg::Expr(IndexExpr::Int(*n, span)),
                Value::Sym(s) => IndexArg::Symbol {
                    name: s.clone(),
                    span,
                },
            })
            .collect();
        out.stmts.push(Stmt {
            kind: StmtKind::Fact(Atom {
                name: ast::Ident {
                    name: relation.clone(),
                    span,
                },
                args,
                span,
            }),
            span,
        });
    }
    out
}

/// Runs the program once and applies every computed rule to its hidden relation.
fn derive(
    checked: &CheckedProgram,
    plan: &tl_plan::ProgramPlan,
    computed: &[ComputedRule],
    options: &RunOptions,
) -> Result<BTreeSet<Fact>, Vec<Diagnostic>> {
    let backend = CpuBackend::new();
    let run_error = |e: crate::RunError| vec![e.to_diagnostic()];
    let mut engine = Engine::new(checked, plan, &backend, options.clone()).map_err(run_error)?;
    engine.evaluate_all().map_err(run_error)?;
    // Each aggregate's tuples, grouped by its leading (grouping) columns.
    let mut groups = Groups::new();
    for agg in computed.iter().flat_map(|r| &r.aggregates) {
        let mut by_key: HashMap<Vec<Value>, Vec<Vec<Value>>> = HashMap::new();
        for mut row in rows(checked, &engine, &agg.relation, agg.span)? {
            let inner = row.split_off(agg.outer.len().min(row.len()));
            by_key.entry(row).or_default().push(inner);
        }
        groups.insert(agg.relation.clone(), by_key);
    }
    let mut out = BTreeSet::new();
    for rule in computed {
        for binding in rows(checked, &engine, &rule.body, rule.span)? {
            match rule.apply(&binding, &groups) {
                Ok(Some(head)) => {
                    out.insert((rule.head.clone(), head));
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(vec![Diagnostic::error(
                        "TL0032",
                        e.message,
                        e.span,
                        "computed here",
                    )
                    .with_help(
                        "`tl` stores Soufflé numbers as integers from -2^31 to 2^32 - 2",
                    )])
                }
            }
        }
    }
    Ok(out)
}

/// The tuples of a hidden relation as values (symbols by name, numbers as themselves).
fn rows(
    checked: &CheckedProgram,
    engine: &Engine,
    relation: &str,
    span: Span,
) -> Result<Vec<Vec<Value>>, Vec<Diagnostic>> {
    let Some(t) = checked.tensors.iter().position(|d| d.name == relation) else {
        return Ok(Vec::new());
    };
    let axes = &checked.tensors[t].axes;
    let tuples = engine
        .tuples(t, span)
        .map_err(|e| vec![e.to_diagnostic()])?;
    Ok(tuples
        .iter()
        .map(|tuple| {
            tuple
                .iter()
                .zip(axes)
                .map(|(&e, &d)| {
                    let domain = &checked.domains[d];
                    match domain.symbols.get(e as usize) {
                        Some(s) if domain.is_symbolic() => Value::Sym(s.clone()),
                        _ => Value::Num(domain.int_of(e)),
                    }
                })
                .collect()
        })
        .collect())
}
