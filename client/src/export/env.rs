//! The env format of `export` (contract §10): one `NAME='value'` line per
//! variable, NAME as `run` would inject it, quoted so that `import`
//! (dotenvy) and POSIX sh (`set -a; . FILE`) both read back the exact
//! bytes.
//!
//! The quoting: the value goes inside single quotes, where neither sh nor
//! dotenvy expands or escapes anything and newlines are allowed. Two bytes
//! leave the quotes:
//! - `'` cannot appear inside single quotes: it is written `\'` between
//!   two quoted runs (`'it'\''s'`), which both read as one quote;
//! - `\` at the end of a quoted run is written `\\` after it: dotenvy's
//!   line joiner treats `\'` inside single quotes as an escaped quote and
//!   would read on past the closing one, while its value parser (and sh)
//!   would not — outside the quotes both read `\\` as one backslash.
//!
//! Every other character is kept as is, inside the quotes. A value that is
//! not UTF-8 text or holds a NUL byte cannot be written this way (dotenvy
//! reads UTF-8 only; no environment variable holds a NUL): it is refused,
//! naming the secret (use the json format).

use std::collections::HashMap;

use secretctl_proto::names;
use secretctl_proto::v1::{ExportedSecret, NamedValue};

/// Appends `value`, quoted, to `out`.
pub fn quote(value: &str, out: &mut Vec<u8>) {
    if value.is_empty() {
        out.extend_from_slice(b"''");
        return;
    }
    for (i, run) in value.split('\'').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\\'");
        }
        let body = run.trim_end_matches('\\');
        if !body.is_empty() {
            out.push(b'\'');
            out.extend_from_slice(body.as_bytes());
            out.push(b'\'');
        }
        for _ in body.len()..run.len() {
            out.extend_from_slice(b"\\\\");
        }
    }
}

/// Most bytes `quote` writes for a value of `len` bytes (every byte a `'`).
pub fn quoted_len(len: usize) -> usize {
    len * 4 + 2
}

/// One variable of the export: its name and the field that holds it.
pub struct Variable<'a> {
    pub name: String,
    pub value: &'a NamedValue,
}

/// The variables of the exported secrets, in order, named as `run` would
/// inject them: a secret's bindings, else its `value` field (or its only
/// field) as the key's env name. Refuses, naming the secret, anything
/// `run` would refuse or this format cannot carry.
pub fn variables(secrets: &[ExportedSecret]) -> Result<Vec<Variable<'_>>, String> {
    let mut out = Vec::new();
    // env name → key it came from.
    let mut seen: HashMap<String, &str> = HashMap::new();
    for s in secrets {
        let meta = s
            .meta
            .as_ref()
            .ok_or("the daemon sent a secret without its metadata")?;
        let key = meta.key.as_str();
        let field = |name: &str| {
            s.fields.iter().find(|f| f.name == name).ok_or_else(|| {
                format!("secret '{key}': its binding names field '{name}', which it does not have")
            })
        };
        let vars: Vec<(String, &NamedValue)> = if meta.bindings.is_empty() {
            let Some(f) = secretctl_proto::rules::default_field(&s.fields, |f| &f.name) else {
                return Err(format!(
                    "secret '{key}' has several fields and no bindings, so it is no single variable: add bindings ('secretctl set {key} --binding ENV=field'), leave it out with -k, or use --format json"
                ));
            };
            vec![(names::env_name_for(key, ""), f)]
        } else {
            meta.bindings
                .iter()
                .map(|b| Ok((b.env.clone(), field(&b.field)?)))
                .collect::<Result<_, String>>()?
        };
        for (name, value) in vars {
            names::validate_env_name(&name).map_err(|e| format!("secret '{key}': {e}"))?;
            if let Some(other) = seen.insert(name.clone(), key) {
                return Err(format!(
                    "secrets '{other}' and '{key}' both map to {name}: export them separately, or use --format json"
                ));
            }
            let text = std::str::from_utf8(&value.value).map_err(|_| {
                format!(
                    "the value of '{key}' (field '{}') is not UTF-8 text, which a .env file cannot hold: use --format json",
                    value.name
                )
            })?;
            if text.contains('\0') {
                return Err(format!(
                    "the value of '{key}' (field '{}') holds a NUL byte, which no variable can: use --format json",
                    value.name
                ));
            }
            out.push(Variable { name, value });
        }
    }
    Ok(out)
}

/// The whole env text of `vars`, into `out` (allocated once, so no copy of
/// a value is left behind by a reallocation).
pub fn render(vars: &[Variable<'_>], out: &mut Vec<u8>) {
    let need: usize = vars
        .iter()
        .map(|v| v.name.len() + 2 + quoted_len(v.value.value.len()))
        .sum();
    out.reserve_exact(need);
    for v in vars {
        out.extend_from_slice(v.name.as_bytes());
        out.push(b'=');
        // Checked in `variables`.
        let text = std::str::from_utf8(&v.value.value).unwrap_or_default();
        quote(text, out);
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secretctl_proto::v1::{Binding, FieldMeta, SecretMeta};

    /// What dotenvy reads back from one `K=<quoted>` line, and that it
    /// reads exactly one variable.
    fn dotenvy_reads(value: &str) -> String {
        let mut line = b"K=".to_vec();
        quote(value, &mut line);
        line.extend_from_slice(b"\nNEXT=1\n");
        let got: Vec<(String, String)> = dotenvy::from_read_iter(line.as_slice())
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{value:?}: {e}"));
        assert_eq!(
            got.len(),
            2,
            "{value:?} -> {:?}",
            String::from_utf8_lossy(&line)
        );
        assert_eq!(got[1], ("NEXT".into(), "1".into()), "{value:?}");
        got[0].1.clone()
    }

    const AWKWARD: &[&str] = &[
        "",
        "plain",
        "it's",
        "'",
        "''",
        "'start",
        "end'",
        "say \"hi\"",
        "$HOME ${HOME} $(id) `id`",
        "back\\slash",
        "\\",
        "ends with \\",
        "\\\\",
        "ends\\'",
        "\\'\\'",
        "line1\nline2\n",
        "\n",
        "cr\r\nlf",
        "  leading and trailing  ",
        "# not a comment",
        "a=b=c",
        "tab\there",
        "ünïcødé ✓ 🙂",
        "mixed '\\\" $x \n # = '",
        "#'\\\n'#",
    ];

    #[test]
    fn dotenvy_reads_back_every_awkward_value() {
        for v in AWKWARD {
            assert_eq!(dotenvy_reads(v), *v);
        }
    }

    #[test]
    fn dotenvy_reads_back_every_char_pair() {
        // Every pair of the characters that mean something to either reader.
        let special = [
            '\'', '"', '\\', '$', '\n', '\r', ' ', '#', '=', '`', '{', 'a', '\t',
        ];
        for a in special {
            for b in special {
                for c in special {
                    let v: String = [a, b, c].iter().collect();
                    assert_eq!(dotenvy_reads(&v), v, "{v:?}");
                }
            }
        }
    }

    #[test]
    fn the_quoting_is_readable() {
        let q = |v: &str| {
            let mut out = Vec::new();
            quote(v, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(q("plain"), "'plain'");
        assert_eq!(q("it's"), r"'it'\''s'");
        assert_eq!(q("C:\\dir\\"), r"'C:\dir'\\");
        assert_eq!(q(""), "''");
        assert_eq!(q("'"), r"\'");
        for v in AWKWARD {
            assert!(q(v).len() <= quoted_len(v.len()), "{v:?}");
        }
    }

    fn secret(key: &str, fields: &[(&str, &[u8])], bindings: &[(&str, &str)]) -> ExportedSecret {
        ExportedSecret {
            meta: Some(SecretMeta {
                key: key.into(),
                fields: fields
                    .iter()
                    .map(|(n, _)| FieldMeta {
                        name: n.to_string(),
                        sensitive: true,
                        ..Default::default()
                    })
                    .collect(),
                bindings: bindings
                    .iter()
                    .map(|(e, f)| Binding {
                        env: e.to_string(),
                        field: f.to_string(),
                    })
                    .collect(),
                ..Default::default()
            }),
            fields: fields
                .iter()
                .map(|(n, v)| NamedValue {
                    name: n.to_string(),
                    value: v.to_vec(),
                })
                .collect(),
            notes: None,
            url: None,
            continued: false,
        }
    }

    #[test]
    fn names_follow_run() {
        let s = [
            secret("aws/access_key", &[("value", b"A")], &[]),
            secret("gh-token", &[("token", b"T")], &[]),
            secret("db", &[("user", b"u"), ("pw", b"p")], &[("DB_PW", "pw")]),
        ];
        let vars = variables(&s).unwrap();
        let names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["AWS_ACCESS_KEY", "GH_TOKEN", "DB_PW"]);
        let mut out = Vec::new();
        render(&vars, &mut out);
        assert_eq!(out, b"AWS_ACCESS_KEY='A'\nGH_TOKEN='T'\nDB_PW='p'\n");
    }

    #[test]
    fn refusals_name_the_secret_never_the_value() {
        let cases = [
            (
                vec![
                    secret("a-b", &[("value", b"1")], &[]),
                    secret("a.b", &[("value", b"2")], &[]),
                ],
                "secrets 'a-b' and 'a.b' both map to A_B",
            ),
            (
                vec![secret("login", &[("user", b"u"), ("password", b"p")], &[])],
                "secret 'login' has several fields and no bindings",
            ),
            (
                vec![secret("bin", &[("value", b"\xff\xfe")], &[])],
                "the value of 'bin' (field 'value') is not UTF-8",
            ),
            (
                vec![secret("path", &[("value", b"/x")], &[])],
                "secret 'path': 'PATH' is on the deny list",
            ),
            (
                vec![secret("1st", &[("value", b"x")], &[])],
                "secret '1st': '1ST' is not a valid environment name",
            ),
        ];
        for (secrets, want) in cases {
            let e = variables(&secrets).err().unwrap();
            assert!(e.starts_with(want), "{e}");
        }
    }
}
