//! Tokenized text: `tokens(...)` data definitions and their mistakes.

use super::*;

#[test]
fn tokenized_text() {
    let tokenized = |max_length: Option<u64>, length: Option<u64>| {
        DataSource::Tokenized(Tokenized {
            text: StrLit {
                value: "sentences.txt".into(),
                span: Span::default(),
            },
            tokenizer: StrLit {
                value: "model/tokenizer.json".into(),
                span: Span::default(),
            },
            max_length: max_length.map(|n| (n, Span::default())),
            length: length.map(|n| (n, Span::default())),
            span: Span::default(),
        })
    };
    let tok_lhs = || {
        lhs(
            "Tok",
            Some(vec![
                lhs_index(var("s")),
                lhs_index(var("p")),
                lhs_index(var("t")),
            ]),
        )
    };
    parses_as(
        "Tok(s, p, t) = \"sentences.txt\" tokenized by \"model/tokenizer.json\"",
        StmtKind::Data(DataDef {
            lhs: tok_lhs(),
            source: tokenized(None, None),
        }),
    );
    parses_as(
        "Tok[s, p, t] = \"sentences.txt\" tokenized by \"model/tokenizer.json\" length 128 max 256",
        StmtKind::Data(DataDef {
            lhs: tok_lhs(),
            source: tokenized(Some(256), Some(128)),
        }),
    );
    parses_as(
        "Tok = \"sentences.txt\" tokenized by \"model/tokenizer.json\" max 256",
        StmtKind::Data(DataDef {
            lhs: lhs("Tok", None),
            source: tokenized(Some(256), None),
        }),
    );
    // A relation written with parentheses can also be read from a plain file.
    parses_as(
        "Parent(x, y) = \"parent.csv\"",
        StmtKind::Data(DataDef {
            lhs: lhs(
                "Parent",
                Some(vec![lhs_index(var("x")), lhs_index(var("y"))]),
            ),
            source: DataSource::File(FileRef {
                path: "parent.csv".into(),
                selector: None,
                span: Span::default(),
            }),
        }),
    );
}

#[test]
fn tokenized_text_mistakes() {
    for (text, want) in [
        ("Tok = \"s.txt\" tokenized \"t.json\"", "TL0003"),
        ("Tok = \"s.txt\" tokenized by t", "TL0003"),
        (
            "Tok = \"s.txt\" tokenized by \"t.json\" max 8 max 9",
            "TL0010",
        ),
        ("Tok = \"s.txt\" tokenized by \"t.json\" max -1", "TL0008"),
        ("Tok = \"s.txt\" tokenized by \"t.json\" pad 8", "TL0003"),
    ] {
        let (_, errors) = parse(text, FileId(0));
        let codes: Vec<&str> = errors.iter().map(|e| e.code()).collect();
        assert_eq!(codes, vec![want], "for {text:?}: {errors:?}");
    }
}
