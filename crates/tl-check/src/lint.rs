//! Warnings about programs that check but probably do not say what their author meant. Per
//! the paper, a tensor that is read but never defined is learned (an implicit `param`, drawn
//! at random); when no `minimize` learns it, the program prints random numbers and succeeds,
//! which is what a misspelt tensor name looks like. Such tensors are listed, with the defined
//! name each one most likely misspells. An index summed over one read inside a nested sum
//! (`avg= (X[n] - M)^2`) is reported too ([`lone_sum`]).

use crate::program::{CheckedProgram, Command, Definition, TensorId};
use crate::strata::collect_reads;
use tl_syntax::Diagnostic;

mod lone_sum;

/// Every warning of a checked program; `trained` names tensors already trained by commands
/// that are not part of it (an earlier `minimize` of a REPL session).
pub fn warnings(p: &CheckedProgram, trained: &[&str]) -> Vec<Diagnostic> {
    untrained_implicit_params(p, trained)
        .into_iter()
        .map(|t| untrained_warning(p, t))
        .chain(lone_sum::lone_sums(p))
        .collect()
}

/// The tensors each tensor's definitions read.
fn reads(p: &CheckedProgram) -> Vec<Vec<TensorId>> {
    let mut reads = vec![Vec::new(); p.tensors.len()];
    for eq in &p.equations {
        let mut found = Vec::new();
        collect_reads(&eq.rhs, &mut found);
        if let Some(r) = reads.get_mut(eq.lhs) {
            r.extend(found.into_iter().map(|(t, _)| t));
        }
    }
    for rule in &p.rules {
        if let Some(r) = reads.get_mut(rule.head) {
            r.extend(rule.body.iter().map(|a| a.tensor));
        }
    }
    reads
}

/// The implicit params that no `minimize` of the program trains, leaving out those named in
/// `trained_before`.
pub fn untrained_implicit_params(p: &CheckedProgram, trained_before: &[&str]) -> Vec<TensorId> {
    let implicit: Vec<TensorId> = (0..p.tensors.len())
        .filter(|&t| matches!(p.tensors[t].def, Definition::ImplicitParam))
        .filter(|&t| !trained_before.contains(&p.tensors[t].name.as_str()))
        .collect();
    if implicit.is_empty() {
        return Vec::new();
    }
    // Everything some loss depends on (iteratively: programs may be long chains).
    let reads = reads(p);
    let mut trained = vec![false; p.tensors.len()];
    let mut stack: Vec<TensorId> = p
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::Minimize(m) => Some(m.loss),
            _ => None,
        })
        .collect();
    while let Some(t) = stack.pop() {
        if std::mem::replace(&mut trained[t], true) {
            continue;
        }
        stack.extend(reads[t].iter().copied().filter(|&r| !trained[r]));
    }
    implicit.into_iter().filter(|&t| !trained[t]).collect()
}

/// `TL0117` for an implicit param that nothing trains.
fn untrained_warning(p: &CheckedProgram, t: TensorId) -> Diagnostic {
    let decl = &p.tensors[t];
    let mut help = format!(
        "define `{0}`, or declare it with `param {0}[…]` if random values are meant",
        decl.name
    );
    if let Some(near) = nearest_name(p, t) {
        help = format!("did you mean `{near}`? Otherwise {help}");
    }
    Diagnostic::error(
        "TL0117",
        format!(
            "`{}` is never defined, so it is learned as an implicit param, but no `minimize` trains it: it keeps its random initial values",
            decl.name
        ),
        decl.span,
        "read here, defined nowhere",
    )
    .warning()
    .with_help(help)
}

/// The defined tensor whose name is closest to tensor `t`'s (at most two edits, or one for
/// short names), if any.
fn nearest_name(p: &CheckedProgram, t: TensorId) -> Option<&str> {
    let name = &p.tensors[t].name;
    let limit = if name.chars().count() <= 3 { 1 } else { 2 };
    p.tensors
        .iter()
        .enumerate()
        .filter(|&(k, d)| k != t && !matches!(d.def, Definition::ImplicitParam))
        .map(|(_, d)| (edit_distance(name, &d.name), d.name.as_str()))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, n)| n)
}

/// Levenshtein distance between two names (insertions, deletions, substitutions).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("Wt", "W"), 1);
        assert_eq!(edit_distance("Weight", "Wieght"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("Parent", "Parent"), 0);
    }
}
