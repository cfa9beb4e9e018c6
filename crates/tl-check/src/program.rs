//! The checked program: every name resolved, every axis sized, every tensor typed, and the
//! definitions ordered into strata. Later phases consume only this, never the raw syntax tree.

use std::collections::HashMap;
use std::path::PathBuf;
use tl_core::{HostTensor, NormFn, UnaryFn};
use tl_syntax::ast::{BinOp, Compare, Projection};
use tl_syntax::Span;

/// Index of a tensor in [`CheckedProgram::tensors`].
pub type TensorId = usize;
/// Index of a domain in [`CheckedProgram::domains`].
pub type DomainId = usize;
/// Index of an index variable in its equation's or rule's `vars`.
pub type VarId = usize;

/// Whether a tensor holds truth values or numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// A Boolean relation (facts, rules, CSV): always 0 or 1.
    Relation,
    /// A real-valued tensor.
    Real,
    /// A count or sum over relations (see [`crate::integer`]): integers, kept exact.
    Integer,
}

/// The set of values an axis ranges over.
#[derive(Clone, Debug, PartialEq)]
pub struct Domain {
    /// The declared name, or a name made from the first axis it was inferred for (`Parent.0`).
    pub name: String,
    /// Number of elements.
    pub extent: usize,
    /// For a symbolic domain, the symbol of each element in order; empty for integer domains.
    pub symbols: Vec<String>,
    /// For an integer domain, the value of element 0: 0, or the smallest (negative) number
    /// a relation holds (`Temp(Oslo, -5)`), so that element `k` is the number `origin + k`.
    pub origin: i64,
    lookup: HashMap<String, usize>,
}

impl Domain {
    /// A domain with these members (symbols empty for an integer domain).
    pub fn new(name: String, extent: usize, symbols: Vec<String>) -> Self {
        let lookup = symbols
            .iter()
            .enumerate()
            .map(|(k, s)| (s.clone(), k))
            .collect();
        Domain {
            name,
            extent,
            symbols,
            origin: 0,
            lookup,
        }
    }

    /// The domain with its element 0 standing for the number `origin`.
    pub fn with_origin(mut self, origin: i64) -> Self {
        self.origin = origin;
        self
    }

    /// The element standing for an integer, if the domain has it.
    pub fn element_of_int(&self, value: i64) -> Option<usize> {
        if self.is_symbolic() {
            return self.index_of(&value.to_string());
        }
        let k = usize::try_from(value.checked_sub(self.origin)?).ok()?;
        (k < self.extent).then_some(k)
    }

    /// The number an element of an integer domain stands for.
    pub fn int_of(&self, element: u32) -> i64 {
        self.origin.saturating_add(i64::from(element))
    }

    /// An element as it prints: its symbol, or its number.
    pub fn label(&self, element: u32) -> String {
        match self.symbols.get(element as usize) {
            Some(s) => s.clone(),
            None => self.int_of(element).to_string(),
        }
    }

    /// Whether elements are named symbols rather than integers.
    pub fn is_symbolic(&self) -> bool {
        !self.symbols.is_empty()
    }

    /// The element index of a symbol, if it belongs to this domain.
    pub fn index_of(&self, symbol: &str) -> Option<usize> {
        self.lookup.get(symbol).copied()
    }
}

/// How a tensor gets its value.
#[derive(Clone, Debug)]
pub enum Definition {
    /// Data known before evaluation: literals, constants and files, loaded at check time.
    Data(HostTensor),
    /// Dense data given in device memory from outside (its shape is the tensor's): the
    /// engine is handed the tensor itself ([`crate::inputs::Input::Device`]).
    External,
    /// Tuples of a relation read from facts or a CSV file (element indices per axis).
    Tuples(Vec<Vec<u32>>),
    /// A declared parameter with its initialiser.
    Param(Init),
    /// A tensor that appears only on right-hand sides, with no data: learned, `xavier`-initialised.
    ImplicitParam,
    /// Defined by equations and/or rules (and possibly facts), evaluated by the runtime.
    Derived,
}

/// How a parameter's initial values are drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// Every element the same value.
    Constant(f64),
    /// Normal(mean, std).
    Normal(f64, f64),
    /// Uniform on [low, high).
    Uniform(f64, f64),
    /// Glorot/Xavier uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)).
    Xavier,
}

/// One tensor of the program.
#[derive(Clone, Debug)]
pub struct TensorDecl {
    /// Its name.
    pub name: String,
    /// Where it is first defined or used.
    pub span: Span,
    /// Boolean or real.
    pub kind: TensorKind,
    /// The domain of each axis.
    pub axes: Vec<DomainId>,
    /// Where its values come from.
    pub def: Definition,
    /// Facts stated for a derived relation (element indices per axis).
    pub facts: Vec<Vec<u32>>,
    /// Equations whose left-hand side is this tensor.
    pub equations: Vec<usize>,
    /// Rules whose head is this tensor.
    pub rules: Vec<usize>,
}

/// An index variable of one equation or rule.
#[derive(Clone, Debug, PartialEq)]
pub struct VarInfo {
    /// Its name as written (`_0`, `_1`… for the unnamed axes of bare tensors and slices).
    pub name: String,
    /// Its domain (which gives its extent).
    pub domain: DomainId,
    /// Its extent.
    pub extent: usize,
}

/// Integer arithmetic on index variables, resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexExpr {
    /// A variable.
    Var(VarId),
    /// A constant.
    Const(i64),
    /// `a op b`.
    Binary(tl_syntax::ast::IndexOp, Box<IndexExpr>, Box<IndexExpr>),
}

impl IndexExpr {
    /// Evaluates at an assignment of the variables; `None` on division by zero.
    pub fn eval(&self, vars: &[i64]) -> Option<i64> {
        use tl_syntax::ast::IndexOp;
        Some(match self {
            IndexExpr::Var(v) => *vars.get(*v)?,
            IndexExpr::Const(c) => *c,
            IndexExpr::Binary(op, a, b) => {
                let (a, b) = (a.eval(vars)?, b.eval(vars)?);
                match op {
                    IndexOp::Add => a.checked_add(b)?,
                    IndexOp::Sub => a.checked_sub(b)?,
                    IndexOp::Mul => a.checked_mul(b)?,
                    IndexOp::Div => a.checked_div_euclid(b)?,
                    IndexOp::Rem => a.checked_rem_euclid(b)?,
                }
            }
        })
    }

    /// Whether it divides by a constant zero somewhere (reported where it is written).
    pub fn divides_by_zero(&self) -> bool {
        use tl_syntax::ast::IndexOp;
        match self {
            IndexExpr::Binary(op, a, b) => {
                (matches!(op, IndexOp::Div | IndexOp::Rem) && b.eval(&[]) == Some(0))
                    || a.divides_by_zero()
                    || b.divides_by_zero()
            }
            _ => false,
        }
    }

    /// Adds every variable used to `out`.
    pub fn vars(&self, out: &mut Vec<VarId>) {
        match self {
            IndexExpr::Var(v) => {
                if !out.contains(v) {
                    out.push(*v)
                }
            }
            IndexExpr::Const(_) => {}
            IndexExpr::Binary(_, a, b) => {
                a.vars(out);
                b.vars(out);
            }
        }
    }
}

/// One position of a resolved tensor access.
#[derive(Clone, Debug, PartialEq)]
pub enum Index {
    /// A plain variable: the axis is indexed directly.
    Var(VarId),
    /// A fixed element (an integer or a symbol's element index).
    Const(i64),
    /// Arithmetic on variables; reads outside the axis are 0.
    Expr(IndexExpr),
    /// `start..end` of the axis, re-based at 0, as an unnamed variable.
    Slice {
        /// The variable that runs over the slice.
        var: VarId,
        /// First element taken.
        start: i64,
    },
    /// A symbol not yet turned into an element index; the checker replaces every one with
    /// `Const` before the program leaves it.
    Symbol(String, usize),
}

/// A resolved tensor read.
#[derive(Clone, Debug, PartialEq)]
pub struct Access {
    /// The tensor.
    pub tensor: TensorId,
    /// One index per axis.
    pub indices: Vec<Index>,
    /// Where it is written.
    pub span: Span,
}

/// A function applied in an expression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Func {
    /// An elementwise function of one argument.
    Unary(UnaryFn),
    /// `sig(x, T)`.
    SigmoidT,
    /// `softmax` / `lnorm`, along the left-hand side's dotted axis.
    Norm(NormFn),
    /// `dropout(x, p)`: `x` times a fresh Bernoulli(1 - p) mask over 1 - p in a training step,
    /// `x` everywhere else.
    Dropout(f64),
}

/// A resolved right-hand-side expression. `Sum` nodes mark where the projection rule applies.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A number.
    Number(f64),
    /// The value of an index variable at each point (`i` used as a number).
    IndexValue(VarId),
    /// A tensor read.
    Access(Access),
    /// A function of argument sums.
    Call(Func, Vec<Expr>, Span),
    /// `-x`
    Neg(Box<Expr>),
    /// A binary operation (juxtaposition is `Mul`).
    Binary(BinOp, Box<Expr>, Box<Expr>),
}

impl Expr {
    /// Whether it draws random numbers (`dropout`), so that a training step must evaluate it
    /// afresh even when it depends on no parameter.
    pub fn draws(&self) -> bool {
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            match e {
                Expr::Call(Func::Dropout(_), ..) => return true,
                Expr::Call(_, args, _) => stack.extend(args),
                Expr::Neg(x) => stack.push(x),
                Expr::Binary(_, a, b) => {
                    stack.push(a);
                    stack.push(b);
                }
                _ => {}
            }
        }
        false
    }
}

/// A checked tensor equation.
#[derive(Clone, Debug)]
pub struct Equation {
    /// The tensor defined.
    pub lhs: TensorId,
    /// One index per left-hand-side axis.
    pub lhs_indices: Vec<Index>,
    /// The dotted (normalisation) variable, if any.
    pub norm_var: Option<VarId>,
    /// How dropped indices are projected.
    pub projection: Projection,
    /// The right-hand side.
    pub rhs: Expr,
    /// The equation's index variables.
    pub vars: Vec<VarInfo>,
    /// The whole statement.
    pub span: Span,
}

/// A term in a rule: a variable or a constant element index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Term {
    /// A variable.
    Var(VarId),
    /// An element index.
    Const(u32),
    /// A symbol, replaced by `Const` before the program leaves the checker.
    Symbol(u32),
}

/// One atom of a rule body.
#[derive(Clone, Debug, PartialEq)]
pub struct BodyAtom {
    /// The relation (or real tensor, read as `value > 0`).
    pub tensor: TensorId,
    /// Its arguments.
    pub args: Vec<Term>,
    /// `not`
    pub negated: bool,
}

/// A comparison in a rule body.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The operator.
    pub op: Compare,
    /// Left side.
    pub lhs: Term,
    /// Right side.
    pub rhs: Term,
}

/// A checked Datalog rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The head relation.
    pub head: TensorId,
    /// The head's arguments.
    pub head_args: Vec<Term>,
    /// Body atoms.
    pub body: Vec<BodyAtom>,
    /// Body comparisons.
    pub comparisons: Vec<Comparison>,
    /// The rule's variables.
    pub vars: Vec<VarInfo>,
    /// The whole statement.
    pub span: Span,
}

/// A group of derived tensors evaluated together: one strongly connected component of the
/// dependency graph, in an order where every input of a stratum is computed before it.
#[derive(Clone, Debug)]
pub struct Stratum {
    /// The tensors defined in this stratum.
    pub tensors: Vec<TensorId>,
    /// Whether the group depends on itself (needs a fixpoint).
    pub recursive: bool,
}

/// One argument of a query.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryArg {
    /// A variable to report (its name).
    Var(String),
    /// A fixed element; `None` when the symbol is not in the axis's domain (no rows match).
    Const(Option<i64>),
    /// A slice `start..end` of the axis.
    Slice(i64, i64),
}

/// A command, run in program order after definitions are evaluated.
#[derive(Clone, Debug)]
pub enum Command {
    /// Print the value of a tensor read.
    Query {
        /// The tensor.
        tensor: TensorId,
        /// One argument per axis; empty for a bare name (the whole tensor).
        args: Vec<QueryArg>,
        /// The query text, without `?`.
        text: String,
        /// Where it is.
        span: Span,
    },
    /// Write tensors to a file.
    Write {
        /// The destination, resolved against the program's folder.
        path: PathBuf,
        /// The tensors, in order.
        tensors: Vec<TensorId>,
        /// `Some(c)`: one relation as plain text, fields split by `c` (Soufflé's `.output`).
        delimiter: Option<char>,
        /// Where it is.
        span: Span,
    },
    /// Train.
    Minimize(crate::learn::MinimizeSpec),
}

/// A program ready to run.
#[derive(Clone, Debug)]
pub struct CheckedProgram {
    /// Every tensor.
    pub tensors: Vec<TensorDecl>,
    /// Every domain.
    pub domains: Vec<Domain>,
    /// Every equation.
    pub equations: Vec<Equation>,
    /// Every rule.
    pub rules: Vec<Rule>,
    /// Derived tensors grouped and ordered for evaluation.
    pub strata: Vec<Stratum>,
    /// Commands in program order.
    pub commands: Vec<Command>,
    /// The loops that compute the tensors written at a virtual index (`S[i, *t+1] = …`).
    pub loops: Vec<crate::loops::Loop>,
}

impl CheckedProgram {
    /// The extent of each axis of a tensor.
    pub fn shape(&self, tensor: TensorId) -> Vec<usize> {
        self.tensors[tensor]
            .axes
            .iter()
            .map(|&d| self.domains[d].extent)
            .collect()
    }

    /// The tensor with this name.
    pub fn tensor_named(&self, name: &str) -> Option<TensorId> {
        self.tensors.iter().position(|t| t.name == name)
    }
}
