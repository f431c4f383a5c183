//! `.env` files, read by dotenvy (the maintained dotenv parser): `export `
//! prefixes, single quotes (literal), double quotes (with `\n`, `\"`,
//! `\\`, `\$` escapes), `#` comments, multi-line quoted values, and
//! `$NAME` / `${NAME}` expansion in unquoted and double-quoted values
//! (dotenvy looks in this process's environment first, then at earlier
//! lines of the file).
//!
//! dotenvy gives no line numbers, so it reads the file through [`Lines`],
//! which hands it one line per read and counts them: after each variable,
//! the lines read so far say where it ended, and the first line after the
//! previous variable that is neither blank nor a comment is where it began.
//! dotenvy's own error text quotes the offending line, which may hold a
//! value: it is never shown, only the line number.
//!
//! A variable defined twice: the last definition wins (as in `sh`); the
//! earlier one is skipped and both are named. An empty value is skipped.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::Read;
use std::rc::Rc;

use zeroize::Zeroizing;

use super::plan::{self, Plan, Planned, What};

/// Hands out at most one line per `read`, counting the lines handed out.
struct Lines<'a> {
    rest: &'a [u8],
    done: Rc<Cell<usize>>,
}

impl Read for Lines<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let line_end = self
            .rest
            .iter()
            .position(|b| *b == b'\n')
            .map_or(self.rest.len(), |i| i + 1);
        let n = line_end.min(buf.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        if n > 0 && self.rest[n - 1] == b'\n' {
            self.done.set(self.done.get() + 1);
        }
        self.rest = &self.rest[n..];
        Ok(n)
    }
}

/// One variable: where it began, its name, its value.
pub struct Var {
    pub line: usize,
    pub name: String,
    pub value: Zeroizing<String>,
}

/// True for a line dotenvy skips between variables.
fn skipped(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    let t = text.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// Every variable of `text`, in order, with the line it began on.
pub fn parse(text: &[u8]) -> Result<Vec<Var>, String> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    let done = Rc::new(Cell::new(0));
    let mut iter = dotenvy::from_read_iter(Lines {
        rest: text,
        done: done.clone(),
    });
    let mut vars = Vec::new();
    loop {
        let before = done.get();
        // The first line of whatever dotenvy reads next.
        let mut start = before;
        while start < lines.len() && skipped(lines[start]) {
            start += 1;
        }
        let line = start + 1;
        match iter.next() {
            None => break,
            Some(Ok((name, value))) => vars.push(Var {
                line,
                name,
                value: Zeroizing::new(value),
            }),
            Some(Err(dotenvy::Error::Io(e))) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(format!("line {line}: not UTF-8 text"));
            }
            Some(Err(dotenvy::Error::Io(e))) => return Err(format!("cannot read it: {e}")),
            // Its text quotes the line, which may hold a value.
            Some(Err(_)) => {
                return Err(format!(
                    "line {line}: not a valid dotenv line (NAME=value, with quotes closed and only \\n \\\" \\' \\\\ \\$ escapes)"
                ));
            }
        }
    }
    Ok(vars)
}

/// Variables of this process that hold passwords (contract §2). dotenvy
/// expands `$NAME` from the process environment, so a file could copy one
/// into the vault, where runs would hand it to commands.
const PASSWORD_VARS: &[&str] = &[
    "SECRETCTL_PASSWORD",
    "SECRETCTL_NEW_PASSWORD",
    "SECRETCTL_BACKUP_PASSWORD",
];

/// Refuses a value that holds one of [`PASSWORD_VARS`]' values.
fn check_no_password(var: &Var, passwords: &[(&str, Zeroizing<String>)]) -> Result<(), String> {
    match passwords
        .iter()
        .find(|(_, p)| var.value.contains(p.as_str()))
    {
        Some((name, _)) => Err(format!(
            "line {}: the value of {} holds the value of {name} from this process's environment (a reference such as ${{{name}}} expands to it): the master password is never imported",
            var.line, var.name
        )),
        None => Ok(()),
    }
}

/// The plan of a `.env` file: one secret per variable (`prefix` + its name
/// as written), its value in the `value` field.
pub fn plan(text: &[u8], prefix: &str, tags: &[String]) -> Result<Plan, String> {
    let passwords: Vec<(&str, Zeroizing<String>)> = PASSWORD_VARS
        .iter()
        .filter_map(|n| Some((*n, Zeroizing::new(std::env::var(n).ok()?))))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let mut plan = Plan::new();
    // name → index of its entry in the plan.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for v in parse(text)? {
        check_no_password(&v, &passwords)?;
        let origin = format!("line {}", v.line);
        let key = plan::key_as_written(prefix, &v.name, &origin)?;
        let mut note = None;
        if let Some(i) = seen.insert(v.name.clone(), plan.entries.len()) {
            let earlier = &mut plan.entries[i];
            earlier.what = What::Skip(format!(
                "{} is defined again on line {}: the last definition wins",
                v.name, v.line
            ));
            note = Some(format!("replaces {}", earlier.origin));
        }
        let what = if v.value.is_empty() {
            What::Skip("empty value".into())
        } else {
            let mut value = v.value;
            What::Send(plan::value_request(
                &key,
                std::mem::take(&mut *value).into_bytes(),
                tags,
            ))
        };
        plan.entries.push(Planned {
            origin,
            key,
            what,
            note,
        });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(text: &str) -> Vec<(usize, String, String)> {
        parse(text.as_bytes())
            .unwrap()
            .into_iter()
            .map(|v| (v.line, v.name, v.value.to_string()))
            .collect()
    }

    #[test]
    fn dotenv_conventions_with_line_numbers() {
        let text = "\u{feff}# a comment\n\
            \n\
            PLAIN=value\n\
            export EXPORTED=yes\n\
            SINGLE='lit $HOME \\n'\n\
            DOUBLE=\"tab\\\"quote\\\\ \\$x \\n nl\"\n\
            \x20\x20# indented comment\n\
            MULTI=\"first\n\
            # not a comment\n\
            last\"\n\
            INLINE=v # trailing comment\n\
            EMPTY=\n\
            REF=${PLAIN}-x\n";
        assert_eq!(
            vars(text),
            [
                (3, "PLAIN".into(), "value".into()),
                (4, "EXPORTED".into(), "yes".into()),
                (5, "SINGLE".into(), "lit $HOME \\n".into()),
                (6, "DOUBLE".into(), "tab\"quote\\ $x \n nl".into()),
                (8, "MULTI".into(), "first\n# not a comment\nlast".into()),
                (11, "INLINE".into(), "v".into()),
                (12, "EMPTY".into(), "".into()),
                (13, "REF".into(), "value-x".into()),
            ]
        );
    }

    #[test]
    fn errors_name_the_line_and_never_the_text() {
        for (text, line) in [
            ("A=1\nB='never closed secret-value\nC=3\n", 2),
            ("A=1\n\n# c\nnot a line secret-value\n", 4),
            ("A=1\nB=\"bad \\q escape secret-value\"\n", 2),
            ("A=1\nB=two words secret-value\n", 2),
        ] {
            let e = parse(text.as_bytes()).err().unwrap();
            assert!(e.starts_with(&format!("line {line}: ")), "{text:?}: {e}");
            assert!(!e.contains("secret-value"), "{e}");
        }
        let e = parse(b"A=1\nB=\xff\xfe\n").err().unwrap();
        assert_eq!(e, "line 2: not UTF-8 text");
    }

    #[test]
    fn last_definition_wins_and_empty_values_skip() {
        let p = plan(b"A=1\nB=\nA=2\n", "dev/", &[]).unwrap();
        let got: Vec<(String, String, bool, Option<String>)> = p
            .entries
            .iter()
            .map(|e| {
                (
                    e.origin.clone(),
                    e.key.clone(),
                    matches!(e.what, What::Send(_)),
                    e.note.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("line 1".into(), "dev/A".into(), false, None),
                ("line 2".into(), "dev/B".into(), false, None),
                (
                    "line 3".into(),
                    "dev/A".into(),
                    true,
                    Some("replaces line 1".into())
                ),
            ]
        );
        let pw = [(
            "SECRETCTL_PASSWORD",
            Zeroizing::new("master-pw-1".to_string()),
        )];
        let vars = parse(b"A=x\nB=pre-master-pw-1-post\n").unwrap();
        assert!(check_no_password(&vars[0], &pw).is_ok());
        let e = check_no_password(&vars[1], &pw).unwrap_err();
        assert!(
            e.starts_with("line 2: the value of B holds the value of SECRETCTL_PASSWORD"),
            "{e}"
        );
        assert!(!e.contains("master-pw-1"), "{e}");
        let e = plan(b"A..B=1\n", "", &[]).err().unwrap();
        assert!(e.starts_with("line 1: 'A..B' is not a valid key"), "{e}");
    }
}
