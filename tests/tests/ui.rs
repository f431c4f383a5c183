//! The web UI over HTTP against the real daemon (contract §11): logging in
//! with the one-time token, every refusal (foreign Host, missing or forged
//! CSRF token, foreign Origin, a used token, an expired session, another
//! uid), the security headers, no value on any page but the reveal answer,
//! auditing with `source: "ui"`, agents refused, and the UI stopping.

mod common;

use std::time::{Duration, Instant};

use common::ui::{self, Link};
use common::*;

fn poll_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(5);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(pause); // polling interval, not synchronisation
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn audit_text(env: &Env) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(env.home.join("audit")).unwrap() {
        all.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap_or_default());
    }
    all
}

#[test]
fn the_login_token_works_once_and_gives_a_strict_cookie() {
    let env = Env::unlocked();
    let link = ui::open(&env);
    assert!(link.url.starts_with("http://127.0.0.1:"), "{}", link.url);
    assert_eq!(link.token.len(), 64);

    // Without a session: the login page only.
    let r = ui::request(&link, "GET", "/", &[], "");
    assert_eq!(r.status, 401);
    assert!(r.body.contains("secretctl ui"), "{}", r.body);
    assert!(!r.body.contains(&link.token));
    let r = ui::request(&link, "GET", "/login", &[], "");
    assert_eq!(r.status, 200);

    // No Origin (a script elsewhere cannot set it): refused, token kept.
    let r = ui::request(
        &link,
        "POST",
        "/login",
        &[],
        &format!("token={}", link.token),
    );
    assert_eq!(r.status, 403, "{r:?}");

    let origin = link.origin();
    let r = ui::request(
        &link,
        "POST",
        "/login",
        &[("Origin", &origin)],
        &format!("token={}", link.token),
    );
    assert_eq!(r.status, 204, "{r:?}");
    let cookie = r.header("set-cookie").unwrap().to_string();
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(
        attrs[0].starts_with(&format!("{}=", link.cookie_name())),
        "{cookie}"
    );
    for a in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attrs.contains(&a), "{a} missing from {cookie}");
    }

    // The same token again: refused (and audited as a failed login).
    let r = ui::request(
        &link,
        "POST",
        "/login",
        &[("Origin", &origin)],
        &format!("token={}", link.token),
    );
    assert_eq!(r.status, 401, "{r:?}");
    let r = ui::request(
        &link,
        "POST",
        "/login",
        &[("Origin", &origin)],
        &format!("token={}", "0".repeat(64)),
    );
    assert_eq!(r.status, 401);

    // The session works; every answer carries the headers.
    let b = ui::Browser {
        cookie: attrs[0].to_string(),
        csrf: String::new(),
    };
    let page = b.get(&link, "/");
    assert_eq!(page.status, 200);
    for (name, want) in [
        (
            "content-security-policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
        ("referrer-policy", "same-origin"),
    ] {
        assert_eq!(page.header(name), Some(want), "{name}");
    }
    assert!(!page.body.contains("<script>"), "no inline script");
    assert!(!page.body.contains("style="), "no inline style");
    assert!(
        !page.body.contains("http://") || !page.body.contains("src=\"http"),
        "nothing from the network"
    );
    let css = b.get(&link, "/assets/app.css");
    assert_eq!(css.status, 200);
    assert_eq!(
        css.header("content-security-policy"),
        page.header("content-security-policy")
    );

    let audit = audit_text(&env);
    assert!(
        audit.contains(r#""action":"ui","source":"cli","caller":"user""#),
        "{audit}"
    );
    assert!(
        audit.contains(r#""action":"ui_login","source":"ui""#),
        "{audit}"
    );
    assert!(
        audit.contains("the login token is unknown, used or expired"),
        "{audit}"
    );
    env.assert_log_clean(&[&link.token]);
}

#[test]
fn a_foreign_host_is_refused() {
    let env = Env::unlocked();
    let link = ui::open(&env);
    let b = ui::login(&link);
    let other_port = format!("127.0.0.1:{}", link.port + 1);
    let rebound = format!("attacker.example:{}", link.port);
    for host in [rebound.as_str(), other_port.as_str(), "127.0.0.1", ""] {
        let r = ui::request(
            &link,
            "GET",
            "/secrets",
            &[("Host", host), ("Cookie", &b.cookie)],
            "",
        );
        assert_eq!(r.status, 421, "Host {host:?}: {r:?}");
        assert!(!r.body.contains("<table"), "{host}");
    }
    let localhost = format!("localhost:{}", link.port);
    let r = ui::request(
        &link,
        "GET",
        "/secrets",
        &[("Host", &localhost), ("Cookie", &b.cookie)],
        "",
    );
    assert_eq!(r.status, 200, "localhost:PORT is ours too");
}

#[test]
fn changes_need_our_origin_and_the_session_csrf_token() {
    let env = Env::unlocked();
    let link = ui::open(&env);
    let b = ui::login(&link);
    let origin = link.origin();
    let locked = |env: &Env| json(&env.cli(&["status", "--json"]))["state"] == "locked";
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String);
    let cases: [Case; 5] = [
        (
            "no CSRF token",
            vec![("Cookie", &b.cookie), ("Origin", &origin)],
            String::new(),
        ),
        (
            "a forged CSRF token",
            vec![("Cookie", &b.cookie), ("Origin", &origin)],
            format!("csrf={}", "a".repeat(64)),
        ),
        (
            "a foreign Origin",
            vec![("Cookie", &b.cookie), ("Origin", "http://attacker.example")],
            format!("csrf={}", b.csrf),
        ),
        (
            "no Origin",
            vec![("Cookie", &b.cookie)],
            format!("csrf={}", b.csrf),
        ),
        (
            "no session",
            vec![("Origin", &origin)],
            format!("csrf={}", b.csrf),
        ),
    ];
    for (what, headers, body) in &cases {
        let r = ui::request(&link, "POST", "/lock", headers, body);
        assert!(r.status == 403 || r.status == 401, "{what}: {r:?}");
        assert!(!locked(&env), "{what}: the vault was locked");
    }
    // A CSRF header instead of the field works (the scripts use it).
    let r = ui::request(
        &link,
        "POST",
        "/lock",
        &[
            ("Cookie", &b.cookie),
            ("Origin", &origin),
            ("X-CSRF-Token", &b.csrf),
        ],
        "",
    );
    assert_eq!(r.status, 303, "{r:?}");
    assert!(locked(&env));
    // Unlock through the UI with the master password.
    let r = b.post(&link, "/unlock", "password=wrong-password");
    assert!(r.body.contains("wrong"), "{}", r.body);
    assert!(locked(&env));
    let r = b.post(
        &link,
        "/unlock",
        &format!("password={}", PASSWORD.replace(' ', "+")),
    );
    assert_eq!(r.status, 303, "{r:?}");
    assert!(!locked(&env));
    let audit = audit_text(&env);
    assert!(
        audit.contains(r#""action":"lock","source":"ui""#),
        "{audit}"
    );
    assert!(
        audit.contains(r#""action":"unlock","source":"ui""#),
        "{audit}"
    );
}

#[test]
fn a_session_expires_when_idle() {
    let mut env = Env::new();
    env.write_config("ui:\n  session_timeout: 2s\n");
    env.start();
    env.init();
    let link = ui::open(&env);
    let b = ui::login(&link);
    assert_eq!(b.get(&link, "/").status, 200);
    // Every other request resets the session's idle clock; /session/left
    // only reads it, so the test watches the session run out.
    let mut seen: Vec<u64> = Vec::new();
    poll_until("the session expires", Duration::from_secs(30), || {
        let r = b.get(&link, "/session/left");
        if r.status == 401 {
            return true;
        }
        assert_eq!(r.status, 200, "{r:?}");
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let left = v["idle_left_ms"].as_u64().expect("idle_left_ms");
        assert!(left <= 2000, "{left}");
        if let Some(last) = seen.last() {
            assert!(
                left <= *last,
                "asking reset the clock: {left} ms after {last} ms"
            );
        }
        seen.push(left);
        false
    });
    assert!(
        !seen.is_empty(),
        "the session was alive after the first page"
    );
    assert_eq!(b.get(&link, "/").status, 401);
    let r = b.post(&link, "/lock", "");
    assert_eq!(r.status, 401);
    assert_eq!(b.get(&link, "/session/left").status, 401);
}

#[test]
fn the_ui_stops_when_idle_and_with_the_daemon() {
    let mut env = Env::new();
    env.write_config("ui:\n  idle_timeout: 1s\n");
    env.start();
    env.init();
    let link = ui::open(&env);
    poll_until("the UI stops when idle", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", link.port)).is_err()
    });
    assert!(audit_text(&env).contains(r#""action":"ui_stop""#));
    // Opened again, then the daemon stops: so does the UI.
    let mut env2 = Env::unlocked();
    let link2 = ui::open(&env2);
    let b = ui::login(&link2);
    assert_eq!(b.get(&link2, "/").status, 200);
    env2.stop();
    assert!(std::net::TcpStream::connect(("127.0.0.1", link2.port)).is_err());
    drop(env);
}

const PLAIN: &str = "plain-secret-value-5b8c1e9d";
const DB_PW: &str = "db-password-value-7f3a2c4e";
const API_KEY: &str = "api-key-value-0d9e8f7a6b";

#[test]
fn no_value_is_on_any_page_but_the_one_revealed() {
    let env = Env::unlocked();
    env.set("app/token", PLAIN);
    let out = env.cli(&[
        "set",
        "prod/db",
        "--template",
        "database",
        "--field",
        "host=db.internal",
        "--field",
        "port=5432",
        "--field",
        "username=app",
        "--field",
        "database=main",
        "--field",
        &format!("password={DB_PW}"),
        "--tags",
        "prod,db",
        "--expires",
        "3d",
    ]);
    assert_ok(&out, "set prod/db");
    let link = ui::open(&env);
    let b = ui::login(&link);
    // Add one through the UI, with a template.
    let r = b.post(
        &link,
        "/secrets/save",
        &format!("mode=new&template=api&key=svc/api&f.api_key={API_KEY}&s.api_key=1&f.endpoint=https%3A%2F%2Fapi.example&tags=svc"),
    );
    assert_eq!(r.status, 303, "{r:?}");
    let out = env.cli(&["get", "svc/api", "--field", "api_key"]);
    assert_eq!(stdout(&out), API_KEY);

    let values = [PLAIN, DB_PW, API_KEY];
    let mut pages = vec![
        "/".to_string(),
        "/secrets".into(),
        "/secrets?q=prod".into(),
        "/secrets?tag=prod".into(),
        "/secrets?expiring=7".into(),
        "/secrets/new?template=database".into(),
        "/audit".into(),
        "/audit?source=ui".into(),
        "/audit/export".into(),
        "/agents".into(),
        "/policy?cmd=ls".into(),
        "/security".into(),
    ];
    for k in ["app/token", "prod/db", "svc/api"] {
        pages.push(format!("/secrets/view?key={k}"));
        pages.push(format!("/secrets/edit?key={k}"));
    }
    for p in &pages {
        let r = b.get(&link, p);
        assert_eq!(r.status, 200, "{p}: {}", r.body);
        for v in values {
            assert!(!r.body.contains(v), "{p} shows a value");
        }
        assert_eq!(r.header("cache-control"), Some("no-store"), "{p}");
    }
    let list = b.get(&link, "/secrets?q=prod");
    assert!(
        list.body.contains("prod/db") && !list.body.contains("app/token"),
        "search"
    );
    let view = b.get(&link, "/secrets/view?key=prod/db");
    assert!(
        view.body.contains("db.internal"),
        "non-sensitive fields are shown"
    );

    // The reveal answer is the one place a value appears.
    let r = b.post(&link, "/secrets/reveal", "key=prod/db&field=password");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["value"], DB_PW);
    // Reveal needs the CSRF token like any POST.
    let origin = link.origin();
    let r = ui::request(
        &link,
        "POST",
        "/secrets/reveal",
        &[("Cookie", &b.cookie), ("Origin", &origin)],
        "key=prod/db&field=password",
    );
    assert_eq!(r.status, 403);
    assert!(!r.body.contains(DB_PW));

    // Delete through the UI.
    let r = b.post(&link, "/secrets/delete", "key=app/token");
    assert_eq!(r.status, 303);
    assert_eq!(env.cli(&["get", "app/token"]).status.code(), Some(4));

    let audit = audit_text(&env);
    for action in [
        "get",
        "set",
        "delete",
        "list",
        "get_metadata",
        "audit_list",
        "security",
        "policy_check",
    ] {
        assert!(
            audit.contains(&format!(r#""action":"{action}","source":"ui""#)),
            "{action} from the UI is audited"
        );
    }
    for v in values {
        assert!(!audit.contains(v), "the audit log holds a value");
    }
    env.assert_log_clean(&values);
}

#[test]
fn the_policy_box_answers_like_secret_run() {
    let env = Env::unlocked();
    env.write_policy(
        "version: 1\ndefault_action: deny\nallowed_commands: [ls]\ndenied_commands: [rm]\n",
    );
    env.apply_policy();
    let link = ui::open(&env);
    let b = ui::login(&link);
    let yes = b.get(&link, "/policy?cmd=ls+-l&cwd=%2Ftmp");
    assert!(yes.body.contains("would run"), "{}", yes.body);
    let no = b.get(&link, "/policy?cmd=rm+-rf+x&cwd=%2Ftmp");
    assert!(
        no.body.contains("denied by denied_commands entry"),
        "{}",
        no.body
    );
    let env_cmd = b.get(&link, "/policy?cmd=env&cwd=%2Ftmp");
    assert!(env_cmd.body.contains("always denied"), "{}", env_cmd.body);
    assert!(yes.body.contains("applied"));
}

/// The text after "✗ refused: " in the policy page's verdict, unescaped.
fn refusal(page: &str) -> String {
    let after = page
        .split("✗ refused: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no refusal in {page}"));
    after
        .split("</p>")
        .next()
        .unwrap()
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// An agent's `secretctl run` (the checks of `secret_run`) in `cwd`.
fn agent_run(env: &Env, cwd: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    let mut cmd = env.command(&all);
    cmd.env("CLAUDECODE", "1").current_dir(cwd);
    run(cmd, None)
}

#[test]
fn the_policy_box_gives_secret_runs_reasons_for_keys_and_directories() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::unlocked();
    env.set("app/token", PLAIN);
    env.write_policy("version: 1\ndefault_action: deny\nallowed_commands: [ls, ./build.sh]\n");
    env.apply_policy();
    let with = env.dir.path().join("with-script");
    let without = env.dir.path().join("without-script");
    std::fs::create_dir_all(&with).unwrap();
    std::fs::create_dir_all(&without).unwrap();
    let script = with.join("build.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let link = ui::open(&env);
    let b = ui::login(&link);
    let ask = |cmd: &str, cwd: &std::path::Path, keys: &str| {
        let q = format!(
            "/policy?cmd={}&cwd={}&keys={}",
            cmd.replace(' ', "+").replace('/', "%2F"),
            cwd.display().to_string().replace('/', "%2F"),
            keys.replace('/', "%2F")
        );
        let r = b.get(&link, &q);
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        r.body
    };

    // Allowed, and the key exists: it would run, injecting APP_TOKEN.
    let yes = ask("ls -l", &without, "app/token");
    assert!(yes.contains("would run"), "{yes}");
    assert!(yes.contains("APP_TOKEN"), "{yes}");
    assert!(!yes.contains(PLAIN), "no value on the page");

    // Allowed command, missing key: "no", with secret_run's reason.
    let page = ask("ls -l", &without, "no/such");
    let why = refusal(&page);
    assert!(why.contains("no secret named 'no/such'"), "{why}");
    let out = agent_run(&env, &without, &["-k", "no/such", "--", "ls", "-l"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&why), "{why:?} vs {}", stderr(&out));

    // An allowed ./build.sh, from a directory without it: "no", same reason.
    assert!(ask("./build.sh", &with, "app/token").contains("would run"));
    let page = ask("./build.sh", &without, "app/token");
    let why = refusal(&page);
    let out = agent_run(&env, &without, &["-k", "app/token", "--", "./build.sh"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&why), "{why:?} vs {}", stderr(&out));

    // A directory that is not there: refused by the run's own check.
    let page = ask("ls", std::path::Path::new("/no/such/dir"), "app/token");
    assert!(
        refusal(&page).contains("is not an existing absolute directory"),
        "{page}"
    );
    // An argument naming an injected variable, for a non-shell.
    let page = ask("ls $APP_TOKEN", &without, "app/token");
    assert!(refusal(&page).contains("APP_TOKEN"), "{page}");
    let audit = audit_text(&env);
    assert!(audit.contains(r#""action":"policy_would_run","source":"ui""#));
    assert!(
        audit.contains("no secret named 'no/such'"),
        "the refusal is audited"
    );
    env.assert_log_clean(&[PLAIN]);
}

/// (action, success) of the records from the UI that name `key`.
fn ui_records(env: &Env, key: &str) -> Vec<(String, bool)> {
    audit_text(env)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| {
            r["source"] == "ui"
                && r["keys"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == key))
        })
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_string(),
                r["success"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn adding_a_secret_leaves_exactly_its_set_in_the_audit_log() {
    let env = Env::unlocked();
    let link = ui::open(&env);
    let b = ui::login(&link);
    let r = b.post(
        &link,
        "/secrets/save",
        &format!("mode=new&template=&key=svc/new&f.value={PLAIN}&s.value=1"),
    );
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(ui_records(&env, "svc/new"), [("set".to_string(), true)]);
    // Adding it again is refused by the same Set (create_only), once.
    let r = b.post(
        &link,
        "/secrets/save",
        "mode=new&template=&key=svc/new&f.value=another-value-123456&s.value=1",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("already exists"), "{}", r.body);
    assert_eq!(
        ui_records(&env, "svc/new"),
        [("set".to_string(), true), ("set".to_string(), false)]
    );
    assert_eq!(
        stdout(&env.cli(&["get", "svc/new"])),
        PLAIN,
        "not overwritten"
    );
    assert!(!audit_text(&env).contains(PLAIN));
}

#[test]
fn the_edit_form_removes_fields_and_changes_bindings() {
    let env = Env::unlocked();
    let out = env.cli(&[
        "set",
        "prod/db",
        "--field",
        "host=db.internal",
        "--field",
        "username=app",
        "--field",
        &format!("password={DB_PW}"),
        "--field",
        "legacy=old-value-1234567",
        "--sensitive",
        "password",
        "--binding",
        "PGHOST=host",
        "--binding",
        "PGLEGACY=legacy",
    ]);
    assert_ok(&out, "set prod/db");
    let meta = || {
        let v = json(&env.cli(&["get", "prod/db", "--show-metadata", "--json"]));
        let m = if v.get("fields").is_some() {
            v.clone()
        } else {
            v["meta"].clone()
        };
        let fields: Vec<String> = m["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect();
        let bindings: Vec<String> = m["bindings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                format!(
                    "{}={}",
                    b["env"].as_str().unwrap(),
                    b["field"].as_str().unwrap()
                )
            })
            .collect();
        (fields, bindings)
    };
    let link = ui::open(&env);
    let b = ui::login(&link);
    let edit = b.get(&link, "/secrets/edit?key=prod/db");
    assert!(edit.body.contains(r#"name="rm.legacy""#), "{}", edit.body);
    assert!(edit.body.contains("PGLEGACY=legacy"), "{}", edit.body);
    assert!(!edit.body.contains(DB_PW));

    // Removing a field that a kept binding names: refused, nothing changed.
    let before = meta();
    let r = b.post(
        &link,
        "/secrets/save",
        "mode=edit&key=prod/db&rm.legacy=1&bindings=PGHOST%3Dhost%0D%0APGLEGACY%3Dlegacy",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body.contains("binding PGLEGACY=legacy names a field"),
        "{}",
        r.body
    );
    assert_eq!(meta(), before);

    // With the bindings changed too: the field goes, the rest stays.
    let r = b.post(
        &link,
        "/secrets/save",
        "mode=edit&key=prod/db&rm.legacy=1&bindings=PGHOST%3Dhost%0D%0APGUSER%3Dusername%0D%0APGPASSWORD%3Dpassword",
    );
    assert_eq!(r.status, 303, "{r:?}");
    let (fields, bindings) = meta();
    assert_eq!(fields, ["host", "username", "password"]);
    assert_eq!(
        bindings,
        ["PGHOST=host", "PGUSER=username", "PGPASSWORD=password"]
    );
    assert_eq!(
        stdout(&env.cli(&["get", "prod/db", "--field", "password"])),
        DB_PW
    );
    assert!(
        env.cli(&["get", "prod/db", "--field", "legacy"])
            .status
            .code()
            != Some(0)
    );
    // An empty box removes every binding.
    let r = b.post(&link, "/secrets/save", "mode=edit&key=prod/db&bindings=");
    assert_eq!(r.status, 303, "{r:?}");
    assert!(meta().1.is_empty());
    assert_eq!(
        ui_records(&env, "prod/db")
            .iter()
            .filter(|(a, _)| a == "set")
            .cloned()
            .collect::<Vec<_>>(),
        [
            ("set".to_string(), false),
            ("set".to_string(), true),
            ("set".to_string(), true)
        ]
    );
}

#[test]
fn typed_passwords_and_values_arrive_byte_for_byte() {
    // Forms are decoded by the UI's own parser (into wiped buffers): every
    // escape a browser sends must come out as typed.
    let env = Env::unlocked();
    let link = ui::open(&env);
    let b = ui::login(&link);
    let awkward = "a+b c&d=e%f/é\"'<x>";
    let encoded: String = awkward
        .bytes()
        .map(|c| match c {
            b' ' => "+".to_string(),
            c if c.is_ascii_alphanumeric() => (c as char).to_string(),
            c => format!("%{c:02X}"),
        })
        .collect();
    let r = b.post(
        &link,
        "/secrets/save",
        &format!("mode=new&template=&key=odd/value&f.value={encoded}&s.value=1"),
    );
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(stdout(&env.cli(&["get", "odd/value"])), awkward);
    // A malformed escape is refused before anything is stored.
    let r = b.post(&link, "/secrets/save", "mode=new&key=odd/bad&f.value=%zz");
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(env.cli(&["get", "odd/bad"]).status.code(), Some(4));
    // The master password, with a '+' and spaces, unlocks.
    assert_eq!(b.post(&link, "/lock", "").status, 303);
    let r = b.post(
        &link,
        "/unlock",
        &format!(
            "password={}",
            PASSWORD.replace('+', "%2B").replace(' ', "+")
        ),
    );
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(json(&env.cli(&["status", "--json"]))["state"], "unlocked");
    env.assert_log_clean(&[awkward]);
}

#[test]
fn an_agent_caller_cannot_open_the_ui() {
    let env = Env::unlocked();
    let mut cmd = env.command(&["ui", "--no-open"]);
    cmd.env("CLAUDECODE", "1");
    let out = run(cmd, None);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("http://"), "no link");
    assert!(audit_text(&env).contains(r#""action":"ui","source":"cli","caller":"agent""#));
}

#[test]
fn another_uid_is_refused_before_a_byte_is_read() {
    if !require_root("another_uid_is_refused_before_a_byte_is_read") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let env = Env::unlocked();
    // nobody must be able to run the helper copied into the temp dir.
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let link: Link = ui::open(&env);
    let mut cmd = env.as_nobody(&peer_helper(), "sc-peer-as-nobody");
    cmd.args(["http", &format!("127.0.0.1:{}", link.port), &link.host]);
    let line = stdout(&spawn_retrying(cmd, "sc-peer http as nobody"));
    assert_eq!(line.trim(), "closed", "another uid must get nothing");
    // We still get an answer.
    assert_eq!(ui::request(&link, "GET", "/login", &[], "").status, 200);
    poll_until("the refusal is audited", Duration::from_secs(10), || {
        audit_text(&env).contains(r#""action":"ui_connection_refused""#)
    });
    assert!(audit_text(&env).contains("belongs to uid 65534"));
}
