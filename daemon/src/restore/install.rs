//! The swap: the staged vault and, by the plan, the backup's audit log put
//! in place of the live ones by renames within `SECRETCTL_HOME`, with the
//! audit writer paused; everything put back on an error before the vault
//! file is replaced.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use super::{AuditPlan, Plan, RestoreError, Staged, io};
use crate::audit::Paused;
use crate::session::Session;
use crate::store::{Carried, Failures, Store, StoreError};
use crate::vault::Vault;

fn sync_dir(dir: &Path) -> Result<(), RestoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("cannot sync {}", dir.display())))
}

fn max_failures(a: Failures, b: Failures) -> Failures {
    Failures {
        count: a.count.max(b.count),
        last_failure_unix_ms: a.last_failure_unix_ms.max(b.last_failure_unix_ms),
    }
}

/// Replaces the live vault (and, by `plan`, the audit log) with the staged
/// backup. Runs with the audit writer paused (`p`) and the session locked
/// and its unlock gate held. On an error before the vault file is
/// replaced, everything is put back as it was.
pub fn install(
    p: &mut Paused<'_>,
    session: &Session,
    staged: &Staged,
    plan: &Plan,
) -> Result<(), RestoreError> {
    let home = session.paths.home.clone();
    let live_path = session.paths.vault.clone();
    let live = session.vault().ok();
    // No write can reach the live file from here on: one in progress ends
    // first, later ones fail (`StoreError::Replaced`).
    let retired = match &live {
        Some(v) => Some(v.store().retire()?),
        None => None,
    };
    let undo = |retired: Option<crate::store::Retired<'_>>| {
        if let Some(r) = retired {
            r.undo();
        }
    };
    // What the restored vault takes over from the live one.
    let carried = match &live {
        Some(v) => {
            let s = v.store();
            let keep = plan.audit == AuditPlan::Keep;
            let read = || -> Result<Carried, StoreError> {
                Ok(Carried {
                    failures: Some(max_failures(s.failures()?, staged.failures.clone())),
                    agent_hosts: Some(s.agent_hosts()?),
                    audit_anchor: if keep { Some(s.audit_anchor()?) } else { None },
                    audit_pending: if keep { Some(s.audit_pending()?) } else { None },
                })
            };
            match read() {
                Ok(c) => c,
                Err(e) => {
                    undo(retired);
                    return Err(e.into());
                }
            }
        }
        None => Carried::default(),
    };
    let staged_vault = staged.vault_path();
    let prepared = (|| -> Result<(), RestoreError> {
        let store = Store::open(&staged_vault)?.ok_or_else(|| {
            RestoreError::BadVault("disappeared from its private directory".into())
        })?;
        store.carry_over(&carried)?;
        drop(store);
        File::open(&staged_vault)
            .and_then(|f| f.sync_all())
            .map_err(io("cannot sync the restored vault"))
    })();
    if let Err(e) = prepared {
        undo(retired);
        return Err(e);
    }

    // The audit log.
    let audit_dir = p.dir().to_path_buf();
    let aside = plan.previous_audit.as_ref().map(|a| home.join(a));
    if plan.audit == AuditPlan::Replace {
        if let Some(aside) = &aside
            && let Err(e) = std::fs::rename(&audit_dir, aside)
        {
            undo(retired);
            return Err(io(format!("cannot move {} aside", audit_dir.display()))(e));
        }
        if aside.is_none() {
            // Empty: nothing to keep.
            let _ = std::fs::remove_dir(&audit_dir);
        }
        if let Err(e) = std::fs::rename(staged.audit_dir(), &audit_dir) {
            if let Some(aside) = &aside {
                let _ = std::fs::rename(aside, &audit_dir);
            } else {
                let _ = std::fs::create_dir(&audit_dir);
            }
            undo(retired);
            return Err(io("cannot install the backup's audit log")(e));
        }
    }
    let put_audit_back = || {
        if plan.audit == AuditPlan::Replace {
            let _ = std::fs::rename(&audit_dir, staged.audit_dir());
            match &aside {
                Some(aside) => {
                    let _ = std::fs::rename(aside, &audit_dir);
                }
                None => {
                    let _ = std::fs::create_dir(&audit_dir);
                }
            }
        }
    };

    // The vault: keep the live file under a second name, then rename the
    // restored one over `vault.redb` (atomic: `vault.redb` always exists).
    let previous = plan.previous_vault.as_ref().map(|n| home.join(n));
    if let Some(prev) = &previous
        && let Err(e) = std::fs::hard_link(&live_path, prev)
    {
        put_audit_back();
        undo(retired);
        return Err(io(format!(
            "cannot keep the current vault as {}",
            prev.display()
        ))(e));
    }
    if let Err(e) = std::fs::rename(&staged_vault, &live_path) {
        if let Some(prev) = &previous {
            // Only the second name goes: the live file keeps `vault.redb`.
            let _ = std::fs::remove_file(prev);
        }
        put_audit_back();
        undo(retired);
        return Err(io("cannot put the restored vault in place")(e));
    }
    sync_dir(&home)?;
    let restored = match Vault::open(&live_path) {
        Ok(Some(v)) => Arc::new(v),
        other => {
            // Verified a moment ago, so this is the disk failing: put the
            // previous vault back under its name.
            let why = match other {
                Err(e) => e.to_string(),
                _ => "it has no header".into(),
            };
            if let Some(prev) = &previous {
                let _ = std::fs::rename(prev, &live_path);
            }
            put_audit_back();
            undo(retired);
            return Err(RestoreError::BadVault(format!(
                "does not open once in place ({why}); the previous vault was put back"
            )));
        }
    };
    session.replace_vault(restored.clone());
    p.restored(restored, plan.audit == AuditPlan::Keep);
    drop(retired);
    Ok(())
}
