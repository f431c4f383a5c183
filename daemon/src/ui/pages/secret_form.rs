//! Adding and editing a secret: the form (templates from
//! `secretctl_proto::templates`, the same as `set --template`), saving it
//! through the vault service's `Set`, and generating a password
//! (`secretctl_proto::generate`, the same as `secretctl generate`).
//!
//! An add is one `Set` with `create_only` (refused if the key exists, in
//! the same transaction: no look-up first). An edit is one `Set` that can
//! also remove fields (`remove_fields`) and replace the bindings
//! (`bindings`), the same request fields `secretctl set` uses.
//! Submitted values are read from a wiped buffer ([`Fields`]) straight into
//! the request's self-wiping `FieldInput`s.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use secretctl_proto::generate::{Classes, Recipe, Rng};
use secretctl_proto::templates::{self, TemplateField};
use secretctl_proto::v1::vault_server::Vault as VaultRpc;
use secretctl_proto::v1::{
    Binding, BindingList, FieldInput, FieldNames, MetadataRequest, MetadataResponse, SetRequest,
    TagList,
};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{encode, json, state_word};
use crate::service::vault::VaultService;
use crate::ui::call::{self, Signed};
use crate::ui::form::Fields;
use crate::ui::{UiState, layout};

#[derive(Deserialize, Default)]
pub struct NewQuery {
    #[serde(default)]
    template: String,
}

/// `GET /secrets/new?template=T`.
pub async fn new(State(st): State<Arc<UiState>>, s: Signed, Query(q): Query<NewQuery>) -> Response {
    let tpl = templates::fields(&q.template);
    let fields: Vec<Row> = match tpl {
        Some(t) => t.iter().map(Row::from_template).collect(),
        None => vec![Row {
            name: "value".into(),
            sensitive: true,
            multiline: false,
            hint: "the secret's value".into(),
            current: None,
        }],
    };
    let body = html! {
        p { a href="/secrets" { "← Secrets" } }
        h1 { "Add a secret" }
        p {
            "Template: "
            @for (name, label) in [("", "none")].into_iter().chain(templates::NAMES.iter().map(|n| (*n, *n))) {
                @if name == q.template.as_str() || (name.is_empty() && tpl.is_none()) { strong { (label) } " " }
                @else { a href={"/secrets/new?template=" (name)} { (label) } " " }
            }
        }
        (form(&s, "new", if tpl.is_some() { q.template.as_str() } else { "" }, None, &fields))
    };
    layout::page(
        &s,
        "/secrets",
        "Add a secret",
        state_word(&st.session),
        body,
    )
}

#[derive(Deserialize)]
pub struct KeyQuery {
    key: String,
}

/// `GET /secrets/edit?key=K`.
pub async fn edit(
    State(st): State<Arc<UiState>>,
    s: Signed,
    Query(k): Query<KeyQuery>,
) -> Response {
    let state = state_word(&st.session);
    let svc = VaultService::new(st.session.clone());
    let meta = match call::answer(
        svc.get_metadata(call::request(&s, MetadataRequest { key: k.key }))
            .await,
    ) {
        Ok(m) => m,
        Err(e) => return error(&s, state, &e),
    };
    let m = meta.meta.clone().unwrap_or_default();
    let fields: Vec<Row> = m
        .fields
        .iter()
        .map(|f| Row {
            name: f.name.clone(),
            sensitive: f.sensitive,
            multiline: f.name == "private_key",
            hint: f.hint.clone(),
            current: (!f.sensitive).then(|| {
                meta.public_fields
                    .iter()
                    .find(|p| p.name == f.name)
                    .map(|p| String::from_utf8_lossy(&p.value).into_owned())
                    .unwrap_or_default()
            }),
        })
        .collect();
    let body = html! {
        p { a href={"/secrets/view?key=" (encode(&m.key))} { "← " (m.key) } }
        h1 { "Edit " span.mono { (m.key) } }
        p.muted { "Empty value fields keep their current value. Sensitive values are never shown here. A field ticked 'remove' is deleted with its value when you save." }
        (form(&s, "edit", "", Some(&meta), &fields))
    };
    layout::page(&s, "/secrets", "Edit", state, body)
}

/// One field row of the form.
struct Row {
    name: String,
    sensitive: bool,
    multiline: bool,
    hint: String,
    /// The current value of a non-sensitive field (edit).
    current: Option<String>,
}

impl Row {
    fn from_template(f: &TemplateField) -> Row {
        Row {
            name: f.name.into(),
            sensitive: f.sensitive,
            multiline: f.multiline,
            hint: f.hint.into(),
            current: None,
        }
    }
}

fn form(
    s: &Signed,
    mode: &str,
    template: &str,
    meta: Option<&MetadataResponse>,
    fields: &[Row],
) -> Markup {
    let m = meta.and_then(|m| m.meta.clone()).unwrap_or_default();
    html! {
        form #secret-form method="post" action="/secrets/save" {
            (layout::csrf_field(s))
            input type="hidden" name="mode" value=(mode);
            input type="hidden" name="template" value=(template);
            div.card {
                div.field {
                    label for="key" { "Key (letters, digits, . _ / -)" }
                    @if mode == "edit" {
                        input #key type="text" name="key" value=(m.key) readonly;
                    } @else {
                        input #key type="text" name="key" required placeholder="e.g. github/token" autofocus;
                    }
                }
                @for (i, f) in fields.iter().enumerate() {
                    div.field {
                        label for={"f" (i)} { (f.name) @if !f.hint.is_empty() { " — " (f.hint) } }
                        @if f.multiline {
                            textarea #{"f" (i)} name={"f." (f.name)} placeholder=(if mode == "edit" { "unchanged" } else { "" }) {}
                        } @else if f.sensitive {
                            div.row {
                                input #{"f" (i)} type="password" name={"f." (f.name)} autocomplete="new-password" placeholder=(if mode == "edit" { "unchanged" } else { "" });
                                button type="button" data-toggle={"f" (i)} aria-label={"Show or hide " (f.name)} { "Show" }
                                button type="button" data-generate={"f" (i)} { "Generate" }
                            }
                        } @else {
                            input #{"f" (i)} type="text" name={"f." (f.name)} value=(f.current.as_deref().unwrap_or(""));
                        }
                        label { input type="checkbox" name={"s." (f.name)} value="1" checked[f.sensitive]; " sensitive (masked, never shown to agents)" }
                        @if mode == "edit" {
                            " "
                            label { input type="checkbox" name={"rm." (f.name)} value="1"; " remove this field" }
                        }
                    }
                }
                div.field.row {
                    input type="text" name="newname" placeholder="another field: name" aria-label="Name of another field";
                    input type="password" name="newvalue" placeholder="value" aria-label="Value of another field" autocomplete="new-password";
                }
            }
            div.card {
                div.field { label for="tags" { "Tags (comma-separated)" } input #tags type="text" name="tags" value=(m.tags.join(",")); }
                div.field { label for="url" { "URL" } input #url type="text" name="url" value=(meta.and_then(|m| m.url.as_deref()).unwrap_or("")); }
                div.field { label for="notes" { "Notes" } textarea #notes name="notes" { (meta.and_then(|m| m.notes.as_deref()).unwrap_or("")) } }
                div.field {
                    label for="expires" { "Expires in (e.g. 90d; 'never' clears" @if mode == "edit" { "; empty keeps it" } ")" }
                    input #expires type="text" name="expires" placeholder="90d";
                }
                @if mode == "edit" {
                    div.field {
                        label for="bindings" { "Bindings: one ENV=field a line, the variables a run injects instead of the value (empty: none)" }
                        textarea #bindings.mono name="bindings" rows="3" placeholder="PGPASSWORD=password" {
                            @for b in &m.bindings { (b.env) "=" (b.field) "\n" }
                        }
                    }
                }
            }
            button.primary #save type="submit" { "Save" }
        }
        form #generate-form method="post" action="/generate" {
            (layout::csrf_field(s))
            label for="gen-length" { "Generated password length" }
            input #gen-length type="number" name="length" value="24" min="4" max="128";
        }
    }
}

fn error(s: &Signed, state: &str, e: &str) -> Response {
    layout::page(
        s,
        "/secrets",
        "Secrets",
        state,
        html! {
            h1 { "Secrets" }
            (layout::flash(Some(e), true))
            p { "Go back to keep what you typed, or " a href="/secrets" { "return to the list" } "." }
        },
    )
}

/// `POST /secrets/save`.
pub async fn save(State(st): State<Arc<UiState>>, s: Signed, form: Fields) -> Response {
    let state = state_word(&st.session);
    let key = form.text("key").trim().to_string();
    let new = form.text("mode") == "new";
    let req = match build(&form, &key, new, form.text("template")) {
        Ok(r) => r,
        Err(e) => return error(&s, state, &e),
    };
    drop(form);
    let svc = VaultService::new(st.session.clone());
    match call::answer(svc.set(call::request(&s, req)).await) {
        Ok(_) => super::done(
            &format!("/secrets/view?key={}", encode(&key)),
            &format!("saved '{key}'"),
        ),
        Err(e) => error(&s, state, &e),
    }
}

/// The `Set` request of a submitted form.
fn build(form: &Fields, key: &str, new: bool, template: &str) -> Result<SetRequest, String> {
    let get = |k: &str| form.get(k);
    let tpl = templates::fields(template);
    let removed = |name: &str| !new && get(&format!("rm.{name}")).is_some();
    let mut fields = Vec::new();
    let mut push = |name: &str, value: &str| {
        let t = tpl.and_then(|t| t.iter().find(|f| f.name == name));
        fields.push(FieldInput {
            name: name.to_string(),
            value: value.as_bytes().to_vec(),
            sensitive: Some(get(&format!("s.{name}")).is_some()),
            kind: t.map(|t| t.name.to_string()).unwrap_or_default(),
            hint: t.map(|t| t.hint.to_string()).unwrap_or_default(),
            proxy_hosts: None,
        });
    };
    for (name, value) in form.iter() {
        if let Some(field) = name.strip_prefix("f.")
            && !value.is_empty()
            && !removed(field)
        {
            push(field, value);
        }
    }
    let extra = get("newname").unwrap_or("").trim();
    if !extra.is_empty() {
        push(extra, get("newvalue").unwrap_or(""));
    }
    if new && fields.is_empty() {
        return Err("give at least one value".into());
    }
    let remove: Vec<String> = form
        .iter()
        .filter_map(|(name, _)| name.strip_prefix("rm."))
        .filter(|_| !new)
        .map(String::from)
        .collect();
    let tags: Vec<String> = get("tags")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    let expires_at = match get("expires").unwrap_or("").trim() {
        "" => None,
        "never" => Some(0),
        d => {
            let d = secretctl_proto::duration::parse(d).map_err(|e| format!("expires: {e}"))?;
            Some(crate::vault::now_secs().saturating_add(d.as_secs() as i64))
        }
    };
    // The bindings box (edits) replaces the bindings, as `set --binding`.
    let bindings = match get("bindings").filter(|_| !new) {
        Some(text) => Some(BindingList {
            bindings: bindings(text)?,
        }),
        None => None,
    };
    // A template's default bindings, for the fields the form filled in.
    let default_bindings = new.then(|| BindingList {
        bindings: templates::default_bindings(template)
            .iter()
            .filter(|(_, field)| fields.iter().any(|f| f.name == *field))
            .map(|(env, field)| Binding {
                env: (*env).into(),
                field: (*field).into(),
            })
            .collect(),
    });
    Ok(SetRequest {
        key: key.to_string(),
        fields,
        sensitive_exact: None,
        notes: get("notes").map(String::from),
        url: get("url").map(|u| u.trim().to_string()),
        tags: Some(TagList { tags }),
        expires_at,
        bindings,
        default_bindings: default_bindings.filter(|b| !b.bindings.is_empty()),
        proxy_hosts: None,
        remove_fields: (!remove.is_empty()).then_some(FieldNames { names: remove }),
        create_only: new,
    })
}

/// `ENV=field` lines (or comma-separated) as bindings; the daemon checks
/// the names and that the fields exist.
fn bindings(text: &str) -> Result<Vec<Binding>, String> {
    text.split(['\n', ','])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once('=') {
            Some((env, field)) if !env.trim().is_empty() && !field.trim().is_empty() => {
                Ok(Binding {
                    env: env.trim().to_string(),
                    field: field.trim().to_string(),
                })
            }
            _ => Err(format!(
                "bindings: '{l}' is not ENV=field (one binding a line)"
            )),
        })
        .collect()
}

/// `POST /generate`: a password from the OS random source, for a form
/// field the user is filling (not stored, not logged).
pub async fn generate(_s: Signed, form: Fields) -> Response {
    let length = match form.text("length").trim() {
        "" => 24,
        n => match n.parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                return json(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({ "error": "length: give a number" }),
                );
            }
        },
    };
    let made = Recipe::new(&Classes {
        length: length.min(128),
        ..Classes::default()
    })
    .and_then(|r| r.password(&mut Rng::new()));
    match made {
        Ok(p) => {
            let body = Zeroizing::new(serde_json::json!({ "value": p.as_str() }).to_string());
            super::json_text(StatusCode::OK, &body)
        }
        Err(e) => json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({ "error": e.to_string() }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(p: &[(&str, &str)]) -> Fields {
        let body: Vec<String> = p
            .iter()
            .map(|(a, b)| format!("{}={}", super::super::encode(a), super::super::encode(b)))
            .collect();
        Fields::parse(body.join("&").as_bytes()).unwrap()
    }

    #[test]
    fn a_template_form_becomes_the_same_request_as_set_template() {
        let p = form(&[
            ("key", "web/login"),
            ("f.username", "alice"),
            ("f.password", "pw-123456789"),
            ("s.password", "1"),
            ("tags", "web, prod,"),
            ("expires", ""),
        ]);
        let r = build(&p, "web/login", true, "login").unwrap();
        assert_eq!(r.fields.len(), 2);
        assert_eq!(r.fields[0].sensitive, Some(false));
        assert_eq!(r.fields[1].sensitive, Some(true));
        assert_eq!(r.fields[1].hint, "account password");
        assert_eq!(r.tags.clone().unwrap().tags, ["web", "prod"]);
        assert_eq!(r.expires_at, None);
        assert!(r.create_only, "an add never updates");
        assert_eq!(r.default_bindings.clone().unwrap().bindings.len(), 2);
        let p = form(&[("f.api_key", "k-123456789")]);
        let r = build(&p, "svc/api", true, "api").unwrap();
        let bound: Vec<String> = r
            .default_bindings
            .clone()
            .unwrap()
            .bindings
            .into_iter()
            .map(|b| b.field)
            .collect();
        assert_eq!(bound, ["api_key"], "only fields that exist are bound");
    }

    #[test]
    fn edits_keep_what_is_left_empty() {
        let p = form(&[("f.password", ""), ("expires", "never")]);
        let r = build(&p, "k", false, "").unwrap();
        assert!(r.fields.is_empty());
        assert_eq!(r.expires_at, Some(0));
        assert!(r.default_bindings.is_none());
        assert!(r.bindings.is_none() && r.remove_fields.is_none() && !r.create_only);
        assert!(
            build(&form(&[]), "k", true, "").is_err(),
            "a new secret needs a value"
        );
        assert!(
            build(
                &form(&[("f.value", "x"), ("expires", "soon")]),
                "k",
                true,
                ""
            )
            .is_err()
        );
    }

    #[test]
    fn edits_remove_fields_and_replace_bindings() {
        let p = form(&[
            ("f.user", "bob"),
            ("f.old", "ignored-because-removed"),
            ("rm.old", "1"),
            ("bindings", "DB_USER=user\r\n DB_PASS = password ,\n"),
        ]);
        let r = build(&p, "db", false, "").unwrap();
        let names: Vec<&str> = r.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["user"], "a removed field is not also set");
        assert_eq!(r.remove_fields.clone().unwrap().names, ["old"]);
        let b: Vec<(String, String)> = r
            .bindings
            .clone()
            .unwrap()
            .bindings
            .into_iter()
            .map(|b| (b.env, b.field))
            .collect();
        assert_eq!(
            b,
            [
                ("DB_USER".to_string(), "user".to_string()),
                ("DB_PASS".to_string(), "password".to_string())
            ]
        );
        // An empty box clears them; a line without '=' is refused.
        let r = build(&form(&[("bindings", "")]), "db", false, "").unwrap();
        assert!(r.bindings.unwrap().bindings.is_empty());
        assert!(build(&form(&[("bindings", "JUST_A_NAME")]), "db", false, "").is_err());
        // An add has no remove boxes or bindings box to honour.
        let r = build(&form(&[("f.value", "v"), ("rm.value", "1")]), "k", true, "").unwrap();
        assert!(r.remove_fields.is_none() && r.bindings.is_none());
    }
}
