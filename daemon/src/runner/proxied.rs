//! Runs with the credential proxy (contract §12): the injections that
//! become placeholders, the vault's local CA, and the run's own proxy with
//! its audit hook.
//!
//! Invariants:
//! - A proxied value never reaches the child: its variable holds a
//!   placeholder made for this run, and the value lives only in the run's
//!   proxy, which puts it into requests to the secret's hosts.
//! - Every substitution is a durable audit record before the request goes
//!   upstream; if it cannot be written, the request is refused.
//! - The CA key is read from the vault only while it is unlocked, and kept
//!   in memory only until the lock.

use std::path::PathBuf;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::prepare::RunError;
use super::resolve::Injection;
use crate::audit::Audit;
use crate::audit::record::Record;
use crate::keyring::DataKey;
use crate::proxy::{self, Auditor, Event, HostPattern, LocalCa, RunProxy, Substitution};
use crate::session::Session;
use crate::vault::Vault;

/// The directory of the runs' CA bundle files (created 0700).
pub fn bundle_dir(session: &Session) -> Result<PathBuf, RunError> {
    let dir = session.paths.home.join("proxy");
    let fail = |e: std::io::Error| {
        RunError::Proxy(format!(
            "cannot create the credential proxy's directory {}: {e}",
            dir.display()
        ))
    };
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(fail(e)),
    }
    use std::os::unix::fs::PermissionsExt;
    // Made by us under a 0700 home; the proxy checks owner and mode again.
    if std::fs::symlink_metadata(&dir)
        .map_err(fail)?
        .permissions()
        .mode()
        & 0o777
        != 0o700
    {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    Ok(dir)
}

/// Swaps the value of every proxied injection for a fresh placeholder and
/// returns what the proxy puts back on the wire. Empty: nothing proxied.
pub fn take_values(injections: &mut [Injection]) -> Result<Vec<Substitution>, RunError> {
    let mut subs = Vec::new();
    for i in injections.iter_mut().filter(|i| !i.proxy_hosts.is_empty()) {
        let hosts = i
            .proxy_hosts
            .iter()
            .map(|h| HostPattern::parse(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RunError::Proxy(format!("secret '{}': {e}", i.key)))?;
        let placeholder = proxy::placeholder();
        let value = std::mem::replace(
            &mut i.value,
            Zeroizing::new(placeholder.clone().into_bytes()),
        );
        subs.push(Substitution {
            key: i.key.clone(),
            placeholder,
            value,
            hosts,
        });
    }
    Ok(subs)
}

/// The vault's local CA: kept since it was last used, else read from the
/// vault, else made and stored (its first use). Two first runs at once may
/// each make one; the later stored wins, and both runs work (each bundle
/// holds the CA its proxy signs with).
async fn local_ca(
    session: &Session,
    vault: Arc<Vault>,
    dk: Arc<DataKey>,
) -> Result<Arc<LocalCa>, RunError> {
    if let Some(ca) = session.cached_proxy_ca() {
        return Ok(ca);
    }
    let ca = tokio::task::spawn_blocking(move || load_or_make(&vault, &dk))
        .await
        .map_err(|e| RunError::Internal(format!("worker failed: {e}")))??;
    let ca = Arc::new(ca);
    session.keep_proxy_ca(ca.clone());
    Ok(ca)
}

fn load_or_make(vault: &Vault, dk: &DataKey) -> Result<LocalCa, RunError> {
    let fail = |e: &dyn std::fmt::Display| RunError::Proxy(format!("the local CA: {e}"));
    match vault.proxy_ca(dk).map_err(|e| fail(&e))? {
        Some(stored) => LocalCa::from_pem(&stored.cert_pem, &stored.key_pem).map_err(|e| fail(&e)),
        None => {
            let ca = make_ca(vault)?;
            vault
                .set_proxy_ca(dk, &ca.cert_pem(), &ca.key_pem())
                .map_err(|e| fail(&e))?;
            tracing::info!(fingerprint = %ca.fingerprint(), "credential proxy CA created");
            Ok(ca)
        }
    }
}

/// The CA as `proxy ca show` prints it (made on first use). Blocking.
pub fn current_ca(
    session: &Session,
    vault: &Vault,
    dk: &DataKey,
) -> Result<Arc<LocalCa>, RunError> {
    if let Some(ca) = session.cached_proxy_ca() {
        return Ok(ca);
    }
    let ca = Arc::new(load_or_make(vault, dk)?);
    session.keep_proxy_ca(ca.clone());
    Ok(ca)
}

/// Makes a new CA, stores it in place of the old one and keeps it: leaves
/// of the old CA are no longer trusted by new runs. Blocking.
pub fn rotate_ca(session: &Session, vault: &Vault, dk: &DataKey) -> Result<Arc<LocalCa>, RunError> {
    let ca = make_ca(vault)?;
    vault
        .set_proxy_ca(dk, &ca.cert_pem(), &ca.key_pem())
        .map_err(|e| RunError::Proxy(format!("the new local CA could not be stored: {e}")))?;
    let ca = Arc::new(ca);
    session.keep_proxy_ca(ca.clone());
    Ok(ca)
}

fn make_ca(vault: &Vault) -> Result<LocalCa, RunError> {
    let id: String = vault
        .vault_id()
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    LocalCa::generate(&format!("vault {id}"))
        .map_err(|e| RunError::Proxy(format!("the local CA: {e}")))
}

/// Records each substitution, durably, before the request goes upstream.
struct RunAuditor {
    audit: Audit,
    /// The run's record: who ran what, from where.
    template: Record,
    run_id: String,
    rt: tokio::runtime::Handle,
}

impl Auditor for RunAuditor {
    fn substituted(&self, ev: &Event<'_>) -> Result<(), String> {
        let mut r = self.template.clone();
        r.action = "proxy_substitution".into();
        r.keys = vec![ev.key.to_string()];
        r.detail = Some(serde_json::json!({
            "run_id": self.run_id,
            "host": ev.host,
            "method": ev.method,
            "path": ev.path,
        }));
        // Called on a blocking thread: waiting here parks no runtime worker.
        self.rt
            .block_on(self.audit.record(r))
            .map_err(|e| format!("the substitution could not be recorded: {e}"))
    }
}

/// Starts the run's proxy over `subs`; `run` is the run's audit record,
/// whose caller and command each substitution record repeats, and which
/// gets the run id.
pub async fn start(
    session: &Session,
    vault: Arc<Vault>,
    dk: Arc<DataKey>,
    subs: Vec<Substitution>,
    run: &mut Record,
) -> Result<RunProxy, RunError> {
    let ca = local_ca(session, vault, dk).await?;
    let run_id = proxy::random_alnum(12);
    let detail = run.detail.get_or_insert_with(|| serde_json::json!({}));
    detail["run_id"] = serde_json::json!(run_id);
    detail["proxied"] = serde_json::json!(subs.iter().map(|s| s.key.as_str()).collect::<Vec<_>>());
    let auditor = Arc::new(RunAuditor {
        audit: session.audit.clone(),
        template: run.clone(),
        run_id,
        rt: tokio::runtime::Handle::current(),
    });
    let settings = session.applied.config().proxy;
    let dir = bundle_dir(session)?;
    RunProxy::start(ca, &settings, subs, auditor, &dir)
        .await
        .map_err(|e| RunError::Proxy(format!("the credential proxy could not start: {e}")))
}
