//! MCP end to end: rmcp's client spawns the real `secretctl-mcp` against the
//! real daemon. Every response and the shim's stderr are checked for the
//! test values.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

const API_KEY: &str = "sk_live_mcp_51H8xYzAbCdEfGhIjKl";
const DB_PASS: &str = "pg-pass-Qw9Er8Ty7Ui6";
const PROD_DB_PASS: &str = "pg-prod-Zx1Cv2Bn3Mm4";
const SECRETS: [&str; 3] = [API_KEY, DB_PASS, PROD_DB_PASS];

const POLICY: &str = r#"version: 1
default_action: deny
allowed_commands: [sh, printf, cat, echo, true, sleep, ./deploy.sh, "ls -l"]
denied_commands: [rm, chmod]
env_aliases:
  dev:     [{pattern: "db/*", target: "dev/db/*"}]
  staging: [{pattern: "db/*", target: "staging/db/*"}]
  prod:    [{pattern: "db/*", target: "prod/db/*"}]
"#;

fn write_policy(env: &Env, text: &str) {
    env.write_policy(text);
}

/// A vault with test secrets, a policy and small agent limits.
fn setup() -> Env {
    let mut env = Env::new();
    env.write_config("agent:\n  max_concurrent_runs: 4\n  output_cap_bytes: 4096\n");
    env.start();
    env.init();
    env.apply_config();
    env.set("api/key", API_KEY);
    env.set("dev/db/password", DB_PASS);
    env.set("prod/db/password", PROD_DB_PASS);
    env.set("staging/db/password", "pg-staging-Lk5Jh6Gf7");
    let out = env.cli(&[
        "set",
        "dev/db",
        "--template",
        "database",
        "--field",
        "host=db.dev.local",
        "--field",
        "port=5432",
        "--field",
        "username=app",
        "--field",
        &format!("password={DB_PASS}"),
        "--field",
        "database=main",
        "--binding",
        "PGPASSWORD=password",
        "--binding",
        "PGHOST=host",
        "--tags",
        "db,dev",
    ]);
    assert_ok(&out, "set dev/db");
    write_policy(&env, POLICY);
    env.apply_policy();
    env
}

struct Mcp {
    client: rmcp::service::RunningService<rmcp::RoleClient, ()>,
    stderr_log: std::path::PathBuf,
    seen: Vec<String>,
}

impl Mcp {
    async fn start(env: &Env) -> Mcp {
        let stderr_log = env
            .dir
            .path()
            .join(format!("shim-{}.log", std::process::id()));
        let log = std::fs::File::create(&stderr_log).unwrap();
        let mut cmd = shim_command();
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SECRETCTL_SOCKET", &env.socket)
            .env("SECRETCTL_LOG", "debug")
            .env("RUST_LOG", "trace")
            .current_dir(env.dir.path());
        let (transport, _) = rmcp::transport::TokioChildProcess::builder(cmd)
            .stderr(log)
            .spawn()
            .unwrap();
        let client = ().serve(transport).await.expect("MCP initialize");
        Mcp {
            client,
            stderr_log,
            seen: Vec::new(),
        }
    }

    /// Calls a tool; returns (is_error, structured content or text).
    async fn call(&mut self, name: &'static str, args: Value) -> (bool, Value) {
        let params =
            CallToolRequestParams::new(name).with_arguments(args.as_object().unwrap().clone());
        let r = self.client.call_tool(params).await.expect("tools/call");
        let text = serde_json::to_string(&r).unwrap();
        self.seen.push(text);
        let is_error = r.is_error.unwrap_or(false);
        let value = match r.structured_content {
            Some(v) => v,
            None => Value::String(
                r.content
                    .iter()
                    .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        };
        (is_error, value)
    }

    async fn ok(&mut self, name: &'static str, args: Value) -> Value {
        let (err, v) = self.call(name, args).await;
        assert!(!err, "{name} failed: {v}");
        v
    }

    async fn err(&mut self, name: &'static str, args: Value) -> String {
        let (err, v) = self.call(name, args).await;
        assert!(err, "{name} should fail: {v}");
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    }

    /// Closes the session and checks nothing the agent saw, nor the shim's
    /// log, holds a secret.
    async fn finish(self, env: &Env) {
        let _ = self.client.cancel().await;
        let log = std::fs::read_to_string(&self.stderr_log).unwrap_or_default();
        for s in SECRETS {
            assert!(!log.contains(s), "shim stderr holds a secret");
            for r in &self.seen {
                assert!(!r.contains(s), "a response holds a secret: {r}");
            }
        }
        env.assert_log_clean(&SECRETS);
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn every_tool_and_the_guide_scenarios() {
    let env = setup();
    rt().block_on(async {
        let mut m = Mcp::start(&env).await;
        let tools = m.client.list_all_tools().await.unwrap();
        assert_eq!(tools.len(), 8);
        assert_eq!(m.client.peer_info().unwrap().server_info.as_ref().unwrap().name, "secretctl");

        // List, then run the tests with the keys.
        let list = m.ok("secret_list", json!({})).await;
        let keys: Vec<&str> = list["secrets"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
        assert!(keys.contains(&"api/key") && keys.contains(&"dev/db"), "{keys:?}");
        let tagged = m.ok("secret_list", json!({"tag": "dev"})).await;
        assert_eq!(tagged["secrets"].as_array().unwrap().len(), 1);
        let run = m
            .ok("secret_run", json!({"keys": ["api/key"], "command": "sh -c 'echo key=$API_KEY; printf %s \"$API_KEY\" | base64'"}))
            .await;
        assert_eq!(run["exit_code"], 0);
        assert_eq!(run["stdout"], "key=[REDACTED:API_KEY]\n[REDACTED:API_KEY]\n");
        assert!(run["redacted_count"].as_u64().unwrap() >= 2);
        assert_eq!(run["truncated"], false);

        // exists / masked / fields / get_field
        let e = m.ok("secret_exists", json!({"key": "api/key"})).await;
        assert_eq!(e["exists"], true);
        let e = m.ok("secret_exists", json!({"key": "no/such"})).await;
        assert_eq!(e, json!({"key": "no/such", "exists": false}));
        let masked = m.ok("secret_get_masked", json!({"key": "api/key"})).await;
        assert_eq!(masked["masked_value"], format!("****{}", &API_KEY[API_KEY.len() - 4..]));
        let fields = m.ok("secret_list_fields", json!({"key": "dev/db"})).await;
        assert_eq!(fields["fields"].as_array().unwrap().len(), 5);
        assert_eq!(fields["fields"][3]["sensitive"], true);
        let host = m.ok("secret_get_field", json!({"key": "dev/db", "field": "host"})).await;
        assert_eq!(host["value"], "db.dev.local");
        let refused = m.err("secret_get_field", json!({"key": "dev/db", "field": "password"})).await;
        assert!(refused.contains("sensitive"), "{refused}");

        // Deploy with a glob; a script allowed by path.
        std::fs::write(env.dir.path().join("deploy.sh"), "#!/bin/sh\necho \"deploying with $DEV_DB_PASSWORD to $1\"\n").unwrap();
        std::fs::set_permissions(env.dir.path().join("deploy.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let d = m.ok("secret_run", json!({"keys": ["dev/**"], "command": "./deploy.sh", "args": ["prod-eu"]})).await;
        // dev/db's binding and dev/db/password hold the same value: either name may mark it.
        let text = d["stdout"].as_str().unwrap();
        assert!(text.starts_with("deploying with [REDACTED:") && text.ends_with("] to prod-eu\n"), "{text}");

        // Env aliases: the same command in every environment.
        for (alias, want) in [("dev", DB_PASS), ("prod", PROD_DB_PASS), ("staging", "pg-staging-Lk5Jh6Gf7")] {
            let script = format!("[ \"$DB_PASSWORD\" = '{want}' ] && echo {alias}-ok");
            let r = m.ok("secret_run", json!({"keys": ["db/*"], "env": alias, "command": "sh", "args": ["-c", script]})).await;
            assert_eq!(r["stdout"], format!("{alias}-ok\n"), "{alias}");
        }

        // Bindings.
        let b = m
            .ok("secret_run_with_bindings", json!({"key": "dev/db", "command": "sh -c 'echo $PGHOST; echo $PGPASSWORD'"}))
            .await;
        assert_eq!(b["stdout"], "[REDACTED:PGHOST]\n[REDACTED:PGPASSWORD]\n");
        let nb = m.err("secret_run_with_bindings", json!({"key": "api/key", "command": "true"})).await;
        assert!(nb.contains("no bindings"), "{nb}");

        // Any vault value is redacted, not only the injected ones.
        let cat = env.dir.path().join("leak.txt");
        std::fs::write(&cat, format!("stale copy: {PROD_DB_PASS}\n")).unwrap();
        let c = m.ok("secret_run", json!({"keys": ["api/key"], "command": "cat", "args": [cat.to_str().unwrap()]})).await;
        assert_eq!(c["stdout"], "stale copy: [REDACTED:PROD_DB_PASSWORD]\n");

        // $VAR arguments are refused for non-shells.
        let v = m.err("secret_run", json!({"keys": ["api/key"], "command": "echo", "args": ["$API_KEY"]})).await;
        assert!(v.contains("never expands"), "{v}");

        let score = m.ok("security_score", json!({})).await;
        assert!(score["score"].as_u64().unwrap() <= 100);
        let kinds: Vec<&str> = score["issues"].as_array().unwrap().iter().map(|i| i["kind"].as_str().unwrap()).collect();
        assert!(kinds.contains(&"duplicate"), "{score}");
        m.finish(&env).await;
    });
}

#[test]
fn denied_and_unlisted_commands() {
    let env = setup();
    rt().block_on(async {
        let mut m = Mcp::start(&env).await;
        let cases = [
            (
                json!({"keys": ["api/key"], "command": "rm -rf /tmp/nothing"}),
                "denied_commands entry 'rm'",
            ),
            (
                json!({"keys": ["api/key"], "command": "printenv"}),
                "always denied",
            ),
            (
                json!({"keys": ["api/key"], "command": "env"}),
                "always denied",
            ),
            (
                json!({"keys": ["api/key"], "command": "head", "args": ["/etc/hostname"]}),
                "not in allowed_commands",
            ),
            (
                json!({"keys": ["api/key"], "command": "ls -a"}),
                "not in allowed_commands",
            ),
            (
                json!({"keys": ["api/key"], "command": "/bin/sh", "args": ["-c", "true"]}),
                "not in allowed_commands",
            ),
        ];
        for (args, want) in cases {
            let e = m.err("secret_run", args.clone()).await;
            assert!(e.contains(want), "{args}: {e}");
        }
        let ok = m
            .ok(
                "secret_run",
                json!({"keys": ["api/key"], "command": "ls -l /"}),
            )
            .await;
        assert_eq!(ok["exit_code"], 0);
        m.finish(&env).await;
    });
}

#[test]
fn policy_edits_count_only_once_a_user_applies_them() {
    let env = setup();
    let policy = env.home.join("mcp-policy.yaml");
    let apply_err = |want: &str| {
        let out = env.cli(&["policy", "apply"]);
        assert_code(&out, 1, "policy apply of a bad file");
        assert!(stderr(&out).contains(want), "{want}: {}", stderr(&out));
    };
    rt().block_on(async {
        let mut m = Mcp::start(&env).await;
        let run = json!({"keys": ["api/key"], "command": "true"});
        assert_eq!(m.ok("secret_run", run.clone()).await["exit_code"], 0);

        // An agent's file tools widen the file: nothing changes.
        write_policy(&env, "version: 1\ndefault_action: allow\n");
        let id = json!({"keys": ["api/key"], "command": "id"});
        let e = m.err("secret_run", id.clone()).await;
        assert!(e.contains("not in allowed_commands"), "{e}");
        let st = json(&env.cli(&["status", "--json"]));
        assert_eq!(st["policy"], "differs from the applied copy", "{st}");
        let out = env.cli(&["policy", "check"]);
        assert!(
            stdout(&out).contains("differs from the applied copy"),
            "{}",
            stdout(&out)
        );

        // Apply refuses files that are not a user's private, valid policy,
        // and the applied copy stays in force.
        std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o644)).unwrap();
        apply_err("chmod 600");
        write_policy(&env, "version: 1\nallowed_commands: [true\n");
        apply_err("line");
        write_policy(&env, "version: 1\nallowed_comands: [true]\n");
        apply_err("allowed_comands");
        let real = env.dir.path().join("real-policy.yaml");
        write_private(&real, POLICY);
        std::fs::remove_file(&policy).unwrap();
        std::os::unix::fs::symlink(&real, &policy).unwrap();
        apply_err("symlink");
        assert_eq!(m.ok("secret_run", run.clone()).await["exit_code"], 0);

        // No file at all: every run is refused.
        std::fs::remove_file(&policy).unwrap();
        let e = m.err("secret_run", run.clone()).await;
        assert!(e.contains("no policy file"), "{e}");

        // An applied edit takes effect on the next call, no restart.
        write_policy(&env, "version: 1\nallowed_commands: [echo]\n");
        env.apply_policy();
        assert!(
            m.err("secret_run", run.clone())
                .await
                .contains("not in allowed_commands")
        );
        write_policy(&env, POLICY);
        env.apply_policy();
        assert_eq!(m.ok("secret_run", run).await["exit_code"], 0);
        let st = json(&env.cli(&["status", "--json"]));
        assert_eq!(st["policy"], "applied", "{st}");
        m.finish(&env).await;
    });
    // The CLI's check explains the same file.
    let out = env.cli(&["policy", "check"]);
    assert_ok(&out, "policy check");
    assert!(stdout(&out).contains("./deploy.sh"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("'sh' is a shell or interpreter"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn locked_vault_answers_with_the_fix() {
    let env = setup();
    assert_ok(&env.cli(&["lock"]), "lock");
    rt().block_on(async {
        let mut m = Mcp::start(&env).await;
        for (tool, args) in [
            ("secret_list", json!({})),
            ("secret_exists", json!({"key": "api/key"})),
            (
                "secret_run",
                json!({"keys": ["api/key"], "command": "true"}),
            ),
            ("security_score", json!({})),
        ] {
            let e = m.err(tool, args).await;
            assert_eq!(e, "vault is locked: run 'secretctl unlock'", "{tool}");
        }
        m.finish(&env).await;
    });
}

#[test]
fn ten_parallel_runs_with_a_limit_of_four_all_complete() {
    let env = setup();
    rt().block_on(async {
        let m = Mcp::start(&env).await;
        let started = Instant::now();
        let mut calls = Vec::new();
        for i in 0..10 {
            let params = CallToolRequestParams::new("secret_run").with_arguments(
                json!({"keys": ["api/key"], "command": "sh", "args": ["-c", format!("sleep 0.3; echo run-{i}")]})
                    .as_object()
                    .unwrap()
                    .clone(),
            );
            let peer = m.client.peer().clone();
            calls.push(tokio::spawn(async move { peer.call_tool(params).await }));
        }
        for (i, call) in calls.into_iter().enumerate() {
            let r = call.await.unwrap().unwrap();
            assert_eq!(r.is_error, Some(false));
            assert_eq!(r.structured_content.unwrap()["stdout"], format!("run-{i}\n"));
        }
        // 10 runs of 0.3 s, 4 at a time, need three waves.
        assert!(started.elapsed() >= Duration::from_millis(850), "limit not applied: {:?}", started.elapsed());
        m.finish(&env).await;
    });
}

#[test]
fn output_cap_never_leaks_a_straddling_value() {
    let env = setup();
    rt().block_on(async {
        let mut m = Mcp::start(&env).await;
        // 4080 bytes, then the value across the 4096-byte cap, then more.
        let script = "head -c 4080 /dev/zero | tr '\\0' x; printf '%s' \"$API_KEY\"; head -c 10000 /dev/zero | tr '\\0' y";
        let r = m.ok("secret_run", json!({"keys": ["api/key"], "command": "sh", "args": ["-c", script]})).await;
        assert_eq!(r["truncated"], true);
        let out = r["stdout"].as_str().unwrap();
        assert_eq!(out.len(), 4096);
        assert!(out.ends_with("[REDACTED:API_KEY]"[..16].to_string().as_str()), "{}", &out[4070..]);
        assert!(!out.contains(&API_KEY[..6]), "a prefix of the value leaked");
        m.finish(&env).await;
    });
}

/// Raw JSON-RPC over the shim's stdio: stdout holds only protocol lines, a
/// malformed line does not kill it, an unknown method gets -32601, and it
/// exits when stdin closes.
#[test]
fn raw_wire_protocol() {
    let env = setup();
    let (sh, wrapper) = wrapped(&bin("secretctl-mcp"));
    let mut child = std::process::Command::new(sh)
        .args(wrapper)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SECRETCTL_SOCKET", &env.socket)
        .env("SECRETCTL_LOG", "trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = |v: &str| {
        stdin.write_all(v.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    };
    send(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#,
    );
    let init: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(init["id"], 1);
    assert_eq!(init["result"]["serverInfo"]["name"], "secretctl");
    send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    send("{this is not json");
    send(r#"{"jsonrpc":"2.0","id":2,"method":"no/such/method"}"#);
    send(
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"secret_run","arguments":{"keys":["api/key"],"command":"sh -c 'echo $API_KEY'"}}}"#,
    );
    let mut by_id = std::collections::HashMap::new();
    while by_id.len() < 2 {
        let line = lines.next().expect("shim closed stdout early").unwrap();
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("non-JSON on stdout: {line}"));
        assert_eq!(v["jsonrpc"], "2.0", "{line}");
        assert!(!line.contains(API_KEY));
        if let Some(id) = v["id"].as_i64() {
            by_id.insert(id, v);
        }
    }
    assert_eq!(by_id[&2]["error"]["code"], -32601, "{}", by_id[&2]);
    assert_eq!(
        by_id[&3]["result"]["structuredContent"]["stdout"],
        "[REDACTED:API_KEY]\n"
    );
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "shim exited with {st}");
            break;
        }
        assert!(Instant::now() < deadline, "shim did not exit on EOF");
        std::thread::sleep(Duration::from_millis(10)); // polling interval
    }
    for rest in lines {
        let line = rest.unwrap();
        assert!(
            serde_json::from_str::<Value>(&line).is_ok(),
            "non-JSON on stdout: {line}"
        );
    }
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!err.contains(API_KEY), "shim stderr holds a secret");
}
