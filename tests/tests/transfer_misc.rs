//! `generate` and `security` (issue 13): values drawn right and stored
//! unseen; findings by name, never by value; agents held to the rules.

mod common;

use std::collections::HashSet;
use std::process::Command;

use common::*;

const SYMBOLS: &str = "!#$%&()*+,-./:;<=>?@[]^_{|}~";

/// `secretctl ARGS` as an agent's process (a marker variable) with no
/// controlling terminal, so no consent prompt can be shown.
fn as_marked_agent(env: &Env, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("setsid");
    env.apply(&mut cmd);
    cmd.arg("-w")
        .arg(bin("secretctl"))
        .args(args)
        .env("SECRETCTL_AGENT", "1");
    run(cmd, None)
}

#[test]
fn generate_draws_every_class_and_distinct_values() {
    let env = Env::new();
    let out = env.cli(&["generate", "-n", "200", "-l", "8"]);
    assert_ok(&out, "generate");
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 200);
    assert_eq!(lines.iter().collect::<HashSet<_>>().len(), 200, "distinct");
    for p in &lines {
        assert_eq!(p.chars().count(), 8, "{p}");
        assert!(p.chars().any(|c| c.is_ascii_lowercase()), "{p}");
        assert!(p.chars().any(|c| c.is_ascii_uppercase()), "{p}");
        assert!(p.chars().any(|c| c.is_ascii_digit()), "{p}");
        assert!(p.chars().any(|c| SYMBOLS.contains(c)), "{p}");
    }
    let out = env.cli(&["generate", "-n", "50", "--no-symbols", "--exclude", "0O1lI"]);
    assert_ok(&out, "generate --no-symbols --exclude");
    for p in stdout(&out).lines() {
        assert_eq!(p.len(), 24);
        assert!(
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c)),
            "{p}"
        );
    }
    let out = env.cli(&["generate", "--words", "6"]);
    assert_ok(&out, "generate --words");
    let phrase = stdout(&out);
    assert!(phrase.trim().split('-').count() >= 6, "{phrase}");
    assert!(
        phrase
            .trim()
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '-'),
        "{phrase}"
    );
    // Impossible recipes are usage errors, before anything is drawn.
    assert_code(&env.cli(&["generate", "-l", "3"]), 2, "3 chars, 4 classes");
    assert_code(
        &env.cli(&["generate", "--exclude", "0123456789"]),
        2,
        "every digit excluded",
    );
    assert_code(
        &env.cli(&["generate", "--words", "4", "-l", "30"]),
        2,
        "--words with -l",
    );
    assert_code(
        &env.cli(&["generate", "--set", "k", "-n", "2"]),
        2,
        "--set with -n 2",
    );
}

#[test]
fn generate_set_stores_without_printing() {
    let env = Env::unlocked();
    let out = env.cli(&["generate", "--set", "gen/token", "-l", "40"]);
    assert_ok(&out, "generate --set");
    assert_eq!(stdout(&out), "", "nothing on stdout");
    let value = stdout(&env.cli(&["get", "gen/token"]));
    assert_eq!(value.chars().count(), 40, "{value}");
    assert!(!stderr(&out).contains(&value));
    // Into one field of a multi-field secret: the others stay.
    let out = env.cli_stdin(
        &[
            "set",
            "db",
            "--field",
            "username=app",
            "--field",
            "password",
            "--sensitive",
            "password",
        ],
        Some(b"old-password-123"),
    );
    assert_ok(&out, "set db");
    let out = env.cli(&["generate", "--set", "db", "--field", "password"]);
    assert_ok(&out, "generate --set db --field password");
    assert_eq!(
        stdout(&env.cli(&["get", "db", "--field", "username"])),
        "app"
    );
    let new = stdout(&env.cli(&["get", "db", "--field", "password"]));
    assert_ne!(new, "old-password-123");
    assert_eq!(new.len(), 24);
    // An agent's process may not store, even a value it never sees.
    let out = as_marked_agent(&env, &["generate", "--set", "gen/agent"]);
    assert_code(&out, 5, "agent generate --set");
    assert!(stderr(&out).contains("AI agent"), "{}", stderr(&out));
    assert_code(&env.cli(&["get", "gen/agent"]), 4, "nothing stored");
    env.assert_log_clean(&[&value, &new]);
}

#[test]
fn security_names_findings_never_values() {
    let env = Env::unlocked();
    let weak = "hunter2";
    let guessable = "password123456";
    let shared = "shared-value-8c1f2e9a";
    env.set("w/short", weak);
    env.set("w/guess", guessable);
    env.set("d/one", shared);
    env.set("d/two", shared);
    env.set("fine", "Zq8-vT3#mW9!pL2@rX5");
    let out = env.cli_stdin(
        &["set", "soon", "--expires", "5d"],
        Some(b"Ab3$Ab3$Cd5%Ef7^"),
    );
    assert_ok(&out, "set soon");
    let out = env.cli(&["security", "--json"]);
    assert_ok(&out, "security --json");
    let text = stdout(&out);
    for v in [weak, guessable, shared] {
        assert!(!text.contains(v), "a value in the report: {text}");
    }
    let r = json(&out);
    assert_eq!(r["secret_count"], 6);
    let issue = |kind: &str| -> serde_json::Value {
        r["issues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["kind"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} finding: {r}"))
    };
    assert_eq!(
        issue("weak")["keys"],
        serde_json::json!(["w/guess", "w/short"])
    );
    assert_eq!(issue("weak")["fields"][0]["field"], "value");
    assert_eq!(
        issue("duplicate")["keys"],
        serde_json::json!(["d/one", "d/two"])
    );
    assert_eq!(issue("expiring")["keys"], serde_json::json!(["soon"]));
    // 4 whole findings and a quarter, of 6 secrets.
    assert_eq!(r["score"], 29);
    // Views and the window.
    let out = env.cli(&["security", "weak"]);
    assert_ok(&out, "security weak");
    assert!(stdout(&out).contains("w/short (value)"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("d/one"));
    let out = env.cli(&["security", "expiring", "--days", "3", "--json"]);
    assert!(json(&out)["issues"].as_array().unwrap().is_empty());
    let out = env.cli(&["security", "duplicates"]);
    assert!(stdout(&out).contains("d/one (value)"), "{}", stdout(&out));
    // Names only: an agent's process may look.
    let out = as_marked_agent(&env, &["security", "--json"]);
    assert_ok(&out, "agent security");
    assert_eq!(json(&out)["score"], 29);
    env.assert_log_clean(&[weak, guessable, shared]);
    let audit = json(&env.cli(&["audit", "list", "--action", "security", "--json"]));
    assert!(
        audit.as_array().is_some_and(|a| a.len() >= 2),
        "security calls are audited: {audit}"
    );
}
