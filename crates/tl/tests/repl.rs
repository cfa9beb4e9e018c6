//! `tl repl` with a piped session: `minimize` trains once, when it is entered, and the
//! queries after it see the trained parameters; an error names the input that caused it.

use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn a_piped_session_trains_and_later_queries_see_the_trained_parameters() {
    let session = "X = [1, 2, 3]
T = [2, 4, 6]
param W = 0
Y[e] = W X[e]
Loss = (Y[e] - T[e])^2
W?
minimize Loss with sgd(lr=0.01) for 300 steps
W?
Y?
Bad[e] = Y[e] + Missing[q]
Y?
";
    let mut child = Command::new(env!("CARGO_BIN_EXE_tl"))
        .arg("repl")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run tl: {e}"));
    child
        .stdin
        .take()
        .map(|mut i| i.write_all(session.as_bytes()))
        .unwrap_or_else(|| panic!("no stdin"))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let blocks: Vec<&str> = stdout.split_inclusive('\n').collect();
    assert_eq!(blocks[0], "W []:\n");
    assert_eq!(blocks[1].trim(), "0", "before training: {stdout}");
    assert!(
        blocks[2].starts_with("minimize Loss: 300 of 300 steps"),
        "{stdout}"
    );
    assert_eq!(blocks[3], "W []:\n");
    let w: f64 = blocks[4].trim().parse().unwrap_or(f64::NAN);
    assert!((w - 2.0).abs() < 1e-3, "trained W: {stdout}");
    // Y is computed from the trained W, twice alike: nothing trained again in between.
    assert_eq!(blocks[5], "Y [3]:\n");
    let y: Vec<f64> = blocks[6]
        .trim()
        .trim_matches(['[', ']'])
        .split(',')
        .map(|v| v.trim().parse().unwrap_or(f64::NAN))
        .collect();
    assert!(
        y.len() == 3
            && y.iter()
                .zip([2.0, 4.0, 6.0])
                .all(|(a, b)| (a - b).abs() < 1e-2),
        "{stdout}"
    );
    assert_eq!(&blocks[7..], &blocks[5..7], "{stdout}");
    // The bad definition is refused, pointing at its own input, and changes nothing.
    assert!(stderr.contains("<input 10>:1:"), "{stderr}");
}
