//! The README's quick start, run line by line against the real daemon, so
//! the documentation cannot drift from the product. `aws`, `psql` and `npm`
//! are stand-ins that print what they were given; everything else is real.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const TOKEN: &str = "ghp_readme_Token_5f1c2b9a";
const DB_PASSWORD: &str = "pg-readme-Pw-83kd92ls";
const AWS_KEY_ID: &str = "AKIAREADME7EXAMPLE";
const AWS_SECRET: &str = "wJalr-readme-Secret-Key-2b8f";

/// The lines of the first ```sh block after `heading` in `text`, with
/// continuations joined and comments removed.
fn block_after(text: &str, heading: &str) -> Vec<String> {
    let start = text.find(heading).expect("heading in README");
    let rest = &text[start..];
    let open = rest.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let close = rest[open..].find("```").expect("block end");
    let mut lines = Vec::new();
    let mut pending = String::new();
    for raw in rest[open..open + close].lines() {
        if let Some(part) = raw.strip_suffix('\\') {
            pending.push_str(part);
            continue;
        }
        pending.push_str(raw);
        let line = strip_comment(&pending).trim().to_string();
        pending.clear();
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines
}

/// Cuts a trailing `# comment` that is outside quotes.
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && (i == 0 || line[..i].ends_with(' ')) => {
                return &line[..i];
            }
            _ => {}
        }
    }
    line
}

/// Stand-ins for programs the README runs: each prints its arguments and
/// the variables it would use.
fn stubs(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("stubs");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, vars) in [
        ("aws", "AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY"),
        ("psql", "DB_HOST DB_PORT DB_USER DB_PASSWORD DB_NAME"),
        ("npm", "DB_HOST DB_PASSWORD"),
    ] {
        let mut script = format!("#!/bin/sh\necho \"{name} $*\"\n");
        for v in vars.split(' ') {
            script.push_str(&format!("echo \"{v}=${{{v}:-unset}}\"\n"));
        }
        let p = bin.join(name);
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

#[test]
fn the_quick_start_works_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let lines = block_after(&readme, "## Quick start");
    assert!(lines.len() >= 10, "{lines:?}");
    let env = Env::new();
    // `--env dev` needs an alias in the applied policy (the README says so);
    // the daemon starts at the first command, as it would for a new user.
    env.write_policy(
        "version: 1\nenv_aliases:\n  dev: [{pattern: \"db/*\", target: \"dev/db/*\"}]\n",
    );
    let stubs = stubs(env.dir.path());
    let path = format!(
        "{}:{}:{}",
        stubs.display(),
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut outputs = Vec::new();
    for line in &lines {
        let mut cmd = Command::new("sh");
        env.apply(&mut cmd);
        cmd.args(["-c", line])
            .env("PATH", &path)
            // Autostart as a new user would get it.
            .env_remove("SECRETCTL_NO_AUTOSTART")
            .env("SECRETCTL_PASSWORD", PASSWORD)
            .env("TOKEN", TOKEN)
            .env("DB_PASSWORD", DB_PASSWORD)
            .env("AWS_KEY_ID", AWS_KEY_ID)
            .env("AWS_SECRET", AWS_SECRET);
        let out = run(cmd, None);
        assert_ok(&out, line);
        if line.starts_with("secretctl init") {
            // The policy is applied once the vault exists.
            env.apply_policy();
        }
        outputs.push((line.clone(), stdout(&out), stderr(&out)));
    }
    let out_of = |prefix: &str| -> String {
        outputs
            .iter()
            .find(|(l, _, _)| l.starts_with(prefix))
            .map(|(_, o, _)| o.clone())
            .unwrap_or_else(|| panic!("no README line starts with {prefix}"))
    };
    assert_eq!(out_of("secretctl get github/token"), TOKEN);
    let meta = out_of("secretctl get dev/db --show-metadata");
    assert!(
        meta.contains("db.internal") && !meta.contains(DB_PASSWORD),
        "{meta}"
    );
    let aws = out_of("secretctl run -k 'aws/*'");
    assert!(
        aws.contains("AWS_ACCESS_KEY_ID=[REDACTED:AWS_ACCESS_KEY_ID]")
            && aws.contains("AWS_SECRET_ACCESS_KEY=[REDACTED:AWS_SECRET_ACCESS_KEY]"),
        "{aws}"
    );
    let psql = out_of("secretctl run -k dev/db");
    for want in [
        "DB_HOST=db.internal",
        "DB_PORT=5432",
        "DB_USER=app",
        "DB_PASSWORD=[REDACTED:DB_PASSWORD]",
        "DB_NAME=main",
    ] {
        assert!(psql.contains(want), "{want}: {psql}");
    }
    let npm = out_of("secretctl run --env dev");
    assert!(
        npm.contains("npm test") && npm.contains("DB_HOST=db.internal"),
        "{npm}"
    );
    let tags = json(&env.cli(&["list", "--json"]));
    let token = tags
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "github/token")
        .unwrap();
    assert_eq!(token["tags"], serde_json::json!(["ci", "deploy"]));
    assert!(out_of("secretctl status").contains("unlocked"));
    for (line, o, e) in &outputs {
        for v in [DB_PASSWORD, AWS_KEY_ID, AWS_SECRET] {
            assert!(!o.contains(v) && !e.contains(v), "{line} printed a secret");
        }
    }
    env.assert_log_clean(&[TOKEN, DB_PASSWORD, AWS_KEY_ID, AWS_SECRET]);
}

#[test]
fn the_documented_mcp_setup_works() {
    // docs/mcp.md's JSON configuration is valid and names `secretctl mcp-server`.
    let mcp = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/mcp.md"))
        .expect("docs/mcp.md");
    let start = mcp.find("```json\n").expect("a json block") + "```json\n".len();
    let end = start + mcp[start..].find("```").unwrap();
    let cfg: serde_json::Value = serde_json::from_str(&mcp[start..end]).expect("valid JSON");
    let server = &cfg["mcpServers"]["secretctl"];
    assert_eq!(server["command"], "secretctl");
    assert_eq!(server["args"], serde_json::json!(["mcp-server"]));
    assert!(
        server
            .get("env")
            .is_none_or(|e| e.get("SECRETCTL_PASSWORD").is_none())
    );
}
