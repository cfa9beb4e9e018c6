//! Goal-directed evaluation answers exactly what full evaluation answers: random Datalog
//! programs (recursion, several binding patterns, constants in bodies and queries, negation
//! of lower strata, comparisons, random facts) are run with the demand rewrite applied
//! wherever it can be (`Mode::Always`), where the planner chooses (`Mode::Auto`) and never
//! (`Mode::Off`), and every query's answer must agree.

use proptest::prelude::*;
use tl_backend::cpu::CpuBackend;
use tl_plan::demand::Mode;
use tl_run::{Engine, RunOptions};
use tl_syntax::SourceMap;

/// A small deterministic generator, so that a failing case is reproduced by its seed.
struct Choices(u64);

impl Choices {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// The relations defined by facts, with their arities.
const FACTS: &[(&str, usize)] = &[("E", 2), ("F", 2), ("U", 1)];
/// The relations defined by rules, with their arities; a relation's level is its position, and
/// a rule may negate only facts or relations of lower levels.
const DERIVED: &[(&str, usize)] = &[("A", 2), ("B", 2), ("C", 1), ("D", 2), ("G", 1)];
const VARS: &[&str] = &["x", "y", "z", "w"];

/// A random program over a domain of `n` elements.
fn program(seed: u64) -> String {
    let mut c = Choices(seed | 1);
    let n = 3 + c.below(4);
    let mut out = String::new();
    for &(name, arity) in FACTS {
        let cells = n.pow(arity as u32);
        let density = 10 + c.below(40);
        for cell in 0..cells {
            if c.chance(density) {
                let args: Vec<String> = (0..arity)
                    .map(|k| (cell / n.pow(k as u32) % n).to_string())
                    .collect();
                out += &format!("{name}({})\n", args.join(", "));
            }
        }
        // Every relation spans the whole domain.
        let last = vec![(n - 1).to_string(); arity];
        out += &format!("{name}({})\n", last.join(", "));
    }
    let term = |c: &mut Choices, constants: usize| {
        if c.chance(constants) {
            c.below(n).to_string()
        } else {
            VARS[c.below(VARS.len())].to_string()
        }
    };
    for (level, &(head, arity)) in DERIVED.iter().enumerate() {
        for r in 0..1 + c.below(3) {
            let mut body = Vec::new();
            let mut used: Vec<String> = Vec::new();
            for _ in 0..1 + c.below(3) {
                // The first rule of a relation reads only lower relations, so none is empty
                // for want of a base case.
                let own = if r == 0 { level } else { level + 1 };
                let pick = c.below(FACTS.len() + own);
                let (name, atom_arity, lower) = match pick.checked_sub(FACTS.len()) {
                    None => (FACTS[pick].0, FACTS[pick].1, true),
                    Some(k) => (DERIVED[k].0, DERIVED[k].1, k < level),
                };
                let args: Vec<String> = (0..atom_arity).map(|_| term(&mut c, 15)).collect();
                used.extend(args.iter().filter(|a| VARS.contains(&a.as_str())).cloned());
                let negated = !body.is_empty() && lower && c.chance(20);
                body.push(format!(
                    "{}{name}({})",
                    if negated { "not " } else { "" },
                    args.join(", ")
                ));
            }
            // Head and comparison variables come from the body, which gives them a size.
            let bound_term = |c: &mut Choices, constants: usize| {
                if used.is_empty() || c.chance(constants) {
                    c.below(n).to_string()
                } else {
                    used[c.below(used.len())].clone()
                }
            };
            if c.chance(20) {
                let ops = ["!=", "<", "<=", "==", ">"];
                let (a, b) = (bound_term(&mut c, 0), bound_term(&mut c, 30));
                body.push(format!("{a} {} {b}", ops[c.below(ops.len())]));
            }
            let args: Vec<String> = (0..arity).map(|_| bound_term(&mut c, 5)).collect();
            out += &format!("{head}({}) <- {}\n", args.join(", "), body.join(", "));
        }
    }
    for _ in 0..2 + c.below(4) {
        let (name, arity) = DERIVED[c.below(DERIVED.len())];
        if c.chance(10) {
            out += &format!("{name}?\n");
            continue;
        }
        let args: Vec<String> = (0..arity).map(|_| term(&mut c, 50)).collect();
        out += &format!("{name}({})?\n", args.join(", "));
    }
    out
}

/// Every query's JSON answer, or the error, with the rewrite in `mode`; `None` when the
/// program does not check (the generator can make rules the checker rejects).
fn answers(src: &str, mode: Mode) -> Option<(Result<Vec<String>, String>, bool)> {
    let mut sources = SourceMap::new();
    let (parsed, diags) =
        tl_syntax::load_source("<test>", src, &mut sources, std::path::Path::new("."));
    if !diags.is_empty() {
        return None;
    }
    let mut checked = tl_check::check(&parsed, &sources).ok()?;
    let rewritten = tl_plan::demand::rewrite(&mut checked, mode).is_some();
    let plan = tl_plan::plan(&checked).ok()?;
    let backend = CpuBackend::new();
    let mut engine = match Engine::new(&checked, &plan, &backend, RunOptions::default()) {
        Ok(e) => e,
        Err(e) => return Some((Err(format!("{e:?}")), rewritten)),
    };
    let mut out = Vec::new();
    let result = engine.run(
        &mut |answer| out.push(answer.to_json()),
        &mut tl_run::observe::Silent,
    );
    Some((
        result.map(|()| out).map_err(|e| format!("{e:?}")),
        rewritten,
    ))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn goal_directed_answers_equal_full_answers(seed in any::<u64>()) {
        let src = program(seed);
        let Some((full, _)) = answers(&src, Mode::Off) else {
            return Ok(());
        };
        prop_assume!(full.is_ok());
        for mode in [Mode::Always, Mode::Auto] {
            let Some((goal, _)) = answers(&src, mode) else {
                return Err(TestCaseError::fail(format!("{mode:?} did not plan:\n{src}")));
            };
            prop_assert_eq!(&goal, &full, "{:?} differs on\n{}", mode, src);
        }
    }
}

#[test]
fn most_generated_programs_are_rewritten() {
    let mut rewritten = 0;
    let mut checked = 0;
    for seed in 1..200u64 {
        if let Some((Ok(_), r)) = answers(&program(seed * 7919), Mode::Always) {
            checked += 1;
            rewritten += usize::from(r);
        }
    }
    assert!(checked >= 100, "only {checked} of 199 programs ran");
    assert!(
        rewritten * 2 >= checked,
        "{rewritten} of {checked} rewritten"
    );
}
