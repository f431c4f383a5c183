//! Backup and restore of a 100,000-secret vault (issue 13: each ≤ 5 s),
//! end to end through the real CLI and `secretctld` (release build):
//! `cargo build --release --workspace && cargo bench -p secretctl-tests --bench transfer`.
//! Results go to docs/PERFORMANCE.md by hand.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{Env, PASSWORD, assert_ok, json};
use secretctl_proto::v1::{FieldInput, SetRequest};

const SECRETS: usize = 100_000;
const ROUNDS: usize = 3;

fn set_req(i: usize) -> SetRequest {
    SetRequest {
        key: format!("load/{:02}/secret-{i:06}", i % 50),
        fields: vec![FieldInput::new(
            "value",
            format!("v-{i}-abcdefghijklmnop").into_bytes(),
        )],
        ..Default::default()
    }
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<44} n={} min={:>8.2?} median={:>8.2?} max={:>8.2?}",
        samples.len(),
        samples[0],
        samples[samples.len() / 2],
        samples[samples.len() - 1]
    );
}

/// age's passphrase encryption and decryption of an empty payload: the
/// scrypt work both sides pay whatever the vault's size.
fn scrypt_alone() -> (Duration, Duration) {
    let t = Instant::now();
    let r = age::scrypt::Recipient::new(PASSWORD.to_string().into());
    let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
    let mut w = enc.wrap_output(Vec::new()).unwrap();
    w.write_all(b"x").unwrap();
    let file = w.finish().unwrap();
    let encrypt = t.elapsed();
    let t = Instant::now();
    let d = age::Decryptor::new(file.as_slice()).unwrap();
    let id = age::scrypt::Identity::new(PASSWORD.to_string().into());
    let mut out = Vec::new();
    d.decrypt(std::iter::once(&id as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    (encrypt, t.elapsed())
}

fn main() {
    let mut env = Env::new();
    // The daemon's step timings (`transfer timing`, debug) are printed at the end.
    env.log_level = "warn,secretctld::restore=debug";
    env.start();
    // The default KDF (Argon2id m=64 MiB, t=3, p=4), as a user has it.
    assert_ok(&env.cli_with_password(&["init"]), "init");
    env.stop();
    {
        let vault = secretctld::vault::Vault::open(&env.home.join("vault.redb"))
            .unwrap()
            .unwrap();
        let key = vault.unlock(PASSWORD.as_bytes()).unwrap();
        let reqs: Vec<_> = (0..SECRETS).map(set_req).collect();
        let t = Instant::now();
        vault.set_many(&key, &reqs).unwrap();
        println!("bulk load of {SECRETS} secrets: {:?}", t.elapsed());
    }
    env.start();
    assert_ok(&env.cli_with_password(&["unlock"]), "unlock");
    let vault_bytes = std::fs::metadata(env.home.join("vault.redb"))
        .unwrap()
        .len();
    println!(
        "vault.redb: {:.1} MiB",
        vault_bytes as f64 / (1 << 20) as f64
    );

    let (enc, dec) = scrypt_alone();
    println!("age scrypt alone (calibrated work factor): encrypt {enc:.2?}, decrypt {dec:.2?}");

    let file = env.dir.path().join("bench.age");
    let mut backups = Vec::new();
    for _ in 0..ROUNDS {
        let _ = std::fs::remove_file(&file);
        let t = Instant::now();
        let out = env.cli_with_password(&["backup", "-o", file.to_str().unwrap(), "--json"]);
        backups.push(t.elapsed());
        assert_ok(&out, "backup");
        assert_eq!(json(&out)["secret_count"], SECRETS as u64);
    }
    let size = std::fs::metadata(&file).unwrap().len();
    println!("backup file: {:.1} MiB", size as f64 / (1 << 20) as f64);
    report("secretctl backup, 100k secrets", backups);

    let mut verifies = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let out = env.cli_with_password(&["restore", file.to_str().unwrap(), "--verify-only"]);
        verifies.push(t.elapsed());
        assert_ok(&out, "restore --verify-only");
    }
    report("secretctl restore --verify-only, 100k", verifies);

    let mut restores = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let out = env.cli_with_password(&["restore", file.to_str().unwrap(), "--json"]);
        restores.push(t.elapsed());
        assert_ok(&out, "restore");
        assert_eq!(json(&out)["deep_checked"], true);
        assert_ok(&env.cli_with_password(&["unlock"]), "unlock after restore");
    }
    report("secretctl restore, 100k secrets", restores);
    let out = env.cli(&["audit", "verify"]);
    assert_ok(&out, "audit verify after the restores");
    println!("daemon step timings (backups, verifies, restores in order):");
    for line in env
        .log_text()
        .lines()
        .filter(|l| l.contains("transfer timing"))
    {
        let step = field(line, "step=");
        let ms = field(line, " ms=");
        println!("  {ms:>6} ms  {step}");
    }
}

/// The value after `name` in a log line (a quoted string or a word).
fn field(line: &str, name: &str) -> String {
    let Some(at) = line.find(name) else {
        return String::new();
    };
    let rest = &line[at + name.len()..];
    match rest.strip_prefix('"') {
        Some(q) => q.split('"').next().unwrap_or("").to_string(),
        None => rest.split_whitespace().next().unwrap_or("").to_string(),
    }
}
