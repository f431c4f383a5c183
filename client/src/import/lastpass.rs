//! LastPass CSV exports: `url,username,password,totp,extra,name,grouping,fav`
//! (older exports lack `totp`). Columns are found by name:
//!
//! | column | becomes |
//! |---|---|
//! | name | the key (slug), and the origin's name |
//! | grouping | the key's folder (`\` or `/` nest) |
//! | url | the secret's URL (http/https), else a field `url`; `http://sn` (a secure note's marker) is dropped |
//! | username | field `username` (not sensitive) |
//! | password | field `password` (sensitive) |
//! | totp | field `totp` (sensitive) |
//! | extra | the secret's notes (a secure note's text: its sensitive `notes` field) |
//! | fav | ignored |

use super::items::{self, Item};
use super::plan::{Names, Plan};
use super::table::{self, Table};

/// LastPass's marker URL for secure notes.
const NOTE_URL: &str = "http://sn";

/// True when a CSV header looks like a LastPass export.
pub fn looks_like(header: &[String]) -> bool {
    ["url", "username", "password", "extra", "name", "grouping"]
        .iter()
        .all(|c| header.iter().any(|h| h == c))
}

pub fn plan(text: &[u8], prefix: &str, tags: &[String]) -> Result<Plan, String> {
    let t = table::read(text)?;
    if !looks_like(&t.header) {
        return Err(
            "not a LastPass CSV export: it needs the header url,username,password,totp,extra,name,grouping,fav"
                .into(),
        );
    }
    let col = |name: &str| t.column(&[name]);
    let (url, user, password, totp, extra, name, grouping) = (
        col("url"),
        col("username"),
        col("password"),
        col("totp"),
        col("extra"),
        col("name"),
        col("grouping"),
    );
    let mut plan = Plan::new();
    let mut names = Names::default();
    for (n, mut row) in t.rows.into_iter().enumerate() {
        let title = Table::take(&mut row, name);
        let mut item = Item {
            origin: format!(
                "line {} '{}'",
                row.line,
                secretctl_proto::text::shown(&title)
            ),
            number: n + 1,
            title,
            folder: Table::take(&mut row, grouping),
            ..Default::default()
        };
        item.push_login(
            Table::take(&mut row, user),
            Table::take(&mut row, password),
            Table::take(&mut row, totp),
        );
        let u = Table::take(&mut row, url);
        if !u.eq_ignore_ascii_case(NOTE_URL) {
            item.urls.push(u);
        }
        *item.notes = Table::take(&mut row, extra);
        items::add_item(&mut plan, &mut names, item, prefix, tags)?;
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::plan::What;

    #[test]
    fn logins_and_secure_notes() {
        let csv = "url,username,password,totp,extra,name,grouping,fav\n\
            https://mail.example.com,me@example.com,mail-pass,,remember me,Mail,Personal\\Email,0\n\
            http://sn,,,,\"NoteType:Server\nPassword:root-pass\",Server Root,Work,1\n\
            ftp://files.example.com,ftpuser,ftp-pass,,,Files,,0\n";
        let p = plan(csv.as_bytes(), "", &[]).unwrap();
        let keys: Vec<&str> = p.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["personal/email/mail", "work/server-root", "files"]);
        let reqs: Vec<_> = p
            .entries
            .iter()
            .map(|e| match &e.what {
                What::Send(r) => r,
                What::Skip(_) => panic!(),
            })
            .collect();
        assert_eq!(reqs[0].url.as_deref(), Some("https://mail.example.com"));
        assert_eq!(reqs[0].notes.as_deref(), Some("remember me"));
        // A secure note: its text is the secret, in a sensitive field.
        assert_eq!(reqs[1].fields.len(), 1);
        assert_eq!(reqs[1].fields[0].name, "notes");
        assert_eq!(reqs[1].fields[0].sensitive, Some(true));
        assert!(reqs[1].url.is_none() && reqs[1].notes.is_none());
        // A non-HTTP URL is kept as a plain field.
        assert!(reqs[2].url.is_none());
        let url = reqs[2].fields.iter().find(|f| f.name == "url").unwrap();
        assert_eq!(url.value, b"ftp://files.example.com");
        assert_eq!(url.sensitive, Some(false));
        assert_eq!(p.entries[1].origin, "line 3 'Server Root'");
    }
}
