//! MCP end to end: rmcp's client spawns the real `secretctl-mcp` against the
//! real daemon. Every response and the shim's stderr are checked for the
//! test values.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::mcp::*;
use common::*;
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
    setup_with("agent:\n  max_concurrent_runs: 4\n  output_cap_bytes: 4096\n")
}

/// As [`setup`], with `config` as the daemon's config.yaml.
fn setup_with(config: &str) -> Env {
    let mut env = Env::new();
    env.write_config(config);
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
        let tools = within("tools/list", m.client.list_all_tools()).await.unwrap();
        assert_eq!(tools.len(), 9);
        // What the policy allows, before any refusal.
        let pol = m.ok("secret_policy", json!({})).await;
        assert_eq!(pol["default_action"], "deny");
        assert!(pol["allowed_commands"].as_array().unwrap().iter().any(|c| c == "./deploy.sh"), "{pol}");
        assert!(pol["always_denied"].as_array().unwrap().iter().any(|c| c == "printenv"), "{pol}");
        assert!(pol["env_aliases"].as_array().unwrap().iter().any(|a| a["name"] == "prod"), "{pol}");
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
        // Only the sensitive value is redacted: a host name is not a secret.
        assert_eq!(b["stdout"], "db.dev.local\n[REDACTED:PGPASSWORD]\n");
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
        // One engine: the CLI's `security` says the same.
        let cli = json(&env.cli(&["security", "--json"]));
        assert_eq!(score["score"], cli["score"], "{score} vs {cli}");
        assert_eq!(score["issues"].as_array().unwrap().len(), cli["issues"].as_array().unwrap().len());
        m.finish(&env, &SECRETS).await;
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
            if want == "not in allowed_commands" {
                // The refusal says what would run, and what to do.
                assert!(
                    e.contains("allowed: 'sh', 'printf'") && e.contains("ask the user"),
                    "{e}"
                );
            }
        }
        // An empty key list is explained in the agent's terms.
        let e = m
            .err("secret_run", json!({"keys": [], "command": "true"}))
            .await;
        assert!(e.contains("keys: [") && !e.contains(" -k "), "{e}");
        let ok = m
            .ok(
                "secret_run",
                json!({"keys": ["api/key"], "command": "ls -l /"}),
            )
            .await;
        assert_eq!(ok["exit_code"], 0);
        m.finish(&env, &SECRETS).await;
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

        // A file others could have written refuses every run (contract
        // §7), and apply refuses it.
        std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = m.err("secret_run", run.clone()).await;
        assert!(e.contains("chmod 600"), "{e}");
        apply_err("chmod 600");
        // Apply refuses what is not a valid policy; the applied copy stays.
        write_policy(&env, "version: 1\nallowed_commands: [true\n");
        apply_err("line");
        write_policy(&env, "version: 1\nallowed_comands: [true]\n");
        apply_err("allowed_comands");
        let real = env.dir.path().join("real-policy.yaml");
        write_private(&real, POLICY);
        std::fs::remove_file(&policy).unwrap();
        std::os::unix::fs::symlink(&real, &policy).unwrap();
        apply_err("symlink");
        let e = m.err("secret_run", run.clone()).await;
        assert!(e.contains("symlink"), "{e}");
        write_policy(&env, "version: 1\ndefault_action: allow\n");
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
        m.finish(&env, &SECRETS).await;
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
            // The agent is told to ask the user, not invited to unlock.
            assert!(
                e.starts_with("the user's vault is locked: ask the user"),
                "{tool}: {e}"
            );
            assert!(e.contains("you cannot unlock it"), "{tool}: {e}");
        }
        m.finish(&env, &SECRETS).await;
    });
}

/// One agent run of the queue test: it creates a marker file, records how
/// many markers exist (runs in progress at that moment), waits for the
/// release file, then removes its marker. The sleep is the child's polling
/// interval; the test itself waits only on conditions.
const QUEUE_RUN: &str = r#"d="$1"; m="$d/run.$$"; : > "$m"
n=$(ls "$d" | grep -c '^run\.'); echo "$n" >> "$d/counts"
i=0; while [ ! -e "$d/release" ] && [ $i -lt 6000 ]; do sleep 0.02; i=$((i+1)); done
rm "$m"; echo "done $n""#;

fn queue_call(
    m: &Mcp,
    dir: &std::path::Path,
    timeout: &str,
) -> tokio::task::JoinHandle<rmcp::model::CallToolResult> {
    let params = CallToolRequestParams::new("secret_run").with_arguments(
        json!({"keys": ["api/key"], "command": "sh", "args": ["-c", QUEUE_RUN, "sh", dir.to_str().unwrap()], "timeout": timeout})
            .as_object()
            .unwrap()
            .clone(),
    );
    let peer = m.client.peer().clone();
    tokio::spawn(async move {
        within("queued secret_run", peer.call_tool(params))
            .await
            .expect("tools/call")
    })
}

fn markers(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("run.")
        })
        .count()
}

/// `max_concurrent_runs` measured by peak concurrency, not wall time: with
/// a limit of 2, two runs hold the slots; three more with a short timeout
/// wait in the queue and are refused without ever starting; three more
/// queue and run once the slots free up. Every run records how many runs
/// were in progress when it started: the peak must be exactly 2.
#[test]
fn run_queue_limit_holds_at_peak_concurrency() {
    let env = setup_with("agent:\n  max_concurrent_runs: 2\n  output_cap_bytes: 4096\n");
    let dir = env.dir.path().join("queue");
    std::fs::create_dir(&dir).unwrap();
    // Runs still waiting when the test fails are released, not left behind.
    struct Release(std::path::PathBuf);
    impl Drop for Release {
        fn drop(&mut self) {
            let _ = std::fs::write(&self.0, b"");
        }
    }
    let _release = Release(dir.join("release"));
    rt().block_on(async {
        let m = Mcp::start(&env).await;
        let holders: Vec<_> = (0..2).map(|_| queue_call(&m, &dir, "60s")).collect();
        // Both slots taken: poll until both holders are running.
        let deadline = Instant::now() + Duration::from_secs(60);
        while markers(&dir) < 2 {
            assert!(
                Instant::now() < deadline,
                "two runs never ran at once (queue too strict?)"
            );
            tokio::time::sleep(Duration::from_millis(5)).await; // polling interval
        }
        // Three more cannot start while the holders wait for the release:
        // they time out in the queue (their timeout covers the wait).
        let refused: Vec<_> = (0..3).map(|_| queue_call(&m, &dir, "1s")).collect();
        for r in refused {
            let r = r.await.unwrap();
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(
                r.is_error,
                Some(true),
                "a third run started while two were running: {text}"
            );
            assert!(text.contains("agent runs were in progress"), "{text}");
        }
        assert_eq!(markers(&dir), 2, "only the two holders may be running");
        // Three that queue long enough run after the holders finish.
        let later: Vec<_> = (0..3).map(|_| queue_call(&m, &dir, "60s")).collect();
        std::fs::write(dir.join("release"), b"").unwrap();
        for call in holders.into_iter().chain(later) {
            let r = call.await.unwrap();
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(r.is_error, Some(false), "{text}");
            let out = r.structured_content.unwrap();
            assert_eq!(out["exit_code"], 0, "{out}");
            assert!(
                out["stdout"].as_str().unwrap().starts_with("done "),
                "{out}"
            );
        }
        let counts: Vec<usize> = std::fs::read_to_string(dir.join("counts"))
            .unwrap()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        assert_eq!(counts.len(), 5, "five runs started: {counts:?}");
        assert_eq!(
            counts.iter().max(),
            Some(&2),
            "peak concurrency: {counts:?}"
        );
        m.finish(&env, &SECRETS).await;
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
        m.finish(&env, &SECRETS).await;
    });
}

/// Raw JSON-RPC over the shim's stdio: stdout holds only protocol lines, a
/// malformed line does not kill it, an unknown method gets -32601, and it
/// exits when stdin closes.
#[test]
fn raw_wire_protocol() {
    let env = setup();
    let (sh, wrapper) = wrapped(&bin("secretctl-mcp"));
    let mut child = ChildGuard::new(
        std::process::Command::new(sh)
            .args(wrapper)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SECRETCTL_SOCKET", &env.socket)
            .env("SECRETCTL_LOG", "trace")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdin = child.child().stdin.take().unwrap();
    let lines = TimedLines::new(child.child().stdout.take().unwrap());
    let err_lines = TimedLines::new(child.child().stderr.take().unwrap());
    let limit = Duration::from_secs(60);
    let mut send = |v: &str| {
        stdin.write_all(v.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    };
    send(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#,
    );
    let init: Value = serde_json::from_str(&lines.next(limit).expect("initialize answer")).unwrap();
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
        let line = lines.next(limit).expect("shim closed stdout early");
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
    let st = child.wait(Duration::from_secs(10), "shim after EOF on stdin");
    assert!(st.success(), "shim exited with {st}");
    for line in lines.rest(limit) {
        assert!(
            serde_json::from_str::<Value>(&line).is_ok(),
            "non-JSON on stdout: {line}"
        );
    }
    let err = err_lines.rest(limit).join("\n");
    assert!(!err.contains(API_KEY), "shim stderr holds a secret");
}

/// The agent's environment: only the base variables reach a run. Checked
/// twice: through the shim (whose environment holds an unusual variable
/// and `SECRETCTL_*`), and straight at the daemon's agent service, which
/// must apply its own allow-list whatever a client sends.
#[test]
fn agent_runs_see_only_the_base_environment() {
    let env = setup();
    let script = "env | sort";
    rt().block_on(async {
        let mut m = Mcp::start_with_env(
            &env,
            &[
                ("FOO_SHOULD_NOT_PASS", "1"),
                ("LC_ALL", "C"),
                ("SECRETCTL_HOME", "/nonexistent"),
            ],
        )
        .await;
        let r = m
            .ok(
                "secret_run",
                json!({"keys": ["api/key"], "command": "sh", "args": ["-c", script]}),
            )
            .await;
        let out = r["stdout"].as_str().unwrap();
        assert!(out.contains("PATH=") && out.contains("LC_ALL=C"), "{out}");
        assert!(out.contains("API_KEY=[REDACTED:API_KEY]"), "{out}");
        assert!(
            !out.contains("FOO_SHOULD_NOT_PASS"),
            "an unlisted variable reached the run: {out}"
        );
        assert!(!out.contains("SECRETCTL_"), "{out}");
        m.finish(&env, &SECRETS).await;
    });

    let cwd = env.dir.path().to_str().unwrap().to_string();
    let out = env.with_client(async |c| {
        let var = |n: &str, v: &str| secretctl_proto::v1::EnvVar {
            name: n.into(),
            value: v.as_bytes().to_vec(),
        };
        let req = secretctl_proto::v1::AgentRunRequest {
            keys: vec!["api/key".into()],
            argv: vec!["sh".into(), "-c".into(), script.into()],
            cwd,
            timeout_ms: 30_000,
            env: vec![
                var("PATH", "/usr/bin:/bin"),
                var("LC_ALL", "C"),
                var("FOO_SHOULD_NOT_PASS", "1"),
                var("LD_PRELOAD", "/nonexistent.so"),
                var("SECRETCTL_SOCKET", "/nonexistent"),
            ],
            ..Default::default()
        };
        c.agent().run(req).await.expect("agent run").into_inner()
    });
    assert_eq!(out.exit_code, 0, "{}", out.stderr);
    let text = out.stdout;
    assert!(
        text.contains("PATH=/usr/bin:/bin") && text.contains("LC_ALL=C"),
        "{text}"
    );
    for banned in ["FOO_SHOULD_NOT_PASS", "LD_PRELOAD", "SECRETCTL_"] {
        assert!(
            !text.contains(banned),
            "{banned} reached an agent run: {text}"
        );
    }
    env.assert_log_clean(&SECRETS);
}

/// secretctl's own binaries are refused for agents even when the policy
/// allows everything or names them: they reach every secret.
#[test]
fn secretctl_binaries_are_always_denied() {
    let env = setup();
    let dir = bin_dir();
    let trusted = dir.display();
    let policies = [
        format!("version: 1\ndefault_action: allow\ntrusted_directories: [{trusted}]\n"),
        format!(
            "version: 1\ndefault_action: deny\nallowed_commands: [secretctl, secretctld, secretctl-mcp, \"{trusted}/secretctl\", \"{trusted}/secretctld\", \"{trusted}/secretctl-mcp\"]\ntrusted_directories: [{trusted}]\n"
        ),
    ];
    rt().block_on(async {
        let mut m = Mcp::start(&env).await;
        for policy in &policies {
            write_policy(&env, policy);
            env.apply_policy();
            for name in ["secretctl", "secretctld", "secretctl-mcp"] {
                let path = dir.join(name).display().to_string();
                for command in [name.to_string(), path] {
                    let e = m
                        .err("secret_run", json!({"keys": ["api/key"], "command": command, "args": ["--version"], "timeout": "10s"}))
                        .await;
                    assert!(e.contains("always denied"), "{command} under {policy}: {e}");
                }
            }
        }
        // The same policy does allow an ordinary command: the refusals
        // above are the always-denied rule, not a policy mistake.
        write_policy(&env, &policies[0]);
        env.apply_policy();
        assert_eq!(m.ok("secret_run", json!({"keys": ["api/key"], "command": "true"})).await["exit_code"], 0);
        m.finish(&env, &SECRETS).await;
    });
}

/// A policy file someone else owns is refused (contract §7).
#[test]
fn policy_file_owned_by_another_uid_is_refused() {
    if !require_root("policy_file_owned_by_another_uid_is_refused") {
        return;
    }
    let env = setup();
    let policy = env.home.join("mcp-policy.yaml");
    rt().block_on(async {
        let mut m = Mcp::start(&env).await;
        let run = json!({"keys": ["api/key"], "command": "true"});
        assert_eq!(m.ok("secret_run", run.clone()).await["exit_code"], 0);
        nix::unistd::chown(&policy, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let e = m.err("secret_run", run.clone()).await;
        assert!(
            e.contains("owned by uid 65534") && e.contains("chown"),
            "{e}"
        );
        let out = env.cli(&["policy", "apply"]);
        assert_code(&out, 1, "apply of a foreign file");
        assert!(
            stderr(&out).contains("owned by uid 65534"),
            "{}",
            stderr(&out)
        );
        nix::unistd::chown(&policy, Some(nix::unistd::geteuid()), None).unwrap();
        assert_eq!(m.ok("secret_run", run).await["exit_code"], 0);
        m.finish(&env, &SECRETS).await;
    });
}

/// A refused command is audited as `policy_refused` (a broken policy file
/// as `policy_error`), with the command and the rule.
#[test]
fn policy_refusals_are_audited_with_their_own_action() {
    let env = setup();
    rt().block_on(async {
        let mut m = Mcp::start(&env).await;
        m.err(
            "secret_run",
            json!({"keys": ["api/key"], "command": "head", "args": ["/etc/hostname"]}),
        )
        .await;
        std::fs::remove_file(env.home.join("mcp-policy.yaml")).unwrap();
        m.err(
            "secret_run",
            json!({"keys": ["api/key"], "command": "true"}),
        )
        .await;
        m.finish(&env, &SECRETS).await;
    });
    let audit = |action: &str| {
        let out = env.cli(&["audit", "list", "--json", "--action", action]);
        assert_ok(&out, "audit list");
        json(&out).as_array().unwrap().clone()
    };
    let refused = audit("policy_refused");
    assert_eq!(refused.len(), 1, "{refused:?}");
    let r = &refused[0];
    assert_eq!(r["source"], "mcp");
    assert_eq!(r["success"], false);
    assert_eq!(r["command"], "head /etc/hostname");
    assert_eq!(r["keys"][0], "api/key");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("not in allowed_commands"),
        "{r}"
    );
    let broken = audit("policy_error");
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(
        broken[0]["error"]
            .as_str()
            .unwrap()
            .contains("no policy file"),
        "{}",
        broken[0]
    );
    // Neither is disguised as an ordinary failed run.
    assert!(
        audit("run").iter().all(|r| r["success"] == true),
        "{:?}",
        audit("run")
    );
}

/// Agent run timeouts from config.yaml: the default applies to a run that
/// names none, a run's own timeout is honoured, and a longer one than
/// `max_timeout` is refused before anything runs.
#[test]
fn agent_run_timeouts_default_and_max() {
    let env = setup_with("agent:\n  default_timeout: 1s\n  max_timeout: 1m\n");
    rt().block_on(async {
        let mut m = Mcp::start(&env).await;
        let e = m
            .err("secret_run", json!({"keys": ["api/key"], "command": "true", "timeout": "2m"}))
            .await;
        assert!(e.contains("longer than the allowed 1m"), "{e}");

        let r = m
            .ok("secret_run", json!({"keys": ["api/key"], "command": "sleep", "args": ["30"]}))
            .await;
        assert_eq!(r["timed_out"], true, "{r}");
        assert_eq!(r["exit_code"], 124, "{r}");
        assert!(r["duration_ms"].as_u64().unwrap() < 20_000, "{r}");

        // Its own timeout (longer than the 1 s default) lets it finish.
        let r = m
            .ok("secret_run", json!({"keys": ["api/key"], "command": "sh", "args": ["-c", "sleep 2; echo finished"], "timeout": "30s"}))
            .await;
        assert_eq!(r["timed_out"], false, "{r}");
        assert_eq!(r["stdout"], "finished\n", "{r}");
        // And a short one of its own stops it.
        let r = m
            .ok("secret_run", json!({"keys": ["api/key"], "command": "sleep", "args": ["30"], "timeout": "1s"}))
            .await;
        assert_eq!(r["timed_out"], true, "{r}");
        m.finish(&env, &SECRETS).await;
    });
}

/// Only requests that use a secret move the idle deadline: listing,
/// metadata and the MCP look-only tools leave it where it was; `get` moves it.
#[test]
fn looking_does_not_reset_the_idle_timer() {
    let env = setup();
    let deadline = || env.status().unwrap().idle_lock_deadline_unix_ms;
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    // A fresh deadline, then let the clock move on well past rounding, so
    // any reset would show as a later deadline.
    assert_ok(&env.cli(&["get", "api/key"]), "get");
    let before = deadline();
    let since = now_ms();
    while now_ms() < since + 50 {
        std::thread::sleep(Duration::from_millis(5)); // polling the clock
    }
    assert_ok(&env.cli(&["list"]), "list");
    assert_ok(&env.cli(&["list", "--json"]), "list --json");
    assert_ok(
        &env.cli(&["get", "dev/db", "--show-metadata"]),
        "get --show-metadata",
    );
    rt().block_on(async {
        let mut m = Mcp::start(&env).await;
        m.ok("secret_list", json!({})).await;
        m.ok("secret_exists", json!({"key": "api/key"})).await;
        m.ok("secret_list_fields", json!({"key": "dev/db"})).await;
        m.ok("security_score", json!({})).await;
        m.finish(&env, &SECRETS).await;
    });
    let after_looking = deadline();
    // The deadline is recomputed from two clocks per status call: allow
    // 2 ms of rounding, far below the 50 ms a reset would add.
    assert!(
        (after_looking - before).abs() <= 2,
        "looking moved the idle deadline by {} ms",
        after_looking - before
    );
    assert_ok(&env.cli(&["get", "api/key"]), "get");
    let after_get = deadline();
    assert!(
        after_get >= before + 40,
        "get did not reset the idle timer: {before} -> {after_get}"
    );
}
