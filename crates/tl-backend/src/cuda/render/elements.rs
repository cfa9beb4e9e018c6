//! The element walks: every output element computed and stored, several per thread a block
//! apart ([`Walk::Elements`]) or four consecutive ones with wide accesses ([`Walk::Fours`]).

use super::*;
use crate::cuda::codegen::{store, ELEM_UNROLL};

impl Spec {
    /// Whether the outputs and the contiguous inputs of a launch with these `TlMeta` words
    /// ([`Spec::meta`]) start where [`Spec::four_loads`] and [`four_stores`] may move four 16-
    /// or 32-bit values at once (a multiple of four elements).
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

    /// Whether [`Walk::Fours`] can serve an index space whose innermost (coalesced) extent is
    /// `inner`: four consecutive elements must not cross a row when an input is read through
    /// strides.
    pub(crate) fn vectorizable(&self, inner: usize) -> bool {
        !self.raw()
            && (inner.is_multiple_of(4) || self.inputs.iter().all(|(_, a)| *a != Access::Strided))
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

    /// [`Walk::Fours`]: each thread handles four consecutive elements, moving contiguous 16-
    /// and 32-bit values with one 8- or 16-byte access (other types one by one); a strided
    /// input's offset is found once per four elements and stepped along the innermost axis.
    /// The last `n mod 4` elements go one by one.
    pub(super) fn fours_body(&self) -> String {
        let k = self.inputs.len();
        let code = self.code();
        let mut body = self.kernel_head();
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
        for (o, v) in code.outs.iter().enumerate() {
            let _ = writeln!(body, "      y{o}[u] = {v};");
        }
        body.push_str("    }\n");
        for (o, (_, d)) in self.outs.iter().enumerate() {
            body.push_str(&four_stores(*d, "    ", &format!("out{o} + i0"), &|u| {
                format!("y{o}[{u}]")
            }));
        }
        body.push_str("  }\n  for (long long i = (groups << 2) + (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {\n");
        self.read_inputs(&mut body, "    ", &|j| format!("const real x{j}"), true);
        for (o, ((_, d), v)) in self.outs.iter().zip(&code.outs).enumerate() {
            let _ = writeln!(body, "    out{o}[i] = {};", store(*d, v));
        }
        body.push_str("  }\n}\n");
        body
    }

    /// [`Walk::Elements`]: each thread handles [`ELEM_UNROLL`] elements a block apart,
    /// loading all of them before computing any, so that several loads per thread are in
    /// flight at once (one 16-bit load per thread at a time leaves most of the memory
    /// bandwidth unused).
    pub(super) fn elements_body(&self) -> String {
        let k = self.inputs.len();
        let raw = self.raw();
        let mut body = self.kernel_head();
        let _ = writeln!(
            body,
            "  const long long step = (long long)gridDim.x * blockDim.x * {ELEM_UNROLL};\n  for (long long first = (long long)blockIdx.x * blockDim.x * {ELEM_UNROLL} + threadIdx.x; first < n; first += step) {{"
        );
        if raw {
            let _ = writeln!(body, "    {} r0[{ELEM_UNROLL}];", c_type(self.inputs[0].0));
        } else {
            for j in 0..k {
                let _ = writeln!(body, "    real r{j}[{ELEM_UNROLL}];");
            }
        }
        let each = format!(
            "#pragma unroll\n    for (int u = 0; u < {ELEM_UNROLL}; ++u) {{\n      const long long i = first + (long long)u * blockDim.x;\n      if (i >= n) break;\n"
        );
        body.push_str(&each);
        if raw {
            self.read_inputs(&mut body, "      ", &|_| "r0[u]".into(), false);
        } else {
            self.read_inputs(&mut body, "      ", &|j| format!("r{j}[u]"), true);
        }
        body.push_str("    }\n");
        body.push_str(&each);
        if raw {
            body.push_str("      out0[i] = r0[u];\n");
        } else {
            for j in 0..k {
                let _ = writeln!(body, "      const real x{j} = r{j}[u];");
            }
            for (o, ((_, d), v)) in self.outs.iter().zip(self.code().outs).enumerate() {
                let _ = writeln!(body, "      const real v{o} = {v};");
                let _ = writeln!(body, "      out{o}[i] = {};", store(*d, &format!("v{o}")));
            }
        }
        body.push_str("    }\n  }\n}\n");
        body
    }
}

impl Spec {
    /// [`Walk::Mask`]: one key per launch from the stream and the counter, then each element
    /// kept or zeroed by its own draw (`tl_core::random`, the same function as the CPU's).
    pub(super) fn mask_body(&self) -> String {
        let w = self.walk_at();
        let code = self.code();
        let d = self.outs.first().map_or(DType::F32, |(_, d)| *d);
        let kept = code
            .outs
            .first()
            .cloned()
            .unwrap_or_else(|| "(real)1".into());
        let mut body = self.kernel_head();
        let _ = writeln!(
            body,
            "  const unsigned long long key = tl_mask_key((unsigned long long)m.v[{w}], (unsigned long long)in0[0]);
  const double p = __longlong_as_double(m.v[{}]);
  const real kept = {kept};",
            w + 1
        );
        let _ = writeln!(
            body,
            "  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {{
    out0[i] = tl_kept(key, (unsigned long long)i, p) ? {} : {};
  }}
}}",
            store(d, "kept"),
            store(d, "(real)0")
        );
        body
    }
}

/// Code storing four consecutive `real` values (`value(u)`) as `d` from address `at` on: one
/// 8-byte (16-bit types) or 16-byte (f32) store, else one by one.
pub(super) fn four_stores(
    d: DType,
    pad: &str,
    at: &str,
    value: &dyn Fn(usize) -> String,
) -> String {
    match d {
        DType::F16 | DType::BF16 => {
            let h = |u: usize| format!("(unsigned int){}", store(d, &value(u)));
            format!(
                "{pad}{{ uint2 w; w.x = {} | ({} << 16); w.y = {} | ({} << 16); *(uint2*)({at}) = w; }}\n",
                h(0),
                h(1),
                h(2),
                h(3)
            )
        }
        DType::F32 => format!(
            "{pad}*(float4*)({at}) = make_float4((float)({}), (float)({}), (float)({}), (float)({}));\n",
            value(0),
            value(1),
            value(2),
            value(3)
        ),
        _ => (0..4)
            .map(|u| format!("{pad}({at})[{u}] = {};\n", store(d, &value(u))))
            .collect(),
    }
}
