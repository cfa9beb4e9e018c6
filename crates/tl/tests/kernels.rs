//! Kernel counts from source text: each program's definitions are evaluated again on the CPU
//! behind a launch log ([`ProfiledBackend`]), which counts the calls a fusing device would
//! launch (kernels, products, attention, gathers and scatters; not transfers). A fusion that
//! stops applying shows here as a larger count, on any machine.

use std::io::Write;
use tensorlogic::pipeline;
use tl_backend::cpu::CpuBackend;
use tl_backend::devices::launches;
use tl_backend::profiled::ProfiledBackend;
use tl_run::{Engine, RunOptions};
use tl_syntax::SourceMap;

/// The launches of one evaluation of every definition of `source`.
fn kernels(source: &str) -> usize {
    let mut file = tempfile::NamedTempFile::new().expect("a scratch file");
    file.write_all(source.as_bytes()).expect("written");
    let mut sources = SourceMap::new();
    let (program, diags) = tl_syntax::load_program(file.path(), &mut sources);
    let (checked, plan) = match pipeline::compile(&program, diags, &sources) {
        Ok(c) => c,
        Err(d) => panic!("{source}\ndoes not check: {d:?}"),
    };
    let cpu = CpuBackend::new();
    let log = ProfiledBackend::new(&cpu);
    let plan = pipeline::for_backend(&checked, plan, &log).expect("planned");
    let mut engine = Engine::new(&checked, &plan, &log, RunOptions::default()).expect("runs");
    log.enable();
    engine.evaluate_again().expect("evaluates again");
    launches(&log)
}

#[track_caller]
fn assert_kernels(equation: &str, want: usize) {
    let params = "param W[16, 8] ~ normal(0, 1)\nparam X[8] ~ normal(0, 1)\nparam B[16] ~ normal(0, 1)\nparam M[4, 8] ~ normal(0, 1)\nparam Q[6, 8] ~ normal(0, 1)\nparam K[6, 8] ~ normal(0, 1)\nparam V[6, 8] ~ normal(0, 1)\n";
    let got = kernels(&format!("{params}{equation}\n"));
    assert_eq!(got, want, "{equation}: {got} launches, want {want}");
}

#[test]
fn a_linear_layer_with_bias_and_relu_is_one_launch() {
    assert_kernels("Y[i] = relu(W[i, j] X[j] + B[i])", 1);
}

#[test]
fn an_elementwise_chain_is_one_launch() {
    assert_kernels("Y[i, j] = tanh(sig(M[i, j]) * 2 + exp(-M[i, j]))", 1);
}

#[test]
fn a_layer_norm_and_a_softmax_are_one_launch_each() {
    assert_kernels("Y[i, j.] = lnorm(M[i, j])", 1);
    assert_kernels("Y[i, j.] = softmax(M[i, j] / 3)", 1);
}

#[test]
fn attention_is_one_launch() {
    assert_kernels(
        "S[p, q.] = softmax(Q[p, d] K[q, d] / 2)\nY[p, d] = S[p, q] V[q, d]",
        1,
    );
}

#[test]
fn two_independent_equations_are_two_launches() {
    assert_kernels(
        "Y[i] = relu(W[i, j] X[j] + B[i])\nZ[i, j] = exp(M[i, j])",
        2,
    );
}
