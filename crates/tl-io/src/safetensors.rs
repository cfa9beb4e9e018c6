//! safetensors files: the common format for model weights. [`SafetensorsFile`] reads a file
//! once and parses its header once, so a program that loads many weights from one checkpoint
//! does not re-read it per tensor; [`read_stacked`] gathers per-layer tensors into one.

use crate::atomic::write_atomic;
use crate::error::{closest_first, IoError};
use half::{bf16, f16};
use safetensors::tensor::Metadata;
use safetensors::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use tl_core::{Buf, HostData, HostTensor};

/// An opened safetensors file: its bytes and parsed, validated header, ready to hand out any
/// number of tensors without touching the disk again.
#[derive(Debug)]
pub struct SafetensorsFile {
    path: PathBuf,
    bytes: Vec<u8>,
    /// Byte offset where the data section starts.
    data_start: usize,
    metadata: Metadata,
    /// Tensor names, sorted.
    names: Vec<String>,
}

impl SafetensorsFile {
    /// Reads `path` once and validates its header (offsets, shapes and sizes must agree).
    pub fn open(path: &Path) -> Result<SafetensorsFile, IoError> {
        let bytes = std::fs::read(path).map_err(|e| IoError::from_read(path, &e))?;
        let (header_len, metadata) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| IoError::malformed(path, e.to_string()))?;
        let mut names: Vec<String> = metadata.tensors().into_keys().collect();
        names.sort();
        Ok(SafetensorsFile {
            path: path.to_path_buf(),
            data_start: 8 + header_len,
            bytes,
            metadata,
            names,
        })
    }

    /// The file this was read from (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All tensor names in the file, sorted.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The tensor called `name`, converted to a host tensor (integer types widen to i64).
    /// A missing name gives [`IoError::MissingTensor`] listing the closest names first.
    pub fn get(&self, name: &str) -> Result<HostTensor, IoError> {
        let info = self
            .metadata
            .info(name)
            .ok_or_else(|| IoError::MissingTensor {
                path: self.path.clone(),
                name: name.to_string(),
                available: closest_first(name, &self.names),
            })?;
        let (start, end) = info.data_offsets;
        let bytes = self
            .data_start
            .checked_add(start)
            .zip(self.data_start.checked_add(end))
            .and_then(|(s, e)| self.bytes.get(s..e))
            .ok_or_else(|| {
                IoError::malformed(&self.path, format!("tensor `{name}` lies outside the file"))
            })?;
        let data = decode(&self.path, name, info.dtype, bytes)?;
        let numel = info.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if numel != Some(data.len()) {
            return Err(IoError::malformed(
                &self.path,
                format!(
                    "tensor `{name}`: shape {:?} does not match its data",
                    info.shape
                ),
            ));
        }
        Ok(HostTensor {
            shape: info.shape.clone(),
            data,
        })
    }
}

/// Converts little-endian element bytes of a safetensors dtype into host data.
fn decode(path: &Path, name: &str, dtype: Dtype, b: &[u8]) -> Result<HostData, IoError> {
    fn le<const N: usize>(c: &[u8]) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        a
    }
    let size = match dtype {
        Dtype::BOOL | Dtype::U8 | Dtype::I8 => 1,
        Dtype::F16 | Dtype::BF16 | Dtype::I16 | Dtype::U16 => 2,
        Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
        Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        other => {
            return Err(IoError::unsupported(
                path,
                format!("tensor `{name}` has element type {other:?}"),
            ))
        }
    };
    if !b.len().is_multiple_of(size) {
        return Err(IoError::malformed(
            path,
            format!(
                "tensor `{name}`: {} bytes is not a whole number of elements",
                b.len()
            ),
        ));
    }
    let c = b.chunks_exact(size);
    Ok(match dtype {
        Dtype::F32 => HostData::F32(c.map(|x| f32::from_le_bytes(le(x))).collect()),
        Dtype::F64 => HostData::F64(c.map(|x| f64::from_le_bytes(le(x))).collect()),
        Dtype::F16 => HostData::F16(c.map(|x| f16::from_le_bytes(le(x))).collect()),
        Dtype::BF16 => HostData::BF16(c.map(|x| bf16::from_le_bytes(le(x))).collect()),
        Dtype::BOOL => HostData::Bool(b.iter().map(|&x| u8::from(x != 0)).collect()),
        Dtype::U8 => HostData::I64(b.iter().map(|&x| i64::from(x)).collect()),
        Dtype::I8 => HostData::I64(b.iter().map(|&x| i64::from(x as i8)).collect()),
        Dtype::I16 => HostData::I64(c.map(|x| i64::from(i16::from_le_bytes(le(x)))).collect()),
        Dtype::U16 => HostData::I64(c.map(|x| i64::from(u16::from_le_bytes(le(x)))).collect()),
        Dtype::I32 => HostData::I64(c.map(|x| i64::from(i32::from_le_bytes(le(x)))).collect()),
        Dtype::U32 => HostData::I64(c.map(|x| i64::from(u32::from_le_bytes(le(x)))).collect()),
        Dtype::I64 => HostData::I64(c.map(|x| i64::from_le_bytes(le(x))).collect()),
        _ => {
            let mut out = Vec::with_capacity(b.len() / 8);
            for x in c {
                let v = u64::from_le_bytes(le(x));
                out.push(i64::try_from(v).map_err(|_| {
                    IoError::unsupported(
                        path,
                        format!("tensor `{name}`: u64 value {v} exceeds i64"),
                    )
                })?);
            }
            HostData::I64(out.into())
        }
    })
}

/// The names of all tensors in a safetensors file, sorted.
pub fn safetensors_names(path: &Path) -> Result<Vec<String>, IoError> {
    Ok(SafetensorsFile::open(path)?.names)
}

/// Reads one tensor from a safetensors file. To read several, open a [`SafetensorsFile`] once.
pub fn read_safetensors(path: &Path, name: &str) -> Result<HostTensor, IoError> {
    SafetensorsFile::open(path)?.get(name)
}

/// Gathers the tensors whose names match `pattern` — a name with one `{…}` placeholder such as
/// `enc.{l}.q.weight` — where the placeholder stands for a non-negative integer. The integers
/// must be exactly `0..n` and every tensor must have the same shape and dtype; the result stacks
/// them in index order along a new leading axis of length `n`, and the sorted indices are
/// returned alongside.
pub fn read_stacked(
    file: &SafetensorsFile,
    pattern: &str,
) -> Result<(HostTensor, Vec<i64>), IoError> {
    let bad = |detail: &str| IoError::BadPattern {
        path: file.path.clone(),
        pattern: pattern.to_string(),
        detail: detail.to_string(),
    };
    let open = pattern
        .find('{')
        .ok_or_else(|| bad("it has no `{…}` placeholder"))?;
    let close = pattern[open..]
        .find('}')
        .map(|i| open + i)
        .ok_or_else(|| bad("the `{` is never closed"))?;
    let (prefix, suffix) = (&pattern[..open], &pattern[close + 1..]);
    if suffix.contains(['{', '}']) || prefix.contains('}') {
        return Err(bad("it must contain exactly one placeholder"));
    }

    let mut found: Vec<(i64, &str)> = Vec::new();
    for name in &file.names {
        let middle = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix));
        if let Some(m) = middle {
            if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(i) = m.parse::<i64>() {
                    found.push((i, name));
                }
            }
        }
    }
    if found.is_empty() {
        let mut sample = closest_first(pattern, &file.names);
        sample.truncate(8);
        return Err(IoError::NoMatch {
            path: file.path.clone(),
            pattern: pattern.to_string(),
            sample,
        });
    }
    // Sort by index; "01" and "1" would both map to 1, which is rejected as ambiguous.
    found.sort();
    if let Some(w) = found.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(bad(&format!(
            "`{}` and `{}` both give index {}",
            w[0].1, w[1].1, w[0].0
        )));
    }
    let indices: Vec<i64> = found.iter().map(|&(i, _)| i).collect();
    if let Some(missing) = (0i64..).zip(&indices).find(|(want, &got)| *want != got) {
        return Err(IoError::StackGap {
            path: file.path.clone(),
            pattern: pattern.to_string(),
            found: indices.clone(),
            missing: missing.0,
        });
    }

    let first = file.get(found[0].1)?;
    let mut parts = Vec::with_capacity(found.len());
    for &(_, name) in &found[1..] {
        let t = file.get(name)?;
        if t.shape != first.shape || t.dtype() != first.dtype() {
            return Err(IoError::Mismatch {
                path: file.path.clone(),
                first: found[0].1.to_string(),
                first_desc: format!("shape {:?} ({})", first.shape, first.dtype()),
                second: name.to_string(),
                second_desc: format!("shape {:?} ({})", t.shape, t.dtype()),
            });
        }
        parts.push(t.data);
    }
    let mut shape = vec![found.len()];
    shape.extend_from_slice(&first.shape);
    let mut data = first.data;
    for p in parts {
        match (&mut data, p) {
            (HostData::F32(a), HostData::F32(b)) => append(a, &b),
            (HostData::F64(a), HostData::F64(b)) => append(a, &b),
            (HostData::F16(a), HostData::F16(b)) => append(a, &b),
            (HostData::BF16(a), HostData::BF16(b)) => append(a, &b),
            (HostData::Bool(a), HostData::Bool(b)) => append(a, &b),
            (HostData::I64(a), HostData::I64(b)) => append(a, &b),
            _ => {
                return Err(IoError::malformed(
                    &file.path,
                    "dtypes changed while stacking",
                ))
            }
        }
    }
    Ok((HostTensor { shape, data }, indices))
}

/// `b`'s elements after `a`'s (moving `a`'s vector out rather than copying it).
fn append<T: Clone>(a: &mut Buf<T>, b: &[T]) {
    let mut v = std::mem::take(a).into_vec();
    v.extend_from_slice(b);
    *a = v.into();
}

/// One tensor prepared for serialisation: its safetensors dtype, shape and little-endian bytes.
struct Encoded {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Encoded {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Writes `tensors` (name, tensor) to a safetensors file atomically. Names must be unique.
pub fn write_safetensors(path: &Path, tensors: &[(String, HostTensor)]) -> Result<(), IoError> {
    let err = |detail: String| IoError::Write {
        path: path.to_path_buf(),
        detail,
    };
    let mut encoded = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let numel = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if numel != Some(t.data.len()) {
            return Err(err(format!(
                "tensor `{name}` has {} elements but its shape {:?} needs {numel:?}",
                t.data.len(),
                t.shape
            )));
        }
        let (dtype, bytes): (Dtype, Vec<u8>) = match &t.data {
            HostData::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            HostData::F64(v) => (Dtype::F64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            HostData::F16(v) => (Dtype::F16, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            HostData::BF16(v) => (
                Dtype::BF16,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            HostData::I64(v) => (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            HostData::Bool(v) => (Dtype::BOOL, v.iter().map(|&b| u8::from(b != 0)).collect()),
        };
        let shape = t.shape.clone();
        encoded.push((
            name.as_str(),
            Encoded {
                dtype,
                shape,
                bytes,
            },
        ));
    }
    let mut names: Vec<&str> = encoded.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(err(format!("tensor name `{}` appears twice", w[0])));
    }
    let bytes = safetensors::serialize(encoded.iter().map(|(n, e)| (*n, e)), None)
        .map_err(|e| err(e.to_string()))?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests;
