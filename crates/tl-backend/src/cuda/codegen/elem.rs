//! Rendering an [`ElemSig`]: the map kernel (one thread per output element, or four at a time
//! when rows are aligned), and the same signature's reduce and normalize kernels.

use super::*;

impl ElemSig {
    /// Code that reads every input at flat output index `i` into `target(j)` (converted to
    /// `real` when `convert`): strided inputs through their offsets (see
    /// [`ElemSig::offsets`]).
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
    /// output index `index`: one digit of the index per axis, innermost first (in 32 bits when
    /// the index space `n` fits, a branch that is the same for every thread).
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

    /// The kernel's opening: `n`, the outputs `out0…` stored as `out_types`, the inputs
    /// `in0…` and the constants `c0…`, each read from its `TlMeta` word.
    pub(super) fn kernel_head(&self, out_types: &[DType]) -> String {
        let mut head = String::from(
            "extern \"C\" __global__ void tl_kernel(const TlMeta m) {\n  const long long n = m.v[0];\n",
        );
        for (o, d) in out_types.iter().enumerate() {
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

    /// A row reduction of this signature's one expression over `[rows, r]` (the expression's
    /// index space, reduced axes last), without storing the expression's values: one warp per
    /// row (`warp`) or one block per row, accumulating as [`reduce_source`] does. `TlMeta` is
    /// [`ElemSig::meta`]'s followed by `r`; the output (of `real`) is `out0`.
    pub(crate) fn reduce_source(&self, op: ReduceOp, warp: bool) -> Option<String> {
        let cap = meta_cap(self.meta_len() + 1)?;
        let fold = FoldCode::new(op, "r");
        let (acc, init, finish) = (fold.acc, fold.init, &fold.finish);
        let combine = |a: &str, b: &str| fold.combine(a, b);
        let mut s = header(self.real, cap);
        let mut body = self.kernel_head(&[self.real.dtype()]);
        let consts = self.all_constants().len();
        let _ = writeln!(
            body,
            "  const long long r = m.v[{}];\n  const long long rows = n / r;",
            self.consts_at() + consts
        );
        let (first, step, lane, lanes) = if warp {
            (
                format!("(long long)blockIdx.x * ({BLOCK} / 32) + threadIdx.x / 32"),
                format!("(long long)gridDim.x * ({BLOCK} / 32)"),
                "(long long)(threadIdx.x & 31)",
                "32",
            )
        } else {
            (
                "(long long)blockIdx.x".to_string(),
                "(long long)gridDim.x".to_string(),
                "(long long)threadIdx.x",
                "(long long)blockDim.x",
            )
        };
        if !warp {
            let _ = writeln!(body, "  __shared__ {acc} sh[{BLOCK}];");
        }
        let _ = writeln!(
            body,
            "  for (long long q = {first}; q < rows; q += {step}) {{\n    {acc} a = {init};\n    for (long long j = {lane}; j < r; j += {lanes}) {{\n      const long long i = q * r + j;"
        );
        self.read_inputs(&mut body, "      ", &|j| format!("const real x{j}"), true);
        let v = expr_c(&self.outs[0].0, &mut 0);
        let _ = writeln!(
            body,
            "      a = {};\n    }}",
            combine("a", &format!("({acc})({v})"))
        );
        if warp {
            let _ = writeln!(
                body,
                "    for (int o = 16; o > 0; o >>= 1) a = {};\n    if ((threadIdx.x & 31) == 0) out0[q] = {finish};\n  }}\n}}",
                combine("a", "__shfl_xor_sync(0xffffffffu, a, o)")
            );
        } else {
            let _ = writeln!(
                body,
                "    sh[threadIdx.x] = a;\n    __syncthreads();\n    for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {{\n      if (threadIdx.x < s) sh[threadIdx.x] = {};\n      __syncthreads();\n    }}\n    if (threadIdx.x == 0) {{ a = sh[0]; out0[q] = {finish}; }}\n    __syncthreads();\n  }}\n}}",
                combine("sh[threadIdx.x]", "sh[threadIdx.x + s]")
            );
        }
        s.push_str(&dialect(&body, self.real));
        Some(s)
    }

    /// A softmax or layer norm of this signature's one expression along the middle axis of
    /// its index space `[outer, len, inner]`, without storing the expression's values (each
    /// pass over a row computes them again from the inputs), stored as `storage`. `TlMeta` is
    /// [`ElemSig::meta`]'s followed by `len`, `inner` and, for each strided input, its stride
    /// along the normalised axis: a strided input's offsets are found once per row and then
    /// stepped, not recomputed from the flat index at every element. The output is `out0`.
    pub(crate) fn normalize_source(
        &self,
        func: NormFn,
        storage: DType,
        warp: bool,
        cached: usize,
        wide: bool,
    ) -> Option<String> {
        let strided: Vec<usize> = (0..self.inputs.len())
            .filter(|&j| self.inputs[j].1 == Access::Strided)
            .collect();
        let cap = meta_cap(self.meta_len() + 2 + strided.len())?;
        let mut s = header(self.real, cap);
        let mut head = self.kernel_head(&[storage]);
        let consts = self.all_constants().len();
        let at = self.consts_at() + consts;
        let _ = writeln!(
            head,
            "  const long long len = m.v[{at}];\n  const long long inner = m.v[{}];\n  const long long rows = n / len;",
            at + 1
        );
        for (q, &j) in strided.iter().enumerate() {
            let _ = writeln!(head, "  const long long st{j} = m.v[{}];", at + 2 + q);
        }
        let mut row = String::new();
        self.offsets(&mut row, "    ", "base", "ob");
        let mut value = String::new();
        self.loads(
            &mut value,
            "      ",
            &|j| format!("const real x{j}"),
            true,
            &|j| format!("ob{j} + j * st{j}"),
        );
        let _ = writeln!(
            value,
            "      const real v = {};",
            expr_c(&self.outs[0].0, &mut 0)
        );
        let wide_load = (wide && cached >= 4).then(|| self.wide_row_load(cached));
        let body = format!(
            "{}{head}{}",
            row_reducers(warp),
            normalize_rows(
                func,
                storage,
                warp,
                cached,
                &row,
                &value,
                wide_load.as_deref()
            )
        );
        s.push_str(&dialect(&body, self.real));
        Some(s)
    }

    /// Whether the outputs and the contiguous inputs of a launch with these `TlMeta` words
    /// ([`ElemSig::meta`]) start where [`ElemSig::four_loads`] and [`four_stores`] may move
    /// four 16- or 32-bit values at once (a multiple of four elements).
    pub(crate) fn fours_aligned(&self, meta: &[i64]) -> bool {
        let aligned = |ptr: i64, d: DType| {
            let size = d.size() as u64;
            !(size == 2 || size == 4) || (ptr as u64).is_multiple_of(4 * size)
        };
        self.outs
            .iter()
            .enumerate()
            .all(|(o, (_, d))| meta.get(1 + o).is_some_and(|&p| aligned(p, *d)))
            && self.inputs.iter().enumerate().all(|(j, (d, a))| {
                *a != Access::Contiguous
                    || meta
                        .get(self.inputs_at() + j)
                        .is_some_and(|&p| aligned(p, *d))
            })
    }

    /// Code reading four consecutive elements of every input into `real {array}{j}[4]`, the
    /// first at `i0`: contiguous 16- and 32-bit inputs with one 8- or 16-byte load, other
    /// contiguous ones one by one, scalars once, and strided inputs at `strided(j, u)`.
    pub(super) fn four_loads(
        &self,
        pad: &str,
        array: &str,
        strided: &dyn Fn(usize, usize) -> String,
    ) -> String {
        let mut code = String::new();
        for (j, (d, a)) in self.inputs.iter().enumerate() {
            let _ = writeln!(code, "{pad}real {array}{j}[4];");
            let lane = |u: usize, value: String| format!("{pad}  {array}{j}[{u}] = {value};\n");
            match (a, d) {
                (Access::Scalar, _) => {
                    let _ = writeln!(
                        code,
                        "{pad}{{ const real x = {}; {array}{j}[0] = x; {array}{j}[1] = x; {array}{j}[2] = x; {array}{j}[3] = x; }}",
                        load(*d, &format!("in{j}[0]"))
                    );
                }
                (Access::Contiguous, DType::F16 | DType::BF16) => {
                    let _ = writeln!(code, "{pad}{{ const uint2 w = *(const uint2*)(in{j} + i0);");
                    for (u, part) in ["w.x & 0xffffu", "w.x >> 16", "w.y & 0xffffu", "w.y >> 16"]
                        .iter()
                        .enumerate()
                    {
                        code.push_str(&lane(u, load(*d, &format!("(unsigned short)({part})"))));
                    }
                    let _ = writeln!(code, "{pad}}}");
                }
                (Access::Contiguous, DType::F32) => {
                    let _ = writeln!(
                        code,
                        "{pad}{{ const float4 w = *(const float4*)(in{j} + i0);"
                    );
                    for (u, part) in ["w.x", "w.y", "w.z", "w.w"].iter().enumerate() {
                        code.push_str(&lane(u, format!("(real){part}")));
                    }
                    let _ = writeln!(code, "{pad}}}");
                }
                (Access::Contiguous, _) => {
                    for u in 0..4 {
                        code.push_str(&lane(u, load(*d, &format!("in{j}[i0 + {u}]"))));
                    }
                }
                (Access::Strided, _) => {
                    for u in 0..4 {
                        code.push_str(&lane(u, load(*d, &format!("in{j}[{}]", strided(j, u)))));
                    }
                }
            }
        }
        code
    }

    /// The loads of a wide row (a row contiguous along the normalised axis, `inner` = 1, of a
    /// length divisible by four): each lane computes `vals` for groups of four consecutive
    /// elements, reading contiguous 16- and 32-bit inputs with one 8- or 16-byte access and a
    /// strided input at `ob + j · st` (see [`ElemSig::normalize_source`]).
    pub(super) fn wide_row_load(&self, cached: usize) -> String {
        let mut code = format!(
            "#pragma unroll\n    for (int g = 0; g < {}; ++g) {{\n      const long long j0 = 4LL * (threadIdx.x & 31) + 128LL * g;\n      if (j0 < len) {{\n        const long long i0 = base + j0;\n",
            cached / 4
        );
        code.push_str(&self.four_loads("        ", "a", &|j, u| {
            format!("ob{j} + (j0 + {u}) * st{j}")
        }));
        code.push_str("#pragma unroll\n        for (int w = 0; w < 4; ++w) {\n");
        for j in 0..self.inputs.len() {
            let _ = writeln!(code, "          const real x{j} = a{j}[w];");
        }
        let _ = writeln!(
            code,
            "          vals[4 * g + w] = {};\n        }}\n      }}\n    }}",
            expr_c(&self.outs[0].0, &mut 0)
        );
        code
    }

    /// Whether [`ElemSig::vector_source`] can serve an index space whose innermost
    /// (coalesced) extent is `inner`: four consecutive elements must not cross a row when an
    /// input is read through strides.
    pub(crate) fn vectorizable(&self, inner: usize) -> bool {
        !self.raw()
            && (inner.is_multiple_of(4) || self.inputs.iter().all(|(_, a)| *a != Access::Strided))
    }

    /// The kernel of [`ElemSig::source`] for signatures whose contiguous inputs and outputs
    /// start at multiples of four elements: each thread handles four consecutive elements,
    /// moving contiguous 16- and 32-bit values with one 8- or 16-byte access (other types one
    /// by one); a strided input's offset is found once per four elements and stepped along
    /// the innermost axis. The last `n mod 4` elements go one by one. `None` when the argument
    /// block would be too large.
    pub(crate) fn vector_source(&self) -> Option<String> {
        let cap = meta_cap(self.meta_len())?;
        let k = self.inputs.len();
        let mut s = header(self.real, cap);
        let out_types: Vec<DType> = self.outs.iter().map(|(_, d)| *d).collect();
        let mut body = self.kernel_head(&out_types);
        body.push_str("  const long long groups = n >> 2;\n  const long long stride = (long long)gridDim.x * blockDim.x;\n  for (long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x; g < groups; g += stride) {\n    const long long i0 = g << 2;\n");
        self.offsets(&mut body, "    ", "i0", "o");
        let shape_at = self.inputs_at() + k;
        let mut q = 0;
        for (j, (_, a)) in self.inputs.iter().enumerate() {
            if *a == Access::Strided {
                // The stride along the innermost axis, from `TlMeta`.
                let inner = shape_at + 2 * self.rank + q * self.rank + self.rank - 1;
                q += 1;
                let _ = writeln!(body, "    const long long si{j} = m.v[{inner}];");
            }
        }
        body.push_str(&self.four_loads("    ", "r", &|j, u| format!("o{j} + {u} * si{j}")));
        for o in 0..self.outs.len() {
            let _ = writeln!(body, "    real y{o}[4];");
        }
        body.push_str("#pragma unroll\n    for (int u = 0; u < 4; ++u) {\n");
        for j in 0..k {
            let _ = writeln!(body, "      const real x{j} = r{j}[u];");
        }
        let mut next_const = 0;
        for (o, (e, _)) in self.outs.iter().enumerate() {
            let _ = writeln!(body, "      y{o}[u] = {};", expr_c(e, &mut next_const));
        }
        body.push_str("    }\n");
        for (o, (_, d)) in self.outs.iter().enumerate() {
            body.push_str(&four_stores(*d, "    ", &format!("out{o} + i0"), &|u| {
                format!("y{o}[{u}]")
            }));
        }
        body.push_str("  }\n  for (long long i = (groups << 2) + (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {\n");
        self.read_inputs(&mut body, "    ", &|j| format!("const real x{j}"), true);
        let mut next_const = 0;
        for (o, (e, d)) in self.outs.iter().enumerate() {
            let v = expr_c(e, &mut next_const);
            let _ = writeln!(body, "    out{o}[i] = {};", store(*d, &v));
        }
        body.push_str("  }\n}\n");
        s.push_str(&dialect(&body, self.real));
        Some(s)
    }

    /// The kernel source, or `None` when the argument block would be too large.
    pub(crate) fn source(&self) -> Option<String> {
        let cap = meta_cap(self.meta_len())?;
        let k = self.inputs.len();
        let mut s = header(self.real, cap);
        let out_types: Vec<DType> = self.outs.iter().map(|(_, d)| *d).collect();
        let mut body = self.kernel_head(&out_types);
        // Each thread handles ELEM_UNROLL elements a block apart, loading all of them before
        // computing any, so that several loads per thread are in flight at once (one 16-bit
        // load per thread at a time leaves most of the memory bandwidth unused).
        let _ = writeln!(
            body,
            "  const long long step = (long long)gridDim.x * blockDim.x * {ELEM_UNROLL};\n  for (long long first = (long long)blockIdx.x * blockDim.x * {ELEM_UNROLL} + threadIdx.x; first < n; first += step) {{"
        );
        if self.raw() {
            let _ = writeln!(body, "    {} r0[{ELEM_UNROLL}];", c_type(self.inputs[0].0));
        } else {
            for j in 0..k {
                let _ = writeln!(body, "    real r{j}[{ELEM_UNROLL}];");
            }
        }
        let _ = writeln!(
            body,
            "#pragma unroll\n    for (int u = 0; u < {ELEM_UNROLL}; ++u) {{\n      const long long i = first + (long long)u * blockDim.x;\n      if (i >= n) break;"
        );
        if self.raw() {
            self.read_inputs(&mut body, "      ", &|_| "r0[u]".into(), false);
        } else {
            self.read_inputs(&mut body, "      ", &|j| format!("r{j}[u]"), true);
        }
        body.push_str("    }\n");
        let _ = writeln!(
            body,
            "#pragma unroll\n    for (int u = 0; u < {ELEM_UNROLL}; ++u) {{\n      const long long i = first + (long long)u * blockDim.x;\n      if (i >= n) break;"
        );
        if self.raw() {
            body.push_str("      out0[i] = r0[u];\n");
        } else {
            for j in 0..k {
                let _ = writeln!(body, "      const real x{j} = r{j}[u];");
            }
            // Constants are numbered across the outputs' expressions, in order.
            let mut next_const = 0;
            for (o, (e, d)) in self.outs.iter().enumerate() {
                let v = expr_c(e, &mut next_const);
                let _ = writeln!(body, "      const real v{o} = {v};");
                let _ = writeln!(body, "      out{o}[i] = {};", store(*d, &format!("v{o}")));
            }
        }
        body.push_str("    }\n");
        body.push_str("  }\n}\n");
        s.push_str(&dialect(&body, self.real));
        Some(s)
    }
}
