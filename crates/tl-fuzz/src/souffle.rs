//! A grammar-aware generator of Soufflé programs (`.dl`): declarations of a few relations of
//! `number` and `symbol` attributes, facts, and rules with atoms, negations, comparisons,
//! arithmetic in heads and comparisons, and aggregates, each chosen by the input bytes. Most
//! programs parse; many are rejected by Soufflé's own checks (ungrounded variables, types,
//! stratification), and the rest run, through the settling runs of rules that compute numbers.

use arbitrary::Unstructured;

/// Reads choices from bytes; past their end every choice is the first option.
struct Choices<'a>(Unstructured<'a>);

impl<'a> Choices<'a> {
    fn new(data: &'a [u8]) -> Self {
        Choices(Unstructured::new(data))
    }

    fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        self.0.int_in_range(0..=n - 1).unwrap_or(0)
    }
}

/// The relations every program declares: name and attribute types (`n` number, `s` symbol).
const RELATIONS: &[(&str, &str)] = &[
    ("e", "nn"),
    ("f", "ns"),
    ("g", "n"),
    ("h", "sn"),
    ("k", "nnn"),
];

/// Number and symbol variables a rule draws from.
const NUMBER_VARS: &[&str] = &["x", "y", "z", "w"];
const SYMBOL_VARS: &[&str] = &["s", "t"];

/// A program from the choices in `data`.
pub fn program(data: &[u8]) -> String {
    let mut c = Choices::new(data);
    let mut out = String::new();
    for (name, types) in RELATIONS {
        let attrs: Vec<String> = types
            .chars()
            .enumerate()
            .map(|(k, t)| format!("a{k}: {}", if t == 'n' { "number" } else { "symbol" }))
            .collect();
        out.push_str(&format!(".decl {name}({})\n", attrs.join(", ")));
    }
    for _ in 0..c.below(8) + 2 {
        let (name, types) = RELATIONS[c.below(RELATIONS.len())];
        let args: Vec<String> = types.chars().map(|t| constant(&mut c, t)).collect();
        out.push_str(&format!("{name}({}).\n", args.join(", ")));
    }
    for _ in 0..c.below(5) + 1 {
        out.push_str(&rule(&mut c));
        out.push('\n');
    }
    for (name, _) in RELATIONS {
        if c.below(2) == 0 {
            out.push_str(&format!(".output {name}\n"));
        }
    }
    out
}

fn constant(c: &mut Choices, t: char) -> String {
    if t == 'n' {
        (c.below(8) as i64 - 2).to_string()
    } else {
        format!("\"{}\"", ["a", "b", "c"][c.below(3)])
    }
}

/// The variables a rule's positive atoms bind so far, by type.
#[derive(Default)]
struct Bound {
    numbers: Vec<String>,
    symbols: Vec<String>,
}

impl Bound {
    fn add(&mut self, v: &str, t: char) {
        let list = if t == 'n' {
            &mut self.numbers
        } else {
            &mut self.symbols
        };
        if !list.iter().any(|x| x == v) {
            list.push(v.to_string());
        }
    }

    /// A bound variable of type `t`, or a constant when there is none.
    fn pick(&self, c: &mut Choices, t: char) -> String {
        let list = if t == 'n' {
            &self.numbers
        } else {
            &self.symbols
        };
        if list.is_empty() || c.below(5) == 0 {
            constant(c, t)
        } else {
            list[c.below(list.len())].clone()
        }
    }
}

/// A number term over bound variables: a variable, a constant, or arithmetic on them.
fn number(c: &mut Choices, b: &Bound, depth: usize) -> String {
    match c.below(if depth > 1 { 2 } else { 4 }) {
        0 => b.pick(c, 'n'),
        1 => (c.below(7) as i64 - 2).to_string(),
        _ => {
            let op = ["+", "+", "-", "*", "/", "%"][c.below(6)];
            format!(
                "{} {op} {}",
                number(c, b, depth + 1),
                number(c, b, depth + 1)
            )
        }
    }
}

/// A positive atom, binding its variables in `b` (`_` where `wild` allows).
fn atom(c: &mut Choices, b: &mut Bound, wild: bool) -> String {
    let (name, types) = RELATIONS[c.below(RELATIONS.len())];
    let mut args = Vec::new();
    for t in types.chars() {
        args.push(match c.below(6) {
            0 if wild => "_".to_string(),
            1 => constant(c, t),
            _ => {
                let pool = if t == 'n' { NUMBER_VARS } else { SYMBOL_VARS };
                let v = pool[c.below(pool.len())];
                b.add(v, t);
                v.to_string()
            }
        });
    }
    format!("{name}({})", args.join(", "))
}

/// An atom over bound variables only (for a negation).
fn bound_atom(c: &mut Choices, b: &Bound) -> String {
    let (name, types) = RELATIONS[c.below(RELATIONS.len())];
    let args: Vec<String> = types
        .chars()
        .map(|t| {
            if c.below(4) == 0 {
                "_".to_string()
            } else {
                b.pick(c, t)
            }
        })
        .collect();
    format!("{name}({})", args.join(", "))
}

/// An aggregate whose body shares some of the rule's variables.
fn aggregate(c: &mut Choices, outer: &Bound) -> String {
    let mut inner = Bound {
        numbers: outer.numbers.clone(),
        symbols: outer.symbols.clone(),
    };
    let mut body = atom(c, &mut inner, true);
    if c.below(3) == 0 {
        body = format!("{body}, {} < {}", inner.pick(c, 'n'), number(c, outer, 1));
    }
    let fresh: Vec<&String> = inner
        .numbers
        .iter()
        .filter(|v| !outer.numbers.contains(v))
        .collect();
    let target = fresh.first().map(|v| v.to_string());
    match (c.below(4), target) {
        (1, Some(v)) => format!("sum {v} : {{ {body} }}"),
        (2, Some(v)) => format!("min {v} : {{ {body} }}"),
        (3, Some(v)) => format!("max {v} : {{ {body} }}"),
        _ => format!("count : {{ {body} }}"),
    }
}

fn rule(c: &mut Choices) -> String {
    let mut b = Bound::default();
    let mut body: Vec<String> = (0..c.below(2) + 1).map(|_| atom(c, &mut b, true)).collect();
    for _ in 0..c.below(3) {
        let lit = match c.below(4) {
            0 => format!("!{}", bound_atom(c, &b)),
            1 => {
                let op = ["=", "!=", "<", "<=", ">", ">="][c.below(6)];
                format!("{} {op} {}", number(c, &b, 0), number(c, &b, 0))
            }
            2 => {
                let v = ["n", "m"][c.below(2)];
                let lit = format!("{v} = {}", aggregate(c, &b));
                b.add(v, 'n');
                lit
            }
            _ => {
                let v = ["p", "q"][c.below(2)];
                let lit = format!("{v} = {}", number(c, &b, 0));
                b.add(v, 'n');
                lit
            }
        };
        body.push(lit);
    }
    if !b.numbers.is_empty() && c.below(2) == 0 {
        body.push(format!("{} < {}", b.pick(c, 'n'), c.below(8)));
    }
    let (name, types) = RELATIONS[c.below(RELATIONS.len())];
    let head: Vec<String> = types
        .chars()
        .map(|t| match t {
            'n' if c.below(3) == 0 => number(c, &b, 1),
            _ => b.pick(c, t),
        })
        .collect();
    format!("{name}({}) :- {}.", head.join(", "), body.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes from a small deterministic generator.
    fn bytes(seed: u64, n: usize) -> Vec<u8> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as u8
            })
            .collect()
    }

    #[test]
    fn many_generated_programs_pass_souffles_checks_and_none_breaks_the_pipeline() {
        let scratch = std::env::temp_dir().join("tl-fuzz-souffle-test");
        let _ = std::fs::create_dir_all(&scratch);
        let mut clean = 0;
        let mut computed = 0;
        for seed in 0..300 {
            let text = program(&bytes(seed, 200));
            let options = tl_syntax::souffle::Options {
                fact_dir: scratch.clone(),
                output: tl_syntax::souffle::Output::Stdout,
            };
            let (_, rules, errors) =
                tl_syntax::souffle::parse_souffle(&text, tl_syntax::FileId(0), &options);
            if errors.is_empty() {
                clean += 1;
                computed += usize::from(!rules.is_empty());
            }
            if let Err(f) = crate::pipeline::run_souffle(&text, &scratch) {
                panic!("{f}\n{text}");
            }
        }
        // The generator is worth running only if a good share reaches the engine.
        eprintln!("{clean} of 300 pass the front end, {computed} compute numbers");
        assert!(clean >= 60, "{clean} of 300 programs pass the front end");
        assert!(computed >= 20, "{computed} of them compute numbers");
    }

    /// `tl`'s answer for each `.output` relation, as sets of tuples.
    fn answers_of(json: &[serde_json::Value]) -> crate::souffle_ref::Db {
        use crate::souffle_ref::V;
        json.iter()
            .map(|a| {
                let name = a["query"].as_str().unwrap_or_default().to_string();
                let rows = a["rows"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|r| {
                        r.as_array()
                            .cloned()
                            .unwrap_or_default()
                            .iter()
                            .map(|v| match v.as_str() {
                                Some(s) => V::S(s.to_string()),
                                None => V::N(v.as_i64().unwrap_or(i64::MIN)),
                            })
                            .collect()
                    })
                    .collect();
                (name, rows)
            })
            .collect()
    }

    #[test]
    fn generated_programs_answer_as_the_reference_evaluator_does() {
        let scratch = std::env::temp_dir().join("tl-fuzz-souffle-diff");
        let _ = std::fs::create_dir_all(&scratch);
        let cases: u64 = std::env::var("TL_SOUFFLE_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(400);
        let mut compared = 0;
        let mut computing = 0;
        for seed in 0..cases {
            let text = program(&bytes(seed.wrapping_mul(7919) + 11, 240));
            let Ok(want) = crate::souffle_ref::evaluate(&text) else {
                continue;
            };
            let got = match crate::pipeline::souffle_answers(&text, &scratch) {
                Ok(Some(a)) => answers_of(&a),
                Ok(None) => continue,
                Err(f) => panic!("{f}\n{text}"),
            };
            assert_eq!(got, want, "\n{text}");
            compared += 1;
            let options = tl_syntax::souffle::Options {
                fact_dir: scratch.clone(),
                output: tl_syntax::souffle::Output::Stdout,
            };
            let (_, rules, _) =
                tl_syntax::souffle::parse_souffle(&text, tl_syntax::FileId(0), &options);
            computing += usize::from(!rules.is_empty());
        }
        eprintln!(
            "{compared} of {cases} programs compared, {computing} with rules that compute numbers"
        );
        assert!(
            compared >= cases as usize / 5,
            "only {compared} programs compared"
        );
        assert!(
            computing >= compared / 4,
            "only {computing} compute numbers"
        );
    }
}
