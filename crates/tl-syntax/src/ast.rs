//! The syntax tree of a Tensor Logic program, exactly as written (nothing resolved yet).
//!
//! Names are plain strings with spans; the checker (`tl-check`) resolves them. Every node
//! carries the span of the text it came from.

use crate::span::Span;

/// A parsed source file: its statements in text order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Program {
    /// Statements in the order they appear.
    pub stmts: Vec<Stmt>,
}

/// A name as written, with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    /// The name (primes included, e.g. `p'`).
    pub name: String,
    /// Where the name is.
    pub span: Span,
}

/// One statement (one logical line).
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    /// What kind of statement.
    pub kind: StmtKind,
    /// The whole statement's text.
    pub span: Span,
}

/// The statement forms of docs/language.md §2.
#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `Parent(Alice, Bob)`: one true element of a Boolean tensor.
    Fact(Atom),
    /// `Head(x, z) <- A(x, y), B(y, z)`.
    Rule(Rule),
    /// `Y[i] = f(W[i, j] X[j])`, also with `+= max= min= avg=`.
    Equation(Equation),
    /// `W = [0.2, 1.9]`, `X = "train.npy"`, `Wq[l, i, j] = "m.safetensors#enc.{l}.q"`.
    Data(DataDef),
    /// `"out.safetensors" = W1, B1`.
    Write(WriteCmd),
    /// `param W[8, 2] ~ normal(0, 0.5)`.
    Param(ParamDecl),
    /// `const Lr = 0.01`.
    Const(ConstDecl),
    /// `domain Person = {Alice, Bob}` or `domain N = 10`.
    Domain(DomainDecl),
    /// `minimize Loss with adam(lr=0.05) for 500 steps`.
    Minimize(Minimize),
    /// `Ancestor(Alice, x)?`, `Y?`, `Y[2]?`.
    Query(Query),
    /// `import "lib.tl"`.
    Import(StrLit),
}

/// A string literal with its span (escapes already resolved).
#[derive(Clone, Debug, PartialEq)]
pub struct StrLit {
    /// The string's value.
    pub value: String,
    /// Where the literal (with its quotes) is.
    pub span: Span,
}

/// A relation applied to arguments, as in facts, rule heads and rule bodies: `Parent(x, Bob)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Atom {
    /// The relation's name.
    pub name: Ident,
    /// The arguments.
    pub args: Vec<IndexArg>,
    /// The whole atom.
    pub span: Span,
}

/// A Datalog rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The head relation and its arguments.
    pub head: Atom,
    /// The conjunction after `<-`.
    pub body: Vec<BodyItem>,
}

/// One conjunct of a rule body.
#[derive(Clone, Debug, PartialEq)]
pub enum BodyItem {
    /// `A(x, y)`, or `not A(x, y)` when `negated`.
    Atom {
        /// Whether it is preceded by `not`.
        negated: bool,
        /// The atom.
        atom: Atom,
    },
    /// `x != y`, `x < 3`.
    Compare {
        /// The comparison.
        op: Compare,
        /// Left side.
        lhs: IndexArg,
        /// Right side.
        rhs: IndexArg,
        /// The whole comparison.
        span: Span,
    },
}

pub use tl_core::Compare;

/// How an equation projects the indices its left-hand side drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Projection {
    /// `=`: sum.
    Assign,
    /// `+=`: sum (same as `=`).
    Add,
    /// `max=`
    Max,
    /// `min=`
    Min,
    /// `avg=`: mean.
    Avg,
}

/// A tensor equation.
#[derive(Clone, Debug, PartialEq)]
pub struct Equation {
    /// The tensor being defined, with its index list.
    pub lhs: Lhs,
    /// `=`, `+=`, `max=`, `min=` or `avg=`.
    pub projection: Projection,
    /// The right-hand side.
    pub rhs: Expr,
}

/// The left-hand side of an equation or data definition: `Y`, `Y[i, j]`, `A[p, p'.]`, `Conv[x: 7]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Lhs {
    /// The tensor's name.
    pub name: Ident,
    /// `None` when written without brackets (`Loss = …`).
    pub indices: Option<Vec<LhsIndex>>,
    /// The whole left-hand side.
    pub span: Span,
}

/// One left-hand-side index position.
#[derive(Clone, Debug, PartialEq)]
pub struct LhsIndex {
    /// The index (usually a plain variable; may use arithmetic such as `x/2`, or be a constant).
    pub arg: IndexArg,
    /// A trailing `.`: the axis normalising functions (`softmax`, `lnorm`) work along.
    pub dotted: bool,
    /// An explicit extent or domain: `x: 7`, `p: Person`.
    pub extent: Option<ExtentAnn>,
}

/// An explicit extent annotation on a left-hand index.
#[derive(Clone, Debug, PartialEq)]
pub enum ExtentAnn {
    /// `x: 7`
    Size(u64, Span),
    /// `p: Person`
    Domain(Ident),
}

/// One argument in an index list or atom.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexArg {
    /// A variable, an integer, or arithmetic on them: `i`, `2`, `x+dx`, `x/2`.
    Expr(IndexExpr),
    /// A symbolic constant: `Alice` or `"New York"`.
    Symbol {
        /// The symbol's text (without quotes).
        name: String,
        /// Where it is.
        span: Span,
    },
    /// A half-open slice `a:b`, `a:` or `:b`, re-based at 0.
    Slice {
        /// Start (default 0).
        start: Option<i64>,
        /// End (default the axis's extent).
        end: Option<i64>,
        /// Where it is.
        span: Span,
    },
    /// A virtual index `*t`, `*t+1`, `*t-1`: the step `t` of a loop whose steps overwrite
    /// each other (LANGUAGE.md, "Virtual indices"), plus a constant.
    Virtual {
        /// The step variable.
        var: Ident,
        /// The constant added to the step.
        offset: i64,
        /// The whole index, `*` included.
        span: Span,
    },
}

impl IndexArg {
    /// The text span of this argument.
    pub fn span(&self) -> Span {
        match self {
            IndexArg::Expr(e) => e.span(),
            IndexArg::Symbol { span, .. }
            | IndexArg::Slice { span, .. }
            | IndexArg::Virtual { span, .. } => *span,
        }
    }
}

/// Integer arithmetic in index position.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexExpr {
    /// An index variable (lower-case identifier).
    Var(Ident),
    /// An integer constant.
    Int(i64, Span),
    /// `a + b`, `a - b`, `a * b`, `a / b` (integer division), `a % b`.
    Binary {
        /// The operator.
        op: IndexOp,
        /// Left operand.
        lhs: Box<IndexExpr>,
        /// Right operand.
        rhs: Box<IndexExpr>,
        /// The whole expression.
        span: Span,
    },
}

impl IndexExpr {
    /// The text span of this expression.
    pub fn span(&self) -> Span {
        match self {
            IndexExpr::Var(id) => id.span,
            IndexExpr::Int(_, span) | IndexExpr::Binary { span, .. } => *span,
        }
    }
}

/// An operator in index arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (integer division, rounding toward negative infinity)
    Div,
    /// `%`
    Rem,
}

/// How a tensor is referenced in an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessStyle {
    /// `W[i, j]`: a tensor's values.
    Bracket,
    /// `Parent(x, y)`: a relation, as 0/1 data.
    Paren,
    /// `W`: the whole tensor (a scalar, or all axes kept positionally).
    Bare,
}

/// A tensor read: `W[i, j]`, `Neig(x, y)`, `Dk`.
#[derive(Clone, Debug, PartialEq)]
pub struct Access {
    /// The tensor's name.
    pub name: Ident,
    /// Brackets, parentheses, or bare.
    pub style: AccessStyle,
    /// The index arguments (empty when bare).
    pub args: Vec<IndexArg>,
    /// The whole access.
    pub span: Span,
}

/// An expression on the right-hand side of an equation.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What kind of expression.
    pub kind: ExprKind,
    /// The expression's text.
    pub span: Span,
}

/// Expression forms of docs/language.md §3. Parentheses leave no node: the tree's shape records them.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A numeric literal.
    Number(f64),
    /// A tensor read.
    Access(Access),
    /// An index variable used as a number: `p` in `sin(p / 10000^(d / Dm))` is 0, 1, 2, … along
    /// its axis.
    Index(Ident),
    /// A function call: `sig(x)`, `sig(x, T)`, `softmax(…)`.
    Call {
        /// The function's name.
        func: Ident,
        /// Its arguments.
        args: Vec<Expr>,
    },
    /// Unary minus.
    Neg(Box<Expr>),
    /// A binary operation.
    Binary {
        /// The operator.
        op: BinOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
}

/// A binary operator in an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*` or juxtaposition (a join).
    Mul,
    /// `/`
    Div,
    /// `^`
    Pow,
}

/// Data given in the program or read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct DataDef {
    /// The tensor defined (its index list names stacking indices, e.g. `Wq[l, i, j]`).
    pub lhs: Lhs,
    /// Where the data comes from.
    pub source: DataSource,
}

/// The source of a data definition.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// `[[1, 2], [3, 4]]`.
    Array(ArrayLit),
    /// `"file.npy"`, `"m.safetensors#name"`, `"m.safetensors#enc.{l}.q"`.
    File(FileRef),
    /// `"sentences.txt" tokenized by "tokenizer.json" max 256 length 128`.
    Tokenized(Tokenized),
    /// A relation as plain delimited text with declared column types (Soufflé's `.input`).
    Delimited(DelimitedFile),
}

/// A relation read from plain delimited text (Soufflé's `.facts` files): fields split at one
/// character and taken verbatim, each column a symbol or a number as declared.
#[derive(Clone, Debug, PartialEq)]
pub struct DelimitedFile {
    /// The file.
    pub file: FileRef,
    /// The character between fields.
    pub delimiter: char,
    /// Per column: whether it holds numbers (else symbols).
    pub numbers: Vec<bool>,
}

/// Sentences of a text file encoded by a tokenizer: the relation `Tok(sentence, position,
/// token)`, true where a sentence holds a token at a position (padding holds none).
#[derive(Clone, Debug, PartialEq)]
pub struct Tokenized {
    /// The text file: one sentence per line.
    pub text: StrLit,
    /// The Hugging Face `tokenizer.json`.
    pub tokenizer: StrLit,
    /// `max N`: keep at most N tokens per sentence (replaces the tokenizer's own limit).
    pub max_length: Option<(u64, Span)>,
    /// `length N`: exactly N positions per sentence (truncated or padded).
    pub length: Option<(u64, Span)>,
    /// From the text file's string to the end of the options.
    pub span: Span,
}

impl DataSource {
    /// The source as written.
    pub fn span(&self) -> Span {
        match self {
            DataSource::Array(a) => a.span,
            DataSource::File(f) => f.span,
            DataSource::Tokenized(t) => t.span,
            DataSource::Delimited(d) => d.file.span,
        }
    }
}

/// A rectangular array literal, flattened in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct ArrayLit {
    /// Extent of each axis.
    pub shape: Vec<usize>,
    /// The numbers, row-major.
    pub data: Vec<f64>,
    /// The whole literal.
    pub span: Span,
}

/// A file named in a program: a path and an optional `#selector` after it.
#[derive(Clone, Debug, PartialEq)]
pub struct FileRef {
    /// The path before any `#` (relative to the folder of the program file).
    pub path: String,
    /// The tensor name after `#`, possibly with `{index}` placeholders.
    pub selector: Option<String>,
    /// The string literal.
    pub span: Span,
}

/// `"out.safetensors" = W1, B1`: write tensors to a file.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteCmd {
    /// The destination file.
    pub file: FileRef,
    /// The tensors to write.
    pub tensors: Vec<Ident>,
    /// `Some(c)`: a relation as plain text with fields split by `c`, whatever the file's
    /// extension (Soufflé's `.output`); `None`: the format the extension names.
    pub delimiter: Option<char>,
}

/// `param W[8, 2] ~ normal(0, 0.5)` or `param B[8] = 0`.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDecl {
    /// The parameter's name.
    pub name: Ident,
    /// Its axes (empty for a scalar).
    pub dims: Vec<DimSpec>,
    /// How it starts (`None`: the default, `xavier`).
    pub init: Option<Init>,
}

/// One axis of a declared parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum DimSpec {
    /// A fixed extent.
    Size(u64, Span),
    /// The extent of a named domain.
    Domain(Ident),
}

/// A parameter's initialiser.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// `= 0.5`: every element the same.
    Constant(f64, Span),
    /// `~ normal(0, 0.5)`, `~ uniform(-1, 1)`, `~ xavier`.
    Random(Call),
}

/// A named call with positional and keyword arguments: `adam(lr=0.05)`, `normal(0, 1)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The function's name.
    pub name: Ident,
    /// Arguments in order; `name` is `Some` for `key=value`.
    pub args: Vec<CallArg>,
    /// The whole call.
    pub span: Span,
}

/// One argument of a [`Call`].
#[derive(Clone, Debug, PartialEq)]
pub struct CallArg {
    /// The keyword, for `key=value`.
    pub name: Option<Ident>,
    /// The value.
    pub value: ArgValue,
    /// The whole argument.
    pub span: Span,
}

/// The value of a call argument.
#[derive(Clone, Debug, PartialEq)]
pub enum ArgValue {
    /// A number.
    Number(f64),
    /// `true` or `false`.
    Bool(bool),
    /// A name (e.g. a `const`).
    Name(Ident),
}

/// `const Lr = 0.01` (a number or an array literal).
#[derive(Clone, Debug, PartialEq)]
pub struct ConstDecl {
    /// The constant's name.
    pub name: Ident,
    /// Its value.
    pub value: ArrayLit,
}

/// `domain Person = {Alice, Bob}` or `domain N = 10`.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainDecl {
    /// The domain's name.
    pub name: Ident,
    /// Its members.
    pub members: DomainMembers,
}

/// The members of a declared domain.
#[derive(Clone, Debug, PartialEq)]
pub enum DomainMembers {
    /// Named symbols, in order.
    Symbols(Vec<(String, Span)>),
    /// The integers `0..n`.
    Range(u64, Span),
}

/// `minimize Loss with adam(lr=0.05) for 500 steps schedule cosine(warmup=50)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Minimize {
    /// The scalar to minimise.
    pub loss: Ident,
    /// The optimiser and its options.
    pub optimizer: Call,
    /// How long to train.
    pub duration: Duration,
    /// `batch e 64`: mini-batches along an example index.
    pub batch: Option<Batch>,
    /// A learning-rate schedule.
    pub schedule: Option<Call>,
}

/// How long a `minimize` runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Duration {
    /// `for N steps`
    Steps(u64, Span),
    /// `for N epochs`
    Epochs(u64, Span),
}

/// `batch e 64`.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// The example index.
    pub index: Ident,
    /// Examples per batch.
    pub size: u64,
    /// Where the clause is.
    pub span: Span,
}

/// A query: `Ancestor(Alice, x)?`, `Y?`, `Y[2]?`.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// The tensor read being asked about.
    pub access: Access,
}
