//! Programs from bytes: every choice (which statement, which tensor, which index, which
//! number) is read from an [`arbitrary::Unstructured`], so a fuzzer that mutates the bytes
//! explores programs that mostly parse and check, and so reach the planner and the engine.
//! Names come from small pools, so that statements refer to one another; numbers include the
//! hostile ones (huge, tiny, past 2^32 and 2^53).

use arbitrary::Unstructured;
use std::fmt::Write as _;
use tl_backend::ops::{UnaryFn, NORM_NAMES};

const TENSORS: &[&str] = &[
    "A", "B", "C", "W", "X", "Y", "Z", "S", "M", "V", "Loss", "Parent", "Edge", "Reach", "Anc",
];
const RELATIONS: &[&str] = &["Parent", "Edge", "Reach", "Anc", "R", "S"];
const INDICES: &[&str] = &["i", "j", "k", "x", "y", "z", "p", "q"];
const SYMBOLS: &[&str] = &["Alice", "Bob", "Carol", "Dave", "\"New York\""];
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "-1",
    "0.5",
    "-0.25",
    "1e-3",
    "7",
    "1e308",
    "-1e308",
    "1e-310",
    "3e38",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "123456789012345678901234567890",
];
const PROJECTIONS: &[&str] = &["=", "=", "=", "+=", "max=", "min=", "avg="];
const COMPARISONS: &[&str] = &["==", "!=", "<", "<=", ">", ">="];

/// Reads choices from bytes; past their end every choice is the first option.
struct Gen<'a, 'b> {
    u: &'a mut Unstructured<'b>,
    out: String,
}

impl Gen<'_, '_> {
    fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        self.u.int_in_range(0..=n - 1).unwrap_or(0)
    }

    fn pick<'s>(&mut self, from: &[&'s str]) -> &'s str {
        from[self.below(from.len())]
    }

    fn chance(&mut self, in_256: u8) -> bool {
        self.u.arbitrary::<u8>().unwrap_or(255) < in_256
    }

    /// An index position: a variable, sometimes with arithmetic, a constant, a symbol or a
    /// step.
    fn index(&mut self) -> String {
        let v = self.pick(INDICES);
        match self.below(11) {
            5 => format!("*{v}"),
            0 => format!("{v}+1"),
            1 => format!("{v}/2"),
            2 => format!("{v}-1"),
            3 => self.pick(&["0", "1", "2", "-1", "4294967296"]).to_string(),
            4 => self.pick(SYMBOLS).to_string(),
            _ => v.to_string(),
        }
    }

    fn access(&mut self) -> String {
        let name = self.pick(TENSORS);
        let rank = self.below(4);
        if rank == 0 && self.chance(128) {
            return name.to_string();
        }
        let args: Vec<String> = (0..rank).map(|_| self.index()).collect();
        format!("{name}[{}]", args.join(", "))
    }

    /// An expression of at most `depth` levels of operators and calls.
    fn expr(&mut self, depth: usize) -> String {
        if depth == 0 {
            return match self.below(6) {
                0 => self.pick(NUMBERS).to_string(),
                1 => self.pick(INDICES).to_string(),
                2 => {
                    let r = self.pick(RELATIONS);
                    let a = self.index();
                    format!("{r}({a})")
                }
                _ => self.access(),
            };
        }
        match self.below(9) {
            0 => format!("{} + {}", self.expr(depth - 1), self.expr(depth - 1)),
            1 => format!("{} - {}", self.expr(depth - 1), self.expr(depth - 1)),
            2 => format!("{} {}", self.expr(depth - 1), self.expr(depth - 1)),
            3 => format!("{} / {}", self.expr(depth - 1), self.expr(depth - 1)),
            4 => format!(
                "({})^{}",
                self.expr(depth - 1),
                self.pick(&["2", "0", "0.5", "-1"])
            ),
            5 => match self.below(8) {
                0 => format!(
                    "dropout({}, {})",
                    self.expr(depth - 1),
                    self.pick(&["0", "0.5", "0.99", "1", "-1"])
                ),
                1 => {
                    let n = self.below(3);
                    let args: Vec<String> = (0..=n).map(|_| self.access()).collect();
                    format!("concat({})", args.join(", "))
                }
                _ => {
                    // Every surface name of the function table and the normalisations.
                    let names: Vec<&str> = UnaryFn::NAMES
                        .iter()
                        .map(|(n, _)| *n)
                        .chain(NORM_NAMES.iter().map(|(n, _)| *n))
                        .collect();
                    let f = self.pick(&names);
                    format!("{f}({})", self.expr(depth - 1))
                }
            },
            6 => format!("-({})", self.expr(depth - 1)),
            7 => format!("({})", self.expr(depth - 1)),
            _ => self.expr(0),
        }
    }

    fn literal(&mut self, rank: usize) -> String {
        if rank == 0 {
            return self.pick(NUMBERS).to_string();
        }
        let n = 1 + self.below(4);
        let inner: Vec<String> = (0..n).map(|_| self.literal(rank - 1)).collect();
        format!("[{}]", inner.join(", "))
    }

    fn lhs(&mut self) -> String {
        let name = self.pick(TENSORS);
        let rank = self.below(4);
        if rank == 0 {
            return name.to_string();
        }
        let mut args = Vec::new();
        for k in 0..rank {
            let v = self.pick(INDICES);
            let mut a = match self.below(12) {
                0 => format!("{v}+1"),
                1 => format!("{v}: {}", 1 + self.below(5)),
                2 => format!("{v}+3"),
                3 => self.pick(&["0", "2"]).to_string(),
                4 => format!("*{v}+1"),
                5 => format!("*{v}"),
                _ => v.to_string(),
            };
            if k + 1 == rank && self.chance(40) {
                a.push('.');
            }
            args.push(a);
        }
        format!("{name}[{}]", args.join(", "))
    }

    fn atom(&mut self, negated: bool) -> String {
        let r = self.pick(RELATIONS);
        let arity = 1 + self.below(3);
        let args: Vec<String> = (0..arity)
            .map(|_| match self.below(6) {
                0 => self.pick(SYMBOLS).to_string(),
                1 => self.pick(&["0", "1", "3"]).to_string(),
                _ => self.pick(INDICES).to_string(),
            })
            .collect();
        let not = if negated { "not " } else { "" };
        format!("{not}{r}({})", args.join(", "))
    }

    fn statement(&mut self) {
        let line = match self.below(16) {
            0 => match self.below(2) {
                0 => format!("domain D = {}", self.pick(&["1", "3", "5", "0", "100000"])),
                _ => "domain P = {Alice, Bob, Carol}".to_string(),
            },
            1 | 2 => {
                let name = self.pick(TENSORS);
                let rank = self.below(4);
                format!("{name} = {}", self.literal(rank))
            }
            3 | 4 => {
                let r = self.pick(RELATIONS);
                let arity = 1 + self.below(3);
                let args: Vec<String> = (0..arity)
                    .map(|_| match self.below(5) {
                        0 => self
                            .pick(&["0", "2", "4294967294", "4294967296"])
                            .to_string(),
                        _ => self.pick(SYMBOLS).to_string(),
                    })
                    .collect();
                format!("{r}({})", args.join(", "))
            }
            5 | 6 => {
                let head = self.atom(false);
                let n = 1 + self.below(3);
                let mut body: Vec<String> = (0..n)
                    .map(|k| {
                        let neg = k > 0 && self.chance(50);
                        self.atom(neg)
                    })
                    .collect();
                if self.chance(80) {
                    let (a, b) = (self.pick(INDICES), self.pick(INDICES));
                    body.push(format!("{a} {} {b}", self.pick(COMPARISONS)));
                }
                format!("{head} <- {}", body.join(", "))
            }
            7..=9 => {
                let lhs = self.lhs();
                let op = self.pick(PROJECTIONS);
                let depth = self.below(4);
                format!("{lhs} {op} {}", self.expr(depth))
            }
            10 => {
                let name = self.pick(TENSORS);
                let dims: Vec<String> = (0..self.below(3))
                    .map(|_| (1 + self.below(4)).to_string())
                    .collect();
                let init = self.pick(&[
                    " ~ normal(0, 1)",
                    " ~ uniform(-1, 1)",
                    " ~ xavier",
                    " = 0",
                    " = 0.5",
                    "",
                ]);
                if dims.is_empty() {
                    format!("param {name}{init}")
                } else {
                    format!("param {name}[{}]{init}", dims.join(", "))
                }
            }
            11 => {
                let loss = self.pick(TENSORS);
                let opt = self.pick(&[
                    "sgd(lr=0.1)",
                    "adam(lr=0.05)",
                    "adamw(lr=0.01)",
                    "sgd(lr=1e9)",
                ]);
                let steps = self.pick(&["1", "3", "10", "2"]);
                format!("minimize {loss} with {opt} for {steps} steps")
            }
            12 => {
                let a = self.pick(TENSORS);
                format!("\"out.npy\" = {a}")
            }
            13 => {
                // Long sums and products, and deep nesting.
                let n = 1 + self.below(300);
                let x = self.access();
                let sep = self.pick(&[" + ", " ", " - ", " * "]);
                let y = self.pick(TENSORS);
                format!("{y} = {}", vec![x; n].join(sep))
            }
            14 => {
                let d = self.below(300);
                let y = self.pick(TENSORS);
                format!("{y} = {}1{}", "(".repeat(d), ")".repeat(d))
            }
            _ => {
                let q = match self.below(4) {
                    0 => format!("{}?", self.pick(TENSORS)),
                    1 => format!(
                        "{}[{}]?",
                        self.pick(TENSORS),
                        self.pick(&["0", "1:3", "i", "Alice"])
                    ),
                    2 => format!("{}?", self.atom(false)),
                    _ => format!("{}?", self.access()),
                };
                q
            }
        };
        self.out.push_str(&line);
        self.out.push('\n');
    }
}

/// A program of up to 16 statements chosen by `data`.
pub fn program(data: &[u8]) -> String {
    let mut u = Unstructured::new(data);
    let mut g = Gen {
        u: &mut u,
        out: String::new(),
    };
    let n = 1 + g.below(16);
    for _ in 0..n {
        g.statement();
    }
    // Every program asks for something, so evaluation happens.
    let q = g.pick(TENSORS);
    let _ = writeln!(g.out, "{q}?");
    g.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bytes_give_the_same_program_and_others_differ() {
        let a = program(&[7, 3, 200, 1, 9, 44, 81, 2, 5, 6]);
        assert_eq!(a, program(&[7, 3, 200, 1, 9, 44, 81, 2, 5, 6]));
        assert_ne!(a, program(&[8, 3, 200, 1, 9, 44, 81, 2, 5, 6]));
        assert!(program(&[]).ends_with("?\n"));
    }
}
