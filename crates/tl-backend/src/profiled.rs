//! A backend that times every primitive of another one, for `tl bench --profile`.
//!
//! Each call is bracketed by two synchronisations of the inner backend, so the time recorded is
//! the primitive's own (device work included), at the price of serialising everything. Calls
//! are grouped by what they are and the shapes they touch, which is what says where a
//! program's time goes below the level of its statements.

use crate::kernel::{Body, Form, Info, Kernel, Product};
use crate::{AttentionArgs, Backend, HostTensor, Index, MapExpr, ReduceOp, Result, Tensor};
use std::collections::HashMap;
use std::sync::Mutex;
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

/// The inputs of a call, described.
fn ins(inputs: &[&Tensor]) -> String {
    inputs
        .iter()
        .map(|t| describe(t))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A kernel's entry in the profile: what it is, its expression's size, its inputs and
/// shape (`map(3 nodes) 64x64:f32 -> 64x64:f32`).
fn kernel_label(k: &Kernel<'_>) -> String {
    let (shape, dtype) = (dims(k.shape), k.dtype);
    let inputs = ins(k.inputs);
    let nodes = |exprs: &[MapExpr]| exprs.iter().map(MapExpr::size).sum::<usize>();
    let Ok(form) = k.form() else {
        return format!("kernel (not computable) {inputs} -> {shape}:{dtype}");
    };
    match form {
        Form::Fill(_) => format!("full {shape}:{dtype}"),
        Form::Convert(x) => format!("cast {} -> {dtype}", describe(x)),
        Form::Map(e) => format!("map({} nodes) {inputs} -> {shape}:{dtype}", e.size()),
        Form::MapMany(exprs) | Form::MapInto(exprs, _) => {
            let name = if k.into.is_some() {
                "map_many_into"
            } else {
                "map_many"
            };
            let n = exprs.len();
            format!(
                "{name}({n} outputs, {} nodes) {inputs} -> {shape}:{dtype}",
                nodes(exprs)
            )
        }
        Form::Reduce { axes, op, .. } => format!("reduce {op:?} {inputs} over {axes:?}"),
        Form::MapReduce { expr, last, op } => format!(
            "map_reduce({} nodes) {inputs} -> {shape}:{dtype}, {op:?} over the last {last}",
            expr.size()
        ),
        Form::Normalize { axis, func, .. } => format!("normalize {func:?} {inputs} axis {axis}"),
        Form::MapNormalize { expr, axis, func } => format!(
            "map_normalize({} nodes) {inputs} -> {shape}:{dtype}, {func:?} axis {axis}",
            expr.size()
        ),
        Form::Rows(args) => {
            let ops: Vec<String> = args
                .reductions
                .iter()
                .map(|(_, op)| format!("{op:?}"))
                .collect();
            format!(
                "map_rows({} nodes) {inputs} -> {shape}:{dtype}, {} along axis {}",
                args.expr.size() + args.reductions.iter().map(|(e, _)| e.size()).sum::<usize>(),
                ops.join(" "),
                args.axis,
            )
        }
        Form::Mask { p, .. } => format!("mask p={p} -> {shape}:{dtype}"),
        Form::Composed => match k.body {
            Body::Reduce { expr, axes, op } => format!(
                "map_reduce({} nodes) {inputs} -> {shape}:{dtype}, {op:?} over {axes:?}",
                expr.size()
            ),
            _ => format!("kernel {inputs} -> {shape}:{dtype}"),
        },
    }
}

impl Backend for ProfiledBackend<'_> {
    fn info(&self) -> &Info {
        self.inner.info()
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

    fn kernel(&self, kernel: &Kernel<'_>) -> Result<Vec<Tensor>> {
        self.timed(|| kernel_label(kernel), || self.inner.kernel(kernel))
    }

    fn product(&self, p: &Product<'_>) -> Result<Tensor> {
        self.timed(
            || {
                let (a, b) = (describe(p.a.0), describe(p.b.0));
                let (al, bl, out) = (p.a.1, p.b.1, p.out_labels);
                match p.epilogue {
                    None => format!("contract {a}{al:?} {b}{bl:?} -> {out:?}"),
                    Some(e) => format!(
                        "contract_map({} nodes) {a}{al:?} {b}{bl:?} -> {out:?} + [{}] :{}",
                        e.expr.size(),
                        ins(e.extra),
                        e.dtype
                    ),
                }
            },
            || self.inner.product(p),
        )
    }

    fn attention(&self, args: &AttentionArgs<'_>) -> Result<Tensor> {
        self.timed(
            || {
                format!(
                    "attention({} nodes) {}{:?} {}{:?} {}{:?} + [{}] softmax along {} -> {:?} :{}",
                    args.expr.size(),
                    describe(args.q.0),
                    args.q.1,
                    describe(args.k.0),
                    args.k.1,
                    describe(args.v.0),
                    args.v.1,
                    ins(args.extra),
                    args.key,
                    args.out,
                    args.dtype
                )
            },
            || self.inner.attention(args),
        )
    }

    fn gather(&self, input: &Tensor, index: Index<'_>, out_shape: &[usize]) -> Result<Tensor> {
        self.timed(
            || {
                let kept = if matches!(index, Index::Shared(_)) {
                    "(kept index)"
                } else {
                    ""
                };
                format!("gather{kept} {} -> {}", describe(input), dims(out_shape))
            },
            || self.inner.gather(input, index, out_shape),
        )
    }

    fn scatter(
        &self,
        values: &Tensor,
        index: Index<'_>,
        out_shape: &[usize],
        op: ReduceOp,
    ) -> Result<Tensor> {
        self.timed(
            || {
                let kept = if matches!(index, Index::Shared(_)) {
                    "(kept index)"
                } else {
                    ""
                };
                format!(
                    "scatter{kept} {op:?} {} -> {}",
                    describe(values),
                    dims(out_shape)
                )
            },
            || self.inner.scatter(values, index, out_shape, op),
        )
    }

    fn non_finite_flag(&self, tensors: &[&Tensor]) -> Result<Tensor> {
        self.timed(
            || format!("non_finite_flag over {} tensors", tensors.len()),
            || self.inner.non_finite_flag(tensors),
        )
    }

    fn synchronize(&self) -> Result<()> {
        self.inner.synchronize()
    }

    fn paths(&self) -> Option<&dyn crate::paths::PathDevice> {
        self.inner.paths()
    }

    fn memory_report(&self) -> Option<String> {
        self.inner.memory_report()
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
    use crate::{Calls, DType};

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
        assert!(declared.len() > 10, "{declared:?}");
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
