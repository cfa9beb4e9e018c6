use super::*;
use tl_backend::cpu::CpuBackend;

/// The reference: the same formulas in plain f64 over vectors.
struct Reference {
    spec: Optimizer,
    t: u64,
    m: Vec<Option<Vec<f64>>>,
    v: Vec<Option<Vec<f64>>>,
}

impl Reference {
    fn new(spec: &Optimizer, n: usize) -> Self {
        Reference {
            spec: spec.clone(),
            t: 0,
            m: vec![None; n],
            v: vec![None; n],
        }
    }

    fn step(&mut self, params: &mut [Vec<f64>], grads: &[Vec<f64>], lr: f64) {
        self.t += 1;
        let t = self.t as i32;
        for (k, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            match self.spec {
                Optimizer::Sgd {
                    momentum,
                    nesterov,
                    weight_decay,
                    ..
                } => {
                    let g: Vec<f64> = g
                        .iter()
                        .zip(p.iter())
                        .map(|(g, p)| g + weight_decay * p)
                        .collect();
                    let d: Vec<f64> = if momentum == 0.0 {
                        g
                    } else {
                        let buf: Vec<f64> = match &self.m[k] {
                            None => g.clone(),
                            Some(b) => b.iter().zip(&g).map(|(b, g)| momentum * b + g).collect(),
                        };
                        let d = if nesterov {
                            g.iter().zip(&buf).map(|(g, b)| g + momentum * b).collect()
                        } else {
                            buf.clone()
                        };
                        self.m[k] = Some(buf);
                        d
                    };
                    for (p, d) in p.iter_mut().zip(d) {
                        *p -= lr * d;
                    }
                }
                Optimizer::Adam {
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    decoupled,
                    ..
                } => {
                    let n = p.len();
                    let m = self.m[k].get_or_insert_with(|| vec![0.0; n]);
                    let v = self.v[k].get_or_insert_with(|| vec![0.0; n]);
                    if decoupled {
                        for x in p.iter_mut() {
                            *x *= 1.0 - lr * weight_decay;
                        }
                    }
                    let bc1 = 1.0 - beta1.powi(t);
                    let bc2 = 1.0 - beta2.powi(t);
                    for i in 0..n {
                        let gi = if decoupled {
                            g[i]
                        } else {
                            g[i] + weight_decay * p[i]
                        };
                        m[i] = beta1 * m[i] + (1.0 - beta1) * gi;
                        v[i] = beta2 * v[i] + (1.0 - beta2) * gi * gi;
                        let denom = v[i].sqrt() / bc2.sqrt() + eps;
                        p[i] -= (lr / bc1) * m[i] / denom;
                    }
                }
            }
        }
    }
}

fn sgd(lr: f64, momentum: f64, nesterov: bool, weight_decay: f64) -> Optimizer {
    Optimizer::Sgd {
        lr,
        momentum,
        nesterov,
        weight_decay,
    }
}

fn adam(lr: f64, weight_decay: f64, decoupled: bool) -> Optimizer {
    Optimizer::Adam {
        lr,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay,
        decoupled,
    }
}

fn all_specs() -> Vec<Optimizer> {
    vec![
        sgd(0.1, 0.0, false, 0.0),
        sgd(0.1, 0.0, false, 0.05),
        sgd(0.1, 0.9, false, 0.0),
        sgd(0.05, 0.9, true, 0.01),
        adam(0.05, 0.0, false),
        adam(0.05, 0.01, false),
        adam(0.05, 0.1, true),
    ]
}

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

fn upload(b: &CpuBackend, shape: &[usize], v: &[f64], dt: DType) -> Tensor {
    b.upload(&HostTensor::from_f64(shape.to_vec(), v.to_vec(), dt))
        .unwrap()
}

/// Runs `steps` steps of `spec` on a matrix, a vector and a scalar, with gradients that
/// depend on the current parameters (those of `Loss = Σ a·p²/2 + b·p`), on both sides.
fn compare(spec: &Optimizer, dt: DType, steps: u64, tol: f64) {
    let b = CpuBackend::new();
    let shapes: Vec<Vec<usize>> = vec![vec![3, 4], vec![5], vec![]];
    let mut ref_p: Vec<Vec<f64>> = shapes
        .iter()
        .enumerate()
        .map(|(k, s)| values(s.iter().product(), k as u64))
        .collect();
    let curv: Vec<Vec<f64>> = ref_p
        .iter()
        .enumerate()
        .map(|(k, p)| {
            values(p.len(), 100 + k as u64)
                .iter()
                .map(|x| 1.5 + x)
                .collect()
        })
        .collect();
    let lin: Vec<Vec<f64>> = ref_p
        .iter()
        .enumerate()
        .map(|(k, p)| values(p.len(), 200 + k as u64))
        .collect();
    let grad_of = |p: &[Vec<f64>]| -> Vec<Vec<f64>> {
        p.iter()
            .zip(curv.iter().zip(&lin))
            .map(|(p, (a, l))| {
                p.iter()
                    .zip(a.iter().zip(l))
                    .map(|(p, (a, l))| a * p + l)
                    .collect()
            })
            .collect()
    };
    let mut params: Vec<Tensor> = shapes
        .iter()
        .zip(&ref_p)
        .map(|(s, v)| upload(&b, s, v, dt))
        .collect();
    let mut state = OptimizerState::new(spec, params.len());
    let mut reference = Reference::new(spec, params.len());
    let schedule = Schedule::Cosine { warmup: 2 };
    for t in 0..steps {
        let lr = learning_rate(0.1, Some(&schedule), t, steps);
        let host: Vec<Vec<f64>> = params
            .iter()
            .map(|p| b.download(p).unwrap().data.to_f64())
            .collect();
        let grads: Vec<Tensor> = grad_of(&host)
            .iter()
            .zip(&shapes)
            .map(|(g, s)| upload(&b, s, g, dt))
            .collect();
        state.step(&b, &mut params, &grads, lr).unwrap();
        // The reference sees the same gradients (computed from the same parameters).
        let ref_grads = grad_of(&ref_p);
        reference.step(&mut ref_p, &ref_grads, lr);
    }
    assert_eq!(state.steps(), steps);
    for (k, (p, want)) in params.iter().zip(&ref_p).enumerate() {
        let got = b.download(p).unwrap();
        assert_eq!(got.dtype(), dt);
        assert_eq!(got.shape, shapes[k]);
        for (i, (g, w)) in got.data.to_f64().iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tol * w.abs().max(1.0),
                "{spec:?} {dt}: param {k}[{i}] = {g}, reference {w}"
            );
        }
    }
}

#[test]
fn optimisers_match_the_f64_reference_in_f64() {
    for spec in all_specs() {
        compare(&spec, DType::F64, 25, 1e-12);
    }
}

#[test]
fn optimisers_match_the_f64_reference_in_f32() {
    for spec in all_specs() {
        compare(&spec, DType::F32, 25, 2e-5);
    }
}

#[test]
fn adam_with_device_powers_equals_adam_with_constant_corrections() {
    let be = CpuBackend::new();
    let n = 11;
    let inputs: Vec<Tensor> = (0..4)
        .map(|k| upload(&be, &[n], &values(n, 40 + k), DType::F64))
        .collect();
    // Second moments are never negative.
    let v = be
        .map(&mul(input(0), input(0)), &[&inputs[3]], &[n], DType::F64)
        .expect("squares");
    for spec in [
        adam(0.01, 0.0, false),
        adam(0.02, 0.1, false),
        adam(0.02, 0.1, true),
    ] {
        let Optimizer::Adam { beta1, beta2, .. } = spec else {
            unreachable!("adam() builds Adam")
        };
        let state = OptimizerState::new(&spec, 1);
        for t in [1u64, 2, 7, 300] {
            let b1 = upload(&be, &[1], &[beta1.powi(t as i32)], DType::F64);
            let b2 = upload(&be, &[1], &[beta2.powi(t as i32)], DType::F64);
            let base = [&inputs[0], &inputs[1], &inputs[2], &v];
            let want = be
                .map_many(
                    &state.update_exprs(0.01, true, Corrections::Step(t)),
                    &base,
                    &[n],
                    DType::F64,
                )
                .expect("constant corrections");
            let mut with_powers = base.to_vec();
            with_powers.extend([&b1, &b2]);
            let got = be
                .map_many(
                    &state.update_exprs(0.01, true, Corrections::Device),
                    &with_powers,
                    &[n],
                    DType::F64,
                )
                .expect("device corrections");
            for (g, w) in got.iter().zip(&want) {
                let g = be.download(g).expect("g").data.to_f64();
                let w = be.download(w).expect("w").data.to_f64();
                for (a, b) in g.iter().zip(&w) {
                    assert!(
                        (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                        "t={t}: {a} vs {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn first_sgd_momentum_step_uses_the_gradient_as_buffer() {
    let b = CpuBackend::new();
    let spec = sgd(0.5, 0.9, false, 0.0);
    let mut p = vec![upload(&b, &[2], &[1.0, 2.0], DType::F64)];
    let g = vec![upload(&b, &[2], &[0.2, -0.4], DType::F64)];
    let mut st = OptimizerState::new(&spec, 1);
    st.step(&b, &mut p, &g, 0.5).unwrap();
    assert_eq!(b.download(&p[0]).unwrap().data.to_f64(), vec![0.9, 2.2]);
    st.step(&b, &mut p, &g, 0.5).unwrap();
    // buf = 0.9*0.2 + 0.2 = 0.38; p = 0.9 - 0.19
    let got = b.download(&p[0]).unwrap().data.to_f64();
    assert!((got[0] - 0.71).abs() < 1e-15 && (got[1] - 2.58).abs() < 1e-15);
}

#[test]
fn first_adam_step_moves_by_lr() {
    // With bias correction the first step is lr·g/(|g| + eps·…) ≈ lr·sign(g).
    let b = CpuBackend::new();
    let mut p = vec![upload(&b, &[3], &[0.0, 1.0, -1.0], DType::F32)];
    let g = vec![upload(&b, &[3], &[3.0, -0.01, 1e3], DType::F32)];
    let mut st = OptimizerState::new(&adam(0.1, 0.0, false), 1);
    st.step(&b, &mut p, &g, 0.1).unwrap();
    let got = b.download(&p[0]).unwrap().data.to_f64();
    for (x, want) in got.iter().zip([-0.1, 1.1, -1.1]) {
        assert!((x - want).abs() < 1e-5, "{got:?}");
    }
}

#[test]
fn mismatched_lists_are_errors() {
    let b = CpuBackend::new();
    let mut st = OptimizerState::new(&sgd(0.1, 0.0, false, 0.0), 2);
    let mut p = vec![upload(&b, &[2], &[1.0, 2.0], DType::F32)];
    let g = p.clone();
    assert!(st.step(&b, &mut p, &g, 0.1).is_err());
    assert_eq!(st.steps(), 0);
}

#[test]
fn state_round_trips_and_continues_identically() {
    let b = CpuBackend::new();
    for spec in [
        sgd(0.1, 0.9, true, 0.01),
        adam(0.05, 0.1, true),
        sgd(0.1, 0.0, false, 0.0),
    ] {
        let shapes: [&[usize]; 2] = [&[2, 3], &[]];
        let init: Vec<Tensor> = shapes
            .iter()
            .enumerate()
            .map(|(k, s)| upload(&b, s, &values(s.iter().product(), k as u64), DType::F64))
            .collect();
        let grads: Vec<Tensor> = shapes
            .iter()
            .enumerate()
            .map(|(k, s)| upload(&b, s, &values(s.iter().product(), 9 + k as u64), DType::F64))
            .collect();
        let mut a = OptimizerState::new(&spec, 2);
        let mut pa = init.clone();
        for _ in 0..3 {
            a.step(&b, &mut pa, &grads, 0.1).unwrap();
        }
        let saved = a.state(&b).unwrap();
        let names: Vec<&str> = saved.iter().map(|(n, _)| n.as_str()).collect();
        let expected: &[&str] = match spec {
            Optimizer::Sgd { momentum, .. } if momentum != 0.0 => {
                &["0.momentum_buffer", "1.momentum_buffer", "step"]
            }
            Optimizer::Sgd { .. } => &["step"],
            Optimizer::Adam { .. } => &[
                "0.exp_avg",
                "0.exp_avg_sq",
                "1.exp_avg",
                "1.exp_avg_sq",
                "step",
            ],
        };
        assert_eq!(names, expected);
        let mut r = OptimizerState::new(&spec, 2);
        let mut pr = pa.clone();
        r.load_state(&b, &pr, saved).unwrap();
        assert_eq!(r.steps(), 3);
        // The same through `buffers` and `restore` (the checkpoint module's split).
        let mut r2 = OptimizerState::new(&spec, 2);
        let mut pr2 = pa.clone();
        r2.restore(&b, &pr2, a.steps(), a.buffers(&b).unwrap())
            .unwrap();
        assert_eq!(r2.steps(), 3);
        a.step(&b, &mut pa, &grads, 0.1).unwrap();
        r.step(&b, &mut pr, &grads, 0.1).unwrap();
        r2.step(&b, &mut pr2, &grads, 0.1).unwrap();
        for ((x, y), z) in pa.iter().zip(&pr).zip(&pr2) {
            assert_eq!(b.download(x).unwrap(), b.download(y).unwrap());
            assert_eq!(b.download(x).unwrap(), b.download(z).unwrap());
        }
    }
}

#[test]
fn bad_state_names_every_problem() {
    let b = CpuBackend::new();
    let spec = adam(0.05, 0.0, false);
    let params = vec![
        upload(&b, &[2], &[1.0, 2.0], DType::F32),
        upload(&b, &[], &[1.0], DType::F32),
    ];
    let mut st = OptimizerState::new(&spec, 2);
    let err = st
        .load_state(
            &b,
            &params,
            vec![
                ("step".into(), HostTensor::scalar(4.0, DType::F64)),
                (
                    "0.exp_avg".into(),
                    HostTensor::from_f64(vec![3], vec![0.0; 3], DType::F32),
                ),
                (
                    "0.exp_avg_sq".into(),
                    HostTensor::from_f64(vec![2], vec![0.0; 2], DType::F32),
                ),
                ("1.exp_avg".into(), HostTensor::scalar(0.0, DType::F32)),
                (
                    "7.momentum_buffer".into(),
                    HostTensor::scalar(0.0, DType::F32),
                ),
            ],
        )
        .unwrap_err();
    assert!(err.contains("`0.exp_avg` has shape [3]"), "{err}");
    assert!(err.contains("`1.exp_avg_sq` is missing"), "{err}");
    assert!(err.contains("`7.momentum_buffer` is not part"), "{err}");
    assert!(!err.contains("`0.exp_avg_sq`"), "{err}");
    assert_eq!(st.steps(), 0, "a failed load leaves the state alone");
    let err = st.load_state(&b, &params, Vec::new()).unwrap_err();
    assert!(err.contains("`step` is missing"), "{err}");
}

#[test]
fn schedules() {
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert_eq!(learning_rate(0.3, None, 57, 100), 0.3);
    let step = Schedule::Step {
        every: 30,
        gamma: 0.5,
    };
    for (t, want) in [
        (0, 1.0),
        (29, 1.0),
        (30, 0.5),
        (59, 0.5),
        (60, 0.25),
        (99, 0.125),
    ] {
        assert!(
            close(learning_rate(1.0, Some(&step), t, 100), want),
            "step at {t}"
        );
    }
    let exp = Schedule::Exponential { gamma: 0.98 };
    for t in [0u64, 1, 7, 99] {
        assert!(close(
            learning_rate(0.05, Some(&exp), t, 100),
            0.05 * 0.98f64.powi(t as i32)
        ));
    }
    let cos = Schedule::Cosine { warmup: 10 };
    for (t, want) in [
        (0, 0.1),
        (4, 0.5),
        (9, 1.0),
        (10, 1.0),
        (55, 0.5),
        (100, 0.0),
    ] {
        assert!(
            close(learning_rate(1.0, Some(&cos), t, 100), want),
            "cosine at {t}: {}",
            learning_rate(1.0, Some(&cos), t, 100)
        );
    }
    let t = 37u64;
    let want = 0.5 * (1.0 + (std::f64::consts::PI * 27.0 / 90.0).cos());
    assert!(close(learning_rate(1.0, Some(&cos), t, 100), want));
    // No warm-up: cosine from the base rate; a run no longer than its warm-up.
    let cos0 = Schedule::Cosine { warmup: 0 };
    assert!(close(learning_rate(2.0, Some(&cos0), 0, 50), 2.0));
    assert!(close(learning_rate(2.0, Some(&cos0), 25, 50), 1.0));
    assert!(learning_rate(1.0, Some(&cos), 12, 5).is_finite());
}
