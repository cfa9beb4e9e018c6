//! Strata of rules on the device: a stratum whose rules are all paths of binary atoms
//! ([`tl_relation::path_shape`]) runs on a backend with a path engine ([`PathDevice`], the
//! CUDA backend), its heads kept there as bits ([`DeviceRelation`]). Counts of them are
//! answered there too; anything else that reads one (a query, a later CPU stratum) copies its
//! tuples back once. A stratum the device cannot run goes to the CPU's tuple engine with a
//! warning that says why: rules never move off the device unannounced.

pub use crate::device_relation::DeviceRelation;
use crate::engine::{Engine, StratumProfile, Value};
use crate::error::RunError;
use std::sync::Arc;
use tl_backend::paths::{
    CondensedGraph, Hop, HopSource, PathHead, PathInput, PathOutcome, PathProgram, PathRule,
};
use tl_backend::Calls;
use tl_check::Stratum;
use tl_relation::Relation;
use tl_syntax::{Diagnostic, Span};

/// The graph of `edges` over nodes `0..nodes`, condensed for [`tl_backend::paths::PathDevice::closure`].
fn condensed_graph(edges: &Relation, nodes: usize) -> Option<CondensedGraph> {
    let c = tl_relation::closure::condense(edges, nodes)?;
    let mut succ_offsets = Vec::with_capacity(c.successors.len() + 1);
    succ_offsets.push(0);
    let mut succ = Vec::new();
    for s in &c.successors {
        succ.extend_from_slice(s);
        succ_offsets.push(succ.len());
    }
    Some(CondensedGraph {
        nodes,
        rep: c
            .members
            .iter()
            .map(|m| m.first().copied())
            .collect::<Option<_>>()?,
        comp: c.comp,
        cyclic: c.cyclic,
        succ_offsets,
        succ,
    })
}

impl Engine<'_> {
    /// Runs a stratum on the device's path engine. `rules` and `slots` are as the tuple
    /// engine would get them (inputs and facts filled in). `Ok(Err(why))` when some rule is
    /// not a path the device runs; nothing has changed then.
    pub(crate) fn device_stratum(
        &mut self,
        s: &Stratum,
        rules: &[tl_relation::Rule],
        slots: &[Relation],
        span: Span,
    ) -> Result<Result<(), String>, RunError> {
        let Some(device) = self.backend.paths() else {
            return Ok(Err("the backend has no relation engine".into()));
        };
        let heads: Vec<usize> = s.tensors.clone();
        for &h in &heads {
            if self.shape(h).len() != 2 {
                return Ok(Err(format!(
                    "`{}` is not binary",
                    self.program.tensors[h].name
                )));
            }
        }
        let mut inputs: Vec<usize> = Vec::new();
        let mut source = |slot: usize| -> HopSource {
            match heads.iter().position(|&h| h == slot) {
                Some(j) => HopSource::Head(j),
                None => HopSource::Input(match inputs.iter().position(|&i| i == slot) {
                    Some(i) => i,
                    None => {
                        inputs.push(slot);
                        inputs.len() - 1
                    }
                }),
            }
        };
        let mut program_rules = Vec::new();
        // A transitive closure, in any of its forms, runs as its left-linear one.
        let closure = match heads[..] {
            [h] if slots[h].is_empty() => tl_relation::closure::closure_base(rules, h),
            _ => None,
        };
        if let Some(e) = closure {
            let e = source(e);
            let edge = |forward| Hop { source: e, forward };
            program_rules.push(PathRule {
                head: 0,
                hops: vec![edge(true)],
                test: None,
            });
            program_rules.push(PathRule {
                head: 0,
                hops: vec![
                    Hop {
                        source: HopSource::Head(0),
                        forward: true,
                    },
                    edge(true),
                ],
                test: None,
            });
        } else {
            for rule in rules {
                let Some(shape) = tl_relation::path_shape(rule) else {
                    return Ok(Err(
                        "a rule is not a path of binary atoms from the head's first argument to its second".into(),
                    ));
                };
                let hops: Vec<Hop> = shape
                    .hops
                    .iter()
                    .map(|&(k, forward)| Hop {
                        source: source(rule.body[k].slot),
                        forward,
                    })
                    .collect();
                let crossing = hops
                    .iter()
                    .filter(|h| matches!(h.source, HopSource::Head(_)))
                    .count();
                if crossing > 1 {
                    return Ok(Err(
                        "a rule reads the relations it derives more than once".into()
                    ));
                }
                let Some(head) = heads.iter().position(|&h| h == rule.head) else {
                    return Ok(Err("a rule's head is outside its stratum".into()));
                };
                program_rules.push(PathRule {
                    head,
                    hops,
                    test: shape.test,
                });
            }
        }
        for &i in &inputs {
            if slots[i].arity() != 2 {
                return Ok(Err(format!(
                    "`{}` is not binary",
                    self.program.tensors[i].name
                )));
            }
        }
        let input_shapes: Vec<Vec<usize>> = inputs.iter().map(|&i| self.shape(i)).collect();
        let head_shapes: Vec<Vec<usize>> = heads.iter().map(|&h| self.shape(h)).collect();
        let program = PathProgram {
            inputs: inputs
                .iter()
                .zip(&input_shapes)
                .map(|(&i, sh)| PathInput {
                    pairs: slots[i].values(),
                    rows: sh[0],
                    cols: sh[1],
                })
                .collect(),
            heads: heads
                .iter()
                .zip(&head_shapes)
                .map(|(&h, sh)| PathHead {
                    rows: sh[0],
                    cols: sh[1],
                    facts: slots[h].values(),
                })
                .collect(),
            rules: program_rules,
        };
        let started = std::time::Instant::now();
        // A closure over one domain runs without rounds, over the condensed graph.
        let condensed = match (closure, &program.inputs[..], &program.heads[..]) {
            (Some(_), [e], [h]) if h.rows == h.cols && e.rows == h.rows && e.cols == h.cols => {
                condensed_graph(&slots[inputs[0]], h.rows)
            }
            _ => None,
        };
        let outcome = match &condensed {
            // One pass, as the CPU's closure reports it (the levels are launches, not rounds).
            Some(g) => device.closure(g).map(|bits| PathOutcome {
                rounds: 1,
                rule_tuples: vec![bits.tuples],
                heads: vec![bits],
            }),
            None => device.run_paths(&program),
        }
        .map_err(|e| {
            let names: Vec<&str> = heads
                .iter()
                .map(|&h| self.program.tensors[h].name.as_str())
                .collect();
            RunError::Relation {
                message: format!(
                    "the rules of `{}` cannot run on the device: {e}",
                    names.join("`, `")
                ),
                span,
            }
        })?;
        let time = started.elapsed();
        if let Some(profile) = self.relation_profile.as_mut() {
            let rule_spans: Vec<Span> = heads
                .iter()
                .flat_map(|&h| self.program.tensors[h].rules.iter())
                .map(|&r| self.program.rules[r].span)
                .collect();
            let per_rule: Vec<u64> = if closure.is_some() {
                // The closure's two rules stand for the stratum's rules: give its count to
                // the first recursive one.
                let total: u64 = outcome.rule_tuples.iter().sum();
                let rec = rules
                    .iter()
                    .position(|r| r.body.iter().any(|l| heads.contains(&l.slot)));
                (0..rules.len())
                    .map(|k| if Some(k) == rec { total } else { 0 })
                    .collect()
            } else {
                outcome.rule_tuples.clone()
            };
            profile.push(StratumProfile {
                heads: heads
                    .iter()
                    .zip(&outcome.heads)
                    .map(|(&h, b)| {
                        (
                            self.program.tensors[h].name.clone(),
                            if condensed.is_some() {
                                "closure by components, bits on the device"
                            } else {
                                "bits on the device"
                            }
                            .to_string(),
                            b.tuples as usize,
                        )
                    })
                    .collect(),
                rules: rule_spans
                    .into_iter()
                    .zip(per_rule)
                    .map(|(sp, t)| {
                        (
                            sp,
                            tl_relation::RuleStats {
                                runs: outcome.rounds,
                                tuples: t as usize,
                                time: std::time::Duration::ZERO,
                            },
                        )
                    })
                    .collect(),
                rounds: outcome.rounds,
                time,
                device: self.backend.name(),
            });
        }
        for (&h, bits) in heads.iter().zip(outcome.heads) {
            self.values[h] = Some(Value::Device(Arc::new(DeviceRelation::new(bits))));
        }
        Ok(Ok(()))
    }

    /// Says that a stratum of rules runs on the CPU although the program runs on a device.
    pub(crate) fn warn_cpu_stratum(&mut self, s: &Stratum, why: &str, span: Span) {
        let names = self.stratum_names(s);
        self.warn(
            Diagnostic::error(
                "TL0313",
                format!(
                    "the rules of `{}` run on the CPU's tuple engine, not on {}: {why}",
                    names,
                    self.backend.name()
                ),
                span,
                "these rules",
            )
            .warning()
            .with_help("the device runs strata of rules whose bodies are paths of binary relations (closures, same generation, chains of joins)"),
        );
    }
}
