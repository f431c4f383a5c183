//! Round trips and refusals of the backup format.

use super::*;

const PW: &str = "backup test passphrase";

fn manifest(audit_files: Vec<String>) -> Manifest {
    Manifest {
        format: FORMAT.into(),
        version: VERSION,
        created_at: 1_700_000_000,
        created: "2023-11-14T22:13:20Z".into(),
        secretctl_version: "test".into(),
        vault_id: "00ff".into(),
        secret_count: 0,
        protection: Protection::MasterPassword,
        audit_files,
        audit_records: 2,
    }
}

/// A source dir with a fake vault file and two audit files.
fn source() -> (tempfile::TempDir, Manifest) {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(VAULT), vec![7u8; 100_000]).unwrap();
    std::fs::create_dir(d.path().join(AUDIT)).unwrap();
    std::fs::write(
        d.path().join("audit/segment-000000000001.jsonl"),
        b"{\"seq\":1}\n",
    )
    .unwrap();
    std::fs::write(d.path().join("audit/pending.jsonl"), b"{\"p\":1}\n").unwrap();
    let m = manifest(vec![
        "audit/segment-000000000001.jsonl".into(),
        "audit/pending.jsonl".into(),
    ]);
    (d, m)
}

fn packed() -> (Vec<u8>, Manifest) {
    let (d, m) = source();
    let out = pack(Vec::new(), PW, &m, d.path()).unwrap();
    (out, m)
}

#[test]
fn round_trip_restores_every_file() {
    let (bytes, m) = packed();
    assert!(bytes.starts_with(AGE_MAGIC));
    assert!(
        !bytes.windows(7).any(|w| w == b"{\"seq\":"),
        "the payload is encrypted"
    );
    let dest = tempfile::tempdir().unwrap();
    let to = dest.path().join("x");
    let got = unpack(bytes.as_slice(), PW, &to).unwrap();
    assert_eq!(got, m);
    assert_eq!(std::fs::read(to.join(VAULT)).unwrap(), vec![7u8; 100_000]);
    assert_eq!(
        std::fs::read(to.join("audit/pending.jsonl")).unwrap(),
        b"{\"p\":1}\n"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(to.join(VAULT))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn wrong_password_is_refused() {
    let (bytes, _) = packed();
    let dest = tempfile::tempdir().unwrap();
    let e = unpack(bytes.as_slice(), "not it", &dest.path().join("x")).unwrap_err();
    assert!(matches!(e, ArchiveError::WrongPassword), "{e}");
    assert!(!dest.path().join("x").exists(), "nothing unpacked");
}

#[test]
fn altered_or_cut_files_are_refused() {
    let (bytes, _) = packed();
    let dest = tempfile::tempdir().unwrap();
    // A flipped byte in the payload, in the header, and at the end.
    for (i, at) in [bytes.len() / 2, 40, bytes.len() - 1]
        .into_iter()
        .enumerate()
    {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        let e = unpack(bad.as_slice(), PW, &dest.path().join(format!("f{i}"))).unwrap_err();
        assert!(
            matches!(e, ArchiveError::Damaged(_) | ArchiveError::WrongPassword),
            "flip at {at}: {e}"
        );
    }
    // Cut: in the middle, and just before the end (after the tar's last
    // entry: found only because the rest is read to the end).
    for (i, len) in [bytes.len() / 2, bytes.len() - 20].into_iter().enumerate() {
        let e = unpack(&bytes[..len], PW, &dest.path().join(format!("c{i}"))).unwrap_err();
        assert!(matches!(e, ArchiveError::Damaged(_)), "cut at {len}: {e}");
    }
    let e = unpack(&b"hello world, not age"[..], PW, &dest.path().join("n")).unwrap_err();
    assert!(matches!(e, ArchiveError::NotABackup(_)), "{e}");
}

/// Packs arbitrary tar entries (name, type, bytes) with age.
fn raw_archive(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let stream = encryptor(PW).wrap_output(Vec::new()).unwrap();
    let mut tar = tar::Builder::new(stream);
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        // set_path refuses '..'; write the raw name as an attacker would.
        let raw = h.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        tar.append(&h, *data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[test]
fn unexpected_entries_are_refused_and_nothing_escapes() {
    let m = serde_json::to_vec(&manifest(vec![])).unwrap();
    let dest = tempfile::tempdir().unwrap();
    for (i, (name, kind)) in [
        ("../escape", tar::EntryType::Regular),
        ("audit/../../escape", tar::EntryType::Regular),
        ("/etc/passwd", tar::EntryType::Regular),
        ("audit/notes.txt", tar::EntryType::Regular),
        ("vault.redb", tar::EntryType::Symlink),
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = raw_archive(&[(MANIFEST, tar::EntryType::Regular, &m), (name, kind, b"x")]);
        let to = dest.path().join(format!("d{i}"));
        let e = unpack(bytes.as_slice(), PW, &to).unwrap_err();
        assert!(matches!(e, ArchiveError::NotABackup(_)), "{name}: {e}");
    }
    assert!(!dest.path().join("escape").exists());
    // Twice the same entry.
    let bytes = raw_archive(&[
        (MANIFEST, tar::EntryType::Regular, &m),
        (VAULT, tar::EntryType::Regular, b"a"),
        (VAULT, tar::EntryType::Regular, b"b"),
    ]);
    let e = unpack(bytes.as_slice(), PW, &dest.path().join("twice")).unwrap_err();
    assert!(e.to_string().contains("twice"), "{e}");
    // A manifest from the future, or listing files that are not there.
    let mut future = manifest(vec![]);
    future.version = VERSION + 1;
    let fj = serde_json::to_vec(&future).unwrap();
    let bytes = raw_archive(&[
        (MANIFEST, tar::EntryType::Regular, &fj),
        (VAULT, tar::EntryType::Regular, b"a"),
    ]);
    let e = unpack(bytes.as_slice(), PW, &dest.path().join("future")).unwrap_err();
    assert!(e.to_string().contains("newer secretctl"), "{e}");
    let lying = serde_json::to_vec(&manifest(vec!["audit/pending.jsonl".into()])).unwrap();
    let bytes = raw_archive(&[
        (MANIFEST, tar::EntryType::Regular, &lying),
        (VAULT, tar::EntryType::Regular, b"a"),
    ]);
    let e = unpack(bytes.as_slice(), PW, &dest.path().join("lying")).unwrap_err();
    assert!(matches!(e, ArchiveError::Damaged(_)), "{e}");
}
