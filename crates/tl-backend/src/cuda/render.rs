//! The one renderer of generated kernels. A [`Spec`] says what one launch computes, in the
//! terms of [`crate::Kernel`]: expressions over inputs of any layout (broadcast, strided,
//! contiguous), stored element by element, folded along rows, or stored after reductions
//! along each row. [`Spec::source`] turns it into CUDA C; every map, cast, fill, reduction,
//! softmax, layer norm and row map the backend launches is rendered here, by one of four
//! walks over the index space ([`Walk`]). Softmax and layer norm are not special: they reach
//! the renderer as the row reductions and map of [`crate::ops::NormFn::as_rows`]. (Attention,
//! gathers, scatters and the relation kernels are fixed templates, not rendered from a
//! `Kernel`.)
//!
//! Every kernel takes one by-value argument, `TlMeta` (64-bit words): `[n, out_0 …, in_0 …,
//! extents (rank), their divisors (rank, see [`codegen::divisor`]), strides of each strided
//! input (rank each), the constants (f64 bits), the walk's own words]`, so a compiled kernel
//! depends only on the spec ([`Spec::key`]), not on sizes, addresses or constant values.

use super::codegen::{self, c_type, divisor, expr_named, header, load, meta_cap, Real};
use crate::dtype::DType;
use crate::ops::{MapExpr, ReduceOp};
use std::fmt::Write;
use std::hash::{Hash, Hasher};

mod elements;
mod fold;
mod rows;
#[cfg(test)]
mod tests;

pub(crate) use fold::FoldLayout;
pub(crate) use rows::{row_cache, RowWalk, WARP_ROW_MAX};

/// How a kernel addresses one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Access {
    /// Laid out like the index space: element `i` is at `i`.
    Contiguous,
    /// One value for every element.
    Scalar,
    /// Through the strides in `TlMeta`.
    Strided,
}

/// How a kernel walks its index space.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Walk {
    /// Each output element computed and stored: a thread takes several elements a block
    /// apart, loading all of them before computing any.
    Elements,
    /// As [`Walk::Elements`], four consecutive elements per thread with 8- and 16-byte
    /// accesses (launches whose rows split into fours, aligned: [`Spec::fours_aligned`]).
    Fours,
    /// The one output's values folded with `op` along rows of `[rows, r]` (or columns of
    /// `[r, cols]`) and stored once per row. Walk words: `[outputs, r, len, chunks, count]`:
    /// output `q` folds chunk `q % chunks` (rows) or `q / cols` (columns) of `len` elements; a
    /// mean divides by `count`.
    Fold {
        /// How values combine.
        op: ReduceOp,
        /// Who folds what.
        layout: FoldLayout,
    },
    /// Reductions along the middle axis of `[outer, len, inner]`, then the outputs stored
    /// at every element of the row (see [`RowWalk`]).
    Rows(RowWalk),
    /// A dropout mask ([`crate::Body::Mask`]): the one output's expression (the value kept
    /// elements take) where element `i`'s draw keeps it, else 0. The one input is the
    /// counter, an f64 scalar; walk words: `[stream, the rate's bits]`.
    Mask,
}

/// One launch's kernel: what it computes and how it walks its index space.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Spec {
    /// Each output's expression and stored type. Over the inputs `x0…` (elements and
    /// folds), or over a row walk's values and reductions.
    pub outs: Vec<(MapExpr, DType)>,
    /// Element type and access of each input.
    pub inputs: Vec<(DType, Access)>,
    /// Arithmetic type.
    pub real: Real,
    /// Rank of the (coalesced) index space.
    pub rank: usize,
    /// How the index space is walked.
    pub walk: Walk,
}

/// Feeds an expression's shape into a hasher. Constant values are left out: kernels read them
/// from `TlMeta`, so one kernel serves every value (a scheduled learning rate, say).
pub(crate) fn hash_expr(e: &MapExpr, h: &mut impl Hasher) {
    match e {
        MapExpr::Input(k) => (0u8, *k).hash(h),
        MapExpr::Const(_) => 1u8.hash(h),
        MapExpr::Unary(f, x) => {
            (2u8, f).hash(h);
            hash_expr(x, h);
        }
        MapExpr::Binary(f, a, b) => {
            (3u8, f).hash(h);
            hash_expr(a, h);
            hash_expr(b, h);
        }
    }
}

/// The C code of a spec's expressions, constants numbered across them in [`Spec::exprs`]
/// order: a row walk's values (over the loaded inputs `l0…`), its reductions and the outputs
/// (over `x0…`: the values, then the reductions).
pub(super) struct Code {
    pub values: Vec<String>,
    pub reductions: Vec<String>,
    pub outs: Vec<String>,
}

impl Spec {
    /// The launch-cache key: a hash of everything the source depends on.
    pub(crate) fn key(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        "spec".hash(&mut h);
        for e in self.exprs() {
            hash_expr(e, &mut h);
        }
        for (_, d) in &self.outs {
            d.hash(&mut h);
        }
        (&self.inputs, self.real, self.rank).hash(&mut h);
        match &self.walk {
            Walk::Elements => 0u8.hash(&mut h),
            Walk::Fours => 1u8.hash(&mut h),
            Walk::Fold { op, layout } => (2u8, op, layout).hash(&mut h),
            Walk::Rows(w) => {
                (3u8, w.values.len(), w.block, w.cached, w.wide).hash(&mut h);
                for (_, op) in &w.reductions {
                    op.hash(&mut h);
                }
            }
            Walk::Mask => 4u8.hash(&mut h),
        }
        h.finish()
    }

    /// Every expression, in the order constants are numbered: a row walk's values and
    /// reductions, then the outputs.
    pub(crate) fn exprs(&self) -> impl Iterator<Item = &MapExpr> {
        let (values, reductions): (&[MapExpr], &[(MapExpr, ReduceOp)]) = match &self.walk {
            Walk::Rows(w) => (&w.values, &w.reductions),
            _ => (&[], &[]),
        };
        values
            .iter()
            .chain(reductions.iter().map(|(e, _)| e))
            .chain(self.outs.iter().map(|(e, _)| e))
    }

    /// Whether the kernel moves elements unchanged (a copy of one input of the output's type).
    pub(super) fn raw(&self) -> bool {
        matches!(&self.outs[..], [(MapExpr::Input(0), d)] if self.inputs.len() == 1 && self.inputs[0].0 == *d)
            && matches!(self.walk, Walk::Elements)
    }

    /// Index of the first input pointer in `TlMeta`.
    pub(crate) fn inputs_at(&self) -> usize {
        1 + self.outs.len()
    }

    fn n_strided(&self) -> usize {
        self.inputs
            .iter()
            .filter(|(_, a)| *a == Access::Strided)
            .count()
    }

    /// The constants of every expression, in order.
    fn all_constants(&self) -> Vec<f64> {
        let mut c = Vec::new();
        for e in self.exprs() {
            codegen::constants(e, &mut c);
        }
        c
    }

    /// Index of the first constant in `TlMeta`.
    fn consts_at(&self) -> usize {
        self.inputs_at() + self.inputs.len() + 2 * self.rank + self.n_strided() * self.rank
    }

    /// Index of the walk's own first word in `TlMeta`.
    pub(super) fn walk_at(&self) -> usize {
        self.consts_at() + self.all_constants().len()
    }

    /// How many words of its own the walk takes.
    fn walk_words(&self) -> usize {
        match &self.walk {
            Walk::Elements | Walk::Fours => 0,
            Walk::Fold { .. } => 5,
            Walk::Rows(_) => 2 + self.n_strided(),
            Walk::Mask => 2,
        }
    }

    /// Words of `TlMeta` (see the module's documentation).
    pub(crate) fn meta_len(&self) -> usize {
        self.walk_at() + self.walk_words()
    }

    /// The `TlMeta` words of one launch but the walk's own. `strides` lists the strides of
    /// the strided inputs in input order.
    pub(crate) fn meta(
        &self,
        n: usize,
        outs: &[u64],
        inputs: &[u64],
        shape: &[usize],
        strides: &[Vec<usize>],
    ) -> Vec<i64> {
        let mut m = Vec::with_capacity(self.meta_len());
        m.push(n as i64);
        m.extend(outs.iter().map(|&p| p as i64));
        m.extend(inputs.iter().map(|&p| p as i64));
        m.extend(shape.iter().map(|&e| e as i64));
        m.extend(shape.iter().map(|&e| divisor(e)));
        for s in strides {
            m.extend(s.iter().map(|&x| x as i64));
        }
        m.extend(self.all_constants().iter().map(|x| x.to_bits() as i64));
        m
    }

    /// The expressions' C code (see [`Code`]).
    pub(super) fn code(&self) -> Code {
        let mut next = 0;
        let (values, reductions) = match &self.walk {
            Walk::Rows(w) => {
                let values = w
                    .values
                    .iter()
                    .map(|e| expr_named(e, &mut next, &|k| format!("l{k}")))
                    .collect();
                let reductions = w
                    .reductions
                    .iter()
                    .map(|(e, _)| codegen::expr_c(e, &mut next))
                    .collect();
                (values, reductions)
            }
            _ => (Vec::new(), Vec::new()),
        };
        let outs = self
            .outs
            .iter()
            .map(|(e, _)| codegen::expr_c(e, &mut next))
            .collect();
        Code {
            values,
            reductions,
            outs,
        }
    }

    /// The kernel source, or `None` when the argument block would be too large.
    pub(crate) fn source(&self) -> Option<String> {
        let cap = meta_cap(self.meta_len())?;
        let body = match &self.walk {
            Walk::Elements => self.elements_body(),
            Walk::Fours => self.fours_body(),
            Walk::Fold { op, layout } => self.fold_body(*op, *layout),
            Walk::Rows(w) => self.rows_body(w),
            Walk::Mask => self.mask_body(),
        };
        let mut s = header(self.real, cap);
        if self.walk == Walk::Mask {
            s.push_str(tl_core::random::CUDA);
        }
        s.push_str(&codegen::dialect(&body, self.real));
        Some(s)
    }

    /// Code that reads every input at flat index `i` into `target(j)` (converted to `real`
    /// when `convert`): strided inputs through their offsets (see [`Spec::offsets`]).
    pub(super) fn read_inputs(
        &self,
        body: &mut String,
        pad: &str,
        target: &dyn Fn(usize) -> String,
        convert: bool,
    ) {
        self.offsets(body, pad, "i", "o");
        self.loads(body, pad, target, convert, &|j| format!("o{j}"));
    }

    /// Code declaring `long long {var}{j}`, the offset of each strided input `j` at flat
    /// index `index`: one digit of the index per axis, innermost first (in 32 bits when the
    /// index space `n` fits, a branch that is the same for every thread).
    pub(super) fn offsets(&self, body: &mut String, pad: &str, index: &str, var: &str) {
        let k = self.inputs.len();
        let shape_at = self.inputs_at() + k;
        let strided: Vec<usize> = (0..k)
            .filter(|&j| self.inputs[j].1 == Access::Strided)
            .collect();
        if strided.is_empty() {
            return;
        }
        for &j in &strided {
            let _ = writeln!(body, "{pad}long long {var}{j} = 0;");
        }
        // Below 2^31 a division by an extent is a multiply-high and a shift (the divisor's
        // magic number); above, a 64-bit division, a branch that is the same for every thread.
        for (guard, int) in [
            ("if (n <= 2147483647LL)", "unsigned int"),
            ("else", "long long"),
        ] {
            let _ = writeln!(body, "{pad}{guard} {{\n{pad}  {int} rem = ({int}){index};");
            for a in (0..self.rank).rev() {
                let e = shape_at + a;
                let digit = if int == "unsigned int" {
                    let d = shape_at + self.rank + a;
                    format!(
                        "const unsigned int e = (unsigned int)m.v[{e}]; const unsigned long long dv = (unsigned long long)m.v[{d}]; const unsigned int qt = (__umulhi(rem, (unsigned int)dv) + rem) >> (unsigned int)(dv >> 32); const unsigned int c = rem - qt * e; rem = qt;"
                    )
                } else {
                    format!("const long long e = m.v[{e}]; const long long c = rem % e; rem /= e;")
                };
                let _ = write!(body, "{pad}  {{ {digit}");
                for (q, &j) in strided.iter().enumerate() {
                    let st = shape_at + 2 * self.rank + q * self.rank + a;
                    let _ = write!(body, " {var}{j} += (long long)c * m.v[{st}];");
                }
                body.push_str(" }\n");
            }
            let _ = writeln!(body, "{pad}}}");
        }
    }

    /// Code that reads every input into `target(j)` (converted to `real` when `convert`):
    /// contiguous ones at `i`, scalars at 0, strided ones at `offset(j)`.
    pub(super) fn loads(
        &self,
        body: &mut String,
        pad: &str,
        target: &dyn Fn(usize) -> String,
        convert: bool,
        offset: &dyn Fn(usize) -> String,
    ) {
        for (j, (d, a)) in self.inputs.iter().enumerate() {
            let at = match a {
                Access::Contiguous => format!("in{j}[i]"),
                Access::Scalar => format!("in{j}[0]"),
                Access::Strided => format!("in{j}[{}]", offset(j)),
            };
            let value = if convert { load(*d, &at) } else { at };
            let _ = writeln!(body, "{pad}{} = {value};", target(j));
        }
    }

    /// The kernel's opening: `n`, the outputs `out0…`, the inputs `in0…` and the constants
    /// `c0…`, each read from its `TlMeta` word.
    pub(super) fn kernel_head(&self) -> String {
        let bounds = match self.walk {
            Walk::Rows(_) => "__launch_bounds__(256) ",
            _ => "",
        };
        let mut head = format!(
            "extern \"C\" __global__ void {bounds}tl_kernel(const TlMeta m) {{\n  const long long n = m.v[0];\n",
        );
        for (o, (_, d)) in self.outs.iter().enumerate() {
            let t = c_type(*d);
            let _ = writeln!(head, "  {t}* out{o} = ({t}*)m.v[{}];", 1 + o);
        }
        for (j, (d, _)) in self.inputs.iter().enumerate() {
            let t = c_type(*d);
            let _ = writeln!(
                head,
                "  const {t}* in{j} = (const {t}*)m.v[{}];",
                self.inputs_at() + j
            );
        }
        for j in 0..self.all_constants().len() {
            let _ = writeln!(
                head,
                "  const real c{j} = (real)__longlong_as_double(m.v[{}]);",
                self.consts_at() + j
            );
        }
        head
    }
}
