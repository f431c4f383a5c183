//! `export` and `import` end to end (contract §10, issue 13): the real
//! daemon and CLI. Round trips of awkward values through the env format
//! (back through `import` and through `set -a; . FILE` in sh and bash) and
//! the json format; each competitor format from a sample written here;
//! all or nothing; conflicts and dry runs; the output file's safety; agent
//! callers refused; values never in logs, audit records or messages.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

/// Values that mean something to sh, dotenv parsers or JSON. Stored with
/// `set` (stdin: one trailing newline is stripped, so each gets one more).
const AWKWARD: &[&str] = &[
    "it's",
    "''",
    "say \"hi\" and 'bye'",
    "$HOME ${HOME} $(id) `id` $",
    "back\\slash",
    "ends with \\",
    "\\\\",
    "ends\\'",
    "line1\nline2\n",
    "\nstarts with a newline",
    "  leading and trailing  ",
    "# not a comment",
    "a=b=c",
    "ünïcødé ✓ 🙂",
    "mixed '\\\" $x \n # = '",
    "cr\r\nlf\ttab",
    "export NOT=this",
];

/// A value that must never show up outside the vault and its exports.
const MARKER: &str = "MARKER-8d1f-value-never-logged";

fn awkward_key(i: usize) -> String {
    format!("aw/v{i:02}")
}

fn awkward_env(i: usize) -> String {
    format!("AW_V{i:02}")
}

fn set_awkward(env: &Env) {
    for (i, v) in AWKWARD.iter().enumerate() {
        let stdin = format!("{v}\n");
        let out = env.cli_stdin(&["set", &awkward_key(i)], Some(stdin.as_bytes()));
        assert_ok(&out, &format!("set {}", awkward_key(i)));
    }
    env.set("aw/marker", MARKER);
}

fn get(env: &Env, key: &str) -> Vec<u8> {
    let out = env.cli(&["get", key]);
    assert_ok(&out, &format!("get {key}"));
    out.stdout
}

fn keys(env: &Env) -> Vec<String> {
    let out = env.cli(&["list"]);
    assert_ok(&out, "list");
    stdout(&out).lines().map(str::to_string).collect()
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// `shell -c 'set -a; . FILE; printenv NAME'`: what sh reads back.
fn sourced(shell: &str, file: &Path, name: &str) -> Vec<u8> {
    let mut c = Command::new(shell);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["-c", "set -a; . \"$1\"; printenv \"$2\"", "sh"])
        .arg(file)
        .arg(name);
    let out = run(c, None);
    assert_ok(&out, &format!("{shell}: . {}", file.display()));
    let mut v = out.stdout;
    assert_eq!(v.pop(), Some(b'\n'), "printenv ends with a newline");
    v
}

/// Everything a test must never find: daemon log, audit files.
fn assert_nowhere(env: &Env, values: &[&str]) {
    env.assert_log_clean(values);
    let audit = env.home.join("audit");
    for entry in std::fs::read_dir(&audit).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
        for v in values {
            assert!(!text.contains(v), "the audit log holds a value {v:?}");
        }
    }
}

fn audit_records(env: &Env, action: &str) -> Vec<Value> {
    let out = env.cli(&["audit", "list", "--json", "--action", action]);
    assert_ok(&out, "audit list");
    json(&out).as_array().unwrap().clone()
}

#[test]
fn env_export_round_trips_through_import_and_sh() {
    let env = Env::unlocked();
    set_awkward(&env);
    let file = env.dir.path().join("out.env");
    let out = env.cli(&["export", "-k", "aw/*", "-o", file.to_str().unwrap()]);
    assert_ok(&out, "export env");
    assert!(out.stdout.is_empty(), "values go to the file only");
    assert!(
        stderr(&out).contains(&format!("exported {} variables", AWKWARD.len() + 1)),
        "{}",
        stderr(&out)
    );
    assert_eq!(mode(&file), 0o600);
    // The same text to stdout.
    let to_stdout = env.cli(&["export", "-k", "aw/*"]);
    assert_ok(&to_stdout, "export to stdout");
    assert_eq!(to_stdout.stdout, std::fs::read(&file).unwrap());

    // sh (dash here) and bash give back the exact bytes.
    for shell in ["sh", "bash"] {
        for (i, v) in AWKWARD.iter().enumerate() {
            assert_eq!(
                String::from_utf8(sourced(shell, &file, &awkward_env(i))).unwrap(),
                *v,
                "{shell} reads back {}",
                awkward_key(i)
            );
        }
        assert_eq!(sourced(shell, &file, "AW_MARKER"), MARKER.as_bytes());
    }

    // import gives back the exact bytes.
    let out = env.cli(&["import", file.to_str().unwrap(), "--prefix", "copy/"]);
    assert_ok(&out, "import env");
    assert_eq!(
        stdout(&out),
        format!("imported {}, overwritten 0, skipped 0\n", AWKWARD.len() + 1)
    );
    for (i, v) in AWKWARD.iter().enumerate() {
        let key = format!("copy/{}", awkward_env(i));
        assert_eq!(String::from_utf8(get(&env, &key)).unwrap(), *v, "{key}");
    }
    assert_eq!(get(&env, "copy/AW_MARKER"), MARKER.as_bytes());

    // Audited with key names, never values.
    let exports = audit_records(&env, "export");
    assert_eq!(exports.len(), 2, "{exports:?}");
    let listed = exports[0]["keys"].as_array().unwrap();
    assert_eq!(listed.len(), AWKWARD.len() + 1);
    assert!(listed.contains(&Value::from("aw/marker")));
    let imports = audit_records(&env, "import");
    assert_eq!(imports.len(), 1);
    assert!(
        imports[0]["keys"]
            .as_array()
            .unwrap()
            .contains(&Value::from("copy/AW_MARKER"))
    );
    assert_nowhere(&env, &[MARKER, "ünïcødé", "# not a comment", "say \"hi\""]);
    assert!(!stderr(&out).contains(MARKER));
}

/// Metadata as `get --show-metadata --json` shows it, without what an
/// import may change (times, the key).
fn meta(env: &Env, key: &str) -> Value {
    let out = env.cli(&["get", key, "--show-metadata", "--json"]);
    assert_ok(&out, &format!("metadata of {key}"));
    let mut m = json(&out);
    for k in ["created_at", "updated_at", "key"] {
        m.as_object_mut().unwrap().remove(k);
    }
    m
}

#[test]
fn json_export_round_trips_every_field_and_flag() {
    let env = Env::unlocked();
    set_awkward(&env);
    let out = env.cli_stdin(
        &[
            "set",
            "prod/db",
            "--field",
            "user=app",
            "--field",
            "host=db.internal",
            "--field",
            "password",
            "--sensitive",
            "password",
            "--binding",
            "DB_PASSWORD=password",
            "--binding",
            "DB_USER=user",
            "--notes",
            "rotated by 'ops' on $DAY\nsecond line",
            "--url",
            "https://db.example.com/admin",
            "--tags",
            "prod,db",
            "--expires",
            "400d",
        ],
        Some(b"p'w\"\\ $x\nline 2 \xc3\xbc\n"),
    );
    assert_ok(&out, "set prod/db");
    let mut keys_before = keys(&env);
    keys_before.sort();
    let before: Vec<(String, Value)> = keys_before
        .iter()
        .map(|k| (k.clone(), meta(&env, k)))
        .collect();
    // Single-value secrets; prod/db has several fields, read one by one.
    let values_before: Vec<Option<Vec<u8>>> = keys_before
        .iter()
        .map(|k| k.starts_with("aw/").then(|| get(&env, k)))
        .collect();
    let password = {
        let out = env.cli(&["get", "prod/db", "--field", "password"]);
        assert_ok(&out, "get password");
        out.stdout
    };

    let file = env.dir.path().join("vault.json");
    let out = env.cli(&["export", "--format", "json", "-o", file.to_str().unwrap()]);
    assert_ok(&out, "export json");
    assert_eq!(mode(&file), 0o600);
    let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["secrets"].as_array().unwrap().len(), keys_before.len());

    // Delete everything, import the file back: the same vault.
    for k in &keys_before {
        assert_ok(&env.cli(&["delete", k, "--force"]), "delete");
    }
    assert!(keys(&env).is_empty());
    let out = env.cli(&["import", file.to_str().unwrap()]);
    assert_ok(&out, "import json");
    assert!(
        stdout(&out).starts_with(&format!("imported {}, ", keys_before.len())),
        "{}",
        stdout(&out)
    );
    let mut after_keys = keys(&env);
    after_keys.sort();
    assert_eq!(after_keys, keys_before);
    for ((k, m), v) in before.iter().zip(&values_before) {
        assert_eq!(&meta(&env, k), m, "metadata of {k}");
        if let Some(v) = v {
            assert_eq!(&get(&env, k), v, "value of {k}");
        }
    }
    let out = env.cli(&["get", "prod/db", "--field", "password"]);
    assert_eq!(out.stdout, password);
    let out = env.cli(&["get", "prod/db", "--field", "user"]);
    assert_eq!(stdout(&out), "app");
    assert_nowhere(&env, &[MARKER, "rotated by"]);
}

const ONEPASSWORD_CSV: &str = "\u{feff}Title,Url,Username,Password,OTPAuth,Favorite,Archived,Tags,Notes\n\
GitHub,https://github.com,octocat,\"op-pass,with \"\"quotes\"\"\",otpauth://totp/GitHub:octocat?secret=JBSWY3DPEHPK3PXP,false,false,\"dev,work\",\"multi\nline note\"\n\
GitHub,,second,op-pass-second,,false,false,,,\n\
Empty,,,,,false,false,,,\n";

const BITWARDEN_JSON: &str = r#"{
  "encrypted": false,
  "folders": [{"id": "f1", "name": "Work"}],
  "items": [
    {"id": "i1", "folderId": "f1", "type": 1, "name": "AWS Console", "notes": "root account",
     "favorite": false,
     "login": {"username": "admin", "password": "bw-pass-1", "totp": "JBSWY3DPEHPK3PXP",
               "uris": [{"match": null, "uri": "https://aws.amazon.com"}]},
     "fields": [{"name": "Account ID", "value": "123456", "type": 0},
                {"name": "Recovery", "value": "bw-recovery-code", "type": 1}]},
    {"id": "i2", "folderId": null, "type": 2, "name": "Server notes",
     "notes": "ssh root@host with bw-note-secret", "secureNote": {"type": 0}}
  ]
}"#;

const LASTPASS_CSV: &str = "url,username,password,totp,extra,name,grouping,fav\n\
https://mail.example.com,me@example.com,lp-pass-1,,remember me,Mail,Personal\\Email,0\n\
http://sn,,,,\"NoteType:Server\nPassword:lp-root-pass\",Server Root,Work,1\n";

/// Field name → sensitive, from the metadata.
fn fields(m: &Value) -> Vec<(String, bool)> {
    m["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["sensitive"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn field(env: &Env, key: &str, name: &str) -> String {
    let out = env.cli(&["get", key, "--field", name]);
    assert_ok(&out, &format!("get {key} --field {name}"));
    stdout(&out)
}

fn owned(v: &[(&str, bool)]) -> Vec<(String, bool)> {
    v.iter().map(|(n, s)| (n.to_string(), *s)).collect()
}

#[test]
fn password_manager_exports_become_multi_field_secrets() {
    let env = Env::unlocked();
    let dir = env.dir.path();
    let op = dir.join("1password.csv");
    let bw = dir.join("bitwarden_export.json");
    let lp = dir.join("lastpass.csv");
    std::fs::write(&op, ONEPASSWORD_CSV).unwrap();
    std::fs::write(&bw, BITWARDEN_JSON).unwrap();
    std::fs::write(&lp, LASTPASS_CSV).unwrap();

    // 1Password, detected from its header.
    let out = env.cli(&[
        "import",
        op.to_str().unwrap(),
        "--prefix",
        "op/",
        "--tag",
        "imported",
    ]);
    assert_ok(&out, "import 1password");
    assert_eq!(stdout(&out), "imported 2, overwritten 0, skipped 1\n");
    assert!(
        stderr(&out).contains("renamed: 'op/github' is taken by line 2 'GitHub'"),
        "{}",
        stderr(&out)
    );
    let m = meta(&env, "op/github");
    assert_eq!(
        fields(&m),
        owned(&[("username", false), ("password", true), ("totp", true)])
    );
    assert_eq!(m["url"], "https://github.com");
    assert_eq!(m["notes"], "multi\nline note");
    assert_eq!(m["tags"], serde_json::json!(["imported", "dev", "work"]));
    assert_eq!(
        field(&env, "op/github", "password"),
        "op-pass,with \"quotes\""
    );
    assert!(field(&env, "op/github", "totp").starts_with("otpauth://totp/"));
    assert_eq!(field(&env, "op/github-2", "username"), "second");

    // Bitwarden, detected from its shape.
    let out = env.cli(&["import", bw.to_str().unwrap(), "--prefix", "bw/"]);
    assert_ok(&out, "import bitwarden");
    assert_eq!(stdout(&out), "imported 2, overwritten 0, skipped 0\n");
    let m = meta(&env, "bw/work/aws-console");
    let f = fields(&m);
    for want in [
        ("username", false),
        ("password", true),
        ("totp", true),
        ("account-id", false),
        ("recovery", true),
    ] {
        assert!(
            f.contains(&(want.0.to_string(), want.1)),
            "{want:?} in {f:?}"
        );
    }
    assert_eq!(m["url"], "https://aws.amazon.com");
    assert_eq!(m["notes"], "root account");
    assert_eq!(field(&env, "bw/work/aws-console", "password"), "bw-pass-1");
    assert_eq!(
        field(&env, "bw/work/aws-console", "recovery"),
        "bw-recovery-code"
    );
    let note = meta(&env, "bw/server-notes");
    assert_eq!(fields(&note), owned(&[("notes", true)]));
    assert_eq!(
        field(&env, "bw/server-notes", "notes"),
        "ssh root@host with bw-note-secret"
    );

    // LastPass, with --format given.
    let out = env.cli(&[
        "import",
        lp.to_str().unwrap(),
        "--format",
        "lastpass-csv",
        "--prefix",
        "lp/",
    ]);
    assert_ok(&out, "import lastpass");
    assert_eq!(stdout(&out), "imported 2, overwritten 0, skipped 0\n");
    let m = meta(&env, "lp/personal/email/mail");
    assert_eq!(
        fields(&m),
        owned(&[("username", false), ("password", true)])
    );
    assert_eq!(m["url"], "https://mail.example.com");
    assert_eq!(
        field(&env, "lp/personal/email/mail", "username"),
        "me@example.com"
    );
    assert_eq!(
        field(&env, "lp/personal/email/mail", "password"),
        "lp-pass-1"
    );
    assert_eq!(
        field(&env, "lp/work/server-root", "notes"),
        "NoteType:Server\nPassword:lp-root-pass"
    );
    assert_nowhere(
        &env,
        &[
            "op-pass",
            "bw-pass-1",
            "bw-recovery-code",
            "bw-note-secret",
            "lp-pass-1",
            "lp-root-pass",
        ],
    );
}

#[test]
fn a_bad_entry_imports_nothing_and_names_its_line() {
    let env = Env::unlocked();
    env.set("existing", "kept-value-1234");
    let before = keys(&env);
    let file = env.dir.path().join("bad.env");
    std::fs::write(
        &file,
        "# header\nGOOD1=first-good-value\nexport GOOD2='second good'\n\nBAD=\"never closed bad-secret-value\nGOOD3=x\n",
    )
    .unwrap();
    let out = env.cli(&["import", file.to_str().unwrap()]);
    assert_code(&out, 1, "bad line");
    let err = stderr(&out);
    assert!(err.contains("line 5: not a valid dotenv line"), "{err}");
    assert!(
        !err.contains("bad-secret-value") && !err.contains("first-good-value"),
        "{err}"
    );
    assert_eq!(keys(&env), before, "nothing was imported");

    // A key the daemon refuses (after the parse): the whole file again.
    std::fs::write(&file, "GOOD1=one\nGOOD2=two\nBAD..KEY=three\n").unwrap();
    let out = env.cli(&["import", file.to_str().unwrap()]);
    assert_code(&out, 1, "bad key");
    assert!(stderr(&out).contains("line 3"), "{}", stderr(&out));
    assert_eq!(keys(&env), before);

    // dotenvy expands $NAME from the importing process's environment: the
    // master password is never copied into the vault that way.
    std::fs::write(&file, "GOOD1=one\nLEAK=\"${SECRETCTL_PASSWORD}\"\n").unwrap();
    let mut c = env.command(&["import", file.to_str().unwrap()]);
    c.env("SECRETCTL_PASSWORD", PASSWORD);
    let out = run(c, None);
    assert_code(&out, 1, "password reference");
    assert!(
        stderr(&out).contains("line 2: the value of LEAK holds the value of SECRETCTL_PASSWORD"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(PASSWORD) && !stdout(&out).contains(PASSWORD));
    assert_eq!(keys(&env), before);

    // A NUL byte in a value (a JSON escape): refused as `set` refuses it.
    let file = env.dir.path().join("nul.json");
    std::fs::write(
        &file,
        r#"{"A": "fine", "B": "has\u0000nul-secret-value", "C": "also fine"}"#,
    )
    .unwrap();
    let out = env.cli(&["import", file.to_str().unwrap()]);
    assert_code(&out, 2, "NUL value");
    let err = stderr(&out);
    assert!(
        err.contains("item 2 'B' ('B')") && err.contains("NUL"),
        "{err}"
    );
    assert!(!err.contains("nul-secret-value"), "{err}");
    assert_eq!(keys(&env), before);
    assert_eq!(get(&env, "existing"), b"kept-value-1234");
    assert_nowhere(
        &env,
        &["bad-secret-value", "first-good-value", "nul-secret-value"],
    );
}

#[test]
fn the_daemon_checks_what_it_is_sent() {
    use secretctl_proto::v1::{Conflict, FieldInput, ImportChunk, ImportEntry, SetRequest};
    let env = Env::unlocked();
    let entry = |key: &str, origin: &str, value: &[u8]| ImportEntry {
        secret: Some(SetRequest {
            key: key.into(),
            fields: vec![FieldInput::new("value", value.to_vec())],
            ..Default::default()
        }),
        origin: origin.into(),
        continued: false,
    };
    let send = |entries: Vec<ImportEntry>| {
        env.with_client(async move |c| {
            let chunk = ImportChunk {
                conflict: Conflict::Skip as i32,
                dry_run: false,
                entries,
            };
            c.transfer()
                .import(tokio_stream::iter(vec![chunk]))
                .await
                .map(|r| r.into_inner())
        })
    };
    for (bad, want) in [
        (
            entry("../up", "line 2", b"v-secret-1"),
            "line 2 ('../up'): key name",
        ),
        (
            entry("nul", "line 2", b"a\0b-secret-1"),
            "line 2 ('nul'): value of field 'value' contains a NUL",
        ),
        (
            entry("big", "line 2", &vec![b'x'; 1024 * 1024 + 1]),
            "line 2 ('big'): ",
        ),
        (
            entry("ok", "line 2", b"again-secret-1"),
            "line 2 ('ok'): the same key as line 1",
        ),
    ] {
        let e = send(vec![entry("ok", "line 1", b"fine-secret-1"), bad]).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        assert!(e.message().starts_with(want), "{}", e.message());
        assert!(!e.message().contains("secret-1"), "{}", e.message());
        assert!(keys(&env).is_empty(), "nothing stored");
    }
    let ok = send(vec![entry("ok", "line 1", b"fine-secret-1")]).unwrap();
    assert_eq!((ok.imported, ok.skipped), (1, 0));
    env.assert_log_clean(&["secret-1"]);
}

#[test]
fn conflicts_and_dry_runs() {
    let env = Env::unlocked();
    env.set("A", "old-a-value");
    let file = env.dir.path().join("new.env");
    std::fs::write(&file, "A=new-a-value\nB=new-b-value\nEMPTY=\n").unwrap();
    let path = file.to_str().unwrap();
    let state = |env: &Env| (keys(env), get(env, "A"));
    let before = state(&env);

    // Dry runs: exactly what would happen, nothing changed.
    let out = env.cli(&["import", path, "--dry-run"]);
    assert_ok(&out, "dry run skip");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "format: env (the file name is a .env file's)");
    assert!(
        lines[1].starts_with("skip      A      line 1  (exists)"),
        "{text}"
    );
    assert!(lines[2].starts_with("create    B      line 2"), "{text}");
    assert!(
        lines[3].starts_with("skip      EMPTY  line 3  (empty value)"),
        "{text}"
    );
    assert_eq!(
        lines[4],
        "would import 1, overwrite 0, skip 2 (dry run: nothing was changed)"
    );
    assert_eq!(state(&env), before);

    let out = env.cli(&[
        "import",
        path,
        "--dry-run",
        "--conflict",
        "overwrite",
        "--json",
    ]);
    assert_ok(&out, "dry run overwrite");
    let j = json(&out);
    assert_eq!(j["dry_run"], true);
    assert_eq!(
        (
            j["imported"].as_u64(),
            j["overwritten"].as_u64(),
            j["skipped"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(j["entries"][0]["action"], "overwrite");
    assert_eq!(state(&env), before);

    let out = env.cli(&["import", path, "--dry-run", "--conflict", "error"]);
    assert_code(&out, 1, "dry run error");
    assert!(
        stdout(&out).contains("conflict  A      line 1  (exists)"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("would be refused: 1 key already exists"),
        "{}",
        stderr(&out)
    );
    assert_eq!(state(&env), before);
    assert!(!stdout(&out).contains("-value"), "no values in a dry run");

    // Error: refused as a whole, naming the key.
    let out = env.cli(&["import", path, "--conflict", "error"]);
    assert_code(&out, 1, "conflict error");
    assert!(stderr(&out).contains("'A' (line 1)"), "{}", stderr(&out));
    assert_eq!(state(&env), before);

    // Skip: the stored one stays.
    let out = env.cli(&["import", path]);
    assert_ok(&out, "skip");
    assert_eq!(stdout(&out), "imported 1, overwritten 0, skipped 2\n");
    assert_eq!(get(&env, "A"), b"old-a-value");
    assert_eq!(get(&env, "B"), b"new-b-value");

    // Overwrite: replaced.
    let out = env.cli(&["import", path, "--conflict", "overwrite"]);
    assert_ok(&out, "overwrite");
    assert_eq!(stdout(&out), "imported 0, overwritten 2, skipped 1\n");
    assert_eq!(get(&env, "A"), b"new-a-value");

    // Audited: counts in the detail, key names only.
    let imports = audit_records(&env, "import");
    assert!(imports.len() >= 5, "{imports:?}");
    let last = imports.last().unwrap();
    assert_eq!(last["keys"], serde_json::json!(["A", "B"]));
    assert_eq!(last["command"], "import --conflict overwrite");
    // The daemon's counts: of the entries it was sent (EMPTY never was).
    let d = &last["detail"];
    assert_eq!(
        (
            &d["entries"],
            &d["created"],
            &d["overwritten"],
            &d["skipped"]
        ),
        (
            &Value::from(2),
            &Value::from(0),
            &Value::from(2),
            &Value::from(0)
        ),
        "{last}"
    );
    let dry = &imports[0];
    assert_eq!(dry["command"], "import --conflict skip --dry-run");
    assert_eq!(dry["detail"]["dry_run"], true);
    assert_nowhere(&env, &["old-a-value", "new-a-value", "new-b-value"]);
}

#[test]
fn export_files_are_private_and_never_clobbered_or_followed() {
    let env = Env::unlocked();
    env.set("k", MARKER);
    let dir = env.dir.path();
    let existing = dir.join("existing.env");
    std::fs::write(&existing, "keep me\n").unwrap();
    let out = env.cli(&["export", "-o", existing.to_str().unwrap()]);
    assert_code(&out, 1, "existing file");
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me\n");

    // A symlink, to an existing file or to nowhere: never written through.
    let victim = dir.join("victim");
    std::fs::write(&victim, "victim\n").unwrap();
    let link = dir.join("link.env");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let dangling = dir.join("dangling.env");
    std::os::unix::fs::symlink(dir.join("created-through-link"), &dangling).unwrap();
    for target in [&link, &dangling] {
        for force in [false, true] {
            let mut args = vec!["export", "-o", target.to_str().unwrap()];
            if force {
                args.push("--force");
            }
            let out = env.cli(&args);
            assert_code(&out, 1, "symlink");
            assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
        }
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"victim\n");
    assert!(!dir.join("created-through-link").exists());
    // Refused before anything was asked of the daemon.
    assert!(audit_records(&env, "export").is_empty());

    // --force replaces the file (a new 0600 one, whatever the old mode).
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.cli(&["export", "-o", existing.to_str().unwrap(), "--force"]);
    assert_ok(&out, "force");
    assert_eq!(mode(&existing), 0o600);
    assert_eq!(
        std::fs::read_to_string(&existing).unwrap(),
        format!("K='{MARKER}'\n")
    );
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A new file under a permissive umask is 0600 too.
    let fresh = dir.join("fresh.json");
    let mut c = Command::new("sh");
    env.apply(&mut c);
    c.args([
        "-c",
        "umask 000; exec \"$0\" export --format json -o \"$1\"",
    ])
    .arg(bin("secretctl"))
    .arg(&fresh);
    assert_ok(&run(c, None), "export under umask 000");
    assert_eq!(mode(&fresh), 0o600);
    // A name that does not exist, a glob that matches nothing: not found.
    assert_code(&env.cli(&["export", "-k", "nope"]), 4, "missing key");
    assert_code(&env.cli(&["export", "-k", "nope/*"]), 4, "empty glob");
    assert_nowhere(&env, &[MARKER]);
}

#[test]
fn agent_callers_are_refused_export_and_import() {
    let env = Env::unlocked();
    env.set("prod/token", MARKER);
    let dir = env.dir.path();
    let file = dir.join("agent.env");
    let input = dir.join("in.env");
    std::fs::write(&input, "INJECTED=agent-wrote-this\n").unwrap();
    // An agent's process: a marker in its environment, no terminal
    // (setsid), the password in its environment (which an agent controls).
    let as_agent = |args: &[&str]| {
        let mut c = Command::new("setsid");
        env.apply(&mut c);
        c.env("CLAUDECODE", "1")
            .env("SECRETCTL_PASSWORD", PASSWORD)
            .arg("-w")
            .arg(bin("secretctl"))
            .args(args);
        run(c, None)
    };
    for args in [
        vec!["export"],
        vec!["export", "--format", "json"],
        vec!["export", "-k", "prod/token", "-o", file.to_str().unwrap()],
    ] {
        let out = as_agent(&args);
        assert_code(&out, 5, &format!("agent {args:?}"));
        assert!(
            stderr(&out).contains("refused: this process has the AI agent marker CLAUDECODE"),
            "{}",
            stderr(&out)
        );
        assert!(!stdout(&out).contains(MARKER) && !stderr(&out).contains(MARKER));
    }
    assert!(!file.exists(), "no file was created");
    for args in [
        vec!["import", input.to_str().unwrap()],
        vec!["import", input.to_str().unwrap(), "--dry-run"],
    ] {
        let out = as_agent(&args);
        assert_code(&out, 5, &format!("agent {args:?}"));
    }
    assert_eq!(keys(&env), ["prod/token"]);
    let refused: Vec<Value> = ["export", "import"]
        .iter()
        .flat_map(|a| audit_records(&env, a))
        .collect();
    assert_eq!(refused.len(), 5, "{refused:?}");
    for r in &refused {
        assert_eq!(r["caller"], "agent", "{r}");
        assert_eq!(r["success"], false, "{r}");
        assert!(r["error"].as_str().unwrap().contains("AI agent"), "{r}");
    }
    assert_nowhere(&env, &[MARKER]);
}
