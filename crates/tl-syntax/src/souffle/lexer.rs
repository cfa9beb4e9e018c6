//! Tokens of Soufflé's syntax. Unlike Tensor Logic, line breaks mean nothing (a clause ends
//! with `.`), comments are `//` and `/* … */`, and a directive is a `.` glued to a word
//! (`.decl`). The lexer never fails: a character it does not know becomes an
//! [`Tok::Unknown`] token, which the parser reports where it meets it.

use crate::span::{FileId, Span};

/// One token of a Soufflé program.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A name: a relation, a type, a variable or a keyword such as `count`.
    Ident(String),
    /// `_`, the anonymous variable.
    Underscore,
    /// An integer literal (decimal, `0x…` or `0b…`).
    Int(i64),
    /// A literal with a fraction or exponent (Soufflé's `float`).
    Float(String),
    /// A string literal, escapes resolved.
    Str(String),
    /// `.decl`, `.type`, `.input`, … (the word without its dot).
    Directive(String),
    /// `#include` and other preprocessor lines (the word without its `#`).
    Hash(String),
    /// Punctuation and operators, as written: `(`, `:-`, `<=`, …
    Punct(&'static str),
    /// A string literal with no closing quote on its line.
    Unterminated,
    /// A `/*` comment with no closing `*/`.
    UnclosedComment,
    /// A character that starts no token.
    Unknown(char),
    /// The end of the text.
    Eof,
}

impl Tok {
    /// How the token reads in a message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Underscore => "`_`".into(),
            Tok::Int(n) => format!("`{n}`"),
            Tok::Float(s) => format!("`{s}`"),
            Tok::Str(s) => format!("\"{s}\""),
            Tok::Directive(s) => format!("`.{s}`"),
            Tok::Hash(s) => format!("`#{s}`"),
            Tok::Punct(p) => format!("`{p}`"),
            Tok::Unterminated => "an unterminated string".into(),
            Tok::UnclosedComment => "an unclosed comment".into(),
            Tok::Unknown(c) => format!("`{c}`"),
            Tok::Eof => "the end of the file".into(),
        }
    }
}

/// Operators, longest first so that `:-` wins over `:`.
const PUNCT: &[&str] = &[
    ":-", "<:", "<=", ">=", "!=", "(", ")", ",", ".", ";", "!", "=", "<", ">", ":", "|", "{", "}",
    "[", "]", "+", "-", "*", "/", "%", "^", "@", "$",
];

/// Splits Soufflé source text into tokens with their spans; the last token is [`Tok::Eof`].
pub fn lex(text: &str, file: FileId) -> Vec<(Tok, Span)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if text[i..].starts_with("//") {
            i = text[i..].find('\n').map_or(bytes.len(), |k| i + k);
            continue;
        }
        if text[i..].starts_with("/*") {
            match text[i + 2..].find("*/") {
                Some(k) => i += k + 4,
                None => {
                    out.push((Tok::UnclosedComment, Span::new(file, start, start + 2)));
                    i = bytes.len();
                }
            }
            continue;
        }
        let tok = if c.is_ascii_alphabetic() || c == b'_' || c == b'?' {
            i = word_end(bytes, i + 1);
            match &text[start..i] {
                "_" => Tok::Underscore,
                w => Tok::Ident(w.to_string()),
            }
        } else if c.is_ascii_digit() {
            let (tok, end) = number(text, i);
            i = end;
            tok
        } else if c == b'"' {
            let (tok, end) = string(text, i);
            i = end;
            tok
        } else if (c == b'.' || c == b'#') && bytes.get(i + 1).is_some_and(u8::is_ascii_alphabetic)
        {
            i = word_end(bytes, i + 1);
            let word = text[start + 1..i].to_string();
            if c == b'.' {
                Tok::Directive(word)
            } else {
                Tok::Hash(word)
            }
        } else if let Some(p) = PUNCT.iter().find(|p| text[i..].starts_with(**p)) {
            i += p.len();
            Tok::Punct(p)
        } else {
            let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
            i += ch.len_utf8();
            Tok::Unknown(ch)
        };
        out.push((tok, Span::new(file, start, i)));
    }
    out.push((Tok::Eof, Span::new(file, bytes.len(), bytes.len())));
    out
}

fn word_end(bytes: &[u8], mut i: usize) -> usize {
    while bytes
        .get(i)
        .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'?')
    {
        i += 1;
    }
    i
}

/// A number at `i`: an integer (decimal, hexadecimal `0x`, binary `0b`) or a float.
fn number(text: &str, i: usize) -> (Tok, usize) {
    let bytes = text.as_bytes();
    for (prefix, radix) in [("0x", 16), ("0b", 2)] {
        if text[i..].starts_with(prefix) {
            let end = word_end(bytes, i + 2);
            let digits = &text[i + 2..end];
            return match i64::from_str_radix(digits, radix) {
                Ok(n) => (Tok::Int(n), end),
                Err(_) => (Tok::Float(text[i..end].to_string()), end),
            };
        }
    }
    let mut end = i;
    while bytes.get(end).is_some_and(u8::is_ascii_digit) {
        end += 1;
    }
    let mut float = false;
    if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
        float = true;
        end += 1;
        while bytes.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    if matches!(bytes.get(end), Some(b'e' | b'E'))
        && bytes.get(end + 1).is_some_and(u8::is_ascii_digit)
    {
        float = true;
        end += 1;
        while bytes.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    let written = &text[i..end];
    match written.parse::<i64>() {
        Ok(n) if !float => (Tok::Int(n), end),
        _ => (Tok::Float(written.to_string()), end),
    }
}

/// A string literal at `i` (on the opening quote), with `\"`, `\\`, `\t` and `\n` escapes.
fn string(text: &str, i: usize) -> (Tok, usize) {
    let mut value = String::new();
    let mut chars = text[i + 1..].char_indices();
    while let Some((k, ch)) = chars.next() {
        match ch {
            '"' => return (Tok::Str(value), i + 1 + k + 1),
            '\n' => return (Tok::Unterminated, i + 1 + k),
            '\\' => match chars.next() {
                Some((_, 't')) => value.push('\t'),
                Some((_, 'n')) => value.push('\n'),
                Some((_, other)) => value.push(other),
                None => break,
            },
            _ => value.push(ch),
        }
    }
    (Tok::Unterminated, text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        lex(text, FileId(0)).into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn clauses_directives_and_comments() {
        assert_eq!(
            toks(".decl e(x: number) // edges\n/* a\n b */ e(1, \"a\\\"b\").\n"),
            vec![
                Tok::Directive("decl".into()),
                Tok::Ident("e".into()),
                Tok::Punct("("),
                Tok::Ident("x".into()),
                Tok::Punct(":"),
                Tok::Ident("number".into()),
                Tok::Punct(")"),
                Tok::Ident("e".into()),
                Tok::Punct("("),
                Tok::Int(1),
                Tok::Punct(","),
                Tok::Str("a\"b".into()),
                Tok::Punct(")"),
                Tok::Punct("."),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn operators_numbers_and_oddities() {
        assert_eq!(
            toks("p(X) :- q(X, _), X <= 0x10, !r(X). 1.5 #include ~"),
            vec![
                Tok::Ident("p".into()),
                Tok::Punct("("),
                Tok::Ident("X".into()),
                Tok::Punct(")"),
                Tok::Punct(":-"),
                Tok::Ident("q".into()),
                Tok::Punct("("),
                Tok::Ident("X".into()),
                Tok::Punct(","),
                Tok::Underscore,
                Tok::Punct(")"),
                Tok::Punct(","),
                Tok::Ident("X".into()),
                Tok::Punct("<="),
                Tok::Int(16),
                Tok::Punct(","),
                Tok::Punct("!"),
                Tok::Ident("r".into()),
                Tok::Punct("("),
                Tok::Ident("X".into()),
                Tok::Punct(")"),
                Tok::Punct("."),
                Tok::Float("1.5".into()),
                Tok::Hash("include".into()),
                Tok::Unknown('~'),
                Tok::Eof,
            ]
        );
        assert_eq!(toks("\"abc")[0], Tok::Unterminated);
        assert_eq!(toks("/* x")[0], Tok::UnclosedComment);
        assert_eq!(
            toks("99999999999999999999")[0],
            Tok::Float("99999999999999999999".into())
        );
    }
}
