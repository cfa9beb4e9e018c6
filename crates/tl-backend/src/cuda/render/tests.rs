use super::*;
use crate::cuda::codegen::{
    cache_key, coalesce, dialect, gather_source, non_finite_source, scatter_finish_source,
    scatter_source,
};
use crate::ops::{BinaryFn, NormFn, UnaryFn};

fn sig(expr: MapExpr, inputs: Vec<(DType, Access)>, out: DType, rank: usize) -> Spec {
    Spec {
        real: Real::of(out),
        outs: vec![(expr, out)],
        inputs,
        rank,
        walk: Walk::Elements,
    }
}

/// `spec` walked by `walk`.
fn walked(spec: &Spec, walk: Walk) -> Spec {
    Spec {
        walk,
        ..spec.clone()
    }
}

/// A fold of one stored array, as the backend launches it.
fn stored_fold(op: ReduceOp, real: Real, storage: DType, layout: FoldLayout) -> String {
    Spec::stored_fold(op, real, storage, layout)
        .source()
        .unwrap_or_default()
}

/// A softmax or layer norm of `value` (over `inputs`) along rows, as the backend launches it.
fn normalize(func: NormFn, value: &Spec, block: bool, cached: usize, wide: bool) -> Spec {
    let (reductions, out) = func.as_rows();
    Spec {
        outs: vec![(out, value.outs[0].1)],
        walk: Walk::Rows(RowWalk {
            values: vec![value.outs[0].0.clone()],
            reductions,
            block,
            cached,
            wide,
        }),
        ..value.clone()
    }
}

#[test]
fn map_source_splices_the_op_table() {
    use MapExpr::*;
    let e = Binary(
        BinaryFn::Add,
        Box::new(Unary(UnaryFn::Gelu, Box::new(Input(0)))),
        Box::new(Binary(
            BinaryFn::Pow,
            Box::new(Input(1)),
            Box::new(Const(-2.5)),
        )),
    );
    let s = sig(
        e.clone(),
        vec![
            (DType::F32, Access::Contiguous),
            (DType::F16, Access::Strided),
        ],
        DType::BF16,
        2,
    );
    let src = s.source().unwrap_or_default();
    assert!(src.contains("typedef float real;"));
    assert!(src.contains("tl_gelu(") && src.contains("tl_erfc(float x)"));
    assert!(src.contains("tl_pow(x1, c0)"));
    assert!(src.contains("const real c0 = (real)__longlong_as_double(m.v[10]);"));
    assert!(src.contains("r0[u] = (real)(in0[i]);"), "{src}");
    assert!(src.contains("r1[u] = (real)tl_h2f(in1[o1]);"));
    assert!(src.contains("const real x1 = r1[u];"));
    assert!(src.contains("out0[i] = tl_f2bf((float)(v0));"));
    assert!(src.contains("struct TlMeta { long long v[16]; };"));
    for f in [
        "tl_pow",
        "tl_sig_t",
        "tl_sig_t_grad_a",
        "tl_sig_t_grad_t",
        "tl_gelu_grad",
    ] {
        assert!(src.contains(&format!("real {f}(")), "{f} missing");
    }
    // Two axes, one strided input: digits of i times its strides.
    assert!(
        src.contains("o1 += (long long)c * m.v[8];")
            && src.contains("o1 += (long long)c * m.v[9];")
    );
    assert!(src.contains("unsigned int rem = (unsigned int)i;"));
    assert!(src.contains("long long rem = (long long)i;"));
    assert_eq!(s.meta_len(), 2 + 2 + 2 + 2 + 2 + 1);
    let meta = s.meta(10, &[100], &[200, 300], &[2, 5], &[vec![1, 2]]);
    let c = (-2.5f64).to_bits() as i64;
    let (d2, d5) = (divisor(2), divisor(5));
    assert_eq!(meta, vec![10, 100, 200, 300, 2, 5, d2, d5, 1, 2, c]);
    // Another constant: the same kernel.
    let mut other = s.clone();
    other.outs[0].0 = MapExpr::Binary(
        BinaryFn::Add,
        Box::new(MapExpr::Unary(UnaryFn::Gelu, Box::new(MapExpr::Input(0)))),
        Box::new(MapExpr::Binary(
            BinaryFn::Pow,
            Box::new(MapExpr::Input(1)),
            Box::new(MapExpr::Const(3.0)),
        )),
    );
    assert_eq!(other.source(), s.source());

    let d = sig(
        e,
        vec![
            (DType::F64, Access::Scalar),
            (DType::F64, Access::Contiguous),
        ],
        DType::F64,
        1,
    );
    let src = d.source().unwrap_or_default();
    assert!(src.contains("typedef double real;"));
    assert!(
        src.contains("tl_erfc(double x) { return erfc(x); }"),
        "{src}"
    );
    assert!(!src.contains("erfcf(") && !src.contains("expf("));
    assert!(src.contains("tl_pow(x1, c0)"));
    assert!(src.contains("r0[u] = (real)(in0[0])"));
    // Conversions stay in float.
    assert!(src.contains("cvt.rn.f16.f32"));
}

#[test]
fn several_outputs_share_one_pass_and_number_constants_in_order() {
    let two = Spec {
        outs: vec![
            (
                MapExpr::Binary(
                    BinaryFn::Mul,
                    Box::new(MapExpr::Input(0)),
                    Box::new(MapExpr::Const(0.5)),
                ),
                DType::F32,
            ),
            (
                MapExpr::Binary(
                    BinaryFn::Add,
                    Box::new(MapExpr::Input(1)),
                    Box::new(MapExpr::Const(2.0)),
                ),
                DType::BF16,
            ),
        ],
        inputs: vec![
            (DType::F32, Access::Contiguous),
            (DType::F32, Access::Contiguous),
        ],
        real: Real::F32,
        rank: 1,
        walk: Walk::Elements,
    };
    let src = two.source().unwrap_or_default();
    assert!(src.contains("float* out0 = (float*)m.v[1];"), "{src}");
    assert!(src.contains("unsigned short* out1 = (unsigned short*)m.v[2];"));
    assert!(src.contains("const float* in0 = (const float*)m.v[3];"));
    assert!(src.contains("const real v0 = ((x0)*(c0));"), "{src}");
    assert!(src.contains("const real v1 = ((x1)+(c1));"), "{src}");
    assert!(src.contains("out1[i] = tl_f2bf((float)(v1));"));
    let meta = two.meta(7, &[10, 11], &[20, 21], &[7], &[]);
    assert_eq!(
        meta,
        vec![
            7,
            10,
            11,
            20,
            21,
            7,
            divisor(7),
            0.5f64.to_bits() as i64,
            2.0f64.to_bits() as i64
        ]
    );
    assert_eq!(two.meta_len(), meta.len());
}

#[test]
fn raw_copy_and_bool_store() {
    let s = sig(
        MapExpr::Input(0),
        vec![(DType::I64, Access::Strided)],
        DType::I64,
        3,
    );
    let src = s.source().unwrap_or_default();
    assert!(src.contains("r0[u] = in0[o0];") && src.contains("out0[i] = r0[u];"));
    let b = sig(
        MapExpr::Unary(UnaryFn::Step, Box::new(MapExpr::Input(0))),
        vec![(DType::Bool, Access::Contiguous)],
        DType::Bool,
        1,
    );
    let src = b.source().unwrap_or_default();
    assert!(src.contains("((x0) > 0.0f ? 1.0f : 0.0f)"));
    assert!(src.contains("(unsigned char)((v0) != (real)0)"));
}

#[test]
fn dialect_rewrites_names_and_literals_only() {
    let f = "expf(1.5f) + fmaxf(x, 2e-5f) + 0x7fffu + 3.0F + tl_expf_like + 7";
    assert_eq!(
        dialect(f, Real::F64),
        "exp(1.5) + fmax(x, 2e-5) + 0x7fffu + 3.0 + tl_expf_like + 7"
    );
    assert_eq!(dialect(f, Real::F32), f);
}

const FOLD_LAYOUTS: [FoldLayout; 4] = [
    FoldLayout::PerThread,
    FoldLayout::Warp,
    FoldLayout::Block,
    FoldLayout::Column,
];

#[test]
fn folds_rows_and_templates_generate() {
    for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
        for real in [Real::F32, Real::F64] {
            for layout in FOLD_LAYOUTS {
                let s = stored_fold(op, real, real.dtype(), layout);
                assert!(s.contains("tl_kernel"));
                if op == ReduceOp::Max {
                    assert_eq!(real == Real::F32, s.contains("fmaxf("));
                }
            }
            let s = scatter_source(op, real);
            assert!(s.contains("atomic"));
            let _ = scatter_finish_source(op, real);
        }
    }
    let split = stored_fold(ReduceOp::Mean, Real::F32, DType::F32, FoldLayout::Block);
    assert!(split.contains("(real)(a / (double)count)"));
    assert!(split.contains("const long long start = (q % chunks) * len;"));
    let warp = stored_fold(ReduceOp::Sum, Real::F32, DType::BF16, FoldLayout::Warp);
    assert!(warp.contains("const long long i = row * r + jj;"), "{warp}");
    assert!(
        warp.contains("const real x0 = (real)tl_bf2f(in0[i]);"),
        "{warp}"
    );
    assert!(warp.contains("a = (a) + ((double)(x0));"), "{warp}");
    assert!(warp.contains("__shfl_xor_sync"));
    let col = stored_fold(ReduceOp::Max, Real::F32, DType::F16, FoldLayout::Column);
    assert!(
        col.contains("const long long i = jj * cols + col;"),
        "{col}"
    );
    // Softmax and layer norm are row walks over their `as_rows` form: no code of their own.
    let x = sig(
        MapExpr::Input(0),
        vec![(DType::F64, Access::Contiguous)],
        DType::F64,
        1,
    );
    let n = normalize(NormFn::LayerNorm, &x, true, 0, false)
        .source()
        .unwrap_or_default();
    assert!(n.contains("sh[threadIdx.x] = acc0;") && n.contains("acc1 / (real)len"));
    assert!(n.contains("(1.0/(sqrt(((x2)+(c0)))))"), "{n}");
    let bf = sig(
        MapExpr::Input(0),
        vec![(DType::BF16, Access::Strided)],
        DType::BF16,
        2,
    );
    let n = normalize(NormFn::Softmax, &bf, false, 0, false)
        .source()
        .unwrap_or_default();
    assert!(
        n.contains("const real l0 = (real)tl_bf2f(in0[ob0 + j * st0]);"),
        "{n}"
    );
    assert!(n.contains("acc0 = fmaxf(acc0, (x0));"), "{n}");
    assert!(n.contains("expf(((x0)-(x1)))"), "{n}");
    assert!(n.contains("__shfl_xor_sync") && n.contains("unsigned short* out0"));
    let kept = normalize(NormFn::Softmax, &bf, false, 8, false)
        .source()
        .unwrap_or_default();
    assert!(kept.contains("real val0[8];") && kept.contains("const real x0 = val0[u];"));
    assert!(gather_source(DType::Bool).contains("unsigned char* out"));
}

#[test]
fn divisors_divide_like_the_hardware_would() {
    let mut seed = 12345u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for e in [
        1usize,
        2,
        3,
        5,
        7,
        128,
        129,
        1000,
        12288,
        65535,
        65536,
        1 << 30,
        (1 << 31) - 1,
    ] {
        let w = divisor(e) as u64;
        let (mult, shift) = (w & 0xffff_ffff, w >> 32);
        let check = |x: u64| {
            let hi = (x * mult) >> 32;
            let q = (hi + x) >> shift;
            assert_eq!(q, x / e as u64, "{x} / {e}");
        };
        for x in [0u64, 1, e as u64 - 1, e as u64, e as u64 + 1, (1 << 31) - 1] {
            check(x);
        }
        for _ in 0..2000 {
            check(next() % (1 << 31));
        }
    }
}

#[test]
fn coalescing_merges_walkable_axes() {
    // A contiguous [2, 3, 4] with a contiguous output: one axis.
    let (s, st) = coalesce(&[2, 3, 4], &[vec![12, 4, 1], vec![12, 4, 1]]);
    assert_eq!((s, st), (vec![24], vec![vec![1], vec![1]]));
    // A transposed input keeps two axes; extent-1 axes vanish.
    let (s, st) = coalesce(&[3, 1, 4], &[vec![4, 4, 1], vec![1, 7, 3]]);
    assert_eq!((s, st), (vec![3, 4], vec![vec![4, 1], vec![1, 3]]));
    // A broadcast axis merges with another broadcast one.
    let (s, st) = coalesce(&[2, 3, 4], &[vec![12, 4, 1], vec![0, 0, 1]]);
    assert_eq!((s, st), (vec![6, 4], vec![vec![4, 1], vec![0, 1]]));
    let (s, _) = coalesce(&[1, 1], &[vec![1, 1]]);
    assert!(s.is_empty());
}

#[test]
fn launch_keys_ignore_constant_values_only() {
    let sig = |expr: MapExpr, out: DType| Spec {
        outs: vec![(expr, out)],
        inputs: vec![(DType::F32, Access::Contiguous)],
        real: Real::F32,
        rank: 1,
        walk: Walk::Elements,
    };
    let scaled = |c: f64| {
        MapExpr::Binary(
            BinaryFn::Mul,
            Box::new(MapExpr::Input(0)),
            Box::new(MapExpr::Const(c)),
        )
    };
    let a = sig(scaled(0.5), DType::F32);
    assert_eq!(a.key(), sig(scaled(-3.0), DType::F32).key());
    assert_eq!(a.source(), sig(scaled(-3.0), DType::F32).source());
    assert_ne!(a.key(), sig(scaled(0.5), DType::F16).key());
    let added = MapExpr::Binary(
        BinaryFn::Add,
        Box::new(MapExpr::Input(0)),
        Box::new(MapExpr::Const(0.5)),
    );
    assert_ne!(a.key(), sig(added, DType::F32).key());
    // The walk is part of the kernel.
    assert_ne!(a.key(), walked(&a, Walk::Fours).key());
    let fold = |op| Walk::Fold {
        op,
        layout: FoldLayout::Warp,
    };
    assert_ne!(
        walked(&a, fold(ReduceOp::Sum)).key(),
        walked(&a, fold(ReduceOp::Max)).key()
    );
    let soft = normalize(NormFn::Softmax, &a, false, 0, false);
    assert_ne!(
        soft.key(),
        normalize(NormFn::Softmax, &a, false, 4, false).key()
    );
    assert_ne!(
        soft.key(),
        normalize(NormFn::LayerNorm, &a, false, 0, false).key()
    );
}

#[test]
fn cache_keys_depend_on_source_and_target() {
    let a = cache_key("kernel", "compute_90");
    assert_eq!(a, cache_key("kernel", "compute_90"));
    assert_ne!(a, cache_key("kernel", "compute_80"));
    assert_ne!(a, cache_key("kernel2", "compute_90"));
    assert_ne!(cache_key("ab", "c"), cache_key("a", "bc"));
    assert_eq!(meta_cap(10), Some(16));
    assert_eq!(meta_cap(100), Some(480));
    assert_eq!(meta_cap(481), None);
}

/// Every kind of generated kernel, in every type it is generated for.
fn every_source() -> Vec<(String, String)> {
    use ReduceOp::{Max, Mean, Min, Sum};
    let (unary, binary) = (UnaryFn::ALL, BinaryFn::ALL);
    // One expression using every function, over four inputs and a constant.
    let mut expr = MapExpr::Input(0);
    for (k, f) in unary.iter().enumerate() {
        expr = MapExpr::Unary(*f, Box::new(expr));
        let b = binary[k % binary.len()];
        let other = if k % 3 == 0 {
            MapExpr::Const(0.5)
        } else {
            MapExpr::Input(1 + k % 3)
        };
        expr = MapExpr::Binary(b, Box::new(expr), Box::new(other));
    }
    let floats = [DType::F32, DType::F64, DType::F16, DType::BF16];
    let mut out = crate::cuda::paths::example_sources();
    out.extend(crate::cuda::closure::example_sources());
    for out_t in [DType::F32, DType::F64, DType::F16, DType::BF16, DType::Bool] {
        let inputs = vec![
            (DType::F16, Access::Contiguous),
            (DType::BF16, Access::Strided),
            (DType::Bool, Access::Scalar),
            (out_t, Access::Strided),
        ];
        let e = sig(expr.clone(), inputs, out_t, 3);
        out.push((format!("map -> {out_t}"), e.source().unwrap_or_default()));
        let mask = Spec {
            outs: vec![(MapExpr::Const(1.25), out_t)],
            inputs: vec![(DType::F64, Access::Scalar)],
            real: Real::of(out_t),
            rank: 1,
            walk: Walk::Mask,
        };
        out.push((format!("mask {out_t}"), mask.source().unwrap_or_default()));
        let copy = sig(MapExpr::Input(0), vec![(out_t, Access::Strided)], out_t, 2);
        out.push((format!("copy {out_t}"), copy.source().unwrap_or_default()));
        let mut many = sig(expr.clone(), e.inputs.clone(), out_t, 3);
        many.outs.push((MapExpr::Input(3), DType::F32));
        many.outs.push((
            MapExpr::Unary(UnaryFn::Exp, Box::new(MapExpr::Input(1))),
            out_t,
        ));
        out.push((
            format!("three outputs {out_t}"),
            many.source().unwrap_or_default(),
        ));
        let mut flat = many.clone();
        for (_, a) in flat.inputs.iter_mut() {
            if *a == Access::Strided {
                *a = Access::Contiguous;
            }
        }
        out.push((
            format!("three outputs, four at a time {out_t}"),
            walked(&flat, Walk::Fours).source().unwrap_or_default(),
        ));
        out.push((
            format!("three outputs, four at a time, strided {out_t}"),
            walked(&many, Walk::Fours).source().unwrap_or_default(),
        ));
        if out_t != DType::Bool {
            for func in [NormFn::Softmax, NormFn::LayerNorm] {
                for (block, cached, wide) in [
                    (true, 0, false),
                    (false, 0, false),
                    (false, 4, false),
                    (false, 8, true),
                ] {
                    out.push((
                        format!("normalize {func:?} {out_t} {block} {cached} {wide}"),
                        normalize(func, &e, block, cached, wide)
                            .source()
                            .unwrap_or_default(),
                    ));
                }
            }
            let red = sig(expr.clone(), e.inputs.clone(), Real::of(out_t).dtype(), 3);
            for op in [Sum, Mean, Max, Min] {
                for layout in FOLD_LAYOUTS {
                    let fold = walked(&red, Walk::Fold { op, layout });
                    out.push((
                        format!("map_reduce {op:?} {out_t} {layout:?}"),
                        fold.source().unwrap_or_default(),
                    ));
                }
            }
            // A layer norm written by hand: the inputs are the values, two reductions.
            let centred = MapExpr::Binary(
                BinaryFn::Sub,
                Box::new(MapExpr::Input(0)),
                Box::new(MapExpr::Input(4)),
            );
            let square = MapExpr::Binary(
                BinaryFn::Mul,
                Box::new(centred.clone()),
                Box::new(centred.clone()),
            );
            let scaled = MapExpr::Binary(
                BinaryFn::Mul,
                Box::new(MapExpr::Binary(
                    BinaryFn::Div,
                    Box::new(centred),
                    Box::new(MapExpr::Unary(UnaryFn::Sqrt, Box::new(MapExpr::Input(5)))),
                )),
                Box::new(MapExpr::Input(1)),
            );
            for (block, cached, wide) in [(true, 0, false), (false, 0, false), (false, 4, true)] {
                let rows = Spec {
                    outs: vec![(scaled.clone(), out_t)],
                    walk: Walk::Rows(RowWalk {
                        values: (0..4).map(MapExpr::Input).collect(),
                        reductions: vec![(MapExpr::Input(0), Mean), (square.clone(), Max)],
                        block,
                        cached,
                        wide,
                    }),
                    ..e.clone()
                };
                out.push((
                    format!("map_rows {out_t} {block} {cached} {wide}"),
                    rows.source().unwrap_or_default(),
                ));
            }
        }
    }
    for op in [Sum, Mean, Max, Min] {
        for real in [Real::F32, Real::F64] {
            for layout in FOLD_LAYOUTS {
                for storage in floats {
                    if Real::of(storage) == real {
                        out.push((
                            format!("reduce {op:?} {real:?} {storage} {layout:?}"),
                            stored_fold(op, real, storage, layout),
                        ));
                    }
                }
            }
            out.push((format!("scatter {op:?} {real:?}"), scatter_source(op, real)));
            out.push((
                format!("scatter finish {op:?} {real:?}"),
                scatter_finish_source(op, real),
            ));
        }
    }
    for d in DType::ALL {
        let real = Real::of(if d == DType::I64 { DType::F64 } else { d });
        let fill = Spec {
            outs: vec![(MapExpr::Const(-1.0), d)],
            inputs: Vec::new(),
            real,
            rank: 1,
            walk: Walk::Elements,
        };
        out.push((format!("fill {d}"), fill.source().unwrap_or_default()));
    }
    for d in DType::ALL {
        out.push((format!("gather {d}"), gather_source(d)));
    }
    for storage in floats {
        out.push((
            format!("non-finite {storage}"),
            non_finite_source(storage, 64),
        ));
    }
    out.extend(crate::cuda::attention::sample_sources());
    out
}

/// Compiles every generated kernel with NVRTC where the library can be loaded (no GPU is
/// needed), so a kernel that does not compile is found on any machine with the CUDA
/// runtime compiler, not only at run time on a GPU.
#[test]
fn every_generated_kernel_compiles_with_nvrtc() {
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        // CI sets TL_NVRTC_REQUIRED (it installs NVRTC from PyPI), so there this cannot skip.
        assert!(
            std::env::var_os("TL_NVRTC_REQUIRED").is_none(),
            "TL_NVRTC_REQUIRED is set but NVRTC (libnvrtc.so) was not found"
        );
        eprintln!("skipped: NVRTC (libnvrtc.so) not found; set LD_LIBRARY_PATH to its folder");
        return;
    }
    for (what, src) in every_source() {
        assert!(src.contains("tl_kernel"), "{what}: no kernel");
        let opts = cudarc::nvrtc::CompileOptions {
            options: vec!["--gpu-architecture=compute_90".into()],
            ..Default::default()
        };
        if let Err(e) = cudarc::nvrtc::compile_ptx_with_opts(&src, opts) {
            let log = match e {
                cudarc::nvrtc::CompileError::CompileError { log, .. } => {
                    log.to_string_lossy().into_owned()
                }
                other => format!("{other:?}"),
            };
            panic!("{what} does not compile:\n{log}\n--- source ---\n{src}");
        }
    }
}
