//! Reading passwords and secret values without echo or argv.
//!
//! Order for passwords: `--password-stdin`, then `SECRETCTL_PASSWORD`, then a
//! no-echo prompt on the terminal. Every copy is `Zeroizing`.

use std::io::{IsTerminal, Read};

use zeroize::Zeroizing;

use crate::error::{CliError, Result};

/// Reads all of stdin, dropping one trailing newline (`\n` or `\r\n`).
pub fn read_stdin_value() -> Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| CliError::error(format!("cannot read stdin: {e}")))?;
    strip_newline(&mut buf);
    Ok(buf)
}

/// Drops exactly one trailing `\n` (or `\r\n`).
pub fn strip_newline(buf: &mut Vec<u8>) {
    if buf.ends_with(b"\n") {
        buf.pop();
        if buf.ends_with(b"\r") {
            buf.pop();
        }
    }
}

/// A no-echo prompt on the terminal.
pub fn prompt(label: &str) -> Result<Zeroizing<String>> {
    rpassword::prompt_password(label)
        .map(Zeroizing::new)
        .map_err(|e| CliError::error(format!("cannot read from the terminal: {e}")))
}

/// The master password. `confirm` asks twice on a terminal (for `init`).
pub fn master_password(from_stdin: bool, confirm: bool) -> Result<Zeroizing<Vec<u8>>> {
    let pw: Zeroizing<Vec<u8>> = if from_stdin {
        read_stdin_value()?
    } else if let Some(env) = std::env::var_os("SECRETCTL_PASSWORD").filter(|v| !v.is_empty()) {
        Zeroizing::new(env.into_encoded_bytes())
    } else if std::io::stdin().is_terminal() {
        let first = prompt("Master password: ")?;
        if confirm {
            let again = prompt("Repeat master password: ")?;
            if *first != *again {
                return Err(CliError::usage("the passwords do not match"));
            }
        }
        Zeroizing::new(first.as_bytes().to_vec())
    } else {
        return Err(CliError::usage("no password given")
            .hint("run in a terminal, pipe it with --password-stdin, or set SECRETCTL_PASSWORD"));
    };
    if pw.is_empty() {
        return Err(CliError::usage("the password is empty"));
    }
    Ok(pw)
}

/// A secret value: a no-echo prompt on a terminal, else all of stdin.
pub fn secret_value(label: &str) -> Result<Zeroizing<Vec<u8>>> {
    if std::io::stdin().is_terminal() {
        let v = prompt(label)?;
        Ok(Zeroizing::new(v.as_bytes().to_vec()))
    } else {
        read_stdin_value()
    }
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
            (b"abc", b"abc"),
            (b"", b""),
        ] {
            let mut v = input.to_vec();
            strip_newline(&mut v);
            assert_eq!(v, want);
        }
    }
}
