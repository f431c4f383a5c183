//! Foundation end to end: init, unlock once, CRUD through the CLI, locking,
//! integrity, crash safety, the socket's defences and autostart.

mod common;

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use secretctl_proto::v1::{FieldInput, SetRequest, VaultState};

#[test]
fn full_session() {
    let env = Env::unlocked();
    let token = "tok-full-session-5f3a9c";
    env.set("app/token", token);

    let out = env.cli(&["get", "app/token"]);
    assert_ok(&out, "get");
    assert_eq!(stdout(&out), token, "scripts get the exact bytes");

    let out = env.cli(&["list"]);
    assert_ok(&out, "list");
    assert_eq!(stdout(&out), "app/token\n");

    let status = json(&env.cli(&["status", "--json"]));
    assert_eq!(status["state"], "unlocked");
    assert_eq!(status["secret_count"], 1);
    assert_eq!(status["pid"], env.daemon_pid().unwrap());

    let pw = "pw-login-8d7e6f5a4b";
    let out = env.cli(&[
        "set",
        "web/login",
        "--template",
        "login",
        "--field",
        "username=alice",
        "--field",
        &format!("password={pw}"),
        "--tags",
        "web,prod",
        "--notes",
        "rotate monthly",
        "--url",
        "https://example.com/login",
    ]);
    assert_ok(&out, "set --template login");
    let out = env.cli(&["get", "web/login", "--field", "username"]);
    assert_eq!(stdout(&out), "alice");
    let meta = env.cli(&["get", "web/login", "--show-metadata", "--json"]);
    assert_ok(&meta, "get --show-metadata");
    let text = stdout(&meta);
    assert!(
        text.contains("alice") && text.contains("rotate monthly"),
        "{text}"
    );
    assert!(
        !text.contains(pw),
        "metadata mode printed a sensitive value: {text}"
    );

    let list = json(&env.cli(&["list", "--json", "--tag", "prod"]));
    let keys: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].clone())
        .collect();
    assert_eq!(keys, ["web/login"]);

    assert_ok(&env.cli(&["lock"]), "lock");
    let out = env.cli(&["get", "app/token"]);
    assert_code(&out, 3, "get while locked");
    assert!(
        stderr(&out).contains("secretctl unlock"),
        "{}",
        stderr(&out)
    );

    assert_ok(&env.cli_with_password(&["unlock"]), "unlock");
    assert_eq!(stdout(&env.cli(&["get", "app/token"])), token);

    assert_ok(&env.cli(&["delete", "app/token", "--force"]), "delete");
    assert_code(&env.cli(&["get", "app/token"]), 4, "get after delete");
    env.assert_log_clean(&[token, pw, PASSWORD, "alice"]);
}

#[test]
fn wrong_password_stays_locked() {
    let env = Env::unlocked();
    assert_ok(&env.cli(&["lock"]), "lock");
    let mut cmd = env.command(&["unlock"]);
    cmd.env("SECRETCTL_PASSWORD", "not the password");
    let out = run(cmd, None);
    assert_code(&out, 1, "unlock with a wrong password");
    assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));
    assert_eq!(env.status().unwrap().state, VaultState::Locked as i32);
    assert_ok(&env.cli_with_password(&["unlock"]), "unlock");
    assert_eq!(env.status().unwrap().state, VaultState::Unlocked as i32);
    env.assert_log_clean(&[PASSWORD, "not the password"]);
}

#[test]
fn missing_key_is_exit_4() {
    let env = Env::unlocked();
    let out = env.cli(&["get", "no/such/key"]);
    assert_code(&out, 4, "get missing");
    assert!(stderr(&out).contains("no/such/key"), "{}", stderr(&out));
    assert_code(
        &env.cli(&["delete", "no/such/key", "--force"]),
        4,
        "delete missing",
    );
}

#[test]
fn bad_input_is_refused_and_nothing_stored() {
    let env = Env::unlocked();
    for bad in ["bad key", "../up", ".hidden", "dir/", "-x", "a..b"] {
        let out = env.cli_stdin(&["set", bad], Some(b"value-123"));
        assert_code(&out, 2, &format!("set {bad:?}"));
    }
    let big = vec![b'x'; 1024 * 1024 + 1];
    assert_code(
        &env.cli_stdin(&["set", "big"], Some(&big)),
        2,
        "oversize value",
    );
    assert_code(
        &env.cli_stdin(&["set", "empty"], Some(b"")),
        2,
        "empty value",
    );
    assert_code(
        &env.cli_stdin(&["set", "t", "--tags", "has space"], Some(b"v-1234")),
        2,
        "bad tag",
    );
    assert_code(
        &env.cli_stdin(&["set", "u", "--url", "ftp://x"], Some(b"v-1234")),
        2,
        "bad url",
    );

    // The daemon validates on its own, whatever a client sends.
    let codes = env.with_client(async |c| {
        let mut out = vec![];
        for (key, value) in [
            ("bad key", &b"v"[..]),
            ("k\0", b"v"),
            ("ok", b"a\0b"),
            ("ok", b""),
        ] {
            let req = SetRequest {
                key: key.into(),
                fields: vec![FieldInput::new("value", value.to_vec())],
                ..Default::default()
            };
            out.push(c.vault().set(req).await.unwrap_err().code());
        }
        out
    });
    assert!(
        codes.iter().all(|c| *c == tonic::Code::InvalidArgument),
        "{codes:?}"
    );

    let out = env.cli(&["list"]);
    assert_ok(&out, "list");
    assert_eq!(stdout(&out), "", "nothing may be stored");
    assert_eq!(env.status().unwrap().secret_count, 0);
}

fn tamper(env: &Env, f: impl FnOnce(&secretctld::store::Store)) {
    let store = secretctld::store::Store::open(&env.home.join("vault.redb"))
        .unwrap()
        .unwrap();
    f(&store);
}

#[test]
fn tampered_ciphertext_is_an_integrity_error() {
    let mut env = Env::unlocked();
    env.set("victim", "value-tamper-1234");
    env.set("other", "value-other-5678");
    env.stop();
    tamper(&env, |s| {
        let mut rec = s.get("victim").unwrap().unwrap();
        rec.fields[0].value.as_mut().unwrap().ciphertext[0] ^= 0x01;
        s.put_raw("victim", &rec).unwrap();
    });
    env.start();
    assert_ok(&env.cli_with_password(&["unlock"]), "unlock");
    let out = env.cli(&["get", "victim"]);
    assert_code(&out, 1, "get tampered");
    assert!(stderr(&out).contains("integrity"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("value-tamper"));
    assert_eq!(stdout(&env.cli(&["get", "other"])), "value-other-5678");
    assert!(env.status().is_ok(), "daemon must survive");
}

#[test]
fn swapped_records_and_ciphertexts_all_fail() {
    let mut env = Env::unlocked();
    env.set("a", "value-a-11111111");
    env.set("b", "value-b-22222222");
    env.set("c", "value-c-33333333");
    env.set("d", "value-d-44444444");
    env.stop();
    tamper(&env, |s| {
        // Whole records: their seals name their key.
        let (a, b) = (s.get("a").unwrap().unwrap(), s.get("b").unwrap().unwrap());
        s.put_raw("a", &b).unwrap();
        s.put_raw("b", &a).unwrap();
        // Only the sealed values: their associated data names key and field.
        let (mut c, mut d) = (s.get("c").unwrap().unwrap(), s.get("d").unwrap().unwrap());
        std::mem::swap(&mut c.fields[0].value, &mut d.fields[0].value);
        s.put_raw("c", &c).unwrap();
        s.put_raw("d", &d).unwrap();
    });
    env.start();
    assert_ok(&env.cli_with_password(&["unlock"]), "unlock");
    for (key, want) in [
        ("a", "damaged"),
        ("b", "damaged"),
        ("c", "integrity"),
        ("d", "integrity"),
    ] {
        let out = env.cli(&["get", key]);
        assert_code(&out, 1, &format!("get swapped {key}"));
        assert!(stderr(&out).contains(want), "{key}: {}", stderr(&out));
        assert!(!stdout(&out).contains("value-"));
    }
    // The listing goes on, naming what is damaged.
    let out = env.cli(&["list"]);
    assert_code(&out, 1, "list with damaged records");
    assert!(
        stdout(&out).contains("a  (DAMAGED)") && stdout(&out).contains("c\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_flipped_sensitive_flag_is_caught_before_an_agent_could_read_the_value() {
    let mut env = Env::unlocked();
    let out = env.cli_stdin(
        &[
            "set",
            "db",
            "--field",
            "user=app",
            "--field",
            "password",
            "--sensitive",
            "password",
        ],
        Some(b"pw-sensitive-9876"),
    );
    assert_ok(&out, "set db");
    env.stop();
    tamper(&env, |s| {
        let mut r = s.get("db").unwrap().unwrap();
        for f in &mut r.fields {
            f.sensitive = false;
        }
        s.put_raw("db", &r).unwrap();
    });
    env.start();
    assert_ok(&env.cli_with_password(&["unlock"]), "unlock");
    // get --show-metadata would print non-sensitive values: it refuses.
    let out = env.cli(&["get", "db", "--show-metadata"]);
    assert_code(&out, 1, "metadata of a damaged record");
    assert!(stderr(&out).contains("altered"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("pw-sensitive"));
    let r = env.with_client(async |c| {
        c.agent()
            .get_field(secretctl_proto::v1::AgentGetFieldRequest {
                key: "db".into(),
                field: "password".into(),
            })
            .await
    });
    let e = r.expect_err("secret_get_field of a damaged record");
    assert!(!e.message().contains("pw-sensitive"));
    assert_eq!(e.code(), tonic::Code::DataLoss, "{e:?}");
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    let mut env = Env::unlocked();
    let mut acked: Vec<String> = Vec::new();
    for round in 0..3 {
        let pid = env.daemon_pid().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::scope(|s| {
            let env = &env;
            s.spawn(move || {
                for i in 0.. {
                    let key = format!("burst/r{round}-{i}");
                    let out =
                        env.cli_stdin(&["set", &key], Some(format!("v-{key}-value").as_bytes()));
                    if !out.status.success() || tx.send(key).is_err() {
                        return;
                    }
                }
            });
            // Kill once a few writes were acknowledged, mid-burst.
            for _ in 0..(5 + round * 3) {
                acked.push(rx.recv().unwrap());
            }
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            acked.extend(rx.iter());
        });
        env.kill9();
        env.start();
        assert_ok(&env.cli_with_password(&["unlock"]), "unlock after crash");
        for key in &acked {
            let out = env.cli(&["get", key]);
            assert_ok(&out, &format!("acknowledged {key} after round {round}"));
            assert_eq!(stdout(&out), format!("v-{key}-value"));
        }
    }
}

#[test]
fn another_uid_is_refused() {
    let env = Env::unlocked();
    if !env.expose_socket_to_others("another_uid_is_refused") {
        return;
    }
    // The CLI of another uid refuses the socket itself: not its own.
    let out = env.status_as_nobody();
    assert_code(&out, 6, "status as nobody");
    assert!(
        stderr(&out).contains("the socket is owned by uid 0, not by you (uid 65534)"),
        "{}",
        stderr(&out)
    );
    // A client that does not check is closed by the daemon unread.
    assert_eq!(env.dial_as_nobody(), "closed");
    assert!(
        env.log_text()
            .contains("refused connection from another uid"),
        "{}",
        env.log_text()
    );
    assert!(env.status().is_ok(), "our own uid is still served");
}

#[test]
fn open_socket_directory_is_refused() {
    let env = Env::new();
    let dir = env.socket.parent().unwrap();
    std::fs::DirBuilder::new().mode(0o755).create(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new(bin("secretctld"));
    env.apply(&mut cmd);
    // run() kills it and fails if the daemon starts anyway (a regression).
    let out = run(cmd, None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("chmod 700"), "{}", stderr(&out));
    assert!(!env.socket.exists());
}

#[test]
fn idle_lock_fires_and_status_does_not_keep_it_awake() {
    let env = Env::unlocked();
    assert_ok(&env.cli(&["lock"]), "lock");
    assert_ok(
        &env.cli_with_password(&["unlock", "--timeout", "1s"]),
        "unlock 1s",
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while env.status().unwrap().state == VaultState::Unlocked as i32 {
        assert!(Instant::now() < deadline, "idle lock never fired");
        std::thread::sleep(Duration::from_millis(20)); // polling interval
    }
    assert_code(&env.cli(&["list"]), 3, "list after idle lock");
}

#[test]
fn two_clis_autostart_one_daemon() {
    let env = Env::new();
    let spawn = || {
        let mut cmd = env.command(&["status", "--json"]);
        cmd.env_remove("SECRETCTL_NO_AUTOSTART");
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    // The autostarted daemon is stopped by `env`'s guard if this test fails.
    let (a, b) = (
        wait_output(a, CLI_LIMIT, "first status"),
        wait_output(b, CLI_LIMIT, "second status"),
    );
    assert_ok(&a, "first status");
    assert_ok(&b, "second status");
    let (pa, pb) = (
        json(&a)["pid"].as_u64().unwrap(),
        json(&b)["pid"].as_u64().unwrap(),
    );
    assert_eq!(pa, pb, "both CLIs must talk to one daemon");
    assert_eq!(json(&a)["state"], "uninitialized");

    // Stop the autostarted daemon and wait until it is gone.
    let pid = nix::unistd::Pid::from_raw(pa as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    wait_gone(pa as i32);
    assert!(env.status().is_err());
    assert!(!env.socket.exists(), "socket removed on shutdown");
}

#[test]
fn no_autostart_means_exit_6() {
    let env = Env::new();
    let out = env.cli(&["list"]);
    assert_code(&out, 6, "list without daemon");
    assert!(stderr(&out).contains("unreachable"), "{}", stderr(&out));
}

#[test]
fn malformed_config_is_a_startup_error_naming_the_line() {
    let env = Env::new();
    env.write_config("idle_timeout: 1h\nidle_timout: 2h\n");
    let mut cmd = Command::new(bin("secretctld"));
    env.apply(&mut cmd);
    let out = run(cmd, None);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("config.yaml") && err.contains("line 2") && err.contains("idle_timout"),
        "{err}"
    );
}

#[test]
fn lock_without_a_daemon_is_fine_and_short_values_warn() {
    let env = Env::new();
    let out = env.cli(&["lock"]);
    assert_ok(&out, "lock with no daemon");
    assert!(stdout(&out).contains("locked"));

    let mut env = env;
    env.start();
    env.init();
    let out = env.cli_stdin(&["set", "pin"], Some(b"1234"));
    assert_ok(&out, "short value");
    assert!(
        stderr(&out).contains("the value of 'pin' is only 4 bytes"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("1234"),
        "the warning must not print the value"
    );
}

#[test]
fn unlock_timeout_longer_than_max_idle_timeout_is_refused() {
    let mut env = Env::new();
    env.write_config("idle_timeout: 10m\nmax_idle_timeout: 2h\n");
    env.start();
    env.init();
    assert_eq!(
        env.status().unwrap().idle_timeout_secs,
        600,
        "the configured default"
    );
    assert_ok(&env.cli(&["lock"]), "lock");
    let out = env.cli_with_password(&["unlock", "--timeout", "3h"]);
    assert_code(&out, 2, "unlock --timeout 3h over a 2h maximum");
    assert!(
        stderr(&out).contains("max_idle_timeout"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.status().unwrap().state, VaultState::Locked as i32);
    assert_ok(
        &env.cli_with_password(&["unlock", "--timeout", "2h"]),
        "unlock --timeout 2h",
    );
    assert_eq!(env.status().unwrap().idle_timeout_secs, 7200);
}

/// Unlocks are serialised, so concurrent wrong guesses cannot race the
/// failure counter: every one of them is counted.
#[test]
fn concurrent_wrong_unlocks_are_all_counted() {
    use secretctl_proto::client::Client;
    use secretctl_proto::v1::UnlockRequest;
    const GUESSES: u32 = 5; // all below the backoff threshold
    const { assert!(GUESSES <= secretctld::vault::FREE_ATTEMPTS) };
    let mut env = Env::new();
    env.start();
    // A KDF slow enough that unserialised guesses would overlap.
    let out = env.cli_with_password(&[
        "init",
        "--kdf-memory",
        "16",
        "--kdf-iterations",
        "1",
        "--kdf-parallelism",
        "1",
    ]);
    assert_ok(&out, "init");
    assert_ok(&env.cli(&["lock"]), "lock");
    let socket = env.socket.clone();
    let codes = env.with_client(async |_| {
        let guesses: Vec<_> = (0..GUESSES)
            .map(|i| {
                let socket = socket.clone();
                tokio::spawn(async move {
                    // One connection per guess, as separate attackers would.
                    let c = Client::new(&socket);
                    let req = UnlockRequest {
                        password: format!("wrong guess {i}").into_bytes(),
                        timeout_secs: 0,
                    };
                    c.daemon().unlock(req).await.unwrap_err().code()
                })
            })
            .collect();
        let mut codes = Vec::new();
        for g in guesses {
            codes.push(g.await.unwrap());
        }
        codes
    });
    assert!(
        codes.iter().all(|c| *c == tonic::Code::Unauthenticated),
        "{codes:?}"
    );
    env.stop();
    let vault = secretctld::vault::Vault::open(&env.home.join("vault.redb"))
        .unwrap()
        .unwrap();
    assert_eq!(
        vault.failed_unlocks().unwrap(),
        GUESSES,
        "concurrent guesses were lost from the failure counter"
    );
    drop(vault);
    // Five failures: the right password works once the backoff (1 s after
    // the last failure) has passed, and is refused with the reason before.
    env.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = env.cli_with_password(&["unlock"]);
        if out.status.success() {
            break;
        }
        assert!(
            stderr(&out).contains("too many failed unlock attempts"),
            "{}",
            stderr(&out)
        );
        assert!(Instant::now() < deadline, "backoff never ended");
        std::thread::sleep(Duration::from_millis(100)); // polling interval
    }
}
