//! Reads `.npy` files written by real NumPy (see `tests/data/make_npy.py`), so the reader is
//! checked against the reference implementation rather than only against our own writer.

use std::path::PathBuf;
use tl_io::{read_npy, write_npy, HostData};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn reads_numpy_written_files() {
    let t = read_npy(&data("f32_2x3.npy")).unwrap();
    assert_eq!(t.shape, vec![2, 3]);
    assert_eq!(
        t.data,
        HostData::F32(vec![0.0, 0.25, 0.5, 0.75, 1.0, 1.25].into())
    );

    let t = read_npy(&data("f64_fortran_2x3x4.npy")).unwrap();
    assert_eq!(t.shape, vec![2, 3, 4]);
    assert_eq!(t.data, HostData::F64((0..24).map(f64::from).collect()));

    let t = read_npy(&data("i8_fortran_3x2.npy")).unwrap();
    assert_eq!(
        (t.shape, t.data),
        (vec![3, 2], HostData::I64(vec![1, 2, 3, 4, 5, 6].into()))
    );

    let t = read_npy(&data("f16_5.npy")).unwrap();
    assert_eq!(t.data.to_f64(), vec![0.5, -1.0, 2.25, 65504.0, -0.0]);

    let t = read_npy(&data("i4_big_endian_3.npy")).unwrap();
    assert_eq!(t.data, HostData::I64(vec![1, -2, 300000].into()));

    let t = read_npy(&data("u1_4.npy")).unwrap();
    assert_eq!(t.data, HostData::I64(vec![0, 1, 128, 255].into()));

    let t = read_npy(&data("i2_2x2.npy")).unwrap();
    assert_eq!(t.data, HostData::I64(vec![-32768, 1, 2, 32767].into()));

    let t = read_npy(&data("bool_3.npy")).unwrap();
    assert_eq!(t.data, HostData::Bool(vec![1, 0, 1].into()));

    let t = read_npy(&data("scalar_f8.npy")).unwrap();
    assert_eq!(
        (t.shape.len(), t.data),
        (0, HostData::F64(vec![3.5].into()))
    );

    let t = read_npy(&data("empty_0x3_f4.npy")).unwrap();
    assert_eq!((t.shape, t.data.len()), (vec![0, 3], 0));
}

#[test]
fn our_output_matches_numpy_byte_for_byte() {
    // NumPy pads the header to 64 bytes exactly as we do, so a re-save is identical.
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "f32_2x3.npy",
        "scalar_f8.npy",
        "bool_3.npy",
        "empty_0x3_f4.npy",
        "f16_5.npy",
    ] {
        let t = read_npy(&data(name)).unwrap();
        let out = dir.path().join(name);
        write_npy(&out, &t).unwrap();
        let ours = std::fs::read(&out).unwrap();
        let theirs = std::fs::read(data(name)).unwrap();
        assert_eq!(ours, theirs, "{name}");
    }
}
