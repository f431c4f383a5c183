//! Integrity and resilience (issue 11): private files never followed or
//! trusted when open to others, bounded inputs, connection limits, a CLI
//! that never waits for ever and never talks to someone else's socket, and
//! a daemon that locks first whenever it stops.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// Polls `cond` until it holds, failing the test after `limit`.
fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(5);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(pause); // polling interval
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The daemon binary with this env, run to completion (it must refuse to
/// start; `run` kills it and fails the test if it starts anyway).
fn daemon_start_refused(env: &Env) -> std::process::Output {
    let mut cmd = Command::new(bin("secretctld"));
    env.apply(&mut cmd);
    let out = run(cmd, None);
    assert!(!out.status.success(), "secretctld started");
    out
}

#[test]
fn an_open_or_foreign_data_directory_is_refused() {
    let env = Env::new();
    std::fs::DirBuilder::new()
        .mode(0o777)
        .create(&env.home)
        .unwrap();
    chmod(&env.home, 0o777);
    let out = daemon_start_refused(&env);
    let err = stderr(&out);
    assert!(
        err.contains("data directory")
            && err.contains(&format!("chmod 700 {}", env.home.display())),
        "{err}"
    );
    assert!(!env.socket.exists());

    // The CLI refuses before it writes its log there or starts anything.
    let mut cmd = env.command(&["status"]);
    cmd.env_remove("SECRETCTL_NO_AUTOSTART");
    let out = run(cmd, None);
    assert_code(&out, 1, "autostart into an open home");
    assert!(stderr(&out).contains("chmod 700"), "{}", stderr(&out));
    assert!(!env.home.join("secretctld.log").exists());

    // A symlinked home is refused too, whatever it points to.
    chmod(&env.home, 0o700);
    let link_env = Env::new();
    std::os::unix::fs::symlink(&env.home, &link_env.home).unwrap();
    let out = daemon_start_refused(&link_env);
    assert!(stderr(&out).contains("is a symlink"), "{}", stderr(&out));
}

#[test]
fn symlinked_files_are_never_followed() {
    // The instance lock next to the socket.
    let env = Env::new();
    env.make_home();
    let run_dir = env.socket.parent().unwrap();
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(run_dir)
        .unwrap();
    let victim = env.dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let mut lock = env.socket.as_os_str().to_owned();
    lock.push(".lock");
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    let out = daemon_start_refused(&env);
    assert!(stderr(&out).contains("lock file"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

    // The vault file.
    let env = Env::new();
    env.make_home();
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, env.home.join("vault.redb")).unwrap();
    let out = daemon_start_refused(&env);
    assert!(
        stderr(&out).contains("vault.redb is a symlink"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

    // config.yaml.
    let env = Env::new();
    env.make_home();
    std::os::unix::fs::symlink(&victim, env.home.join("config.yaml")).unwrap();
    let out = daemon_start_refused(&env);
    assert!(stderr(&out).contains("symlink"), "{}", stderr(&out));

    // The log an autostarting CLI appends to: a planted symlink must not
    // make it (or the daemon's stderr) write into someone else's file.
    let env = Env::new();
    env.make_home();
    std::os::unix::fs::symlink(&victim, env.home.join("secretctld.log")).unwrap();
    let mut cmd = env.command(&["status"]);
    cmd.env_remove("SECRETCTL_NO_AUTOSTART");
    let out = run(cmd, None);
    assert_code(&out, 1, "autostart with a symlinked log");
    assert!(stderr(&out).contains("is a symlink"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(!env.socket.exists(), "no daemon was started");
}

#[test]
fn deeply_nested_settings_are_refused_before_parsing() {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    // config.yaml (at most 64 KiB) is read at start.
    let env = Env::new();
    env.write_config(&format!("agent: {}\n", deep(30_000)));
    let out = daemon_start_refused(&env);
    assert!(
        stderr(&out).contains("nested deeper than"),
        "{}",
        stderr(&out)
    );

    // mcp-policy.yaml is checked (and applied) on request.
    let env = Env::unlocked();
    // mcp-policy.yaml may be 1 MiB.
    env.write_policy(&format!(
        "version: 1\nallowed_commands: {}\n",
        deep(400_000)
    ));
    let out = env.cli(&["policy", "check"]);
    assert_code(&out, 1, "policy check of a deep file");
    assert!(
        stderr(&out).contains("nested deeper than"),
        "{}",
        stderr(&out)
    );
    let out = env.cli(&["policy", "apply"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("nested deeper than"),
        "{}",
        stderr(&out)
    );
    assert!(env.status().is_ok(), "the daemon still answers");
}

#[test]
fn oversized_and_hostile_cli_inputs_are_refused_plainly() {
    let env = Env::unlocked();
    // A value over the limit is refused without reading it all.
    let big = vec![b'v'; 17 * 1024 * 1024];
    let out = env.cli_stdin(&["set", "big"], Some(&big));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("MiB"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));

    // An echoed key name is cut and its control characters escaped.
    let hostile = format!("\x1b]0;owned\x07\x1b[2J{}", "k".repeat(100_000));
    let out = env.cli(&["get", &hostile]);
    assert_code(&out, 2, "get of a hostile key name");
    let err = stderr(&out);
    assert!(!err.contains('\x1b') && !err.contains('\x07'), "{err:?}");
    assert!(err.contains("\\u{1b}"), "{err}");
    assert!(err.len() < 1000, "the echo is cut: {} bytes", err.len());
    assert!(env.status().is_ok());
}

/// A raw MCP session with the shim (under a wrapper process, see
/// `wrapped`): one JSON line in, lines out.
struct RawShim {
    child: ChildGuard,
    stdin: Option<std::process::ChildStdin>,
    lines: TimedLines,
}

impl RawShim {
    fn start(env: &Env) -> RawShim {
        let (sh, wrapper) = wrapped(&bin("secretctl-mcp"));
        let mut child = ChildGuard::new(
            Command::new(sh)
                .args(wrapper)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("SECRETCTL_SOCKET", &env.socket)
                .env("SECRETCTL_LOG", "info")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let stdin = child.child().stdin.take();
        let lines = TimedLines::new(child.child().stdout.take().unwrap());
        let mut shim = RawShim {
            child,
            stdin,
            lines,
        };
        shim.send(
            br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#,
        );
        assert_eq!(shim.next()["id"], 1);
        shim.send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        shim
    }

    fn send(&mut self, line: &[u8]) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    fn next(&self) -> Value {
        let line = self
            .lines
            .next(Duration::from_secs(60))
            .expect("the shim closed stdout");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("non-JSON on stdout: {line}"))
    }
}

#[test]
fn an_oversized_mcp_line_gets_a_json_rpc_error() {
    let env = Env::unlocked();
    let mut shim = RawShim::start(&env);
    let max = secretctl_proto::client::MAX_MCP_LINE;
    // 17 MiB: the id comes after the huge argument.
    let huge = format!(
        r#"{{"jsonrpc":"2.0","method":"tools/call","params":{{"name":"secret_exists","arguments":{{"key":"{}"}}}},"id":77}}"#,
        "k".repeat(17 * 1024 * 1024)
    );
    shim.send(huge.as_bytes());
    let reply = shim.next();
    assert_eq!(reply["id"], 77, "{reply}");
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    let msg = reply["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&format!("limit of {max} bytes")), "{msg}");
    // The session goes on.
    shim.send(br#"{"jsonrpc":"2.0","id":78,"method":"tools/list"}"#);
    let list = shim.next();
    assert_eq!(list["id"], 78, "{list}");
    assert!(list["result"]["tools"].is_array());
    drop(shim.stdin.take());
    shim.child.wait(Duration::from_secs(20), "shim after EOF");
}

/// Sends SIGCONT when dropped, so a failing test leaves no stopped daemon.
struct Resume(i32);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0), Signal::SIGCONT);
    }
}

fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

#[cfg(target_os = "linux")]
#[test]
fn a_stopped_daemon_fails_the_cli_in_bounded_time_and_says_so() {
    let env = Env::unlocked();
    let pid = env.daemon_pid().unwrap() as i32;
    let resume = Resume(pid);
    kill(Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
    wait_for(Duration::from_secs(10), "the daemon stopped", || {
        proc_state(pid) == Some('T')
    });
    // `run` fails the test if the CLI takes longer than CLI_LIMIT.
    let out = env.cli(&["status"]);
    assert_code(&out, 6, "status against a stopped daemon");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("secretctld (pid {pid}) did not answer")),
        "{err}"
    );
    assert!(err.contains("is stopped"), "{err}");
    assert!(err.contains(&format!("kill -CONT {pid}")), "{err}");
    drop(resume);
    assert_ok(&env.cli(&["status"]), "status once resumed");
}

#[test]
fn the_cli_never_talks_to_a_socket_of_another_uid() {
    let env = Env::new();
    if !require_root("the_cli_never_talks_to_a_socket_of_another_uid") {
        return;
    }
    chmod(env.dir.path(), 0o755);
    let theirs = env.dir.path().join("theirs");
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&theirs)
        .unwrap();
    let nobody = Some(nix::unistd::Uid::from_raw(65534));
    nix::unistd::chown(&theirs, nobody, None).unwrap();
    let log = theirs.join("received");
    let their_socket = theirs.join("s.sock");
    // A listener run by `nobody`, recording every byte it gets.
    let mut cmd = env.as_nobody(&peer_helper(), "sc-peer-as-nobody");
    cmd.arg("listen").arg(&their_socket).arg(&log);
    let mut listener = ChildGuard::new(spawn_child_retrying(cmd, "listener as nobody"));
    let ready = TimedLines::new(listener.child().stdout.take().unwrap());
    assert_eq!(
        ready.next(Duration::from_secs(30)).as_deref(),
        Some("ready")
    );

    let unlock_at = |socket: &Path| {
        let mut cmd = env.command(&["unlock"]);
        cmd.env("SECRETCTL_SOCKET", socket)
            .env("SECRETCTL_PASSWORD", PASSWORD);
        let out = run(cmd, None);
        assert_code(&out, 6, &format!("unlock at {}", socket.display()));
        stderr(&out)
    };
    // 1. Their socket in their directory.
    let err = unlock_at(&their_socket);
    assert!(err.contains("owned by uid 65534"), "{err}");
    // 2. In a directory everyone may write to (sticky, like /tmp).
    let shared = env.dir.path().join("shared");
    std::fs::DirBuilder::new().create(&shared).unwrap();
    chmod(&shared, 0o1777);
    std::fs::rename(&their_socket, shared.join("s.sock")).unwrap();
    let err = unlock_at(&shared.join("s.sock"));
    assert!(err.contains("chmod 700"), "{err}");
    // 3. Moved into our own private directory and made ours: the files
    // look right, only the listener's uid (SO_PEERCRED) gives it away.
    let ours = env.dir.path().join("ours");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&ours)
        .unwrap();
    let planted = ours.join("s.sock");
    std::fs::rename(shared.join("s.sock"), &planted).unwrap();
    nix::unistd::chown(&planted, Some(nix::unistd::geteuid()), None).unwrap();
    let err = unlock_at(&planted);
    assert!(err.contains("runs as uid 65534"), "{err}");

    // A last connection of our own sends one byte; the listener serves
    // one connection at a time, so once it is logged every earlier one is.
    let mut probe = UnixStream::connect(&planted).unwrap();
    probe.write_all(b"x").unwrap();
    drop(probe);
    let lines = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    wait_for(Duration::from_secs(30), "the probe logged", || {
        lines().last().map(String::as_str) == Some("conn 1")
    });
    let all = lines();
    let (earlier, _probe) = all.split_at(all.len() - 1);
    assert!(!earlier.is_empty(), "the CLI connected in step 3");
    assert!(
        earlier.iter().all(|l| l == "conn 0"),
        "the password (or anything) reached the listener: {all:?}"
    );
}

#[test]
fn a_deleted_socket_locks_and_stops_the_daemon() {
    let mut env = Env::unlocked();
    std::fs::remove_file(&env.socket).unwrap();
    let st = env
        .wait_daemon_exit(Duration::from_secs(30))
        .expect("the daemon stops once its socket is deleted");
    assert!(st.success(), "{st}");
    let log = env.log_text();
    let stop = log
        .find("reason=the socket file was deleted")
        .unwrap_or_else(|| panic!("{log}"));
    let locked = log[stop..].find("vault locked");
    assert!(locked.is_some(), "locked while stopping:\n{log}");
}

#[test]
fn a_replaced_socket_stops_the_daemon_which_leaves_the_new_one() {
    use std::os::unix::fs::MetadataExt;
    let mut env = Env::unlocked();
    std::fs::remove_file(&env.socket).unwrap();
    let _new = std::os::unix::net::UnixListener::bind(&env.socket).unwrap();
    let ino = std::fs::metadata(&env.socket).unwrap().ino();
    env.wait_daemon_exit(Duration::from_secs(30))
        .expect("the daemon stops once its socket is replaced");
    assert!(env.log_text().contains("the socket file was replaced"));
    assert_eq!(
        std::fs::metadata(&env.socket).map(|m| m.ino()).ok(),
        Some(ino),
        "the new socket is left alone"
    );
}

#[test]
fn sigterm_locks_at_once_and_ends_runs_within_a_bound() {
    let mut env = Env::unlocked();
    env.set("k", "value-0123456789");
    let marker = env.dir.path().join("started");
    // A command that ignores SIGTERM: only the kill after the grace ends it.
    let script = format!(
        "trap '' TERM; touch '{}'; while :; do sleep 1; done",
        marker.display()
    );
    let mut cmd = env.command(&["run", "-k", "k", "--", "sh", "-c", &script]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let run_cli = cmd.spawn().unwrap();
    wait_for(Duration::from_secs(60), "the run started", || {
        marker.exists()
    });
    let pid = env.daemon_pid().unwrap() as i32;
    kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    let out = wait_output(run_cli, Duration::from_secs(60), "the run at shutdown");
    assert_code(&out, 137, "a run that ignored SIGTERM");
    assert!(
        stderr(&out).contains("secretctld is shutting down: the run was ended"),
        "{}",
        stderr(&out)
    );
    env.wait_daemon_exit(Duration::from_secs(60))
        .expect("the daemon exits within its stop bound");
    let log = env.log_text();
    let stopping = log
        .find("stopping: locking the vault first")
        .expect("stop logged");
    let locked = stopping + log[stopping..].find("vault locked").expect("locked");
    let finished = log.rfind("run finished").expect("run end logged");
    assert!(
        locked < finished,
        "the key must be dropped before waiting for runs:\n{log}"
    );
}

#[test]
fn a_daemon_killed_mid_request_is_reported_as_gone() {
    let mut env = Env::unlocked();
    env.set("k", "value-0123456789");
    let marker = env.dir.path().join("started");
    let script = format!("touch '{}'; sleep 600", marker.display());
    let mut cmd = env.command(&["run", "-k", "k", "--", "sh", "-c", &script]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let run_cli = cmd.spawn().unwrap();
    wait_for(Duration::from_secs(60), "the run started", || {
        marker.exists()
    });
    let pid = env.daemon_pid().unwrap();
    env.kill9();
    let out = wait_output(
        run_cli,
        Duration::from_secs(60),
        "the run of a killed daemon",
    );
    assert_code(&out, 6, "a run whose daemon was killed");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("secretctld (pid {pid}) exited before answering")),
        "{err}"
    );
    assert!(!err.contains("uid"), "not a uid problem: {err}");
}

#[cfg(target_os = "linux")]
#[test]
fn inherited_descriptors_are_closed_at_start() {
    let mut env = Env::new();
    let leak = env.dir.path().join("leaked-descriptor");
    env.start_with(&format!("exec 7>>'{}'", leak.display()));
    env.init();
    let pid = env.daemon_pid().unwrap();
    let targets: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        !targets.iter().any(|t| t.contains("leaked-descriptor")),
        "{targets:?}"
    );
    env.set("k", "value-0123456789");
    let out = env.cli(&[
        "run",
        "-k",
        "k",
        "--",
        "sh",
        "-c",
        "for f in /proc/$$/fd/*; do readlink \"$f\" || true; done",
    ]);
    assert_ok(&out, "listing a child's descriptors");
    assert!(
        !stdout(&out).contains("leaked-descriptor"),
        "{}",
        stdout(&out)
    );
}

/// Open descriptors of process `pid`.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[cfg(target_os = "linux")]
#[test]
fn a_connection_flood_does_not_keep_the_cli_out() {
    use secretctl_proto::v1::RunInput;
    let mut env = Env::new();
    // 256 descriptors: a cap of 64 connections.
    env.start_with("ulimit -n 256");
    env.init();
    let cap = secretctld::conns::max_connections(256);
    let pid = env.daemon_pid().unwrap();

    // Idle connections, many times the cap (and the daemon's fd limit).
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(UnixStream::connect(&env.socket).expect("connect"));
    }
    assert_ok(&env.cli(&["status"]), "status during an idle flood");
    wait_for(
        Duration::from_secs(30),
        "the daemon's descriptors back under its cap",
        || fd_count(pid) <= cap + 48,
    );

    // Idle streams: requests that never send their message.
    block_on_with_limit(CLI_LIMIT, "idle streams", async {
        let mut calls = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..20 {
            let client = secretctl_proto::client::Client::new(&env.socket);
            for _ in 0..40 {
                let mut runner = client.runner();
                calls.push(tokio::spawn(async move {
                    runner.run(tokio_stream::pending::<RunInput>()).await
                }));
            }
            clients.push(client);
        }
        // The CLI is served while they hang.
        let out = tokio::task::spawn_blocking({
            let cmd = env.command(&["status"]);
            move || run(cmd, None)
        })
        .await
        .unwrap();
        assert_ok(&out, "status during idle streams");
        // An idle stream is not kept: answered DEADLINE_EXCEEDED, or its
        // (idle) connection closed to make room.
        let first = calls.swap_remove(0);
        let status = tokio::time::timeout(Duration::from_secs(60), first)
            .await
            .expect("an idle stream is ended")
            .unwrap()
            .expect_err("an idle stream cannot succeed");
        let e = clients[0].classify(status);
        assert!(
            e.is_connection() || e.code() == Some(tonic::Code::DeadlineExceeded),
            "{e:?}"
        );
    });
    drop(idle);
    assert!(env.status().is_ok());
}

#[test]
fn a_connection_that_never_asks_is_closed() {
    let env = Env::unlocked();
    let mut s = UnixStream::connect(&env.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut buf = [0u8; 256];
    // The server may greet (its HTTP/2 settings); then it must hang up.
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the idle connection was not closed: {e}"),
        }
    }
    assert!(env.status().is_ok());
}

#[test]
fn output_into_a_closed_pipe_is_not_a_panic() {
    let env = Env::unlocked();
    for i in 0..20 {
        env.set(&format!("k{i:02}"), "value-0123456789");
    }
    for args in [
        &["status"][..],
        &["--json", "status"],
        &["list"],
        &["get", "k00"],
        &["completions", "bash"],
        &["man"],
    ] {
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read); // every write gets EPIPE
        let mut cmd = env.command(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(write))
            .stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        drop(cmd);
        let out = wait_output(child, CLI_LIMIT, "CLI into a closed pipe");
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {err}");
    }
}
