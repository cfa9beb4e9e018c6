//! The lexer: source text to tokens with spans.
//!
//! Besides splitting the text, the lexer decides where statements end: it emits a
//! [`TokenKind::Newline`] only where a line break separates statements, that is, when no `(`,
//! `[` or `{` is open and the previous token is not one that needs a right operand (a binary
//! operator, `,`, `<-`, `=`, `+=`, `max=`, `min=`, `avg=`, `~`). Blank lines and comments leave
//! no tokens, so the parser never sees two separators in a row.

use crate::parser::ParseError;
use crate::span::{FileId, Span};

mod token;

pub use token::{Keyword, Token, TokenKind};

/// Splits `text` into tokens, ending with [`TokenKind::Eof`]; bad characters and unterminated
/// strings are reported and skipped, so the token list is always usable.
pub fn lex(text: &str, file: FileId) -> (Vec<Token>, Vec<ParseError>) {
    let mut lexer = Lexer {
        text,
        file,
        pos: 0,
        depth: 0,
        tokens: Vec::new(),
        errors: Vec::new(),
    };
    lexer.run();
    (lexer.tokens, lexer.errors)
}

struct Lexer<'a> {
    text: &'a str,
    file: FileId,
    pos: usize,
    depth: usize,
    tokens: Vec<Token>,
    errors: Vec<ParseError>,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.text
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
    }

    fn peek_second(&self) -> Option<char> {
        let mut chars = self.text.get(self.pos..)?.chars();
        chars.next();
        chars.next()
    }

    fn span(&self, start: usize) -> Span {
        Span::new(self.file, start, self.pos)
    }

    fn push(&mut self, kind: TokenKind, start: usize) {
        let span = self.span(start);
        self.tokens.push(Token { kind, span });
    }

    fn run(&mut self) {
        while let Some(c) = self.peek() {
            let start = self.pos;
            match c {
                '\n' => {
                    self.pos += 1;
                    self.newline(start);
                }
                '#' => {
                    while let Some(c) = self.peek().filter(|&c| c != '\n') {
                        self.pos += c.len_utf8();
                    }
                }
                c if c.is_whitespace() => self.pos += c.len_utf8(),
                // A byte-order mark, as some editors write at the start of a UTF-8 file.
                '\u{feff}' if start == 0 => self.pos += c.len_utf8(),
                c if c.is_ascii_digit() => self.number(start),
                c if c.is_alphabetic() || c == '_' => self.word(start),
                '"' => self.string(start),
                _ => self.operator(c, start),
            }
        }
        let end = self.pos;
        self.newline(end);
        self.tokens.push(Token {
            kind: TokenKind::Eof,
            span: Span::new(self.file, end, end),
        });
    }

    fn newline(&mut self, start: usize) {
        let separates = match self.tokens.last() {
            None => false,
            Some(last) => {
                self.depth == 0 && last.kind != TokenKind::Newline && !last.kind.continues_line()
            }
        };
        if separates {
            self.push(TokenKind::Newline, start);
        }
    }

    fn eat_digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    fn number(&mut self, start: usize) {
        self.eat_digits();
        let mut integral = true;
        if self.peek() == Some('.') && self.peek_second().is_some_and(|c| c.is_ascii_digit()) {
            integral = false;
            self.pos += 1;
            self.eat_digits();
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let rest = self.text.get(self.pos + 1..).unwrap_or("");
            let digits_at = if rest.starts_with(['+', '-']) { 2 } else { 1 };
            let has_digit = self
                .text
                .get(self.pos + digits_at..)
                .and_then(|r| r.chars().next())
                .is_some_and(|c| c.is_ascii_digit());
            if has_digit {
                integral = false;
                self.pos += digits_at;
                self.eat_digits();
            }
        }
        let text = self.text.get(start..self.pos).unwrap_or("");
        let value = text.parse::<f64>().unwrap_or(f64::NAN);
        let int = if integral {
            text.parse::<i64>().ok()
        } else {
            None
        };
        self.push(TokenKind::Number { value, int }, start);
    }

    fn word(&mut self, start: usize) {
        while let Some(c) = self
            .peek()
            .filter(|&c| c.is_alphanumeric() || c == '_' || c == '\'')
        {
            self.pos += c.len_utf8();
        }
        let word = self.text.get(start..self.pos).unwrap_or("");
        if matches!(word, "max" | "min" | "avg")
            && self.peek() == Some('=')
            && self.peek_second() != Some('=')
        {
            self.pos += 1;
            let kind = match word {
                "max" => TokenKind::MaxEq,
                "min" => TokenKind::MinEq,
                _ => TokenKind::AvgEq,
            };
            self.push(kind, start);
            return;
        }
        let kind = if let Some(k) = Keyword::from_word(word) {
            TokenKind::Keyword(k)
        } else if word.chars().next().is_some_and(char::is_uppercase) {
            TokenKind::Upper(word.to_string())
        } else {
            TokenKind::Lower(word.to_string())
        };
        self.push(kind, start);
    }

    fn string(&mut self, start: usize) {
        self.pos += 1;
        let mut value = String::new();
        while let Some(c) = self.peek().filter(|&c| c != '\n') {
            self.pos += c.len_utf8();
            match c {
                '"' => {
                    self.push(TokenKind::Str(value), start);
                    return;
                }
                '\\' => match self.peek() {
                    Some(e @ ('"' | '\\')) => {
                        self.pos += 1;
                        value.push(e);
                    }
                    Some('n') => {
                        self.pos += 1;
                        value.push('\n');
                    }
                    Some('t') => {
                        self.pos += 1;
                        value.push('\t');
                    }
                    _ => value.push('\\'),
                },
                c => value.push(c),
            }
        }
        let span = self.span(start);
        self.errors.push(ParseError::UnterminatedString { span });
        self.tokens.push(Token {
            kind: TokenKind::Str(value),
            span,
        });
    }

    fn operator(&mut self, c: char, start: usize) {
        let next = self.peek_second();
        let (kind, len) = match (c, next) {
            ('<', Some('-')) => (TokenKind::Arrow, 2),
            ('<', Some('=')) => (TokenKind::Le, 2),
            ('>', Some('=')) => (TokenKind::Ge, 2),
            ('=', Some('=')) => (TokenKind::EqEq, 2),
            ('!', Some('=')) => (TokenKind::Ne, 2),
            ('+', Some('=')) => (TokenKind::PlusEq, 2),
            ('<', _) => (TokenKind::Lt, 1),
            ('>', _) => (TokenKind::Gt, 1),
            ('=', _) => (TokenKind::Eq, 1),
            ('+', _) => (TokenKind::Plus, 1),
            ('-', _) => (TokenKind::Minus, 1),
            ('*', _) => (TokenKind::Star, 1),
            ('/', _) => (TokenKind::Slash, 1),
            ('^', _) => (TokenKind::Caret, 1),
            ('%', _) => (TokenKind::Percent, 1),
            ('?', _) => (TokenKind::Question, 1),
            ('~', _) => (TokenKind::Tilde, 1),
            (':', _) => (TokenKind::Colon, 1),
            (',', _) => (TokenKind::Comma, 1),
            ('.', _) => (TokenKind::Dot, 1),
            ('(', _) => (TokenKind::LParen, 1),
            ('[', _) => (TokenKind::LBracket, 1),
            ('{', _) => (TokenKind::LBrace, 1),
            (')', _) => (TokenKind::RParen, 1),
            (']', _) => (TokenKind::RBracket, 1),
            ('}', _) => (TokenKind::RBrace, 1),
            _ => {
                self.pos += c.len_utf8();
                let span = self.span(start);
                self.errors.push(ParseError::UnexpectedChar { ch: c, span });
                return;
            }
        };
        self.pos += len;
        match kind {
            TokenKind::LParen | TokenKind::LBracket | TokenKind::LBrace => self.depth += 1,
            TokenKind::RParen | TokenKind::RBracket | TokenKind::RBrace => {
                self.depth = self.depth.saturating_sub(1)
            }
            _ => {}
        }
        self.push(kind, start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        let (tokens, errors) = lex(text, FileId(0));
        assert!(errors.is_empty(), "{errors:?}");
        tokens.into_iter().map(|t| t.kind).collect()
    }

    fn num(value: f64, int: Option<i64>) -> TokenKind {
        TokenKind::Number { value, int }
    }

    #[test]
    fn a_byte_order_mark_at_the_start_is_skipped() {
        let (tokens, errors) = lex("\u{feff}X = 1", FileId(0));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(tokens.first().map(|t| t.span.start), Some(3));
        // Anywhere else it is a stray character.
        assert!(!lex("X = \u{feff}1", FileId(0)).1.is_empty());
    }

    #[test]
    fn numbers_in_all_forms() {
        assert_eq!(
            kinds("3 0.5 1e-3 2.5E+4"),
            vec![
                num(3.0, Some(3)),
                num(0.5, None),
                num(1e-3, None),
                num(2.5e4, None),
                TokenKind::Newline,
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn primes_belong_to_names_and_case_decides_kind() {
        assert_eq!(
            kinds("A[p, p'.] x''"),
            vec![
                TokenKind::Upper("A".into()),
                TokenKind::LBracket,
                TokenKind::Lower("p".into()),
                TokenKind::Comma,
                TokenKind::Lower("p'".into()),
                TokenKind::Dot,
                TokenKind::RBracket,
                TokenKind::Lower("x''".into()),
                TokenKind::Newline,
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn projection_words_fuse_only_before_a_lone_equals() {
        assert_eq!(kinds("max=")[0], TokenKind::MaxEq);
        assert_eq!(kinds("avg=")[0], TokenKind::AvgEq);
        assert_eq!(kinds("max ==")[0], TokenKind::Lower("max".into()));
        assert_eq!(kinds("max==")[0], TokenKind::Lower("max".into()));
        assert_eq!(kinds("min (")[0], TokenKind::Lower("min".into()));
    }

    #[test]
    fn strings_resolve_escapes() {
        assert_eq!(kinds(r#""a\"b\\c""#)[0], TokenKind::Str("a\"b\\c".into()));
        let (_, errors) = lex("\"open", FileId(0));
        assert!(matches!(
            errors.as_slice(),
            [ParseError::UnterminatedString { .. }]
        ));
    }

    #[test]
    fn newlines_separate_only_complete_lines() {
        let text = "Y = A +\n B # comment\n\n(X,\n Z)\nW =\n 1";
        let newlines = kinds(text)
            .iter()
            .filter(|k| **k == TokenKind::Newline)
            .count();
        assert_eq!(newlines, 3);
    }

    #[test]
    fn operators_lex_longest_first() {
        assert_eq!(
            kinds("<- <= < >= > == != += ~ % ?"),
            vec![
                TokenKind::Arrow,
                TokenKind::Le,
                TokenKind::Lt,
                TokenKind::Ge,
                TokenKind::Gt,
                TokenKind::EqEq,
                TokenKind::Ne,
                TokenKind::PlusEq,
                TokenKind::Tilde,
                TokenKind::Percent,
                TokenKind::Question,
                TokenKind::Newline,
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn a_stray_character_is_reported_and_skipped() {
        let (tokens, errors) = lex("A @ B", FileId(0));
        assert_eq!(errors.len(), 1);
        assert_eq!(tokens.len(), 4);
    }
}
