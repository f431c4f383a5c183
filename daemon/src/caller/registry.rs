//! Who the daemon knows to be an agent by registration rather than by
//! markers: MCP shims, agent hosts (a shim's parent, `secretctl agent`),
//! and the supervisors of runs in progress.
//!
//! Agent hosts are kept in the vault file too, so a daemon restart does not
//! forget them (a shim also registers again when it reconnects). Entries are
//! process identities (pid + start time): a reused pid never matches, and
//! entries of processes that are gone are dropped at the next registration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Identity;
use super::classify::Classifier;
use crate::vault::Vault;

/// Whose run a supervisor serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    User,
    Agent,
}

/// A run in progress, by its supervisor.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub kind: RunKind,
    /// What the run is, for messages ("secret_run 'npm test'").
    pub what: String,
}

/// The registries.
#[derive(Default)]
pub struct Registry {
    hosts: Mutex<HashMap<Identity, String>>,
    shims: Mutex<HashMap<Identity, String>>,
    runs: Mutex<HashMap<Identity, RunInfo>>,
    vault: Mutex<Option<Arc<Vault>>>,
    spawning: Mutex<()>,
}

fn alive(id: &Identity) -> bool {
    Classifier::identity(id.pid).is_some_and(|now| now == *id)
}

impl Registry {
    /// The registry, with agent hosts loaded from `vault` (those still alive).
    pub fn load(vault: Option<Arc<Vault>>) -> Registry {
        let r = Registry::default();
        if let Some(v) = vault {
            r.set_vault(v);
        }
        r
    }

    /// Persists agent hosts in `vault` from now on (loading those it holds).
    pub fn set_vault(&self, vault: Arc<Vault>) {
        match vault.agent_hosts() {
            Ok(stored) => {
                let mut hosts = self.hosts.lock().expect("hosts lock is never poisoned");
                for (id, what) in stored {
                    if alive(&id) {
                        hosts.insert(id, what);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the stored agent hosts"),
        }
        *self.vault.lock().expect("vault lock is never poisoned") = Some(vault);
    }

    /// How a registered agent host is described, if `id` is one.
    pub fn host(&self, id: Identity) -> Option<String> {
        self.hosts
            .lock()
            .expect("hosts lock is never poisoned")
            .get(&id)
            .cloned()
    }

    /// How a registered shim is described, if `id` is one.
    pub fn shim(&self, id: Identity) -> Option<String> {
        self.shims
            .lock()
            .expect("shims lock is never poisoned")
            .get(&id)
            .cloned()
    }

    /// The run `id` supervises, if any.
    pub fn run(&self, id: Identity) -> Option<RunInfo> {
        self.runs
            .lock()
            .expect("runs lock is never poisoned")
            .get(&id)
            .cloned()
    }

    /// Records a shim and the agent hosts above it; persists the hosts.
    pub fn add_shim(&self, shim: Identity, hosts: &[(Identity, String)]) {
        self.shims
            .lock()
            .expect("shims lock is never poisoned")
            .retain(|id, _| alive(id));
        self.shims
            .lock()
            .expect("shims lock is never poisoned")
            .insert(shim, format!("pid {} is secretctl-mcp", shim.pid));
        for (id, _) in hosts {
            self.add_host(*id, format!("started secretctl-mcp (pid {})", shim.pid));
        }
    }

    /// Records an agent host; persists the list.
    pub fn add_host(&self, id: Identity, what: String) {
        let snapshot: Vec<(Identity, String)> = {
            let mut hosts = self.hosts.lock().expect("hosts lock is never poisoned");
            hosts.retain(|id, _| alive(id));
            hosts.insert(id, what);
            hosts.iter().map(|(i, w)| (*i, w.clone())).collect()
        };
        let vault = self
            .vault
            .lock()
            .expect("vault lock is never poisoned")
            .clone();
        if let Some(v) = vault
            && let Err(e) = v.set_agent_hosts(&snapshot)
        {
            tracing::warn!(error = %e, "cannot store the agent hosts; they last until the daemon stops");
        }
    }

    /// Held while a supervisor is started and registered, and while the
    /// daemon's children are swept for orphans: the sweep never sees a
    /// supervisor before its registration.
    pub fn spawning(&self) -> std::sync::MutexGuard<'_, ()> {
        self.spawning.lock().expect("spawn lock is never poisoned")
    }

    /// Whether a live run supervisor has `pid`.
    pub fn is_supervisor(&self, pid: i32) -> bool {
        self.runs
            .lock()
            .expect("runs lock is never poisoned")
            .keys()
            .any(|id| id.pid == pid)
    }

    /// A run's supervisor started.
    pub fn run_started(&self, id: Identity, info: RunInfo) {
        self.runs
            .lock()
            .expect("runs lock is never poisoned")
            .insert(id, info);
    }

    /// A run's supervisor is gone.
    pub fn run_ended(&self, id: Identity) {
        self.runs
            .lock()
            .expect("runs lock is never poisoned")
            .remove(&id);
    }

    /// Number of registered agent hosts (for status).
    pub fn host_count(&self) -> usize {
        self.hosts
            .lock()
            .expect("hosts lock is never poisoned")
            .len()
    }
}
