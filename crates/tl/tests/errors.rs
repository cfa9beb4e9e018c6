//! Golden tests for diagnostics: every `examples/errors/NAME.tl` (or Soufflé program
//! `NAME.dl`) holds one mistake, and `examples/errors/NAME.stderr` holds exactly what
//! `tl run [ARGS] examples/errors/NAME.tl` prints on standard error, run from the repository
//! root with that relative path.
//!
//! **Environment.** Every run has `NO_COLOR=1`; `TL_MAX_MEMORY=8G`, so that messages stating the
//! memory limit read the same on every machine; and `TL_NO_CUDA=1`, so that every run sees no
//! GPU whatever the machine has (`--device cuda` then fails the same way on a developer's GPU
//! machine as on a CI machine without one).
//!
//! **Command-line options.** An optional sidecar `examples/errors/NAME.args` holds extra
//! arguments for `tl run`, separated by any whitespace (spaces or newlines; no quoting), given
//! before the program's path. Unless they name a `--device`, `--device cpu` is added. Paths in
//! them are relative to the repository root.
//!
//! **Errors and warnings.** What a snapshot expects follows from the diagnostics it shows (the
//! header lines `[TL0123] Error: …` and `error[TL0123]: …`, or `Warning` and `warning`):
//! - with an error among them: a non-zero exit status and nothing on standard output;
//! - with warnings only: exit status 0 (standard output then holds the program's answers, which
//!   are not compared).
//!
//! Every snapshot, either way: standard error equals the checked-in `.stderr`; it shows at least
//! one diagnostic; every diagnostic has a code and a hint (`help`); no sign of a panic; and every
//! diagnostic points at a place in the program (`╭─[ FILE:LINE:COL ]`). The one exception to the
//! place: the command line's own diagnostics (codes `TL04xx`: a device, folder or option named on
//! the command line, not in the program) are spanless by nature (`error[TL0401]: …` without
//! `:LINE:COL`); they are accepted only with those codes and only in snapshots with a `.args`.
//!
//! **Coverage.** Every code written as a `"TL0…"` literal in `crates/*/src` must appear in some
//! snapshot or in [`UNTESTABLE`], which says why a golden run cannot show it and where it is
//! tested instead (`every_diagnostic_code_is_covered`).
//!
//! After an intended change to a message, rewrite the expected files with
//! `TL_BLESS=1 cargo test --release -p tl --test errors` and review the diff.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Codes that no golden run can show, each with the reason and where it is tested instead.
const UNTESTABLE: &[(&str, &str)] = &[
    (
        "TL0204",
        "a planner pass that breaks a graph, a bug no program should reach (checked in debug \
         builds only): crates/tl-plan/src/passes/tests.rs breaks one deliberately",
    ),
    (
        "TL0301",
        "a failure of the backend that the engine should never meet (a device out of memory \
         is TL0314); any diagnostic asking for a report fails the no-panic properties driven by tl-fuzz \
         (crates/tl/tests/no_panic.rs)",
    ),
    (
        "TL0307",
        "a gradient exchange of `--gpus N` that fails; which rank notices first when another \
         stops is a race, so the output varies from run to run: \
         crates/tl/tests/parallel.rs (a_failed_exchange_is_tl0307_at_the_minimize, and \
         a_failing_rank_stops_every_rank_and_is_named for the launcher's report)",
    ),
    (
        "TL0313",
        "a stratum of rules that a GPU cannot run, said only when the program runs on one: \
         crates/tl-run/tests/gpu_rules.rs, on a machine with a GPU",
    ),
    (
        "TL0315",
        "training stopped by an interrupt (SIGINT) part-way: crates/tl/tests/interrupt.rs",
    ),
];

/// The repository root: the nearest folder, from the current directory upwards, that holds
/// `examples/errors` (tests run from `crates/tl` under cargo, or from the root elsewhere).
fn repo_root() -> PathBuf {
    let start = std::env::current_dir().expect("current directory");
    let mut dir: &Path = &start;
    loop {
        if dir.join("examples").join("errors").is_dir() {
            return dir.to_path_buf();
        }
        dir = dir
            .parent()
            .unwrap_or_else(|| panic!("no `examples/errors` above {}", start.display()));
    }
}

/// The names of the files under `examples/errors` that end with `suffix`, sorted.
fn files_ending(root: &Path, suffix: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root.join("examples/errors"))
        .expect("examples/errors is readable")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    out.sort();
    out
}

/// The programs under `examples/errors`, as paths relative to the root, sorted.
fn programs(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = files_ending(root, ".tl")
        .into_iter()
        .chain(files_ending(root, ".dl"))
        .map(|n| format!("examples/errors/{n}"))
        .collect();
    out.sort();
    out
}

/// The file beside a program with the same stem and another suffix (`.stderr`, `.args`).
fn sidecar(prog: &str, suffix: &str) -> String {
    let stem = prog.rsplit_once('.').map_or(prog, |(stem, _)| stem);
    format!("{stem}{suffix}")
}

/// The extra arguments of a program from its `.args` sidecar, if it has one.
fn extra_args(root: &Path, prog: &str) -> Option<Vec<String>> {
    let path = root.join(sidecar(prog, ".args"));
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.split_whitespace().map(str::to_string).collect())
}

/// Whether `text` holds `:LINE:COL` (two runs of digits, each after a colon).
fn has_line_col(text: &str) -> bool {
    let b = text.as_bytes();
    (0..b.len()).any(|i| {
        if b[i] != b':' {
            return false;
        }
        let mut j = i + 1;
        let line_start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j == line_start || j >= b.len() || b[j] != b':' {
            return false;
        }
        let col_start = j + 1;
        let mut k = col_start;
        while k < b.len() && b[k].is_ascii_digit() {
            k += 1;
        }
        k > col_start
    })
}

/// One diagnostic as printed: its code, whether it is a warning, whether it is the spanless
/// form, and its lines up to the next diagnostic.
#[derive(Debug)]
struct Printed {
    code: String,
    warning: bool,
    spanless: bool,
    text: String,
}

/// A diagnostic code: `TL` and four digits.
fn is_code(s: &str) -> bool {
    s.len() == 6 && s.starts_with("TL") && s[2..].bytes().all(|b| b.is_ascii_digit())
}

/// The header of a diagnostic, if `line` is one: `[TL0123] Error: …` / `[TL0123] Warning: …`
/// (with a place) or `error[TL0123]: …` / `warning[TL0123]: …` (spanless).
fn header(line: &str) -> Option<Printed> {
    let new = |code: &str, warning, spanless| {
        is_code(code).then(|| Printed {
            code: code.to_string(),
            warning,
            spanless,
            text: String::new(),
        })
    };
    if let Some(rest) = line.strip_prefix('[') {
        let (code, kind) = rest.split_once("] ")?;
        return match kind {
            k if k.starts_with("Error:") => new(code, false, false),
            k if k.starts_with("Warning:") => new(code, true, false),
            _ => None,
        };
    }
    for (word, warning) in [("error[", false), ("warning[", true)] {
        if let Some(rest) = line.strip_prefix(word) {
            let (code, _) = rest.split_once("]: ")?;
            return new(code, warning, true);
        }
    }
    None
}

/// The diagnostics in a standard error text, in order.
fn diagnostics(stderr: &str) -> Vec<Printed> {
    let mut out: Vec<Printed> = Vec::new();
    for line in stderr.lines() {
        if let Some(d) = header(line) {
            out.push(d);
        }
        if let Some(d) = out.last_mut() {
            d.text.push_str(line);
            d.text.push('\n');
        }
    }
    out
}

/// What is wrong with one run, judged by the diagnostics it printed.
fn problems_of(
    status: &std::process::ExitStatus,
    stdout: &str,
    stderr: &str,
    has_args: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    if status.code().is_none() {
        problems.push(format!("killed by a signal ({status:?})"));
    }
    if stderr.contains("panicked at") || status.code() == Some(101) {
        problems.push("panicked".to_string());
    }
    let diags = diagnostics(stderr);
    if diags.is_empty() {
        problems.push("standard error shows no diagnostic".to_string());
    }
    let error = diags.iter().any(|d| !d.warning);
    if error {
        if status.success() {
            problems.push("an error, but exit status 0".to_string());
        }
        if !stdout.is_empty() {
            problems.push(format!(
                "an error, but output on standard output:\n{stdout}"
            ));
        }
    } else if !diags.is_empty() && !status.success() {
        problems.push(format!("warnings only, but exit status {status:?}"));
    }
    for d in &diags {
        if !d.text.to_lowercase().contains("help") {
            problems.push(format!("{} gives no `help`", d.code));
        }
        if !d.spanless {
            let place = d.text.lines().nth(1).unwrap_or_default();
            if !(place.contains("╭─[") && has_line_col(place)) {
                problems.push(format!("{} names no `:LINE:COL` under its header", d.code));
            }
        } else if !d.code.starts_with("TL04") {
            problems.push(format!(
                "{} has no place, which only the command line's own codes (TL04xx) may lack",
                d.code
            ));
        } else if !has_args {
            problems.push(format!(
                "{} is about the command line, but the snapshot has no `.args`",
                d.code
            ));
        }
    }
    problems
}

#[test]
fn error_examples_match_their_expected_stderr() {
    let root = repo_root();
    let bless = std::env::var_os("TL_BLESS").is_some_and(|v| v != "0" && !v.is_empty());
    let progs = programs(&root);
    assert!(
        progs.len() >= 15,
        "expected the error examples under {}/examples/errors, found {}",
        root.display(),
        progs.len()
    );
    let mut failures = Vec::new();
    for prog in &progs {
        let extra = extra_args(&root, prog);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tl"));
        cmd.arg("run");
        let args = extra.clone().unwrap_or_default();
        if !args
            .iter()
            .any(|a| a == "--device" || a.starts_with("--device="))
        {
            cmd.args(["--device", "cpu"]);
        }
        let out = cmd
            .args(&args)
            .arg(prog)
            .current_dir(&root)
            .env("NO_COLOR", "1")
            .env("TL_MAX_MEMORY", "8G")
            .env("TL_NO_CUDA", "1")
            .output()
            .expect("the tl binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let expected_path = root.join(sidecar(prog, ".stderr"));
        let mut problems = problems_of(&out.status, &stdout, &stderr, extra.is_some());
        if bless {
            std::fs::write(&expected_path, &stderr).expect("write the .stderr file");
        } else {
            match std::fs::read_to_string(&expected_path) {
                Ok(expected) if expected == stderr => {}
                Ok(expected) => problems.push(format!(
                    "standard error differs from {}\n--- expected\n{expected}\n--- actual\n{stderr}",
                    expected_path.display()
                )),
                Err(e) => problems.push(format!(
                    "cannot read {} ({e}); run with TL_BLESS=1 to create it\n--- actual\n{stderr}",
                    expected_path.display()
                )),
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{prog}:\n  {}", problems.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} error examples failed:\n\n{}",
        failures.len(),
        progs.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_error_example_has_an_expected_stderr_file() {
    if std::env::var_os("TL_BLESS").is_some() {
        return;
    }
    let root = repo_root();
    for prog in programs(&root) {
        let expected = root.join(sidecar(&prog, ".stderr"));
        assert!(expected.is_file(), "{} is missing", expected.display());
    }
}

#[test]
fn every_sidecar_belongs_to_a_program() {
    let root = repo_root();
    for suffix in [".stderr", ".args"] {
        for name in files_ending(&root, suffix) {
            let folder = root.join("examples/errors");
            let has_program = [".tl", ".dl"]
                .iter()
                .any(|ext| folder.join(name.replace(suffix, ext)).is_file());
            assert!(has_program, "examples/errors/{name} has no program");
        }
    }
}

/// Every `"TL0…"` code literal in the Rust sources under `dir`, recursively.
fn codes_in_sources(dir: &Path, out: &mut BTreeSet<String>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.is_dir() {
            codes_in_sources(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for (at, _) in text.match_indices("\"TL0") {
                let code = &text[at + 1..];
                let end = code.find('"').unwrap_or(0);
                if is_code(&code[..end]) {
                    out.insert(code[..end].to_string());
                }
            }
        }
    }
}

#[test]
fn every_diagnostic_code_is_covered() {
    if std::env::var_os("TL_BLESS").is_some() {
        return;
    }
    let root = repo_root();
    let mut in_sources = BTreeSet::new();
    let crates = std::fs::read_dir(root.join("crates")).expect("crates/ is readable");
    for krate in crates.filter_map(|e| e.ok()) {
        let src = krate.path().join("src");
        if src.is_dir() {
            codes_in_sources(&src, &mut in_sources);
        }
    }
    assert!(
        in_sources.len() >= 40,
        "expected the codes of crates/*/src, found {in_sources:?}"
    );
    let mut in_snapshots = BTreeSet::new();
    for name in files_ending(&root, ".stderr") {
        let text = std::fs::read_to_string(root.join("examples/errors").join(&name))
            .expect("a readable .stderr");
        in_snapshots.extend(diagnostics(&text).into_iter().map(|d| d.code));
    }
    let untestable: BTreeSet<String> = UNTESTABLE.iter().map(|(c, _)| c.to_string()).collect();
    let uncovered: Vec<&String> = in_sources
        .iter()
        .filter(|c| !in_snapshots.contains(*c) && !untestable.contains(*c))
        .collect();
    assert!(
        uncovered.is_empty(),
        "codes in crates/*/src with no snapshot under examples/errors and not listed in \
         UNTESTABLE: {uncovered:?}"
    );
    for code in &untestable {
        assert!(
            in_sources.contains(code),
            "{code} is listed in UNTESTABLE but no longer in crates/*/src"
        );
        assert!(
            !in_snapshots.contains(code),
            "{code} is listed in UNTESTABLE but a snapshot shows it"
        );
    }
}

#[test]
fn line_col_detection() {
    assert!(has_line_col("╭─[ examples/errors/a.tl:3:13 ]"));
    assert!(!has_line_col("error[TL0401]: no place"));
    assert!(!has_line_col("a:3: b"));
}

#[test]
fn diagnostic_headers() {
    let text =
        "[TL0310] Warning: slow\n   ╭─[ a.tl:1:1 ]\n Help: x\nerror[TL0401]: no GPU\n  help: y\n";
    let d = diagnostics(text);
    assert_eq!(d.len(), 2);
    assert!(d[0].warning && !d[0].spanless && d[0].code == "TL0310");
    assert!(d[0].text.contains("Help: x") && !d[0].text.contains("no GPU"));
    assert!(!d[1].warning && d[1].spanless && d[1].code == "TL0401");
    assert!(header("tl: using cuda:0").is_none());
    assert!(header("[TLxyz] Error: a").is_none());
}

#[test]
fn snapshot_rules() {
    use std::os::unix::process::ExitStatusExt;
    let (ok, failed) = (
        std::process::ExitStatus::from_raw(0),
        std::process::ExitStatus::from_raw(1 << 8),
    );
    let placed = "[TL0106] Error: m\n   ╭─[ a.tl:2:3 ]\n   │ Help: h\n";
    assert!(problems_of(&failed, "", placed, false).is_empty());
    assert!(
        !problems_of(&ok, "", placed, false).is_empty(),
        "an error exits non-zero"
    );
    assert!(
        !problems_of(&failed, "Y = 1\n", placed, false).is_empty(),
        "an error prints nothing"
    );
    let warned = placed.replace("Error", "Warning");
    assert!(problems_of(&ok, "Y = 1\n", &warned, false).is_empty());
    assert!(
        !problems_of(&failed, "", &warned, false).is_empty(),
        "warnings exit 0"
    );
    let cli = "error[TL0404]: `--log`: folder x does not exist\n  help: h\n";
    assert!(problems_of(&failed, "", cli, true).is_empty());
    assert!(
        !problems_of(&failed, "", cli, false).is_empty(),
        "a `.args` is needed"
    );
    let program_level = "error[TL0020]: cannot read `x.tl`\n  help: h\n";
    assert!(
        !problems_of(&failed, "", program_level, true).is_empty(),
        "TL00xx needs a place"
    );
    let unplaced = "[TL0106] Error: m\n   │ Help: h\n";
    assert!(!problems_of(&failed, "", unplaced, false).is_empty());
    let no_help = "[TL0106] Error: m\n   ╭─[ a.tl:2:3 ]\n";
    assert!(!problems_of(&failed, "", no_help, false).is_empty());
    assert!(
        !problems_of(&failed, "", "", false).is_empty(),
        "no diagnostic at all"
    );
}
