//! Which format a file is in, when `--format` is not given: from its
//! content first (JSON documents and CSV headers say what they are), then
//! its name; anything else is read as a `.env` file.
//!
//! | evidence | format |
//! |---|---|
//! | JSON with `version` and `secrets` | json (secretctl's export) |
//! | JSON with `items` (or Bitwarden's encryption markers) | bitwarden-json |
//! | any other JSON object | json (flat `{"NAME": "value"}`) |
//! | CSV header with url, username, password, extra, name, grouping | lastpass-csv |
//! | CSV header with title and password | 1password-csv |
//! | anything else | env |

use std::path::Path;

use crate::cli::ImportFormat;

use super::{bitwarden, json, lastpass, onepassword, table};

/// The format's name as `--format` spells it.
pub fn name(f: ImportFormat) -> &'static str {
    match f {
        ImportFormat::Env => "env",
        ImportFormat::Json => "json",
        ImportFormat::OnePasswordCsv => "1password-csv",
        ImportFormat::BitwardenJson => "bitwarden-json",
        ImportFormat::LastpassCsv => "lastpass-csv",
    }
}

/// True when `text` starts (after a BOM and blanks) like a JSON document.
fn looks_json(text: &[u8]) -> bool {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    text.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[')
}

/// The format of `text` (named `path`) and why it was chosen.
pub fn detect(path: &Path, text: &[u8]) -> Result<(ImportFormat, &'static str), String> {
    if looks_json(text) {
        let body = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
        let mut doc: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| format!("it looks like JSON but is not: {}", json::where_(&e)))?;
        let found = if json::is_ours(&doc) {
            Ok((ImportFormat::Json, "the content is a secretctl JSON export"))
        } else if bitwarden::looks_like(&doc) {
            Ok((
                ImportFormat::BitwardenJson,
                "the content is a Bitwarden JSON export",
            ))
        } else if doc.is_object() {
            Ok((ImportFormat::Json, "the content is a flat JSON object"))
        } else {
            Err("a JSON document of no known shape: give --format".to_string())
        };
        bitwarden::wipe(&mut doc);
        return found;
    }
    if let Some(header) = table::header_of(text) {
        if lastpass::looks_like(&header) {
            return Ok((
                ImportFormat::LastpassCsv,
                "the CSV header is a LastPass export's",
            ));
        }
        if onepassword::looks_like(&header) {
            return Ok((
                ImportFormat::OnePasswordCsv,
                "the CSV header is a 1Password export's",
            ));
        }
    }
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if file == ".env" || file.ends_with(".env") || file.starts_with(".env.") {
        return Ok((ImportFormat::Env, "the file name is a .env file's"));
    }
    if file.ends_with(".csv") || file.ends_with(".json") {
        return Err(format!(
            "'{}' is not a CSV or JSON export secretctl recognises: give --format",
            secretctl_proto::text::shown(&file)
        ));
    }
    Ok((
        ImportFormat::Env,
        "neither JSON nor a known CSV header: read as a .env file",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(name: &str, text: &str) -> Result<&'static str, String> {
        detect(Path::new(name), text.as_bytes()).map(|(f, _)| super::name(f))
    }

    #[test]
    fn by_content_then_name() {
        assert_eq!(fmt("x", r#"{"version":1,"secrets":[]}"#).unwrap(), "json");
        assert_eq!(fmt("x.json", r#"{"A":"1"}"#).unwrap(), "json");
        assert_eq!(
            fmt(
                "export.json",
                r#"{"encrypted":false,"folders":[],"items":[]}"#
            )
            .unwrap(),
            "bitwarden-json"
        );
        assert_eq!(
            fmt(
                "lp.csv",
                "url,username,password,totp,extra,name,grouping,fav\n"
            )
            .unwrap(),
            "lastpass-csv"
        );
        assert_eq!(
            fmt("1p.csv", "\u{feff}Title,Url,Username,Password,OTPAuth\n").unwrap(),
            "1password-csv"
        );
        assert_eq!(fmt(".env", "A=1\n").unwrap(), "env");
        assert_eq!(fmt("prod.env", "A=1\n").unwrap(), "env");
        assert_eq!(fmt("secrets.txt", "A=1\n").unwrap(), "env");
        assert!(fmt("other.csv", "a,b\n1,2\n").is_err());
        assert!(fmt("x", "[1, 2]").is_err());
        let e = fmt("x", "{\"A\": \"secret-value").unwrap_err();
        assert!(!e.contains("secret-value"), "{e}");
    }
}
