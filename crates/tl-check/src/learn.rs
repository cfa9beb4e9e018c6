//! Checking `minimize` commands: the optimiser, its options, the schedule and the batch index.
//! Unknown names or options are errors with a hint listing what is accepted.

use crate::error::CheckError;
use crate::program::TensorId;
use tl_syntax::ast::{self, ArgValue};
use tl_syntax::Span;

/// A validated optimiser with every option filled in (PyTorch's defaults where omitted).
#[derive(Clone, Debug, PartialEq)]
pub enum Optimizer {
    /// Stochastic gradient descent.
    Sgd {
        /// Learning rate.
        lr: f64,
        /// Momentum factor.
        momentum: f64,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 penalty added to the gradient.
        weight_decay: f64,
    },
    /// Adam (weight decay added to the gradient), or AdamW (decoupled weight decay).
    Adam {
        /// Learning rate.
        lr: f64,
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator term.
        eps: f64,
        /// Weight decay.
        weight_decay: f64,
        /// Whether decay is decoupled (AdamW).
        decoupled: bool,
    },
}

/// A validated learning-rate schedule.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// Linear warm-up, then cosine decay to 0 at the last step.
    Cosine {
        /// Warm-up steps.
        warmup: u64,
    },
    /// Multiply by `gamma` every `every` steps.
    Step {
        /// Period in steps.
        every: u64,
        /// Factor.
        gamma: f64,
    },
    /// Multiply by `gamma` every step.
    Exponential {
        /// Factor.
        gamma: f64,
    },
}

/// A checked `minimize` command.
#[derive(Clone, Debug, PartialEq)]
pub struct MinimizeSpec {
    /// The scalar loss tensor.
    pub loss: TensorId,
    /// The optimiser.
    pub optimizer: Optimizer,
    /// Number of optimiser steps, or of epochs when `epochs` is set.
    pub count: u64,
    /// Whether `count` is in epochs.
    pub epochs: bool,
    /// Mini-batching: the example index name and batch size.
    pub batch: Option<(String, u64)>,
    /// The learning-rate schedule.
    pub schedule: Option<Schedule>,
    /// Where the command is.
    pub span: Span,
}

struct Options<'a> {
    call: &'a ast::Call,
    allowed: &'static [&'static str],
}

impl<'a> Options<'a> {
    /// The value of option `key` (or positional `pos`), checking every given key is allowed.
    fn new(call: &'a ast::Call, allowed: &'static [&'static str]) -> Result<Self, CheckError> {
        for (k, arg) in call.args.iter().enumerate() {
            if let Some(name) = &arg.name {
                if !allowed.contains(&name.name.as_str()) {
                    return Err(CheckError::UnknownOption {
                        what: call.name.name.clone(),
                        option: name.name.clone(),
                        allowed: allowed.join(", "),
                        span: name.span,
                    });
                }
            } else if k >= allowed.len() {
                return Err(CheckError::UnknownOption {
                    what: call.name.name.clone(),
                    option: format!("positional argument {}", k + 1),
                    allowed: allowed.join(", "),
                    span: arg.span,
                });
            }
        }
        Ok(Options { call, allowed })
    }

    fn get(&self, key: &str) -> Option<&'a ast::CallArg> {
        let pos = self.allowed.iter().position(|a| *a == key)?;
        self.call
            .args
            .iter()
            .find(|a| a.name.as_ref().is_some_and(|n| n.name == key))
            .or_else(|| self.call.args.get(pos).filter(|a| a.name.is_none()))
    }

    fn number(&self, key: &str, default: Option<f64>) -> Result<f64, CheckError> {
        match self.get(key) {
            Some(arg) => match &arg.value {
                ArgValue::Number(x) => Ok(*x),
                _ => Err(bad_option(key, "a number", arg.span)),
            },
            None => default.ok_or_else(|| CheckError::MissingOption {
                what: self.call.name.name.clone(),
                option: key.into(),
                span: self.call.span,
            }),
        }
    }

    fn count(&self, key: &str, default: Option<u64>) -> Result<u64, CheckError> {
        let x = self.number(key, default.map(|d| d as f64))?;
        if x < 0.0 || x.fract() != 0.0 {
            let span = self.get(key).map_or(self.call.span, |a| a.span);
            return Err(bad_option(key, "a whole number", span));
        }
        Ok(x as u64)
    }

    fn flag(&self, key: &str) -> Result<bool, CheckError> {
        match self.get(key) {
            Some(arg) => match &arg.value {
                ArgValue::Bool(b) => Ok(*b),
                _ => Err(bad_option(key, "true or false", arg.span)),
            },
            None => Ok(false),
        }
    }
}

/// Option `key` given a value that is not `expected`, with an example of one that is.
fn bad_option(key: &str, expected: &'static str, span: Span) -> CheckError {
    let example = match expected {
        "true or false" => format!("`{key}=true` or `{key}=false`"),
        "a whole number" => format!("a whole number, e.g. `{key}=100`"),
        _ => format!("a number, e.g. `{key}=0.01`"),
    };
    CheckError::BadOption {
        what: format!("option `{key}`"),
        expected,
        example,
        span,
    }
}

/// Validates an optimiser call such as `adam(lr=0.05)`.
pub fn optimizer(call: &ast::Call) -> Result<Optimizer, CheckError> {
    match call.name.name.as_str() {
        "sgd" => {
            let o = Options::new(call, &["lr", "momentum", "nesterov", "weight_decay"])?;
            Ok(Optimizer::Sgd {
                lr: o.number("lr", None)?,
                momentum: o.number("momentum", Some(0.0))?,
                nesterov: o.flag("nesterov")?,
                weight_decay: o.number("weight_decay", Some(0.0))?,
            })
        }
        name @ ("adam" | "adamw") => {
            let decoupled = name == "adamw";
            let o = Options::new(call, &["lr", "beta1", "beta2", "eps", "weight_decay"])?;
            Ok(Optimizer::Adam {
                lr: o.number("lr", Some(1e-3))?,
                beta1: o.number("beta1", Some(0.9))?,
                beta2: o.number("beta2", Some(0.999))?,
                eps: o.number("eps", Some(1e-8))?,
                weight_decay: o.number("weight_decay", Some(if decoupled { 1e-2 } else { 0.0 }))?,
                decoupled,
            })
        }
        other => Err(CheckError::UnknownName {
            kind: "optimiser",
            name: other.into(),
            span: call.name.span,
            hint: "the optimisers are sgd, adam and adamw".into(),
        }),
    }
}

/// Validates a schedule call such as `cosine(warmup=50)`.
pub fn schedule(call: &ast::Call) -> Result<Schedule, CheckError> {
    match call.name.name.as_str() {
        "cosine" => Ok(Schedule::Cosine {
            warmup: Options::new(call, &["warmup"])?.count("warmup", Some(0))?,
        }),
        "step" => {
            let o = Options::new(call, &["every", "gamma"])?;
            Ok(Schedule::Step {
                every: o.count("every", None)?.max(1),
                gamma: o.number("gamma", Some(0.1))?,
            })
        }
        "exponential" => Ok(Schedule::Exponential {
            gamma: Options::new(call, &["gamma"])?.number("gamma", None)?,
        }),
        other => Err(CheckError::UnknownName {
            kind: "schedule",
            name: other.into(),
            span: call.name.span,
            hint: "the schedules are cosine(warmup), step(every, gamma) and exponential(gamma)"
                .into(),
        }),
    }
}
