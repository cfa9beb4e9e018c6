//! Autograd against central finite differences in float64, for every differentiable construct:
//! joins (matmul), each elementwise function, `sig(x, T)` with a learned temperature, softmax
//! and layer norm along a dotted axis, `max=`/`min=`/`avg=` projections, index arithmetic,
//! convolutions (the transposed product of a shifted read), slices, constants, scatters onto computed left-hand indices, powers and divisions, and
//! real-valued recursion (a fixpoint, differentiated implicitly, and a layer recursion). Shapes and values are drawn
//! at random for each case; the gradient must match to 1e-6 relative.

use proptest::prelude::*;
use tl_backend::cpu::CpuBackend;
use tl_backend::{Backend, DType, HostTensor};
use tl_run::{Engine, RunOptions, Value};
use tl_syntax::SourceMap;

/// Programs with `{n}`, `{m}` extents, `{A}`… literal data and a scalar `Loss`.
const PROGRAMS: &[(&str, &str)] = &[
    ("join", "param W[{m}, {n}] ~ normal(0, 1)\nY[i, k] = tanh(A[i, j] W[j, k])\nLoss = (Y[i, k] - B[i, k])^2"),
    (
        "functions",
        "param W[{n}] ~ normal(0, 1)\nLoss = sig(W[i]) + relu(W[i]) + gelu(W[i]) + exp(W[i]) + log(abs(W[i]) + 1) + sqrt(W[i]^2 + 1) + sin(W[i]) cos(W[i]) + abs(W[i]) / (1 + W[i]^2) + tanh(W[i])",
    ),
    ("temperature", "param W[{n}] ~ normal(0, 1)\nparam Tm = 0.7\nLoss = sig(W[i] V[i] + 0.1, Tm)^2"),
    ("softmax", "param W[{n}, {m}] ~ normal(0, 1)\nS[i, j.] = softmax(W[i, j] V2[j])\nLoss = S[i, j] C[i, j]"),
    ("lnorm", "param W[{n}, {m}] ~ normal(0, 1)\nN[i, j.] = lnorm(W[i, j] + V2[j])\nLoss = N[i, j] C[i, j]"),
    ("max", "param W[{n}, {m}] ~ normal(0, 1)\nM[i] max= W[i, j] V2[j]\nLoss = M[i] V[i]"),
    ("min_avg", "param W[{n}, {m}] ~ normal(0, 1)\nM[i] min= W[i, j]\nG[j] avg= W[i, j]^2\nLoss = M[i] V[i] + G[j] V2[j]"),
    ("shift", "param W[{n}] ~ normal(0, 1)\nS[i] = W[i + 1] - W[i]\nLoss = S[i]^2 + W[0] W[{last}]"),
    ("conv", "param F[2] ~ normal(0, 1)\nConv[x] = F[dx] V[x + dx]\nLoss = (Conv[x] - V[x])^2"),
    ("conv2d", "param X[{n}, 4, 5] ~ normal(0, 1)\nparam K[2, {n}, 3, 3] ~ normal(0, 1)\nCv[c, y, x] = K[c, d, dy, dx] X[d, y + dy - 1, x + dx - 1]\nLoss = (Cv[c, y, x] - 0.1)^2 + Cv[c, y, x] X[0, y, x]"),
    ("conv_shifts", "param X[5, {n}] ~ normal(0, 1)\nparam K[2, 3, {m}] ~ normal(0, 1)\nCv[y, x, c] = K[c, dy, dx] X[y + dy - 2, x + dx]\nLoss = sin(Cv[y, x, c]) + X[y, x] X[y, x]"),
    ("slice", "param W[{n}] ~ normal(0, 1)\nMid = W[1:{last}]\nLoss = Mid[i] Mid[i] Mid[i]"),
    ("scatter", "param W[{n}] ~ normal(0, 1)\nP[x/2] max= W[x]\nQ[x/2] = W[x] W[x]\nR[x/2] avg= W[x]\nLoss = P[i] U[i] + Q[i] + R[i]^2"),
    ("power", "param W[{n}] ~ normal(0, 1)\nparam P = 1.5\nLoss = (W[i]^2 + 1)^P / (2 + W[i]^2)"),
    ("fixpoint", "param W[{n}, {n}] ~ normal(0, 1)\nR[i] = V[i] + 0.1 tanh(W[i, j]) R[j] / {n}\nLoss = R[i] V[i]"),
    ("layers", "param W[3, {n}, {n}] ~ normal(0, 1)\nX[0, i] = V[i]\nH[l, i] = tanh(W[l, i, j] X[l, j] / {n}) + X[l, i]\nX[l+1, i] = H[l, i]\nLoss = H[2, i] V[i] + H[l, i]^2"),
    ("layers_rows", "param W[3, {n}, {n}] ~ normal(0, 1)\nparam P[{n}] ~ normal(0, 1)\nX[0, i] = V[i]\nX[l+1, i] = tanh(W[l, i, j] X[l, j] / {n}) + P[i] X[0, i] + X[l, i]\nLoss = X[3, i]^2"),
    ("layers_max", "param W[3, {n}, {n}] ~ normal(0, 1)\nX[0, i] = V[i]\nH[l, i] max= W[l, i, j] X[l, j]\nX[l+1, i] = tanh(H[l, i]) + X[l, i]\nLoss = X[3, i] V[i]"),
    ("layers_two_writers", "param W[3, {n}, {n}] ~ normal(0, 1)\nparam P[3, {n}] ~ normal(0, 1)\nX[0, i] = V[i]\nX[l+1, i] = tanh(W[l, i, j] X[l, j] / {n})\nX[l+1, i] = P[l, i] X[l, i]\nLoss = X[3, i] V[i] + X[2, i]^2"),
    ("layers_max_writers", "param W[3, {n}, {n}] ~ normal(0, 1)\nX[0, i] = V[i]\nX[l+1, i] max= W[l, i, j] X[l, j]\nX[l+1, i] max= 0.5 X[l, i]\nLoss = X[3, i] V[i]"),
    ("relaxed_rule", "param W[{n}, {n}] ~ normal(0, 1)\nparam Tm = 1.3\nAnc[x, z] = sig(W[x, z] + 0.2 Anc[x, y] W[y, z] / {n} - 0.5, Tm)\nLoss = Anc[x, y]^2"),
];

fn literal(values: &[f64], shape: &[usize]) -> String {
    match shape {
        [] => format!("{}", values[0]),
        [_] => format!(
            "[{}]",
            values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        [_, m] => format!(
            "[{}]",
            values
                .chunks(*m)
                .map(|r| literal(r, &[*m]))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => unreachable!("test data is at most 2-D"),
    }
}

fn program(template: &str, n: usize, m: usize, data: &[f64]) -> String {
    let mut k = 0;
    let mut take = |len: usize| {
        let v: Vec<f64> = (0..len).map(|i| data[(k + i) % data.len()]).collect();
        k += len;
        v
    };
    let a = take(n * m);
    let b = take(n * n);
    let c = take(n * m);
    let v = take(n);
    let v2 = take(m);
    let u = take(n.div_ceil(2));
    let body = template
        .replace("{n}", &n.to_string())
        .replace("{m}", &m.to_string())
        .replace("{last}", &(n - 1).to_string());
    format!(
        "A = {}\nB = {}\nC = {}\nV = {}\nV2 = {}\nU = {}\n{body}\n",
        literal(&a, &[n, m]),
        literal(&b, &[n, n]),
        literal(&c, &[n, m]),
        literal(&v, &[n]),
        literal(&v2, &[m]),
        literal(&u, &[n.div_ceil(2)])
    )
}

/// `text` parsed, checked and planned, or what went wrong.
fn planned(text: &str) -> Result<(tl_check::CheckedProgram, tl_plan::ProgramPlan), String> {
    let mut sources = SourceMap::new();
    let (parsed, diags) =
        tl_syntax::load_source("<test>", text, &mut sources, std::path::Path::new("."));
    if !diags.is_empty() {
        return Err(format!("parse: {diags:?}\n{text}"));
    }
    let checked =
        tl_check::check(&parsed, &sources).map_err(|e| format!("check: {e:?}\n{text}"))?;
    let plan = tl_plan::plan(&checked).map_err(|e| format!("plan: {e:?}"))?;
    Ok((checked, plan))
}

/// Checks every parameter element's gradient against a central difference.
fn gradcheck(text: &str, seed: u64) -> Result<(), String> {
    let (checked, plan) = planned(text)?;
    let backend = CpuBackend::new();
    let options = RunOptions {
        dtype: DType::F64,
        seed,
        tolerance: 1e-14,
        max_iters: 10_000,
        ..RunOptions::default()
    };
    let mut engine = Engine::new(&checked, &plan, &backend, options).map_err(|e| e.to_string())?;
    let loss = checked.tensor_named("Loss").ok_or("no Loss")?;
    let (_, grads) = engine.loss_and_gradients(loss).map_err(|e| e.to_string())?;
    if grads.is_empty() {
        return Err(format!("no parameters to check\n{text}"));
    }
    for (p, g) in grads {
        let what = format!("d Loss / d {}", checked.tensors[p].name);
        compare_with_differences(&mut engine, &backend, p, &g.data.to_f64(), &what, &|e| {
            e.loss_value(loss).map_err(|e| e.to_string())
        })
        .map_err(|e| format!("{e}\n{text}"))?;
    }
    Ok(())
}

/// Compares `exact`, the gradient of `f` with respect to tensor `t`, element by element with
/// central differences of `f`, and gives `t` its value back.
fn compare_with_differences(
    engine: &mut Engine,
    backend: &CpuBackend,
    t: usize,
    exact: &[f64],
    what: &str,
    f: &dyn Fn(&mut Engine) -> Result<f64, String>,
) -> Result<(), String> {
    let Some(Value::Dense(base)) = engine.values[t].clone() else {
        return Err(format!("{what}: not a dense tensor"));
    };
    let host = backend.download(&base).map_err(|e| e.to_string())?;
    let values = host.data.to_f64();
    if exact.len() != values.len() {
        return Err(format!(
            "{what}: {} gradient elements for {}",
            exact.len(),
            values.len()
        ));
    }
    let h = 1e-6;
    for i in 0..values.len() {
        let mut at = |delta: f64| -> Result<f64, String> {
            let mut v = values.clone();
            v[i] += delta;
            let up = backend
                .upload(&HostTensor::from_f64(host.shape.clone(), v, DType::F64))
                .map_err(|e| e.to_string())?;
            engine.values[t] = Some(Value::Dense(up));
            f(engine)
        };
        let fd = (at(h)? - at(-h)?) / (2.0 * h);
        if (fd - exact[i]).abs() > 1e-6 * fd.abs().max(1.0) {
            return Err(format!(
                "{what}[{i}]: exact {} vs finite difference {fd}",
                exact[i]
            ));
        }
    }
    engine.values[t] = Some(Value::Dense(base));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn gradients_match_finite_differences(n in 2usize..5, m in 1usize..4, seed in 0u64..1000, data in proptest::collection::vec(-1.5f64..1.5, 64)) {
        for (name, template) in PROGRAMS {
            let text = program(template, n, m, &data);
            if let Err(e) = gradcheck(&text, seed) {
                return Err(TestCaseError::fail(format!("{name}: {e}")));
            }
        }
    }
}

#[test]
fn step_passes_gradients_straight_through() {
    let text = "param W[3] ~ normal(0, 1)\nV = [1.5, -2, 0.5]\nLoss = step(W[i]) V[i]";
    let mut sources = SourceMap::new();
    let (parsed, _) =
        tl_syntax::load_source("<test>", text, &mut sources, std::path::Path::new("."));
    let checked = tl_check::check(&parsed, &sources).expect("checks");
    let plan = tl_plan::plan(&checked).expect("plans");
    let backend = CpuBackend::new();
    let mut engine = Engine::new(
        &checked,
        &plan,
        &backend,
        RunOptions {
            dtype: DType::F64,
            ..RunOptions::default()
        },
    )
    .expect("starts");
    let loss = checked.tensor_named("Loss").expect("Loss");
    let (_, grads) = engine.loss_and_gradients(loss).expect("gradients");
    assert_eq!(grads[0].1.data.to_f64(), vec![1.5, -2.0, 0.5]);
}

/// The gradient of `Loss` with respect to its one parameter, in f64, the recursions run to
/// `tolerance`.
fn gradient_at(text: &str, tolerance: f64) -> Vec<f64> {
    let (checked, plan) = planned(text).expect("plans");
    let backend = CpuBackend::new();
    let options = RunOptions {
        dtype: DType::F64,
        tolerance,
        ..RunOptions::default()
    };
    let mut engine = Engine::new(&checked, &plan, &backend, options).expect("starts");
    let loss = checked.tensor_named("Loss").expect("Loss");
    let (_, grads) = engine.loss_and_gradients(loss).expect("gradients");
    grads[0].1.data.to_f64()
}

#[test]
fn a_small_gradient_goes_all_the_way_through_a_recursion() {
    // The loss is scaled far below the default tolerance (1e-6): the adjoint iteration must
    // stop on a change small against the adjoint, not on an absolute one, or the gradient
    // keeps only its first round (here about half of it).
    for (name, body) in [
        ("fixpoint", "R[i] = V[i] + 0.5 tanh(W[i, j]) R[j] / 3\nLoss = 0.000000001 R[i] V[i]"),
        ("layers", "X[0, i] = V[i]\nX[l+1, i] = tanh(W[i, j] X[l, j]) + X[l, i]\nLoss = 0.000000001 X[5, i] V[i]"),
    ] {
        let text = format!("param W[3, 3] ~ normal(0, 1)\nV = [0.7, -1.2, 0.4]\n{body}\n");
        let loose = gradient_at(&text, 1e-6);
        let exact = gradient_at(&text, 1e-15);
        let scale = exact.iter().fold(0f64, |m, x| m.max(x.abs()));
        for (a, b) in loose.iter().zip(&exact) {
            assert!(
                (a - b).abs() <= 1e-4 * scale,
                "{name}: {loose:?} against {exact:?}"
            );
        }
    }
}

/// Programs with outputs `Y` (and `Z`) read from data `A`, `V` and parameter `W`, for
/// vector-Jacobian products.
const VJP_PROGRAMS: &[(&str, &[&str], &[&str])] = &[
    ("join", &["Y"], &["A", "W"]),
    ("unused input", &["Z"], &["A", "V"]),
    ("two outputs", &["Y"], &["A", "V", "W"]),
    ("two outputs", &["Z"], &["A", "V", "W"]),
    ("two outputs", &["Y", "Z"], &["A", "V", "W"]),
];

fn vjp_text(name: &str) -> &'static str {
    match name {
        "join" => "param W[{m}, {n}] ~ normal(0, 1)\nY[i, k] = tanh(A[i, j] W[j, k])",
        "two outputs" => "param W[{m}, {n}] ~ normal(0, 1)\nY[i, k] = tanh(A[i, j] W[j, k]) V[k]\nZ[i] = sig(Y[i, k] V[k]) + V[i]^2",
        _ => "Y[i] = A[i, j]\nZ[i] = V[i] V[i]",
    }
}

/// Checks every element of every gradient of a vector-Jacobian product against a central
/// difference of Σ seed·output.
fn vjp_check(text: &str, outputs: &[&str], wrt: &[&str], seed: u64) -> Result<(), String> {
    let (checked, plan) = planned(text)?;
    let backend = CpuBackend::new();
    let options = RunOptions {
        dtype: DType::F64,
        seed,
        ..RunOptions::default()
    };
    let mut engine = Engine::new(&checked, &plan, &backend, options).map_err(|e| e.to_string())?;
    let id = |n: &str| checked.tensor_named(n).ok_or(format!("no {n}"));
    let outs = outputs
        .iter()
        .map(|n| id(n))
        .collect::<Result<Vec<_>, _>>()?;
    let ins = wrt.iter().map(|n| id(n)).collect::<Result<Vec<_>, _>>()?;
    let mut rng = tl_run::rng::Rng::new(seed);
    let seeds: Vec<HostTensor> = outs
        .iter()
        .map(|&o| {
            let shape = engine.shape(o);
            let n = shape.iter().product();
            HostTensor::from_f64(shape, (0..n).map(|_| rng.normal()).collect(), DType::F64)
        })
        .collect();
    let on_backend = seeds
        .iter()
        .map(|s| backend.upload(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let host = |t: &tl_backend::Tensor| backend.download(t).map_err(|e| e.to_string());
    let r = engine
        .vjp(&outs, &on_backend, &ins)
        .map_err(|e| e.to_string())?;
    let grads = r.grads.iter().map(host).collect::<Result<Vec<_>, _>>()?;
    // The outputs' values after a change of an input (a product with respect to nothing
    // evaluates them as the product does).
    let weighted = |engine: &mut Engine| -> Result<f64, String> {
        engine.reset_derived();
        let v = engine.vjp(&outs, &[], &[]).map_err(|e| e.to_string())?;
        let mut total = 0.0;
        for (v, s) in v.values.iter().zip(&seeds) {
            let v = host(v)?.data.to_f64();
            total += v
                .iter()
                .zip(s.data.to_f64())
                .map(|(a, b)| a * b)
                .sum::<f64>();
        }
        Ok(total)
    };
    for (&t, g) in ins.iter().zip(&grads) {
        if g.shape != engine.shape(t) {
            return Err(format!(
                "gradient shape {:?} vs {:?}",
                g.shape,
                engine.shape(t)
            ));
        }
        let what = format!("d / d {}", checked.tensors[t].name);
        compare_with_differences(&mut engine, &backend, t, &g.data.to_f64(), &what, &weighted)
            .map_err(|e| format!("{e}\n{text}"))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn vector_jacobian_products_match_finite_differences(n in 2usize..5, m in 1usize..4, seed in 0u64..1000, data in proptest::collection::vec(-1.5f64..1.5, 64)) {
        for (name, outputs, wrt) in VJP_PROGRAMS {
            let text = program(vjp_text(name), n, m, &data);
            if let Err(e) = vjp_check(&text, outputs, wrt, seed) {
                return Err(TestCaseError::fail(format!("{name} {outputs:?}: {e}")));
            }
        }
    }
}
