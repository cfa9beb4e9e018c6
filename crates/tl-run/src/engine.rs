//! The engine's state: the current value of every tensor (dense on the backend, or sparse
//! tuples for large relations), and how values are made from data, facts and initialisers.

use crate::error::RunError;
use crate::eval_replay::EvalReplay;
use crate::host_memory::budget_now;
use crate::loop_tape::Tape;
use crate::masks::Masks;
use crate::rng::Rng;
use crate::sparse_cache::{SparseCountCache, SparseIndexCache};
pub use crate::value::Value;
use std::collections::HashMap;
use std::sync::Arc;
use tl_backend::Calls;
use tl_backend::{Backend, DType, HostData, HostTensor, Tensor};
use tl_check::{CheckedProgram, Definition, Init, TensorId, TensorKind};
use tl_plan::{Precision, ProgramPlan, Storage, TensorRef};
use tl_relation::Relation;
use tl_syntax::{Diagnostic, Span};

/// Options of one run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The real element type.
    pub dtype: DType,
    /// Seed of the one random generator.
    pub seed: u64,
    /// Bound on real-valued fixpoint iterations.
    pub max_iters: usize,
    /// A real-valued fixpoint has converged when no element moves by more than this.
    pub tolerance: f64,
    /// Write parameters and optimiser state to this folder every `checkpoint_every` steps.
    pub checkpoint: Option<std::path::PathBuf>,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
    /// Continue the first `minimize` from the checkpoint in this folder.
    pub resume: Option<std::path::PathBuf>,
    /// Record a full-batch training step once and replay it (on backends that record, such
    /// as CUDA), instead of queueing every operation of every step.
    pub replay: bool,
    /// Bytes the tuple engine may use for one stratum (`None`: most of the free memory).
    pub max_memory: Option<u64>,
    /// Where an interrupted `minimize` saves its checkpoint when `checkpoint` names no folder
    /// (`None`: an interrupt then stops training without a checkpoint).
    pub stop_checkpoint: Option<std::path::PathBuf>,
    /// The values of tensors given in device memory (`Definition::External`), by name.
    pub external: Vec<(String, Tensor)>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            dtype: DType::F32,
            seed: 0,
            max_iters: 1000,
            tolerance: 1e-6,
            checkpoint: None,
            checkpoint_every: 100,
            resume: None,
            replay: true,
            max_memory: None,
            stop_checkpoint: None,
            external: Vec::new(),
        }
    }
}

/// Dense relations may be made from sparse ones up to this many cells.
pub const DENSIFY_CELLS: u128 = 1 << 28;

/// Index vectors of gathers and scatters by (plan number and graph, node): they depend on the
/// plan alone, so they are built once and kept as long as the plan is.
pub type IndexCache = HashMap<(usize, usize), Arc<Vec<i64>>>;

/// A program being run: its plan, backend and current values.
pub struct Engine<'a> {
    /// The checked program.
    pub program: &'a CheckedProgram,
    /// Its plan.
    pub plan: &'a ProgramPlan,
    /// Where tensors live and ops run.
    pub backend: &'a dyn Backend,
    /// Options.
    pub options: RunOptions,
    /// Values by tensor id; ids past the tensor count hold semi-naive deltas, and ids past
    /// twice the count the rows that layered recursion hands its row plans.
    pub values: Vec<Option<Value>>,
    /// Warnings raised while running (e.g. a fixpoint that did not converge).
    pub warnings: Vec<Diagnostic>,
    /// Gather and scatter index vectors, by (plan address, node), computed once.
    pub index_cache: IndexCache,
    /// Scalar constants on the backend, by (value bits, element type), made once: a plan's
    /// constants are then no allocation or launch of their own on later evaluations.
    pub constants: HashMap<(u64, DType), Tensor>,
    /// The values `0, 1, …, n-1` of an index used as a number, by (extent, element type),
    /// uploaded once.
    pub index_values: HashMap<(usize, DType), Tensor>,
    /// The random generator (initialisers, shuffles).
    pub rng: Rng,
    /// Dropout's mask counter and stream ([`crate::masks`]).
    pub masks: Masks,
    /// Whether `evaluate` keeps node values for a backward pass.
    pub record: bool,
    /// Node values by plan address, kept while `record` is on.
    pub traces: HashMap<usize, Vec<Tensor>>,
    /// How many equation and rule plans have been evaluated (for tests and statistics).
    pub evaluations: usize,
    /// How many training steps ran as a replay of a recorded step (for tests and statistics).
    pub replayed_steps: u64,
    /// Evaluations replayed from a recording ([`Engine::evaluate_again`]).
    pub replayed_evaluations: u64,
    /// Where repeated evaluations stand with replaying ([`Engine::evaluate_again`]).
    pub eval_replay: EvalReplay,
    /// Index vectors of joins with sparse relations, computed once per relation value.
    pub sparse_cache: SparseIndexCache,
    /// Sums and maxima of sparse relations, computed once per relation value.
    pub sparse_counts: SparseCountCache,
    /// When set, every plan evaluation is timed (the device synchronised around it) and its
    /// time added to its statement's entry (`tl bench --profile`).
    pub profile: Option<HashMap<Span, (std::time::Duration, usize)>>,
    /// When set, every stratum the tuple engine evaluates adds its statistics here
    /// (`tl run --profile`).
    pub relation_profile: Option<Vec<StratumProfile>>,
    /// How many `minimize` commands have started (a checkpoint records which one it is of).
    pub(crate) minimizes_started: u64,
    /// Bytes one host tensor may take (`--max-memory`, else nine tenths of the memory free
    /// when the run started).
    pub host_limit: usize,
    /// The steps of each loop over a virtual index, by loop, kept while a backward pass is
    /// recorded (`loops.rs`).
    pub loop_tapes: HashMap<usize, Tape>,
    /// The rows of each layer recursion, by stratum, kept while a backward pass is recorded
    /// (`layers.rs`).
    pub layer_tapes: HashMap<usize, Tape>,
}

/// What the tuple engine did for one stratum: per head, how it was held and how many tuples
/// it ended with; per rule, its statistics; the rounds, the time and where it ran.
#[derive(Clone, Debug)]
pub struct StratumProfile {
    /// Each head relation, how it was held while derived, and its final tuple count.
    pub heads: Vec<(String, String, usize)>,
    /// Each rule (its statement) and what it did.
    pub rules: Vec<(Span, tl_relation::RuleStats)>,
    /// Rounds of the fixpoint loop.
    pub rounds: usize,
    /// Wall time of the whole stratum.
    pub time: std::time::Duration,
    /// Where it ran.
    pub device: String,
}

impl<'a> Engine<'a> {
    /// An engine with every data tensor, relation and parameter given its initial value.
    pub fn new(
        program: &'a CheckedProgram,
        plan: &'a ProgramPlan,
        backend: &'a dyn Backend,
        options: RunOptions,
    ) -> Result<Self, RunError> {
        let n = program.tensors.len();
        let mut engine = Engine::bare(program, plan, backend, options);
        for t in 0..n {
            engine.values[t] = engine.initial(t)?;
        }
        Ok(engine)
    }

    /// An engine with no values yet (the caller supplies them, e.g. for a mini-batch).
    pub fn bare(
        program: &'a CheckedProgram,
        plan: &'a ProgramPlan,
        backend: &'a dyn Backend,
        options: RunOptions,
    ) -> Self {
        let n = program.tensors.len();
        let slots = plan.layers.slot_shapes.len();
        let rng = Rng::new(options.seed);
        let host_limit = budget_now(options.max_memory);
        Engine {
            program,
            plan,
            backend,
            options,
            values: vec![None; 2 * n + slots],
            evaluations: 0,
            replayed_steps: 0,
            replayed_evaluations: 0,
            eval_replay: EvalReplay::Cold,
            warnings: Vec::new(),
            index_cache: HashMap::new(),
            constants: HashMap::new(),
            index_values: HashMap::new(),
            rng,
            masks: Masks::default(),
            record: false,
            traces: HashMap::new(),
            profile: None,
            relation_profile: None,
            minimizes_started: 0,
            host_limit,
            sparse_cache: HashMap::new(),
            sparse_counts: HashMap::new(),
            loop_tapes: HashMap::new(),
            layer_tapes: HashMap::new(),
        }
    }

    /// The element type real tensors are stored in.
    pub fn dtype(&self) -> DType {
        self.options.dtype
    }

    /// The element type of a plan node's values ([`Precision`]).
    pub fn dtype_in(&self, precision: Precision) -> DType {
        match precision {
            Precision::Exact => DType::F64,
            Precision::Real => self.dtype(),
        }
    }

    /// The element type a tensor is stored in: integer tensors (counts, [`TensorKind::Integer`])
    /// are 64-bit floating point, exact up to 2^53, whatever the real type is.
    pub fn dtype_of(&self, t: TensorId) -> DType {
        match self.kind_of(t) {
            TensorKind::Integer => DType::F64,
            _ => self.dtype(),
        }
    }

    /// The program tensor whose values `t` holds: itself, the tensor of a delta, or the
    /// source of a slot (`None` for a loop's step number).
    pub fn holder(&self, t: TensorId) -> Option<TensorId> {
        match TensorRef::of(t, self.program.tensors.len()) {
            TensorRef::Tensor(x) | TensorRef::Delta(x) => Some(x),
            TensorRef::Slot(_) => self.plan.slot_source(t),
        }
    }

    /// What `t` holds, as its holder is declared ([`Engine::holder`]; real for a step number).
    pub fn kind_of(&self, t: TensorId) -> TensorKind {
        self.holder(t)
            .and_then(|x| self.program.tensors.get(x))
            .map_or(TensorKind::Real, |d| d.kind)
    }

    /// The name messages give `t`: its holder's.
    pub fn name_of(&self, t: TensorId) -> String {
        self.holder(t)
            .and_then(|x| self.program.tensors.get(x))
            .map_or_else(|| "the step number".to_string(), |d| d.name.clone())
    }

    /// The value of `t` as an operand of a plan computing in `dtype`: in an exact plan
    /// (`f64`, computing an integer tensor) relations are widened so sums of them count
    /// exactly; in a real plan integer tensors are read in the real type.
    pub fn operand(&self, t: TensorId, dtype: DType, span: Span) -> Result<Tensor, RunError> {
        let v = self.dense(t, span)?;
        let kind = self.kind_of(t);
        let widen = dtype == DType::F64 && kind != TensorKind::Real;
        let narrow = dtype != DType::F64 && kind == TensorKind::Integer;
        if (widen || narrow) && v.dtype != dtype {
            return self
                .backend
                .cast(&v, dtype)
                .map_err(|e| RunError::backend(e, span));
        }
        Ok(v)
    }

    /// The shape of a tensor id (a delta has its tensor's shape; slots have their own).
    pub fn shape(&self, t: TensorId) -> Vec<usize> {
        match TensorRef::of(t, self.program.tensors.len()) {
            TensorRef::Slot(k) => self
                .plan
                .layers
                .slot_shapes
                .get(k)
                .cloned()
                .unwrap_or_default(),
            TensorRef::Tensor(t) | TensorRef::Delta(t) => self.program.shape(t),
        }
    }

    fn upload(&self, host: &HostTensor, span: Span) -> Result<Tensor, RunError> {
        let host = HostTensor {
            shape: host.shape.clone(),
            data: host.data.convert(self.dtype()),
        };
        self.backend
            .upload(&host)
            .map_err(|e| RunError::backend(e, span))
    }

    /// The value a tensor starts with (data, facts, initialised parameters; none if derived).
    pub fn initial(&mut self, t: TensorId) -> Result<Option<Value>, RunError> {
        let decl = &self.program.tensors[t];
        let span = decl.span;
        Ok(match &decl.def {
            Definition::Data(host) => Some(Value::Dense(self.upload(host, span)?)),
            Definition::Tuples(tuples) => Some(self.relation_value(t, tuples, span)?),
            Definition::Param(init) => Some(Value::Dense(self.init_param(t, init, span)?)),
            Definition::ImplicitParam => {
                Some(Value::Dense(self.init_param(t, &Init::Xavier, span)?))
            }
            Definition::External => Some(Value::Dense(self.external(t, span)?)),
            Definition::Derived => None,
        })
    }

    /// The value given in device memory for `t`, in the engine's element type (converted on
    /// the device when it has another).
    fn external(&self, t: TensorId, span: Span) -> Result<Tensor, RunError> {
        let name = &self.program.tensors[t].name;
        let Some((_, value)) = self.options.external.iter().find(|(n, _)| n == name) else {
            return Err(RunError::Unsupported {
                what: format!("`{name}` was given in device memory, but its value is missing"),
                hint: Some("give the tensor again".into()),
                span,
            });
        };
        if value.dtype == self.dtype_of(t) {
            return Ok(value.clone());
        }
        self.backend
            .cast(value, self.dtype_of(t))
            .map_err(|e| RunError::backend(e, span))
    }

    /// A relation's value from tuples, in the storage the plan chose.
    pub fn relation_value(
        &self,
        t: TensorId,
        tuples: &[Vec<u32>],
        span: Span,
    ) -> Result<Value, RunError> {
        let shape = self.shape(t);
        let sparse = self.holder(t).and_then(|x| self.plan.storage.get(x));
        if sparse == Some(&Storage::Sparse) {
            let flat: Vec<u32> = tuples.iter().flatten().copied().collect();
            return Ok(Value::Sparse(relation_of(
                shape.len(),
                flat,
                !tuples.is_empty(),
            )));
        }
        self.fits_dense_relation(t, &shape, span)?;
        let host = tuples_to_dense(&shape, tuples.iter().map(Vec::as_slice));
        Ok(Value::Dense(self.upload(&host, span)?))
    }

    fn init_param(&mut self, t: TensorId, init: &Init, span: Span) -> Result<Tensor, RunError> {
        let shape = &self.program.shape(t);
        // Drawn in f64 on the host, then stored in the real type.
        let per = 8 + self.dtype().size();
        let name = &self.program.tensors[t].name;
        let n = self.fits(shape, per, || format!("parameter `{name}` {shape:?}"), span)?;
        let data: Vec<f64> = match *init {
            Init::Constant(c) => vec![c; n],
            Init::Normal(mean, std) => (0..n).map(|_| mean + std * self.rng.normal()).collect(),
            Init::Uniform(lo, hi) => (0..n)
                .map(|_| lo + (hi - lo) * self.rng.uniform())
                .collect(),
            Init::Xavier => {
                let (fan_in, fan_out) = fans(shape);
                let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
                (0..n)
                    .map(|_| a * (2.0 * self.rng.uniform() - 1.0))
                    .collect()
            }
        };
        self.upload(
            &HostTensor::from_f64(shape.to_vec(), data, DType::F64),
            span,
        )
    }

    /// The names of a stratum's tensors as a message shows them: `` A`, `B `` (inside the
    /// message's own backquotes).
    pub(crate) fn stratum_names(&self, s: &tl_check::Stratum) -> String {
        let names: Vec<&str> = s
            .tensors
            .iter()
            .map(|&t| self.program.tensors[t].name.as_str())
            .collect();
        names.join("`, `")
    }

    /// Adds a warning, once per code and place: a recursion evaluated at every training step
    /// warns once, not once a step.
    pub fn warn(&mut self, d: Diagnostic) {
        if !self
            .warnings
            .iter()
            .any(|w| w.code == d.code && w.span == d.span)
        {
            self.warnings.push(d);
        }
    }

    /// The dense value of a tensor: sparse relations are expanded, and tensors not yet
    /// computed read as 0.
    pub fn dense(&self, t: TensorId, span: Span) -> Result<Tensor, RunError> {
        match self.values.get(t).and_then(Option::as_ref) {
            Some(Value::Dense(x)) => Ok(x.clone()),
            Some(Value::Sparse(rel)) => self.densify(t, rel, span),
            Some(Value::Device(d)) => {
                let rel = d
                    .relation(self.backend)
                    .map_err(|e| RunError::backend(e, span))?;
                self.densify(t, &rel, span)
            }
            Some(Value::Layers { axis, rows }) => self.stack_rows(t, *axis, rows, span),
            None => self
                .backend
                .full(&self.shape(t), 0.0, self.dtype_of(t))
                .map_err(|e| RunError::backend(e, span)),
        }
    }

    /// A relation's tuples as a dense 0/1 tensor of `t`'s shape, if it has few enough cells.
    fn densify(&self, t: TensorId, rel: &Relation, span: Span) -> Result<Tensor, RunError> {
        let shape = self.shape(t);
        let cells: u128 = shape.iter().map(|&e| e as u128).product();
        if cells > DENSIFY_CELLS {
            let name = self.name_of(t);
            return Err(RunError::TooDense {
                tensor: name,
                cells,
                span,
            });
        }
        self.fits_dense_relation(t, &shape, span)?;
        self.upload(&tuples_to_dense(&shape, rel.iter()), span)
    }

    /// Checks that relation `t` fits in memory as 0/1 cells of `shape` (4 bytes each).
    fn fits_dense_relation(
        &self,
        t: TensorId,
        shape: &[usize],
        span: Span,
    ) -> Result<(), RunError> {
        let name = self.name_of(t);
        self.fits(
            shape,
            4,
            || format!("relation `{name}` {shape:?} as 0/1 cells"),
            span,
        )
        .map(|_| ())
    }

    /// The tuples of a relation's value (dense values: the cells > 0).
    pub fn tuples(&self, t: TensorId, span: Span) -> Result<Relation, RunError> {
        let arity = self.shape(t).len();
        match self.values.get(t).and_then(Option::as_ref) {
            Some(Value::Sparse(rel)) => Ok(rel.clone()),
            Some(Value::Device(d)) => d
                .relation(self.backend)
                .map_err(|e| RunError::backend(e, span)),
            Some(Value::Dense(_) | Value::Layers { .. }) => {
                let x = self.dense(t, span)?;
                let host = self
                    .backend
                    .download(&x)
                    .map_err(|e| RunError::backend(e, span))?;
                let any = host.data.to_f64().iter().any(|&x| x > 0.0);
                Ok(relation_of(arity, dense_to_tuples(&host), any))
            }
            None => Ok(Relation::empty(arity)),
        }
    }

    /// Whether a tensor holds truth values.
    pub fn is_relation(&self, t: TensorId) -> bool {
        self.kind_of(t) == TensorKind::Relation
    }
}

/// Glorot fans of a shape, as PyTorch computes them for 2-D and higher; vectors and scalars
/// use their length for both.
fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [out, inp, rest @ ..] => {
            let field: usize = rest.iter().product();
            (inp * field, out * field)
        }
    }
}

/// A dense 0/1 host tensor with ones at the given tuples (tuples outside the shape are skipped).
pub fn tuples_to_dense<'t>(shape: &[usize], tuples: impl Iterator<Item = &'t [u32]>) -> HostTensor {
    let n: usize = shape.iter().product();
    let mut data = vec![0f32; n];
    for tuple in tuples {
        let mut flat = 0usize;
        let mut inside = true;
        for (&v, &e) in tuple.iter().zip(shape) {
            inside &= (v as usize) < e;
            flat = flat * e + v as usize;
        }
        if inside {
            if let Some(cell) = data.get_mut(flat) {
                *cell = 1.0;
            }
        }
    }
    HostTensor {
        shape: shape.to_vec(),
        data: HostData::F32(data.into()),
    }
}

/// A relation from flat row-major tuples; `any` says whether there is at least one tuple,
/// which for a nullary relation (no values at all) is the difference between true and false.
pub fn relation_of(arity: usize, flat: Vec<u32>, any: bool) -> Relation {
    match (arity, any) {
        (0, true) => Relation::unit(),
        _ => Relation::from_flat(arity, flat),
    }
}

/// The coordinates of the cells > 0 of a dense host tensor, flattened.
pub fn dense_to_tuples(host: &HostTensor) -> Vec<u32> {
    let values = host.data.to_f64();
    let mut out = Vec::new();
    for (flat, &x) in values.iter().enumerate() {
        if x > 0.0 {
            let mut rest = flat;
            let start = out.len();
            for &e in host.shape.iter().rev() {
                out.push((rest % e.max(1)) as u32);
                rest /= e.max(1);
            }
            out[start..].reverse();
        }
    }
    out
}
