//! `backup`, `restore` and `password change` (issue 13, contract §10)
//! against the real daemon and CLI: round trips, the audit-log rule, what
//! is kept and what is never touched, refusals that change nothing, a
//! password change killed at random instants, and agents held to §9.

mod common;

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::Value;

const NEW_PASSWORD: &str = "a completely different staple 42";
const BACKUP_PASSWORD: &str = "separate backup passphrase 7";

/// Values with the awkward bytes, each unique enough to grep for.
const VALUES: [(&str, &str); 4] = [
    ("app/db", "bk-db-7Hq2 'quoted' \"dq\" $HOME \\ back"),
    ("app/api", "bk-api-Zx91\nsecond line"),
    ("web/token", "bk-token-Pp3 # not a comment = eq"),
    ("web/unicode", "bk-uni-Ωmega ünïcödé  "),
];

fn values() -> Vec<&'static str> {
    VALUES.iter().map(|(_, v)| *v).collect()
}

/// Neither values nor passwords in the daemon log, the audit files, or
/// the given outputs.
fn assert_clean(env: &Env, outputs: &[&Output]) {
    let mut needles = values();
    needles.extend([PASSWORD, NEW_PASSWORD, BACKUP_PASSWORD]);
    env.assert_log_clean(&needles);
    for dir in audit_dirs(&env.home) {
        for f in std::fs::read_dir(&dir).unwrap() {
            let text = std::fs::read(f.unwrap().path()).unwrap();
            let text = String::from_utf8_lossy(&text);
            for n in &needles {
                assert!(!text.contains(n), "{} holds {n:?}", dir.display());
            }
        }
    }
    for out in outputs {
        for n in &needles {
            assert!(
                !stdout(out).contains(n) && !stderr(out).contains(n),
                "output holds {n:?}: {}{}",
                stdout(out),
                stderr(out)
            );
        }
    }
}

fn audit_dirs(home: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(home)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("audit")
        })
        .collect()
}

/// A vault with the values above, a policy and a file of the user's own.
fn setup() -> Env {
    let env = Env::unlocked();
    for (k, v) in VALUES {
        env.set(k, v);
    }
    env.write_policy("version: 1\ndefault_action: deny\nallowed_commands: [cargo]\n");
    write_private(&env.home.join("notes.txt"), "the user's own file\n");
    env
}

fn backup(env: &Env, file: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["backup", "-o", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    env.cli_with_password(&args)
}

fn restore(env: &Env, file: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["restore", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    env.cli_with_password(&args)
}

fn get(env: &Env, key: &str) -> String {
    let out = env.cli(&["get", key]);
    assert_ok(&out, &format!("get {key}"));
    stdout(&out)
}

fn state(env: &Env) -> String {
    json(&env.cli(&["status", "--json"]))["state"]
        .as_str()
        .unwrap()
        .to_string()
}

fn audit_verify(env: &Env, what: &str) {
    let out = env.cli(&["audit", "verify"]);
    assert_ok(&out, &format!("audit verify {what}"));
}

fn records(env: &Env) -> Vec<Value> {
    let out = env.cli(&["audit", "list", "--json"]);
    assert_ok(&out, "audit list");
    json(&out).as_array().unwrap().clone()
}

/// What a vault holds, read from its file with the daemon stopped: the
/// header and every record's stored bytes. (The file's own bytes change
/// with every audited request, which stores the audit log's anchor in it,
/// a refused restore included.)
type Content = (secretctld::store::Header, BTreeMap<String, Vec<u8>>);

fn content_of(path: &Path) -> Content {
    let store = secretctld::store::Store::open(path).unwrap().unwrap();
    let mut records = BTreeMap::new();
    store
        .scan_raw("", |k, v| {
            records.insert(k.to_string(), v.to_vec());
            Ok(())
        })
        .unwrap();
    (store.header().unwrap(), records)
}

/// The same for the running daemon's vault: stopped, read, started and
/// unlocked again (with [`PASSWORD`]) if it was unlocked.
fn vault_content(env: &mut Env) -> Content {
    let unlocked = state(env) == "unlocked";
    env.stop();
    let c = content_of(&env.home.join("vault.redb"));
    env.start();
    if unlocked {
        assert_ok(&env.cli_with_password(&["unlock"]), "unlock again");
    }
    c
}

/// Every file in the home except the audit log and the vault: name → bytes.
fn other_files(home: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(home)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "vault.redb")
        .map(|n| {
            let bytes = std::fs::read(home.join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

fn names_in(home: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(home)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn backup_then_delete_then_restore_brings_everything_back() {
    let env = setup();
    let file = env.dir.path().join("vault.age");
    let out = backup(&env, &file, &["--json"]);
    assert_ok(&out, "backup");
    let summary = json(&out);
    assert_eq!(summary["secret_count"], 4);
    assert_eq!(summary["protection"], "master-password");
    let meta = std::fs::symlink_metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "backup is 0600");
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"), "an age file");
    for v in values() {
        let head = &v.as_bytes()[..8];
        assert!(
            !bytes.windows(head.len()).any(|w| w == head),
            "the file is encrypted"
        );
    }
    // Never over an existing file without --force, never through a link.
    assert_code(&backup(&env, &file, &[]), 1, "existing file");
    assert_eq!(std::fs::read(&file).unwrap(), bytes, "left alone");
    let target = env.dir.path().join("elsewhere");
    std::fs::write(&target, b"do not touch").unwrap();
    let link = env.dir.path().join("link.age");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert_code(&backup(&env, &link, &[]), 1, "through a symlink");
    assert_code(&backup(&env, &link, &["--force"]), 1, "symlink, --force");
    assert_eq!(std::fs::read(&target).unwrap(), b"do not touch");

    // Changes after the backup.
    assert_ok(&env.cli(&["delete", "app/db", "--force"]), "delete");
    assert_ok(&env.cli(&["delete", "web/token", "--force"]), "delete");
    env.set("later/added", "bk-later-value");
    let others = other_files(&env.home);
    let audit_before = std::fs::read_dir(env.home.join("audit")).unwrap().count();

    let out = restore(&env, &file, &["--json"]);
    assert_ok(&out, "restore");
    let r = json(&out);
    assert_eq!(r["changed"], true);
    assert_eq!(r["secret_count"], 4);
    assert_eq!(r["deep_checked"], true);
    let previous = r["previous_vault"].as_str().unwrap().to_string();
    assert!(
        previous.starts_with("vault.redb.before-restore-"),
        "{previous}"
    );
    assert_eq!(state(&env), "locked", "locked after a restore");

    // What is kept, and what is untouched.
    let prev_path = env.home.join(&previous);
    assert_eq!(
        std::fs::metadata(&prev_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (_, prev_records) = content_of(&prev_path);
    assert!(prev_records.contains_key("later/added"));
    assert!(!prev_records.contains_key("app/db"));
    let mut now = other_files(&env.home);
    assert!(now.remove(&previous).is_some());
    assert_eq!(now, others, "no other file changed");
    assert!(
        !names_in(&env.home)
            .iter()
            .any(|n| n.starts_with("audit.before-restore")),
        "same vault: the audit log stays"
    );
    assert!(std::fs::read_dir(env.home.join("audit")).unwrap().count() >= audit_before);
    assert!(
        !names_in(&env.home)
            .iter()
            .any(|n| n.starts_with(".restore")),
        "no work directory left"
    );

    // The backup's secrets, byte for byte.
    assert_ok(&env.cli_with_password(&["unlock"]), "unlock");
    for (k, v) in VALUES {
        assert_eq!(get(&env, k), v, "{k}");
    }
    assert_code(
        &env.cli(&["get", "later/added"]),
        4,
        "added after the backup",
    );
    audit_verify(&env, "after the restore");
    let recs = records(&env);
    let restored: Vec<_> = recs
        .iter()
        .filter(|r| r["action"] == "restore" && r["success"] == true)
        .collect();
    assert_eq!(restored.len(), 1, "the restore is recorded once");
    assert_eq!(restored[0]["detail"]["mode"], "restore");
    assert_eq!(restored[0]["detail"]["audit"], "kept");
    assert!(
        recs.iter()
            .any(|r| r["action"] == "backup" && r["success"] == true),
        "the backup is recorded"
    );
    // And the restored vault works on: a write, a second verify.
    env.set("after/restore", "bk-after-value");
    audit_verify(&env, "after a write");

    // --force replaces an existing file (not through a link).
    let out = backup(&env, &file, &["--force"]);
    assert_ok(&out, "backup --force");
    assert_ne!(std::fs::read(&file).unwrap(), bytes);
    assert_clean(&env, &[&out, &restore(&env, &file, &["--verify-only"])]);
}

#[test]
fn the_backup_opens_with_age_and_tar() {
    let env = setup();
    let file = env.dir.path().join("b.age");
    assert_ok(&backup(&env, &file, &[]), "backup");
    // age's own decryptor (the format, not this project's code), then tar.
    let decryptor = age::Decryptor::new(std::fs::File::open(&file).unwrap()).unwrap();
    assert!(decryptor.is_scrypt(), "a passphrase (scrypt) recipient");
    let identity = age::scrypt::Identity::new(PASSWORD.to_string().into());
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap();
    let mut plain = Vec::new();
    reader.read_to_end(&mut plain).unwrap();
    let out_dir = env.dir.path().join("opened");
    std::fs::create_dir(&out_dir).unwrap();
    let mut tar = Command::new("tar")
        .args(["-x", "-v", "-f", "-", "-C"])
        .arg(&out_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(tar.stdin.as_mut().unwrap(), &plain).unwrap();
    drop(tar.stdin.take());
    let out = tar.wait_with_output().unwrap();
    assert!(out.status.success(), "tar -x");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.starts_with("manifest.json\nvault.redb\naudit/segment-"),
        "{listed}"
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "secretctl-backup");
    assert_eq!(manifest["version"], 1);
    assert_eq!(manifest["secret_count"], 4);
    assert_eq!(manifest["protection"], "master-password");
    // The vault inside is a vault: the same records as the live one.
    let (_, inside) = content_of(&out_dir.join("vault.redb"));
    assert_eq!(
        inside.keys().cloned().collect::<Vec<_>>(),
        vec!["app/api", "app/db", "web/token", "web/unicode"]
    );
    // Values stay sealed inside the tar too.
    for v in values() {
        let head = &v.as_bytes()[..8];
        assert!(!plain.windows(head.len()).any(|w| w == head), "sealed");
    }
}

#[test]
fn tampered_backups_and_wrong_passwords_change_nothing() {
    let mut env = setup();
    let file = env.dir.path().join("b.age");
    assert_ok(&backup(&env, &file, &[]), "backup");
    assert_ok(&env.cli(&["delete", "app/db", "--force"]), "delete");
    let before = vault_content(&mut env);
    let names = names_in(&env.home);
    let others = other_files(&env.home);
    let ino = std::fs::metadata(env.home.join("vault.redb"))
        .unwrap()
        .ino();
    let good = std::fs::read(&file).unwrap();
    let mut outputs = Vec::new();

    // A flipped bit anywhere: header, payload, last chunk.
    for (i, at) in [30, good.len() / 3, good.len() / 2, good.len() - 1]
        .into_iter()
        .enumerate()
    {
        let mut bad = good.clone();
        bad[at] ^= 0x04;
        let path = env.dir.path().join(format!("flip{i}.age"));
        std::fs::write(&path, &bad).unwrap();
        let out = restore(&env, &path, &[]);
        assert_code(&out, 1, &format!("flipped byte at {at}"));
        outputs.push(out);
    }
    // Cut short, not an age file at all, and the wrong password.
    let cut = env.dir.path().join("cut.age");
    std::fs::write(&cut, &good[..good.len() - 100]).unwrap();
    outputs.push(restore(&env, &cut, &[]));
    let junk = env.dir.path().join("junk.age");
    std::fs::write(&junk, b"hello, not a backup\n").unwrap();
    outputs.push(restore(&env, &junk, &[]));
    let mut wrong = env.command(&["restore", file.to_str().unwrap()]);
    wrong.env("SECRETCTL_PASSWORD", "not the right password");
    let out = run(wrong, None);
    assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));
    outputs.push(out);
    for out in &outputs {
        assert_code(out, 1, "refused");
    }
    // --verify-only and --dry-run of the good file change nothing either.
    let out = restore(&env, &file, &["--verify-only"]);
    assert_ok(&out, "verify-only");
    assert!(stdout(&out).starts_with("backup OK"), "{}", stdout(&out));
    outputs.push(out);
    let out = restore(&env, &file, &["--dry-run", "--json"]);
    assert_ok(&out, "dry-run");
    let r = json(&out);
    assert_eq!(r["changed"], false);
    assert!(
        r["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("would be kept as vault.redb.before-restore-")),
        "{r}"
    );
    outputs.push(out);

    assert_eq!(state(&env), "unlocked", "never locked by a refused restore");
    assert_eq!(vault_content(&mut env), before, "the vault is the same");
    assert_eq!(
        std::fs::metadata(env.home.join("vault.redb"))
            .unwrap()
            .ino(),
        ino,
        "the same file"
    );
    assert_eq!(names_in(&env.home), names, "nothing added or removed");
    assert_eq!(other_files(&env.home), others);
    assert_code(&env.cli(&["get", "app/db"]), 4, "still deleted");
    audit_verify(&env, "after refusals");
    let recs = records(&env);
    let refused = recs
        .iter()
        .filter(|r| r["action"] == "restore" && r["success"] == false)
        .count();
    assert_eq!(refused, 7, "every refused restore is recorded");
    let refs: Vec<&Output> = outputs.iter().collect();
    assert_clean(&env, &refs);
}

#[test]
fn restoring_another_vault_moves_the_audit_log_aside() {
    let a = setup();
    let file = a.dir.path().join("a.age");
    assert_ok(&backup(&a, &file, &[]), "backup of A");

    // B: another vault with another password and a history of its own.
    let b = Env::new();
    let mut b = b;
    b.start();
    let mut init = b.command(&[
        "init",
        "--kdf-memory",
        "1",
        "--kdf-iterations",
        "1",
        "--kdf-parallelism",
        "1",
    ]);
    init.env("SECRETCTL_PASSWORD", NEW_PASSWORD);
    assert_ok(&run(init, None), "init B");
    b.set("b/only", "bk-b-only-value");
    write_private(&b.home.join("notes.txt"), "B's file\n");
    let b_audit: BTreeMap<String, Vec<u8>> = std::fs::read_dir(b.home.join("audit"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();

    let out = restore(&b, &file, &["--json"]);
    assert_ok(&out, "restore A into B");
    let r = json(&out);
    assert_eq!(r["changed"], true);
    let aside: Vec<String> = names_in(&b.home)
        .into_iter()
        .filter(|n| n.starts_with("audit.before-restore-"))
        .collect();
    assert_eq!(aside.len(), 1, "{:?}", names_in(&b.home));
    // B's log is kept as it was (the lock before the restore included).
    for (name, bytes) in &b_audit {
        let kept = std::fs::read(b.home.join(&aside[0]).join(name)).unwrap();
        assert!(kept.starts_with(bytes), "{name} kept");
    }
    assert_eq!(
        std::fs::read_to_string(b.home.join("notes.txt")).unwrap(),
        "B's file\n"
    );

    // A's password opens it now; B's does not.
    let mut old = b.command(&["unlock"]);
    old.env("SECRETCTL_PASSWORD", NEW_PASSWORD);
    assert_code(&run(old, None), 1, "B's password");
    assert_ok(&b.cli_with_password(&["unlock"]), "A's password");
    for (k, v) in VALUES {
        assert_eq!(get(&b, k), v);
    }
    assert_code(
        &b.cli(&["get", "b/only"]),
        4,
        "B's secret is in the kept vault",
    );
    audit_verify(&b, "with A's log installed");
    let recs = records(&b);
    let rec = recs
        .iter()
        .find(|r| r["action"] == "restore" && r["success"] == true)
        .expect("the restore is in the installed log");
    assert_eq!(rec["detail"]["audit"], "replaced");
    assert_eq!(rec["detail"]["audit_aside"], aside[0].as_str());
    b.stop();
    let (_, kept) = content_of(&b.home.join(r["previous_vault"].as_str().unwrap()));
    assert!(kept.contains_key("b/only"), "B's vault kept aside");
}

#[test]
fn a_separate_backup_password() {
    let env = setup();
    let file = env.dir.path().join("sep.age");
    let mut cmd = env.command(&["backup", "-o", file.to_str().unwrap(), "--backup-password"]);
    cmd.env("SECRETCTL_PASSWORD", PASSWORD)
        .env("SECRETCTL_BACKUP_PASSWORD", BACKUP_PASSWORD);
    let out = run(cmd, None);
    assert_ok(&out, "backup --backup-password");
    assert!(stdout(&out).contains("separate backup password"));
    // The master password does not open it; the backup password does, and
    // with the vault unlocked the check is complete.
    let out = restore(&env, &file, &["--verify-only"]);
    assert_code(&out, 1, "master password on a separately protected backup");
    let restore_sep = |extra: &[&str]| {
        let mut args = vec!["restore", file.to_str().unwrap(), "--backup-password"];
        args.extend_from_slice(extra);
        let mut c = env.command(&args);
        c.env("SECRETCTL_BACKUP_PASSWORD", BACKUP_PASSWORD);
        run(c, None)
    };
    let out = restore_sep(&["--verify-only", "--json"]);
    assert_ok(&out, "verify-only with the backup password");
    assert_eq!(
        json(&out)["deep_checked"],
        true,
        "checked with the live key"
    );
    assert_ok(&env.cli(&["lock"]), "lock");
    let out = restore_sep(&["--verify-only", "--json"]);
    assert_ok(&out, "verify-only, locked");
    assert_eq!(json(&out)["deep_checked"], false, "no key while locked");
    assert_ok(&env.cli_with_password(&["unlock"]), "unlock");
    assert_ok(&env.cli(&["delete", "app/api", "--force"]), "delete");
    let out = restore_sep(&[]);
    assert_ok(&out, "restore with the backup password");
    assert_ok(
        &env.cli_with_password(&["unlock"]),
        "unlock, master password",
    );
    assert_eq!(get(&env, "app/api"), VALUES[1].1);
    audit_verify(&env, "after a separately protected restore");
    // Too short a backup password is refused before anything is asked of
    // the daemon.
    let mut cmd = env.command(&["backup", "-o", "/tmp/never.age", "--backup-password"]);
    cmd.env("SECRETCTL_PASSWORD", PASSWORD)
        .env("SECRETCTL_BACKUP_PASSWORD", "short");
    assert_code(&run(cmd, None), 2, "short backup password");
    assert!(!Path::new("/tmp/never.age").exists());
    assert_clean(&env, &[&out]);
}

fn change_password(env: &Env, old: &str, new: &str, extra: &[&str]) -> Output {
    let mut args = vec!["password", "change"];
    args.extend_from_slice(extra);
    let mut cmd = env.command(&args);
    cmd.env("SECRETCTL_PASSWORD", old)
        .env("SECRETCTL_NEW_PASSWORD", new);
    run(cmd, None)
}

fn unlock_with(env: &Env, password: &str) -> Output {
    let mut cmd = env.command(&["unlock"]);
    cmd.env("SECRETCTL_PASSWORD", password);
    run(cmd, None)
}

#[test]
fn password_change_then_only_the_new_password_unlocks() {
    let env = setup();
    // Wrong old password, or the same one again: refused, nothing changed.
    assert_code(
        &change_password(&env, "not the password", NEW_PASSWORD, &[]),
        1,
        "wrong old password",
    );
    assert_code(
        &change_password(&env, PASSWORD, PASSWORD, &[]),
        2,
        "the same password",
    );
    let out = change_password(
        &env,
        PASSWORD,
        NEW_PASSWORD,
        &["--kdf-memory", "2", "--json"],
    );
    assert_ok(&out, "password change");
    let r = json(&out);
    assert_eq!(r["kdf"]["memory_kib"], 2048, "new KDF memory");
    assert_eq!(r["kdf"]["iterations"], 1, "kept");
    assert_eq!(r["state"], "unlocked", "the session stays as it was");
    assert_eq!(get(&env, "app/db"), VALUES[0].1, "values untouched");
    assert_ok(&env.cli(&["lock"]), "lock");
    assert_code(&unlock_with(&env, PASSWORD), 1, "old password");
    assert_ok(&unlock_with(&env, NEW_PASSWORD), "new password");
    for (k, v) in VALUES {
        assert_eq!(get(&env, k), v);
    }
    // Locked, it works too; and back.
    assert_ok(&env.cli(&["lock"]), "lock");
    let out = change_password(&env, NEW_PASSWORD, PASSWORD, &[]);
    assert_ok(&out, "change while locked");
    assert_eq!(state(&env), "locked");
    assert_ok(&unlock_with(&env, PASSWORD), "first password again");
    audit_verify(&env, "after password changes");
    let recs = records(&env);
    let changes: Vec<_> = recs
        .iter()
        .filter(|r| r["action"] == "password_change")
        .map(|r| r["success"].as_bool().unwrap())
        .collect();
    assert_eq!(changes, vec![false, true, true], "{changes:?}");
    assert_clean(&env, &[&out]);
}

/// A pseudo-random number (seeded by the OS through `RandomState`).
fn random_below(n: u64) -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    h.finish() % n
}

#[test]
fn password_change_killed_at_random_instants_leaves_one_working_password() {
    let mut env = setup();
    let passwords = [PASSWORD, NEW_PASSWORD];
    // How long a whole change takes here (CLI start, connect, Argon2id
    // twice, the commit), so the random kills spread over all of it.
    let mut span = std::time::Duration::ZERO;
    for (from, to) in [(0, 1), (1, 0)] {
        let t = std::time::Instant::now();
        let out = change_password(
            &env,
            passwords[from],
            passwords[to],
            &["--kdf-memory", "16"],
        );
        assert_ok(&out, "password change, timed");
        span = span.max(t.elapsed());
    }
    let mut current = 0usize;
    let (mut old_won, mut new_won) = (0, 0);
    for i in 0..20 {
        let next = 1 - current;
        // Larger KDF parameters on some rounds, so the kill lands before,
        // during and after the Argon2id work and the commit.
        let memory = ["1", "4", "8", "16"][i % 4];
        let mut cmd = env.command(&["password", "change", "--kdf-memory", memory]);
        cmd.env("SECRETCTL_PASSWORD", passwords[current])
            .env("SECRETCTL_NEW_PASSWORD", passwords[next])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        // The fault injection: a random delay, then SIGKILL.
        let micros = span.as_micros() as u64 * 5 / 4;
        std::thread::sleep(std::time::Duration::from_micros(random_below(
            micros.max(1),
        )));
        env.kill9();
        let out = wait_output(child, CLI_LIMIT, "password change");
        // With the daemon gone, open the file directly: exactly one of the
        // two passwords must open it, and the data key is the same.
        let vault = secretctld::vault::Vault::open(&env.home.join("vault.redb"))
            .unwrap()
            .expect("a vault");
        let opens: Vec<bool> = passwords
            .iter()
            .map(|p| vault.unwrap_with(p.as_bytes()).unwrap().is_some())
            .collect();
        assert_eq!(
            opens.iter().filter(|o| **o).count(),
            1,
            "round {i}: exactly one password opens the vault ({opens:?}; cli: {})",
            stderr(&out)
        );
        let winner = opens.iter().position(|o| *o).unwrap();
        let dk = vault
            .unwrap_with(passwords[winner].as_bytes())
            .unwrap()
            .unwrap();
        assert!(
            vault.check_all(&dk).unwrap().is_empty(),
            "every record opens"
        );
        if out.status.success() {
            assert_eq!(winner, next, "a reported change holds");
        }
        if winner == current {
            old_won += 1;
        } else {
            new_won += 1;
        }
        current = winner;
        drop(vault);
        env.start();
    }
    eprintln!(
        "kill -9 within 5/4 of {span:?} after a password change started: old password kept {old_won}, new one {new_won} of 20"
    );
    assert_ok(
        &unlock_with(&env, passwords[current]),
        "unlock after the loop",
    );
    for (k, v) in VALUES {
        assert_eq!(get(&env, k), v);
    }
    assert_code(
        &unlock_with(&env, passwords[1 - current]),
        1,
        "the other one",
    );
    env.assert_log_clean(&[PASSWORD, NEW_PASSWORD]);
}

/// `secretctl ARGS` with an agent's marker and no controlling terminal (no
/// consent prompt can be shown), passwords in the environment all the same.
fn as_agent(env: &Env, args: &[&str]) -> Output {
    let mut cmd = Command::new("setsid");
    env.apply(&mut cmd);
    cmd.arg("-w")
        .arg(bin("secretctl"))
        .args(args)
        .env("CLAUDECODE", "1")
        .env("SECRETCTL_PASSWORD", PASSWORD)
        .env("SECRETCTL_NEW_PASSWORD", NEW_PASSWORD)
        .env("SECRETCTL_BACKUP_PASSWORD", BACKUP_PASSWORD);
    run(cmd, None)
}

#[test]
fn agent_callers_are_refused() {
    let mut env = setup();
    let file = env.dir.path().join("user.age");
    assert_ok(&backup(&env, &file, &[]), "the user's backup");
    let before = vault_content(&mut env);
    let names = names_in(&env.home);
    let agent_file = env.dir.path().join("agent.age");
    let outs = [
        as_agent(&env, &["backup", "-o", agent_file.to_str().unwrap()]),
        as_agent(
            &env,
            &[
                "backup",
                "-o",
                agent_file.to_str().unwrap(),
                "--backup-password",
            ],
        ),
        as_agent(&env, &["restore", file.to_str().unwrap()]),
        as_agent(&env, &["restore", file.to_str().unwrap(), "--dry-run"]),
        as_agent(&env, &["password", "change"]),
    ];
    for out in &outs {
        assert_code(out, 5, "agent");
        assert!(
            stderr(out).contains("AI agent") || stderr(out).contains("agent"),
            "{}",
            stderr(out)
        );
    }
    assert!(!agent_file.exists(), "no backup file for the agent");
    assert_eq!(names_in(&env.home), names);
    assert_eq!(vault_content(&mut env), before);
    assert_ok(&unlock_with(&env, PASSWORD), "the password is unchanged");
    let recs = records(&env);
    let refused: Vec<_> = recs
        .iter()
        .filter(|r| {
            r["caller"] == "agent"
                && r["success"] == false
                && ["backup", "restore", "password_change"].contains(&r["action"].as_str().unwrap())
        })
        .collect();
    assert_eq!(refused.len(), 5, "every refusal is recorded: {recs:?}");
    let refs: Vec<&Output> = outs.iter().collect();
    assert_clean(&env, &refs);
}

#[test]
fn a_pruned_log_in_many_segments_round_trips() {
    let mut env = Env::new();
    env.write_config("audit:\n  segment_bytes: 2048\n");
    env.start();
    env.init();
    for (k, v) in VALUES {
        env.set(k, v);
        assert_ok(&env.cli(&["get", k]), "get");
    }
    let all = records(&env);
    let cut = all[all.len() / 2]["ts"].as_str().unwrap().to_string();
    assert_ok(&env.cli(&["audit", "prune", "--before", &cut]), "prune");
    // More records than one 2 KiB segment holds, so the pruned log spans
    // several segments whatever the prune left.
    for _ in 0..3 {
        for (k, _) in VALUES {
            assert_ok(&env.cli(&["get", k]), "get");
        }
    }
    let file = env.dir.path().join("pruned.age");
    let out = backup(&env, &file, &["--json"]);
    assert_ok(&out, "backup of a pruned log");
    assert!(json(&out)["audit_records"].as_u64().unwrap() > 5);

    // Into an empty home: the backup's log is installed as it is.
    let mut fresh = Env::new();
    fresh.start();
    let out = restore(&fresh, &file, &[]);
    assert_ok(&out, "restore into an empty home");
    assert!(stdout(&out).contains("no vault here"), "{}", stdout(&out));
    assert_ok(&fresh.cli_with_password(&["unlock"]), "unlock");
    assert_eq!(get(&fresh, "web/token"), VALUES[2].1);
    audit_verify(&fresh, "pruned log restored into an empty home");
    let names = names_in(&fresh.home.join("audit"));
    assert!(names.contains(&"checkpoint.json".to_string()), "{names:?}");
    assert!(
        names.iter().filter(|n| n.starts_with("segment-")).count() > 1,
        "{names:?}"
    );
    fresh.stop();

    // And over itself, the same vault, after more records and a prune.
    assert_ok(&env.cli(&["delete", "web/token", "--force"]), "delete");
    assert_ok(&restore(&env, &file, &[]), "restore over the same vault");
    assert_ok(&env.cli_with_password(&["unlock"]), "unlock");
    assert_eq!(get(&env, "web/token"), VALUES[2].1);
    audit_verify(&env, "same vault, pruned log");
}
