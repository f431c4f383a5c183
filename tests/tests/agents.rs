//! Agents in the user's shell (contract §9), against the real daemon.
//!
//! A fake agent host is a `sh` that first starts the MCP shim (which
//! registers the `sh` as an agent host, then exits at EOF on stdin) and then
//! runs CLI commands as its children — as Claude Code's Bash tool would.
//! The test process itself stays a user, and so do its own CLI calls.
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

const DB_PASS: &str = "pg-prod-Agent-7Hq2Zx9Lw4";
const API_KEY: &str = "sk_live_agents_Qm81Vt5Rx2Ne";
const OTHER: &str = "unrelated-token-Pz6Kd3Wy8";
const SECRETS: [&str; 3] = [DB_PASS, API_KEY, OTHER];

const POLICY: &str = r#"version: 1
default_action: deny
allowed_commands: [sh, cat, echo, true, sleep, ./probe.sh]
"#;

/// A vault with secrets and an applied policy.
fn setup() -> Env {
    let mut env = Env::new();
    env.start();
    env.init();
    env.set("prod/db", DB_PASS);
    env.set("api/key", API_KEY);
    env.set("other/token", OTHER);
    env.write_policy(POLICY);
    env.apply_policy();
    env
}

/// Runs `script` in a fake agent host: a `sh` that registered itself by
/// starting the MCP shim first. `$SECRETCTL` is the CLI's path.
fn as_agent(env: &Env, script: &str) -> Output {
    as_agent_with(env, script, |_| {})
}

fn as_agent_with(env: &Env, script: &str, extra: impl FnOnce(&mut Command)) -> Output {
    let shim_log = env.dir.path().join("agent-shim.log");
    let host = format!(
        "\"$SHIM\" </dev/null 2>\"$SHIM_LOG\"\ngrep -q 'registered with secretctld' \"$SHIM_LOG\" || {{ echo 'shim did not register' >&2; exit 99; }}\n{script}"
    );
    let mut cmd = Command::new("sh");
    env.apply(&mut cmd);
    cmd.args(["-c", &host])
        .env("SHIM", bin("secretctl-mcp"))
        .env("SHIM_LOG", &shim_log)
        .env("SECRETCTL", bin("secretctl"))
        .env("SECRETCTL_LOG", "info");
    extra(&mut cmd);
    run_bounded(cmd, None, Duration::from_secs(60))
}

/// Runs a command to completion, failing the test if it takes longer than
/// `limit` (its whole process group is killed then).
fn run_bounded(mut cmd: Command, stdin: Option<&[u8]>, limit: Duration) -> Output {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(input) = stdin {
        let _ = child.stdin.take().unwrap().write_all(input);
    }
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("command did not finish within {limit:?}");
        }
    }
}

fn assert_no_secret(out: &Output) {
    for s in SECRETS {
        assert!(
            !stdout(out).contains(s) && !stderr(out).contains(s),
            "output holds a secret: {}{}",
            stdout(out),
            stderr(out)
        );
    }
}

/// Polls `cond` (every few ms) until it holds or `limit` passes.
fn poll(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5)); // polling interval
    }
    cond()
}

fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && stat.split_whitespace().nth(2) != Some("Z")
}

#[test]
fn the_test_process_itself_is_a_user() {
    let env = setup();
    let st = json(&env.cli(&["status", "--json"]));
    assert_eq!(st["caller"]["class"], "user", "{st}");
    assert_eq!(stdout(&env.cli(&["get", "prod/db"])), DB_PASS);
}

#[test]
fn an_agent_host_gets_the_agent_surface_and_a_sibling_user_does_not() {
    let env = setup();
    for (script, what) in [
        ("\"$SECRETCTL\" get prod/db", "get"),
        ("\"$SECRETCTL\" get prod/db --field value", "get --field"),
        ("echo x | \"$SECRETCTL\" set prod/db", "set"),
        ("echo x | \"$SECRETCTL\" set new/key", "set new"),
        ("\"$SECRETCTL\" delete prod/db --force", "delete"),
        ("\"$SECRETCTL\" audit prune --before 1d", "audit prune"),
        ("\"$SECRETCTL\" policy apply", "policy apply"),
        ("\"$SECRETCTL\" config apply", "config apply"),
    ] {
        let out = as_agent(&env, script);
        assert_code(&out, 5, what);
        let err = stderr(&out);
        assert!(
            err.contains("refused: this process descends from an AI agent (pid ")
                && err.contains("'sh' started secretctl-mcp")
                && err.contains("enter the master password when asked on a terminal"),
            "{what}: {err}"
        );
        assert_no_secret(&out);
    }
    // What agents may do.
    for (script, what) in [
        ("\"$SECRETCTL\" list", "list"),
        ("\"$SECRETCTL\" get prod/db --show-metadata", "metadata"),
        ("\"$SECRETCTL\" status", "status"),
        ("\"$SECRETCTL\" audit list", "audit list"),
        ("\"$SECRETCTL\" audit verify", "audit verify"),
        ("\"$SECRETCTL\" policy check", "policy check"),
    ] {
        let out = as_agent(&env, script);
        assert_ok(&out, what);
        assert_no_secret(&out);
    }
    let st = as_agent(&env, "\"$SECRETCTL\" status --json");
    let st: Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(st["caller"]["class"], "agent");
    assert!(
        st["caller"]["reason"]
            .as_str()
            .unwrap()
            .contains("started secretctl-mcp")
    );

    // Nothing changed, and the user (a sibling of the host) is unaffected.
    assert_eq!(stdout(&env.cli(&["get", "prod/db"])), DB_PASS);
    let keys = json(&env.cli(&["list", "--json"]));
    assert!(!keys.to_string().contains("new/key"), "{keys}");

    // Every refusal is audited as an agent's, with the reason.
    let records = json(&env.cli(&["audit", "list", "--json"]));
    let refused: Vec<&Value> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "get" && r["success"] == false)
        .collect();
    assert!(!refused.is_empty(), "{records}");
    for r in refused {
        assert_eq!(r["caller"], "agent", "{r}");
        assert!(r["error"].as_str().unwrap().contains("AI agent"), "{r}");
    }
    let mine = records
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r["action"] == "get" && r["success"] == true)
        .unwrap();
    assert_eq!(mine["caller"], "user");
    env.assert_log_clean(&SECRETS);

    // Lock is allowed to agents, and last.
    assert_ok(&as_agent(&env, "\"$SECRETCTL\" lock"), "lock");
    assert_code(&env.cli(&["get", "prod/db"]), 3, "locked");
}

#[test]
fn secretctl_password_and_stdin_are_ignored_for_agents() {
    let env = setup();
    assert_ok(&env.cli(&["lock"]), "lock");
    let out = as_agent_with(&env, "\"$SECRETCTL\" unlock", |c| {
        c.env("SECRETCTL_PASSWORD", PASSWORD);
    });
    assert_code(&out, 5, "agent unlock without a terminal");
    assert!(stderr(&out).contains("terminal only"), "{}", stderr(&out));
    let out = as_agent(
        &env,
        &format!("printf '%s' '{PASSWORD}' | \"$SECRETCTL\" unlock --password-stdin"),
    );
    assert_code(&out, 5, "agent unlock from stdin");
    let st = json(&env.cli(&["status", "--json"]));
    assert_eq!(st["state"], "locked", "the agent could not unlock");
    assert_ok(&env.cli_with_password(&["unlock"]), "user unlock");
    let out = as_agent_with(&env, "\"$SECRETCTL\" get prod/db", |c| {
        c.env("SECRETCTL_PASSWORD", PASSWORD);
    });
    assert_code(&out, 5, "get with SECRETCTL_PASSWORD");
    assert_no_secret(&out);
}

#[test]
fn markers_in_the_callers_or_an_ancestors_environment() {
    let env = setup();
    let cli = bin("secretctl");
    let own = {
        let mut c = env.command(&["get", "prod/db"]);
        c.env("CLAUDECODE", "1");
        run(c, None)
    };
    assert_code(&own, 5, "own marker");
    assert!(
        stderr(&own).contains("marker CLAUDECODE"),
        "{}",
        stderr(&own)
    );
    // An ancestor carries the marker; the caller scrubbed its own env.
    let mut c = Command::new("sh");
    env.apply(&mut c);
    c.env("GEMINI_CLI", "1")
        .env("CLI", &cli)
        .args(["-c", "sh -c 'env -u GEMINI_CLI \"$CLI\" get prod/db'"]);
    let out = run(c, None);
    assert_code(&out, 5, "ancestor marker");
    assert!(
        stderr(&out).contains("has GEMINI_CLI in its environment"),
        "{}",
        stderr(&out)
    );
    assert_no_secret(&out);

    // A marker of one's own, once applied; an unapplied edit does nothing.
    env.write_config("agent:\n  markers: [MY_AGENT]\n");
    let mine = |var: &str| {
        let mut c = env.command(&["get", "prod/db"]);
        c.env(var, "1");
        run(c, None)
    };
    assert_ok(&mine("MY_AGENT"), "not applied yet");
    env.apply_config();
    assert_code(&mine("MY_AGENT"), 5, "applied marker");
    env.write_config("agent:\n  classify: false\n");
    assert_code(
        &mine("CLAUDECODE"),
        5,
        "classify: false written but not applied",
    );
}

#[test]
fn secretctl_mcp_server_counts_as_the_shim() {
    let env = setup();
    let shim_log = env.dir.path().join("mcp-server.log");
    let mut cmd = Command::new("sh");
    env.apply(&mut cmd);
    cmd.args([
        "-c",
        "\"$SECRETCTL\" mcp-server </dev/null 2>\"$LOG\"; \"$SECRETCTL\" get prod/db",
    ])
    .env("SECRETCTL", bin("secretctl"))
    .env("SECRETCTL_LOG", "info")
    .env("LOG", &shim_log);
    let out = run_bounded(cmd, None, Duration::from_secs(30));
    assert_code(&out, 5, "get after mcp-server");
    assert!(
        stderr(&out).contains("'sh' started secretctl-mcp"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_agents_run_follows_the_policy_and_redacts_the_whole_vault() {
    let env = setup();
    let leak = env.dir.path().join("leak.txt");
    std::fs::write(&leak, format!("left behind: {OTHER}\n")).unwrap();
    let script = format!(
        "\"$SECRETCTL\" run -k api/key -- sh -c 'echo key=$API_KEY; cat {}; echo foo=${{FOO_PASSED:-unset}}'",
        leak.display()
    );
    let out = as_agent_with(&env, &script, |c| {
        c.env("FOO_PASSED", "yes");
    });
    assert_ok(&out, "agent run");
    let text = stdout(&out);
    assert!(text.contains("key=[REDACTED:API_KEY]"), "{text}");
    assert!(
        text.contains("left behind: [REDACTED:OTHER_TOKEN]"),
        "{text}"
    );
    assert!(
        text.contains("foo=unset"),
        "only the base environment: {text}"
    );
    assert_no_secret(&out);

    let out = as_agent(&env, "\"$SECRETCTL\" run --no-redact -k api/key -- true");
    assert_code(&out, 2, "--no-redact");
    assert!(stderr(&out).contains("--no-redact"), "{}", stderr(&out));
    let out = as_agent(&env, "\"$SECRETCTL\" run -k api/key -- id");
    assert_code(&out, 5, "command outside the policy");
    assert!(
        stderr(&out).contains("not in allowed_commands"),
        "{}",
        stderr(&out)
    );
    let out = as_agent(
        &env,
        "\"$SECRETCTL\" run -k api/key -- \"$SECRETCTL\" get prod/db",
    );
    assert_code(&out, 5, "secretctl itself");
    // The same run by the user is not restricted.
    let out = env.cli(&["run", "-k", "api/key", "--", "id", "-u"]);
    assert_ok(&out, "user run of id");
}

/// A script that `secret_run` may start: it calls `secretctl get` itself,
/// and leaves a `setsid` grandchild behind that tries again later.
fn probe_script(dir: &Path) {
    let script = dir.join("probe.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         cli=\"$1\"; out=\"$2\"; export SECRETCTL_SOCKET=\"$3\" SECRETCTL_NO_AUTOSTART=1\n\
         \"$cli\" get prod/db >\"$out/direct.out\" 2>&1; echo $? >\"$out/direct.code\"\n\
         setsid sh -c 'echo $$ >\"$2/grandchild.pid\"; \"$1\" get prod/db >\"$2/late.out\" 2>&1; echo $? >\"$2/late.code\"; exec sleep 300' sh \"$cli\" \"$out\" &\n\
         while [ ! -s \"$out/late.code\" ]; do sleep 0.01; done\n\
         echo probe done\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_secret_run_child_is_an_agent_and_its_tree_ends_with_the_run() {
    let env = setup();
    let work = env.dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    probe_script(&work);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result: Value = rt.block_on(async {
        let mut cmd = shim_command();
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SECRETCTL_SOCKET", &env.socket)
            .current_dir(&work);
        let (transport, _) = rmcp::transport::TokioChildProcess::builder(cmd)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let client = tokio::time::timeout(Duration::from_secs(20), ().serve(transport))
            .await
            .expect("initialize in time")
            .expect("initialize");
        let args = json!({
            "keys": ["api/key"],
            "command": "./probe.sh",
            "args": [bin("secretctl"), work, env.socket],
            "timeout": "60s",
        });
        let p = CallToolRequestParams::new("secret_run")
            .with_arguments(args.as_object().unwrap().clone());
        let r = tokio::time::timeout(Duration::from_secs(90), client.call_tool(p))
            .await
            .expect("secret_run in time")
            .expect("secret_run");
        let _ = client.cancel().await;
        r.structured_content.expect("structured result")
    });
    assert_eq!(result["exit_code"], 0, "{result}");
    let read = |f: &str| std::fs::read_to_string(work.join(f)).unwrap_or_default();
    assert_eq!(read("direct.code").trim(), "5", "{}", read("direct.out"));
    assert!(
        read("direct.out").contains("started by an agent run"),
        "{}",
        read("direct.out")
    );
    assert_eq!(read("late.code").trim(), "5", "{}", read("late.out"));
    for f in ["direct.out", "late.out"] {
        assert!(!read(f).contains(DB_PASS));
    }
    // The setsid grandchild was killed with the run.
    let pid: i32 = read("grandchild.pid").trim().parse().unwrap();
    assert!(
        poll(Duration::from_secs(5), || !alive(pid)),
        "the setsid grandchild {pid} outlived its run"
    );
}

#[test]
fn kill_9_of_the_daemon_kills_a_running_child_within_2_s() {
    let mut env = setup();
    let pidfile = env.dir.path().join("child.pid");
    let mut cmd = env.command(&[
        "run",
        "-k",
        "api/key",
        "--",
        "sh",
        "-c",
        &format!("echo $$ > {}; exec sleep 300", pidfile.display()),
    ]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut cli = cmd.spawn().unwrap();
    assert!(
        poll(Duration::from_secs(20), || std::fs::read_to_string(
            &pidfile
        )
        .is_ok_and(|s| s.ends_with('\n'))),
        "the run never started"
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid));
    env.kill9();
    assert!(
        poll(Duration::from_secs(2), || !alive(pid)),
        "child {pid} still alive 2 s after the daemon died"
    );
    let _ = cli.kill();
    let _ = cli.wait();
    // The run was recorded before it started, so the crash did not erase it.
    env.start();
    assert_ok(&env.cli_with_password(&["unlock"]), "unlock");
    let starts = json(&env.cli(&["audit", "list", "--json", "--action", "run_start"]));
    assert!(
        starts.as_array().unwrap().iter().any(|r| r["command"]
            .as_str()
            .unwrap_or("")
            .contains("exec sleep 300")),
        "{starts}"
    );
}

#[test]
fn secretctl_agent_keeps_double_forked_descendants_classified() {
    let env = setup();
    let out_file = env.dir.path().join("escaped.out");
    // The grandchild double-forks, starts a new session and scrubs its
    // environment of every marker: once its parent (a subshell) is gone, only
    // the subreaper host it was re-parented to still knows it is the agent's.
    let inner = r#"( setsid env -i PATH="$PATH" SECRETCTL_SOCKET="$SECRETCTL_SOCKET" SECRETCTL_NO_AUTOSTART=1 CLI="$0" OUT="$1" sh -c '
        parent() { cat /proc/$(cut -d" " -f4 /proc/$$/stat)/comm; }
        while [ "$(parent)" = sh ]; do sleep 0.01; done
        "$CLI" get prod/db >"$OUT" 2>&1; echo $? >"$OUT.code"' & )
        while [ ! -s "$1.code" ]; do sleep 0.01; done"#;
    let mut c = env.command(&["agent", "--", "sh", "-c", inner]);
    c.arg(bin("secretctl")).arg(&out_file);
    let out = run_bounded(c, None, Duration::from_secs(60));
    assert_ok(&out, "secretctl agent");
    assert!(stderr(&out).contains("registered"), "{}", stderr(&out));
    let code = std::fs::read_to_string(format!("{}.code", out_file.display())).unwrap();
    let text = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(code.trim(), "5", "{text}");
    assert!(text.contains("ran 'secretctl agent'"), "{text}");
    assert!(!text.contains(DB_PASS));
    // The agent's exit code passes through.
    let out = run_bounded(
        env.command(&["agent", "--", "sh", "-c", "exit 7"]),
        None,
        Duration::from_secs(30),
    );
    assert_code(&out, 7, "exit code");
}

/// Runs `cli_args` in an agent host on a pseudo-terminal (`script`), typing
/// `password` at the prompt; returns everything the terminal showed and the
/// exit status.
fn on_a_pty(env: &Env, cli_args: &str, password: &str) -> (String, i32) {
    let script = format!("script -qefc '\"$SECRETCTL\" {cli_args}; echo \"exit=$?\"' /dev/null");
    let shim_log = env.dir.path().join("pty-shim.log");
    let host = format!("\"$SHIM\" </dev/null 2>\"$SHIM_LOG\"\n{script}");
    let mut cmd = Command::new("sh");
    env.apply(&mut cmd);
    cmd.args(["-c", &host])
        .env("SHIM", bin("secretctl-mcp"))
        .env("SHIM_LOG", &shim_log)
        .env("SECRETCTL", bin("secretctl"))
        .env("SECRETCTL_PASSWORD", PASSWORD)
        .env("SECRETCTL_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx
                        .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut typed = false;
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(chunk) => seen.push_str(&chunk),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
        if !typed && seen.contains("Master password:") {
            stdin.write_all(format!("{password}\r").as_bytes()).unwrap();
            stdin.flush().unwrap();
            typed = true;
        }
        if seen.contains("exit=")
            && seen
                .trim_end()
                .rsplit("exit=")
                .next()
                .is_some_and(|t| t.trim().parse::<i32>().is_ok())
        {
            break;
        }
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let code = seen
        .rsplit("exit=")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or(-1);
    (seen, code)
}

#[test]
fn reauthentication_on_a_terminal() {
    let env = setup();
    let (seen, code) = on_a_pty(&env, "get prod/db", PASSWORD);
    assert_eq!(code, 0, "{seen}");
    assert!(seen.contains("classifies as an AI agent"), "{seen}");
    assert!(seen.contains(DB_PASS), "the human allowed it: {seen}");
    let (seen, code) = on_a_pty(&env, "get prod/db", "wrong password entirely");
    assert_ne!(code, 0, "{seen}");
    assert!(!seen.contains(DB_PASS), "{seen}");
    let records = json(&env.cli(&["audit", "list", "--json", "--action", "reauth"]));
    let results: Vec<bool> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["success"].as_bool().unwrap())
        .collect();
    assert_eq!(results, [true, false], "{records}");
    for r in records.as_array().unwrap() {
        assert_eq!(r["caller"], "agent", "{r}");
    }
}
