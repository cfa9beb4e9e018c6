//! all-MiniLM-L6-v2 written in Tensor Logic (`examples/minilm/minilm.tl`) against the
//! sentence-transformers (PyTorch) reference checked in beside it, on the CPU in f32: every
//! sentence's embedding must have cosine similarity >= 0.99999 and max abs error <= 1e-4, and
//! the tokenizer must give the token ids the reference model saw.
//!
//! The model is not in the repository: `examples/minilm/fetch.sh` downloads it. Without it the
//! tests are reported as ignored in the test summary (with the reason), unless
//! `TL_MINILM_REQUIRED=1` (set by CI, which fetches the model first) makes a missing model a
//! failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The repository root: the nearest folder, from the current directory upwards, that holds
/// `examples/minilm`.
fn repo_root() -> PathBuf {
    let start = std::env::current_dir().expect("current directory");
    let mut dir: &Path = &start;
    loop {
        if dir.join("examples").join("minilm").is_dir() {
            return dir.to_path_buf();
        }
        dir = dir
            .parent()
            .unwrap_or_else(|| panic!("no `examples/minilm` above {}", start.display()));
    }
}

/// Why the tests cannot run (the model is missing and not required), if so.
fn model_missing(root: &Path) -> Option<String> {
    let model = root.join("examples/minilm/model");
    let present =
        model.join("model.safetensors").is_file() && model.join("tokenizer.json").is_file();
    let required = std::env::var_os("TL_MINILM_REQUIRED").is_some_and(|v| v != "0");
    (!present && !required).then(|| {
        format!(
            "{} has no model.safetensors and tokenizer.json; run examples/minilm/fetch.sh",
            model.display()
        )
    })
}

/// The model folder, or `None` (after saying why) when the test is to be skipped.
fn model_dir(root: &Path) -> Option<PathBuf> {
    let model = root.join("examples/minilm/model");
    if model.join("model.safetensors").is_file() && model.join("tokenizer.json").is_file() {
        return Some(model);
    }
    let why = format!(
        "{} has no model.safetensors and tokenizer.json; run examples/minilm/fetch.sh",
        model.display()
    );
    if std::env::var_os("TL_MINILM_REQUIRED").is_some_and(|v| v != "0") {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
    None
}

/// The reference record: the sentences and the token ids the PyTorch model saw.
fn reference_record(root: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(root.join("examples/minilm/reference_tokens.json"))
        .expect("examples/minilm/reference_tokens.json is readable");
    serde_json::from_str(&text).expect("reference_tokens.json is JSON")
}

fn tokenizer_gives_the_reference_token_ids() {
    let root = repo_root();
    let Some(model) = model_dir(&root) else {
        return;
    };
    let record = reference_record(&root);
    let text = root.join("examples/minilm/sentences.txt");
    let sentences = tl_io::read_sentences(&text).expect("sentences.txt is readable");
    let expected: Vec<String> = record["sentences"]
        .as_array()
        .expect("sentences")
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        sentences, expected,
        "examples/minilm/sentences.txt differs from the sentences of the reference; restore it \
         (git checkout examples/minilm/sentences.txt) or rerun scripts/minilm_reference.py"
    );
    let options = tl_io::TokenizeOptions {
        max_length: Some(256),
        length: None,
    };
    let got =
        tl_io::tokenize_file(&text, &model.join("tokenizer.json"), options).expect("tokenizes");
    let want: Vec<Vec<u32>> = serde_json::from_value(record["token_ids"].clone())
        .expect("token_ids is a list of lists of ids");
    assert_eq!(got.ids, want);
    assert_eq!(got.vocab_size, 30522);
}

fn embeddings_match_pytorch_on_the_cpu() {
    let root = repo_root();
    if model_dir(&root).is_none() {
        return;
    }
    let reference =
        tl_io::read_npy(&root.join("examples/minilm/reference.npy")).expect("reference.npy");
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tl"))
        .current_dir(&root)
        .args([
            "run",
            "--device",
            "cpu",
            "--json",
            "examples/minilm/minilm.tl",
        ])
        .output()
        .expect("tl runs");
    let seconds = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "tl run failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answer: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["query"] == "Emb")
        .expect("an answer for `Emb?`");
    let shape: Vec<usize> = serde_json::from_value(answer["shape"].clone()).expect("shape");
    let data: Vec<f64> = serde_json::from_value(answer["data"].clone()).expect("data");
    assert_eq!(shape, reference.shape, "embedding shape");
    let want = reference.data.to_f64();
    let dim = shape[1];
    println!("tl run --device cpu examples/minilm/minilm.tl: {seconds:.2} s");
    println!("sentence  cosine        max abs error");
    let mut worst = (1.0f64, 0.0f64);
    for (s, (got, want)) in data.chunks(dim).zip(want.chunks(dim)).enumerate() {
        let dot: f64 = got.iter().zip(want).map(|(a, b)| a * b).sum();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let cosine = dot / (norm(got) * norm(want));
        let err = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!("{s:>8}  {cosine:.9}  {err:.3e}");
        worst = (worst.0.min(cosine), worst.1.max(err));
        assert!(
            cosine >= 0.99999 && err <= 1e-4,
            "sentence {s}: cosine {cosine}, max abs error {err}"
        );
    }
    println!(
        "all {} sentences: min cosine {:.9}, max abs error {:.3e}",
        shape[0], worst.0, worst.1
    );
}

/// Runs the tests, each ignored (visibly, in the summary) where the model has not been fetched.
fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let tests: &[(&str, fn())] = &[
        (
            "tokenizer_gives_the_reference_token_ids",
            tokenizer_gives_the_reference_token_ids,
        ),
        (
            "embeddings_match_pytorch_on_the_cpu",
            embeddings_match_pytorch_on_the_cpu,
        ),
    ];
    let missing: Option<String> = model_missing(&repo_root());
    if let Some(why) = &missing {
        eprintln!("every test here is ignored: {why}");
    }
    let trials = tests
        .iter()
        .map(|&(name, f)| {
            libtest_mimic::Trial::test(name, move || {
                f();
                Ok(())
            })
            .with_ignored_flag(missing.is_some())
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
