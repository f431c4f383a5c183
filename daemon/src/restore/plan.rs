//! What a restore does (or would do) with the audit log and the files it
//! keeps aside, decided with the audit writer paused; its notes for the
//! answer.

use std::path::Path;

use super::Staged;
use crate::archive;
use crate::audit::Paused;
use crate::vault::Vault;

/// How the restore treats the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditPlan {
    /// Same vault: the live log is kept and continues.
    Keep,
    /// Another vault: the live log is moved aside (if it holds anything)
    /// and the backup's installed.
    Replace,
}

/// What a restore does (or would do), decided with the writer paused.
#[derive(Debug, Clone)]
pub struct Plan {
    pub audit: AuditPlan,
    /// The live vault's secret count, if there is a live vault.
    pub live_secrets: Option<u64>,
    /// `vault.redb.before-restore-<time>`, if there is a live vault.
    pub previous_vault: Option<String>,
    /// `audit.before-restore-<time>`, if the live log is moved aside.
    pub previous_audit: Option<String>,
}

impl Plan {
    /// One line each, for the answer.
    pub fn notes(&self, staged: &Staged, done: bool) -> Vec<String> {
        let will = if done { "" } else { "would be " };
        let mut out = Vec::new();
        let taken = secretctl_proto::duration::rfc3339(staged.manifest.created_at);
        match self.live_secrets {
            Some(n) => out.push(format!(
                "vault.redb ({n} secrets) {will}replaced by the backup's vault ({} secrets, taken {taken})",
                staged.report.secret_count
            )),
            None => out.push(format!(
                "no vault here: the backup's vault ({} secrets, taken {taken}) {will}installed as vault.redb",
                staged.report.secret_count
            )),
        }
        if let Some(p) = &self.previous_vault {
            out.push(format!("the previous vault {will}kept as {p}"));
        }
        match self.audit {
            AuditPlan::Keep => out.push(format!(
                "audit log: same vault, so the current log {}kept and continued (it contains the backup's history); the restore {will}recorded at its end",
                if done { "was " } else { "would be " }
            )),
            AuditPlan::Replace => out.push(format!(
                "audit log: {}the backup's log {will}installed{}; the restore {will}recorded at its end",
                match &self.previous_audit {
                    Some(a) => format!("another vault, so the current log {will}moved to {a}/ and "),
                    None => "another vault: ".to_string(),
                },
                if self.previous_audit.is_none() {
                    " (the current audit directory is empty)"
                } else {
                    ""
                }
            )),
        }
        out.push(format!(
            "no other file in SECRETCTL_HOME {} touched",
            if done { "was" } else { "would be" }
        ));
        out
    }
}

/// `true` when `dir` holds anything.
fn has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut rd| rd.next().is_some())
}

/// Decides the plan: see the module's audit-log rule.
pub fn plan(p: &Paused<'_>, live: Option<&Vault>, staged: &Staged, stamp: &str) -> Plan {
    let same = live.is_some_and(|v| {
        v.vault_id() == staged.vault_id.as_slice()
            && staged
                .anchor
                .as_ref()
                .is_none_or(|a| p.holds(a.seq, &a.mac))
    });
    let audit = if same {
        AuditPlan::Keep
    } else {
        AuditPlan::Replace
    };
    Plan {
        live_secrets: live.map(|v| v.count()),
        previous_vault: live.map(|_| format!("{}.before-restore-{stamp}", archive::VAULT)),
        previous_audit: (audit == AuditPlan::Replace && has_entries(p.dir()))
            .then(|| format!("{}.before-restore-{stamp}", archive::AUDIT)),
        audit,
    }
}

/// A name for this moment, for the files kept aside: `20261201T035616Z`;
/// a suffix is added while a file of that name exists.
pub fn stamp(home: &Path) -> String {
    let base: String = secretctl_proto::duration::rfc3339(crate::vault::now_secs())
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let free = |s: &str| {
        !home
            .join(format!("{}.before-restore-{s}", archive::VAULT))
            .exists()
            && !home
                .join(format!("{}.before-restore-{s}", archive::AUDIT))
                .exists()
    };
    if free(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|s| free(s))
        .expect("some suffix is free")
}
