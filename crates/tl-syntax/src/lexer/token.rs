//! Token kinds, keywords and how they print in messages.

use std::fmt;

use crate::span::Span;

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
    pub(super) fn from_word(word: &str) -> Option<Keyword> {
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
    pub(super) fn continues_line(&self) -> bool {
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
