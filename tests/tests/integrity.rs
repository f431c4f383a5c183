//! The audit log and the vault at their edges (issue 11), against the real
//! daemon: logs cut or wiped while it was stopped, forged lines, locked-time
//! records dropped or forged, a torn tail, a full disk.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const VALUE: &str = "integrity-value-Zq81Lm";

fn history() -> Env {
    let mut env = Env::new();
    env.write_config("audit:\n  segment_bytes: 2048\n");
    env.start();
    env.init();
    for i in 0..4 {
        env.set(&format!("k{i}"), VALUE);
        assert_ok(&env.cli(&["get", &format!("k{i}")]), "get");
    }
    env
}

fn audit_dir(env: &Env) -> PathBuf {
    env.home.join("audit")
}

fn segments(env: &Env) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(audit_dir(env))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("segment-"))
        .collect();
    v.sort();
    v
}

fn verify(env: &Env) -> (i32, String) {
    let out = env.cli(&["audit", "verify"]);
    (out.status.code().unwrap(), stderr(&out))
}

fn listed(env: &Env, args: &[&str]) -> Vec<Value> {
    let mut a = vec!["audit", "list", "--json"];
    a.extend_from_slice(args);
    let out = env.cli(&a);
    assert_ok(&out, "audit list");
    json(&out).as_array().unwrap().clone()
}

fn restart_unlocked(env: &mut Env) {
    env.start();
    assert_ok(&env.cli_with_password(&["unlock"]), "unlock");
}

#[test]
fn a_log_cut_or_wiped_while_stopped_fails_verify_until_acknowledged() {
    for wipe in [false, true] {
        let mut env = history();
        assert_eq!(verify(&env).0, 0);
        env.stop();
        let segs = segments(&env);
        assert!(segs.len() > 1, "small segments rotate");
        if wipe {
            std::fs::remove_dir_all(audit_dir(&env)).unwrap();
        } else {
            std::fs::remove_file(segs.last().unwrap()).unwrap();
        }
        restart_unlocked(&mut env);
        let (code, err) = verify(&env);
        assert_eq!(code, 1, "wipe={wipe}: a cut log must not verify");
        assert!(err.contains("audit acknowledge"), "{err}");
        // What verified is listed; the gap record says what happened.
        let gaps = listed(&env, &["--action", "audit_gap"]);
        assert!(gaps.is_empty(), "nothing after the break is listed yet");
        let out = env.cli(&["audit", "acknowledge"]);
        assert_ok(&out, "acknowledge");
        assert!(stdout(&out).contains("acknowledged"), "{}", stdout(&out));
        assert_eq!(verify(&env).0, 0, "wipe={wipe}: verifies once acknowledged");
        let gap = &listed(&env, &["--action", "audit_gap"])[0];
        assert!(
            gap["detail"]["expected_seq"].as_u64().unwrap()
                > gap["detail"]["found_seq"].as_u64().unwrap()
        );
        assert_eq!(
            listed(&env, &["--action", "audit_gap_acknowledged"])[0]["caller"],
            "user"
        );
    }
}

#[test]
fn an_agent_cannot_acknowledge_a_gap() {
    let mut env = history();
    env.stop();
    std::fs::remove_file(segments(&env).last().unwrap()).unwrap();
    restart_unlocked(&mut env);
    let mut c = env.command(&["audit", "acknowledge"]);
    c.env("CLAUDECODE", "1");
    assert_code(&run(c, None), 5, "agent acknowledge");
    assert_eq!(verify(&env).0, 1);
}

#[test]
fn a_forged_seq_0_line_is_not_skipped_and_not_listed() {
    let mut env = history();
    env.stop();
    let first = segments(&env)[0].clone();
    let text = std::fs::read_to_string(&first).unwrap();
    let forged = r#"{"seq":0,"ts":"2026-01-01T00:00:00.000Z","action":"get","source":"cli","caller":"user","peer":{"pid":1,"uid":0,"exe":null},"keys":["forged/key"],"success":true,"prev":"","mac":"00"}"#;
    std::fs::write(&first, format!("{forged}\n{text}")).unwrap();
    restart_unlocked(&mut env);
    let (code, err) = verify(&env);
    assert_eq!(code, 1);
    assert!(err.contains("seq"), "{err}");
    let out = env.cli(&["audit", "list", "--json"]);
    assert!(!stdout(&out).contains("forged/key"));
    assert!(
        stderr(&out).contains("only records that verify"),
        "{}",
        stderr(&out)
    );
}

/// Locks, makes two failed unlocks (recorded while locked), stops.
fn locked_time_records(env: &mut Env) -> PathBuf {
    assert_ok(&env.cli(&["lock"]), "lock");
    for _ in 0..2 {
        let mut bad = env.command(&["unlock"]);
        bad.env("SECRETCTL_PASSWORD", "wrong password");
        assert_code(&run(bad, None), 1, "wrong unlock");
    }
    env.stop();
    let pending = audit_dir(env).join("pending.jsonl");
    assert_eq!(
        std::fs::read_to_string(&pending).unwrap().lines().count(),
        2,
        "the failed unlocks (the lock itself was sealed before the key went)"
    );
    pending
}

#[test]
fn dropped_locked_time_records_are_found() {
    let mut env = history();
    let pending = locked_time_records(&mut env);
    let text = std::fs::read_to_string(&pending).unwrap();
    let kept: Vec<&str> = text.lines().take(1).collect();
    std::fs::write(&pending, format!("{}\n", kept.join("\n"))).unwrap();
    restart_unlocked(&mut env);
    let tampered = listed(&env, &["--action", "audit_pending_tampered"]);
    assert_eq!(tampered.len(), 1, "{tampered:?}");
    assert!(
        tampered[0]["error"].as_str().unwrap().contains("removed"),
        "{}",
        tampered[0]
    );
}

#[test]
fn forged_locked_time_records_are_not_sealed() {
    let mut env = history();
    let pending = locked_time_records(&mut env);
    let text = std::fs::read_to_string(&pending).unwrap();
    // Pretend the failed unlocks succeeded (an attacker hiding guesses).
    std::fs::write(
        &pending,
        text.replace("\"success\":false", "\"success\":true"),
    )
    .unwrap();
    restart_unlocked(&mut env);
    let tampered = listed(&env, &["--action", "audit_pending_tampered"]);
    assert_eq!(tampered.len(), 1);
    let unlocks = listed(&env, &["--action", "unlock"]);
    assert!(
        unlocks
            .iter()
            .all(|r| r["success"] == true && r["error"].is_null()),
        "no altered record was sealed as genuine: {unlocks:?}"
    );
    assert_eq!(verify(&env).0, 0, "the chain itself is intact");
}

#[test]
fn a_torn_tail_is_repaired_and_recorded_not_reported_as_an_edit() {
    let mut env = history();
    env.stop();
    let last = segments(&env).last().unwrap().clone();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"seq\":999,\"ts\":\"2026").unwrap();
    drop(f);
    restart_unlocked(&mut env);
    assert_eq!(verify(&env).0, 0, "{}", verify(&env).1);
    let failed = listed(&env, &["--action", "audit_write_failed"]);
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("incomplete line")
    );
}

/// Mounts a small tmpfs at `dir` (root, where mounting works).
fn small_tmpfs(dir: &Path) -> Option<TmpfsGuard> {
    std::fs::create_dir_all(dir).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| TmpfsGuard(dir.to_path_buf()))
}

struct TmpfsGuard(PathBuf);

impl Drop for TmpfsGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_refuses_unrecordable_actions_and_recovers_without_restart() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP a_full_disk_...: mounting a small tmpfs needs root");
        return;
    }
    let mut env = Env::new();
    let Some(_mount) = small_tmpfs(&env.home) else {
        eprintln!("SKIP a_full_disk_...: mount -t tmpfs is not permitted here");
        return;
    };
    env.start();
    env.init();
    env.set("k", VALUE);
    // Fill the disk.
    let filler = env.home.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    let _ = f.sync_all();
    drop(f);
    // A write first, while the log still looks healthy: the vault itself
    // hits the full disk (redb then refuses all writes until reopened).
    let out = env.cli_stdin(&["set", "k2"], Some(b"another-value-123"));
    assert_code(&out, 1, "set on a full disk");
    let out = env.cli(&["get", "k"]);
    assert_code(&out, 1, "get on a full disk");
    assert!(
        !stdout(&out).contains(VALUE),
        "an unrecorded get reveals nothing"
    );
    assert!(
        stderr(&out).contains("audit log cannot be written"),
        "{}",
        stderr(&out)
    );
    // Room again: the same daemon serves, and the outage is in the log.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(stdout(&env.cli(&["get", "k"])), VALUE);
    env.set("k2", "another-value-123");
    assert!(
        env.log_text()
            .contains("vault file reopened after an I/O error"),
        "the full disk broke redb, and the daemon reopened it"
    );
    assert_eq!(verify(&env).0, 0, "{}", verify(&env).1);
    assert!(!listed(&env, &["--action", "audit_write_resumed"]).is_empty());
    env.assert_log_clean(&[VALUE]);
}
