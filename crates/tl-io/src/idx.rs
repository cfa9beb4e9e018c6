//! IDX files, the format of the MNIST family of image datasets (Fashion-MNIST among them):
//! two zero bytes, an element type code, the number of axes, each axis's extent as a big-endian
//! u32, then the elements, big-endian, row-major. Files are often gzip-compressed
//! (`train-images-idx3-ubyte.gz`); both forms read directly.

use crate::error::IoError;
use std::io::Read;
use std::path::Path;
use tl_core::{DType, HostData, HostTensor};

/// The two bytes a gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether a file name is an IDX file's: it ends in `.idx`, or it has the datasets' usual
/// `-idxN-` part (`t10k-labels-idx1-ubyte`), either optionally followed by `.gz`.
pub fn is_idx_name(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    name.ends_with(".idx")
        || name
            .match_indices("idx")
            .any(|(at, _)| name[at + 3..].starts_with(|c: char| c.is_ascii_digit()))
}

/// How an IDX element type is read: its size in bytes and the tensor type it becomes.
fn element(path: &Path, code: u8) -> Result<(usize, DType), IoError> {
    // Bytes and 16-bit integers are exact in f32 (the pixels and labels of image datasets);
    // 32-bit integers are kept as i64.
    Ok(match code {
        0x08 | 0x09 => (1, DType::F32),
        0x0B => (2, DType::F32),
        0x0C => (4, DType::I64),
        0x0D => (4, DType::F32),
        0x0E => (8, DType::F64),
        other => {
            return Err(IoError::unsupported(
                path,
                format!("IDX element type 0x{other:02x} (known: 0x08 u8, 0x09 i8, 0x0b i16, 0x0c i32, 0x0d f32, 0x0e f64)"),
            ))
        }
    })
}

/// Reads an IDX file (gzip-compressed or not) into a row-major host tensor: unsigned and
/// signed bytes and 16-bit integers as f32 (exact), 32-bit integers as i64, f32 and f64 as
/// themselves. The file must hold exactly the elements its header announces.
pub fn read_idx(path: &Path) -> Result<HostTensor, IoError> {
    let file = std::fs::File::open(path).map_err(|e| IoError::from_read(path, &e))?;
    let mut raw = std::io::BufReader::new(file);
    let mut magic = [0u8; 2];
    read_all(path, &mut raw, &mut magic, "the header")?;
    if magic == GZIP_MAGIC {
        let chained = std::io::Cursor::new(magic).chain(raw);
        parse(path, &mut flate2::read::GzDecoder::new(chained))
    } else {
        parse(path, &mut std::io::Cursor::new(magic).chain(raw))
    }
}

/// Fills `buf` from `r`, or says which part of the file ended early.
fn read_all(path: &Path, r: &mut impl Read, buf: &mut [u8], part: &str) -> Result<(), IoError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            IoError::malformed(path, format!("the file ends inside {part}"))
        }
        _ => IoError::from_read(path, &e),
    })
}

/// Parses an uncompressed IDX stream.
fn parse(path: &Path, r: &mut impl Read) -> Result<HostTensor, IoError> {
    let mut head = [0u8; 4];
    read_all(path, r, &mut head, "the header")?;
    if head[..2] != [0, 0] {
        return Err(IoError::malformed(
            path,
            "not an IDX file (it must start with two zero bytes)",
        ));
    }
    let (size, dtype) = element(path, head[2])?;
    let rank = usize::from(head[3]);
    let mut dims = vec![0u8; 4 * rank];
    read_all(path, r, &mut dims, "the extents")?;
    let shape: Vec<usize> = dims
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let bytes = shape
        .iter()
        .try_fold(size, |acc, &e| acc.checked_mul(e))
        .ok_or_else(|| IoError::malformed(path, format!("extents {shape:?} overflow")))?;
    // Read what is there (at most one byte past the announced data), so a header that claims
    // more than the file holds costs no allocation of the claimed size.
    let mut data = Vec::new();
    r.take(bytes as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| IoError::from_read(path, &e))?;
    if data.len() != bytes {
        let detail = if data.len() < bytes {
            format!(
                "the header announces {bytes} bytes of elements for {shape:?}, the file holds {}",
                data.len()
            )
        } else {
            format!("bytes follow the {bytes} bytes of elements the header announces for {shape:?}")
        };
        return Err(IoError::malformed(path, detail));
    }
    Ok(HostTensor {
        shape,
        data: decode(head[2], dtype, &data),
    })
}

/// Big-endian elements of type `code` as `dtype`.
fn decode(code: u8, dtype: DType, data: &[u8]) -> HostData {
    match (code, dtype) {
        (0x08, _) => HostData::F32(data.iter().map(|&b| f32::from(b)).collect()),
        (0x09, _) => HostData::F32(data.iter().map(|&b| f32::from(b as i8)).collect()),
        (0x0B, _) => HostData::F32(
            data.chunks_exact(2)
                .map(|c| f32::from(i16::from_be_bytes([c[0], c[1]])))
                .collect(),
        ),
        (0x0C, _) => HostData::I64(
            data.chunks_exact(4)
                .map(|c| i64::from(i32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        ),
        (0x0D, _) => HostData::F32(
            data.chunks_exact(4)
                .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        _ => HostData::F64(
            data.chunks_exact(8)
                .map(|c| f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx(code: u8, shape: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, code, shape.len() as u8];
        for e in shape {
            out.extend_from_slice(&e.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn reads_every_element_type_plain_and_gzipped() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(u8, Vec<u8>, Vec<f64>)> = vec![
            (
                0x08,
                vec![0, 7, 255, 128, 1, 2],
                vec![0.0, 7.0, 255.0, 128.0, 1.0, 2.0],
            ),
            (
                0x09,
                vec![0, 7, 255, 128, 1, 2],
                vec![0.0, 7.0, -1.0, -128.0, 1.0, 2.0],
            ),
            (
                0x0B,
                [-300i16, 2, 3, 4, 5, 32767]
                    .iter()
                    .flat_map(|v| v.to_be_bytes())
                    .collect(),
                vec![-300.0, 2.0, 3.0, 4.0, 5.0, 32767.0],
            ),
            (
                0x0C,
                [-70000i32, 1, 2, 3, 4, i32::MAX]
                    .iter()
                    .flat_map(|v| v.to_be_bytes())
                    .collect(),
                vec![-70000.0, 1.0, 2.0, 3.0, 4.0, f64::from(i32::MAX)],
            ),
            (
                0x0D,
                [1.5f32, -2.25, 0.0, 3.0, 1e-3, 7.0]
                    .iter()
                    .flat_map(|v| v.to_be_bytes())
                    .collect(),
                [1.5f32, -2.25, 0.0, 3.0, 1e-3, 7.0]
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect(),
            ),
            (
                0x0E,
                [1.5f64, -2.25, 0.0, 3.0, 1e-300, 7.0]
                    .iter()
                    .flat_map(|v| v.to_be_bytes())
                    .collect(),
                vec![1.5, -2.25, 0.0, 3.0, 1e-300, 7.0],
            ),
        ];
        for (code, data, want) in cases {
            let bytes = idx(code, &[2, 3], &data);
            for (name, content) in [
                ("t-idx2-ubyte", bytes.clone()),
                ("t-idx2-ubyte.gz", gzip(&bytes)),
            ] {
                let p = dir.path().join(name);
                std::fs::write(&p, content).unwrap();
                let t = read_idx(&p).unwrap();
                assert_eq!(t.shape, vec![2, 3]);
                assert_eq!(t.data.to_f64(), want, "type 0x{code:02x} {name}");
            }
        }
    }

    #[test]
    fn names_and_malformed_files() {
        for name in [
            "train-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte",
            "a.IDX",
            "b.idx.gz",
        ] {
            assert!(is_idx_name(Path::new(name)), "{name}");
        }
        for name in ["a.npy", "idx.csv", "index.gz", "x.safetensors"] {
            assert!(!is_idx_name(Path::new(name)), "{name}");
        }
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            read_idx(&p).unwrap_err().to_string()
        };
        assert!(at("m-idx1", &[1, 0, 8, 1]).contains("two zero bytes"));
        assert!(at("t-idx1", &[0, 0, 0x42, 1, 0, 0, 0, 1, 9]).contains("0x42"));
        assert!(at("s-idx1", &[0, 0]).contains("ends inside the header"));
        assert!(at("e-idx2", &[0, 0, 8, 2, 0, 0]).contains("ends inside the extents"));
        let short = idx(0x08, &[3], &[1, 2]);
        assert!(at("short-idx1", &short).contains("the file holds 2"));
        assert!(at("short-idx1.gz", &gzip(&short)).contains("the file holds 2"));
        let long = idx(0x08, &[1], &[1, 2]);
        assert!(at("long-idx1", &long).contains("bytes follow"));
        // Extents whose product overflows are refused before anything is allocated.
        let huge = idx(0x0E, &[u32::MAX, u32::MAX, u32::MAX], &[]);
        assert!(at("huge-idx3", &huge).contains("overflow"));
        let claims = idx(0x0E, &[1 << 30, 1 << 10], &[0; 16]);
        assert!(at("claims-idx2.gz", &gzip(&claims)).contains("the file holds 16"));
    }
}
