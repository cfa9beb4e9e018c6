//! The lexer: source text to tokens with spans.
//!
//! Besides splitting the text, the lexer decides where statements end: it emits a
//! [`TokenKind::Newline`] only where a line break separates statements, that is, when no `(`,
//! `[` or `{` is open and the previous token is not one that needs a right operand (a binary
//! operator, `,`, `<-`, `=`, `+=`, `max=`, `min=`, `avg=`, `~`). Blank lines and comments leave
//! no tokens, so the parser never sees two separators in a row.

use std::fmt;

use crate::parser::ParseError;
use crate::span::{FileId, Span};

/// A lower-case word with a fixed meaning in the grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keyword {
    /// `not`, negation of a rule-body atom.
    Not,
    /// `param`, a learned tensor.
    Param,
    /// `const`, a named constant.
    Const,
    /// `domain`, an explicit index domain.
    Domain,
    /// `minimize`, the learning command.
    Minimize,
    /// `with`, before the optimiser.
    With,
    /// `for`, before the duration.
    For,
    /// `steps`, a duration unit.
    Steps,
    /// `epochs`, a duration unit.
    Epochs,
    /// `batch`, the mini-batch clause.
    Batch,
    /// `schedule`, the learning-rate schedule clause.
    Schedule,
    /// `import`, file inclusion.
    Import,
    /// `true`
    True,
    /// `false`
    False,
}

impl Keyword {
    fn from_word(word: &str) -> Option<Keyword> {
        Some(match word {
            "not" => Keyword::Not,
            "param" => Keyword::Param,
            "const" => Keyword::Const,
            "domain" => Keyword::Domain,
            "minimize" => Keyword::Minimize,
            "with" => Keyword::With,
            "for" => Keyword::For,
            "steps" => Keyword::Steps,
            "epochs" => Keyword::Epochs,
            "batch" => Keyword::Batch,
            "schedule" => Keyword::Schedule,
            "import" => Keyword::Import,
            "true" => Keyword::True,
            "false" => Keyword::False,
            _ => return None,
        })
    }

    /// The keyword as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Not => "not",
            Keyword::Param => "param",
            Keyword::Const => "const",
            Keyword::Domain => "domain",
            Keyword::Minimize => "minimize",
            Keyword::With => "with",
            Keyword::For => "for",
            Keyword::Steps => "steps",
            Keyword::Epochs => "epochs",
            Keyword::Batch => "batch",
            Keyword::Schedule => "schedule",
            Keyword::Import => "import",
            Keyword::True => "true",
            Keyword::False => "false",
        }
    }
}

/// What a token is; the parser matches on this.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenKind {
    /// A name starting with an upper-case letter: a tensor, relation or symbol.
    Upper(String),
    /// A name starting with a lower-case letter or `_`: an index variable or function name.
    Lower(String),
    /// A reserved lower-case word.
    Keyword(Keyword),
    /// A numeric literal; `int` holds its value when it is written as a plain integer.
    Number {
        /// The value.
        value: f64,
        /// The value as an integer, when written without `.` or exponent and in range.
        int: Option<i64>,
    },
    /// A string literal, escapes resolved.
    Str(String),
    /// `<-`
    Arrow,
    /// `=`
    Eq,
    /// `+=`
    PlusEq,
    /// `max=`
    MaxEq,
    /// `min=`
    MinEq,
    /// `avg=`
    AvgEq,
    /// `==`
    EqEq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Star,
    /// `/`
    Slash,
    /// `^`
    Caret,
    /// `%`
    Percent,
    /// `?`
    Question,
    /// `~`
    Tilde,
    /// `:`
    Colon,
    /// `,`
    Comma,
    /// `.`
    Dot,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// The end of a statement.
    Newline,
    /// The end of the text.
    Eof,
}

impl TokenKind {
    /// Whether a line break right after this token continues the statement.
    fn continues_line(&self) -> bool {
        matches!(
            self,
            TokenKind::Plus
                | TokenKind::Minus
                | TokenKind::Star
                | TokenKind::Slash
                | TokenKind::Caret
                | TokenKind::Percent
                | TokenKind::Comma
                | TokenKind::Arrow
                | TokenKind::Eq
                | TokenKind::PlusEq
                | TokenKind::MaxEq
                | TokenKind::MinEq
                | TokenKind::AvgEq
                | TokenKind::Tilde
        )
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            TokenKind::Upper(name) | TokenKind::Lower(name) => return write!(f, "`{name}`"),
            TokenKind::Keyword(k) => return write!(f, "keyword `{}`", k.as_str()),
            TokenKind::Number { value, .. } => return write!(f, "number `{value}`"),
            TokenKind::Str(s) => return write!(f, "string {s:?}"),
            TokenKind::Arrow => "`<-`",
            TokenKind::Eq => "`=`",
            TokenKind::PlusEq => "`+=`",
            TokenKind::MaxEq => "`max=`",
            TokenKind::MinEq => "`min=`",
            TokenKind::AvgEq => "`avg=`",
            TokenKind::EqEq => "`==`",
            TokenKind::Ne => "`!=`",
            TokenKind::Lt => "`<`",
            TokenKind::Le => "`<=`",
            TokenKind::Gt => "`>`",
            TokenKind::Ge => "`>=`",
            TokenKind::Plus => "`+`",
            TokenKind::Minus => "`-`",
            TokenKind::Star => "`*`",
            TokenKind::Slash => "`/`",
            TokenKind::Caret => "`^`",
            TokenKind::Percent => "`%`",
            TokenKind::Question => "`?`",
            TokenKind::Tilde => "`~`",
            TokenKind::Colon => "`:`",
            TokenKind::Comma => "`,`",
            TokenKind::Dot => "`.`",
            TokenKind::LParen => "`(`",
            TokenKind::RParen => "`)`",
            TokenKind::LBracket => "`[`",
            TokenKind::RBracket => "`]`",
            TokenKind::LBrace => "`{`",
            TokenKind::RBrace => "`}`",
            TokenKind::Newline => "the end of the line",
            TokenKind::Eof => "the end of the file",
        };
        f.write_str(text)
    }
}

/// One token and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Where it is.
    pub span: Span,
}

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
