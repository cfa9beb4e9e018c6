//! Training checkpoints: a folder holding `params.safetensors` (the learnt tensors under their
//! Tensor Logic names) and `optimizer.safetensors` (the optimiser's state, plus the step count
//! and which `minimize` of the program it belongs to, as 0-d i64 tensors named `step` and
//! `minimize`).
//!
//! The folder is replaced as one unit ([`tl_io::replace_folder`]): both files are written into
//! a fresh folder beside it, which then takes its place, so an interrupt at any moment leaves
//! either the previous checkpoint or the new one. The optimiser file also records a digest of
//! the params file it belongs to; [`load`] refuses a pair whose digest does not match (files
//! copied together from different checkpoints) instead of resuming from parameters and
//! optimiser state of different steps.

use std::path::{Path, PathBuf};
use tl_backend::{HostData, HostTensor};
use tl_io::{write_safetensors, IoError, SafetensorsFile};

/// The parameters file inside a checkpoint folder.
pub const PARAMS_FILE: &str = "params.safetensors";
/// The optimiser-state file inside a checkpoint folder.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// Name of the step counter in the optimiser file (reserved: no optimiser state may use it).
pub const STEP: &str = "step";
/// Name of the params-file digest in the optimiser file (reserved like [`STEP`]).
pub const PARAMS_DIGEST: &str = "params_digest";
/// Name of the `minimize` ordinal in the optimiser file (reserved like [`STEP`]).
pub const MINIMIZE: &str = "minimize";

/// A checkpoint read back by [`load`].
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Optimiser steps taken when the checkpoint was saved.
    pub step: u64,
    /// Which `minimize` command of the program (0 for the first) was training; checkpoints
    /// saved before this was recorded read as 0.
    pub minimize: u64,
    /// The parameters by Tensor Logic name, sorted by name.
    pub params: Vec<(String, HostTensor)>,
    /// The optimiser state by name, sorted by name (without the reserved `step` and
    /// `params_digest` entries).
    pub optimizer: Vec<(String, HostTensor)>,
}

/// Saves a checkpoint as the folder `dir` (created if missing, replaced as a unit if not):
/// `params.safetensors`, then `optimizer.safetensors` with the optimiser state, `step`,
/// `minimize` and the params file's digest. Optimiser state may not use the reserved names.
pub fn save(
    dir: &Path,
    step: u64,
    minimize: u64,
    params: &[(String, HostTensor)],
    optimizer: &[(String, HostTensor)],
) -> Result<(), IoError> {
    let opt_path = dir.join(OPTIMIZER_FILE);
    if let Some((name, _)) = optimizer
        .iter()
        .find(|(n, _)| n == STEP || n == PARAMS_DIGEST || n == MINIMIZE)
    {
        return Err(IoError::Write {
            path: opt_path,
            detail: format!("optimiser state may not be named `{name}` (the name is reserved)"),
        });
    }
    let to_i64 = |v: u64, what: &str| {
        i64::try_from(v).map_err(|_| IoError::Write {
            path: opt_path.clone(),
            detail: format!("{what} {v} does not fit a 64-bit signed integer"),
        })
    };
    let step_i64 = to_i64(step, "step")?;
    let minimize_i64 = to_i64(minimize, "minimize")?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| IoError::Write {
            path: parent.to_path_buf(),
            detail: format!("cannot create the folder: {e}"),
        })?;
    }
    tl_io::replace_folder(dir, &[PARAMS_FILE, OPTIMIZER_FILE], |tmp| {
        let params_path = tmp.join(PARAMS_FILE);
        write_safetensors(&params_path, params)?;
        let digest = file_digest(&params_path)?;
        let mut state = optimizer.to_vec();
        state.push((STEP.to_string(), scalar_i64(step_i64)));
        state.push((MINIMIZE.to_string(), scalar_i64(minimize_i64)));
        state.push((PARAMS_DIGEST.to_string(), scalar_i64(digest as i64)));
        write_safetensors(&tmp.join(OPTIMIZER_FILE), &state)
    })
}

/// Loads the checkpoint saved in `dir`. A missing folder or file is [`IoError::NotFound`]
/// naming it; a corrupt file, a missing or ill-formed `step`, or a params file that does not
/// belong to the optimiser file is [`IoError::Malformed`].
pub fn load(dir: &Path) -> Result<Checkpoint, IoError> {
    if !dir.is_dir() {
        return Err(if dir.exists() {
            IoError::Read {
                path: dir.to_path_buf(),
                detail: "a checkpoint must be a folder, not a file".into(),
            }
        } else {
            IoError::NotFound {
                path: dir.to_path_buf(),
            }
        });
    }
    let params_path = dir.join(PARAMS_FILE);
    let opt_path = dir.join(OPTIMIZER_FILE);
    let params = read_all(&SafetensorsFile::open(&params_path)?)?;
    let opt = SafetensorsFile::open(&opt_path)?;
    let step = read_scalar(&opt, STEP)?;
    let step = u64::try_from(step).map_err(|_| malformed(&opt_path, "`step` is negative"))?;
    let minimize = if opt.names().iter().any(|n| n == MINIMIZE) {
        u64::try_from(read_scalar(&opt, MINIMIZE)?)
            .map_err(|_| malformed(&opt_path, "`minimize` is negative"))?
    } else {
        0
    };
    let digest = read_scalar(&opt, PARAMS_DIGEST)?;
    if digest as u64 != file_digest(&params_path)? {
        return Err(malformed(
            &params_path,
            format!(
                "it does not belong to {} (a save was interrupted?); \
                 the two files come from different steps",
                opt_path.display()
            ),
        ));
    }
    let optimizer = read_all(&opt)?
        .into_iter()
        .filter(|(n, _)| n != STEP && n != PARAMS_DIGEST && n != MINIMIZE)
        .collect();
    Ok(Checkpoint {
        step,
        minimize,
        params,
        optimizer,
    })
}

fn scalar_i64(v: i64) -> HostTensor {
    HostTensor {
        shape: Vec::new(),
        data: HostData::I64(vec![v].into()),
    }
}

fn malformed(path: &Path, detail: impl Into<String>) -> IoError {
    IoError::Malformed {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// Every tensor of an opened file, by name (sorted).
fn read_all(file: &SafetensorsFile) -> Result<Vec<(String, HostTensor)>, IoError> {
    file.names()
        .iter()
        .map(|n| Ok((n.clone(), file.get(n)?)))
        .collect()
}

/// The 0-d i64 tensor `name` of the optimiser file.
fn read_scalar(file: &SafetensorsFile, name: &str) -> Result<i64, IoError> {
    let path: PathBuf = file.path().to_path_buf();
    let t = file.get(name)?;
    match (&t.data, t.shape.is_empty()) {
        (HostData::I64(v), true) if v.len() == 1 => Ok(v[0]),
        _ => Err(malformed(
            &path,
            format!(
                "`{name}` must be a 0-d i64 tensor, found shape {:?} ({})",
                t.shape,
                t.dtype()
            ),
        )),
    }
}

/// A 64-bit FNV-1a digest of a file's bytes: enough to tell two saves apart, not a
/// cryptographic check.
fn file_digest(path: &Path) -> Result<u64, IoError> {
    let bytes = std::fs::read(path).map_err(|e| IoError::Read {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    Ok(bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tl_backend::DType;

    type Named = Vec<(String, HostTensor)>;

    fn sample() -> (Named, Named) {
        let params = vec![
            (
                "W".to_string(),
                HostTensor::from_f32(vec![2, 3], vec![0.5, -1.0, 2.0, 3.25, 0.0, -7.5]),
            ),
            ("b".to_string(), HostTensor::scalar(1.5, DType::F64)),
        ];
        let optimizer = vec![
            (
                "adam.m.W".to_string(),
                HostTensor::from_f32(vec![2, 3], vec![0.1; 6]),
            ),
            (
                "adam.v.W".to_string(),
                HostTensor::from_f32(vec![2, 3], vec![0.01; 6]),
            ),
        ];
        (params, optimizer)
    }

    #[test]
    fn round_trip_creates_the_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ckpt").join("nested");
        let (params, optimizer) = sample();
        save(&dir, 300, 0, &params, &optimizer).unwrap();
        let back = load(&dir).unwrap();
        assert_eq!(back.step, 300);
        assert_eq!(back.minimize, 0);
        assert_eq!(back.params, params);
        assert_eq!(back.optimizer, optimizer);
        // Only the two files: no temporary file is left behind.
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec![OPTIMIZER_FILE, PARAMS_FILE]);
    }

    #[test]
    fn params_file_holds_just_the_tl_names_and_step_is_0d_i64() {
        let tmp = tempfile::tempdir().unwrap();
        let (params, optimizer) = sample();
        save(tmp.path(), 7, 0, &params, &optimizer).unwrap();
        let p = SafetensorsFile::open(&tmp.path().join(PARAMS_FILE)).unwrap();
        assert_eq!(p.names(), ["W", "b"]);
        let o = SafetensorsFile::open(&tmp.path().join(OPTIMIZER_FILE)).unwrap();
        let step = o.get(STEP).unwrap();
        assert!(step.shape.is_empty());
        assert_eq!(step.data, HostData::I64(vec![7].into()));
    }

    #[test]
    fn saving_again_replaces_the_checkpoint() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut params, optimizer) = sample();
        save(tmp.path(), 100, 0, &params, &optimizer).unwrap();
        params[1].1 = HostTensor::scalar(-2.0, DType::F64);
        save(tmp.path(), 200, 0, &params, &[]).unwrap();
        let back = load(tmp.path()).unwrap();
        assert_eq!(back.step, 200);
        assert_eq!(back.params, params);
        assert!(back.optimizer.is_empty());
    }

    #[test]
    fn missing_folder_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("no_such_checkpoint");
        let e = load(&dir).unwrap_err();
        assert!(matches!(e, IoError::NotFound { .. }), "{e}");
        assert!(e.to_string().contains("no_such_checkpoint"), "{e}");
        assert_eq!(e.path(), dir.as_path());
    }

    #[test]
    fn missing_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let (params, optimizer) = sample();
        save(tmp.path(), 1, 0, &params, &optimizer).unwrap();
        std::fs::remove_file(tmp.path().join(OPTIMIZER_FILE)).unwrap();
        let e = load(tmp.path()).unwrap_err();
        assert!(matches!(e, IoError::NotFound { .. }), "{e}");
        assert!(e.to_string().contains(OPTIMIZER_FILE), "{e}");
    }

    #[test]
    fn corrupt_files_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let (params, optimizer) = sample();
        save(tmp.path(), 5, 0, &params, &optimizer).unwrap();
        let p = tmp.path().join(PARAMS_FILE);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let e = load(tmp.path()).unwrap_err();
        assert!(matches!(e, IoError::Malformed { .. }), "{e}");
        assert!(e.to_string().contains(PARAMS_FILE), "{e}");

        save(tmp.path(), 5, 0, &params, &optimizer).unwrap();
        std::fs::write(tmp.path().join(OPTIMIZER_FILE), b"not a safetensors file").unwrap();
        let e = load(tmp.path()).unwrap_err();
        assert!(matches!(e, IoError::Malformed { .. }), "{e}");
        assert!(e.to_string().contains(OPTIMIZER_FILE), "{e}");
    }

    #[test]
    fn a_step_of_the_wrong_kind_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let (params, _) = sample();
        save(tmp.path(), 5, 0, &params, &[]).unwrap();
        let digest = file_digest(&tmp.path().join(PARAMS_FILE)).unwrap();
        write_safetensors(
            &tmp.path().join(OPTIMIZER_FILE),
            &[
                (STEP.into(), HostTensor::from_f32(vec![1], vec![5.0])),
                (PARAMS_DIGEST.into(), scalar_i64(digest as i64)),
            ],
        )
        .unwrap();
        let e = load(tmp.path()).unwrap_err();
        assert!(e.to_string().contains("0-d i64"), "{e}");
    }

    #[test]
    fn params_from_another_save_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut params, optimizer) = sample();
        save(tmp.path(), 10, 0, &params, &optimizer).unwrap();
        // As if a later save replaced params.safetensors and stopped before the optimiser file.
        params[1].1 = HostTensor::scalar(9.0, DType::F64);
        write_safetensors(&tmp.path().join(PARAMS_FILE), &params).unwrap();
        let e = load(tmp.path()).unwrap_err();
        assert!(matches!(e, IoError::Malformed { .. }), "{e}");
        assert!(e.to_string().contains("interrupted"), "{e}");
    }

    #[test]
    fn reserved_names_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (params, _) = sample();
        let bad = vec![(STEP.to_string(), HostTensor::scalar(0.0, DType::F32))];
        let e = save(tmp.path(), 1, 0, &params, &bad).unwrap_err();
        assert!(e.to_string().contains("reserved"), "{e}");
        assert!(!tmp.path().join(PARAMS_FILE).exists());
    }
}
