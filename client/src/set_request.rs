//! Building `set`'s request from its flags: which fields, their sensitivity,
//! kind and hint, how each missing value is to be asked for, and the tags,
//! expiry, bindings, notes and URL.
//!
//! Pure: [`plan`] checks everything that can be checked before a byte is
//! read, and [`SetPlan::build`] reads values through a callback, so these
//! rules are unit-tested without a terminal or a daemon.

use anyhow::Context;
use secretctl_proto::names;
use secretctl_proto::v1::{
    Binding, BindingList, FieldInput, FieldNames, HostList, SetRequest, TagList,
};
use zeroize::{Zeroize, Zeroizing};

use crate::cli::SetArgs;
use crate::error::{CliError, Result};
use crate::templates::{self, Slot};

/// Values shorter than this make redaction match too often.
pub const SHORT_VALUE: usize = 8;

pub use secretctl_proto::rules::DEFAULT_FIELD;

/// How to ask for one value that was not on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub field: String,
    /// The prompt shown on a terminal.
    pub label: String,
    /// Whether a terminal prompt may echo (non-sensitive fields only).
    pub echo: bool,
}

/// A checked `set` command line, ready to read its values.
#[derive(Debug)]
pub struct SetPlan<'a> {
    args: &'a SetArgs,
    slots: Vec<Slot<'a>>,
    /// Only metadata was named (tags, expiry, notes, URL, bindings,
    /// sensitivity): a value is taken from stdin if one is there, never
    /// prompted for, and none is fine (the secret keeps its fields).
    metadata_only: bool,
}

/// Whether the command line names metadata without any field or template.
fn metadata_only(args: &SetArgs) -> bool {
    args.fields.is_empty()
        && args.template.is_none()
        && (args.notes.is_some()
            || args.url.is_some()
            || args.tags.is_some()
            || args.expires.is_some()
            || !args.bindings.is_empty()
            || !args.proxy_hosts.is_empty()
            || !args.sensitive.is_empty())
}

/// `--proxy-host`: none given (`None`: keep), `""` alone (clear), or the
/// hosts, checked and canonical.
fn proxy_hosts(args: &SetArgs) -> Result<Option<HostList>> {
    let hosts = match args.proxy_hosts.as_slice() {
        [] => return Ok(None),
        [one] if one.is_empty() => Vec::new(),
        many => secretctl_proto::proxy_hosts::parse_all(many).map_err(|e| {
            CliError::usage(e).hint("give --proxy-host \"\" alone to stop proxying")
        })?,
    };
    Ok(Some(HostList { hosts }))
}

/// Checks the key and the flags and decides the fields. `interactive`:
/// stdin is a terminal, so missing template fields may be prompted for.
pub fn plan(args: &SetArgs, interactive: bool) -> Result<SetPlan<'_>> {
    names::validate_key(&args.key).map_err(|e| {
        CliError::usage(format!(
            "invalid key name '{}': {e}",
            secretctl_proto::text::shown(&args.key)
        ))
    })?;
    for (i, f) in args.fields.iter().enumerate() {
        if args.fields[..i].iter().any(|g| g.name == f.name) {
            return Err(CliError::usage(format!(
                "field '{}' is given twice",
                secretctl_proto::text::shown(&f.name)
            ))
            .into());
        }
    }
    proxy_hosts(args)?;
    let bare: Vec<&str> = args
        .fields
        .iter()
        .filter(|f| f.value.is_none())
        .map(|f| f.name.as_str())
        .collect();
    if bare.len() > 1 {
        return Err(CliError::usage(format!(
            "only one --field may read its value from stdin, not {}",
            bare.join(", ")
        ))
        .hint("give the others as --field NAME=VALUE")
        .into());
    }
    let template = match &args.template {
        Some(t) => Some(templates::fields(t).ok_or_else(|| {
            CliError::usage(format!(
                "unknown template '{t}': use one of {}",
                templates::NAMES.join(", ")
            ))
        })?),
        None => None,
    };
    let mut slots = templates::expand(template, &args.fields);
    let metadata_only = metadata_only(args);
    // A plain `set KEY` stores `value`; a metadata-only one reads a value
    // only from a non-terminal stdin (a pipe may carry one).
    if slots.is_empty() && (!metadata_only || !interactive) {
        slots.push(Slot {
            name: DEFAULT_FIELD,
            template: None,
            given: None,
        });
    }

    let missing: Vec<&str> = slots
        .iter()
        .filter(|s| s.template.is_some() && s.given.is_none())
        .map(|s| s.name)
        .collect();
    if !interactive && !missing.is_empty() {
        return Err(CliError::usage(format!(
            "template '{}' fields without a value: {}",
            args.template.as_deref().unwrap_or_default(),
            missing.join(", ")
        ))
        .hint(format!(
            "pass them as --field NAME=VALUE (e.g. --field {}=...), or one as --field NAME to read it from stdin; in a terminal you are prompted",
            missing[0]
        ))
        .into());
    }
    if interactive
        && let Some(s) = slots.iter().find(|s| {
            s.template.is_some_and(|t| t.multiline) && s.given.is_none_or(|g| g.value.is_none())
        })
    {
        return Err(CliError::usage(format!(
            "field '{}' holds several lines and cannot be typed at a prompt",
            s.name
        ))
        .hint(format!(
            "redirect it from a file: --field {} < FILE, with the other fields as --field NAME=VALUE",
            s.name
        ))
        .into());
    }
    Ok(SetPlan {
        args,
        slots,
        metadata_only,
    })
}

/// Field values being collected; wiped if building stops half way.
struct Fields(Vec<FieldInput>);

impl Drop for Fields {
    fn drop(&mut self) {
        for f in &mut self.0 {
            f.value.zeroize();
        }
    }
}

impl SetPlan<'_> {
    /// Whether field `name` ends up sensitive, as far as this command line
    /// says: `--sensitive` is exact; else template fields keep the
    /// template's flag and other fields count as sensitive (new fields are;
    /// existing ones keep a flag this client cannot see).
    pub fn is_sensitive(&self, name: &str) -> bool {
        if !self.args.sensitive.is_empty() {
            return self.args.sensitive.iter().any(|s| s == name);
        }
        self.slots
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.template)
            .is_none_or(|t| t.sensitive)
    }

    /// Whether a run would redact this field's value: sensitive ones only
    /// (a host name or a user name is not hidden).
    fn is_redacted(&self, name: &str) -> bool {
        self.is_sensitive(name)
    }

    /// The values this command line does not give, in the order they are
    /// asked for.
    pub fn asks(&self) -> Vec<Ask> {
        let key = &self.args.key;
        self.slots
            .iter()
            .filter(|s| s.given.is_none_or(|g| g.value.is_none()))
            .map(|s| Ask {
                field: s.name.to_string(),
                label: match (s.template, s.given) {
                    (Some(t), _) => format!("{key} {} ({}): ", s.name, t.hint),
                    (None, None) => format!("Value for {key}: "),
                    (None, Some(_)) => format!("{key} field {}: ", s.name),
                },
                echo: !self.is_sensitive(s.name),
            })
            .collect()
    }

    /// The request, reading each missing value with `read`.
    pub fn build(
        &self,
        now: i64,
        mut read: impl FnMut(&Ask) -> Result<Zeroizing<Vec<u8>>>,
    ) -> Result<SetRequest> {
        let a = self.args;
        let asks = self.asks();
        // With --field, the hosts are the named fields'; else the secret's.
        let hosts = proxy_hosts(a)?;
        let (field_hosts, secret_hosts) = match a.fields.is_empty() {
            true => (None, hosts),
            false => (hosts, None),
        };
        let mut fields = Fields(Vec::with_capacity(self.slots.len()));
        for s in &self.slots {
            let value = match s.given.and_then(|g| g.value.as_ref()) {
                Some(v) => v.as_bytes().to_vec(),
                None => {
                    let ask = asks
                        .iter()
                        .find(|x| x.field == s.name)
                        .context("internal: no prompt for a missing value")?;
                    let mut v = read(ask)?;
                    // Moved out, not copied: the emptied buffer is wiped anyway.
                    std::mem::take(&mut *v)
                }
            };
            let empty = value.is_empty();
            if empty && self.metadata_only {
                // `set KEY --tags x </dev/null`: nothing to store but metadata.
                continue;
            }
            fields.0.push(FieldInput {
                name: s.name.to_string(),
                value,
                sensitive: s.template.map(|t| t.sensitive),
                kind: s.template.map(|t| t.name.to_string()).unwrap_or_default(),
                hint: s.template.map(|t| t.hint.to_string()).unwrap_or_default(),
                proxy_hosts: field_hosts
                    .clone()
                    .filter(|_| a.fields.iter().any(|f| f.name == s.name)),
            });
            if empty {
                return Err(
                    CliError::usage(format!("the value of field '{}' is empty", s.name)).into(),
                );
            }
        }
        Ok(SetRequest {
            key: a.key.clone(),
            fields: std::mem::take(&mut fields.0),
            sensitive_exact: (!a.sensitive.is_empty()).then(|| FieldNames {
                names: a.sensitive.clone(),
            }),
            notes: a.notes.clone(),
            url: a.url.clone(),
            tags: a.tags.as_ref().map(|t| TagList { tags: t.0.clone() }),
            expires_at: a.expires.map(|e| e.to_unix(now)),
            bindings: (!a.bindings.is_empty()).then(|| BindingList {
                bindings: a
                    .bindings
                    .iter()
                    .map(|b| Binding {
                        env: b.env.clone(),
                        field: b.field.clone(),
                    })
                    .collect(),
            }),
            default_bindings: self.default_bindings(),
            proxy_hosts: secret_hosts,
            remove_fields: None,
            create_only: false,
        })
    }

    /// A template's default bindings (the daemon uses them only for a
    /// secret without bindings).
    fn default_bindings(&self) -> Option<BindingList> {
        let defaults = templates::default_bindings(self.args.template.as_deref()?);
        Some(BindingList {
            bindings: defaults
                .iter()
                .map(|(env, field)| Binding {
                    env: env.to_string(),
                    field: field.to_string(),
                })
                .collect(),
        })
    }

    /// Fields whose value a run would redact but which are shorter than
    /// [`SHORT_VALUE`]: (name, length). Lengths only, never values.
    pub fn short_values(&self, req: &SetRequest) -> Vec<(String, usize)> {
        req.fields
            .iter()
            .filter(|f| f.value.len() < SHORT_VALUE && self.is_redacted(&f.name))
            .map(|f| (f.name.clone(), f.value.len()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn args(argv: &[&str]) -> SetArgs {
        let full: Vec<&str> = ["secretctl", "set"].iter().chain(argv).copied().collect();
        match Cli::try_parse_from(full).unwrap().command {
            Command::Set(a) => a,
            other => panic!("{other:?}"),
        }
    }

    /// A reader that answers every ask with `v` and records what was asked.
    fn answer<'a>(
        v: &'static str,
        asked: &'a mut Vec<Ask>,
    ) -> impl FnMut(&Ask) -> Result<Zeroizing<Vec<u8>>> + 'a {
        move |ask| {
            asked.push(ask.clone());
            Ok(Zeroizing::new(v.as_bytes().to_vec()))
        }
    }

    fn build(a: &SetArgs, interactive: bool, v: &'static str) -> Result<(SetRequest, Vec<Ask>)> {
        let mut asked = vec![];
        let req = plan(a, interactive)?.build(100, answer(v, &mut asked))?;
        Ok((req, asked))
    }

    fn code(e: anyhow::Error) -> i32 {
        crate::error::exit_code(&e)
    }

    #[test]
    fn plain_value_is_read_once() {
        let (req, asked) = build(&args(&["k"]), false, "v-123456").unwrap();
        assert_eq!(req.key, "k");
        assert_eq!(req.fields.len(), 1);
        let f = &req.fields[0];
        assert_eq!(
            (f.name.as_str(), f.value.as_slice()),
            ("value", &b"v-123456"[..])
        );
        assert_eq!(f.sensitive, None, "the daemon keeps or defaults the flag");
        assert!(f.kind.is_empty() && f.hint.is_empty());
        assert_eq!(asked.len(), 1);
        assert!(!asked[0].echo);
        assert!(req.tags.is_none() && req.expires_at.is_none() && req.bindings.is_none());
        assert!(req.notes.is_none() && req.url.is_none() && req.sensitive_exact.is_none());
    }

    #[test]
    fn template_fields_get_kind_hint_and_flag() {
        let a = args(&[
            "web/login",
            "--template",
            "login",
            "--field",
            "username=alice",
            "--field",
            "password",
            "--field",
            "otp_seed=abc",
        ]);
        let (req, asked) = build(&a, false, "pw-from-stdin").unwrap();
        let view: Vec<_> = req
            .fields
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.sensitive,
                    f.kind.as_str(),
                    f.value.as_slice(),
                )
            })
            .collect();
        assert_eq!(
            view,
            [
                ("username", Some(false), "username", &b"alice"[..]),
                ("password", Some(true), "password", &b"pw-from-stdin"[..]),
                ("otp_seed", None, "", &b"abc"[..]),
            ]
        );
        assert_eq!(req.fields[1].hint, "account password");
        assert_eq!(
            asked.iter().map(|a| a.field.as_str()).collect::<Vec<_>>(),
            ["password"]
        );
    }

    #[test]
    fn missing_template_fields_are_prompted_on_a_terminal_only() {
        let a = args(&["db", "--template", "database", "--field", "host=h"]);
        let e = plan(&a, false).unwrap_err();
        assert_eq!(code(e.context("x")), crate::error::USAGE);
        let msg = format!("{:#}", plan(&a, false).unwrap_err());
        assert!(msg.contains("port, username, password, database"), "{msg}");

        let (req, asked) = build(&a, true, "answer-1").unwrap();
        assert_eq!(req.fields.len(), 5);
        let echo: Vec<_> = asked.iter().map(|a| (a.field.as_str(), a.echo)).collect();
        assert_eq!(
            echo,
            [
                ("port", true),
                ("username", true),
                ("password", false),
                ("database", true)
            ]
        );
        assert!(
            asked[2].label.contains("database password"),
            "{}",
            asked[2].label
        );
    }

    #[test]
    fn multiline_fields_are_never_prompted() {
        let a = args(&[
            "srv",
            "--template",
            "ssh",
            "--field",
            "host=h",
            "--field",
            "port=22",
            "--field",
            "username=u",
        ]);
        assert!(
            plan(&a, true).is_err(),
            "a prompt would keep one line of a PEM key"
        );
        let a = args(&[
            "srv",
            "--template",
            "ssh",
            "--field",
            "host=h",
            "--field",
            "port=22",
            "--field",
            "username=u",
            "--field",
            "private_key",
        ]);
        assert!(plan(&a, true).is_err());
        let (req, _) = build(&a, false, "-----BEGIN KEY-----\nabc\n-----END KEY-----").unwrap();
        assert_eq!(req.fields[3].name, "private_key");
        assert_eq!(req.fields[3].sensitive, Some(true));
    }

    #[test]
    fn metadata_flags() {
        let a = args(&[
            "k",
            "--field",
            "user=u-123456",
            "--field",
            "pass=p-123456",
            "--tags",
            "a, b,a",
            "--expires",
            "1d",
            "--binding",
            "SVC_PASS=pass",
            "--binding",
            "SVC_USER=user",
            "--notes",
            "n",
            "--url",
            "https://x.example",
            "--sensitive",
            "pass",
        ]);
        let (req, asked) = build(&a, false, "unused").unwrap();
        assert!(asked.is_empty(), "every value was given");
        assert_eq!(req.tags.unwrap().tags, ["a", "b"]);
        assert_eq!(req.expires_at, Some(100 + 86400));
        let b: Vec<_> = req
            .bindings
            .unwrap()
            .bindings
            .into_iter()
            .map(|b| (b.env, b.field))
            .collect();
        assert_eq!(
            b,
            [
                ("SVC_PASS".into(), "pass".into()),
                ("SVC_USER".into(), "user".into())
            ]
        );
        assert_eq!(req.notes.as_deref(), Some("n"));
        assert_eq!(req.url.as_deref(), Some("https://x.example"));
        assert_eq!(req.sensitive_exact.unwrap().names, ["pass"]);
        assert!(req.fields.iter().all(|f| f.sensitive.is_none()));
    }

    #[test]
    fn clearing_flags() {
        let a = args(&[
            "k",
            "--tags",
            "",
            "--expires",
            "never",
            "--notes",
            "",
            "--url",
            "",
        ]);
        let (req, _) = build(&a, false, "v-123456").unwrap();
        assert_eq!(req.tags.unwrap().tags, Vec::<String>::new());
        assert_eq!(req.expires_at, Some(0));
        assert_eq!(req.notes.as_deref(), Some(""));
        assert_eq!(req.url.as_deref(), Some(""));
    }

    #[test]
    fn refusals_are_usage_errors() {
        let bad: [(&[&str], &str); 4] = [
            (&["bad key"], "v-123456"),
            (&["k"], ""),
            (&["k", "--field", "a=1", "--field", "a=2"], "v"),
            (&["k", "--field", "a", "--field", "b"], "v"),
        ];
        for (argv, v) in bad {
            let e = build(&args(argv), false, v).unwrap_err();
            assert_eq!(code(e), crate::error::USAGE, "{argv:?}");
        }
        let e = build(&args(&["k", "--field", "a="]), false, "v").unwrap_err();
        assert!(format!("{e:#}").contains("'a' is empty"));
    }

    #[test]
    fn metadata_only_sets_ask_for_no_value_and_templates_bring_bindings() {
        // A terminal: metadata only, nothing prompted.
        let a = args(&["k", "--tags", "x", "--expires", "30d"]);
        let p = plan(&a, true).unwrap();
        assert!(p.asks().is_empty());
        let req = p.build(0, |_| unreachable!()).unwrap();
        assert!(req.fields.is_empty() && req.tags.is_some());
        // A pipe with nothing in it: the same.
        let p = plan(&a, false).unwrap();
        let req = p.build(0, |_| Ok(Zeroizing::new(Vec::new()))).unwrap();
        assert!(req.fields.is_empty());
        // A pipe with a value: stored along with the metadata.
        let req = p.build(0, |_| Ok(Zeroizing::new(b"v-1".to_vec()))).unwrap();
        assert_eq!(req.fields.len(), 1);
        // Bindings only.
        let a = args(&["prod/db", "--binding", "DB_HOST=host"]);
        assert!(plan(&a, true).unwrap().asks().is_empty());
        // A plain set still needs its value.
        let a = args(&["k"]);
        let p = plan(&a, false).unwrap();
        assert!(p.build(0, |_| Ok(Zeroizing::new(Vec::new()))).is_err());
        // A template brings default bindings (used for a secret without any).
        let a = args(&[
            "db",
            "--template",
            "login",
            "--field",
            "username=u",
            "--field",
            "password=p",
        ]);
        let req = plan(&a, false)
            .unwrap()
            .build(0, |_| unreachable!())
            .unwrap();
        let d: Vec<(String, String)> = req
            .default_bindings
            .as_ref()
            .unwrap()
            .bindings
            .iter()
            .map(|b| (b.env.clone(), b.field.clone()))
            .collect();
        assert_eq!(
            d,
            [
                ("LOGIN_USER".to_string(), "username".to_string()),
                ("LOGIN_PASSWORD".to_string(), "password".to_string())
            ]
        );
        assert!(req.bindings.is_none());
    }

    #[test]
    fn short_values_count_what_a_run_would_redact() {
        let a = args(&[
            "k",
            "--template",
            "database",
            "--field",
            "host=db",
            "--field",
            "port=5432",
            "--field",
            "username=app",
            "--field",
            "password=pw",
            "--field",
            "database=main",
            "--binding",
            "DB_PORT=port",
        ]);
        let p = plan(&a, false).unwrap();
        let req = p.build(0, |_| unreachable!()).unwrap();
        // Only sensitive values are redacted, bound or not.
        assert_eq!(p.short_values(&req), [("password".to_string(), 2)]);
        let a = args(&["pin"]);
        let p = plan(&a, false).unwrap();
        let req = p
            .build(0, |_| Ok(Zeroizing::new(b"1234".to_vec())))
            .unwrap();
        assert_eq!(p.short_values(&req), [("value".to_string(), 4)]);
        let a = args(&["k", "--field", "u=a", "--field", "p=b", "--sensitive", "p"]);
        let p = plan(&a, false).unwrap();
        let req = p.build(0, |_| unreachable!()).unwrap();
        assert_eq!(p.short_values(&req), [("p".to_string(), 1)]);
    }

    #[test]
    fn bad_flags_are_clap_usage_errors() {
        for argv in [
            &["secretctl", "set", "k", "--binding", "NOEQUALS"][..],
            &["secretctl", "set", "k", "--expires", "30"],
            &["secretctl", "set", "k", "--template", "nope"],
            &["secretctl", "set", "k", "--field", "=v"],
        ] {
            let e = Cli::try_parse_from(argv).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{argv:?}");
        }
    }
}
