//! Day one as a new user (issue 12): every everyday flow works and every
//! failure explains itself. One test per numbered item of the issue.

mod common;

use common::*;

#[test]
fn item1_metadata_and_binding_only_sets_keep_the_value() {
    let env = Env::unlocked();
    env.set("k", "value-one-12345");
    let out = env.cli(&["set", "k", "--tags", "x", "--expires", "30d"]);
    assert_ok(&out, "metadata-only set, no stdin");
    assert_eq!(stdout(&env.cli(&["get", "k"])), "value-one-12345");
    let meta = json(&env.cli(&["get", "k", "--show-metadata", "--json"]));
    assert_eq!(meta["tags"], serde_json::json!(["x"]));
    assert!(meta["expires_at"].is_string());
    let out = env.cli_stdin(
        &[
            "set",
            "db",
            "--field",
            "host=h",
            "--field",
            "password",
            "--sensitive",
            "password",
        ],
        Some(b"db-pass-12345"),
    );
    assert_ok(&out, "set db");
    let out = env.cli(&[
        "set",
        "db",
        "--binding",
        "DB_HOST=host",
        "--binding",
        "DB_PASSWORD=password",
    ]);
    assert_ok(&out, "binding-only set");
    let run = env.cli(&["run", "-k", "db", "--", "sh", "-c", "echo $DB_HOST"]);
    assert_eq!(stdout(&run), "h\n");
    // A new secret needs a value: said plainly.
    let out = env.cli(&["set", "new", "--tags", "x"]);
    assert_code(&out, 2, "metadata for a secret that does not exist");
    assert!(
        stderr(&out).contains("at least one field"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn item2_templates_run_as_is_and_aliases_cover_the_whole_key() {
    let env = Env::unlocked();
    let out = env.cli_stdin(
        &[
            "set",
            "prod/db",
            "--template",
            "database",
            "--field",
            "host=db.prod",
            "--field",
            "port=5432",
            "--field",
            "username=app",
            "--field",
            "database=main",
            "--field",
            "password",
        ],
        Some(b"prod-pass-98765"),
    );
    assert_ok(&out, "template set");
    let out = env.cli(&[
        "run",
        "-k",
        "prod/db",
        "--",
        "sh",
        "-c",
        "echo $DB_HOST $DB_USER $DB_PASSWORD",
    ]);
    assert_eq!(stdout(&out), "db.prod app [REDACTED:DB_PASSWORD]\n");
    env.write_policy(
        "version: 1\nenv_aliases:\n  prod: [{pattern: \"db/*\", target: \"prod/db/*\"}]\n",
    );
    env.apply_policy();
    let out = env.cli(&[
        "run",
        "--env",
        "prod",
        "-k",
        "db",
        "--",
        "sh",
        "-c",
        "echo $DB_HOST",
    ]);
    assert_eq!(stdout(&out), "db.prod\n", "{}", stderr(&out));
    // A template update keeps bindings of one's own.
    let out = env.cli(&["set", "prod/db", "--binding", "PGHOST=host"]);
    assert_ok(&out, "own binding");
    let out = env.cli_stdin(
        &[
            "set",
            "prod/db",
            "--template",
            "database",
            "--field",
            "host=db.prod",
            "--field",
            "port=5432",
            "--field",
            "username=app",
            "--field",
            "database=main",
            "--field",
            "password",
        ],
        Some(b"rotated-pass-1"),
    );
    assert_ok(&out, "the template again");
    let meta = json(&env.cli(&["get", "prod/db", "--show-metadata", "--json"]));
    assert_eq!(
        meta["bindings"],
        serde_json::json!([{"env": "PGHOST", "field": "host"}])
    );
}

#[test]
fn item3_a_failed_start_shows_the_daemons_own_error() {
    let env = Env::new();
    env.write_config("idle_timeout: 1h\nidle_timout: 2h\n");
    let mut cmd = env.command(&["status"]);
    cmd.env_remove("SECRETCTL_NO_AUTOSTART");
    let out = run(cmd, None);
    assert_code(&out, 6, "status with a bad config");
    let err = stderr(&out);
    assert!(
        err.contains("unknown field `idle_timout`") && err.contains("line 2"),
        "{err}"
    );
    assert_eq!(err.matches("unknown field").count(), 1, "said once: {err}");
}

#[test]
fn item4_daemon_stop_and_restart_read_the_config_again() {
    let env = Env::new();
    let autostart = |args: &[&str]| {
        let mut c = env.command(args);
        c.env_remove("SECRETCTL_NO_AUTOSTART")
            .env("SECRETCTL_PASSWORD", PASSWORD);
        run(c, None)
    };
    assert_ok(
        &autostart(&[
            "init",
            "--kdf-memory",
            "1",
            "--kdf-iterations",
            "1",
            "--kdf-parallelism",
            "1",
        ]),
        "init (autostarts)",
    );
    env.write_config("idle_timeout: 20m\n");
    let out = autostart(&["daemon", "restart"]);
    assert_ok(&out, "daemon restart");
    assert!(stdout(&out).contains("locked"), "{}", stdout(&out));
    assert_ok(&autostart(&["unlock"]), "unlock");
    let st = json(&env.cli(&["status", "--json"]));
    assert_eq!(
        st["idle_timeout_secs"], 1200,
        "the new config.yaml is in force"
    );
    let out = autostart(&["daemon", "stop"]);
    assert_ok(&out, "daemon stop");
    assert_code(&env.cli(&["status"]), 6, "stopped");
    let out = env.cli(&["daemon", "status", "--json"]);
    assert_eq!(json(&out)["running"], false);
}

#[cfg(target_os = "linux")]
#[test]
fn item5_service_install_without_a_user_bus_changes_nothing() {
    let env = Env::unlocked();
    let cfg = env.dir.path().join("xdg-config");
    let empty_runtime = env.dir.path().join("no-runtime");
    std::fs::create_dir_all(&empty_runtime).unwrap();
    let mut cmd = env.command(&["service", "install"]);
    cmd.env("XDG_CONFIG_HOME", &cfg)
        .env("XDG_RUNTIME_DIR", &empty_runtime)
        .env("HOME", env.dir.path())
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    let out = run(cmd, None);
    assert_code(&out, 1, "install without a bus");
    assert!(
        stderr(&out).contains("nothing was installed"),
        "{}",
        stderr(&out)
    );
    assert!(
        !cfg.join("systemd/user/secretctld.socket").exists(),
        "no unit left behind"
    );
    assert!(env.status().is_ok(), "the running daemon was not stopped");
    // The units carry the non-default locations.
    let mut print = env.command(&["service", "install", "--print"]);
    print
        .env("HOME", env.dir.path())
        .env("XDG_CONFIG_HOME", &cfg);
    let out = run(print, None);
    assert_ok(&out, "print");
    assert!(
        stdout(&out).contains(&format!("ListenStream={}", env.socket.display())),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains(&format!("SECRETCTL_HOME={}", env.home.display())));
}

#[test]
fn item6_a_short_master_password_is_refused_and_a_weak_one_warned() {
    let env = Env::new();
    let mut env = env;
    env.start();
    let init = |pw: &str| {
        let mut c = env.command(&[
            "init",
            "--kdf-memory",
            "1",
            "--kdf-iterations",
            "1",
            "--kdf-parallelism",
            "1",
        ]);
        c.env("SECRETCTL_PASSWORD", pw);
        run(c, None)
    };
    let out = init("abc");
    assert_code(&out, 2, "3 characters");
    assert!(stderr(&out).contains("at least 8"), "{}", stderr(&out));
    let out = init("password1");
    assert_ok(&out, "weak but long enough");
    assert!(stderr(&out).contains("weak"), "{}", stderr(&out));
}

#[test]
fn item7_a_command_without_double_dash_is_explained() {
    let env = Env::unlocked();
    env.set("k", "value-77777777");
    let out = env.cli(&["run", "-k", "k", "true"]);
    assert_code(&out, 2, "run without --");
    assert!(
        stderr(&out).contains("after --") && stderr(&out).contains("'true'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn item8_only_sensitive_values_are_redacted() {
    let env = Env::unlocked();
    let out = env.cli_stdin(
        &[
            "set",
            "svc",
            "--field",
            "user=app",
            "--field",
            "pass",
            "--sensitive",
            "pass",
            "--binding",
            "SVC_USER=user",
            "--binding",
            "SVC_PASS=pass",
        ],
        Some(b"svc-pass-5555"),
    );
    assert_ok(&out, "set svc");
    let out = env.cli(&[
        "run",
        "-k",
        "svc",
        "--",
        "sh",
        "-c",
        "echo happy application $SVC_PASS",
    ]);
    assert_eq!(stdout(&out), "happy application [REDACTED:SVC_PASS]\n");
    let out = env.cli_stdin(&["set", "pin"], Some(b"1"));
    assert!(
        stderr(&out).contains("the value of 'pin' is only 1 byte"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn item9_durations_read_as_written_and_timeouts_explain_themselves() {
    let env = Env::unlocked();
    env.set("k", "value-99999999");
    assert_ok(&env.cli(&["lock"]), "lock");
    let out = env.cli_with_password(&["unlock", "--timeout", "40d"]);
    assert_code(&out, 2, "too long");
    assert!(
        stderr(&out).contains("40d is longer than the allowed 30d"),
        "{}",
        stderr(&out)
    );
    let out = env.cli_with_password(&["unlock", "--timeout", "0s"]);
    assert_code(&out, 2, "zero");
    assert_ok(&env.cli_with_password(&["unlock"]), "unlock");
    let out = env.cli(&["run", "--timeout", "1s", "-k", "k", "--", "sleep", "30"]);
    assert_code(&out, 124, "timed out");
    assert!(
        stderr(&out).contains("ran longer than --timeout 1s"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn item11_man_pages_for_every_command() {
    let env = Env::new();
    let dir = env.dir.path().join("man1");
    let out = env.cli(&["man", "--dir", dir.to_str().unwrap()]);
    assert_ok(&out, "man --dir");
    for page in [
        "secretctl.1",
        "secretctl-init.1",
        "secretctl-run.1",
        "secretctl-audit-verify.1",
    ] {
        assert!(dir.join(page).exists(), "{page}");
    }
}

#[test]
fn item12_policy_check_tells_the_truth() {
    let env = Env::unlocked();
    env.write_policy("version: 1\nallowed_commands: [env, ls]\n");
    let out = env.cli(&["policy", "check"]);
    assert_ok(&out, "policy check");
    assert!(stdout(&out).contains("always denied"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("'env' has no effect"),
        "{}",
        stderr(&out)
    );
    env.write_policy("version: 1\ntrusted_directories: [bin]\n");
    let out = env.cli(&["policy", "check"]);
    assert_code(&out, 1, "relative trusted dir");
    assert!(
        stderr(&out).contains("not an absolute path"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn item13_small_things_explain_themselves() {
    let env = Env::unlocked();
    let out = env.cli_stdin(&["set", "a//b"], Some(b"value-13131313"));
    assert_code(&out, 2, "a//b");
    let out = env.cli(&["audit", "list", "--action", "frob"]);
    assert_code(&out, 2, "unknown action");
    assert!(
        stderr(&out).contains("unknown action 'frob'") && stderr(&out).contains("unlock"),
        "{}",
        stderr(&out)
    );
    let out = env.cli(&["audit", "list", "--source", "agent"]);
    assert_code(&out, 2, "agent is not a source");
    assert_ok(
        &env.cli(&["audit", "list", "--caller", "agent"]),
        "caller filter",
    );
    let out = env.cli(&["--json", "run", "-k", "x", "--", "true"]);
    assert_code(&out, 2, "--json on run");
    assert!(
        stderr(&out).contains("--json does nothing"),
        "{}",
        stderr(&out)
    );
    assert_ok(&env.cli(&["lock"]), "lock");
    let out = env.cli(&["get", "a"]);
    assert_code(&out, 3, "locked");
    assert_eq!(
        stderr(&out).matches("secretctl unlock").count(),
        1,
        "{}",
        stderr(&out)
    );
}

#[test]
fn item14_doctor_checks_the_setup() {
    let env = Env::unlocked();
    let out = env.cli(&["doctor", "--json"]);
    assert_ok(&out, "doctor");
    let j = json(&out);
    assert_eq!(j["ok"], true);
    let names: Vec<&str> = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for n in [
        "data directory",
        "socket directory",
        "daemon",
        "versions",
        "vault",
        "policy",
        "service",
        "mcp",
        "caller",
    ] {
        assert!(names.contains(&n), "{n}: {names:?}");
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&env.home, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env.cli(&["doctor"]);
    assert_code(&out, 1, "an open home fails");
    assert!(stdout(&out).contains("chmod 700"), "{}", stdout(&out));
    std::fs::set_permissions(&env.home, std::fs::Permissions::from_mode(0o700)).unwrap();
}
