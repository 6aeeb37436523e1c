//! The label selector lexer (apimachinery `labels.Lexer`): identifiers, keywords and the
//! longest operator made of `= ! ( ) , > <`.

/// A label selector token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Token {
    Error,
    EndOfString,
    CloseParen,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenParen,
}

fn keyword(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::CloseParen,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenParen,
        _ => return None,
    })
}

fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

/// Splits a selector into tokens.
pub(super) struct Lexer {
    chars: Vec<char>,
    position: usize,
}

impl Lexer {
    pub(super) fn new(input: &str) -> Self {
        Self {
            chars: input.chars().collect(),
            position: 0,
        }
    }

    /// All tokens up to and including `EndOfString`.
    pub(super) fn tokens(mut self) -> Vec<(Token, String)> {
        let mut out = Vec::new();
        loop {
            let (token, literal) = self.lex();
            out.push((token, literal));
            if token == Token::EndOfString {
                return out;
            }
        }
    }

    fn lex(&mut self) -> (Token, String) {
        while self
            .chars
            .get(self.position)
            .copied()
            .is_some_and(is_whitespace)
        {
            self.position += 1;
        }
        match self.chars.get(self.position).copied() {
            None => (Token::EndOfString, String::new()),
            Some(c) if is_special(c) => self.scan_special(),
            Some(_) => self.scan_identifier(),
        }
    }

    fn scan_identifier(&mut self) -> (Token, String) {
        let start = self.position;
        while self
            .chars
            .get(self.position)
            .is_some_and(|&c| !is_whitespace(c) && !is_special(c))
        {
            self.position += 1;
        }
        let literal: String = self.chars[start..self.position].iter().collect();
        match keyword(&literal) {
            Some(token) => (token, literal),
            None => (Token::Identifier, literal),
        }
    }

    /// The longest run of special characters that is an operator.
    fn scan_special(&mut self) -> (Token, String) {
        let mut buffer = String::new();
        let mut last: Option<(Token, String)> = None;
        while let Some(c) = self
            .chars
            .get(self.position)
            .copied()
            .filter(|&c| is_special(c))
        {
            buffer.push(c);
            if let Some(token) = keyword(&buffer) {
                last = Some((token, buffer.clone()));
            } else if last.is_some() {
                break;
            }
            self.position += 1;
        }
        last.unwrap_or((
            Token::Error,
            format!("error expected: keyword found '{buffer}'"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Token> {
        Lexer::new(s).tokens().into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn operators_take_the_longest_match() {
        use Token::*;
        assert_eq!(
            kinds("a==b"),
            [Identifier, DoubleEquals, Identifier, EndOfString]
        );
        assert_eq!(
            kinds("a!=b"),
            [Identifier, NotEquals, Identifier, EndOfString]
        );
        assert_eq!(
            kinds("!a,b=(c)"),
            [
                DoesNotExist,
                Identifier,
                Comma,
                Identifier,
                Equals,
                OpenParen,
                Identifier,
                CloseParen,
                EndOfString
            ]
        );
        assert_eq!(
            kinds("a===b"),
            [Identifier, DoubleEquals, Equals, Identifier, EndOfString]
        );
        assert_eq!(
            kinds(" a in ( x ) "),
            [
                Identifier,
                In,
                OpenParen,
                Identifier,
                CloseParen,
                EndOfString
            ]
        );
        assert_eq!(
            kinds("x notin(y)"),
            [
                Identifier,
                NotIn,
                OpenParen,
                Identifier,
                CloseParen,
                EndOfString
            ]
        );
        assert_eq!(
            kinds("k>1,k<2"),
            [
                Identifier,
                GreaterThan,
                Identifier,
                Comma,
                Identifier,
                LessThan,
                Identifier,
                EndOfString
            ]
        );
    }
}
