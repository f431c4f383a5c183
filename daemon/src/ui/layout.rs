//! The frame of every page: head (stylesheet, script, CSRF meta tag),
//! navigation, the vault state, and a flash message.

use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::auth::UiSession;

/// The pages, in navigation order: (path, label).
pub const NAV: [(&str, &str); 6] = [
    ("/", "Session"),
    ("/secrets", "Secrets"),
    ("/audit", "Audit"),
    ("/agents", "Agents"),
    ("/policy", "Policy"),
    ("/security", "Security"),
];

fn head(title: &str, csrf: Option<&str>, script: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="referrer" content="same-origin";
            @if let Some(c) = csrf { meta name="csrf-token" content=(c); }
            title { (title) " · secretctl" }
            link rel="stylesheet" href="/assets/app.css";
            link rel="icon" href="data:,";
            script src=(script) defer {}
        }
    }
}

/// A whole page for a signed-in session; `active` is its NAV path.
pub fn page(s: &UiSession, active: &str, title: &str, state: &str, body: Markup) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, Some(s.csrf.as_str()), "/assets/app.js"))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "secretctl" }
                    nav aria-label="Pages" {
                        @for (path, label) in NAV {
                            @if path == active {
                                a href=(path) aria-current="page" { (label) }
                            } @else {
                                a href=(path) { (label) }
                            }
                        }
                    }
                    span.state { "vault " strong { (state) } }
                }
                main #main { (body) }
            }
        }
    };
    Html(doc.into_string()).into_response()
}

/// A page without a session (login, signed out).
pub fn bare(title: &str, body: Markup) -> Response {
    bare_with(title, "/assets/app.js", body)
}

/// A page without a session, with its own script.
pub fn bare_with(title: &str, script: &str, body: Markup) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, None, script))
            body { main #main { (body) } }
        }
    };
    Html(doc.into_string()).into_response()
}

/// A one-line message above a page's content (`?done=` after an action,
/// or an error).
pub fn flash(message: Option<&str>, error: bool) -> Markup {
    html! {
        @if let Some(m) = message {
            div.card.flash.error[error] role="status" { (m) }
        }
    }
}

/// A hidden CSRF field for a form.
pub fn csrf_field(s: &UiSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf.as_str()); }
}

/// Text in a `<code>` element.
pub fn code(text: &str) -> Markup {
    html! { code { (text) } }
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM` UTC.
pub fn date_time(secs: i64) -> String {
    let rfc = secretctl_proto::duration::rfc3339(secs);
    rfc.get(..16).unwrap_or(&rfc).replace('T', " ")
}

/// Nothing: for `@if` branches that render no markup.
pub fn nothing() -> Markup {
    PreEscaped(String::new())
}
