//! The native half of the `tensorlogic` Python package: a [`Session`] holds a program's text,
//! the data given from Python and what training learned, and compiles and runs them with the
//! same pipeline as `tl run`. Answers cross into Python as the JSON lines `tl run --json`
//! prints, and errors as the diagnostic's code, message, place and rendering; the Python half
//! (`tensorlogic/__init__.py`) turns both into NumPy arrays, rows and exceptions.

mod dlpack;

use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::prelude::*;
use std::path::PathBuf;
use tensorlogic::{device, pipeline, report};
use tl_backend::{Buf, DType, HostData, HostTensor};
use tl_check::{CheckedProgram, Input, Inputs};
use tl_run::observe::{StepInfo, TrainObserver};
use tl_run::{Engine, RunOptions};
use tl_syntax::ast::{Program, StmtKind};
use tl_syntax::{Diagnostic, SourceMap, ToDiagnostic};

create_exception!(
    _native,
    RawError,
    PyException,
    "A diagnostic: (code, message, line, column, rendered, file)."
);

/// A program with its inputs and learned values, compiled anew for each request.
#[pyclass]
struct Session {
    text: String,
    name: String,
    dir: PathBuf,
    device: device::DeviceChoice,
    dtype: DType,
    seed: u64,
    inputs: Inputs,
    learned: Vec<(String, HostTensor)>,
    /// The device's memory report after the last request (GPU only; its counters run from
    /// the session's first request).
    report: std::sync::Mutex<Option<String>>,
    /// The backend, opened at the first request and kept: a GPU's context, compiled kernels
    /// and memory pool serve every later request.
    backend: std::sync::Mutex<Option<std::sync::Arc<dyn tl_backend::Backend>>>,
}

/// Which statements a request keeps: the program's commands (a run), or none of them and
/// other statements instead (a query, a `minimize` asked for from Python).
enum Commands<'a> {
    Program,
    Instead(&'a str),
}

/// The diagnostics as a Python exception: the first error's code, message, line and column,
/// and all of them rendered.
fn raise(diags: &[Diagnostic], sources: &SourceMap) -> PyErr {
    let rendered: String = diags
        .iter()
        .map(|d| report::render_to_string(d, sources))
        .collect();
    let first = diags
        .iter()
        .find(|d| d.severity == tl_syntax::Severity::Error)
        .or(diags.first());
    let (code, message) = first.map_or(("TL0000", String::new()), |d| (d.code, d.message.clone()));
    let place = first
        .and_then(|d| d.span)
        .filter(|s| (s.file.0 as usize) < sources.files().len());
    let (line, column) = place.map_or((0, 0), |s| sources.line_col(s.file, s.start));
    let file = place.map_or(String::new(), |s| {
        sources.file(s.file).path.display().to_string()
    });
    RawError::new_err((code, message, line, column, rendered, file))
}

/// Hands each finished training step to a Python callable `(step, total, loss, lr)` and
/// looks for a pending Ctrl-C: the first exception (the callable's, or `KeyboardInterrupt`)
/// stops training after that step and is raised when the run ends.
struct PyObserver<'py> {
    py: Python<'py>,
    callback: Option<&'py Bound<'py, PyAny>>,
    error: Option<PyErr>,
}

impl TrainObserver for PyObserver<'_> {
    fn step(&mut self, info: &StepInfo) {
        if self.error.is_some() {
            return;
        }
        let called = match self.callback {
            Some(f) => f
                .call1((info.step, info.total, info.loss, info.lr))
                .map(drop),
            None => Ok(()),
        };
        if let Err(e) = called.and_then(|()| self.py.check_signals()) {
            self.error = Some(e);
            tl_run::interrupt::request_stop();
        }
    }
}

fn parse_dtype(name: &str) -> PyResult<DType> {
    Ok(match name {
        "f32" | "float32" => DType::F32,
        "f64" | "float64" => DType::F64,
        "f16" | "float16" => DType::F16,
        "bf16" | "bfloat16" => DType::BF16,
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown dtype `{other}`: use f32, f64, f16 or bf16"
            )))
        }
    })
}

fn parse_device(name: &str) -> PyResult<device::DeviceChoice> {
    Ok(match name {
        "auto" => device::DeviceChoice::Auto,
        "cpu" => device::DeviceChoice::Cpu,
        "cuda" => device::DeviceChoice::Cuda,
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown device `{other}`: use auto, cpu or cuda"
            )))
        }
    })
}

impl Session {
    /// The program's statements (without its commands when `commands` is a query, which is
    /// added), parsed.
    fn parse(
        &self,
        commands: &Commands<'_>,
        sources: &mut SourceMap,
    ) -> (Program, Vec<Diagnostic>) {
        let (mut program, mut diags) =
            tl_syntax::load_source(&self.name, &self.text, sources, &self.dir);
        if let Commands::Instead(text) = commands {
            program.stmts.retain(|s| {
                !matches!(
                    s.kind,
                    StmtKind::Query(_) | StmtKind::Minimize(_) | StmtKind::Write(_)
                )
            });
            let (extra, d) = tl_syntax::load_source("<python>", text, sources, &self.dir);
            program.stmts.extend(extra.stmts);
            diags.extend(d);
        }
        (program, diags)
    }

    /// The session's backend, opened on first use (a failure is not kept: the next request
    /// tries again).
    fn backend(&self) -> Result<std::sync::Arc<dyn tl_backend::Backend>, Box<Diagnostic>> {
        let mut slot = self.backend.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = slot.as_ref() {
            return Ok(b.clone());
        }
        let opened: std::sync::Arc<dyn tl_backend::Backend> = device::open(self.device)?.into();
        *slot = Some(opened.clone());
        Ok(opened)
    }

    /// Compiles the program (its commands replaced as `commands` says) with `inputs` given,
    /// starts an engine on the session's device with `learned` values for its parameters,
    /// and hands it to `f`.
    fn with_engine<R>(
        &self,
        commands: Commands<'_>,
        inputs: &Inputs,
        learned: &[(String, HostTensor)],
        f: impl FnOnce(&mut Engine<'_>, &CheckedProgram, &SourceMap) -> PyResult<R>,
    ) -> PyResult<R> {
        let mut sources = SourceMap::new();
        let (program, diags) = self.parse(&commands, &mut sources);
        let compiled = pipeline::compile_given(
            &program,
            diags,
            &sources,
            pipeline::GoalDirected::Auto,
            inputs,
        )
        .map_err(|d| raise(&d, &sources))?;
        let backend = self.backend().map_err(|d| raise(&[*d], &sources))?;
        let plan = pipeline::for_backend(&compiled.checked, compiled.plan, backend.as_ref())
            .map_err(|d| raise(&d, &sources))?;
        let external = inputs
            .values
            .iter()
            .filter_map(|(n, i)| match i {
                Input::Device(t) => Some((n.clone(), t.clone())),
                _ => None,
            })
            .collect();
        let options = RunOptions {
            dtype: self.dtype,
            seed: self.seed,
            external,
            ..RunOptions::default()
        };
        let result = Engine::new(&compiled.checked, &plan, backend.as_ref(), options)
            .map_err(|e| run_error(e, &sources))
            .and_then(|mut engine| {
                engine
                    .set_learned_values(learned)
                    .map_err(|e| run_error(e, &sources))?;
                f(&mut engine, &compiled.checked, &sources)
            });
        if let Ok(mut r) = self.report.lock() {
            *r = backend.memory_report();
        }
        result
    }

    /// Compiles and runs the request, returning its answers as JSON lines.
    fn execute(
        &mut self,
        py: Python<'_>,
        commands: Commands<'_>,
        on_step: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<String>> {
        let inputs = std::mem::take(&mut self.inputs);
        let learned = std::mem::take(&mut self.learned);
        let mut kept = learned.clone();
        let result = self.with_engine(commands, &inputs, &learned, |engine, _, sources| {
            let mut answers = Vec::new();
            let mut observer = PyObserver {
                py,
                callback: on_step,
                error: None,
            };
            let result = engine.run(&mut |a| answers.push(a.to_json()), &mut observer);
            // What was learned, also up to an error, stays learned.
            if let Ok(values) = engine.learned_values() {
                kept = values;
            }
            if let Some(e) = observer.error {
                return Err(e);
            }
            result.map_err(|e| run_error(e, sources))?;
            Ok(answers)
        });
        self.inputs = inputs;
        self.learned = kept;
        result
    }
}

fn run_error(e: tl_run::RunError, sources: &SourceMap) -> PyErr {
    raise(&[e.to_diagnostic()], sources)
}

/// A NumPy array of floats (float32 or float64, any layout) as a host tensor of its own type:
/// a C-contiguous, aligned array lends its memory (the tensor keeps the array alive), any
/// other is copied by NumPy first.
fn host_of(array: &Bound<'_, PyAny>) -> PyResult<HostTensor> {
    fn read<T: numpy::Element + Copy + 'static>(a: &Bound<'_, PyArrayDyn<T>>) -> PyResult<Buf<T>> {
        // A view, or an array whose elements are not aligned for `T`, is copied by NumPy
        // into a fresh C-contiguous array first.
        let aligned = (a.data() as usize).is_multiple_of(std::mem::align_of::<T>());
        let a = if a.is_c_contiguous() && aligned {
            a.clone()
        } else {
            a.call_method0("copy")?.downcast_into::<PyArrayDyn<T>>()?
        };
        let owner: Py<PyArrayDyn<T>> = a.clone().unbind();
        // SAFETY: a C-contiguous, aligned array holds `len` values of `T` from its data
        // pointer; the owner (a reference to the array) keeps that memory alive, and NumPy
        // cannot resize an array something else refers to.
        Ok(unsafe { Buf::lent(a.data(), a.len(), Box::new(owner)) })
    }
    if let Ok(a) = array.downcast::<PyArrayDyn<f32>>() {
        return Ok(HostTensor {
            shape: a.shape().to_vec(),
            data: HostData::F32(read(a)?),
        });
    }
    if let Ok(a) = array.downcast::<PyArrayDyn<f64>>() {
        return Ok(HostTensor {
            shape: a.shape().to_vec(),
            data: HostData::F64(read(a)?),
        });
    }
    Err(pyo3::exceptions::PyTypeError::new_err(
        "expected a NumPy array of float32 or float64",
    ))
}

/// A host tensor as a NumPy array (float32 for the 16-bit and 32-bit types, float64 for
/// float64), without copying where its elements already have that type: an array given from
/// Python comes back as a read-only view of itself, elements of the engine's own are moved
/// into the array (copied only when still shared).
fn array_of<'py>(py: Python<'py>, t: HostTensor) -> PyResult<Bound<'py, PyAny>> {
    fn give<'py, T: numpy::Element + Copy + 'static>(
        py: Python<'py>,
        b: Buf<T>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(owner) = b
            .owner()
            .and_then(|o| o.downcast_ref::<Py<PyArrayDyn<T>>>())
        {
            let view = owner.bind(py).call_method0("view")?;
            view.getattr("flags")?.setattr("writeable", false)?;
            return Ok(view);
        }
        Ok(b.into_vec().into_pyarray(py).into_any())
    }
    let shape = t.shape;
    let flat = match t.data {
        HostData::F64(v) => give(py, v)?,
        HostData::F32(v) => give(py, v)?,
        other => other.to_f32().into_pyarray(py).into_any(),
    };
    flat.call_method1("reshape", (shape,))
}

/// A value given from Python: a DLPack capsule (`x.__dlpack__()`) of device memory, or a
/// float array.
fn input_of(value: &Bound<'_, PyAny>) -> PyResult<Input> {
    if value.downcast::<pyo3::types::PyCapsule>().is_ok() {
        return Ok(Input::Device(dlpack::consume(value)?));
    }
    Ok(Input::Tensor(host_of(value)?))
}

/// Why a result could not be handed out: Python's own error, or the backend's.
enum HandOut {
    Py(PyErr),
    Backend(tl_backend::BackendError),
}

impl HandOut {
    fn into_py(self, fail: impl Fn(tl_backend::BackendError) -> PyErr) -> PyErr {
        match self {
            HandOut::Py(e) => e,
            HandOut::Backend(e) => fail(e),
        }
    }
}

/// A result for Python: with `device`, a DLPack capsule when it is in device memory (the
/// backend's work synchronised first), else a NumPy array.
fn hand_out<'py>(
    py: Python<'py>,
    backend: &dyn tl_backend::Backend,
    t: &tl_backend::Tensor,
    device: bool,
) -> Result<Bound<'py, PyAny>, HandOut> {
    if device {
        if let Some(capsule) = dlpack::export(py, t).map_err(HandOut::Py)? {
            return Ok(capsule);
        }
    }
    let host = backend.download(t).map_err(HandOut::Backend)?;
    array_of(py, host).map_err(HandOut::Py)
}

/// NumPy arrays handed to Python.
type Arrays<'py> = Vec<Bound<'py, PyAny>>;

/// The ids of tensors named in `names`, or an error naming the first unknown one.
fn ids(checked: &CheckedProgram, names: &[String]) -> PyResult<Vec<tl_check::TensorId>> {
    names
        .iter()
        .map(|n| {
            checked.tensor_named(n).ok_or_else(|| {
                pyo3::exceptions::PyKeyError::new_err(format!("the program has no tensor `{n}`"))
            })
        })
        .collect()
}

#[pymethods]
impl Session {
    /// A session for a program's text; `name` names it in diagnostics and `dir` is where its
    /// relative file paths start. Parses the program at once; it is checked when it first
    /// runs (its data may still be given from Python), or by [`Session::check`].
    #[new]
    #[pyo3(signature = (text, name, dir, device="cpu", dtype="f32", seed=0))]
    fn new(
        text: String,
        name: String,
        dir: String,
        device: &str,
        dtype: &str,
        seed: u64,
    ) -> PyResult<Self> {
        let s = Session {
            text,
            name,
            dir: PathBuf::from(dir),
            device: parse_device(device)?,
            dtype: parse_dtype(dtype)?,
            seed,
            inputs: Inputs::default(),
            learned: Vec::new(),
            report: std::sync::Mutex::new(None),
            backend: std::sync::Mutex::new(None),
        };
        let mut sources = SourceMap::new();
        let (_, diags) = s.parse(&Commands::Program, &mut sources);
        if diags
            .iter()
            .any(|d| d.severity == tl_syntax::Severity::Error)
        {
            return Err(raise(&diags, &sources));
        }
        Ok(s)
    }

    /// Parses and checks the program with its inputs (no evaluation).
    fn check(&self) -> PyResult<()> {
        let mut sources = SourceMap::new();
        let (program, diags) = self.parse(&Commands::Program, &mut sources);
        pipeline::compile_given(
            &program,
            diags,
            &sources,
            pipeline::GoalDirected::Auto,
            &self.inputs,
        )
        .map(|_| ())
        .map_err(|d| raise(&d, &sources))
    }

    /// Runs the program's commands; each answer as a JSON line. `on_step(step, total, loss,
    /// lr)` is called after every training step.
    #[pyo3(signature = (on_step=None))]
    fn run(&mut self, py: Python<'_>, on_step: Option<Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
        self.execute(py, Commands::Program, on_step.as_ref())
    }

    /// Runs `commands` (queries, `minimize`) over the program's definitions instead of its
    /// own commands; each answer as a JSON line.
    #[pyo3(signature = (commands, on_step=None))]
    fn run_instead(
        &mut self,
        py: Python<'_>,
        commands: String,
        on_step: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Vec<String>> {
        self.execute(py, Commands::Instead(&commands), on_step.as_ref())
    }

    /// Gives tensor `name` the values of a float32 or float64 NumPy array, in place of its
    /// data statement. A C-contiguous array is read where it lies (not copied), so changing it
    /// later changes the data of the next run.
    fn set_array(&mut self, name: &str, array: Bound<'_, PyAny>) -> PyResult<()> {
        self.inputs.set(name, Input::Tensor(host_of(&array)?));
        Ok(())
    }

    /// Gives relation `name` these tuples, column by column: each column either integers or
    /// symbols.
    fn set_rows(
        &mut self,
        name: &str,
        rows: usize,
        ints: Vec<Option<Vec<i64>>>,
        symbols: Vec<Option<Vec<String>>>,
    ) -> PyResult<()> {
        let mut columns = Vec::new();
        for (i, s) in ints.into_iter().zip(symbols) {
            columns.push(match (i, s) {
                (Some(v), _) => tl_io::CsvColumn::Ints(v),
                (None, Some(names)) => {
                    let mut distinct: Vec<String> = Vec::new();
                    let mut lookup = std::collections::HashMap::new();
                    let ids = names
                        .into_iter()
                        .map(|n| {
                            *lookup.entry(n.clone()).or_insert_with(|| {
                                distinct.push(n);
                                (distinct.len() - 1) as u32
                            })
                        })
                        .collect();
                    tl_io::CsvColumn::Symbols {
                        ids,
                        names: distinct,
                    }
                }
                (None, None) => tl_io::CsvColumn::Ints(Vec::new()),
            });
        }
        self.inputs
            .set(name, Input::Rows(tl_io::CsvColumns { rows, columns }));
        Ok(())
    }

    /// Evaluates the program with `given` data (name, array or DLPack capsule) added to the
    /// session's and `learned` values (name, array) for some parameters, and returns the
    /// values of `outputs`; with `seeds` (one array or capsule per output, its upstream
    /// gradient) also the gradient of Σ seed·output with respect to each tensor named in
    /// `wrt`. Without seeds the outputs are evaluated for a backward pass to come (dropout on)
    /// when `record`, else as a run evaluates them. With `device`, results in device memory
    /// come back as DLPack capsules, the rest as arrays. The session keeps none of it: what
    /// a differentiable function of other frameworks calls.
    #[pyo3(signature = (given, learned, outputs, seeds=None, wrt=Vec::new(), record=true, device=false))]
    #[allow(clippy::too_many_arguments)]
    fn vjp<'py>(
        &self,
        py: Python<'py>,
        given: Vec<(String, Bound<'py, PyAny>)>,
        learned: Vec<(String, Bound<'py, PyAny>)>,
        outputs: Vec<String>,
        seeds: Option<Vec<Bound<'py, PyAny>>>,
        wrt: Vec<String>,
        record: bool,
        device: bool,
    ) -> PyResult<(Arrays<'py>, Arrays<'py>)> {
        let mut inputs = self.inputs.clone();
        for (name, value) in &given {
            inputs.set(name, input_of(value)?);
        }
        let mut values = self.learned.clone();
        for (name, array) in &learned {
            let host = host_of(array)?;
            values.retain(|(n, _)| n != name);
            values.push((name.clone(), host));
        }
        let seeds = seeds
            .unwrap_or_default()
            .iter()
            .map(input_of)
            .collect::<PyResult<Vec<_>>>()?;
        let wrt = if seeds.is_empty() { Vec::new() } else { wrt };
        // Without a backward pass to come, the outputs are evaluated as a run evaluates them
        // (dropout off) unless `record` asks for a training-mode evaluation.
        let queries: String = if record || !seeds.is_empty() {
            String::new()
        } else {
            outputs.iter().map(|n| format!("{n}?\n")).collect()
        };
        self.with_engine(
            Commands::Instead(&queries),
            &inputs,
            &values,
            |engine, checked, sources| {
                let fail = |e| run_error(tl_run::RunError::backend(e, Default::default()), sources);
                let outs = ids(checked, &outputs)?;
                let ins = ids(checked, &wrt)?;
                let mut on_backend = Vec::with_capacity(seeds.len());
                for s in seeds {
                    on_backend.push(match s {
                        Input::Tensor(h) => engine.backend.upload(&h).map_err(fail)?,
                        Input::Device(t) => t,
                        Input::Rows(_) => return Err(PyTypeError::new_err("a gradient is dense")),
                    });
                }
                let result = if queries.is_empty() {
                    engine.vjp(&outs, &on_backend, &ins)
                } else {
                    engine.tensors(&outs).map(|values| tl_run::vjp::Vjp {
                        values,
                        grads: Vec::new(),
                    })
                }
                .map_err(|e| run_error(e, sources))?;
                let backend = engine.backend;
                if device {
                    // Another framework reads the results on its own stream: they must be done.
                    backend.synchronize().map_err(fail)?;
                }
                let give = |ts: Vec<tl_backend::Tensor>| -> PyResult<Arrays<'py>> {
                    ts.iter()
                        .map(|t| hand_out(py, backend, t, device).map_err(|e| e.into_py(fail)))
                        .collect()
                };
                Ok((give(result.values)?, give(result.grads)?))
            },
        )
    }

    /// The values of real-valued tensors `names` (evaluated as a run evaluates them), as
    /// NumPy arrays; `None` in place of a relation, a count or a tensor written at a virtual
    /// index, which a query answers instead.
    #[pyo3(signature = (names, device=false))]
    fn values<'py>(
        &self,
        py: Python<'py>,
        names: Vec<String>,
        device: bool,
    ) -> PyResult<Vec<Option<Bound<'py, PyAny>>>> {
        let queries: String = names.iter().map(|n| format!("{n}?\n")).collect();
        let found = self.with_engine(
            Commands::Instead(&queries),
            &self.inputs,
            &self.learned,
            |engine, checked, sources| {
                let looped = |t: tl_check::TensorId| {
                    checked
                        .loops
                        .iter()
                        .any(|l| l.tensors.iter().any(|lt| lt.tensor == t))
                };
                let ts = ids(checked, &names)?;
                let direct: Vec<_> = ts
                    .iter()
                    .copied()
                    .filter(|&t| {
                        checked.tensors[t].kind == tl_check::TensorKind::Real && !looped(t)
                    })
                    .collect();
                let got = engine.tensors(&direct).map_err(|e| run_error(e, sources))?;
                let fail = |e| run_error(tl_run::RunError::backend(e, Default::default()), sources);
                if device {
                    // Another framework reads the results on its own stream: they must be done.
                    engine.backend.synchronize().map_err(fail)?;
                }
                let mut out = Vec::with_capacity(ts.len());
                let mut got = got.into_iter();
                for t in &ts {
                    out.push(match direct.contains(t).then(|| got.next()).flatten() {
                        Some(v) => Some(
                            hand_out(py, engine.backend, &v, device)
                                .map_err(|e| e.into_py(fail))?,
                        ),
                        None => None,
                    });
                }
                Ok(out)
            },
        )?;
        Ok(found)
    }

    /// Gives tensor `name` the values of a CUDA array in a DLPack capsule
    /// (`tensor.__dlpack__()`), read where it lies on the device: it never visits the host.
    fn set_dlpack(&mut self, name: &str, capsule: Bound<'_, PyAny>) -> PyResult<()> {
        self.inputs
            .set(name, Input::Device(dlpack::consume(&capsule)?));
        Ok(())
    }

    /// The device's memory report (in use, peak, allocations, bytes copied to and from the
    /// host, counted since the session's first request); `None` on the CPU.
    fn memory_report(&self) -> Option<String> {
        self.report.lock().ok().and_then(|r| r.clone())
    }

    /// The parameters' values as training would start from them (their initialisers, or
    /// what the session learned), with `given` data (name, array) added to the session's:
    /// `(name, array)` each.
    #[pyo3(signature = (given=Vec::new()))]
    fn initial_parameters<'py>(
        &self,
        py: Python<'py>,
        given: Vec<(String, Bound<'py, PyAny>)>,
    ) -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
        let mut inputs = self.inputs.clone();
        for (name, array) in &given {
            inputs.set(name, Input::Tensor(host_of(array)?));
        }
        let values = self.with_engine(
            Commands::Instead(""),
            &inputs,
            &self.learned,
            |engine, _, sources| engine.learned_values().map_err(|e| run_error(e, sources)),
        )?;
        values
            .into_iter()
            .map(|(n, t)| Ok((n, array_of(py, t)?)))
            .collect()
    }

    /// Makes `array` the learned value of parameter `name` (as training would leave it).
    fn set_parameter(&mut self, name: String, array: Bound<'_, PyAny>) -> PyResult<()> {
        let host = host_of(&array)?;
        self.learned.retain(|(n, _)| *n != name);
        self.learned.push((name, host));
        Ok(())
    }

    /// The learned values so far: `(name, shape, row-major values)` each.
    fn parameters(&self) -> Vec<(String, Vec<usize>, Vec<f64>)> {
        self.learned
            .iter()
            .map(|(n, t)| (n.clone(), t.shape.clone(), t.data.to_f64()))
            .collect()
    }
}

/// The module `tensorlogic._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Session>()?;
    m.add("RawError", m.py().get_type::<RawError>())?;
    Ok(())
}
