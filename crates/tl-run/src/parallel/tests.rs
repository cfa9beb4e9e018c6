use super::*;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tl_backend::cpu::CpuBackend;
use tl_backend::DType;
use tl_dist::{HostExchange, HostReducer, ReduceError};
use tl_syntax::SourceMap;

fn checked(text: &str) -> (CheckedProgram, tl_plan::ProgramPlan) {
    let mut sources = SourceMap::new();
    let (parsed, diags) =
        tl_syntax::load_source("<test>", text, &mut sources, std::path::Path::new("."));
    assert!(diags.is_empty(), "{diags:?}");
    let checked = tl_check::check(&parsed, &sources).expect("checks");
    let plan = tl_plan::plan(&checked).expect("plans");
    (checked, plan)
}

fn kind_of(text: &str) -> Result<LossKind, String> {
    let (p, _) = checked(text);
    let Some(Command::Minimize(m)) = p.commands.last() else {
        panic!("no minimize")
    };
    let d = crate::batch::batch_domain(&p, "e", Span::default()).expect("batch domain");
    loss_kind(&p, m.loss, d)
}

const DATA: &str = "X = [[1, 2], [3, 4], [5, 6], [7, 8]]\nT = [1, 0, 1, 0]\n\
                        param W[2] ~ normal(0, 1)\nY[e] = W[i] X[e, i]\n";

#[test]
fn loss_kinds_are_read_from_the_batch_projection() {
    let mean = format!(
        "{DATA}Loss avg= (Y[e] - T[e])^2\nminimize Loss with sgd(lr=0.1) for 1 epochs batch e 2"
    );
    assert_eq!(kind_of(&mean), Ok(LossKind::Mean));
    let nested = format!("{DATA}E[e] = (Y[e] - T[e])^2\nM avg= E[e]\nLoss = M + 0.1 W[i] W[i]\nminimize Loss with sgd(lr=0.1) for 1 epochs batch e 2");
    assert_eq!(kind_of(&nested), Ok(LossKind::Mean));
    let sum = format!(
        "{DATA}Loss = (Y[e] - T[e])^2\nminimize Loss with sgd(lr=0.1) for 1 epochs batch e 2"
    );
    assert_eq!(kind_of(&sum), Ok(LossKind::Sum));
    let penalised = format!("{DATA}Loss = (Y[e] - T[e])^2 + W[i] W[i]\nminimize Loss with sgd(lr=0.1) for 1 epochs batch e 2");
    assert!(kind_of(&penalised).unwrap_err().contains("once per rank"));
    let max = format!(
        "{DATA}Loss max= (Y[e] - T[e])^2\nminimize Loss with sgd(lr=0.1) for 1 epochs batch e 2"
    );
    assert!(kind_of(&max).unwrap_err().contains("maximum"));
    let mixed = format!("{DATA}A avg= Y[e]^2\nS = Y[e]\nLoss = A + S\nminimize Loss with sgd(lr=0.1) for 1 epochs batch e 2");
    assert!(kind_of(&mixed).unwrap_err().contains("averages"));
}

/// Ranks as threads of one process, summing through shared memory (tests only).
struct ThreadGroup {
    state: Mutex<GroupState>,
    ready: Condvar,
    world: usize,
}

#[derive(Default)]
struct GroupState {
    round: u64,
    inputs: Vec<Option<Vec<f64>>>,
    results: Vec<(u64, Arc<Vec<f64>>, usize)>,
}

struct ThreadExchange {
    group: Arc<ThreadGroup>,
    rank: usize,
}

impl HostExchange for ThreadExchange {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world(&self) -> usize {
        self.group.world
    }
    fn sum(&mut self, data: Vec<f64>) -> Result<Vec<f64>, ReduceError> {
        let g = &self.group;
        let mut s = g.state.lock().unwrap();
        if s.inputs.is_empty() {
            s.inputs = vec![None; g.world];
        }
        while s.inputs[self.rank].is_some() {
            s = g.ready.wait(s).unwrap();
        }
        let round = s.round;
        s.inputs[self.rank] = Some(data);
        if s.inputs.iter().all(Option::is_some) {
            let inputs: Vec<Vec<f64>> = s.inputs.iter_mut().map(|x| x.take().unwrap()).collect();
            let mut sum = inputs[0].clone();
            for v in &inputs[1..] {
                sum.iter_mut().zip(v).for_each(|(a, b)| *a += b);
            }
            s.results.push((round, Arc::new(sum), g.world));
            s.round += 1;
            g.ready.notify_all();
        }
        loop {
            if let Some(k) = s.results.iter().position(|r| r.0 == round) {
                let out = s.results[k].1.as_ref().clone();
                s.results[k].2 -= 1;
                if s.results[k].2 == 0 {
                    s.results.remove(k);
                }
                return Ok(out);
            }
            let (next, timeout) = g.ready.wait_timeout(s, Duration::from_secs(60)).unwrap();
            s = next;
            if timeout.timed_out() {
                return Err(ReduceError::Timeout {
                    rank: self.rank,
                    what: "the other ranks".into(),
                    seconds: 60,
                });
            }
        }
    }
}

/// Trains `text` with `world` ranks as threads; returns rank 0's final parameter values and
/// losses (every rank's parameters must be equal).
fn train(text: &str, world: usize, bucket_bytes: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
    let (p, plan) = checked(text);
    let group = Arc::new(ThreadGroup {
        state: Mutex::new(GroupState::default()),
        ready: Condvar::new(),
        world,
    });
    let results: Vec<(Vec<Vec<f64>>, Vec<f64>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..world)
            .map(|rank| {
                let (p, plan, group) = (&p, &plan, group.clone());
                scope.spawn(move || {
                    let backend = CpuBackend::new();
                    let options = crate::RunOptions {
                        dtype: DType::F64,
                        ..Default::default()
                    };
                    let mut engine = Engine::new(p, plan, &backend, options).unwrap();
                    let mut reducer = HostReducer::new(ThreadExchange { group, rank });
                    let mut dp = DataParallel::new(&mut reducer);
                    dp.bucket_bytes = bucket_bytes;
                    let mut losses = Losses(Vec::new());
                    engine
                        .run_parallel(&mut |_| {}, &mut losses, &mut dp)
                        .unwrap();
                    let Some(Command::Minimize(m)) = p.commands.last() else {
                        panic!("no minimize")
                    };
                    let params = engine.learned_params(m.loss);
                    let values = params
                        .iter()
                        .map(|&t| {
                            let v = engine.dense(t, Span::default()).unwrap();
                            backend.download(&v).unwrap().data.to_f64()
                        })
                        .collect();
                    (values, losses.0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &results[1..] {
        assert_eq!(r.0, results[0].0, "ranks hold different parameters");
        assert!(r.1.is_empty(), "only rank 0 reports");
    }
    results.into_iter().next().unwrap()
}

struct Losses(Vec<f64>);
impl TrainObserver for Losses {
    fn step(&mut self, info: &crate::observe::StepInfo) {
        self.0.push(info.loss);
    }
}

/// 10 examples, batches of 4: the last batch of each epoch has 2 examples, so with 3 ranks
/// shards are uneven (2, 1, 1 and then 1, 1, 0: one rank has none).
fn mlp(projection: &str) -> String {
    let x: Vec<String> = (0..10)
        .map(|e| {
            format!(
                "[{}, {}, {}]",
                (e as f64 * 0.7).sin(),
                (e as f64 * 1.3).cos(),
                e as f64 / 10.0
            )
        })
        .collect();
    let t: Vec<String> = (0..10)
        .map(|e| format!("{}", (e as f64 * 0.9).sin()))
        .collect();
    format!(
            "X = [{}]\nT = [{}]\nparam W1[5, 3] ~ normal(0, 1)\nparam B1[5] = 0\nparam W2[5] ~ normal(0, 1)\n\
             H[e, h] = tanh(W1[h, i] X[e, i] + B1[h])\nY[e] = W2[h] H[e, h]\n\
             Loss {projection} (Y[e] - T[e])^2\nminimize Loss with adam(lr=0.05) for 4 epochs batch e 4\n",
            x.join(", "),
            t.join(", ")
        )
}

fn close(a: &[Vec<f64>], b: &[Vec<f64>]) {
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!((x - y).abs() <= 1e-9 * (1.0 + y.abs()), "{x} vs {y}");
    }
}

#[test]
fn one_rank_is_bit_identical_to_a_plain_run() {
    let text = mlp("avg=");
    let (p, plan) = checked(&text);
    let backend = CpuBackend::new();
    let options = crate::RunOptions {
        dtype: DType::F64,
        ..Default::default()
    };
    let mut engine = Engine::new(&p, &plan, &backend, options).unwrap();
    let mut losses = Losses(Vec::new());
    engine.run(&mut |_| {}, &mut losses).unwrap();
    let Some(Command::Minimize(m)) = p.commands.last() else {
        panic!()
    };
    let plain: Vec<Vec<f64>> = engine
        .learned_params(m.loss)
        .iter()
        .map(|&t| {
            backend
                .download(&engine.dense(t, Span::default()).unwrap())
                .unwrap()
                .data
                .to_f64()
        })
        .collect();
    let (params, curve) = train(&text, 1, DEFAULT_BUCKET_BYTES);
    assert_eq!(params, plain);
    assert_eq!(curve, losses.0);
}

#[test]
fn ranks_averaging_gradients_match_one_rank_with_the_full_batch() {
    for projection in ["avg=", "="] {
        let text = mlp(projection);
        let (one, one_curve) = train(&text, 1, DEFAULT_BUCKET_BYTES);
        for world in [2, 3, 4] {
            // A small bucket size: one bucket per tensor.
            let (params, curve) = train(&text, world, 8);
            close(&params, &one);
            assert_eq!(curve.len(), one_curve.len());
            for (a, b) in curve.iter().zip(&one_curve) {
                assert!(
                    (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
                    "{projection} {world}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn a_minimize_without_batch_cannot_be_split() {
    let text =
        format!("{DATA}Loss avg= (Y[e] - T[e])^2\nminimize Loss with sgd(lr=0.1) for 2 steps");
    let (p, plan) = checked(&text);
    let backend = CpuBackend::new();
    let mut engine = Engine::new(&p, &plan, &backend, Default::default()).unwrap();
    struct Two;
    impl Reducer for Two {
        fn rank(&self) -> usize {
            0
        }
        fn world(&self) -> usize {
            2
        }
        fn start(&mut self, _: &dyn Backend, _: Vec<Tensor>) -> Result<(), ReduceError> {
            unreachable!("nothing is reduced")
        }
        fn finish(&mut self, _: &dyn Backend) -> Result<Vec<Vec<Tensor>>, ReduceError> {
            unreachable!("nothing is reduced")
        }
    }
    let mut two = Two;
    let mut dp = DataParallel::new(&mut two);
    let e = engine
        .run_parallel(&mut |_| {}, &mut Silent, &mut dp)
        .unwrap_err();
    assert!(e.to_string().contains("no `batch` clause"), "{e}");
}
