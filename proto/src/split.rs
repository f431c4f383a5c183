//! Splitting a command line into words the way a POSIX shell would, with
//! no expansion at all: no variables, globs, tildes or substitutions.

/// A command line that cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("unterminated {0} quote in the command")]
    Unterminated(&'static str),
    #[error("the command ends with a lone backslash")]
    TrailingBackslash,
    #[error("the command is empty")]
    Empty,
}

/// Splits `line` into words: whitespace separates; single quotes are
/// literal; double quotes keep spaces and honour `\"` `\\` `\$` and `` \` ``;
/// a backslash outside quotes escapes the next character.
pub fn split(line: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(SplitError::Unterminated("single")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(SplitError::Unterminated("double")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(SplitError::Unterminated("double")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => cur.push(c),
                    None => return Err(SplitError::TrailingBackslash),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    if words.is_empty() {
        return Err(SplitError::Empty);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(line: &str) -> Vec<String> {
        split(line).unwrap()
    }

    #[test]
    fn splits_like_a_shell_without_expansion() {
        assert_eq!(
            s("npm run test:integration"),
            ["npm", "run", "test:integration"]
        );
        assert_eq!(s("  a   b  "), ["a", "b"]);
        assert_eq!(s("echo 'a b' \"c d\""), ["echo", "a b", "c d"]);
        assert_eq!(s("echo $HOME ~ *.rs"), ["echo", "$HOME", "~", "*.rs"]);
        assert_eq!(
            s(r#"sh -c 'curl -H "Authorization: Bearer $TOKEN" x'"#),
            ["sh", "-c", r#"curl -H "Authorization: Bearer $TOKEN" x"#]
        );
        assert_eq!(s(r#"a\ b "q\"x" 'it''s'"#), ["a b", "q\"x", "its"]);
        assert_eq!(s(r#""\$X \n""#), ["$X \\n"]);
        assert_eq!(s("a''b \"\""), ["ab", ""]);
    }

    #[test]
    fn refuses_broken_lines() {
        assert_eq!(split("echo 'x"), Err(SplitError::Unterminated("single")));
        assert_eq!(split("echo \"x"), Err(SplitError::Unterminated("double")));
        assert_eq!(split("echo x\\"), Err(SplitError::TrailingBackslash));
        assert_eq!(split("   "), Err(SplitError::Empty));
    }
}
