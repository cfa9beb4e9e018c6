//! NumPy `.npy` files (format versions 1, 2 and 3): the simplest way to move one array between
//! Python and TensorLogic. Reading accepts float, integer and bool arrays in either byte order
//! and either memory order; writing produces little-endian, C-order files NumPy loads directly.
//!
//! Files of [`MAP_MIN`] bytes or more are memory-mapped, and when their elements are already
//! what the engine computes with (little-endian `f2`, `f4`, `f8` or `i8`, C order, aligned) the
//! tensor is the mapped file itself: nothing is copied or converted, and pages are read as
//! they are used. Like NumPy's `mmap_mode`, this assumes nobody rewrites the file in place
//! while a program reads it (TensorLogic's own writes replace files by renaming, which leaves
//! a mapped file as it was).

use crate::atomic::write_atomic_with;
use crate::error::IoError;
use half::f16;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use tl_core::{Buf, DType, HostData, HostTensor};

/// The six bytes every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Files at least this large are memory-mapped rather than read (below it, reading is cheaper
/// than setting up a mapping).
pub const MAP_MIN: u64 = 1 << 20;

/// Reads a NumPy `.npy` file into a row-major host tensor.
///
/// Supported element types: `f2`, `f4`, `f8` (kept as f16/f32/f64), signed and unsigned
/// integers of 1–8 bytes (widened to i64; `u8` values above `i64::MAX` are an error) and `b1`
/// (bool). Both byte orders are accepted; Fortran-order arrays are transposed into row-major
/// order, and 0-d arrays become scalars (empty shape).
pub fn read_npy(path: &Path) -> Result<HostTensor, IoError> {
    let read_err = |e: std::io::Error| IoError::from_read(path, &e);
    let mut file = File::open(path).map_err(read_err)?;
    let len = file.metadata().map_err(read_err)?.len();
    if len >= MAP_MIN {
        // SAFETY: the map is only ever read; a file rewritten in place while mapped is outside
        // what this reader supports (see the module documentation).
        if let Ok(map) = unsafe { memmap2::Mmap::map(&file) } {
            let map = Arc::new(map);
            return parse(path, &map[..], Some(&map));
        }
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(read_err)?;
    parse_npy(path, &bytes)
}

/// Writes `t` as a little-endian, C-order `.npy` file (format 1.0, or 2.0 when the header is
/// too long for 1.0), atomically. bf16 has no NumPy equivalent and is refused.
pub fn write_npy(path: &Path, t: &HostTensor) -> Result<(), IoError> {
    let header = header_of(path, t)?;
    write_atomic_with(path, |w| {
        w.write_all(&header)?;
        write_elements(w, &t.data)
    })
}

/// Parses the bytes of a `.npy` file; `path` is only used in error messages.
fn parse_npy(path: &Path, bytes: &[u8]) -> Result<HostTensor, IoError> {
    parse(path, bytes, None)
}

/// Parses the bytes of a `.npy` file, lending them from `map` instead of copying where the
/// elements can be used as they are.
fn parse(
    path: &Path,
    bytes: &[u8],
    map: Option<&Arc<memmap2::Mmap>>,
) -> Result<HostTensor, IoError> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(IoError::malformed(
            path,
            "not a .npy file (missing the \\x93NUMPY magic bytes)",
        ));
    }
    let major = bytes[6];
    let (header_len, header_start): (usize, usize) = match major {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 => {
            let raw = bytes
                .get(8..12)
                .ok_or_else(|| IoError::malformed(path, "file ends inside the header length"))?;
            let n = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
            (usize::try_from(n).unwrap_or(usize::MAX), 12)
        }
        v => {
            return Err(IoError::unsupported(
                path,
                format!(".npy format version {v}.{} (expected 1, 2 or 3)", bytes[7]),
            ))
        }
    };
    let header_end = header_start
        .checked_add(header_len)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| {
            IoError::malformed(
                path,
                format!(
                    "header claims {header_len} bytes but the file has only {}",
                    bytes.len().saturating_sub(header_start)
                ),
            )
        })?;
    let header = String::from_utf8_lossy(&bytes[header_start..header_end]);
    let info = crate::npy_header::parse(&header).map_err(|d| IoError::malformed(path, d))?;
    let elem = ElemType::from_descr(&info.descr)
        .ok_or_else(|| IoError::unsupported(path, format!("element type '{}'", info.descr)))?;

    let numel = info
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| IoError::malformed(path, format!("shape {:?} overflows", info.shape)))?;
    let need = numel
        .checked_mul(elem.size)
        .ok_or_else(|| IoError::malformed(path, format!("shape {:?} overflows", info.shape)))?;
    let data = &bytes[header_end..];
    if data.len() != need {
        return Err(IoError::malformed(
            path,
            format!(
                "shape {:?} of '{}' needs {need} data bytes but the file has {}",
                info.shape,
                info.descr,
                data.len()
            ),
        ));
    }

    let c_order = !info.fortran_order || info.shape.len() <= 1;
    if let (Some(map), true) = (map, c_order) {
        if let Some(data) = lend(elem, data, map) {
            return Ok(HostTensor {
                shape: info.shape,
                data,
            });
        }
    }
    let mut host = decode(path, elem, data)?;
    if info.fortran_order && info.shape.len() > 1 {
        host = reorder_fortran(&host, &info.shape);
    }
    Ok(HostTensor {
        shape: info.shape,
        data: host,
    })
}

/// The element kinds `.npy` files may hold that this reader understands.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Float,
    Int,
    Uint,
    Bool,
}

/// A parsed `descr` string such as `<f4`.
#[derive(Clone, Copy, Debug)]
struct ElemType {
    kind: Kind,
    size: usize,
    big_endian: bool,
}

impl ElemType {
    /// Interprets a NumPy type string; `None` for anything unsupported.
    fn from_descr(descr: &str) -> Option<ElemType> {
        let mut chars = descr.chars();
        let (big_endian, rest) = match chars.next()? {
            '<' | '|' => (false, chars.as_str()),
            '=' => (cfg!(target_endian = "big"), chars.as_str()),
            '>' => (true, chars.as_str()),
            _ => (false, descr),
        };
        let (kind, size) = match rest {
            "f2" | "e" => (Kind::Float, 2),
            "f4" | "f" => (Kind::Float, 4),
            "f8" | "d" => (Kind::Float, 8),
            "i1" | "b" => (Kind::Int, 1),
            "i2" | "h" => (Kind::Int, 2),
            "i4" => (Kind::Int, 4),
            "i8" | "q" => (Kind::Int, 8),
            "u1" | "B" => (Kind::Uint, 1),
            "u2" | "H" => (Kind::Uint, 2),
            "u4" => (Kind::Uint, 4),
            "u8" | "Q" => (Kind::Uint, 8),
            "b1" | "?" => (Kind::Bool, 1),
            _ => return None,
        };
        Some(ElemType {
            kind,
            size,
            big_endian,
        })
    }
}

/// The elements of a mapped file as they lie, where they need no conversion: little-endian
/// floats or 8-byte integers on a little-endian machine, aligned for their type.
fn lend(t: ElemType, data: &[u8], map: &Arc<memmap2::Mmap>) -> Option<HostData> {
    if t.big_endian
        || cfg!(target_endian = "big")
        || !(data.as_ptr() as usize).is_multiple_of(t.size)
    {
        return None;
    }
    let n = data.len() / t.size;
    let owner = || Box::new(map.clone()) as Box<dyn std::any::Any + Send + Sync>;
    // SAFETY: `data` lies in the map, which `owner` keeps alive, is aligned for the element
    // type (checked above) and holds `n` elements of it (the length was checked against the
    // shape); every bit pattern is a valid value of these types.
    unsafe {
        match (t.kind, t.size) {
            (Kind::Float, 2) => Some(HostData::F16(Buf::lent(data.as_ptr().cast(), n, owner()))),
            (Kind::Float, 4) => Some(HostData::F32(Buf::lent(data.as_ptr().cast(), n, owner()))),
            (Kind::Float, 8) => Some(HostData::F64(Buf::lent(data.as_ptr().cast(), n, owner()))),
            (Kind::Int, 8) => Some(HostData::I64(Buf::lent(data.as_ptr().cast(), n, owner()))),
            _ => None,
        }
    }
}

/// Reads one element of `N` bytes in the file's byte order as little-endian bytes.
fn fixed<const N: usize>(chunk: &[u8], big_endian: bool) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(chunk);
    if big_endian {
        out.reverse();
    }
    out
}

/// Decodes raw element bytes (whose length is already checked) into host data.
fn decode(path: &Path, t: ElemType, data: &[u8]) -> Result<HostData, IoError> {
    let be = t.big_endian;
    let chunks = data.chunks_exact(t.size);
    Ok(match (t.kind, t.size) {
        (Kind::Float, 2) => HostData::F16(
            chunks
                .map(|c| f16::from_bits(u16::from_le_bytes(fixed(c, be))))
                .collect(),
        ),
        (Kind::Float, 4) => {
            HostData::F32(chunks.map(|c| f32::from_le_bytes(fixed(c, be))).collect())
        }
        (Kind::Float, _) => {
            HostData::F64(chunks.map(|c| f64::from_le_bytes(fixed(c, be))).collect())
        }
        (Kind::Bool, _) => HostData::Bool(data.iter().map(|&b| u8::from(b != 0)).collect()),
        (Kind::Int, 1) => HostData::I64(data.iter().map(|&b| i64::from(b as i8)).collect()),
        (Kind::Int, 2) => HostData::I64(
            chunks
                .map(|c| i64::from(i16::from_le_bytes(fixed(c, be))))
                .collect(),
        ),
        (Kind::Int, 4) => HostData::I64(
            chunks
                .map(|c| i64::from(i32::from_le_bytes(fixed(c, be))))
                .collect(),
        ),
        (Kind::Int, _) => HostData::I64(chunks.map(|c| i64::from_le_bytes(fixed(c, be))).collect()),
        (Kind::Uint, 1) => HostData::I64(data.iter().map(|&b| i64::from(b)).collect()),
        (Kind::Uint, 2) => HostData::I64(
            chunks
                .map(|c| i64::from(u16::from_le_bytes(fixed(c, be))))
                .collect(),
        ),
        (Kind::Uint, 4) => HostData::I64(
            chunks
                .map(|c| i64::from(u32::from_le_bytes(fixed(c, be))))
                .collect(),
        ),
        (Kind::Uint, _) => {
            let mut out = Vec::with_capacity(data.len() / 8);
            for c in chunks {
                let v = u64::from_le_bytes(fixed(c, be));
                let v = i64::try_from(v).map_err(|_| {
                    IoError::unsupported(path, format!("u8 value {v} does not fit in i64"))
                })?;
                out.push(v);
            }
            HostData::I64(out.into())
        }
    })
}

/// Rearranges column-major (Fortran) elements of `shape` into row-major order.
fn fortran_to_c<T: Copy>(src: &[T], shape: &[usize]) -> Vec<T> {
    let rank = shape.len();
    // Column-major strides: the first axis varies fastest.
    let mut strides = vec![1usize; rank];
    for k in 1..rank {
        strides[k] = strides[k - 1] * shape[k - 1];
    }
    let mut out = Vec::with_capacity(src.len());
    let mut index = vec![0usize; rank];
    let mut offset = 0usize;
    for _ in 0..src.len() {
        out.push(src[offset]);
        // Advance the row-major odometer, keeping `offset` in step.
        for k in (0..rank).rev() {
            index[k] += 1;
            offset += strides[k];
            if index[k] < shape[k] {
                break;
            }
            offset -= strides[k] * shape[k];
            index[k] = 0;
        }
    }
    out
}

/// Applies [`fortran_to_c`] to whichever element type `data` holds.
fn reorder_fortran(data: &HostData, shape: &[usize]) -> HostData {
    match data {
        HostData::F32(v) => HostData::F32(fortran_to_c(v, shape).into()),
        HostData::F64(v) => HostData::F64(fortran_to_c(v, shape).into()),
        HostData::F16(v) => HostData::F16(fortran_to_c(v, shape).into()),
        HostData::BF16(v) => HostData::BF16(fortran_to_c(v, shape).into()),
        HostData::Bool(v) => HostData::Bool(fortran_to_c(v, shape).into()),
        HostData::I64(v) => HostData::I64(fortran_to_c(v, shape).into()),
    }
}

/// The magic bytes, version, header length and header of a `.npy` file for `t`, padded so
/// the data starts on a 64-byte boundary; `path` is only used in error messages.
fn header_of(path: &Path, t: &HostTensor) -> Result<Vec<u8>, IoError> {
    let numel = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if numel != Some(t.data.len()) {
        return Err(IoError::Write {
            path: path.to_path_buf(),
            detail: format!(
                "tensor has {} elements but its shape {:?} needs {numel:?}",
                t.data.len(),
                t.shape
            ),
        });
    }
    let descr = match t.dtype() {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::F16 => "<f2",
        DType::I64 => "<i8",
        DType::Bool => "|b1",
        DType::BF16 => {
            return Err(IoError::unsupported(
                path,
                "NumPy has no bf16 type; convert the tensor to f32 before saving as .npy",
            ))
        }
    };
    let dims: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad with spaces so the data starts on a 64-byte boundary; the header ends in '\n'.
    // Format 1.0 stores the padded header length in a u16; longer headers need 2.0.
    let v1 = (10 + header.len() + 1).next_multiple_of(64) - 10 <= usize::from(u16::MAX);
    let prefix = if v1 { 10 } else { 12 };
    let total = (prefix + header.len() + 1).next_multiple_of(64);
    header.push_str(&" ".repeat(total - prefix - header.len() - 1));
    header.push('\n');

    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    if v1 {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        let len = u32::try_from(header.len())
            .map_err(|_| IoError::unsupported(path, "tensor rank too large for a .npy header"))?;
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    Ok(out)
}

/// Writes the elements little-endian, a block at a time (no copy of the whole tensor).
fn write_elements(w: &mut impl Write, data: &HostData) -> std::io::Result<()> {
    fn blocks<T, const N: usize>(
        w: &mut impl Write,
        v: &[T],
        bytes: impl Fn(&T) -> [u8; N],
    ) -> std::io::Result<()> {
        let mut block = Vec::with_capacity(1 << 16);
        for chunk in v.chunks((1 << 16) / N) {
            block.clear();
            block.extend(chunk.iter().flat_map(&bytes));
            w.write_all(&block)?;
        }
        Ok(())
    }
    match data {
        HostData::F32(v) => blocks(w, v, |x| x.to_le_bytes()),
        HostData::F64(v) => blocks(w, v, |x| x.to_le_bytes()),
        HostData::F16(v) => blocks(w, v, |x| x.to_le_bytes()),
        HostData::BF16(v) => blocks(w, v, |x| x.to_le_bytes()),
        HostData::I64(v) => blocks(w, v, |x| x.to_le_bytes()),
        HostData::Bool(v) => blocks(w, v, |&b| [u8::from(b != 0)]),
    }
}

/// Serialises `t` into `.npy` bytes; `path` is only used in error messages.
#[cfg(test)]
fn encode_npy(path: &Path, t: &HostTensor) -> Result<Vec<u8>, IoError> {
    let mut out = header_of(path, t)?;
    write_elements(&mut out, &t.data).map_err(|e| IoError::Write {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests;
