//! Optimiser parity with PyTorch: for a fixed quadratic and a fixed tiny MLP, 100 steps of each
//! optimiser and schedule end at the same parameters as torch.optim, within
//! max(1e-5, 1e-5·|reference|).
//!
//! The programs, their data and PyTorch's float64 results live in `tests/parity/<model>/`
//! (`<config>.tl`, `<config>.expected.safetensors`); `scripts/torch_parity.py` wrote them. Each
//! model's folder is copied to a scratch folder under Cargo's `CARGO_TARGET_TMPDIR` and every program there is run with
//! `tl run --dtype f64 --device cpu`; each writes `<config>.result.safetensors`. Every mismatch
//! is reported at once.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Tolerance: absolute 1e-5, or relative 1e-5 for larger values.
const TOL: f64 = 1e-5;

fn parity_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/parity")
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// Every `(model folder, config name)` with a program and an expected result, sorted.
fn configurations() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut models: Vec<PathBuf> = std::fs::read_dir(parity_dir())
        .expect("tests/parity exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    models.sort();
    for model in models {
        let mut names: Vec<String> = std::fs::read_dir(&model)
            .expect("readable model folder")
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".tl").map(str::to_string)
            })
            .filter(|n| model.join(format!("{n}.expected.safetensors")).is_file())
            .collect();
        names.sort();
        out.extend(names.into_iter().map(|n| (model.clone(), n)));
    }
    out
}

/// A tensor read back: name, shape, values.
type Named = (String, Vec<usize>, Vec<f64>);

/// The tensors of a safetensors file as (name, shape, values), for F64 and F32 entries (the
/// format: an 8-byte little-endian header length, a JSON header, then the data).
fn read_safetensors(path: &Path) -> Result<Vec<Named>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = |why: &str| format!("{}: not a safetensors file ({why})", path.display());
    let len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
        .ok_or_else(|| bad("too short"))?;
    let header = bytes.get(8..8 + len).ok_or_else(|| bad("header length"))?;
    let data = &bytes[8 + len..];
    let header: serde_json::Value =
        serde_json::from_slice(header).map_err(|e| bad(&e.to_string()))?;
    let mut out = Vec::new();
    for (name, entry) in header.as_object().ok_or_else(|| bad("header"))? {
        if name == "__metadata__" {
            continue;
        }
        let shape: Vec<usize> = entry["shape"]
            .as_array()
            .ok_or_else(|| bad("shape"))?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize).ok_or_else(|| bad("shape")))
            .collect::<Result<_, _>>()?;
        let offsets = entry["data_offsets"]
            .as_array()
            .ok_or_else(|| bad("offsets"))?;
        let (start, end) = match (offsets.first(), offsets.get(1)) {
            (Some(a), Some(b)) => (
                a.as_u64().unwrap_or(0) as usize,
                b.as_u64().unwrap_or(0) as usize,
            ),
            _ => return Err(bad("offsets")),
        };
        let raw = data.get(start..end).ok_or_else(|| bad("offsets"))?;
        let values: Vec<f64> = match entry["dtype"].as_str() {
            Some("F64") => raw
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()))
                .collect(),
            Some("F32") => raw
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap_or_default())))
                .collect(),
            other => return Err(format!("{name}: element type {other:?} is not compared")),
        };
        out.push((name.clone(), shape, values));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Compares one run's output file with the reference, appending any problems.
fn compare(label: &str, got_path: &Path, want_path: &Path, problems: &mut Vec<String>) {
    let want = match read_safetensors(want_path) {
        Ok(t) => t,
        Err(e) => return problems.push(format!("{label}: reading the reference: {e}")),
    };
    let got = match read_safetensors(got_path) {
        Ok(t) => t,
        Err(e) => return problems.push(format!("{label}: reading the result: {e}")),
    };
    for (name, want_shape, w) in &want {
        let Some((_, shape, g)) = got.iter().find(|(n, ..)| n == name) else {
            problems.push(format!("{label}: {name} is missing from the result"));
            continue;
        };
        if shape != want_shape {
            problems.push(format!(
                "{label}: {name} has shape {shape:?}, PyTorch's {want_shape:?}"
            ));
            continue;
        }
        // (flat index, value, reference, difference) of the worst element out of tolerance.
        let mut worst: Option<(usize, f64, f64, f64)> = None;
        let mut bad = 0;
        for (i, (&x, &y)) in g.iter().zip(w).enumerate() {
            let err = (x - y).abs();
            if err.is_nan() || err > TOL.max(TOL * y.abs()) {
                bad += 1;
                let err = if err.is_nan() { f64::INFINITY } else { err };
                if worst.is_none_or(|(.., e)| err > e) {
                    worst = Some((i, x, y, err));
                }
            }
        }
        if let Some((i, x, y, _)) = worst {
            problems.push(format!(
                "{label}: {name}: {bad} of {} elements differ; worst at flat index {i}: {x} vs \
                 PyTorch {y} (difference {:.3e})",
                g.len(),
                (x - y).abs()
            ));
        }
    }
}

#[test]
fn optimizers_match_torch_optim() {
    let configs = configurations();
    assert_eq!(
        configs.len(),
        18,
        "expected 9 configurations for each of 2 models in tests/parity; rerun \
         scripts/torch_parity.py"
    );
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("optimizer_parity");
    let _ = std::fs::remove_dir_all(&tmp);
    let mut problems = Vec::new();
    for (model, config) in &configs {
        let model_name = model.file_name().unwrap().to_string_lossy().into_owned();
        let label = format!("{model_name}/{config}");
        let work = tmp.join(&model_name);
        if !work.is_dir() {
            copy_dir(model, &work).expect("copy the parity data");
        }
        let out = Command::new(env!("CARGO_BIN_EXE_tl"))
            .args(["run", "--dtype", "f64", "--device", "cpu"])
            .arg(format!("{config}.tl"))
            .current_dir(&work)
            .output()
            .expect("run tl");
        if !out.status.success() {
            problems.push(format!(
                "{label}: tl run failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
            ));
            continue;
        }
        compare(
            &label,
            &work.join(format!("{config}.result.safetensors")),
            &model.join(format!("{config}.expected.safetensors")),
            &mut problems,
        );
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) over {} configurations compared with torch.optim:\n{}",
        problems.len(),
        configs.len(),
        problems.join("\n")
    );
}

/// The checked-in references are complete and readable, and the comparison finds a reference
/// equal to itself and not to a perturbed copy (so the test above can only fail for a
/// real difference).
#[test]
fn parity_data_is_complete_and_the_comparison_works() {
    let configs = configurations();
    assert_eq!(configs.len(), 18);
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("optimizer_parity_self");
    std::fs::create_dir_all(&scratch).expect("scratch folder");
    for (model, config) in &configs {
        let want = model.join(format!("{config}.expected.safetensors"));
        let tensors = read_safetensors(&want).expect("readable reference");
        assert!(!tensors.is_empty());
        assert!(tensors
            .iter()
            .all(|(_, _, v)| v.iter().all(|x| x.is_finite())));
        let mut problems = Vec::new();
        compare(config, &want, &want, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        // Flip one bit of the last element's exponent: a large change.
        let mut bytes = std::fs::read(&want).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0x10;
        let bent = scratch.join("bent.safetensors");
        std::fs::write(&bent, bytes).unwrap();
        compare(config, &bent, &want, &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }
}
