//! The daemon's process hardening and file permissions, checked from the
//! outside: what the daemon reports about itself (`status --json`), what the
//! kernel says about it (`/proc/<pid>`), and the modes of what it creates.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::*;

/// Output of `sh -c <script>`, trimmed.
#[cfg(target_os = "linux")]
fn sh(script: &str) -> String {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(script);
    let out = run(cmd, None);
    assert_ok(&out, script);
    stdout(&out).trim().to_string()
}

/// A field of `/proc/<pid>/status` in kB.
#[cfg(target_os = "linux")]
fn proc_status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Soft and hard "Max core file size" from `/proc/<pid>/limits`.
#[cfg(target_os = "linux")]
fn proc_core_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("core limit line");
    let mut words = line["Max core file size".len()..].split_whitespace();
    (
        words.next().unwrap().to_string(),
        words.next().unwrap().to_string(),
    )
}

/// Shell setup giving the daemon a core limit it must lower itself and an
/// mlock allowance big enough for the key page, so the checks below can
/// only pass through the daemon's own hardening.
#[cfg(target_os = "linux")]
const LIMITS: &str = "ulimit -c unlimited 2>/dev/null || ulimit -S -c \"$(ulimit -H -c)\"
ulimit -l 1024 2>/dev/null || ulimit -S -l \"$(ulimit -H -l)\"";

#[cfg(target_os = "linux")]
#[test]
fn daemon_is_undumpable_without_core_files_and_keeps_its_key_mlocked() {
    // The daemon starts from these limits: prove they are what the checks
    // need, or fail (never pass silently on a machine that cannot tell).
    let core = sh(&format!("{LIMITS}\nulimit -c"));
    let memlock = sh(&format!("{LIMITS}\nulimit -l"));
    assert_ne!(
        core, "0",
        "cannot give the daemon a non-zero core limit to lower (hard limit 0): \
         run the suite where `ulimit -c` can be raised"
    );
    assert!(
        memlock == "unlimited" || memlock.parse::<u64>().unwrap() >= 64,
        "RLIMIT_MEMLOCK is {memlock} KiB: the daemon cannot mlock its key page; \
         raise it (ulimit -l 1024) or run as root"
    );

    let mut env = Env::new();
    env.start_with(LIMITS);
    env.init();
    let pid = env.daemon_pid().unwrap();

    let st = json(&env.cli(&["status", "--json"]));
    let h = &st["hardening"];
    assert_eq!(h["dumpable"], false, "{st}");
    assert_eq!(h["core_limit"], 0, "{st}");
    assert_eq!(h["mlock_ok"], true, "{st}");
    assert!(h["locked_bytes"].as_u64().unwrap() >= 4096, "{st}");
    let human = stdout(&env.cli(&["status"]));
    assert!(
        human.contains("hardening: not dumpable, no core files"),
        "{human}"
    );

    // The kernel's view agrees.
    assert!(proc_status_kb(pid, "VmLck:") >= 4, "no locked page");
    assert_eq!(proc_core_limits(pid), ("0".into(), "0".into()));

    // Locking drops (and unlocks) the key page.
    assert_ok(&env.cli(&["lock"]), "lock");
    let st = json(&env.cli(&["status", "--json"]));
    assert_eq!(st["hardening"]["locked_bytes"], 0, "{st}");
    assert_eq!(proc_status_kb(pid, "VmLck:"), 0);
    assert_ok(&env.cli_with_password(&["unlock"]), "unlock");
    let st = json(&env.cli(&["status", "--json"]));
    assert!(
        st["hardening"]["locked_bytes"].as_u64().unwrap() >= 4096,
        "{st}"
    );
    assert!(proc_status_kb(pid, "VmLck:") >= 4);
}

/// Every path below `dir`, depth first.
fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.clone());
        if p.is_dir() {
            walk(&p, out);
        }
    }
}

#[test]
fn socket_is_0600_and_every_file_is_private_under_an_open_umask() {
    let mut env = Env::new();
    // A permissive umask: only the daemon's own umask 077 keeps files private.
    env.start_with("umask 022");
    env.init();
    env.set("app/token", "tok-file-modes-4d5e6f7a");
    assert_ok(&env.cli(&["lock"]), "lock");
    assert_ok(&env.cli_with_password(&["unlock"]), "unlock");

    let socket = std::fs::metadata(&env.socket).unwrap();
    assert_eq!(socket.mode() & 0o777, 0o600, "socket mode");
    let dir = std::fs::metadata(env.socket.parent().unwrap()).unwrap();
    assert_eq!(dir.mode() & 0o777, 0o700, "socket directory mode");

    let mut paths = vec![env.home.clone()];
    walk(&env.home, &mut paths);
    assert!(paths.iter().any(|p| p.ends_with("vault.redb")), "{paths:?}");
    assert!(
        paths
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "jsonl")),
        "audit segments present: {paths:?}"
    );
    for p in &paths {
        let m = std::fs::symlink_metadata(p).unwrap();
        let mode = m.permissions().mode() & 0o777;
        assert_eq!(
            mode & 0o077,
            0,
            "{} has mode {mode:04o}: open to group or others",
            p.display()
        );
    }
}
