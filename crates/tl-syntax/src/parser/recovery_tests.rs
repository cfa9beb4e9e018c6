//! Parser tests for errors: several reported from one file, labels and hints, and never
//! panicking on any input.

use proptest::prelude::*;

use super::{parse, ParseError};
use crate::diagnostic::ToDiagnostic;
use crate::span::FileId;

/// The errors of text that must have some.
#[track_caller]
fn errors_of(text: &str) -> Vec<ParseError> {
    let (_, errors) = parse(text, FileId(0));
    assert!(!errors.is_empty(), "expected an error for {text:?}");
    errors
}

#[test]
fn several_errors_are_reported_from_one_file() {
    let text = "Y[i] = W[i] x\nGood = 1\nParent(x, Bob)\nM = [[1, 2], [3]]\nZ = @ 1\n\
                lower = 3\nminimize L with adam for 3 weeks\nLast[i] = A[i]\n";
    let (program, errors) = parse(text, FileId(0));
    let codes: Vec<&str> = errors.iter().map(|e| e.code()).collect();
    assert_eq!(codes, ["TL0006", "TL0007", "TL0001", "TL0009", "TL0003"]);
    assert_eq!(program.stmts.len(), 4);
}

#[test]
fn errors_carry_labels_and_hints() {
    let errors = errors_of("Y[i = X");
    let diag = errors[0].to_diagnostic();
    assert_eq!(diag.code, "TL0004");
    assert_eq!(diag.secondary.len(), 1);
    assert_eq!(diag.secondary[0].span.start, 1);
    assert!(diag.help.is_some_and(|h| h.contains("`]`")));

    let diag = errors_of("Parent(x, Bob)")[0].to_diagnostic();
    assert!(diag.help.is_some_and(|h| h.contains("did you mean a rule")));

    let errors = errors_of("M = [[1, 2], [3, 4], [5, 6, 7]]");
    let diag = errors[0].to_diagnostic();
    assert_eq!(diag.span.map(|s| s.start), Some(21));

    let (_, errors) = parse("P[p, d] = Even(d) sin(p / 10000^(d / Dm))", FileId(0));
    assert!(
        errors.is_empty(),
        "index variables are values in expressions: {errors:?}"
    );

    assert_eq!(errors_of("X += \"a.npy\"")[0].code(), "TL0011");
    assert_eq!(errors_of("Y = A[p.]")[0].code(), "TL0012");
    assert_eq!(errors_of("param W[2.5]")[0].code(), "TL0008");
    assert_eq!(errors_of(&"-".repeat(1000))[0].code(), "TL0003");
    assert_eq!(
        errors_of(&format!("Y = {}", "(".repeat(1000)))[0].code(),
        "TL0013"
    );
    assert_eq!(
        errors_of("minimize L with sgd for 1 steps batch e 2 batch e 3")[0].code(),
        "TL0010"
    );
}

const VALID: &str = "Parent(Alice, Bob)\nAncestor(x, z) <- Ancestor(x, y), Parent(y, z), x != z\n\
    param W[8, 2] ~ normal(0, 1)\nM = [[1, 2], [3, 4]]\nA[p, p'.] = softmax(S[p, p'] / sqrt(Dk))\n\
    Y[e] = sig(W[h] H[e, h] + B)\nminimize Loss with adam(lr=0.05) for 5 epochs batch e 4\n\
    \"out.safetensors\" = W\ndomain D = {A, \"B c\"}\nY[2:5]?\n";

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse(&text, FileId(0));
    }

    #[test]
    fn mutated_programs_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0..3u8), 1..8)
    ) {
        let mut text: Vec<char> = VALID.chars().collect();
        for (at, c, how) in edits {
            let i = at.index(text.len() + 1);
            match how {
                0 => text.insert(i, c),
                1 if i < text.len() => { text.remove(i); }
                _ if i < text.len() => text[i] = c,
                _ => text.push(c),
            }
        }
        let text: String = text.into_iter().collect();
        let _ = parse(&text, FileId(0));
    }
}
