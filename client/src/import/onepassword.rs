//! 1Password CSV exports. 1Password 8 writes
//! `Title,Url,Username,Password,OTPAuth,Favorite,Archived,Tags,Notes`;
//! 1Password 7 let the user pick columns (`title`, `website`, `username`,
//! `password`, `notes`, `type`, …). Columns are found by name, in any
//! order and case:
//!
//! | column | becomes |
//! |---|---|
//! | title / name | the key (slug), and the origin's name |
//! | url / website / urls / login url | the secret's URL (http/https), else a field `url` |
//! | username / user name / login | field `username` (not sensitive) |
//! | password | field `password` (sensitive) |
//! | otpauth / one-time password / totp / otp | field `totp` (sensitive) |
//! | notes / note / notesplain | the secret's notes |
//! | tags | tags (comma separated, slugged) |
//! | vault / folder | the key's folder |
//! | favorite, archived, type, category, created/modified dates | ignored |
//! | any other | a sensitive field named after the column |

use super::items::{self, Item, ItemField};
use super::plan::{Names, Plan};
use super::table::{self, Table};

const TITLE: &[&str] = &["title", "name"];
const URL: &[&str] = &["url", "website", "urls", "login url", "login_uri"];
const USER: &[&str] = &["username", "user name", "login", "login_username"];
const PASSWORD: &[&str] = &["password", "login_password"];
const TOTP: &[&str] = &["otpauth", "one-time password", "totp", "otp"];
const NOTES: &[&str] = &["notes", "note", "notesplain"];
const TAGS: &[&str] = &["tags"];
const FOLDER: &[&str] = &["vault", "folder"];
const IGNORED: &[&str] = &[
    "favorite",
    "archived",
    "type",
    "category",
    "created date",
    "modified date",
    "createdat",
    "updatedat",
];

/// True when a CSV header looks like a 1Password export.
pub fn looks_like(header: &[String]) -> bool {
    let has = |names: &[&str]| header.iter().any(|h| names.contains(&h.as_str()));
    header.iter().any(|h| h == "title") && has(PASSWORD)
}

pub fn plan(text: &[u8], prefix: &str, tags: &[String]) -> Result<Plan, String> {
    let t = table::read(text)?;
    let col = |names: &[&str]| t.column(names);
    let (title, url, user, password, totp, notes, tag_col, folder) = (
        col(TITLE),
        col(URL),
        col(USER),
        col(PASSWORD),
        col(TOTP),
        col(NOTES),
        col(TAGS),
        col(FOLDER),
    );
    if title.is_none() || password.is_none() {
        return Err(
            "not a 1Password CSV export: it needs a header row with Title and Password columns"
                .into(),
        );
    }
    let known: Vec<Option<usize>> = vec![title, url, user, password, totp, notes, tag_col, folder];
    let extra: Vec<usize> = (0..t.header.len())
        .filter(|i| !known.contains(&Some(*i)) && !IGNORED.contains(&t.header[*i].as_str()))
        .collect();
    let mut plan = Plan::new();
    let mut names = Names::default();
    let Table { header, rows } = t;
    for (n, mut row) in rows.into_iter().enumerate() {
        let name = Table::take(&mut row, title);
        let mut item = Item {
            origin: format!(
                "line {} '{}'",
                row.line,
                secretctl_proto::text::shown(&name)
            ),
            number: n + 1,
            title: name,
            folder: Table::take(&mut row, folder),
            ..Default::default()
        };
        item.push_login(
            Table::take(&mut row, user),
            Table::take(&mut row, password),
            Table::take(&mut row, totp),
        );
        for &c in &extra {
            item.fields.push(ItemField::new(
                &header[c],
                Table::take(&mut row, Some(c)),
                true,
                "",
            ));
        }
        *item.notes = Table::take(&mut row, notes);
        let urls = Table::take(&mut row, url);
        // 1Password 7 may list several, one per line.
        item.urls = urls.lines().map(|u| u.trim().to_string()).collect();
        item.tags = Table::take(&mut row, tag_col)
            .split([',', ';'])
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        items::add_item(&mut plan, &mut names, item, prefix, tags)?;
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::plan::What;

    #[test]
    fn one_password_8_rows() {
        let csv = "Title,Url,Username,Password,OTPAuth,Favorite,Archived,Tags,Notes,PIN\n\
            GitHub,https://github.com,octocat,gh-pass-1,otpauth://totp/x?secret=ABC,false,false,\"dev,work\",\"multi\nline\",\n\
            GitHub,,second,gh-pass-2,,false,false,,,1234\n\
            Empty,,,,,false,false,,,\n";
        let p = plan(csv.as_bytes(), "op/", &[]).unwrap();
        let got: Vec<(&str, &str, bool)> = p
            .entries
            .iter()
            .map(|e| {
                (
                    e.origin.as_str(),
                    e.key.as_str(),
                    matches!(e.what, What::Send(_)),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("line 2 'GitHub'", "op/github", true),
                ("line 4 'GitHub'", "op/github-2", true),
                ("line 5 'Empty'", "op/empty", false),
            ]
        );
        let What::Send(r) = &p.entries[0].what else {
            panic!()
        };
        let names: Vec<(&str, Option<bool>)> = r
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.sensitive))
            .collect();
        assert_eq!(
            names,
            [
                ("username", Some(false)),
                ("password", Some(true)),
                ("totp", Some(true))
            ]
        );
        assert_eq!(r.url.as_deref(), Some("https://github.com"));
        assert_eq!(r.notes.as_deref(), Some("multi\nline"));
        assert_eq!(r.tags.as_ref().unwrap().tags, ["dev", "work"]);
        let What::Send(r2) = &p.entries[1].what else {
            panic!()
        };
        assert_eq!(r2.fields.last().unwrap().name, "pin");
        assert_eq!(r2.fields.last().unwrap().sensitive, Some(true));
        assert!(looks_like(&["title".into(), "password".into()]));
        assert!(plan(b"url,username\nx,y\n", "", &[]).is_err());
    }
}
