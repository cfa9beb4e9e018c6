//! The documentation's sample outputs are real: every fenced block that follows a
//! `<!-- check: COMMAND -->` comment in README.md or docs/*.md is what COMMAND prints
//! (standard output and standard error together), run by `sh -c` from the repository root with
//! this build's `tl` first on the `PATH`.
//!
//! Lines of the block that start with `$ ` show the command and are not output. A block may
//! shorten the output: a line that is only `...` stands for any number of lines,
//! and `...` inside a line for any text there. Trailing spaces are ignored. Everything else
//! must match line for line, so a changed message, number or format fails here instead of
//! drifting in the docs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// (file, line, command, expected lines) for every checked block of one markdown file.
fn checked_blocks(path: &Path) -> Vec<(String, usize, String, Vec<String>)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut k = 0;
    while k < lines.len() {
        let line = lines[k].trim();
        if let Some(cmd) = line
            .strip_prefix("<!-- check:")
            .and_then(|r| r.strip_suffix("-->"))
        {
            let open = (k + 1..lines.len())
                .find(|&j| lines[j].starts_with("```"))
                .unwrap_or_else(|| {
                    panic!("{}:{}: no block after the marker", path.display(), k + 1)
                });
            let close = (open + 1..lines.len())
                .find(|&j| lines[j].starts_with("```"))
                .unwrap_or_else(|| panic!("{}:{}: unclosed block", path.display(), open + 1));
            // A block may show its command as a first `$ ` line.
            let expected = lines[open + 1..close]
                .iter()
                .filter(|l| !l.starts_with("$ "))
                .map(|l| l.to_string())
                .collect();
            out.push((
                path.display().to_string(),
                k + 1,
                cmd.trim().to_string(),
                expected,
            ));
            k = close;
        }
        k += 1;
    }
    out
}

/// Whether `line` matches `pattern`, where `...` in the pattern stands for any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || !line.ends_with(last) || line.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether the actual lines match the expected ones (see the module comment).
fn block_matches(expected: &[String], actual: &[String]) -> bool {
    // Positions reachable in `actual` after each expected line (a small NFA, no recursion).
    let mut reach = vec![false; actual.len() + 1];
    reach[0] = true;
    for e in expected {
        let mut next = vec![false; actual.len() + 1];
        if e.trim() == "..." {
            let mut on = false;
            for (i, r) in reach.iter().enumerate() {
                on |= *r;
                next[i] = on;
            }
        } else {
            for i in 0..actual.len() {
                if reach[i] && line_matches(e.trim_end(), &actual[i]) {
                    next[i + 1] = true;
                }
            }
        }
        reach = next;
    }
    reach[actual.len()]
}

#[test]
fn sample_outputs_in_the_docs_match_real_runs() {
    let root = repo_root();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tl"));
    let bin_dir = bin.parent().unwrap_or_else(|| Path::new("."));
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut files = vec![root.join("README.md")];
    if let Ok(entries) = std::fs::read_dir(root.join("docs")) {
        files.extend(
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "md")),
        );
    }
    files.sort();
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in &files {
        for (name, line, cmd, expected) in checked_blocks(file) {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("{cmd} 2>&1"))
                .current_dir(&root)
                .env("PATH", &path)
                .env("NO_COLOR", "1")
                .env("TL_MAX_MEMORY", "8G")
                .output()
                .unwrap_or_else(|e| panic!("cannot run sh: {e}"));
            let actual: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.trim_end().to_string())
                .collect();
            checked += 1;
            if !block_matches(&expected, &actual) {
                failures.push(format!(
                    "{name}:{line}: `{cmd}` printed:\n{}\nbut the docs show:\n{}\n",
                    actual.join("\n"),
                    expected.join("\n")
                ));
            }
        }
    }
    assert!(checked >= 8, "only {checked} checked blocks found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_matcher_skips_only_what_dots_stand_for() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(block_matches(
        &s(&["a", "...", "d"]),
        &s(&["a", "b", "c", "d"])
    ));
    assert!(block_matches(&s(&["a", "...", "b"]), &s(&["a", "b"])));
    assert!(!block_matches(&s(&["a", "d"]), &s(&["a", "b", "d"])));
    assert!(block_matches(&s(&["[1, ... ,9]"]), &s(&["[1, 2, 3 ,9]"])));
    assert!(!block_matches(&s(&["[1, ... ,9]"]), &s(&["[0, 2 ,9]"])));
}
