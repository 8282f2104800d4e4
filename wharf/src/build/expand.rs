//! Variable expansion in Dockerfile instructions, as docker's builder does it (only for
//! ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR and ONBUILD;
//! RUN's shell form is left to the shell): `$VAR`, `${VAR}`, `${VAR:-word}` (word when unset
//! or empty), `${VAR:+word}` (word when set and not empty), `${VAR-word}` and `${VAR+word}`
//! (the same tests for unset only); the escape character makes the next one literal; single
//! quotes keep their content literal, double quotes allow expansion; both are removed.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExpandError {
    #[error("missing '}}' in substitution: {0}")]
    Unterminated(String),
    #[error("unsupported modifier ({0}) in substitution: {1}")]
    Modifier(char, String),
    #[error("unexpected end of statement while looking for matching {0}")]
    Quote(char),
}

struct Lexer<'a, 'v> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    /// Quotes are syntax (instruction arguments) or text (a here-document).
    quotes: bool,
    vars: &'v dyn Fn(&str) -> Option<String>,
    text: &'a str,
}

impl Lexer<'_, '_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// Words up to `stop` (or the end), split on unquoted whitespace when `split`.
    fn words(&mut self, stop: Option<char>, split: bool) -> Result<Vec<String>, ExpandError> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut in_word = false;
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                break;
            }
            self.pos += 1;
            match c {
                c if c == self.escape => {
                    in_word = true;
                    match self.next() {
                        Some(n) => word.push(n),
                        None => word.push(c),
                    }
                }
                '\'' if self.quotes => {
                    in_word = true;
                    loop {
                        match self.next() {
                            Some('\'') => break,
                            Some(n) => word.push(n),
                            None => return Err(ExpandError::Quote('\'')),
                        }
                    }
                }
                '"' if self.quotes => {
                    in_word = true;
                    loop {
                        match self.next() {
                            Some('"') => break,
                            Some(n) if n == self.escape => match self.next() {
                                Some(e @ ('"' | '$')) => word.push(e),
                                Some(e) if e == self.escape => word.push(e),
                                Some(e) => {
                                    word.push(n);
                                    word.push(e);
                                }
                                None => return Err(ExpandError::Quote('"')),
                            },
                            Some('$') => word.push_str(&self.variable()?),
                            Some(n) => word.push(n),
                            None => return Err(ExpandError::Quote('"')),
                        }
                    }
                }
                '$' => {
                    in_word = true;
                    word.push_str(&self.variable()?);
                }
                c if split && c.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                c => {
                    in_word = true;
                    word.push(c);
                }
            }
        }
        if in_word || !split {
            words.push(word);
        }
        Ok(words)
    }

    /// What follows a `$`.
    fn variable(&mut self) -> Result<String, ExpandError> {
        let name_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let mut name = String::new();
                while let Some(c) = self.peek().filter(|c| name_char(*c)) {
                    name.push(c);
                    self.pos += 1;
                }
                match self.next() {
                    Some('}') => Ok((self.vars)(&name).unwrap_or_default()),
                    Some(':') => {
                        let m = self
                            .next()
                            .ok_or_else(|| ExpandError::Unterminated(self.text.into()))?;
                        let word = self.word_until_brace()?;
                        let set = (self.vars)(&name).filter(|v| !v.is_empty());
                        match m {
                            '-' => Ok(set.unwrap_or(word)),
                            '+' => Ok(set.map(|_| word).unwrap_or_default()),
                            m => Err(ExpandError::Modifier(m, self.text.into())),
                        }
                    }
                    Some(m @ ('-' | '+')) => {
                        let word = self.word_until_brace()?;
                        let set = (self.vars)(&name);
                        Ok(if m == '-' {
                            set.unwrap_or(word)
                        } else {
                            set.map(|_| word).unwrap_or_default()
                        })
                    }
                    Some(m) => Err(ExpandError::Modifier(m, self.text.into())),
                    None => Err(ExpandError::Unterminated(self.text.into())),
                }
            }
            Some(c) if name_char(c) => {
                let mut name = String::new();
                while let Some(c) = self.peek().filter(|c| name_char(*c)) {
                    name.push(c);
                    self.pos += 1;
                }
                Ok((self.vars)(&name).unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }

    /// The word of a `${VAR:-word}` up to its closing brace, itself expanded.
    fn word_until_brace(&mut self) -> Result<String, ExpandError> {
        let w = self.words(Some('}'), false)?.concat();
        match self.next() {
            Some('}') => Ok(w),
            _ => Err(ExpandError::Unterminated(self.text.into())),
        }
    }
}

/// Lexes all of `text`: quotes as syntax or as plain text, split on whitespace or not.
fn lex(
    text: &str,
    vars: &dyn Fn(&str) -> Option<String>,
    escape: char,
    quotes: bool,
    split: bool,
) -> Result<Vec<String>, ExpandError> {
    Lexer {
        chars: text.chars().collect(),
        pos: 0,
        escape,
        quotes,
        vars,
        text,
    }
    .words(None, split)
}

/// `text` as one word, expanded.
pub fn word(
    text: &str,
    vars: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<String, ExpandError> {
    Ok(lex(text, vars, escape, true, false)?.concat())
}

/// A here-document's text with its variables expanded: quotes are plain text there.
pub fn text(
    text: &str,
    vars: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<String, ExpandError> {
    Ok(lex(text, vars, escape, false, false)?.concat())
}

/// `text` split into words on unquoted whitespace, each expanded (ENV and LABEL pairs,
/// EXPOSE and VOLUME lists).
pub fn words(
    text: &str,
    vars: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<Vec<String>, ExpandError> {
    lex(text, vars, escape, true, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "A" => Some("apple".into()),
            "EMPTY" => Some(String::new()),
            "SP" => Some("a b".into()),
            _ => None,
        }
    }

    fn w(s: &str) -> String {
        word(s, &vars, '\\').unwrap()
    }

    #[test]
    fn expansion_follows_docker() {
        assert_eq!(w("$A"), "apple");
        assert_eq!(w("${A}s"), "apples");
        assert_eq!(w("x$NOPE-y"), "x-y");
        assert_eq!(w("${NOPE:-def}"), "def");
        assert_eq!(w("${EMPTY:-def}"), "def");
        assert_eq!(w("${EMPTY-def}"), "");
        assert_eq!(w("${A:-def}"), "apple");
        assert_eq!(w("${A:+alt}"), "alt");
        assert_eq!(w("${NOPE:+alt}"), "");
        assert_eq!(w("${EMPTY:+alt}"), "");
        assert_eq!(w("${EMPTY+alt}"), "alt");
        assert_eq!(w("${NOPE:-$A}"), "apple");
        assert_eq!(w("\\$A"), "$A");
        assert_eq!(w("'$A'"), "$A");
        assert_eq!(w("\"$A\""), "apple");
        assert_eq!(w("\"\\$A\""), "$A");
        assert_eq!(w("a$"), "a$");
        assert_eq!(word("`$A", &vars, '`').unwrap(), "$A");
        assert!(matches!(
            word("${A", &vars, '\\'),
            Err(ExpandError::Unterminated(_))
        ));
        assert!(matches!(
            word("${A:?x}", &vars, '\\'),
            Err(ExpandError::Modifier('?', _))
        ));
        assert_eq!(word("'abc", &vars, '\\'), Err(ExpandError::Quote('\'')));
    }

    #[test]
    fn here_documents_keep_their_quotes() {
        assert_eq!(
            text("it's \"$A\"\n", &vars, '\\').unwrap(),
            "it's \"apple\"\n"
        );
    }

    #[test]
    fn words_split_outside_quotes_only() {
        let ws = |s: &str| words(s, &vars, '\\').unwrap();
        assert_eq!(
            ws("a=1 b=\"two words\" c='$A'"),
            ["a=1", "b=two words", "c=$A"]
        );
        assert_eq!(ws("  x   y  "), ["x", "y"]);
        // A variable's value is not split again.
        assert_eq!(ws("k=$SP"), ["k=a b"]);
        assert_eq!(ws("a\\ b"), ["a b"]);
        assert_eq!(ws("\"\""), [""]);
    }
}
