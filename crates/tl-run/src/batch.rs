//! Mini-batches along an example index (`minimize … batch e 64`): the example index's domain
//! shrinks to the batch, every data tensor and relation with an axis in that domain is cut to
//! the batch's examples, and the program is re-planned once per batch size.

use crate::engine::{tuples_to_dense, Engine, IndexCache, Value};
use crate::error::RunError;
use std::collections::HashMap;
use std::sync::Arc;
use tl_backend::{HostData, HostTensor};
use tl_check::{CheckedProgram, Definition, DomainId, TensorId};
use tl_plan::ProgramPlan;
use tl_syntax::Span;

/// The example domain and the programs re-planned for each batch size.
pub struct Batcher {
    /// The domain the batch index ranges over.
    pub domain: DomainId,
    /// Examples per batch.
    pub size: usize,
    /// Re-planned programs by batch length (data definitions left empty; values come in per batch).
    plans: HashMap<usize, Arc<Planned>>,
    /// The index vectors of each re-planned program, kept from one step to the next (each
    /// step runs a fresh engine).
    caches: HashMap<usize, IndexCache>,
}

/// A program re-planned for one batch length, and its plan.
pub type Planned = (CheckedProgram, ProgramPlan);

/// The domain of the index variable called `name` in the equations (it must be one domain).
pub fn batch_domain(p: &CheckedProgram, name: &str, span: Span) -> Result<DomainId, RunError> {
    let mut found: Vec<DomainId> = p
        .equations
        .iter()
        .flat_map(|e| e.vars.iter())
        .chain(p.rules.iter().flat_map(|r| r.vars.iter()))
        .filter(|v| v.name == name)
        .map(|v| v.domain)
        .collect();
    found.sort_unstable();
    found.dedup();
    match found.as_slice() {
        [d] => Ok(*d),
        [] => Err(RunError::Unsupported { what: format!("no equation uses an index `{name}` to batch along"), hint: Some("batch along the index that numbers the examples in the loss's equations, e.g. `batch e 32` for `Loss avg= (Y[e] - T[e])^2`".into()), span }),
        _ => Err(RunError::Unsupported { what: format!("index `{name}` ranges over different domains in different equations; batching needs one"), hint: Some(format!("rename `{name}` where it does not number the examples")), span }),
    }
}

impl Batcher {
    /// A batcher over `domain` with batches of `size`.
    pub fn new(domain: DomainId, size: usize) -> Self {
        Batcher {
            domain,
            size: size.max(1),
            plans: HashMap::new(),
            caches: HashMap::new(),
        }
    }

    /// The program and plan for batches of `len` examples, and the index vectors that plan's
    /// steps have built so far (for the step's engine to take and give back).
    pub fn plan_for(
        &mut self,
        p: &CheckedProgram,
        options: tl_plan::PlanOptions,
        len: usize,
        span: Span,
    ) -> Result<(Arc<Planned>, &mut IndexCache), RunError> {
        // A loop's starting value given as data would need cutting per batch, as data is; the
        // same value written as an equation (`S[e, i] = H0[e, i]`) reads data that is cut.
        for lt in p.loops.iter().flat_map(|l| l.tensors.iter()) {
            let batched = p
                .tensors
                .get(lt.tensor)
                .is_some_and(|d| d.axes.contains(&self.domain));
            if lt.initial.is_some() && batched {
                let name = p.tensors.get(lt.tensor).map_or("", |d| d.name.as_str());
                return Err(RunError::Unsupported {
                    what: format!(
                        "`{name}` starts its loop from data with the batch axis, which mini-batches cannot cut yet"
                    ),
                    hint: Some(format!(
                        "read the data into a tensor of its own and start from an equation, e.g. `{name}[e, i] = {name}0[e, i]`"
                    )),
                    span,
                });
            }
        }
        if !self.plans.contains_key(&len) {
            let mut bp = p.clone();
            bp.domains[self.domain].extent = len;
            for eq in bp.equations.iter_mut() {
                eq.vars
                    .iter_mut()
                    .filter(|v| v.domain == self.domain)
                    .for_each(|v| v.extent = len);
            }
            let steps = bp.loops.iter_mut().flat_map(|l| l.equations.iter_mut());
            for s in steps {
                s.equation
                    .vars
                    .iter_mut()
                    .filter(|v| v.domain == self.domain)
                    .for_each(|v| v.extent = len);
            }
            for r in bp.rules.iter_mut() {
                r.vars
                    .iter_mut()
                    .filter(|v| v.domain == self.domain)
                    .for_each(|v| v.extent = len);
            }
            for t in bp.tensors.iter_mut() {
                if let Definition::Data(_) = t.def {
                    t.def = Definition::Data(HostTensor {
                        shape: Vec::new(),
                        data: HostData::F32(Vec::new().into()),
                    });
                }
            }
            let plan = tl_plan::plan_with(&bp, options).map_err(|e| RunError::Unsupported {
                what: format!(
                    "cannot plan a batch: {}",
                    e.first().map(|x| x.to_string()).unwrap_or_default()
                ),
                hint: Some("try another batch size, or train without `batch`".into()),
                span,
            })?;
            self.plans.insert(len, Arc::new((bp, plan)));
        }
        let plan = self.plans.get(&len).ok_or_else(|| RunError::Unsupported {
            what: "internal: batch plan missing".into(),
            hint: None,
            span,
        })?;
        Ok((Arc::clone(plan), self.caches.entry(len).or_default()))
    }
}

/// The rows `rows` of axis `axis` of row-major `v` (of `shape`), copied whole: the common case
/// of one batch axis, without converting the elements.
fn cut_axis<T: Copy + Default>(v: &[T], shape: &[usize], axis: usize, rows: &[usize]) -> Vec<T> {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let extent = shape[axis];
    let mut out = Vec::with_capacity(outer * rows.len() * inner);
    for o in 0..outer {
        for &r in rows {
            let start = (o * extent + r) * inner;
            match v.get(start..start + inner) {
                Some(row) => out.extend_from_slice(row),
                None => out.extend(std::iter::repeat_n(T::default(), inner)),
            }
        }
    }
    out
}

/// `host` cut to the examples `rows` along every axis in `axes`.
fn cut(host: &HostTensor, axes: &[usize], rows: &[usize]) -> HostTensor {
    if let [axis] = *axes {
        let mut shape = host.shape.clone();
        shape[axis] = rows.len();
        let s = &host.shape;
        let data = match &host.data {
            HostData::F32(v) => HostData::F32(cut_axis(v, s, axis, rows).into()),
            HostData::F64(v) => HostData::F64(cut_axis(v, s, axis, rows).into()),
            HostData::F16(v) => HostData::F16(cut_axis(v, s, axis, rows).into()),
            HostData::BF16(v) => HostData::BF16(cut_axis(v, s, axis, rows).into()),
            HostData::Bool(v) => HostData::Bool(cut_axis(v, s, axis, rows).into()),
            HostData::I64(v) => HostData::I64(cut_axis(v, s, axis, rows).into()),
        };
        return HostTensor { shape, data };
    }
    let values = host.data.to_f64();
    let shape: Vec<usize> = host
        .shape
        .iter()
        .enumerate()
        .map(|(k, &e)| if axes.contains(&k) { rows.len() } else { e })
        .collect();
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut point = vec![0usize; shape.len()];
    for _ in 0..n {
        let mut flat = 0usize;
        for (k, &e) in host.shape.iter().enumerate() {
            let i = if axes.contains(&k) {
                rows[point[k]]
            } else {
                point[k]
            };
            flat = flat * e + i;
        }
        out.push(values.get(flat).copied().unwrap_or(0.0));
        for k in (0..shape.len()).rev() {
            point[k] += 1;
            if point[k] < shape[k] {
                break;
            }
            point[k] = 0;
        }
    }
    HostTensor::from_f64(shape, out, host.dtype())
}

impl Engine<'_> {
    /// The value tensor `t` takes in a batch of examples `rows` of `domain`: data and relations
    /// with an axis in the domain are cut to the batch; everything else is shared.
    pub fn batch_value(
        &self,
        t: TensorId,
        domain: DomainId,
        rows: &[usize],
        span: Span,
    ) -> Result<Option<Value>, RunError> {
        let decl = &self.program.tensors[t];
        let axes: Vec<usize> = decl
            .axes
            .iter()
            .enumerate()
            .filter(|(_, &d)| d == domain)
            .map(|(k, _)| k)
            .collect();
        if axes.is_empty() || matches!(decl.def, Definition::Derived) {
            return Ok(if matches!(decl.def, Definition::Derived) {
                None
            } else {
                self.values[t].clone()
            });
        }
        match &decl.def {
            Definition::Data(host) => {
                let sub = cut(host, &axes, rows);
                let sub = HostTensor { shape: sub.shape.clone(), data: sub.data.convert(self.dtype()) };
                Ok(Some(Value::Dense(self.backend.upload(&sub).map_err(|e| RunError::backend(e, span))?)))
            }
            Definition::Tuples(tuples) => {
                let position: HashMap<u32, u32> = rows.iter().enumerate().map(|(k, &r)| (r as u32, k as u32)).collect();
                let kept: Vec<Vec<u32>> = tuples.iter().filter_map(|tu| tu.iter().enumerate().map(|(k, &v)| if axes.contains(&k) { position.get(&v).copied() } else { Some(v) }).collect()).collect();
                let mut shape = self.shape(t);
                axes.iter().for_each(|&k| shape[k] = rows.len());
                let host = tuples_to_dense(&shape, kept.iter().map(Vec::as_slice));
                Ok(Some(Value::Dense(self.backend.upload(&host).map_err(|e| RunError::backend(e, span))?)))
            }
            Definition::External => Err(RunError::Unsupported { what: format!("`{}` was given in device memory, and such a tensor is not cut into mini-batches", decl.name), hint: Some("give it as a host array (NumPy), or train on the whole batch".into()), span }),
            _ => Err(RunError::Unsupported { what: format!("parameter `{}` has an axis along the batch index; batches cut data, not parameters", decl.name), hint: Some("batch along the index that numbers the examples, which the data has and the parameters do not".into()), span }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The element-by-element cut (two axes take the general path) against the row copy.
    #[test]
    fn one_axis_cuts_agree_with_the_general_cut() {
        let shape = vec![3, 5, 2];
        let v: Vec<f64> = (0..30).map(|x| x as f64 * 0.5 - 3.0).collect();
        let host = HostTensor::from_f64(shape.clone(), v, tl_backend::DType::F32);
        let rows = [4, 0, 2];
        let fast = cut(&host, &[1], &rows);
        assert_eq!(fast.shape, vec![3, 3, 2]);
        let want: Vec<f64> = (0..3)
            .flat_map(|o| {
                rows.iter().flat_map(move |&r| {
                    (0..2).map(move |i| ((o * 5 + r) * 2 + i) as f64 * 0.5 - 3.0)
                })
            })
            .collect();
        assert_eq!(fast.data.to_f64(), want);
        assert_eq!(fast.dtype(), tl_backend::DType::F32);
        // Both axes of a square relation-like tensor: the general path.
        let sq = HostTensor::from_f64(
            vec![3, 3],
            (0..9).map(f64::from).collect(),
            tl_backend::DType::F64,
        );
        let both = cut(&sq, &[0, 1], &[2, 0]);
        assert_eq!(both.data.to_f64(), vec![8.0, 6.0, 2.0, 0.0]);
    }
}
