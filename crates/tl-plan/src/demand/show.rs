//! The rewrite as `tl check --dump-plan` prints it: the new relations and their rules in the
//! language's own syntax, the program's rules and queries that now read adorned copies, and
//! the relations no longer computed.

use super::Rewrite;
use tl_check::{BodyAtom, CheckedProgram, Definition, Rule, TensorId, Term};

/// The name of a constant of axis `axis` of `tensor`: its symbol, or its number.
fn constant(p: &CheckedProgram, tensor: TensorId, axis: usize, c: u32) -> String {
    p.tensors
        .get(tensor)
        .and_then(|t| t.axes.get(axis))
        .and_then(|&d| p.domains.get(d))
        .map_or_else(|| c.to_string(), |d| d.label(c))
}

fn term(p: &CheckedProgram, rule: &Rule, tensor: TensorId, axis: usize, t: &Term) -> String {
    match t {
        Term::Var(v) => rule
            .vars
            .get(*v)
            .map_or_else(|| format!("_{v}"), |i| i.name.clone()),
        Term::Const(c) | Term::Symbol(c) => constant(p, tensor, axis, *c),
    }
}

fn name(p: &CheckedProgram, t: TensorId) -> &str {
    p.tensors.get(t).map_or("?", |d| d.name.as_str())
}

fn atom(p: &CheckedProgram, rule: &Rule, tensor: TensorId, args: &[Term]) -> String {
    let args: Vec<String> = args
        .iter()
        .enumerate()
        .map(|(k, t)| term(p, rule, tensor, k, t))
        .collect();
    format!("{}({})", name(p, tensor), args.join(", "))
}

fn body_atom(p: &CheckedProgram, rule: &Rule, a: &BodyAtom) -> String {
    let text = atom(p, rule, a.tensor, &a.args);
    if a.negated {
        format!("not {text}")
    } else {
        text
    }
}

/// A rule in the language's syntax.
pub(crate) fn rule_text(p: &CheckedProgram, rule: &Rule) -> String {
    let mut parts: Vec<String> = rule.body.iter().map(|a| body_atom(p, rule, a)).collect();
    for c in &rule.comparisons {
        let side = |t: &Term| match t {
            Term::Var(v) => rule
                .vars
                .get(*v)
                .map_or_else(|| format!("_{v}"), |i| i.name.clone()),
            Term::Const(c) | Term::Symbol(c) => c.to_string(),
        };
        parts.push(format!(
            "{} {} {}",
            side(&c.lhs),
            c.op.symbol(),
            side(&c.rhs)
        ));
    }
    format!(
        "{} <- {}",
        atom(p, rule, rule.head, &rule.head_args),
        parts.join(", ")
    )
}

impl Rewrite {
    /// The rewrite, one line per item, for the program it was applied to.
    pub fn render(&self, p: &CheckedProgram) -> String {
        let (demanded, whole) = self.estimate;
        let mut out = format!(
            "goal-directed evaluation (a demand rewrite; estimated cells: {demanded} demanded, \
             {whole} for the relations it leaves out):\n"
        );
        let names = |ts: &[TensorId]| -> String {
            ts.iter()
                .map(|&t| name(p, t))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.dropped.is_empty() {
            out += &format!("  not computed: {}\n", names(&self.dropped));
        }
        for &(id, original, ref adornment) in &self.adorned {
            let pattern: String = adornment
                .iter()
                .map(|&b| if b { 'b' } else { 'f' })
                .collect();
            out += &format!(
                "  {}: the tuples of {} that demand reaches (arguments {pattern}: b bound, f free)\n",
                name(p, id),
                name(p, original)
            );
        }
        for &(c, _, new) in &self.queries {
            if let Some(tl_check::Command::Query { text, .. }) = p.commands.get(c) {
                out += &format!("  query `{text}?` reads {}\n", name(p, new));
            }
        }
        for &m in &self.magic {
            if let Some(decl) = p.tensors.get(m) {
                let seeds = match &decl.def {
                    Definition::Tuples(rows) => rows,
                    _ => &decl.facts,
                };
                for fact in seeds {
                    let args: Vec<String> = fact
                        .iter()
                        .enumerate()
                        .map(|(k, &c)| constant(p, m, k, c))
                        .collect();
                    out += &format!("  {}({})\n", decl.name, args.join(", "));
                }
            }
        }
        for rule in p.rules.get(self.new_rules.clone()).unwrap_or(&[]) {
            out += &format!("  {}\n", rule_text(p, rule));
        }
        for &r in &self.edited_rules {
            if let Some(rule) = p.rules.get(r) {
                out += &format!("  {}   (rewritten)\n", rule_text(p, rule));
            }
        }
        out
    }
}
