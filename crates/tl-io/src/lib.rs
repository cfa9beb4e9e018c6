//! File formats for TensorLogic: how tensors and relations get into and out of a program.
//!
//! - NumPy `.npy` ([`read_npy`], [`write_npy`]) for single arrays exchanged with Python;
//! - safetensors ([`SafetensorsFile`], [`read_safetensors`], [`read_stacked`],
//!   [`write_safetensors`]) for model weights, including per-layer tensors stacked into one;
//! - text through a Hugging Face `tokenizer.json` ([`tokenize_file`]), for language models;
//! - IDX files ([`read_idx`]), plain or gzip-compressed, for the MNIST family of datasets;
//! - CSV relations ([`read_csv_relation`], [`write_csv_relation`]) for ground facts;
//! - [`write_atomic`], used by every writer, so an interrupted save never leaves a torn file.
//!
//! Every failure is an [`IoError`] that names the file involved and can suggest a fix
//! ([`IoError::hint`]). Malformed input yields errors, never panics.
#![deny(missing_docs)]
// Library code reports failures as errors; only tests may unwrap.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod atomic;
mod csv;
mod delimited;
mod error;
mod idx;
mod npy;
mod npy_header;
mod safetensors;
mod tokenize;

pub use crate::atomic::{replace_folder, write_atomic, write_atomic_with};
pub use crate::csv::{read_csv_relation, write_csv_relation, CsvColumn, CsvColumns};
pub use crate::delimited::{read_delimited_relation, write_delimited_relation};
pub use crate::error::IoError;
pub use crate::idx::{is_idx_name, read_idx};
pub use crate::npy::{read_npy, write_npy};
pub use crate::safetensors::{
    read_safetensors, read_stacked, safetensors_names, write_safetensors, SafetensorsFile,
};
pub use crate::tokenize::{
    load_tokenizer, read_sentences, tokenize_file, TokenizeOptions, TokenizedText,
};
pub use tl_core::{DType, HostData, HostTensor};

#[cfg(test)]
mod tests {
    //! Cross-format checks: each public entry point, driven into each of its failure modes,
    //! must produce an error that names the file and offers a hint.
    use super::*;
    use std::path::{Path, PathBuf};

    fn assert_good_error(err: &IoError, file: &Path) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(err.to_string().contains(&name), "{err} should name {name}");
        assert_eq!(err.path(), file);
        let hint = err.hint().expect("every error has a hint");
        assert!(
            !hint.is_empty() && !hint.contains('\n'),
            "one-line hint: {hint}"
        );
    }

    #[test]
    fn a_tensor_survives_npy_then_safetensors_then_npy() {
        let dir = tempfile::tempdir().unwrap();
        let t = HostTensor::from_f64(
            vec![3, 1, 2],
            vec![1.0, -2.0, 3.5, 0.0, 1e6, -7.25],
            DType::F64,
        );
        let npy = dir.path().join("a.npy");
        let st = dir.path().join("a.safetensors");
        write_npy(&npy, &t).unwrap();
        let back = read_npy(&npy).unwrap();
        write_safetensors(&st, &[("a".into(), back)]).unwrap();
        let again = read_safetensors(&st, "a").unwrap();
        write_npy(&npy, &again).unwrap();
        assert_eq!(read_npy(&npy).unwrap(), t);
    }

    #[test]
    fn every_variant_from_real_calls() {
        let dir = tempfile::tempdir().unwrap();
        let at = |n: &str| -> PathBuf { dir.path().join(n) };

        let missing = at("missing.npy");
        let e = read_npy(&missing).unwrap_err();
        assert!(matches!(e, IoError::NotFound { .. }));
        assert_good_error(&e, &missing);

        // Reading a folder as a file fails with a read error, not "not found".
        let folder = at("folder.npy");
        std::fs::create_dir(&folder).unwrap();
        let e = read_npy(&folder).unwrap_err();
        assert!(matches!(e, IoError::Read { .. }), "{e}");
        assert_good_error(&e, &folder);

        let junk = at("junk.npy");
        std::fs::write(&junk, b"definitely not numpy").unwrap();
        let e = read_npy(&junk).unwrap_err();
        assert!(matches!(e, IoError::Malformed { .. }));
        assert_good_error(&e, &junk);

        let bf = at("bf.npy");
        let t = HostTensor::from_f64(vec![1], vec![1.0], DType::BF16);
        let e = write_npy(&bf, &t).unwrap_err();
        assert!(matches!(e, IoError::Unsupported { .. }));
        assert_good_error(&e, &bf);

        let st = at("w.safetensors");
        let layer = HostTensor::from_f32(vec![2], vec![1.0, 2.0]);
        let other = HostTensor::from_f32(vec![3], vec![1.0, 2.0, 3.0]);
        write_safetensors(
            &st,
            &[
                ("l.0".into(), layer.clone()),
                ("l.1".into(), other),
                ("g.1".into(), layer),
            ],
        )
        .unwrap();
        let e = read_safetensors(&st, "nope").unwrap_err();
        assert!(matches!(e, IoError::MissingTensor { .. }));
        assert_good_error(&e, &st);
        let f = SafetensorsFile::open(&st).unwrap();
        for (pattern, want) in [
            ("x.{i}", "NoMatch"),
            ("l.{i}", "Mismatch"),
            ("g.{i}", "StackGap"),
            ("nobraces", "BadPattern"),
        ] {
            let e = read_stacked(&f, pattern).unwrap_err();
            assert!(format!("{e:?}").starts_with(want), "{pattern}: {e:?}");
            assert_good_error(&e, &st);
        }

        let csv = at("facts.csv");
        std::fs::write(&csv, "a,b\nc\n").unwrap();
        let e = read_csv_relation(&csv).unwrap_err();
        assert!(matches!(e, IoError::Ragged { line: 2, .. }));
        assert_good_error(&e, &csv);

        let nowhere = at("no/such/folder/out.bin");
        let e = write_atomic(&nowhere, b"x").unwrap_err();
        assert!(matches!(e, IoError::Write { .. }));
        assert_good_error(&e, &nowhere);
        assert!(!at("no").exists());
    }
}
