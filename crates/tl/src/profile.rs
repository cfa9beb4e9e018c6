//! Where a run's time went: statements (`tl run --profile`, `tl bench --profile`) and, for
//! strata the tuple engine evaluates, each rule's rounds, tuples and time, as Soufflé's
//! profiler reports them.

use std::time::Duration;
use tl_run::StratumProfile;
use tl_syntax::{SourceMap, Span};

/// `file:line  text` of the statement at `span` (its first line, at most 90 characters).
fn statement(span: Span, sources: &SourceMap) -> String {
    let file = sources.file(span.file);
    let (line, _) = sources.line_col(span.file, span.start);
    let text = file
        .text
        .lines()
        .nth(line.saturating_sub(1))
        .unwrap_or("")
        .trim();
    format!(
        "{}:{line}  {}",
        file.path.display(),
        text.chars().take(90).collect::<String>()
    )
}

/// A table of where the timed runs' time went, slowest first: milliseconds, share and count
/// per run of each `(what, time, count)` row, at most `limit` rows.
pub(crate) fn time_table(
    what: &str,
    count: &str,
    mut rows: Vec<(String, Duration, usize)>,
    runs: usize,
    limit: usize,
) -> String {
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    let total: Duration = rows.iter().map(|r| r.1).sum();
    let runs = runs.max(1) as f64;
    let mut out = format!(
        "{:>10}  {:>6}  {count:>9}  {what} (synchronised around each; {:.3} ms per run in all)\n",
        "ms/run",
        "share",
        total.as_secs_f64() * 1e3 / runs
    );
    for (label, time, calls) in rows.into_iter().take(limit) {
        out += &format!(
            "{:>10.4}  {:>5.1}%  {:>9.1}  {label}\n",
            time.as_secs_f64() * 1e3 / runs,
            100.0 * time.as_secs_f64() / total.as_secs_f64().max(1e-12),
            calls as f64 / runs,
        );
    }
    out
}

/// The statements that took the most time in the timed runs: milliseconds per run,
/// evaluations per run, `file:line` and the statement's first line.
pub(crate) fn profile_table(
    profile: &std::collections::HashMap<tl_syntax::Span, (Duration, usize)>,
    runs: usize,
    sources: &SourceMap,
) -> String {
    let rows = profile
        .iter()
        .map(|(span, &(time, count))| (statement(*span, sources), time, count))
        .collect();
    time_table("statement", "evals/run", rows, runs, 20)
}

/// One block per stratum the tuple engine evaluated: its heads (how each was held, its
/// tuples), rounds, time and device, then one line per rule: milliseconds, evaluations,
/// tuples produced and the rule.
pub(crate) fn relation_table(strata: &[StratumProfile], sources: &SourceMap) -> String {
    let mut out = String::new();
    for s in strata {
        let heads: Vec<String> = s
            .heads
            .iter()
            .map(|(name, form, tuples)| format!("{name} ({tuples} tuples, {form})"))
            .collect();
        out += &format!(
            "stratum {}: {} rounds, {:.3} ms, on {}\n",
            heads.join(", "),
            s.rounds,
            s.time.as_secs_f64() * 1e3,
            s.device
        );
        out += &format!("{:>10}  {:>6}  {:>12}  rule\n", "ms", "evals", "tuples");
        for (span, r) in &s.rules {
            out += &format!(
                "{:>10.3}  {:>6}  {:>12}  {}\n",
                r.time.as_secs_f64() * 1e3,
                r.runs,
                r.tuples,
                statement(*span, sources)
            );
        }
    }
    out
}

/// `tl run --profile`'s report: the tuple engine's strata, then the statements evaluated
/// densely (each timed on its own, the device synchronised around it).
pub(crate) fn report(
    strata: &[StratumProfile],
    statements: &std::collections::HashMap<Span, (Duration, usize)>,
    phases: &[(&str, Duration)],
    sources: &SourceMap,
) -> String {
    let mut out = String::from("profile:\n");
    out += &phase_line(phases);
    out += &relation_table(strata, sources);
    if !statements.is_empty() {
        out += &profile_table(statements, 1, sources);
    }
    out
}

/// One line of the whole run's phases, in order: `phases: read and check 1.2 ms, ...`.
pub(crate) fn phase_line(phases: &[(&str, Duration)]) -> String {
    let parts: Vec<String> = phases
        .iter()
        .map(|(what, d)| format!("{what} {:.1} ms", d.as_secs_f64() * 1e3))
        .collect();
    format!("phases: {}\n", parts.join(", "))
}
