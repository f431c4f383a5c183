//! What the daemon holds in memory: the open vault, the unlocked key, and
//! the idle timer that locks it.
//!
//! Invariants:
//! - The key exists only between a successful unlock (or init) and the next
//!   lock, idle timeout or shutdown; locking drops it, which zeroes its page.
//!   A request already running keeps its own reference until it finishes.
//! - Only requests that use a secret reset the idle timer ([`Use::Secret`]);
//!   status and list never do, so a polled daemon still locks.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use secretctl_proto::v1::VaultState;
use tokio::sync::watch;
// tokio's clock, so the idle timer can be tested with paused time.
use tokio::time::Instant;

use crate::applied::Applied;
use crate::audit::{self, Audit};
use crate::caller::classify::Classifier;
use crate::caller::registry::Registry;
use crate::config::{AgentLimits, Config};
use crate::keyring::DataKey;
use crate::vault::Vault;

/// Files the daemon works with.
#[derive(Debug, Clone)]
pub struct Paths {
    pub home: PathBuf,
    pub vault: PathBuf,
    pub socket: PathBuf,
}

/// Why a request cannot have the vault or its key right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    NotInitialized,
    Locked,
}

/// Whether a request counts as activity for the idle timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Hands a value to someone (get, a masked value, a non-sensitive
    /// field) or injects it into a run: resets the idle timer.
    Secret,
    /// Lets no secret value leave the daemon: list, exists, metadata (notes,
    /// URL and non-sensitive fields are not secrets), fields, the security
    /// score (which decrypts values to judge them but returns only names).
    /// Leaves the timer alone, so a client polling these cannot keep an
    /// unlocked vault awake.
    Look,
}

/// Why the vault was locked; logged (and audited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockReason {
    Manual,
    IdleTimeout,
    Shutdown,
    /// A restore is about to replace the vault.
    Restore,
}

struct Unlocked {
    key: Arc<DataKey>,
    timeout: Duration,
    deadline: Instant,
    /// The credential proxy's CA, once a run needed it: dropped with the
    /// key at the lock.
    proxy_ca: Option<Arc<crate::proxy::LocalCa>>,
}

/// Shared daemon state.
pub struct Session {
    pub paths: Paths,
    /// The audit log writer.
    pub audit: Audit,
    pub config: Config,
    pub service_managed: bool,
    /// Serialises unlock and init so concurrent guesses cannot race the
    /// failure counter.
    pub unlock_gate: tokio::sync::Mutex<()>,
    /// Who is calling: the classifier and its registries.
    pub caller: Classifier,
    /// The policy and agent settings a user applied.
    pub applied: Applied,
    /// The web UI: an empty slot until `secretctl ui` asks for it.
    pub ui: crate::ui::Ui,
    /// Slots for agent runs (width: the applied `agent.max_concurrent_runs`).
    agent_slots: RwLock<(usize, Arc<tokio::sync::Semaphore>)>,
    vault: RwLock<Option<Arc<Vault>>>,
    unlocked: Mutex<Option<Unlocked>>,
    deadline_tx: watch::Sender<Option<Instant>>,
    /// True once the daemon is stopping: runs in progress are ended.
    stopping: watch::Sender<bool>,
}

impl Session {
    /// A session over the (possibly absent) vault, locked.
    pub fn new(
        paths: Paths,
        config: Config,
        vault: Option<Vault>,
        service_managed: bool,
        audit: Audit,
    ) -> Arc<Self> {
        let vault = vault.map(Arc::new);
        if let Some(v) = &vault {
            audit.set_vault(v.clone());
        }
        let width = AgentLimits::default().max_concurrent_runs;
        Arc::new(Session {
            paths,
            audit,
            config,
            service_managed,
            unlock_gate: tokio::sync::Mutex::new(()),
            caller: Classifier::new(Registry::load(vault.clone())),
            applied: Applied::default(),
            ui: crate::ui::Ui::default(),
            agent_slots: RwLock::new((width, Arc::new(tokio::sync::Semaphore::new(width)))),
            vault: RwLock::new(vault),
            unlocked: Mutex::new(None),
            deadline_tx: watch::Sender::new(None),
            stopping: watch::Sender::new(false),
        })
    }

    /// The open vault.
    pub fn vault(&self) -> Result<Arc<Vault>, Gate> {
        self.vault
            .read()
            .expect("vault lock is never poisoned: no code panics while holding it")
            .clone()
            .ok_or(Gate::NotInitialized)
    }

    /// Installs a freshly created vault.
    pub fn set_vault(&self, vault: Vault) {
        let vault = Arc::new(vault);
        self.audit.set_vault(vault.clone());
        self.caller.registry.set_vault(vault.clone());
        *self.vault.write().expect("vault lock is never poisoned") = Some(vault);
    }

    /// Puts a restored vault in place of the current one (the audit writer
    /// is told by the restore itself, from inside its pause). Requests that
    /// already hold the old vault finish on it; their writes fail (it is
    /// retired, see `Store::retire`).
    pub fn replace_vault(&self, vault: Arc<Vault>) {
        self.caller.registry.set_vault(vault.clone());
        *self.vault.write().expect("vault lock is never poisoned") = Some(vault);
    }

    /// The vault and its key; `Use::Secret` resets the idle timer.
    pub fn key(&self, usage: Use) -> Result<(Arc<Vault>, Arc<DataKey>), Gate> {
        let vault = self.vault()?;
        let mut guard = self.unlocked.lock().expect("key lock is never poisoned");
        let u = guard.as_mut().ok_or(Gate::Locked)?;
        if usage == Use::Secret {
            u.deadline = Instant::now() + u.timeout;
            self.deadline_tx.send_replace(Some(u.deadline));
        }
        Ok((vault, u.key.clone()))
    }

    /// Holds `key` until `timeout` passes without a request that uses it,
    /// and puts the applied policy and agent settings in force.
    pub fn unlock(&self, key: DataKey, timeout: Duration) {
        self.audit.unlocked(&key);
        if let Ok(vault) = self.vault() {
            match self.applied.load(&vault, &key) {
                Ok(()) => self.agent_settings_changed(),
                Err(e) => {
                    tracing::error!(error = %e, "cannot load the applied policy and settings; agent runs are refused")
                }
            }
        }
        let deadline = Instant::now() + timeout;
        *self.unlocked.lock().expect("key lock is never poisoned") = Some(Unlocked {
            key: Arc::new(key),
            timeout,
            deadline,
            proxy_ca: None,
        });
        self.deadline_tx.send_replace(Some(deadline));
    }

    /// Drops the key (audited as `who`, or as the daemon itself). Returns
    /// whether it was held.
    pub fn lock(&self, reason: LockReason, who: Option<&crate::caller::Conn>) -> bool {
        let was = self
            .unlocked
            .lock()
            .expect("key lock is never poisoned")
            .take();
        self.deadline_tx.send_replace(None);
        if was.is_some() {
            crate::security::forget();
            tracing::info!(?reason, "vault locked");
            let mut rec = match who {
                Some(conn) => conn.event("lock", "cli"),
                None => audit::event("lock", "cli", audit::daemon_peer()),
            };
            let why = match reason {
                LockReason::Manual => "manual",
                LockReason::IdleTimeout => "idle timeout",
                LockReason::Shutdown => "shutdown",
                LockReason::Restore => "restore",
            };
            rec.detail = Some(serde_json::json!({ "reason": why }));
            // Sealed with the key before the writer forgets it.
            self.audit.record_nowait(rec);
            self.audit.locked();
        }
        was.is_some()
    }

    /// The credential proxy's CA kept since it was loaded (until the lock).
    pub fn cached_proxy_ca(&self) -> Option<Arc<crate::proxy::LocalCa>> {
        let held = self.unlocked.lock().expect("key lock is never poisoned");
        held.as_ref().and_then(|u| u.proxy_ca.clone())
    }

    /// Keeps `ca` until the lock (a rotation replaces it).
    pub fn keep_proxy_ca(&self, ca: Arc<crate::proxy::LocalCa>) {
        if let Some(u) = self
            .unlocked
            .lock()
            .expect("key lock is never poisoned")
            .as_mut()
        {
            u.proxy_ca = Some(ca);
        }
    }

    /// Tells every run in progress that the daemon is stopping (they end
    /// like a timeout: SIGTERM to the group, the tree killed after a grace).
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Becomes true when the daemon starts stopping.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// The limits on agent runs now in force (the applied config's).
    pub fn agent_limits(&self) -> AgentLimits {
        self.applied.config().agent
    }

    /// The applied policy, or why agent runs are refused.
    pub fn applied_policy(&self) -> Result<crate::policy::Policy, String> {
        self.applied
            .policy(&self.paths.home.join(secretctl_proto::paths::POLICY_FILE))
    }

    /// The queue of agent runs.
    pub fn agent_run_slots(&self) -> Arc<tokio::sync::Semaphore> {
        self.agent_slots
            .read()
            .expect("slots lock is never poisoned")
            .1
            .clone()
    }

    /// Puts the applied config's `agent.*` settings in force: the
    /// classification rules and the width of the run queue (runs holding a
    /// slot of the old queue keep it).
    pub fn agent_settings_changed(&self) {
        let cfg = self.applied.config();
        self.caller.set_rules(cfg.agent_rules);
        let width = cfg.agent.max_concurrent_runs;
        let mut slots = self
            .agent_slots
            .write()
            .expect("slots lock is never poisoned");
        if slots.0 != width {
            *slots = (width, Arc::new(tokio::sync::Semaphore::new(width)));
        }
    }

    /// Uninitialized, locked or unlocked.
    pub fn state(&self) -> VaultState {
        if self.vault().is_err() {
            VaultState::Uninitialized
        } else if self
            .unlocked
            .lock()
            .expect("key lock is never poisoned")
            .is_some()
        {
            VaultState::Unlocked
        } else {
            VaultState::Locked
        }
    }

    /// When the idle timer fires (wall clock) and the current timeout.
    pub fn idle_deadline(&self) -> Option<(SystemTime, Duration)> {
        let guard = self.unlocked.lock().expect("key lock is never poisoned");
        guard.as_ref().map(|u| {
            let left = u.deadline.saturating_duration_since(Instant::now());
            (SystemTime::now() + left, u.timeout)
        })
    }

    /// Locks the vault when its idle deadline passes; runs until the daemon stops.
    pub async fn run_idle_timer(self: Arc<Self>) {
        let mut rx = self.deadline_tx.subscribe();
        loop {
            let deadline = *rx.borrow_and_update();
            match deadline {
                None => {
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(d) => self.lock_if_idle(),
                        changed = rx.changed() => if changed.is_err() { return },
                    }
                }
            }
        }
    }

    fn lock_if_idle(&self) {
        let expired = self
            .unlocked
            .lock()
            .expect("key lock is never poisoned")
            .as_ref()
            .is_some_and(|u| u.deadline <= Instant::now());
        if expired {
            self.lock(LockReason::IdleTimeout, None);
        }
    }
}

/// Milliseconds since the epoch of a wall-clock time.
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session without a vault; the temp dir holds its audit log.
    fn session() -> (Arc<Session>, tempfile::TempDir) {
        let p = PathBuf::from("/nonexistent");
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::start(&dir.path().join("audit"), 1 << 20).unwrap();
        let s = Session::new(
            Paths {
                home: p.clone(),
                vault: p.clone(),
                socket: p,
            },
            Config::default(),
            None,
            false,
            audit,
        );
        (s, dir)
    }

    #[tokio::test(start_paused = true)]
    async fn idle_timer_locks_after_timeout() {
        let (s, _dir) = session();
        tokio::spawn(s.clone().run_idle_timer());
        // No vault: key() says uninitialized even when a key is held.
        s.unlock(DataKey::generate().unwrap(), Duration::from_secs(10));
        assert_eq!(s.key(Use::Look).err(), Some(Gate::NotInitialized));
        assert!(s.idle_deadline().is_some());

        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(s.idle_deadline().is_some());
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(s.idle_deadline().is_none(), "idle timer should have locked");
    }

    #[test]
    fn lock_reports_whether_held() {
        let (s, _dir) = session();
        assert!(!s.lock(LockReason::Manual, None));
        s.unlock(DataKey::generate().unwrap(), Duration::from_secs(10));
        assert!(s.lock(LockReason::Manual, None));
        assert_eq!(s.state(), VaultState::Uninitialized);
    }

    /// A session over a new vault (installed as `init` does), locked.
    fn session_with_vault() -> (Arc<Session>, DataKey, tempfile::TempDir) {
        let (s, dir) = session();
        assert_eq!(s.state(), VaultState::Uninitialized);
        let (vault, key) = Vault::init(
            &dir.path().join("v.redb"),
            b"pw",
            crate::crypto::KdfParams::TEST_TINY,
        )
        .unwrap();
        s.set_vault(vault);
        (s, key, dir)
    }

    #[test]
    fn an_installed_vault_is_locked_until_unlocked() {
        let (s, key, _dir) = session_with_vault();
        assert_eq!(s.state(), VaultState::Locked);
        assert!(s.vault().is_ok());
        assert_eq!(s.key(Use::Secret).err(), Some(Gate::Locked));
        s.unlock(key, Duration::from_secs(10));
        assert_eq!(s.state(), VaultState::Unlocked);
        assert!(s.key(Use::Look).is_ok());
        assert!(s.lock(LockReason::Manual, None));
        assert_eq!(s.key(Use::Look).err(), Some(Gate::Locked));
    }

    #[tokio::test(start_paused = true)]
    async fn only_using_a_secret_moves_the_idle_deadline() {
        let (s, key, _dir) = session_with_vault();
        tokio::spawn(s.clone().run_idle_timer());
        s.unlock(key, Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(6)).await;
        s.key(Use::Look).unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(s.state(), VaultState::Locked, "looking kept it awake");

        let (s, key, _dir) = session_with_vault();
        tokio::spawn(s.clone().run_idle_timer());
        s.unlock(key, Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(6)).await;
        s.key(Use::Secret).unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(s.state(), VaultState::Unlocked, "a use resets the timer");
        assert_eq!(s.idle_deadline().unwrap().1, Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(s.state(), VaultState::Locked);
    }

    #[test]
    fn the_applied_agent_settings_are_put_in_force() {
        let (s, key, _dir) = session_with_vault();
        assert_eq!(s.agent_run_slots().available_permits(), 4);
        let text = "agent:\n  max_concurrent_runs: 2\n  default_timeout: 30s\n  headless: agent\n";
        s.applied
            .set_config(
                &s.vault().unwrap(),
                &key,
                text.into(),
                Config::parse(text).unwrap(),
            )
            .unwrap();
        assert_eq!(s.agent_limits().max_concurrent_runs, 2);
        assert_eq!(s.agent_limits().default_timeout, Duration::from_secs(30));
        s.agent_settings_changed();
        let slots = s.agent_run_slots();
        assert_eq!(slots.available_permits(), 2);
        assert!(s.caller.rules().headless_agent);
        // The same width keeps the queue (and the slots runs hold in it).
        s.agent_settings_changed();
        assert!(Arc::ptr_eq(&slots, &s.agent_run_slots()));
    }

    #[test]
    fn the_idle_deadline_lies_ahead() {
        let (s, key, _dir) = session_with_vault();
        assert!(s.idle_deadline().is_none());
        let before = SystemTime::now();
        s.unlock(key, Duration::from_secs(600));
        let (at, timeout) = s.idle_deadline().unwrap();
        assert_eq!(timeout, Duration::from_secs(600));
        let ahead = at.duration_since(before).unwrap();
        assert!(
            ahead > Duration::from_secs(590) && ahead <= Duration::from_secs(601),
            "{ahead:?}"
        );
    }

    #[test]
    fn wall_clock_milliseconds() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(unix_ms(at), 1_700_000_000_123);
        assert_eq!(unix_ms(SystemTime::UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
