//! A backend that times every primitive of another one, for `tl bench --profile`.
//!
//! Each call is bracketed by two synchronisations of the inner backend, so the time recorded is
//! the primitive's own (device work included), at the price of serialising everything. Calls
//! are grouped by what they are and the shapes they touch, which is what says where a
//! program's time goes below the level of its statements.

use crate::{
    AttentionArgs, Backend, DType, HostTensor, MapExpr, NormFn, ReduceOp, Result, RowMapArgs,
    Tensor,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Time and count of one kind of call.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpTime {
    /// Total time, synchronised.
    pub time: Duration,
    /// Calls.
    pub calls: usize,
}

/// Wraps a backend and records the time of each call by kind and shapes.
pub struct ProfiledBackend<'a> {
    inner: &'a dyn Backend,
    times: Mutex<HashMap<String, OpTime>>,
    enabled: std::sync::atomic::AtomicBool,
}

/// `2x3x4` for a shape, `s` for a scalar.
fn dims(shape: &[usize]) -> String {
    if shape.is_empty() {
        return "s".into();
    }
    shape
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// A short description of a tensor: shape, type and whether it is a strided view.
fn describe(t: &Tensor) -> String {
    let view = if t.layout.is_contiguous() { "" } else { "~" };
    format!("{}{view}:{}", dims(t.shape()), t.dtype)
}

/// The number of nodes of an elementwise expression (a rough measure of its work).
fn expr_size(e: &MapExpr) -> usize {
    e.size()
}

impl<'a> ProfiledBackend<'a> {
    /// Wraps `inner`; nothing is recorded until [`ProfiledBackend::enable`].
    pub fn new(inner: &'a dyn Backend) -> Self {
        ProfiledBackend {
            inner,
            times: Mutex::new(HashMap::new()),
            enabled: false.into(),
        }
    }

    /// Starts recording (after warm-up, say), forgetting what was recorded so far.
    pub fn enable(&self) {
        if let Ok(mut t) = self.times.lock() {
            t.clear();
        }
        self.enabled
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// What was recorded: (call description, time and count), slowest first.
    pub fn report(&self) -> Vec<(String, OpTime)> {
        let mut rows: Vec<_> = match self.times.lock() {
            Ok(t) => t.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            Err(_) => Vec::new(),
        };
        rows.sort_by_key(|r| std::cmp::Reverse(r.1.time));
        rows
    }

    /// Runs `f`, synchronised on both sides when recording, and files its time under `what`.
    fn timed<T>(&self, what: impl FnOnce() -> String, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if !self.enabled.load(std::sync::atomic::Ordering::Relaxed) {
            return f();
        }
        self.inner.synchronize()?;
        let t0 = Instant::now();
        let r = f()?;
        self.inner.synchronize()?;
        let dt = t0.elapsed();
        if let Ok(mut t) = self.times.lock() {
            let e = t.entry(what()).or_default();
            e.time += dt;
            e.calls += 1;
        }
        Ok(r)
    }
}

/// `name(K outputs, N nodes) inputs -> shape`: a several-output map's entry in the profile.
fn many_label(name: &str, exprs: &[MapExpr], inputs: &[&Tensor], shape: &[usize]) -> String {
    let ins: Vec<_> = inputs.iter().map(|t| describe(t)).collect();
    let nodes: usize = exprs.iter().map(expr_size).sum();
    format!(
        "{name}({} outputs, {nodes} nodes) {} -> {}",
        exprs.len(),
        ins.join(" "),
        dims(shape)
    )
}

impl Backend for ProfiledBackend<'_> {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn upload(&self, host: &HostTensor) -> Result<Tensor> {
        self.timed(
            || format!("upload {}", dims(&host.shape)),
            || self.inner.upload(host),
        )
    }

    fn download(&self, tensor: &Tensor) -> Result<HostTensor> {
        self.timed(
            || format!("download {}", describe(tensor)),
            || self.inner.download(tensor),
        )
    }

    fn full(&self, shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
        self.timed(
            || format!("full {}:{dtype}", dims(shape)),
            || self.inner.full(shape, value, dtype),
        )
    }

    fn map(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        out_shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor> {
        self.timed(
            || {
                let ins: Vec<_> = inputs.iter().map(|t| describe(t)).collect();
                format!(
                    "map({} nodes) {} -> {}:{dtype}",
                    expr_size(expr),
                    ins.join(" "),
                    dims(out_shape)
                )
            },
            || self.inner.map(expr, inputs, out_shape, dtype),
        )
    }

    fn map_many(
        &self,
        exprs: &[MapExpr],
        inputs: &[&Tensor],
        out_shape: &[usize],
        dtype: DType,
    ) -> Result<Vec<Tensor>> {
        self.timed(
            || {
                format!(
                    "{}:{dtype}",
                    many_label("map_many", exprs, inputs, out_shape)
                )
            },
            || self.inner.map_many(exprs, inputs, out_shape, dtype),
        )
    }

    fn map_reduce(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        shape: &[usize],
        reduced: usize,
        op: ReduceOp,
        dtype: DType,
    ) -> Result<Tensor> {
        self.timed(
            || {
                let ins: Vec<_> = inputs.iter().map(|t| describe(t)).collect();
                format!(
                    "map_reduce({} nodes) {} -> {}:{dtype}, {op:?} over the last {reduced}",
                    expr_size(expr),
                    ins.join(" "),
                    dims(shape)
                )
            },
            || {
                self.inner
                    .map_reduce(expr, inputs, shape, reduced, op, dtype)
            },
        )
    }

    fn non_finite_flag(&self, tensors: &[&Tensor]) -> Result<Tensor> {
        self.timed(
            || format!("non_finite_flag over {} tensors", tensors.len()),
            || self.inner.non_finite_flag(tensors),
        )
    }

    fn reduce(&self, input: &Tensor, axes: &[usize], op: ReduceOp) -> Result<Tensor> {
        self.timed(
            || format!("reduce {op:?} {} over {axes:?}", describe(input)),
            || self.inner.reduce(input, axes, op),
        )
    }

    fn contract(
        &self,
        a: &Tensor,
        a_labels: &[u32],
        b: &Tensor,
        b_labels: &[u32],
        out_labels: &[u32],
    ) -> Result<Tensor> {
        self.timed(
            || {
                format!(
                    "contract {}{a_labels:?} {}{b_labels:?} -> {out_labels:?}",
                    describe(a),
                    describe(b)
                )
            },
            || self.inner.contract(a, a_labels, b, b_labels, out_labels),
        )
    }

    fn contract_map(
        &self,
        a: &Tensor,
        a_labels: &[u32],
        b: &Tensor,
        b_labels: &[u32],
        out_labels: &[u32],
        expr: &MapExpr,
        extra: &[&Tensor],
        dtype: DType,
    ) -> Result<Tensor> {
        self.timed(
            || {
                let ins: Vec<_> = extra.iter().map(|t| describe(t)).collect();
                format!(
                    "contract_map({} nodes) {}{a_labels:?} {}{b_labels:?} -> {out_labels:?} + [{}] :{dtype}",
                    expr_size(expr),
                    describe(a),
                    describe(b),
                    ins.join(" ")
                )
            },
            || {
                self.inner.contract_map(
                    a, a_labels, b, b_labels, out_labels, expr, extra, dtype,
                )
            },
        )
    }

    fn normalize(&self, input: &Tensor, axis: usize, func: NormFn) -> Result<Tensor> {
        self.timed(
            || format!("normalize {func:?} {} axis {axis}", describe(input)),
            || self.inner.normalize(input, axis, func),
        )
    }

    fn map_normalize(
        &self,
        expr: &MapExpr,
        inputs: &[&Tensor],
        shape: &[usize],
        axis: usize,
        func: NormFn,
        dtype: DType,
    ) -> Result<Tensor> {
        self.timed(
            || {
                let ins: Vec<_> = inputs.iter().map(|t| describe(t)).collect();
                format!(
                    "map_normalize({} nodes) {} -> {}:{dtype}, {func:?} axis {axis}",
                    expr_size(expr),
                    ins.join(" "),
                    dims(shape)
                )
            },
            || {
                self.inner
                    .map_normalize(expr, inputs, shape, axis, func, dtype)
            },
        )
    }

    fn map_rows(&self, args: &RowMapArgs<'_>) -> Result<Tensor> {
        self.timed(
            || {
                let ins: Vec<_> = args.inputs.iter().map(|t| describe(t)).collect();
                let ops: Vec<_> = args
                    .reductions
                    .iter()
                    .map(|(_, op)| format!("{op:?}"))
                    .collect();
                format!(
                    "map_rows({} nodes) {} -> {}:{}, {} along axis {}",
                    expr_size(args.expr),
                    ins.join(" "),
                    dims(args.shape),
                    args.dtype,
                    ops.join(" "),
                    args.axis
                )
            },
            || self.inner.map_rows(args),
        )
    }

    fn attention(&self, args: &AttentionArgs<'_>) -> Result<Tensor> {
        self.timed(
            || {
                let ins: Vec<_> = args.extra.iter().map(|t| describe(t)).collect();
                format!(
                    "attention({} nodes) {}{:?} {}{:?} {}{:?} + [{}] softmax along {} -> {:?} :{}",
                    expr_size(args.expr),
                    describe(args.q.0),
                    args.q.1,
                    describe(args.k.0),
                    args.k.1,
                    describe(args.v.0),
                    args.v.1,
                    ins.join(" "),
                    args.key,
                    args.out,
                    args.dtype
                )
            },
            || self.inner.attention(args),
        )
    }

    fn gather(&self, input: &Tensor, index: &[i64], out_shape: &[usize]) -> Result<Tensor> {
        self.timed(
            || format!("gather {} -> {}", describe(input), dims(out_shape)),
            || self.inner.gather(input, index, out_shape),
        )
    }

    fn scatter(
        &self,
        values: &Tensor,
        index: &[i64],
        out_shape: &[usize],
        op: ReduceOp,
    ) -> Result<Tensor> {
        self.timed(
            || format!("scatter {op:?} {} -> {}", describe(values), dims(out_shape)),
            || self.inner.scatter(values, index, out_shape, op),
        )
    }

    fn gather_shared(
        &self,
        input: &Tensor,
        index: &Arc<Vec<i64>>,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        self.timed(
            || {
                format!(
                    "gather(kept index) {} -> {}",
                    describe(input),
                    dims(out_shape)
                )
            },
            || self.inner.gather_shared(input, index, out_shape),
        )
    }

    fn scatter_shared(
        &self,
        values: &Tensor,
        index: &Arc<Vec<i64>>,
        out_shape: &[usize],
        op: ReduceOp,
    ) -> Result<Tensor> {
        self.timed(
            || {
                format!(
                    "scatter(kept index) {op:?} {} -> {}",
                    describe(values),
                    dims(out_shape)
                )
            },
            || self.inner.scatter_shared(values, index, out_shape, op),
        )
    }

    fn cast(&self, input: &Tensor, dtype: DType) -> Result<Tensor> {
        self.timed(
            || format!("cast {} -> {dtype}", describe(input)),
            || self.inner.cast(input, dtype),
        )
    }

    fn synchronize(&self) -> Result<()> {
        self.inner.synchronize()
    }

    fn is_accelerator(&self) -> bool {
        self.inner.is_accelerator()
    }

    fn paths(&self) -> Option<&dyn crate::paths::PathDevice> {
        self.inner.paths()
    }

    fn memory_report(&self) -> Option<String> {
        self.inner.memory_report()
    }

    fn map_many_into(
        &self,
        exprs: &[MapExpr],
        inputs: &[&Tensor],
        out_shape: &[usize],
        outs: &[&Tensor],
    ) -> Result<()> {
        self.timed(
            || many_label("map_many_into", exprs, inputs, out_shape),
            || self.inner.map_many_into(exprs, inputs, out_shape, outs),
        )
    }

    fn can_record(&self) -> bool {
        self.inner.can_record()
    }

    fn begin_recording(&self) -> Result<()> {
        self.inner.begin_recording()
    }

    fn end_recording(&self) -> Result<crate::Recording> {
        self.inner.end_recording()
    }

    fn replay(&self, recording: &crate::Recording) -> Result<()> {
        self.timed(|| "replay".to_string(), || self.inner.replay(recording))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::CpuBackend;

    /// A method the wrapper does not forward would run the trait's default (often an unfused
    /// composition) under `--profile` and so measure something else than a plain run.
    #[test]
    fn every_backend_method_is_forwarded() {
        let names = |text: &str, from: &str, to: &str| -> Vec<String> {
            let start = text.find(from).unwrap_or(0);
            let end = text[start..].find(to).map_or(text.len(), |e| start + e);
            text[start..end]
                .lines()
                .filter_map(|l| l.strip_prefix("    fn "))
                .filter_map(|l| l.split(['(', '<']).next())
                .map(str::to_string)
                .collect()
        };
        let declared = names(include_str!("lib.rs"), "pub trait Backend", "\n}\n");
        let forwarded = names(
            include_str!("profiled.rs"),
            "impl Backend for ProfiledBackend",
            "\n}\n",
        );
        assert!(declared.len() > 20, "{declared:?}");
        let missing: Vec<&String> = declared.iter().filter(|n| !forwarded.contains(n)).collect();
        assert!(missing.is_empty(), "not forwarded: {missing:?}");
    }

    #[test]
    fn records_only_after_enable_and_groups_by_shape() {
        let cpu = CpuBackend::new();
        let p = ProfiledBackend::new(&cpu);
        let x = p
            .upload(&HostTensor::from_f32(vec![2, 3], vec![1.0; 6]))
            .unwrap();
        assert!(p.report().is_empty());
        p.enable();
        let e = MapExpr::Unary(crate::UnaryFn::Exp, Box::new(MapExpr::Input(0)));
        for _ in 0..3 {
            p.map(&e, &[&x], &[2, 3], DType::F32).unwrap();
        }
        p.reduce(&x, &[1], ReduceOp::Sum).unwrap();
        let r = p.report();
        assert_eq!(r.len(), 2, "{r:?}");
        let map = r.iter().find(|(k, _)| k.starts_with("map")).unwrap();
        assert_eq!(map.1.calls, 3);
        assert_eq!(map.0, "map(2 nodes) 2x3:f32 -> 2x3:f32");
        let red = r.iter().find(|(k, _)| k.starts_with("reduce")).unwrap();
        assert_eq!(red.0, "reduce Sum 2x3:f32 over [1]");
    }
}
