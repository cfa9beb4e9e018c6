//! Contractions checked against a naive float64 einsum loop.

use super::fixtures::*;
use super::CpuBackend;
use crate::dtype::DType;
use crate::error::{BackendError, Result};
use crate::tensor::{DeviceStorage, Layout, Storage, Tensor};
use crate::Calls;
use proptest::prelude::{any, prop_assert, proptest, ProptestConfig};
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One operand of a reference einsum: logical data, shape and labels.
struct Spec<'a> {
    data: &'a [f64],
    shape: &'a [usize],
    labels: &'a [u32],
}

/// The float64 einsum by brute force over every assignment of every label.
fn naive(a: &Spec, b: &Spec, out: &[u32]) -> (Vec<f64>, Vec<usize>) {
    let mut ext: BTreeMap<u32, usize> = BTreeMap::new();
    for s in [a, b] {
        for (&l, &n) in s.labels.iter().zip(s.shape) {
            ext.insert(l, n);
        }
    }
    let labels: Vec<u32> = ext.keys().copied().collect();
    let extents: Vec<usize> = labels.iter().map(|l| ext[l]).collect();
    let oshape: Vec<usize> = out.iter().map(|l| ext[l]).collect();
    let mut res = vec![0.0; oshape.iter().product()];
    let total: usize = extents.iter().product();
    let pos = |l: &u32| labels.iter().position(|x| x == l).unwrap_or(0);
    let pick = |s: &Spec, idx: &[usize]| {
        let i: Vec<usize> = s.labels.iter().map(|l| idx[pos(l)]).collect();
        s.data[ravel(&i, s.shape)]
    };
    for f in 0..total {
        let idx = unravel(f, &extents);
        let o: Vec<usize> = out.iter().map(|l| idx[pos(l)]).collect();
        res[ravel(&o, &oshape)] += pick(a, &idx) * pick(b, &idx);
    }
    (res, oshape)
}

/// Runs one contraction on random data (optionally through permuted storage) and checks it.
#[allow(clippy::too_many_arguments)]
fn case(
    rng: &mut Rng,
    ashape: &[usize],
    al: &[u32],
    bshape: &[usize],
    bl: &[u32],
    out: &[u32],
    dtype: DType,
    permute: bool,
) -> Result<()> {
    let be = CpuBackend::new();
    let ad = rng.values(ashape.iter().product(), dtype);
    let bd = rng.values(bshape.iter().product(), dtype);
    let (a, b) = if permute {
        let pa = rng.perm(ashape.len());
        let pb = rng.perm(bshape.len());
        (
            permuted_view(ashape, &ad, dtype, &pa),
            permuted_view(bshape, &bd, dtype, &pb),
        )
    } else {
        (tensor(ashape, &ad, dtype), tensor(bshape, &bd, dtype))
    };
    let got = be.contract(&a, al, &b, bl, out)?;
    assert_eq!(got.dtype, dtype.compute());
    let (gshape, gv) = fetch(&be, &got)?;
    let sa = Spec {
        data: &ad,
        shape: ashape,
        labels: al,
    };
    let sb = Spec {
        data: &bd,
        shape: bshape,
        labels: bl,
    };
    let (want, wshape) = naive(&sa, &sb, out);
    assert_eq!(gshape, wshape);
    let aa: Vec<f64> = ad.iter().map(|x| x.abs()).collect();
    let ba: Vec<f64> = bd.iter().map(|x| x.abs()).collect();
    let scale = naive(&Spec { data: &aa, ..sa }, &Spec { data: &ba, ..sb }, out).0;
    let what = format!("{al:?},{bl:?}->{out:?} {ashape:?} {bshape:?}");
    check_scaled(&what, &gv, &want, &scale, dtype);
    Ok(())
}

#[test]
fn matmul_shapes() -> Result<()> {
    let mut rng = Rng::new(1);
    for dtype in [DType::F32, DType::F64] {
        for &(m, k, n) in &[
            (1, 1, 1),
            (7, 1, 129),
            (129, 7, 1),
            (7, 129, 7),
            (1, 129, 129),
            (65, 33, 17),
            (150, 20, 60),
            (60, 20, 150),
        ] {
            for permute in [false, true] {
                case(
                    &mut rng,
                    &[m, k],
                    &[0, 1],
                    &[k, n],
                    &[1, 2],
                    &[0, 2],
                    dtype,
                    permute,
                )?;
                case(
                    &mut rng,
                    &[m, k],
                    &[0, 1],
                    &[k, n],
                    &[1, 2],
                    &[2, 0],
                    dtype,
                    permute,
                )?;
            }
        }
    }
    Ok(())
}

#[test]
fn special_forms() -> Result<()> {
    let mut rng = Rng::new(2);
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        // batched matmul, attention scores, bilinear, outer, dot, scalars
        case(
            &mut rng,
            &[3, 7, 5],
            &[0, 1, 2],
            &[3, 5, 9],
            &[0, 2, 3],
            &[0, 1, 3],
            dtype,
            true,
        )?;
        case(
            &mut rng,
            &[2, 7, 4],
            &[0, 1, 3],
            &[2, 5, 4],
            &[0, 2, 3],
            &[0, 1, 2],
            dtype,
            false,
        )?;
        case(
            &mut rng,
            &[129],
            &[0],
            &[129, 7],
            &[0, 1],
            &[1],
            dtype,
            false,
        )?;
        case(&mut rng, &[7], &[0], &[9], &[1], &[0, 1], dtype, false)?;
        case(&mut rng, &[129], &[0], &[129], &[0], &[], dtype, false)?;
        case(&mut rng, &[], &[], &[], &[], &[], dtype, false)?;
        case(&mut rng, &[], &[], &[7, 3], &[0, 1], &[1, 0], dtype, false)?;
        // labels in one operand only, summed first; output in mixed order
        case(
            &mut rng,
            &[4, 7, 3],
            &[0, 1, 2],
            &[3, 5, 6],
            &[2, 3, 4],
            &[3, 0],
            dtype,
            true,
        )?;
        // batch label last in the output, m and n interleaved
        case(
            &mut rng,
            &[3, 4, 5],
            &[0, 1, 2],
            &[5, 6, 3],
            &[2, 4, 0],
            &[4, 1, 0],
            dtype,
            true,
        )?;
        case(
            &mut rng,
            &[2, 3, 4, 5],
            &[0, 1, 2, 3],
            &[3, 5, 2],
            &[1, 3, 4],
            &[0, 4, 2],
            dtype,
            true,
        )?;
    }
    Ok(())
}

#[test]
fn broadcast_and_mixed_inputs() -> Result<()> {
    let be = CpuBackend::new();
    let mut rng = Rng::new(3);
    let (a, ad) = broadcast_view(&mut rng, &[5, 7, 6], &[1], DType::F32);
    let bd = rng.values(6 * 4, DType::F64);
    let b = tensor(&[6, 4], &bd, DType::F64);
    let got = be.contract(&a, &[0, 1, 2], &b, &[2, 3], &[1, 0, 3])?;
    assert_eq!(got.dtype, DType::F64);
    let sa = Spec {
        data: &ad,
        shape: &[5, 7, 6],
        labels: &[0, 1, 2],
    };
    let sb = Spec {
        data: &bd,
        shape: &[6, 4],
        labels: &[2, 3],
    };
    let (want, _) = naive(&sa, &sb, &[1, 0, 3]);
    let scale: Vec<f64> = want.iter().map(|_| 1.0).collect();
    check_scaled("broadcast", &fetch(&be, &got)?.1, &want, &scale, DType::F64);
    Ok(())
}

#[test]
fn empty_extents_give_zeros() -> Result<()> {
    let be = CpuBackend::new();
    let a = tensor(&[3, 0], &[], DType::F32);
    let b = tensor(&[0, 2], &[], DType::F32);
    let (shape, v) = fetch(&be, &be.contract(&a, &[0, 1], &b, &[1, 2], &[0, 2])?)?;
    assert_eq!(shape, vec![3, 2]);
    assert!(v.iter().all(|&x| x == 0.0));
    let (shape, v) = fetch(&be, &be.contract(&b, &[1, 2], &a, &[0, 1], &[2, 1])?)?;
    assert_eq!((shape, v.len()), (vec![2, 0], 0));
    Ok(())
}

#[derive(Debug)]
struct Elsewhere;
impl DeviceStorage for Elsewhere {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[test]
fn bad_inputs_are_errors() {
    let be = CpuBackend::new();
    let a = tensor(&[3, 4], &[1.0; 12], DType::F32);
    let b = tensor(&[5, 2], &[1.0; 10], DType::F32);
    let shape_err = |r: Result<Tensor>| matches!(r, Err(BackendError::Shape { .. }));
    assert!(shape_err(be.contract(&a, &[0, 1], &b, &[1, 2], &[0, 2])));
    assert!(shape_err(be.contract(&a, &[0], &b, &[1, 2], &[0, 2])));
    assert!(shape_err(be.contract(&a, &[0, 0], &b, &[1, 2], &[1])));
    assert!(shape_err(be.contract(&a, &[0, 1], &b, &[2, 3], &[9])));
    let mut oob = a.clone();
    oob.layout = Layout {
        shape: vec![4, 4],
        strides: vec![4, 1],
        offset: 0,
    };
    assert!(shape_err(be.contract(&oob, &[0, 1], &b, &[2, 3], &[0])));
    let dev = Tensor {
        layout: Layout::contiguous(&[3, 4]),
        dtype: DType::F32,
        storage: Storage::Device(Arc::new(Elsewhere)),
    };
    let r = be.contract(&dev, &[0, 1], &a, &[0, 1], &[]);
    assert!(matches!(r, Err(BackendError::Device(_))));
}

/// A random einsum: labels 0..L with extents 1–9, 1–4 axes per operand, any output subset.
fn random_case(seed: u64) -> Result<()> {
    let mut rng = Rng::new(seed);
    let nl = 1 + rng.below(6);
    let ext: Vec<usize> = (0..nl).map(|_| 1 + rng.below(9)).collect();
    let pick = |rng: &mut Rng| -> Vec<u32> {
        let k = 1 + rng.below(4.min(nl));
        rng.perm(nl)[..k].iter().map(|&l| l as u32).collect()
    };
    let al = pick(&mut rng);
    let bl = pick(&mut rng);
    let mut union: Vec<u32> = al.clone();
    union.extend(bl.iter().filter(|l| !al.contains(l)));
    let p = rng.perm(union.len());
    let no = rng.below(union.len() + 1);
    let out: Vec<u32> = p[..no].iter().map(|&i| union[i]).collect();
    let shape = |ls: &[u32]| -> Vec<usize> { ls.iter().map(|&l| ext[l as usize]).collect() };
    let dtype = if rng.below(2) == 0 {
        DType::F32
    } else {
        DType::F64
    };
    let permute = rng.below(2) == 0;
    case(
        &mut rng,
        &shape(&al),
        &al,
        &shape(&bl),
        &bl,
        &out,
        dtype,
        permute,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn random_einsums_match_naive(seed in any::<u64>()) {
        prop_assert!(random_case(seed).is_ok());
    }
}
