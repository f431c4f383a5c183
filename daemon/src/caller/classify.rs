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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::caller::Class;
    use crate::caller::registry::RunInfo;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// A child process, killed and reaped on drop.
    struct Proc(Child);

    impl Drop for Proc {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    impl Proc {
        fn pid(&self) -> i32 {
            self.0.id() as i32
        }
    }

    /// `prog args` with exactly `env`, waiting on its stdin.
    fn spawn(prog: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let child = Command::new(prog)
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        if !env.is_empty() {
            procfs::tests::exec_done(child.id());
        }
        Proc(child)
    }

    fn cat(env: &[(&str, &str)]) -> Proc {
        spawn("/bin/cat", &[], env)
    }

    /// Polls `cond` until it holds (10 s at most).
    fn wait_for<T>(what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = cond() {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `sh` with `env` and its child `cat`, which has an empty environment.
    fn sh_over_cat(env: &[(&str, &str)]) -> (Proc, i32) {
        shell_over_cat("/bin/sh", env)
    }

    /// Like [`sh_over_cat`], with the shell at `shell`.
    fn shell_over_cat(shell: &str, env: &[(&str, &str)]) -> (Proc, i32) {
        let sh = spawn(shell, &["-c", "/usr/bin/env -i /bin/cat; :"], env);
        let cat = wait_for("sh's cat", || {
            procfs::children_of(sh.pid())
                .into_iter()
                .find(|&p| procfs::stat(p).is_ok_and(|s| s.comm == "cat"))
        });
        (sh, cat)
    }

    fn id(pid: i32) -> Identity {
        Classifier::identity(pid).unwrap()
    }

    /// A classifier whose daemon is `daemon_pid`.
    fn classifier(daemon_pid: i32) -> Classifier {
        Classifier {
            rules: RwLock::new(Rules::default()),
            registry: Registry::default(),
            cache: Mutex::new(HashMap::new()),
            daemon_pid,
            uid: nix::unistd::geteuid().as_raw(),
            stats: procfs::StatFiles::default(),
        }
    }

    /// A classifier for which this test process is a user's run supervisor,
    /// so walks end here whatever our own ancestors are.
    fn below_a_user_run() -> Classifier {
        let c = classifier(0);
        let me = id(std::process::id() as i32);
        c.registry.run_started(
            me,
            RunInfo {
                kind: RunKind::User,
                what: "the test".into(),
            },
        );
        c
    }

    fn agent_because(c: &Classifier, pid: i32) -> String {
        let caller = c.classify(Some(pid));
        assert_eq!(caller.class, Class::Agent, "{}", caller.reason);
        caller.reason
    }

    fn user_because(c: &Classifier, pid: i32) -> String {
        let caller = c.classify(Some(pid));
        assert_eq!(caller.class, Class::User, "{}", caller.reason);
        caller.reason
    }

    #[test]
    fn markers_in_the_caller_or_an_ancestor_make_an_agent() {
        let c = below_a_user_run();
        let plain = cat(&[("NOT_CLAUDECODE", "1")]);
        assert!(user_because(&c, plain.pid()).starts_with("no agent host, agent run or marker"));
        let marked = cat(&[("CLAUDECODE", "1")]);
        assert_eq!(
            agent_because(&c, marked.pid()),
            "this process has the AI agent marker CLAUDECODE in its environment"
        );
        let (sh, below) = sh_over_cat(&[("SECRETCTL_AGENT", "1")]);
        assert_eq!(
            agent_because(&c, below),
            format!(
                "this process descends from an AI agent (pid {} 'sh' has SECRETCTL_AGENT in its environment)",
                sh.pid()
            )
        );
        // What a user's run started is the user's (its own markers aside).
        c.registry.run_started(
            id(sh.pid()),
            RunInfo {
                kind: RunKind::User,
                what: "run".into(),
            },
        );
        user_because(&c, below);
    }

    #[test]
    fn configured_markers_count_once_the_rules_change() {
        let c = below_a_user_run();
        let p = cat(&[("MY_AGENT", "1")]);
        user_because(&c, p.pid());
        let mut rules = Rules::default();
        rules.markers.push("MY_AGENT".into());
        c.set_rules(rules.clone());
        assert_eq!(c.rules(), rules);
        assert!(agent_because(&c, p.pid()).contains("MY_AGENT"));
    }

    #[test]
    fn classification_can_be_turned_off() {
        let c = below_a_user_run();
        let marked = cat(&[("CLAUDECODE", "1")]);
        c.set_rules(Rules {
            enabled: false,
            ..Rules::default()
        });
        assert!(!c.rules().enabled);
        assert_eq!(
            user_because(&c, marked.pid()),
            "classification is off (agent.classify: false)"
        );
    }

    #[test]
    fn an_unknown_pid_is_an_agent() {
        let c = below_a_user_run();
        for pid in [None, Some(0), Some(-7)] {
            let caller = c.classify(pid);
            assert_eq!(caller.class, Class::Agent, "{pid:?}");
            assert!(
                caller.reason.contains("pid is unknown"),
                "{}",
                caller.reason
            );
        }
    }

    #[test]
    fn shims_hosts_and_agent_runs_make_agents() {
        let (sh, below) = sh_over_cat(&[]);
        let c = below_a_user_run();
        user_because(&c, below);

        let c = below_a_user_run();
        c.registry.add_shim(id(below), &[]);
        assert_eq!(
            agent_because(&c, below),
            "this process is the MCP shim (secretctl-mcp)"
        );

        let c = below_a_user_run();
        c.registry.add_shim(id(sh.pid()), &[]);
        assert!(
            agent_because(&c, below).starts_with(&format!(
                "this process descends from the MCP shim (pid {} 'sh', ",
                sh.pid()
            )),
            "{}",
            c.classify(Some(below)).reason
        );

        let c = below_a_user_run();
        c.registry
            .add_host(id(sh.pid()), "started secretctl-mcp (pid 9)".into());
        assert_eq!(
            agent_because(&c, below),
            format!(
                "this process descends from an AI agent (pid {} 'sh' started secretctl-mcp (pid 9))",
                sh.pid()
            )
        );

        let c = below_a_user_run();
        c.registry.run_started(
            id(sh.pid()),
            RunInfo {
                kind: RunKind::Agent,
                what: "secret_run 'make'".into(),
            },
        );
        assert_eq!(
            agent_because(&c, below),
            "this process was started by an agent run (secret_run 'make')"
        );
    }

    #[test]
    fn a_process_named_secretctl_mcp_is_the_shim() {
        let dir = tempfile::tempdir().unwrap();
        let shim = dir.path().join("secretctl-mcp");
        std::os::unix::fs::symlink("/bin/cat", &shim).unwrap();
        let p = spawn(shim.to_str().unwrap(), &[], &[]);
        wait_for("the exec of secretctl-mcp", || {
            procfs::stat(p.pid())
                .ok()
                .filter(|s| s.comm == "secretctl-mcp")
        });
        let c = below_a_user_run();
        assert_eq!(
            agent_because(&c, p.pid()),
            "this process is the MCP shim (secretctl-mcp)"
        );
    }

    #[test]
    fn a_child_of_the_daemon_outside_a_run_is_an_orphan_agent() {
        let (sh, below) = sh_over_cat(&[]);
        let c = classifier(sh.pid());
        assert_eq!(
            agent_because(&c, below),
            format!(
                "this process is an orphan of a run whose supervisor is gone (it is a child of secretctld, as pid {below})"
            )
        );
    }

    #[test]
    fn headless_callers_are_agents_only_when_configured() {
        // setsid: a new session, so no controlling terminal.
        let p = spawn("/usr/bin/setsid", &["/bin/cat"], &[]);
        wait_for("setsid to exec cat", || {
            procfs::stat(p.pid()).ok().filter(|s| s.comm == "cat")
        });
        assert_eq!(procfs::stat(p.pid()).unwrap().tty_nr, 0);
        let c = below_a_user_run();
        user_because(&c, p.pid());
        c.set_rules(Rules {
            headless_agent: true,
            ..Rules::default()
        });
        assert_eq!(
            agent_because(&c, p.pid()),
            "this process has no controlling terminal (agent.headless: agent)"
        );
    }

    #[test]
    fn an_exited_caller_is_an_agent() {
        let p = spawn("/bin/true", &[], &[]);
        wait_for("true to exit", || {
            procfs::stat(p.pid()).ok().filter(|s| s.state == 'Z')
        });
        let reason = agent_because(&below_a_user_run(), p.pid());
        assert!(
            reason.contains("cannot be read") && reason.contains("it has exited"),
            "{reason}"
        );
    }

    #[test]
    fn what_a_walk_read_is_cached_by_identity() {
        let (sh, below) = sh_over_cat(&[]);
        let c = below_a_user_run();
        user_because(&c, below);
        {
            let cache = c.cache.lock().unwrap();
            assert!(cache.contains_key(&id(below)) && cache.contains_key(&id(sh.pid())));
        }
        c.set_rules(Rules::default());
        assert!(c.cache.lock().unwrap().is_empty());
    }

    #[test]
    fn live_registrations_are_kept_side_by_side() {
        let (a, b) = (cat(&[]), cat(&[]));
        let r = Registry::default();
        r.add_host(id(a.pid()), "a".into());
        r.add_host(id(b.pid()), "b".into());
        assert_eq!(r.host(id(a.pid())).as_deref(), Some("a"));
        assert_eq!(r.host(id(b.pid())).as_deref(), Some("b"));
        assert_eq!(r.host_count(), 2);
    }

    #[test]
    fn agent_hosts_are_the_shims_ancestors_but_not_our_own_binaries() {
        let me = std::process::id() as i32;
        let (sh, below) = sh_over_cat(&[]);
        let c = classifier(me);
        let sh_host = (id(sh.pid()), "sh".to_string());
        assert_eq!(c.hosts_above(below, 1), std::slice::from_ref(&sh_host));
        assert_eq!(
            c.hosts_above(below, 5),
            std::slice::from_ref(&sh_host),
            "the walk stops at the daemon"
        );
        // Without a daemon above, it stops before pid 1.
        let all = classifier(0).hosts_above(below, usize::MAX);
        assert_eq!(all.first(), Some(&sh_host));
        assert!(all.len() >= 2 && all.iter().all(|h| h.0.pid > 1), "{all:?}");

        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("secretctl");
        std::os::unix::fs::symlink("/bin/sh", &own).unwrap();
        let (_own, below) = shell_over_cat(own.to_str().unwrap(), &[]);
        let hosts = classifier(0).hosts_above(below, 1);
        assert_eq!(
            hosts.iter().map(|h| h.0).collect::<Vec<_>>(),
            [id(me)],
            "{hosts:?}"
        );
    }
}
