//! Text in: sentences of a text file (one per line) encoded by a Hugging Face `tokenizer.json`
//! into rows of token ids, the input of a language model written in Tensor Logic.
//!
//! The tokenizer's own normaliser, pre-tokenizer, model and post-processor (e.g. BERT's
//! `[CLS] … [SEP]`) all apply, as in the `tokenizers` library. Its truncation setting applies
//! unless [`TokenizeOptions::max_length`] replaces it; its padding setting never does, because
//! the caller pads (a padded position is one with no token).

use crate::error::IoError;
use std::path::Path;
use tokenizers::{Tokenizer, TruncationParams};

/// How sentences are cut and padded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenizeOptions {
    /// Keep at most this many tokens per sentence (special tokens included), replacing the
    /// tokenizer file's own truncation length.
    pub max_length: Option<usize>,
    /// Give every sentence exactly this many positions: longer ones are truncated to it,
    /// shorter ones padded. Without it, sentences are padded to the longest.
    pub length: Option<usize>,
}

/// Sentences as token ids, ready to become the relation `Tok(sentence, position, token)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenizedText {
    /// The token ids of each sentence, in file order (each at most `positions` long).
    pub ids: Vec<Vec<u32>>,
    /// The length of the position axis: the longest sentence, or the fixed length.
    pub positions: usize,
    /// The size of the token axis: the tokenizer's vocabulary, added tokens included.
    pub vocab_size: usize,
}

/// The sentences of a text file: one per line, without the line break; blank lines skipped.
pub fn read_sentences(path: &Path) -> Result<Vec<String>, IoError> {
    let bytes = std::fs::read(path).map_err(|e| IoError::from_read(path, &e))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| IoError::malformed(path, format!("not UTF-8 text ({e})")))?;
    let sentences: Vec<String> = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    if sentences.is_empty() {
        return Err(IoError::EmptyText {
            path: path.to_path_buf(),
        });
    }
    Ok(sentences)
}

/// Loads a `tokenizer.json`, with its padding switched off and its truncation length
/// replaced by `max_length` when given.
pub fn load_tokenizer(path: &Path, max_length: Option<usize>) -> Result<Tokenizer, IoError> {
    // Read first, so a missing file is reported as such rather than as a parse failure.
    let bytes = std::fs::read(path).map_err(|e| IoError::from_read(path, &e))?;
    let mut tokenizer = Tokenizer::from_bytes(&bytes).map_err(|e| IoError::BadTokenizer {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    tokenizer.with_padding(None);
    if let Some(max_length) = max_length {
        let params = match tokenizer.get_truncation() {
            Some(t) => TruncationParams {
                max_length,
                ..t.clone()
            },
            None => TruncationParams {
                max_length,
                ..TruncationParams::default()
            },
        };
        tokenizer
            .with_truncation(Some(params))
            .map_err(|e| IoError::BadTokenizer {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
    }
    Ok(tokenizer)
}

/// Encodes each sentence of `text` (one per line) with the tokenizer in `tokenizer`.
pub fn tokenize_file(
    text: &Path,
    tokenizer: &Path,
    options: TokenizeOptions,
) -> Result<TokenizedText, IoError> {
    let max_length = match (options.max_length, options.length) {
        (Some(m), Some(n)) => Some(m.min(n)),
        (m, n) => m.or(n),
    };
    let sentences = read_sentences(text)?;
    let tk = load_tokenizer(tokenizer, max_length)?;
    let mut ids = Vec::with_capacity(sentences.len());
    for (k, sentence) in sentences.iter().enumerate() {
        let encoding = tk
            .encode(sentence.as_str(), true)
            .map_err(|e| IoError::Tokenize {
                path: text.to_path_buf(),
                sentence: k + 1,
                detail: e.to_string(),
            })?;
        let mut row = encoding.get_ids().to_vec();
        if let Some(n) = options.length {
            row.truncate(n);
        }
        ids.push(row);
    }
    let longest = ids.iter().map(Vec::len).max().unwrap_or(0);
    Ok(TokenizedText {
        positions: options.length.unwrap_or(longest),
        vocab_size: tk.get_vocab_size(true),
        ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny WordPiece tokenizer in the format `tokenizers` saves, with BERT's special tokens.
    const TOKENIZER: &str = r###"{
      "version": "1.0",
      "truncation": {"direction": "Right", "max_length": 6, "strategy": "LongestFirst", "stride": 0},
      "padding": {"strategy": {"Fixed": 8}, "direction": "Right", "pad_to_multiple_of": null,
                  "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
      "added_tokens": [],
      "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                     "strip_accents": null, "lowercase": true},
      "pre_tokenizer": {"type": "BertPreTokenizer"},
      "post_processor": {"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                           "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
      "decoder": null,
      "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                "max_input_chars_per_word": 100,
                "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "the": 4, "cat": 5,
                          "sat": 6, "on": 7, "mat": 8, "##s": 9, ".": 10}}
    }"###;

    fn files(text: &str) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("sentences.txt");
        let k = dir.path().join("tokenizer.json");
        std::fs::write(&t, text).unwrap();
        std::fs::write(&k, TOKENIZER).unwrap();
        (dir, t, k)
    }

    #[test]
    fn sentences_are_encoded_with_special_tokens_and_padded_to_the_longest() {
        let (_d, t, k) = files("The cat sat.\n\nCats!\r\n");
        let out = tokenize_file(&t, &k, TokenizeOptions::default()).unwrap();
        assert_eq!(out.ids, vec![vec![2, 4, 5, 6, 10, 3], vec![2, 5, 9, 1, 3]]);
        assert_eq!(out.positions, 6);
        assert_eq!(out.vocab_size, 11);
    }

    #[test]
    fn the_file_truncation_applies_unless_replaced() {
        let (_d, t, k) = files("the cat sat on the mat.\n");
        let out = tokenize_file(&t, &k, TokenizeOptions::default()).unwrap();
        assert_eq!(out.ids, vec![vec![2, 4, 5, 6, 7, 3]]);
        let longer = TokenizeOptions {
            max_length: Some(20),
            length: None,
        };
        let out = tokenize_file(&t, &k, longer).unwrap();
        assert_eq!(out.ids, vec![vec![2, 4, 5, 6, 7, 4, 8, 10, 3]]);
    }

    #[test]
    fn a_fixed_length_truncates_and_pads() {
        let (_d, t, k) = files("the cat sat on the mat.\nthe\n");
        let fixed = TokenizeOptions {
            max_length: Some(20),
            length: Some(4),
        };
        let out = tokenize_file(&t, &k, fixed).unwrap();
        assert_eq!(out.ids, vec![vec![2, 4, 5, 3], vec![2, 4, 3]]);
        assert_eq!(out.positions, 4);
    }

    #[test]
    fn bad_inputs_are_typed_errors_naming_the_file() {
        let (dir, t, k) = files("the cat\n");
        let missing = dir.path().join("nope.json");
        let e = tokenize_file(&t, &missing, TokenizeOptions::default()).unwrap_err();
        assert!(matches!(e, IoError::NotFound { .. }), "{e}");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{\"model\": 3}").unwrap();
        let e = tokenize_file(&t, &bad, TokenizeOptions::default()).unwrap_err();
        assert!(matches!(e, IoError::BadTokenizer { .. }), "{e}");
        assert!(e.to_string().contains("bad.json") && e.hint().is_some());
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, "\n  \n").unwrap();
        let e = tokenize_file(&empty, &k, TokenizeOptions::default()).unwrap_err();
        assert!(matches!(e, IoError::EmptyText { .. }), "{e}");
        let binary = dir.path().join("binary.txt");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        let e = tokenize_file(&binary, &k, TokenizeOptions::default()).unwrap_err();
        assert!(matches!(e, IoError::Malformed { .. }), "{e}");
    }
}
