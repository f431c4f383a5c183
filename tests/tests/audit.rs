//! Audit log end to end: every action recorded, tampering of any kind found
//! by `secretctl audit verify`, prune keeps the chain verifiable.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

const VALUE: &str = "audit-secret-value-7Hq2Lp9Xz";

/// A running, unlocked vault with small audit segments and some history.
fn env_with_history(segment_bytes: u64) -> Env {
    let mut env = Env::new();
    env.write_config(&format!("audit:\n  segment_bytes: {segment_bytes}\n"));
    env.start();
    env.init();
    for i in 0..6 {
        env.set(&format!("app/k{i}"), VALUE);
        assert_ok(&env.cli(&["get", &format!("app/k{i}")]), "get");
    }
    assert_ok(&env.cli(&["list"]), "list");
    env
}

fn records(env: &Env, args: &[&str]) -> Vec<Value> {
    let mut a = vec!["audit", "list", "--json"];
    a.extend_from_slice(args);
    let out = env.cli(&a);
    assert_ok(&out, "audit list");
    json(&out).as_array().unwrap().clone()
}

fn segments(env: &Env) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(env.home.join("audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "jsonl")
                && p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("segment-")
        })
        .collect();
    v.sort();
    v
}

fn lines(p: &PathBuf) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(p: &PathBuf, l: &[String]) {
    std::fs::write(p, l.iter().map(|s| format!("{s}\n")).collect::<String>()).unwrap();
}

/// Runs `audit verify` and returns (exit code, stderr).
fn verify(env: &Env) -> (i32, String) {
    let out = env.cli(&["audit", "verify"]);
    (out.status.code().unwrap(), stderr(&out))
}

fn assert_log_has_no_value(env: &Env) {
    for p in std::fs::read_dir(env.home.join("audit")).unwrap() {
        let text = std::fs::read_to_string(p.unwrap().path()).unwrap_or_default();
        assert!(
            !text.contains(VALUE) && !text.contains(PASSWORD),
            "the audit log holds a value"
        );
    }
}

#[test]
fn every_action_is_recorded_and_the_chain_verifies() {
    let env = env_with_history(1 << 20);
    let out = env.cli(&["audit", "verify"]);
    assert_ok(&out, "verify");
    assert!(stdout(&out).contains("intact"), "{}", stdout(&out));
    let all = records(&env, &[]);
    let actions: Vec<&str> = all.iter().map(|r| r["action"].as_str().unwrap()).collect();
    for a in ["init", "set", "get", "list"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r["seq"], i as u64 + 1);
        assert!(["cli", "mcp"].contains(&r["source"].as_str().unwrap()));
        assert!(r["peer"]["uid"].is_u64() && r["mac"].is_string() && r["prev"].is_string());
    }
    let gets = records(&env, &["--action", "get", "--key", "app/k3"]);
    assert_eq!(gets.len(), 1);
    assert_eq!(gets[0]["keys"][0], "app/k3");
    assert!(
        gets[0]["peer"]["exe"]
            .as_str()
            .unwrap()
            .ends_with("secretctl")
    );
    // A run records keys, command, exit status and redactions.
    assert_ok(
        &env.cli(&["run", "-k", "app/k1", "--", "sh", "-c", "echo $APP_K1"]),
        "run",
    );
    let runs = records(&env, &["--action", "run"]);
    assert_eq!(runs[0]["keys"][0], "app/k1");
    assert_eq!(runs[0]["detail"]["exit_code"], 0);
    assert!(
        runs[0]["detail"]["resolved"]
            .as_str()
            .unwrap()
            .ends_with("sh"),
        "{}",
        runs[0]
    );
    assert_eq!(runs[0]["command"], "sh -c echo $APP_K1");
    assert_eq!(runs[0]["detail"]["redacted_count"], 1);
    let csv = env.cli(&["audit", "export", "--format", "csv"]);
    assert_ok(&csv, "export csv");
    assert!(stdout(&csv).starts_with("seq,ts,action"));
    assert_log_has_no_value(&env);
}

#[test]
fn failed_unlocks_and_refused_connections_are_recorded_and_sealed() {
    let env = env_with_history(1 << 20);
    assert_ok(&env.cli(&["lock"]), "lock");
    let mut bad = env.command(&["unlock"]);
    bad.env("SECRETCTL_PASSWORD", "wrong password");
    assert_code(&run(bad, None), 1, "wrong unlock");
    let foreign = env
        .expose_socket_to_others("failed_unlocks_and_refused_connections_are_recorded_and_sealed");
    if foreign {
        assert_eq!(env.dial_as_nobody(), "closed", "foreign uid");
    }
    // While locked nothing can be verified, so nothing is listed; the
    // records wait unsealed, each linked to the one before with the
    // pending key the daemon kept from its last unlock...
    assert_code(&env.cli(&["audit", "list"]), 3, "list while locked");
    let text = std::fs::read_to_string(env.home.join("audit/pending.jsonl")).unwrap();
    let pending: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        pending
            .iter()
            .any(|r| r["action"] == "unlock" && r["success"] == false),
        "{pending:?}"
    );
    assert!(
        pending
            .iter()
            .all(|r| r["sealed"] == false && r["pauth"] == "key" && r["pmac"].is_string()),
        "{pending:?}"
    );
    // ...and are sealed into the chain at the next unlock.
    assert_ok(&env.cli_with_password(&["unlock"]), "unlock");
    let all = records(&env, &[]);
    assert!(all.iter().all(|r| r["seq"].is_u64()), "everything sealed");
    let failed = all
        .iter()
        .find(|r| r["action"] == "unlock" && r["success"] == false)
        .expect("failed unlock recorded");
    assert_eq!(failed["error"], "wrong password");
    if foreign {
        let refused = all
            .iter()
            .find(|r| r["action"] == "connection_refused")
            .expect("refused connection recorded");
        assert_eq!(refused["peer"]["uid"], 65534);
    }
    assert_eq!(verify(&env).0, 0);
    assert_log_has_no_value(&env);
}

fn tamper_and_expect(segment_bytes: u64, what: &str, tamper: impl FnOnce(&Env), expect: &[&str]) {
    let env = env_with_history(segment_bytes);
    assert_eq!(verify(&env).0, 0, "{what}: intact before tampering");
    tamper(&env);
    let (code, err) = verify(&env);
    assert_eq!(code, 1, "{what}: verify must fail");
    assert!(expect.iter().any(|e| err.contains(e)), "{what}: {err}");
}

#[test]
fn edited_byte_is_found() {
    tamper_and_expect(
        1 << 20,
        "edit",
        |env| {
            let seg = &segments(env)[0];
            let mut l = lines(seg);
            l[4] = l[4].replacen("app/k", "app/K", 1);
            write_lines(seg, &l);
        },
        &["line 5", "MAC mismatch"],
    );
}

#[test]
fn inserted_line_is_found() {
    tamper_and_expect(
        1 << 20,
        "insert",
        |env| {
            let seg = &segments(env)[0];
            let mut l = lines(seg);
            let copy = l[3].clone();
            l.insert(5, copy);
            write_lines(seg, &l);
        },
        &["line 6", "inserted"],
    );
}

#[test]
fn deleted_middle_line_is_found() {
    tamper_and_expect(
        1 << 20,
        "delete",
        |env| {
            let seg = &segments(env)[0];
            let mut l = lines(seg);
            l.remove(4);
            write_lines(seg, &l);
        },
        &["missing"],
    );
}

#[test]
fn swapped_lines_are_found() {
    tamper_and_expect(
        1 << 20,
        "swap",
        |env| {
            let seg = &segments(env)[0];
            let mut l = lines(seg);
            l.swap(3, 4);
            write_lines(seg, &l);
        },
        &["missing", "inserted or reordered"],
    );
}

#[test]
fn cut_tail_is_found() {
    tamper_and_expect(
        1 << 20,
        "cut tail",
        |env| {
            let seg = segments(env).last().unwrap().clone();
            let mut l = lines(&seg);
            l.truncate(l.len() - 2);
            write_lines(&seg, &l);
        },
        &["newest records were removed"],
    );
}

#[test]
fn deleted_segment_is_found() {
    tamper_and_expect(
        2048,
        "delete a middle segment",
        |env| {
            let segs = segments(env);
            assert!(segs.len() >= 3, "need several segments, got {}", segs.len());
            std::fs::remove_file(&segs[1]).unwrap();
        },
        &["missing"],
    );
    tamper_and_expect(
        2048,
        "delete the last segment",
        |env| {
            let segs = segments(env);
            std::fs::remove_file(segs.last().unwrap()).unwrap();
        },
        &["newest records were removed"],
    );
}

#[test]
fn prune_then_verify_passes() {
    let env = env_with_history(2048);
    let all = records(&env, &[]);
    let cut_ts = all[all.len() / 2]["ts"].as_str().unwrap().to_string();
    let out = env.cli(&["audit", "prune", "--before", &cut_ts]);
    assert_ok(&out, "prune");
    let after = records(&env, &[]);
    assert!(after[0]["seq"].as_u64().unwrap() > 1, "old records removed");
    assert!(after.iter().any(|r| r["action"] == "audit_prune"));
    assert_eq!(verify(&env).0, 0, "the pruned chain still verifies");
}

#[test]
fn concurrent_cli_and_mcp_activity_never_forks_the_chain() {
    let env = env_with_history(4096);
    env.write_policy("version: 1\nallowed_commands: [true]\n");
    env.apply_policy();
    std::thread::scope(|s| {
        for t in 0..4 {
            let env = &env;
            s.spawn(move || {
                for i in 0..5 {
                    assert_ok(&env.cli(&["get", &format!("app/k{}", (t + i) % 6)]), "get");
                }
            });
        }
        let env = &env;
        s.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use rmcp::ServiceExt;
                let limit = std::time::Duration::from_secs(90);
                let within = async |what: &str, f| {
                    tokio::time::timeout(limit, f)
                        .await
                        .unwrap_or_else(|_| panic!("{what}: no answer within {limit:?}"))
                };
                let mut cmd = shim_command();
                cmd.env_clear()
                    .env("SECRETCTL_SOCKET", &env.socket)
                    .env("PATH", std::env::var_os("PATH").unwrap())
                    .kill_on_drop(true); // also when this test panics
                let (transport, _) = rmcp::transport::TokioChildProcess::builder(cmd)
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                let client = tokio::time::timeout(limit, ().serve(transport))
                    .await
                    .expect("MCP initialize in time")
                    .unwrap();
                for _ in 0..5 {
                    let args = serde_json::json!({"keys": ["app/k0"], "command": "true"});
                    let p = rmcp::model::CallToolRequestParams::new("secret_run")
                        .with_arguments(args.as_object().unwrap().clone());
                    let r = within("secret_run", client.call_tool(p)).await.unwrap();
                    assert_eq!(r.is_error, Some(false));
                    let p = rmcp::model::CallToolRequestParams::new("secret_list")
                        .with_arguments(serde_json::Map::new());
                    within("secret_list", client.call_tool(p)).await.unwrap();
                }
                let _ = tokio::time::timeout(limit, client.cancel()).await;
            });
        });
    });
    let all = records(&env, &[]);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r["seq"], i as u64 + 1, "one linear chain");
    }
    assert!(all.iter().filter(|r| r["source"] == "mcp").count() >= 10);
    assert_eq!(verify(&env).0, 0);
    assert_log_has_no_value(&env);
}

/// Locking is recorded with its reason: by hand, on idle timeout, and at
/// shutdown.
#[test]
fn every_lock_is_recorded_with_its_reason() {
    let mut env = env_with_history(1 << 20);
    assert_ok(&env.cli(&["lock"]), "lock");
    assert_ok(
        &env.cli_with_password(&["unlock", "--timeout", "1s"]),
        "unlock 1s",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while env.status().unwrap().state == secretctl_proto::v1::VaultState::Unlocked as i32 {
        assert!(
            std::time::Instant::now() < deadline,
            "idle lock never fired"
        );
        std::thread::sleep(std::time::Duration::from_millis(20)); // polling interval
    }
    assert_ok(&env.cli_with_password(&["unlock"]), "unlock");
    env.stop();
    env.start();
    assert_ok(&env.cli_with_password(&["unlock"]), "unlock after restart");
    let locks = records(&env, &["--action", "lock"]);
    let reasons: Vec<&str> = locks
        .iter()
        .map(|r| r["detail"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["manual", "idle timeout", "shutdown"], "{locks:?}");
    assert!(
        locks
            .iter()
            .all(|r| r["success"] == true && r["seq"].is_u64())
    );
    assert!(
        locks[0]["peer"]["exe"]
            .as_str()
            .unwrap()
            .ends_with("secretctl"),
        "{}",
        locks[0]
    );
    assert_eq!(verify(&env).0, 0);
}
