//! Turning a peer pid into user or agent (contract §9), by walking its
//! ancestry in `/proc`.
//!
//! The walk goes from the caller up its parent chain. It stops at pid 1, at
//! the daemon itself (processes below it are runs, judged by their
//! supervisor), or after [`MAX_DEPTH`] steps. The first rule that fires
//! decides, in this order for each process: a registered MCP shim; a
//! registered agent host; a run supervisor (agent run: agent; user run:
//! stop, user); reaching the daemon other than through a supervisor (an
//! orphan of a run whose supervisor was killed: agent); a marker variable in
//! the environment of a process of our uid; an environment we cannot read
//! (fail closed: agent). Then, if `agent.headless: agent`, a caller without
//! a controlling terminal is agent. Otherwise: user.
//!
//! What a process is known by can be cached: for one identity (pid + start
//! time) the name, uid and environment markers never change, so only the
//! parent link is read again on each walk (through `/proc/PID/stat` files
//! kept open, [`procfs::StatFiles`]: one `pread` per ancestor).

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use super::procfs;
use super::registry::{Registry, RunKind};
use super::{Caller, Identity};

/// Longest ancestry walked; deeper trees are cut here (and judged on what
/// was seen, plus the headless rule).
pub const MAX_DEPTH: usize = 64;
/// Cache entries kept before the cache is emptied.
const MAX_CACHE: usize = 4096;

/// Marker variables of contract §9, always checked.
pub const DEFAULT_MARKERS: [&str; 6] = [
    "CLAUDECODE",
    "GEMINI_CLI",
    "CODEX_SANDBOX",
    "CURSOR_AGENT",
    "GOOSE_TERMINAL",
    "SECRETCTL_AGENT",
];

/// The `agent.*` settings that shape classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// `agent.classify: false` turns classification off (unsafe).
    pub enabled: bool,
    /// `agent.headless: agent`: no controlling terminal means agent.
    pub headless_agent: bool,
    /// Ancestors of a shim recorded as agent hosts.
    pub host_depth: usize,
    /// Markers: the defaults plus `agent.markers`.
    pub markers: Vec<String>,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            enabled: true,
            headless_agent: false,
            host_depth: 1,
            markers: DEFAULT_MARKERS.iter().map(|m| m.to_string()).collect(),
        }
    }
}

/// What is cached about one process identity.
#[derive(Clone)]
struct Known {
    comm: String,
    uid: Option<u32>,
    /// `Err`: the environment could not be read.
    marker: Result<Option<String>, String>,
}

/// The classifier: rules, registries and the ancestry cache.
pub struct Classifier {
    rules: RwLock<Rules>,
    pub registry: Registry,
    cache: Mutex<HashMap<Identity, Known>>,
    /// Ancestors' `/proc/PID/stat`, kept open between walks.
    stats: procfs::StatFiles,
    daemon_pid: i32,
    uid: u32,
}

/// One step of a walk.
struct Step {
    id: Identity,
    comm: String,
    ppid: i32,
    tty: bool,
}

impl Classifier {
    pub fn new(registry: Registry) -> Classifier {
        Classifier {
            rules: RwLock::new(Rules::default()),
            registry,
            cache: Mutex::new(HashMap::new()),
            stats: procfs::StatFiles::default(),
            daemon_pid: std::process::id() as i32,
            uid: nix::unistd::geteuid().as_raw(),
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> Rules {
        self.rules
            .read()
            .expect("rules lock is never poisoned")
            .clone()
    }

    /// Puts new rules in force (an applied config). The cache of markers is
    /// emptied, since the marker list may have changed.
    pub fn set_rules(&self, rules: Rules) {
        *self.rules.write().expect("rules lock is never poisoned") = rules;
        self.cache
            .lock()
            .expect("cache lock is never poisoned")
            .clear();
    }

    /// Classifies the process `pid` (the peer of a connection).
    pub fn classify(&self, pid: Option<i32>) -> Caller {
        let rules = self.rules();
        if !rules.enabled {
            return Caller::user("classification is off (agent.classify: false)".into());
        }
        let Some(pid) = pid.filter(|p| *p > 0) else {
            return Caller::agent(
                "the caller's pid is unknown (another pid namespace?), so its ancestry cannot be read".into(),
            );
        };
        let mut at = pid;
        let mut first_tty = None;
        let mut below_daemon: Option<Identity> = None;
        for depth in 0..MAX_DEPTH {
            if at <= 1 {
                break;
            }
            if at == self.daemon_pid {
                // Only a supervisor leads here legitimately; it stops the walk
                // before we arrive (see below).
                return Caller::agent(format!(
                    "this process is an orphan of a run whose supervisor is gone (it is a child of secretctld{})",
                    below_daemon
                        .map(|id| format!(", as pid {}", id.pid))
                        .unwrap_or_default()
                ));
            }
            let step = match self.step(at) {
                Ok(s) => s,
                Err(e) => {
                    return Caller::agent(format!(
                        "the ancestry of pid {pid} cannot be read at pid {at} ({e})"
                    ));
                }
            };
            first_tty.get_or_insert(step.tty);
            let known = self.known(&step, &rules);
            let who = format!("pid {} '{}'", at, known.comm);
            if depth == 0 && known.comm == "secretctl-mcp" {
                return Caller::agent("this process is the MCP shim (secretctl-mcp)".into());
            }
            if let Some(shim) = self.registry.shim(step.id) {
                return Caller::agent(if depth == 0 {
                    "this process is the MCP shim (secretctl-mcp)".into()
                } else {
                    format!("this process descends from the MCP shim ({who}, {shim})")
                });
            }
            if let Some(host) = self.registry.host(step.id) {
                return Caller::agent(format!(
                    "this process descends from an AI agent ({who} {host})"
                ));
            }
            if let Some(run) = self.registry.run(step.id) {
                match run.kind {
                    RunKind::Agent => {
                        return Caller::agent(format!(
                            "this process was started by an agent run ({})",
                            run.what
                        ));
                    }
                    // A user's run: what it started is the user's, unless a
                    // marker below said otherwise (checked on the way up).
                    RunKind::User => break,
                }
            }
            if known.uid == Some(self.uid) {
                match &known.marker {
                    Ok(Some(m)) if depth == 0 => {
                        return Caller::agent(format!(
                            "this process has the AI agent marker {m} in its environment"
                        ));
                    }
                    Ok(Some(m)) => {
                        return Caller::agent(format!(
                            "this process descends from an AI agent ({who} has {m} in its environment)"
                        ));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        return Caller::agent(format!(
                            "the environment of {who} cannot be read ({e}), so an agent marker cannot be ruled out"
                        ));
                    }
                }
            }
            below_daemon = Some(step.id);
            at = step.ppid;
        }
        if rules.headless_agent && first_tty == Some(false) {
            return Caller::agent(
                "this process has no controlling terminal (agent.headless: agent)".into(),
            );
        }
        Caller::user(format!(
            "no agent host, agent run or marker among the ancestors of pid {pid}"
        ))
    }

    /// The identity and parent of `pid`, read now.
    fn step(&self, pid: i32) -> std::io::Result<Step> {
        let st = self.stats.stat(pid)?;
        if st.state == 'Z' {
            return Err(std::io::Error::other("it has exited"));
        }
        Ok(Step {
            id: Identity {
                pid,
                start: st.starttime,
            },
            comm: st.comm,
            ppid: st.ppid,
            tty: st.tty_nr != 0,
        })
    }

    /// Name, uid and markers of the process of a walk step, cached by
    /// identity. The name is the step's: `/proc/PID/stat` was just read.
    fn known(&self, step: &Step, rules: &Rules) -> Known {
        let id = step.id;
        if let Some(k) = self
            .cache
            .lock()
            .expect("cache lock is never poisoned")
            .get(&id)
        {
            return k.clone();
        }
        let comm = step.comm.clone();
        let uid = procfs::real_uid(id.pid).ok();
        let marker = if uid == Some(self.uid) {
            procfs::marker_in_environ(id.pid, &rules.markers).map_err(|e| e.to_string())
        } else {
            Ok(None)
        };
        let k = Known { comm, uid, marker };
        // Cache only what was read about the same process: if it exited and
        // its pid was reused meanwhile, the start time no longer matches.
        if self
            .stats
            .stat(id.pid)
            .is_ok_and(|s| s.starttime == id.start)
        {
            let mut cache = self.cache.lock().expect("cache lock is never poisoned");
            if cache.len() >= MAX_CACHE {
                cache.clear();
            }
            cache.insert(id, k.clone());
        }
        k
    }

    /// The identity of `pid` now, if it is alive.
    pub fn identity(pid: i32) -> Option<Identity> {
        procfs::stat(pid).ok().map(|s| Identity {
            pid,
            start: s.starttime,
        })
    }

    /// The ancestors of `pid` that a registering shim makes agent hosts:
    /// skipping secretctl's own binaries, `depth` of them.
    pub fn hosts_above(&self, pid: i32, depth: usize) -> Vec<(Identity, String)> {
        let mut out = Vec::new();
        let mut at = procfs::stat(pid).map(|s| s.ppid).unwrap_or(0);
        while at > 1 && at != self.daemon_pid && out.len() < depth.max(1) {
            let Ok(st) = procfs::stat(at) else { break };
            let own = matches!(
                st.comm.as_str(),
                "secretctl" | "secretctl-mcp" | "secretctld"
            );
            if !own {
                out.push((
                    Identity {
                        pid: at,
                        start: st.starttime,
                    },
                    st.comm.clone(),
                ));
            }
            at = st.ppid;
        }
        out
    }
}
