//! Reading master passwords and secret values: from stdin, the
//! environment, or a terminal prompt, never from argv.
//!
//! Every buffer that holds a password or a value is `Zeroizing`, and stdin
//! is read into buffers that are grown by copying into a fresh `Zeroizing`
//! buffer, so a reallocation never leaves an unwiped copy behind.

use std::io::{BufRead, IsTerminal, Read, Write};

use anyhow::Context;
use zeroize::Zeroizing;

use crate::error::{CliError, Result};

/// Most bytes read from stdin: the largest message the daemon accepts.
/// Bigger input is refused rather than buffered without bound.
const MAX_INPUT: usize = secretctl_proto::client::MAX_MESSAGE;

/// True when stdin is a terminal: then values are prompted for, not read.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Reads `r` to EOF into a zeroizing buffer, refusing more than `limit` bytes.
pub fn read_all(mut r: impl Read, limit: usize) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::with_capacity(4096));
    let mut chunk = Zeroizing::new([0u8; 4096]);
    loop {
        let n = match r.read(&mut chunk[..]) {
            Ok(0) => return Ok(buf),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.len() + n > limit {
            return Err(std::io::Error::other(format!(
                "input is larger than {} MiB",
                limit / (1024 * 1024)
            )));
        }
        if buf.len() + n > buf.capacity() {
            // Grow by hand: the old buffer is wiped when it is dropped.
            let mut bigger = Zeroizing::new(Vec::with_capacity((buf.len() + n) * 2));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Drops exactly one trailing `\n` (or `\r\n`): `echo` and editors add one,
/// and a value that really ends in a newline can still be given with two.
pub fn strip_newline(buf: &mut Vec<u8>) {
    if buf.ends_with(b"\n") {
        buf.pop();
        if buf.ends_with(b"\r") {
            buf.pop();
        }
    }
}

/// All of stdin, with one trailing newline dropped.
pub fn read_stdin_value() -> Result<Zeroizing<Vec<u8>>> {
    let mut buf = read_all(std::io::stdin().lock(), MAX_INPUT).context("cannot read stdin")?;
    strip_newline(&mut buf);
    Ok(buf)
}

/// A no-echo prompt on the terminal.
pub fn prompt_hidden(label: &str) -> Result<Zeroizing<Vec<u8>>> {
    let mut line =
        Zeroizing::new(rpassword::prompt_password(label).context("cannot read from the terminal")?);
    Ok(Zeroizing::new(std::mem::take(&mut *line).into_bytes()))
}

/// A prompt that echoes (for non-sensitive fields such as a host name).
pub fn prompt_visible(label: &str) -> Result<Zeroizing<Vec<u8>>> {
    let mut err = std::io::stderr().lock();
    write!(err, "{label}").and_then(|()| err.flush())?;
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read from the terminal")?;
    let mut bytes = Zeroizing::new(std::mem::take(&mut *line).into_bytes());
    strip_newline(&mut bytes);
    Ok(bytes)
}

/// A value for a field: prompted for on a terminal (echoed only when
/// `echo`), else all of stdin.
pub fn value(label: &str, echo: bool) -> Result<Zeroizing<Vec<u8>>> {
    match (interactive(), echo) {
        (true, true) => prompt_visible(label),
        (true, false) => prompt_hidden(label),
        (false, _) => read_stdin_value(),
    }
}

/// Shortest master password accepted for a new vault.
pub const MIN_PASSWORD: usize = 8;
/// zxcvbn score (0-4) below which a new master password draws a warning.
pub const WARN_BELOW_SCORE: u8 = 3;

/// Checks a new master password: refused below [`MIN_PASSWORD`]
/// characters; a warning (returned) when zxcvbn estimates it guessable
/// (score below [`WARN_BELOW_SCORE`]).
pub fn check_new_password(pw: &[u8]) -> Result<Option<String>> {
    let text = String::from_utf8_lossy(pw);
    let chars = text.chars().count();
    if chars < MIN_PASSWORD {
        return Err(CliError::usage(format!(
            "the master password has {chars} characters: use at least {MIN_PASSWORD}"
        ))
        .hint("a passphrase of four or more random words is strong and easy to type")
        .into());
    }
    let estimate = zxcvbn::zxcvbn(&text, &["secretctl"]);
    let score = estimate.score() as u8;
    if score >= WARN_BELOW_SCORE {
        return Ok(None);
    }
    let advice = estimate
        .feedback()
        .and_then(|f| f.warning().map(|w| w.to_string()))
        .unwrap_or_else(|| "it is easy to guess".into());
    Ok(Some(format!(
        "warning: this master password is weak (strength {score} of 4: {advice}); anyone who copies vault.redb can try to guess it offline. Consider a longer passphrase ('secretctl password change' can replace it later)"
    )))
}

/// The master password: `--password-stdin`, else `SECRETCTL_PASSWORD`, else
/// a no-echo prompt (asked twice when `confirm`, for `init`). Empty is
/// refused. For an agent's process (`agent`: why the daemon says so) only
/// the terminal counts (contract §9).
pub fn master_password(
    from_stdin: bool,
    confirm: bool,
    agent: Option<&str>,
) -> Result<Zeroizing<Vec<u8>>> {
    if let Some(why) = agent {
        if from_stdin || std::env::var_os("SECRETCTL_PASSWORD").is_some_and(|v| !v.is_empty()) {
            eprintln!(
                "secretctl: ignoring SECRETCTL_PASSWORD and --password-stdin ({why}): the master password is read from the terminal only"
            );
        }
        let pw = rpassword::prompt_password("Master password: ").map_err(|_| {
            CliError::new(
                crate::error::DENIED,
                format!("refused: {why}; the master password of an agent's process is read from a terminal only, and there is none"),
            )
            .hint("run it in your own terminal")
        })?;
        let pw = Zeroizing::new(pw.into_bytes());
        if pw.is_empty() {
            return Err(CliError::usage("the password is empty").into());
        }
        return Ok(pw);
    }
    let pw: Zeroizing<Vec<u8>> = if from_stdin {
        read_stdin_value().context("cannot read the password")?
    } else if let Some(env) = std::env::var_os("SECRETCTL_PASSWORD").filter(|v| !v.is_empty()) {
        Zeroizing::new(env.into_encoded_bytes())
    } else if interactive() {
        let first = prompt_hidden("Master password: ")?;
        if confirm {
            if first.is_empty() {
                return Err(CliError::usage("the password is empty").into());
            }
            let again = prompt_hidden("Repeat master password: ")?;
            if *first != *again {
                return Err(CliError::usage("the passwords do not match").into());
            }
        }
        first
    } else {
        return Err(CliError::usage("no password given")
            .hint("run in a terminal, pipe it with --password-stdin, or set SECRETCTL_PASSWORD")
            .into());
    };
    if pw.is_empty() {
        return Err(CliError::usage("the password is empty").into());
    }
    if confirm && let Some(warning) = check_new_password(&pw)? {
        eprintln!("{warning}");
    }
    Ok(pw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_one_newline_only() {
        for (input, want) in [
            (&b"abc\n"[..], &b"abc"[..]),
            (b"abc\r\n", b"abc"),
            (b"abc\n\n", b"abc\n"),
            (b"abc\r", b"abc\r"),
            (b"abc", b"abc"),
            (b"\n", b""),
            (b"", b""),
        ] {
            let mut v = input.to_vec();
            strip_newline(&mut v);
            assert_eq!(v, want);
        }
    }

    #[test]
    fn new_passwords_need_eight_characters_and_weak_ones_are_flagged() {
        assert!(check_new_password(b"abc").is_err());
        assert!(
            check_new_password("ééééééé".as_bytes()).is_err(),
            "characters, not bytes"
        );
        assert!(check_new_password(b"password").unwrap().is_some(), "weak");
        assert!(check_new_password(b"12345678").unwrap().is_some(), "weak");
        assert_eq!(
            check_new_password(b"tundra-Quill-47-oxbow-Narwhal").unwrap(),
            None
        );
    }

    #[test]
    fn reads_everything_up_to_the_limit() {
        let data: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
        assert_eq!(*read_all(&data[..], 20_000).unwrap(), data);
        assert!(read_all(&data[..], 19_999).is_err());
        assert!(read_all(&b""[..], 10).unwrap().is_empty());
    }
}
