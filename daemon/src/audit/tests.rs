//! The writer against real files and a real vault: gaps, pending chains,
//! failures and their recovery.

use super::*;
use crate::crypto::KdfParams;

struct Setup {
    dir: tempfile::TempDir,
    vault: Arc<Vault>,
    dk: DataKey,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (vault, dk) = Vault::init(&dir.path().join("v.redb"), b"pw", KdfParams::TEST_TINY).unwrap();
    Setup {
        dir,
        vault: Arc::new(vault),
        dk,
    }
}

impl Setup {
    fn audit_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("audit")
    }

    /// A writer over the same files and vault, unlocked.
    fn start(&self) -> Audit {
        let a = Audit::start(&self.audit_dir(), 400).unwrap();
        a.set_vault(self.vault.clone());
        a.unlocked(&self.dk);
        a
    }
}

fn rec(action: &str) -> Record {
    event(action, "cli", daemon_peer())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn write_n(a: &Audit, n: usize) {
    rt().block_on(async {
        for i in 0..n {
            a.record(rec(&format!("get{i}"))).await.unwrap();
        }
    });
}

fn verify_of(a: &Audit) -> AuditVerifyResponse {
    rt().block_on(a.verify()).expect("unlocked")
}

#[test]
fn records_written_while_locked_are_sealed_at_unlock() {
    let s = setup();
    let a = Audit::start(&s.audit_dir(), 400).unwrap();
    a.set_vault(s.vault.clone());
    rt().block_on(async {
        a.record(rec("unlock")).await.unwrap();
        a.record(rec("connection_refused")).await.unwrap();
    });
    assert!(rt().block_on(a.verify()).is_none(), "no key while locked");
    a.unlocked(&s.dk);
    write_n(&a, 10);
    let v = verify_of(&a);
    assert!(v.ok, "{}", v.error);
    assert_eq!(v.records, 12);
    let (list, problem) = rt().block_on(a.list(Default::default())).unwrap();
    assert_eq!((list.len(), problem.as_str()), (12, ""));
    a.close();
}

#[test]
fn a_log_cut_while_stopped_is_a_recorded_gap_until_acknowledged() {
    for wipe_all in [false, true] {
        let s = setup();
        let a = s.start();
        write_n(&a, 8);
        a.close();
        // Cut the newest records (or everything) behind the daemon's back.
        let segs: Vec<_> = std::fs::read_dir(s.audit_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("segment-"))
            .collect();
        let mut segs = segs;
        segs.sort();
        if wipe_all {
            for p in &segs {
                std::fs::remove_file(p).unwrap();
            }
        } else {
            std::fs::remove_file(segs.last().unwrap()).unwrap();
        }
        let a = s.start();
        write_n(&a, 2);
        let v = verify_of(&a);
        assert!(!v.ok);
        assert!(v.error.contains("audit acknowledge"), "{}", v.error);
        let (listed, problem) = rt().block_on(a.list(Default::default())).unwrap();
        assert!(!problem.is_empty());
        assert!(
            listed.iter().all(|l| !l.contains("\"get9\"")),
            "nothing after the break is listed"
        );
        let acked = rt()
            .block_on(a.acknowledge(rec("audit_acknowledge")))
            .unwrap();
        assert_eq!(acked.len(), 1);
        let v = verify_of(&a);
        assert!(v.ok, "after acknowledging: {}", v.error);
        let (listed, _) = rt().block_on(a.list(Default::default())).unwrap();
        assert!(listed.iter().any(|l| l.contains("\"audit_gap\"")));
        a.close();
    }
}

#[test]
fn a_forged_seq_0_line_is_neither_skipped_nor_listed() {
    let s = setup();
    let a = s.start();
    write_n(&a, 3);
    a.close();
    let mut segs: Vec<_> = std::fs::read_dir(s.audit_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("segment-"))
        .collect();
    segs.sort();
    let first = &segs[0];
    let text = std::fs::read_to_string(first).unwrap();
    let mut forged = rec("get");
    forged.seq = Some(0);
    forged.keys = vec!["forged/key".into()];
    forged.mac = Some("00".repeat(32));
    std::fs::write(
        first,
        format!("{}{text}", String::from_utf8(forged.line()).unwrap()),
    )
    .unwrap();
    let a = s.start();
    let v = verify_of(&a);
    assert!(
        !v.ok && v.error.contains("without a valid seq"),
        "{}",
        v.error
    );
    let (listed, _) = rt().block_on(a.list(Default::default())).unwrap();
    assert!(listed.iter().all(|l| !l.contains("forged/key")));
    a.close();
}

#[test]
fn a_failed_write_fails_the_record_and_heals_when_writing_works_again() {
    let s = setup();
    let a = s.start();
    write_n(&a, 1);
    // Put a directory where the writer must append: every write fails.
    let mut segs: Vec<_> = std::fs::read_dir(s.audit_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("segment-"))
        .collect();
    segs.sort();
    let seg = segs.last().unwrap().clone();
    let aside = s.dir.path().join("aside");
    std::fs::rename(&seg, &aside).unwrap();
    std::fs::create_dir(&seg).unwrap();
    let r = rt().block_on(a.record(rec("get")));
    assert!(
        r.is_err(),
        "a record that is not on disk is not acknowledged"
    );
    assert!(!a.is_healthy());
    assert!(rt().block_on(a.ensure_writable()).is_err());
    std::fs::remove_dir(&seg).unwrap();
    std::fs::rename(&aside, &seg).unwrap();
    rt().block_on(a.ensure_writable()).unwrap();
    assert!(a.is_healthy());
    rt().block_on(a.record(rec("get"))).unwrap();
    let v = verify_of(&a);
    assert!(v.ok, "{}", v.error);
    let (listed, _) = rt().block_on(a.list(Default::default())).unwrap();
    assert!(listed.iter().any(|l| l.contains("audit_write_resumed")));
    a.close();
}

#[test]
fn dropped_locked_time_records_are_found_at_unlock() {
    let s = setup();
    let a = s.start();
    write_n(&a, 2);
    a.locked();
    rt().block_on(async {
        a.record(rec("unlock")).await.unwrap();
        a.record(rec("unlock")).await.unwrap();
    });
    a.close();
    let pending = s.audit_dir().join("pending.jsonl");
    let text = std::fs::read_to_string(&pending).unwrap();
    let first = text.lines().next().unwrap().to_string();
    std::fs::write(&pending, format!("{first}\n")).unwrap();
    let a = s.start();
    let (listed, _) = rt().block_on(a.list(Default::default())).unwrap();
    assert!(
        listed.iter().any(|l| l.contains("audit_pending_tampered")),
        "{listed:?}"
    );
    a.close();
}
