use super::*;
use half::bf16;
use std::path::PathBuf;

fn tmp(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    (dir, p)
}

fn round_trip(t: &HostTensor) {
    let (_dir, p) = tmp("t.npy");
    write_npy(&p, t).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    assert_eq!((10 + header_len) % 64, 0, "data is 64-byte aligned");
    assert_eq!(&read_npy(&p).unwrap(), t);
}

#[test]
fn round_trips_every_dtype_and_odd_shapes() {
    let shapes: [&[usize]; 6] = [&[], &[1], &[7], &[3, 5], &[2, 1, 3], &[0, 4]];
    for shape in shapes {
        let n: usize = shape.iter().product();
        let vals: Vec<f64> = (0..n).map(|i| i as f64 * 0.5 - 3.0).collect();
        for dtype in [DType::F32, DType::F64, DType::F16, DType::I64, DType::Bool] {
            round_trip(&HostTensor::from_f64(shape.to_vec(), vals.clone(), dtype));
        }
    }
    round_trip(&HostTensor {
        shape: vec![2],
        data: HostData::I64(vec![i64::MIN, i64::MAX].into()),
    });
    round_trip(&HostTensor::from_f32(
        vec![3],
        vec![f32::INFINITY, -0.0, 1e-40],
    ));
}

#[test]
fn bf16_is_refused_and_nothing_written() {
    let (_dir, p) = tmp("b.npy");
    let t = HostTensor {
        shape: vec![1],
        data: HostData::BF16(vec![bf16::ONE].into()),
    };
    let err = write_npy(&p, &t).unwrap_err();
    assert!(matches!(err, IoError::Unsupported { .. }), "{err}");
    assert!(!p.exists());
}

#[test]
fn inconsistent_tensor_is_a_write_error() {
    let (_dir, p) = tmp("bad.npy");
    let t = HostTensor::from_f32(vec![2, 2], vec![1.0]);
    assert!(matches!(write_npy(&p, &t), Err(IoError::Write { .. })));
    assert!(!p.exists());
}

/// Builds a v1 `.npy` file from a header dict and raw data bytes.
fn npy_bytes(major: u8, header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    h.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend([major, 0]);
    if major == 1 {
        out.extend((h.len() as u16).to_le_bytes());
    } else {
        out.extend((h.len() as u32).to_le_bytes());
    }
    out.extend(h.as_bytes());
    out.extend(data);
    out
}

fn parse(bytes: &[u8]) -> Result<HostTensor, IoError> {
    parse_npy(Path::new("x.npy"), bytes)
}

#[test]
fn fortran_order_is_transposed() {
    // Column-major 2x3 [[1,2,3],[4,5,6]] is stored 1,4,2,5,3,6.
    let data: Vec<u8> = [1i32, 4, 2, 5, 3, 6]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let h = "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }";
    let t = parse(&npy_bytes(1, h, &data)).unwrap();
    assert_eq!(t.shape, vec![2, 3]);
    assert_eq!(t.data, HostData::I64(vec![1, 2, 3, 4, 5, 6].into()));
}

#[test]
fn fortran_3d_matches_index_formula() {
    let shape = [2usize, 3, 4];
    let src: Vec<usize> = (0..24).collect();
    let out = fortran_to_c(&src, &shape);
    for i in 0..2 {
        for j in 0..3 {
            for k in 0..4 {
                assert_eq!(out[(i * 3 + j) * 4 + k], i + 2 * j + 6 * k);
            }
        }
    }
}

#[test]
fn versions_two_and_three_and_big_endian() {
    let data: Vec<u8> = [1.5f64, -2.0]
        .iter()
        .flat_map(|x| x.to_be_bytes())
        .collect();
    for major in [2, 3] {
        let h = "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }";
        let t = parse(&npy_bytes(major, h, &data)).unwrap();
        assert_eq!(t.data, HostData::F64(vec![1.5, -2.0].into()));
    }
}

#[test]
fn integer_and_bool_kinds_widen() {
    let cases: [(&str, Vec<u8>, HostData); 5] = [
        ("|i1", vec![0xff, 0x7f], HostData::I64(vec![-1, 127].into())),
        ("|u1", vec![0xff, 0x00], HostData::I64(vec![255, 0].into())),
        (
            "<u2",
            vec![0xff, 0xff, 1, 0],
            HostData::I64(vec![65535, 1].into()),
        ),
        (
            "<u4",
            vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
            HostData::I64(vec![4294967295, 0].into()),
        ),
        ("|b1", vec![1, 0], HostData::Bool(vec![1, 0].into())),
    ];
    for (descr, data, want) in cases {
        let h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2,), }}");
        assert_eq!(
            parse(&npy_bytes(1, &h, &data)).unwrap().data,
            want,
            "{descr}"
        );
    }
    let h = "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }";
    let err = parse(&npy_bytes(1, h, &u64::MAX.to_le_bytes())).unwrap_err();
    assert!(matches!(err, IoError::Unsupported { .. }), "{err}");
}

#[test]
fn malformed_files_give_errors() {
    let good = npy_bytes(
        1,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
        &[0; 8],
    );
    assert!(parse(&good).is_ok());
    // Every truncation of a valid file is an error, never a panic.
    for cut in 0..good.len() {
        let err = parse(&good[..cut]).unwrap_err();
        assert!(matches!(err, IoError::Malformed { .. }), "cut {cut}: {err}");
    }
    let mut bad_magic = good.clone();
    bad_magic[1] = b'X';
    assert!(parse(&bad_magic).unwrap_err().to_string().contains("magic"));
    let mut bad_version = good.clone();
    bad_version[6] = 9;
    assert!(matches!(
        parse(&bad_version),
        Err(IoError::Unsupported { .. })
    ));
    // Trailing garbage after the data.
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(parse(&long), Err(IoError::Malformed { .. })));
    // Header length far beyond the file.
    let mut huge = good.clone();
    huge[8] = 0xff;
    huge[9] = 0xff;
    assert!(matches!(parse(&huge), Err(IoError::Malformed { .. })));
    let v2 = npy_bytes(
        2,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
        &[0; 4],
    );
    let mut v2_huge = v2.clone();
    v2_huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(parse(&v2_huge), Err(IoError::Malformed { .. })));
}

#[test]
fn wrong_dtype_and_overflowing_shapes() {
    for descr in ["<c8", "<U4", "|O", "<M8[ns]", "", "<f3"] {
        let h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,), }}");
        let err = parse(&npy_bytes(1, &h, &[0; 8])).unwrap_err();
        assert!(matches!(err, IoError::Unsupported { .. }), "{descr}: {err}");
        assert!(err.to_string().contains("x.npy"));
    }
    let big = usize::MAX / 2;
    for shape in [
        format!("({big}, 3)"),
        format!("({big},)"),
        "(1, 2, 3)".into(),
    ] {
        let h = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
        let err = parse(&npy_bytes(1, &h, &[0; 8])).unwrap_err();
        assert!(matches!(err, IoError::Malformed { .. }), "{shape}: {err}");
    }
    let h = "{'descr': '<f8', 'fortran_order': False, 'shape': 3, }";
    assert!(matches!(
        parse(&npy_bytes(1, h, &[0; 24])),
        Err(IoError::Malformed { .. })
    ));
}

#[test]
fn missing_file_is_not_found() {
    let (_dir, p) = tmp("absent.npy");
    let err = read_npy(&p).unwrap_err();
    assert!(matches!(err, IoError::NotFound { .. }));
    assert!(err.to_string().contains("absent.npy"));
}

#[test]
fn long_headers_use_version_two() {
    let t = HostTensor::from_f32(vec![1; 23000], vec![2.0]);
    let (_dir, p) = tmp("deep.npy");
    write_npy(&p, &t).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(bytes[6], 2);
    assert_eq!(read_npy(&p).unwrap(), t);
}

#[test]
fn single_byte_corruptions_never_panic() {
    let t = HostTensor::from_f64(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], DType::F64);
    let good = encode_npy(Path::new("x.npy"), &t).unwrap();
    for i in 0..good.len() {
        for v in [0u8, 1, b'(', b')', b'\'', b',', b'9', 0x7f, 0xff] {
            let mut bad = good.clone();
            bad[i] = v;
            let _ = parse(&bad); // Ok or Err, but no panic.
        }
    }
}

/// Element bytes for `n` values of `size` bytes, varied and never all zero.
fn pattern(n: usize, size: usize) -> Vec<u8> {
    (0..n * size)
        .map(|i| ((i * 7919 + i / size * 31) % 251) as u8)
        .collect()
}

#[test]
fn mapped_files_read_as_the_decoded_bytes() {
    // Each case is above the mapping threshold; some are lent as they lie (little-endian
    // floats and 8-byte integers), the others decoded from the map.
    let cases: [(&str, usize, bool); 9] = [
        ("<f4", 4, false),
        ("<f8", 8, false),
        ("<f2", 2, false),
        ("<i8", 8, false),
        (">f4", 4, false),
        ("<f4", 4, true),
        ("<i4", 4, false),
        ("|b1", 1, false),
        ("|u1", 1, false),
    ];
    for (descr, size, fortran) in cases {
        let rows = 3;
        let cols = (MAP_MIN as usize / size / rows) + 5;
        let mut data = pattern(rows * cols, size);
        if descr == "|b1" {
            data.iter_mut().for_each(|b| *b %= 2);
        }
        if descr.contains('f') {
            // A small high byte keeps every value finite (NaN would not compare equal).
            let high = if descr.starts_with('>') { 0 } else { size - 1 };
            data.chunks_mut(size).for_each(|c| c[high] %= 0x40);
        }
        let order = if fortran { "True" } else { "False" };
        let header = format!(
            "{{'descr': '{descr}', 'fortran_order': {order}, 'shape': ({rows}, {cols}), }}"
        );
        // Pad the header so the data is aligned, as NumPy does.
        let pad = (64 - (10 + header.len() + 1) % 64) % 64;
        let bytes = npy_bytes(1, &format!("{header}{}", " ".repeat(pad)), &data);
        let (_dir, p) = tmp("big.npy");
        std::fs::write(&p, &bytes).unwrap();
        assert!(std::fs::metadata(&p).unwrap().len() >= MAP_MIN);
        let mapped = read_npy(&p).unwrap();
        assert_eq!(mapped, parse(&bytes).unwrap(), "{descr} fortran={fortran}");
        let lent = match &mapped.data {
            HostData::F32(b) => b.owner().is_some(),
            HostData::F64(b) => b.owner().is_some(),
            HostData::F16(b) => b.owner().is_some(),
            HostData::I64(b) => b.owner().is_some(),
            _ => false,
        };
        let as_is = ["<f4", "<f8", "<f2", "<i8"].contains(&descr) && !fortran;
        assert_eq!(
            lent, as_is,
            "{descr} fortran={fortran}: the file itself or a copy"
        );
    }
}

#[test]
fn a_mapped_tensor_outlives_its_file_being_replaced() {
    let (_dir, p) = tmp("big.npy");
    let n = MAP_MIN as usize / 4 + 3;
    let first: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 7.0).collect();
    write_npy(&p, &HostTensor::from_f32(vec![n], first.clone())).unwrap();
    let read = read_npy(&p).unwrap();
    write_npy(&p, &HostTensor::from_f32(vec![n], vec![1.5; n])).unwrap();
    assert_eq!(read, HostTensor::from_f32(vec![n], first));
    assert_eq!(
        read_npy(&p).unwrap(),
        HostTensor::from_f32(vec![n], vec![1.5; n])
    );
}
