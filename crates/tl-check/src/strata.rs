//! Stratification: derived tensors are grouped into strongly connected components of the
//! dependency graph and ordered so every stratum's inputs come first. A cycle through `not` is
//! an error that names the cycle.

use crate::error::CheckError;
use crate::program::{CheckedProgram, Definition, Expr, Stratum, TensorId};
use tl_syntax::Span;

/// Edges of the dependency graph: `deps[t]` lists (input, negated, span) for derived tensor t.
fn dependencies(p: &CheckedProgram) -> Vec<Vec<(TensorId, bool, Span)>> {
    let mut deps = vec![Vec::new(); p.tensors.len()];
    for eq in &p.equations {
        let mut reads = Vec::new();
        collect_reads(&eq.rhs, &mut reads);
        deps[eq.lhs].extend(reads.into_iter().map(|(t, s)| (t, false, s)));
    }
    for rule in &p.rules {
        for atom in &rule.body {
            deps[rule.head].push((atom.tensor, atom.negated, rule.span));
        }
    }
    // A loop's tensors run together: its step equations' reads, and a ring of edges through
    // its tensors that makes them one stratum.
    for l in &p.loops {
        for s in &l.equations {
            let mut reads = Vec::new();
            collect_reads(&s.equation.rhs, &mut reads);
            deps[s.equation.lhs].extend(reads.into_iter().map(|(t, sp)| (t, false, sp)));
        }
        let ring = l.tensors.iter().zip(l.tensors.iter().cycle().skip(1));
        for (a, b) in ring {
            deps[a.tensor].push((b.tensor, false, l.span));
        }
    }
    deps
}

/// Every tensor an expression reads, with where.
pub fn collect_reads(e: &Expr, out: &mut Vec<(TensorId, Span)>) {
    match e {
        Expr::Access(a) => out.push((a.tensor, a.span)),
        Expr::Call(_, args, _) => args.iter().for_each(|a| collect_reads(a, out)),
        Expr::Neg(x) => collect_reads(x, out),
        Expr::Binary(_, a, b) => {
            collect_reads(a, out);
            collect_reads(b, out);
        }
        Expr::Number(_) | Expr::IndexValue(_) => {}
    }
}

struct Tarjan<'a> {
    deps: &'a [Vec<(TensorId, bool, Span)>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<TensorId>,
    next: usize,
    out: Vec<Vec<TensorId>>,
}

impl Tarjan<'_> {
    /// Iterative Tarjan (deep recursion could overflow on long rule chains).
    fn visit(&mut self, root: TensorId) {
        let mut work: Vec<(TensorId, usize)> = vec![(root, 0)];
        while let Some(&mut (v, ref mut edge)) = work.last_mut() {
            if *edge == 0 && self.index[v].is_none() {
                self.index[v] = Some(self.next);
                self.low[v] = self.next;
                self.next += 1;
                self.stack.push(v);
                self.on_stack[v] = true;
            }
            if let Some(&(w, _, _)) = self.deps[v].get(*edge) {
                *edge += 1;
                match self.index[w] {
                    None => work.push((w, 0)),
                    Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                self.low[parent] = self.low[parent].min(self.low[v]);
            }
            if Some(self.low[v]) == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                comp.sort_unstable();
                self.out.push(comp);
            }
        }
    }
}

/// Orders the derived tensors into strata (inputs first); errors on recursion through `not`.
pub fn stratify(p: &CheckedProgram) -> Result<Vec<Stratum>, CheckError> {
    let deps = dependencies(p);
    let n = p.tensors.len();
    let mut t = Tarjan {
        deps: &deps,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    let mut strata = Vec::new();
    for comp in t.out {
        let derived: Vec<TensorId> = comp
            .iter()
            .copied()
            .filter(|&x| matches!(p.tensors[x].def, Definition::Derived))
            .collect();
        if derived.is_empty() {
            continue;
        }
        let recursive = comp.len() > 1 || deps[comp[0]].iter().any(|&(w, _, _)| w == comp[0]);
        if recursive {
            for &head in &comp {
                for &(w, negated, span) in &deps[head] {
                    if negated && comp.contains(&w) {
                        let cycle = path(&deps, w, head, &comp)
                            .iter()
                            .map(|&x| p.tensors[x].name.as_str())
                            .collect::<Vec<_>>()
                            .join(" -> ");
                        return Err(CheckError::NegationCycle {
                            cycle: format!("{} -> not {}", cycle, p.tensors[w].name),
                            span,
                        });
                    }
                }
            }
        }
        strata.push(Stratum {
            tensors: derived,
            recursive,
        });
    }
    Ok(strata)
}

/// A dependency path from `from` to `to` within one component (breadth first), as tensor ids.
fn path(
    deps: &[Vec<(TensorId, bool, Span)>],
    from: TensorId,
    to: TensorId,
    comp: &[TensorId],
) -> Vec<TensorId> {
    // Edges point from a head to what it reads, so walk "is read by" from `to` back to `from`.
    let mut prev: std::collections::HashMap<TensorId, TensorId> = std::collections::HashMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(v) = queue.pop_front() {
        if v == to {
            break;
        }
        for &head in comp {
            if deps[head].iter().any(|&(w, _, _)| w == v)
                && !prev.contains_key(&head)
                && head != from
            {
                prev.insert(head, v);
                queue.push_back(head);
            }
        }
    }
    let mut out = vec![to];
    let mut cur = to;
    while let Some(&p) = prev.get(&cur) {
        out.push(p);
        cur = p;
        if cur == from {
            break;
        }
    }
    out.reverse();
    out
}
