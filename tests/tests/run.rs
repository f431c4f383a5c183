//! `secretctl run` end to end: the daemon resolves, spawns and redacts; the
//! CLI forwards stdin and signals and exits with the child's code.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use common::*;

const K: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

fn env_with_key() -> Env {
    let env = Env::unlocked();
    env.set("api/key", K);
    env
}

fn run(env: &Env, args: &[&str]) -> std::process::Output {
    let mut full = vec!["run"];
    full.extend_from_slice(args);
    env.cli(&full)
}

#[test]
fn exit_codes_propagate() {
    let env = env_with_key();
    assert_code(
        &run(&env, &["-k", "api/key", "--", "sh", "-c", "exit 42"]),
        42,
        "exit 42",
    );
    let out = run(&env, &["-k", "api/key", "--", "/no/such/command"]);
    assert_code(&out, 127, "not found");
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    let script = env.dir.path().join("noexec.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_code(
        &run(&env, &["-k", "api/key", "--", script.to_str().unwrap()]),
        126,
        "not executable",
    );
    assert_code(
        &run(&env, &["-k", "api/key", "--", "sh", "-c", "kill -9 $$"]),
        137,
        "killed by SIGKILL",
    );
    assert_code(
        &run(&env, &["-k", "no/such", "--", "true"]),
        4,
        "missing key",
    );
}

// Reads /proc to tell a zombie from a live process.
#[cfg(target_os = "linux")]
#[test]
fn timeout_kills_the_whole_group() {
    use std::time::Instant;
    let env = env_with_key();
    let pidfile = env.dir.path().join("grandchild.pid");
    let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
    let out = run(
        &env,
        &[
            "--timeout",
            "1s",
            "-k",
            "api/key",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    assert_code(&out, 124, "timeout");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() {
        // A zombie still answers kill(0): check its state too.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if state.split_whitespace().nth(2) == Some("Z") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "grandchild {pid} survived the timeout"
        );
        std::thread::sleep(Duration::from_millis(20)); // polling interval
    }
}

#[test]
fn stdin_passes_through() {
    let env = env_with_key();
    let out = env.cli_stdin(
        &["run", "-k", "api/key", "--", "cat"],
        Some(b"hello from stdin\n"),
    );
    assert_ok(&out, "cat");
    assert_eq!(stdout(&out), "hello from stdin\n");
}

#[test]
fn sigint_is_forwarded() {
    let env = env_with_key();
    let mut cmd = env.command(&[
        "run",
        "-k",
        "api/key",
        "--",
        "sh",
        "-c",
        "trap 'echo got-int; exit 7' INT; echo ready; while :; do sleep 0.05; done",
    ]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = ChildGuard::new(cmd.spawn().unwrap());
    let lines = TimedLines::new(child.child().stdout.take().unwrap());
    let limit = Duration::from_secs(30);
    assert_eq!(lines.next(limit).as_deref(), Some("ready"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let rest = lines.rest(limit);
    let status = child.wait(limit, "secretctl run after SIGINT");
    assert_eq!(rest, ["got-int"]);
    assert_eq!(status.code(), Some(7));
}

// GNU `base64 -w0`.
#[cfg(target_os = "linux")]
#[test]
fn every_encoding_is_redacted() {
    let env = Env::unlocked();
    let value = "s3cr3t \"v@l/ue\" 0123456789";
    env.set("enc", value);
    let pct = "s3cr3t%20%22v%40l%2Fue%22%200123456789";
    let json = "s3cr3t \\\"v@l/ue\\\" 0123456789";
    let script = format!(
        r#"printf 'raw:%s\n' "$ENC"
printf '%s' "$ENC" | base64 -w0; echo
printf 'x%s' "$ENC" | base64 -w0; echo
printf 'xy%s' "$ENC" | base64 -w0; echo
printf '%s' "$ENC" | base64 -w0 | tr '+/' '-_' | tr -d '='; echo
printf '%s' "$ENC" | od -An -v -tx1 | tr -d ' \n'; echo
printf '%s' "$ENC" | od -An -v -tx1 | tr -d ' \n' | tr a-f A-F; echo
printf '%s\n' '{pct}'
printf '%s\n' '{json}'
printf 'split:%.10s' "$ENC"; sleep 0.2; printf '%s\n' "${{ENC#??????????}}"
"#
    );
    let out = run(&env, &["-k", "enc", "--", "sh", "-c", &script]);
    assert_ok(&out, "encodings");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 10, "{text}");
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line.contains("[REDACTED:ENC]"),
            "line {i} not redacted: {line}"
        );
        let visible = line.replace("[REDACTED:ENC]", "");
        // At most a partial base64 group survives at either end.
        assert!(
            visible
                .trim_start_matches("raw:")
                .trim_start_matches("split:")
                .len()
                <= 8,
            "line {i}: {line}"
        );
    }
    assert!(
        !text.contains(value) && !text.contains("0123456789"),
        "{text}"
    );
    env.assert_log_clean(&[value, pct]);
}

// Reads the daemon's memory from /proc.
#[cfg(target_os = "linux")]
#[test]
fn large_output_is_redacted_with_flat_daemon_memory() {
    use std::io::Read;
    let env = env_with_key();
    let pid = env.daemon_pid().unwrap();
    let rss = |field: &str| -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    };
    let before = rss("VmRSS:");
    let script = r#"i=0; line="$(head -c 4000 /dev/zero | tr '\0' 'x')"
while [ $i -lt 25000 ]; do printf '%s %s\n' "$line" "$API_KEY"; i=$((i+1)); done"#;
    let mut cmd = env.command(&["run", "-k", "api/key", "--", "sh", "-c", script]);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = ChildGuard::new(cmd.spawn().unwrap());
    let mut out = child.child().stdout.take().unwrap();
    // Read on a helper thread so a stalled stream fails the test in time.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut total, mut markers, mut leaked) = (0usize, 0usize, false);
        let mut buf = vec![0u8; 1 << 16];
        let mut carry = Vec::new();
        loop {
            let n = out.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
            carry.extend_from_slice(&buf[..n]);
            // Scan whole lines only, so matches are never split.
            if let Some(end) = carry.iter().rposition(|&b| b == b'\n') {
                let chunk: Vec<u8> = carry.drain(..=end).collect();
                let s = String::from_utf8_lossy(&chunk);
                markers += s.matches("[REDACTED:API_KEY]").count();
                leaked |= s.contains(K);
            }
        }
        let _ = tx.send((total, markers, leaked));
    });
    let limit = Duration::from_secs(300);
    let (total, markers, leaked) = rx
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("100 MB of output did not arrive within {limit:?}"));
    assert!(child.wait(limit, "secretctl run").success());
    assert!(total > 100_000_000, "only {total} bytes");
    assert_eq!(markers, 25_000);
    assert!(!leaked, "a value leaked");
    let peak = rss("VmHWM:");
    assert!(
        peak < before + 64 * 1024,
        "daemon peak RSS {peak} KiB vs {before} KiB before"
    );
}

#[test]
fn env_name_rules() {
    let env = Env::unlocked();
    for (k, v) in [
        ("1abc", "v-11111111"),
        ("a-b", "v-22222222"),
        ("a.b", "v-33333333"),
        ("ld_preload", "v-44444444"),
        ("path", "v-55555555"),
    ] {
        env.set(k, v);
    }
    let cases = [
        (vec!["-k", "1abc"], "not a valid environment name"),
        (vec!["-k", "a-b", "-k", "a.b"], "both map to A_B"),
        (vec!["-k", "ld_preload"], "deny list"),
        (vec!["-k", "path"], "deny list"),
    ];
    for (keys, msg) in cases {
        let mut args = keys.clone();
        args.extend(["--", "true"]);
        let out = run(&env, &args);
        assert_code(&out, 2, &format!("{keys:?}"));
        assert!(stderr(&out).contains(msg), "{keys:?}: {}", stderr(&out));
    }
    let out = run(
        &env,
        &[
            "-k",
            "1abc",
            "--env-prefix",
            "X_",
            "--",
            "sh",
            "-c",
            "test -n \"$X_1ABC\"",
        ],
    );
    assert_ok(&out, "prefix makes the name valid");
}

#[test]
fn globs_and_aliases() {
    let env = Env::unlocked();
    for (k, v) in [
        ("dev/db/host", "devhost-1111"),
        ("prod/db/host", "prodhost-2222"),
        ("dev/db/nested/x", "nested-3333"),
    ] {
        env.set(k, v);
    }
    env.write_policy(
        "version: 1\nenv_aliases:\n  dev: [{pattern: \"db/*\", target: \"dev/db/*\"}]\n  prod: [{pattern: \"db/*\", target: \"prod/db/*\"}]\n",
    );
    env.apply_policy();
    let check = r#"[ "$DB_HOST" = "$1" ] && echo match; [ -z "$DB_NESTED_X" ] && echo no-nested"#;
    for (alias, expect) in [("dev", "devhost-1111"), ("prod", "prodhost-2222")] {
        let out = run(
            &env,
            &[
                "--env", alias, "-k", "db/*", "--", "sh", "-c", check, "sh", expect,
            ],
        );
        assert_ok(&out, alias);
        assert_eq!(stdout(&out), "match\nno-nested\n", "{alias}");
    }
    let out = run(
        &env,
        &[
            "-k",
            "dev/**",
            "--",
            "sh",
            "-c",
            "[ -n \"$DEV_DB_NESTED_X\" ] && echo deep",
        ],
    );
    assert_eq!(stdout(&out), "deep\n");
    let out = run(&env, &["--env", "staging", "-k", "db/*", "--", "true"]);
    assert_code(&out, 1, "unknown alias");
    assert!(stderr(&out).contains("staging"), "{}", stderr(&out));
}

#[test]
fn pty_keeps_colour_and_redacts() {
    let env = env_with_key();
    let out = run(
        &env,
        &[
            "--pty",
            "-k",
            "api/key",
            "--",
            "sh",
            "-c",
            r#"[ -t 1 ] && printf '\033[31mred %s\033[0m\n' "$API_KEY""#,
        ],
    );
    assert_ok(&out, "pty run");
    let text = stdout(&out);
    assert!(
        text.contains("\x1b[31mred [REDACTED:API_KEY]\x1b[0m"),
        "{text:?}"
    );
    assert!(!text.contains(K));
    env.assert_log_clean(&[K]);
}

#[test]
fn no_redact_passes_output_through() {
    let env = env_with_key();
    let out = run(
        &env,
        &[
            "--no-redact",
            "-k",
            "api/key",
            "--",
            "sh",
            "-c",
            "printf %s \"$API_KEY\"",
        ],
    );
    assert_eq!(stdout(&out), K);
    env.assert_log_clean(&[K]);
}

/// `SECRETCTL_*` never reaches a child: the CLI does not send its own, and
/// the daemon drops any a client sends.
#[test]
fn secretctl_variables_never_reach_the_child() {
    let env = env_with_key();
    let out = run(&env, &["-k", "api/key", "--", "sh", "-c", "env"]);
    assert_ok(&out, "run env");
    let text = stdout(&out);
    assert!(text.contains("PATH="), "{text}");
    assert!(!text.contains("SECRETCTL_"), "{text}");

    use secretctl_proto::v1::{EnvVar, RunInput, RunStart, run_input, run_output};
    let cwd = env.dir.path().to_str().unwrap().to_string();
    let (stdout, code) = env.with_client(async |c| {
        let var = |n: &str, v: &str| EnvVar {
            name: n.into(),
            value: v.as_bytes().to_vec(),
        };
        let start = RunStart {
            key_patterns: vec!["api/key".into()],
            argv: vec!["sh".into(), "-c".into(), "env".into()],
            cwd,
            env: vec![
                var("PATH", "/usr/bin:/bin"),
                var("SECRETCTL_PASSWORD", "not-a-real-password"),
                var("SECRETCTL_SOCKET", "/nonexistent"),
                var("KEEP_ME", "1"),
            ],
            timeout_ms: 30_000,
            ..Default::default()
        };
        let input = vec![
            RunInput {
                kind: Some(run_input::Kind::Start(start)),
            },
            RunInput {
                kind: Some(run_input::Kind::StdinEof(true)),
            },
        ];
        let mut stream = c
            .runner()
            .run(tonic::codegen::tokio_stream::iter(input))
            .await
            .expect("run")
            .into_inner();
        let (mut out, mut code) = (Vec::new(), None);
        while let Some(msg) = stream.message().await.expect("run output") {
            match msg.kind {
                Some(run_output::Kind::Stdout(b)) => out.extend_from_slice(&b),
                Some(run_output::Kind::Exit(e)) => code = Some(e.code),
                _ => {}
            }
        }
        (String::from_utf8(out).unwrap(), code)
    });
    assert_eq!(code, Some(0));
    assert!(stdout.contains("KEEP_ME=1"), "{stdout}");
    assert!(
        !stdout.contains("SECRETCTL_"),
        "the daemon passed a client's SECRETCTL_* on: {stdout}"
    );
}
