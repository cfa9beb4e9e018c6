use super::*;
use tl_core::DType;

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.safetensors");
    (dir, p)
}

fn ramp(shape: &[usize], dtype: DType, start: f64) -> HostTensor {
    let n: usize = shape.iter().product();
    HostTensor::from_f64(
        shape.to_vec(),
        (0..n).map(|i| start + i as f64).collect(),
        dtype,
    )
}

#[test]
fn round_trips_every_dtype_and_shape() {
    let (_dir, p) = tmp();
    let mut tensors = Vec::new();
    let shapes: [&[usize]; 5] = [&[], &[1], &[5], &[2, 3], &[0, 2]];
    for (si, shape) in shapes.iter().enumerate() {
        for dtype in [
            DType::F32,
            DType::F64,
            DType::F16,
            DType::BF16,
            DType::I64,
            DType::Bool,
        ] {
            tensors.push((format!("{dtype}_{si}"), ramp(shape, dtype, -1.0)));
        }
    }
    write_safetensors(&p, &tensors).unwrap();
    let file = SafetensorsFile::open(&p).unwrap();
    let mut want: Vec<String> = tensors.iter().map(|(n, _)| n.clone()).collect();
    want.sort();
    assert_eq!(file.names(), want.as_slice());
    assert_eq!(safetensors_names(&p).unwrap(), want);
    for (name, t) in &tensors {
        assert_eq!(&file.get(name).unwrap(), t, "{name}");
        assert_eq!(&read_safetensors(&p, name).unwrap(), t, "{name}");
    }
}

/// Writes a file with raw dtypes that the writer never produces (narrow integers).
fn write_raw(p: &Path, entries: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let enc: Vec<(&str, Encoded)> = entries
        .iter()
        .map(|(n, d, s, b)| {
            let e = Encoded {
                dtype: *d,
                shape: s.clone(),
                bytes: b.clone(),
            };
            (*n, e)
        })
        .collect();
    let bytes = safetensors::serialize(enc.iter().map(|(n, e)| (*n, e)), None).unwrap();
    std::fs::write(p, bytes).unwrap();
}

#[test]
fn narrow_integer_types_widen_to_i64() {
    let (_dir, p) = tmp();
    let le = |v: &[i64], w: usize| -> Vec<u8> {
        v.iter()
            .flat_map(|x| x.to_le_bytes()[..w].to_vec())
            .collect()
    };
    write_raw(
        &p,
        &[
            ("i32", Dtype::I32, vec![3], le(&[-1, 0, 70000], 4)),
            ("i16", Dtype::I16, vec![2], le(&[-300, 300], 2)),
            ("i8", Dtype::I8, vec![2], le(&[-128, 127], 1)),
            ("u8", Dtype::U8, vec![2], vec![0, 255]),
            ("u16", Dtype::U16, vec![1], vec![0xff, 0xff]),
            ("u64", Dtype::U64, vec![1], u64::MAX.to_le_bytes().to_vec()),
            ("bool", Dtype::BOOL, vec![3], vec![0, 1, 2]),
            ("f8", Dtype::F8_E4M3, vec![1], vec![0]),
        ],
    );
    let f = SafetensorsFile::open(&p).unwrap();
    let ints = |n: &str| f.get(n).unwrap().data;
    assert_eq!(ints("i32"), HostData::I64(vec![-1, 0, 70000].into()));
    assert_eq!(ints("i16"), HostData::I64(vec![-300, 300].into()));
    assert_eq!(ints("i8"), HostData::I64(vec![-128, 127].into()));
    assert_eq!(ints("u8"), HostData::I64(vec![0, 255].into()));
    assert_eq!(ints("u16"), HostData::I64(vec![65535].into()));
    assert_eq!(ints("bool"), HostData::Bool(vec![0, 1, 1].into()));
    assert!(matches!(f.get("u64"), Err(IoError::Unsupported { .. })));
    let err = f.get("f8").unwrap_err();
    assert!(matches!(err, IoError::Unsupported { .. }) && err.to_string().contains("F8_E4M3"));
}

#[test]
fn missing_tensor_lists_closest_names_first() {
    let (_dir, p) = tmp();
    let t = ramp(&[2], DType::F32, 0.0);
    let names = ["decoder.bias", "encoder.weight", "encoder.bias"];
    let tensors: Vec<_> = names.iter().map(|n| (n.to_string(), t.clone())).collect();
    write_safetensors(&p, &tensors).unwrap();
    let err = read_safetensors(&p, "encoder.weights").unwrap_err();
    match &err {
        IoError::MissingTensor {
            name, available, ..
        } => {
            assert_eq!(name, "encoder.weights");
            assert_eq!(available[0], "encoder.weight");
            assert_eq!(available.len(), 3);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err
        .hint()
        .unwrap()
        .starts_with("available tensors: encoder.weight, "));
    assert!(err.to_string().contains("m.safetensors"));
}

#[test]
fn stacks_layers_in_index_order() {
    let (_dir, p) = tmp();
    let mut tensors = Vec::new();
    // Twelve layers so that "10" and "11" sort after "2" numerically, not textually.
    for l in 0..12 {
        tensors.push((
            format!("enc.{l}.q.weight"),
            ramp(&[2, 3], DType::F32, 10.0 * l as f64),
        ));
        tensors.push((format!("enc.{l}.k.weight"), ramp(&[4], DType::F32, 0.0)));
    }
    tensors.push(("enc.x.q.weight".into(), ramp(&[1], DType::F32, 0.0)));
    tensors.push(("enc..q.weight".into(), ramp(&[1], DType::F32, 0.0)));
    write_safetensors(&p, &tensors).unwrap();
    let file = SafetensorsFile::open(&p).unwrap();
    let (t, idx) = read_stacked(&file, "enc.{l}.q.weight").unwrap();
    assert_eq!(idx, (0..12).collect::<Vec<i64>>());
    assert_eq!(t.shape, vec![12, 2, 3]);
    let v = t.data.to_f64();
    for l in 0..12 {
        assert_eq!(v[l * 6], 10.0 * l as f64);
        assert_eq!(v[l * 6 + 5], 10.0 * l as f64 + 5.0);
    }
    // Any placeholder name works; other tensors in the file are ignored.
    let (t, idx) = read_stacked(&file, "enc.{layer}.k.weight").unwrap();
    assert_eq!((t.shape, idx.len()), (vec![12, 4], 12));
}

#[test]
fn stacking_errors() {
    let (_dir, p) = tmp();
    let tensors = vec![
        ("a.0.w".to_string(), ramp(&[2], DType::F32, 0.0)),
        ("a.1.w".to_string(), ramp(&[3], DType::F32, 0.0)),
        ("b.0.w".to_string(), ramp(&[2], DType::F32, 0.0)),
        ("b.2.w".to_string(), ramp(&[2], DType::F32, 0.0)),
        ("c.0.w".to_string(), ramp(&[2], DType::F32, 0.0)),
        ("c.1.w".to_string(), ramp(&[2], DType::F64, 0.0)),
        ("d.1.w".to_string(), ramp(&[2], DType::F32, 0.0)),
        ("e.0.w".to_string(), ramp(&[2], DType::F32, 0.0)),
        ("e.1.w".to_string(), ramp(&[2], DType::F32, 0.0)),
        ("e.01.w".to_string(), ramp(&[2], DType::F32, 0.0)),
    ];
    write_safetensors(&p, &tensors).unwrap();
    let f = SafetensorsFile::open(&p).unwrap();

    let err = read_stacked(&f, "a.{l}.w").unwrap_err();
    match &err {
        IoError::Mismatch { first, second, .. } => {
            assert_eq!((first.as_str(), second.as_str()), ("a.0.w", "a.1.w"))
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("[2]") && err.to_string().contains("[3]"));
    assert!(matches!(
        read_stacked(&f, "c.{l}.w"),
        Err(IoError::Mismatch { .. })
    ));
    match read_stacked(&f, "b.{l}.w").unwrap_err() {
        IoError::StackGap { found, missing, .. } => assert_eq!((found, missing), (vec![0, 2], 1)),
        other => panic!("unexpected {other}"),
    }
    assert!(matches!(
        read_stacked(&f, "d.{l}.w"),
        Err(IoError::StackGap { missing: 0, .. })
    ));
    let err = read_stacked(&f, "z.{l}.w").unwrap_err();
    match &err {
        IoError::NoMatch { sample, .. } => assert!(!sample.is_empty() && sample.len() <= 8),
        other => panic!("unexpected {other}"),
    }
    assert!(err.hint().unwrap().contains("a.0.w"));
    let err = read_stacked(&f, "e.{l}.w").unwrap_err();
    assert!(
        matches!(err, IoError::BadPattern { .. }) && err.to_string().contains("e.01.w"),
        "{err}"
    );
    for bad in ["a.0.w", "a.{l.w", "a.{l}.{m}.w", "a.}{l}.w"] {
        assert!(
            matches!(read_stacked(&f, bad), Err(IoError::BadPattern { .. })),
            "{bad}"
        );
    }
}

#[test]
fn malformed_files_give_errors() {
    let (_dir, p) = tmp();
    write_safetensors(&p, &[("w".to_string(), ramp(&[2, 2], DType::F32, 0.0))]).unwrap();
    let good = std::fs::read(&p).unwrap();
    for cut in 0..good.len() {
        std::fs::write(&p, &good[..cut]).unwrap();
        let err = SafetensorsFile::open(&p).unwrap_err();
        assert!(matches!(err, IoError::Malformed { .. }), "cut {cut}: {err}");
    }
    // Header length pointing past the end of the file.
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&p, &huge).unwrap();
    assert!(matches!(
        SafetensorsFile::open(&p),
        Err(IoError::Malformed { .. })
    ));
    // Shape that disagrees with the data size, and a shape whose product overflows.
    for header in [
        r#"{"w":{"dtype":"F32","shape":[3,3],"data_offsets":[0,16]}}"#,
        r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}}"#,
        r#"{"w":{"dtype":"Q9","shape":[4],"data_offsets":[0,16]}}"#,
        r#"not json"#,
    ] {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        bytes.extend([0u8; 16]);
        std::fs::write(&p, &bytes).unwrap();
        let err = SafetensorsFile::open(&p).unwrap_err();
        assert!(matches!(err, IoError::Malformed { .. }), "{header}: {err}");
    }
    let missing = p.with_file_name("absent.safetensors");
    assert!(matches!(
        read_safetensors(&missing, "w"),
        Err(IoError::NotFound { .. })
    ));
}

#[test]
fn writer_rejects_bad_input_and_keeps_old_file() {
    let (_dir, p) = tmp();
    std::fs::write(&p, b"old").unwrap();
    let t = ramp(&[2], DType::F32, 0.0);
    let dup = vec![("x".to_string(), t.clone()), ("x".to_string(), t.clone())];
    assert!(matches!(
        write_safetensors(&p, &dup),
        Err(IoError::Write { .. })
    ));
    let bad = HostTensor::from_f32(vec![3], vec![1.0]);
    assert!(matches!(
        write_safetensors(&p, &[("y".into(), bad)]),
        Err(IoError::Write { .. })
    ));
    assert_eq!(std::fs::read(&p).unwrap(), b"old");
    // The empty file is valid too.
    write_safetensors(&p, &[]).unwrap();
    assert!(safetensors_names(&p).unwrap().is_empty());
    let err = read_safetensors(&p, "w").unwrap_err();
    assert!(err.to_string().contains("no tensors"), "{err}");
}

#[test]
fn single_byte_corruptions_never_panic() {
    let (_dir, p) = tmp();
    let tensors = vec![
        ("a".to_string(), ramp(&[2, 2], DType::F32, 0.0)),
        ("b".to_string(), ramp(&[3], DType::I64, 0.0)),
    ];
    write_safetensors(&p, &tensors).unwrap();
    let good = std::fs::read(&p).unwrap();
    // The JSON header is where structure lives; corrupt each of its bytes.
    let header_end = 8 + usize::from(good[0]) + 256 * usize::from(good[1]);
    for i in 0..header_end.min(good.len()) {
        for v in [0u8, b'0', b'9', b'[', b']', b'"', b',', 0xff] {
            let mut bad = good.clone();
            bad[i] = v;
            std::fs::write(&p, &bad).unwrap();
            if let Ok(f) = SafetensorsFile::open(&p) {
                for name in f.names().to_vec() {
                    let _ = f.get(&name);
                }
            }
        }
    }
}
