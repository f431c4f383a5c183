//! The first half of every run, the CLI's and the agent's alike: from what a
//! client asked ([`RunSpec`]) to a checked plan ([`Prepared`]). Nothing is
//! started here; [`super::launch`] does that.
//!
//! Steps, in order: validate the request at the boundary; for agent runs
//! apply the agent rules (base environment only, no `--no-redact`, time
//! limits, the command policy); resolve the key patterns (env aliases come
//! from the same policy read); build the redactor. Every refusal happens
//! before anything runs, and the audit record is filled in as we go so a
//! refused run is recorded with what it asked for.
//!
//! Invariants:
//! - `SECRETCTL_*` never reaches a child; an agent's child sees only
//!   [`secretctl_proto::rules::BASE_ENV`] (plus `LC_*`) and its secrets.
//! - An agent run's redactor knows every sensitive value in the vault, not
//!   only the injected ones, and cannot be switched off.
//! - The policy is taken once per run, from the copy a user applied: the
//!   command check and the env alias come from the same version.
//! - A `run_start` record is durable before the run is started, so a run
//!   the daemon never saw end (a crash, a kill) is still in the log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secretctl_proto::v1::{EnvVar, RunStart, WindowSize};
use tokio::sync::OwnedSemaphorePermit;

use super::resolve::{self, Injection, ResolveError, Values};
use super::spawn;
use crate::agent::command;
use crate::audit::record::Record;
use crate::config::AgentLimits;
use crate::policy::Policy;
use crate::redact::Redactor;
use crate::session::{Gate, Session, Use};
use crate::vault::now_secs;

/// Most arguments of one command.
const MAX_ARGS: usize = 4096;
/// Largest environment a client may pass.
const MAX_ENV_BYTES: usize = 1024 * 1024;
/// Longest env alias or env prefix.
const MAX_ALIAS: usize = 64;

/// Whose rules a run follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The user's own run: their environment, redaction of the injected
    /// values (or none, if asked), any command.
    User,
    /// An agent's run: the policy, the base environment, whole-vault
    /// redaction, agent time limits.
    Agent,
}

/// What a client asked to run. No `Debug`: the environment may hold values.
#[derive(Default)]
pub struct RunSpec {
    pub patterns: Vec<String>,
    pub alias: String,
    pub prefix: String,
    pub argv: Vec<String>,
    pub cwd: String,
    pub env: Vec<EnvVar>,
    /// 0: no timeout (user) or the agent default.
    pub timeout_ms: u64,
    pub no_redact: bool,
    pub pty: Option<WindowSize>,
    /// `secret_run_with_bindings`: one key, which must have bindings.
    pub bindings_only: bool,
    /// Which entry asked: `run`, `secret_run`, `secret_run_with_bindings`.
    pub entry: &'static str,
    /// `run --proxy`: proxied secrets hold placeholders (agent runs always).
    pub proxy: bool,
}

impl From<RunStart> for RunSpec {
    fn from(s: RunStart) -> RunSpec {
        RunSpec {
            pty: s
                .pty
                .then(|| s.size.unwrap_or(WindowSize { rows: 24, cols: 80 })),
            patterns: s.key_patterns,
            alias: s.env_alias,
            prefix: s.env_prefix,
            argv: s.argv,
            cwd: s.cwd,
            env: s.env,
            timeout_ms: s.timeout_ms,
            no_redact: s.no_redact,
            bindings_only: false,
            entry: "run",
            proxy: s.proxy,
        }
    }
}

/// A run checked and ready to start. No `Debug`: it holds values.
pub struct Prepared {
    pub argv: Vec<String>,
    /// The executable the policy check resolved (agent runs); `None`: exec
    /// resolves `argv[0]` on the child's PATH.
    pub program: Option<PathBuf>,
    pub cwd: PathBuf,
    pub env: Vec<EnvVar>,
    pub injections: Vec<Injection>,
    pub redactor: Redactor,
    pub timeout: Option<Duration>,
    pub pty: Option<WindowSize>,
    pub mode: Mode,
    pub entry: &'static str,
    /// The agent run queue's slot, held until the run's tree is gone.
    pub slot: Option<OwnedSemaphorePermit>,
    /// The run's credential proxy, when it injects proxied secrets; it
    /// stops when the run's tree is gone.
    pub proxy: Option<crate::proxy::RunProxy>,
}

/// Why a run was refused before it started. Mapped to gRPC codes in
/// `service::status`.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The request broke a rule.
    #[error("{0}")]
    Invalid(String),
    /// The command policy refused the command.
    #[error("{0}")]
    Refused(String),
    /// The policy file cannot be used, so no agent run may start.
    #[error("{0}")]
    PolicyUnusable(String),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("{0:?}")]
    Gate(Gate),
    /// Every run slot stayed taken for the run's whole timeout.
    #[error("{0}")]
    Busy(String),
    /// The credential proxy cannot be set up (contract §12).
    #[error("{0}")]
    Proxy(String),
    #[error("{0}")]
    Internal(String),
}

impl RunError {
    /// The audit action of a run refused this way.
    pub fn audit_action(&self) -> Option<&'static str> {
        match self {
            RunError::Refused(_) => Some("policy_refused"),
            RunError::PolicyUnusable(_) => Some("policy_error"),
            _ => None,
        }
    }
}

impl From<Gate> for RunError {
    fn from(g: Gate) -> RunError {
        RunError::Gate(g)
    }
}

/// Checks a request at the daemon boundary and applies the environment
/// rules of `mode`; returns the working directory.
pub fn validate(spec: &mut RunSpec, mode: Mode) -> Result<PathBuf, RunError> {
    let cwd = validate_command(spec, mode)?;
    if spec.patterns.is_empty() {
        return Err(RunError::Invalid(
            if spec.entry == "run" {
                "no key given: name at least one with -k KEY"
            } else {
                "keys is empty: name at least one secret to inject, e.g. keys: [\"api/key\"] (secret_list shows them)"
            }
            .into(),
        ));
    }
    if spec.bindings_only && spec.patterns.len() != 1 {
        return Err(RunError::Invalid(
            "secret_run_with_bindings takes exactly one key".into(),
        ));
    }
    Ok(cwd)
}

/// [`validate`] but for the keys: the command, its arguments, the working
/// directory, the environment, alias and prefix.
fn validate_command(spec: &mut RunSpec, mode: Mode) -> Result<PathBuf, RunError> {
    let bad = |m: &str| Err(RunError::Invalid(m.to_string()));
    if spec.argv.is_empty() || spec.argv[0].is_empty() {
        return bad("no command given: put it after --");
    }
    if spec.argv.len() > MAX_ARGS {
        return bad("too many arguments");
    }
    if spec.argv.iter().any(|a| a.contains('\0')) {
        return bad("an argument contains a NUL byte");
    }
    let cwd = PathBuf::from(&spec.cwd);
    if !cwd.is_absolute() || !cwd.is_dir() {
        return Err(RunError::Invalid(format!(
            "working directory '{}' is not an existing absolute directory",
            secretctl_proto::text::shown(&spec.cwd)
        )));
    }
    // The daemon's own variables never reach the child.
    spec.env.retain(|v| !v.name.starts_with("SECRETCTL_"));
    if mode == Mode::Agent {
        spec.env
            .retain(|v| secretctl_proto::rules::is_base_env(&v.name));
        if spec.no_redact {
            return bad(
                "--no-redact is not available to an AI agent: its output is always redacted",
            );
        }
    }
    let mut total = 0;
    for v in &spec.env {
        total += v.name.len() + v.value.len();
        if v.name.is_empty() || v.name.contains(['=', '\0']) || v.value.contains(&0) {
            return Err(RunError::Invalid(format!(
                "environment variable {:?} has an invalid name or a NUL byte",
                v.name
            )));
        }
    }
    if total > MAX_ENV_BYTES {
        return bad("the environment is larger than 1 MiB");
    }
    if spec.alias.len() > MAX_ALIAS || spec.prefix.len() > MAX_ALIAS {
        return bad("env alias and env prefix are at most 64 bytes");
    }
    Ok(cwd)
}

/// The run's timeout: as asked (users), or within the agent limits.
pub fn timeout(
    spec: &RunSpec,
    mode: Mode,
    limits: &AgentLimits,
) -> Result<Option<Duration>, RunError> {
    let asked = (spec.timeout_ms > 0).then(|| Duration::from_millis(spec.timeout_ms));
    if mode == Mode::User {
        return Ok(asked);
    }
    let t = asked.unwrap_or(limits.default_timeout);
    if t > limits.max_timeout {
        return Err(RunError::Invalid(format!(
            "timeout {} is longer than the allowed {} (agent.max_timeout in config.yaml)",
            secretctl_proto::duration::format(t),
            secretctl_proto::duration::format(limits.max_timeout)
        )));
    }
    Ok(Some(t))
}

/// Turns a request into a checked plan, filling in `rec` as it learns what
/// the run is (command, keys, resolved executable).
pub async fn prepare(
    session: &Session,
    mut spec: RunSpec,
    mode: Mode,
    rec: &mut Record,
) -> Result<Prepared, RunError> {
    rec.command = Some(spec.argv.join(" "));
    rec.keys = spec.patterns.clone();
    let cwd = validate(&mut spec, mode)?;
    let limits = session.agent_limits();
    let timeout = timeout(&spec, mode, &limits)?;
    let (vault, dk) = session.key(Use::Secret)?;
    let for_proxy = (vault.clone(), dk.clone());
    let policy = session.applied_policy();
    let work_cwd = cwd.clone();
    let (spec, program, mut injections, redactor) = tokio::task::spawn_blocking(move || {
        let cwd = work_cwd;
        let (program, injections) =
            check_in_vault(&vault, &dk, policy, &spec, mode, &cwd, Values::Open)?;
        // Only sensitive values are redacted: a host or user name injected
        // beside a password stays readable.
        let injected = || {
            injections
                .iter()
                .filter(|i| i.sensitive)
                .map(|i| (i.env.as_str(), i.value.as_slice()))
        };
        let redactor = match mode {
            Mode::User if spec.no_redact => Redactor::none(),
            Mode::User => Redactor::new(injected()),
            Mode::Agent => {
                let everything = vault.sensitive_values(&dk).map_err(ResolveError::from)?;
                Redactor::new(
                    injected().chain(everything.iter().map(|(n, v)| (n.as_str(), v.as_slice()))),
                )
            }
        };
        Ok::<_, RunError>((spec, program, injections, redactor))
    })
    .await
    .map_err(|e| RunError::Internal(format!("worker failed: {e}")))??;
    // After the redactor took the real values: the child gets placeholders.
    let subs = if mode == Mode::Agent || spec.proxy {
        super::proxied::take_values(&mut injections)?
    } else {
        Vec::new()
    };

    let mut keys: Vec<String> = injections.iter().map(|i| i.key.clone()).collect();
    keys.dedup();
    rec.keys = keys;
    let shown = match &program {
        Some(p) => Some(p.clone()),
        None => {
            let path_var = spec.env.iter().find(|v| v.name == "PATH");
            spawn::which(&spec.argv[0], &cwd, path_var.map(|v| v.value.as_slice()))
        }
    };
    rec.detail = Some(serde_json::json!({
        "resolved": shown.map(|p| p.display().to_string()),
        "cwd": spec.cwd,
        "env_alias": spec.alias,
        "pty": spec.pty.is_some(),
    }));
    tracing::info!(keys = ?rec.keys, command = %spec.argv[0], ?mode, proxied = !subs.is_empty(), "run prepared");
    let (slot, timeout) = match (mode, timeout) {
        (Mode::Agent, Some(t)) => {
            let (slot, left) = queue(session, &limits, t).await?;
            (Some(slot), Some(left))
        }
        _ => (None, timeout),
    };
    // Started once the run has its slot (a queued run holds no listener),
    // and before `run_start`, which carries the run id.
    let mut env = spec.env;
    let proxy = if subs.is_empty() {
        None
    } else {
        let (vault, dk) = for_proxy;
        let p = super::proxied::start(session, vault, dk, subs, rec).await?;
        // Ours win over the client's own proxy settings: a request that
        // bypassed the run's proxy would carry only the placeholder.
        let vars = p.env();
        env.retain(|v| !vars.iter().any(|(name, _)| *name == v.name));
        env.extend(vars.into_iter().map(|(name, value)| EnvVar {
            name,
            value: value.into_bytes(),
        }));
        Some(p)
    };
    let mut started = rec.clone();
    started.action = "run_start".into();
    session
        .audit
        .record(started)
        .await
        .map_err(|e| RunError::Internal(e.to_string()))?;
    Ok(Prepared {
        argv: spec.argv,
        program,
        cwd,
        env,
        injections,
        redactor,
        timeout,
        pty: spec.pty,
        mode,
        entry: spec.entry,
        slot,
        proxy,
    })
}

/// The checks of a run that need the vault and the policy, in order: the
/// command (agents), a bindings-only key, the keys and their env names,
/// arguments naming an injected variable (agents). Shared by [`prepare`]
/// and [`check_agent_run`]. Returns the resolved program and what would be
/// injected (values opened or not, as `values` says).
fn check_in_vault(
    vault: &crate::vault::Vault,
    dk: &crate::keyring::DataKey,
    policy: Result<Policy, String>,
    spec: &RunSpec,
    mode: Mode,
    cwd: &Path,
    values: Values,
) -> Result<(Option<PathBuf>, Vec<Injection>), RunError> {
    let (policy, program) = check_policy(policy, spec, mode, cwd)?;
    if spec.bindings_only {
        check_has_bindings(vault, dk, &spec.patterns[0])?;
    }
    let injections = resolve::resolve_as(
        vault,
        dk,
        policy.as_ref(),
        &spec.alias,
        &spec.prefix,
        &spec.patterns,
        now_secs(),
        values,
    )?;
    if mode == Mode::Agent {
        let names: Vec<String> = injections.iter().map(|i| i.env.clone()).collect();
        command::check_no_var_args(&spec.argv, &names).map_err(|r| RunError::Invalid(r.0))?;
    }
    Ok((program, injections))
}

/// What an agent run of a request would be: the answer of
/// [`check_agent_run`]. Names only.
#[derive(Debug)]
pub struct WouldRun {
    /// The executable the policy check resolved.
    pub program: PathBuf,
    /// (env name, key) of each variable the run would get; empty when no
    /// keys were named (only the command and the directory were checked).
    pub injects: Vec<(String, String)>,
}

/// Whether `spec` would start as an agent run (`secret_run`, an agent's
/// `run`): [`prepare`]'s checks in [`prepare`]'s order and with its errors
/// (the request, the time limits, the command policy, the keys and their
/// env names, arguments naming a variable), without running anything,
/// decrypting a value or taking a run slot. With no key patterns, the keys
/// are not checked: the answer is about the command and the directory.
/// Behind the web UI's "would this command run?" box.
pub async fn check_agent_run(session: &Session, mut spec: RunSpec) -> Result<WouldRun, RunError> {
    let keys = !spec.patterns.is_empty();
    let cwd = if keys {
        validate(&mut spec, Mode::Agent)?
    } else {
        validate_command(&mut spec, Mode::Agent)?
    };
    timeout(&spec, Mode::Agent, &session.agent_limits())?;
    let policy = session.applied_policy();
    if !keys {
        let (_, program) = agent_command(policy, &spec.argv, &cwd)?;
        return Ok(WouldRun {
            program,
            injects: Vec::new(),
        });
    }
    // Names only leave: looking, so the idle timer is left alone.
    let (vault, dk) = session.key(Use::Look)?;
    tokio::task::spawn_blocking(move || {
        let (program, injections) =
            check_in_vault(&vault, &dk, policy, &spec, Mode::Agent, &cwd, Values::Skip)?;
        Ok(WouldRun {
            program: program.ok_or_else(|| {
                RunError::Internal("an agent run without a resolved program".into())
            })?,
            injects: injections.into_iter().map(|i| (i.env, i.key)).collect(),
        })
    })
    .await
    .map_err(|e| RunError::Internal(format!("worker failed: {e}")))?
}

/// Waits for an agent run slot, but no longer than the run itself may take;
/// returns the slot and the time left for the run.
async fn queue(
    session: &Session,
    limits: &AgentLimits,
    timeout: Duration,
) -> Result<(OwnedSemaphorePermit, Duration), RunError> {
    let queued = tokio::time::Instant::now();
    let slot = tokio::time::timeout(timeout, session.agent_run_slots().acquire_owned())
        .await
        .map_err(|_| {
            RunError::Busy(format!(
                "{} agent runs were in progress for the whole timeout ({}): try again later",
                limits.max_concurrent_runs,
                secretctl_proto::duration::format(timeout)
            ))
        })?
        .map_err(|_| RunError::Internal("run queue closed".into()))?;
    let left = timeout
        .saturating_sub(queued.elapsed())
        .max(Duration::from_millis(1));
    Ok((slot, left))
}

/// Whether an agent may run `argv` in `cwd` under the applied policy: the
/// check every agent run (`secret_run`, an agent's `run`) passes, also
/// behind the web UI's "would this command run?" box. Returns the policy
/// and the resolved program.
pub fn agent_command(
    applied: Result<Policy, String>,
    argv: &[String],
    cwd: &Path,
) -> Result<(Policy, PathBuf), RunError> {
    let policy = applied.map_err(RunError::PolicyUnusable)?;
    let program = command::check(&policy, argv, cwd).map_err(|r| RunError::Refused(r.0))?;
    Ok((policy, program))
}

/// The policy a run needs: always for agents (the command is checked
/// against it), for users only to look up an env alias. It is the copy a
/// user applied, never the file as it is now.
fn check_policy(
    applied: Result<Policy, String>,
    spec: &RunSpec,
    mode: Mode,
    cwd: &Path,
) -> Result<(Option<Policy>, Option<PathBuf>), RunError> {
    match mode {
        Mode::Agent => {
            let (policy, program) = agent_command(applied, &spec.argv, cwd)?;
            Ok((Some(policy), Some(program)))
        }
        Mode::User if spec.alias.is_empty() => Ok((None, None)),
        Mode::User => applied
            .map(|p| (Some(p), None))
            .map_err(|e| RunError::Resolve(ResolveError::Policy(e))),
    }
}

fn check_has_bindings(
    vault: &crate::vault::Vault,
    dk: &crate::keyring::DataKey,
    key: &str,
) -> Result<(), RunError> {
    let found = vault.matching(dk, key).map_err(ResolveError::from)?;
    match found.first() {
        None => Err(ResolveError::NotFound(format!("no secret named '{key}'")).into()),
        Some((_, rec)) if rec.bindings.is_empty() => {
            Err(RunError::Resolve(ResolveError::Invalid(format!(
                "secret '{key}' has no bindings: ask the user to add them ('secretctl set {key} --binding ENV=field'), or use secret_run"
            ))))
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KdfParams;
    use secretctl_proto::v1;

    fn var(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: value.as_bytes().to_vec(),
        }
    }

    fn spec(argv: &[&str]) -> RunSpec {
        RunSpec {
            patterns: vec!["k".into()],
            argv: argv.iter().map(|a| a.to_string()).collect(),
            cwd: "/".into(),
            ..Default::default()
        }
    }

    fn refusal(mut s: RunSpec, mode: Mode) -> String {
        match validate(&mut s, mode) {
            Err(RunError::Invalid(m)) => m,
            Err(e) => panic!("not Invalid: {e}"),
            Ok(cwd) => panic!("accepted (cwd {})", cwd.display()),
        }
    }

    fn names(s: &RunSpec) -> Vec<&str> {
        s.env.iter().map(|v| v.name.as_str()).collect()
    }

    #[test]
    fn commands_and_arguments_are_checked() {
        for argv in [&[][..], &[""][..]] {
            assert!(refusal(spec(argv), Mode::User).contains("no command given"));
        }
        let many: Vec<String> = (0..MAX_ARGS).map(|i| i.to_string()).collect();
        let mut s = spec(&[]);
        s.argv = many.clone();
        assert!(validate(&mut s, Mode::User).is_ok(), "{MAX_ARGS} arguments");
        s.argv.push("one more".into());
        assert_eq!(refusal(s, Mode::User), "too many arguments");
        assert!(refusal(spec(&["echo", "a\0b"]), Mode::User).contains("NUL byte"));
    }

    #[test]
    fn the_working_directory_must_be_an_existing_absolute_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        let mut s = spec(&["ls"]);
        s.cwd = dir.path().to_str().unwrap().into();
        assert_eq!(validate(&mut s, Mode::User).unwrap(), dir.path());
        for cwd in [
            "tmp".to_string(),
            dir.path().join("missing").display().to_string(),
            file.display().to_string(),
        ] {
            let mut s = spec(&["ls"]);
            s.cwd = cwd.clone();
            assert!(
                refusal(s, Mode::User).contains("is not an existing absolute directory"),
                "{cwd}"
            );
        }
    }

    #[test]
    fn user_runs_lose_only_secretctl_variables() {
        let mut s = spec(&["ls"]);
        s.env = vec![
            var("SECRETCTL_HOME", "/x"),
            var("FOO", "1"),
            var("PATH", "/bin"),
            var("SECRETCTL_AGENT", "1"),
        ];
        s.no_redact = true;
        validate(&mut s, Mode::User).unwrap();
        assert_eq!(names(&s), ["FOO", "PATH"]);
    }

    #[test]
    fn agent_runs_get_the_base_environment_and_always_redaction() {
        let mut s = spec(&["ls"]);
        s.env = vec![
            var("PATH", "/bin"),
            var("FOO", "1"),
            var("LC_ALL", "C"),
            var("SECRETCTL_SOCKET", "/s"),
            var("HOME", "/h"),
        ];
        validate(&mut s, Mode::Agent).unwrap();
        assert_eq!(names(&s), ["PATH", "LC_ALL", "HOME"]);
        let mut s = spec(&["ls"]);
        s.no_redact = true;
        assert!(refusal(s, Mode::Agent).contains("--no-redact is not available"));
    }

    #[test]
    fn environment_names_values_and_size_are_checked() {
        for v in [
            var("", "x"),
            var("A=B", "x"),
            var("A\0", "x"),
            var("A", "x\0y"),
        ] {
            let mut s = spec(&["ls"]);
            let shown = format!("{:?}", v.name);
            s.env = vec![v];
            assert!(
                refusal(s, Mode::User).contains("invalid name or a NUL byte"),
                "{shown}"
            );
        }
        // Names and values count; exactly 1 MiB passes.
        let big = |extra: usize| {
            let mut s = spec(&["ls"]);
            s.env = vec![
                var("AA", &"a".repeat(512 * 1024 - 2)),
                var("BB", &"b".repeat(512 * 1024 - 2 + extra)),
            ];
            s
        };
        let mut s = big(0);
        assert!(validate(&mut s, Mode::User).is_ok());
        assert!(refusal(big(1), Mode::User).contains("larger than 1 MiB"));
    }

    #[test]
    fn alias_prefix_and_bindings_limits() {
        let with = |alias: usize, prefix: usize| {
            let mut s = spec(&["ls"]);
            s.alias = "a".repeat(alias);
            s.prefix = "P".repeat(prefix);
            s
        };
        assert!(validate(&mut with(64, 64), Mode::User).is_ok());
        for (a, p) in [(65, 0), (0, 65)] {
            assert!(refusal(with(a, p), Mode::User).contains("at most 64 bytes"));
        }
        let mut s = spec(&["ls"]);
        s.bindings_only = true;
        assert!(validate(&mut s, Mode::Agent).is_ok());
        let mut s = spec(&["ls"]);
        s.bindings_only = true;
        s.patterns = vec!["a".to_string(), "b".to_string()];
        assert!(refusal(s, Mode::Agent).contains("takes exactly one key"));
        let mut s = spec(&["ls"]);
        s.bindings_only = true;
        s.patterns = vec![];
        assert!(refusal(s, Mode::Agent).contains("is empty"));
    }

    #[test]
    fn timeouts_for_users_and_agents() {
        let limits = AgentLimits {
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(60),
            ..AgentLimits::default()
        };
        let with = |ms: u64| RunSpec {
            timeout_ms: ms,
            ..spec(&["ls"])
        };
        let t = |ms: u64, mode: Mode| timeout(&with(ms), mode, &limits);
        assert_eq!(t(0, Mode::User).unwrap(), None);
        assert_eq!(
            t(3_600_001, Mode::User).unwrap(),
            Some(Duration::from_millis(3_600_001)),
            "users have no limit"
        );
        assert_eq!(t(0, Mode::Agent).unwrap(), Some(Duration::from_secs(30)));
        assert_eq!(
            t(45_000, Mode::Agent).unwrap(),
            Some(Duration::from_secs(45))
        );
        assert_eq!(
            t(60_000, Mode::Agent).unwrap(),
            Some(Duration::from_secs(60))
        );
        match t(60_001, Mode::Agent) {
            Err(RunError::Invalid(m)) => assert!(m.contains("agent.max_timeout"), "{m}"),
            other => panic!("{:?}", other.map_err(|e| e.to_string())),
        }
    }

    #[test]
    fn refusals_are_audited_under_their_own_action() {
        assert_eq!(
            RunError::Refused("x".into()).audit_action(),
            Some("policy_refused")
        );
        assert_eq!(
            RunError::PolicyUnusable("x".into()).audit_action(),
            Some("policy_error")
        );
        assert_eq!(RunError::Invalid("x".into()).audit_action(), None);
    }

    #[test]
    fn the_policy_a_run_needs() {
        let dir = tempfile::tempdir().unwrap();
        let policy = crate::policy::parse("version: 1\nallowed_commands: [ls]\n").unwrap();
        let missing = || Err::<Policy, String>("no policy file".into());
        let mut s = spec(&["ls"]);
        // Agents: always the policy, and the command is checked.
        assert!(matches!(
            check_policy(missing(), &s, Mode::Agent, dir.path()),
            Err(RunError::PolicyUnusable(m)) if m == "no policy file"
        ));
        let (p, program) = check_policy(Ok(policy.clone()), &s, Mode::Agent, dir.path()).unwrap();
        assert_eq!(p.as_ref(), Some(&policy));
        assert_eq!(program.unwrap().file_name().unwrap(), "ls");
        s.argv = vec!["cat".into()];
        assert!(matches!(
            check_policy(Ok(policy.clone()), &s, Mode::Agent, dir.path()),
            Err(RunError::Refused(m)) if m.contains("not in allowed_commands")
        ));
        // Users: only for an env alias.
        let (p, program) = check_policy(missing(), &s, Mode::User, dir.path()).unwrap();
        assert!(p.is_none() && program.is_none());
        s.alias = "dev".into();
        let (p, program) = check_policy(Ok(policy.clone()), &s, Mode::User, dir.path()).unwrap();
        assert_eq!((p, program), (Some(policy), None));
        assert!(matches!(
            check_policy(missing(), &s, Mode::User, dir.path()),
            Err(RunError::Resolve(ResolveError::Policy(_)))
        ));
    }

    #[test]
    fn runs_with_bindings_need_a_secret_with_bindings() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, key) =
            crate::vault::Vault::init(&dir.path().join("v.redb"), b"pw", KdfParams::TEST_TINY)
                .unwrap();
        let field = |name: &str| v1::FieldInput::new(name, b"v".to_vec());
        vault
            .set(
                &key,
                &v1::SetRequest {
                    key: "plain".into(),
                    fields: vec![field("value")],
                    ..Default::default()
                },
            )
            .unwrap();
        vault
            .set(
                &key,
                &v1::SetRequest {
                    key: "bound".into(),
                    fields: vec![field("pass")],
                    bindings: Some(v1::BindingList {
                        bindings: vec![v1::Binding {
                            env: "PASS".into(),
                            field: "pass".into(),
                        }],
                    }),
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(check_has_bindings(&vault, &key, "bound").is_ok());
        assert!(matches!(
            check_has_bindings(&vault, &key, "plain"),
            Err(RunError::Resolve(ResolveError::Invalid(m))) if m.contains("has no bindings")
        ));
        assert!(matches!(
            check_has_bindings(&vault, &key, "none"),
            Err(RunError::Resolve(ResolveError::NotFound(_)))
        ));
    }

    #[test]
    fn a_cli_run_request_becomes_a_spec() {
        let start = RunStart {
            key_patterns: vec!["db/*".into()],
            env_alias: "dev".into(),
            env_prefix: "APP_".into(),
            argv: vec!["ls".into(), "-l".into()],
            cwd: "/tmp".into(),
            env: vec![var("PATH", "/bin")],
            timeout_ms: 1500,
            pty: true,
            size: None,
            no_redact: true,
            proxy: true,
        };
        let s = RunSpec::from(start.clone());
        assert!(s.proxy);
        assert_eq!(s.patterns, ["db/*"]);
        assert_eq!((s.alias.as_str(), s.prefix.as_str()), ("dev", "APP_"));
        assert_eq!((s.argv, s.cwd), (start.argv.clone(), "/tmp".to_string()));
        assert_eq!(names(&RunSpec::from(start.clone())), ["PATH"]);
        assert_eq!((s.timeout_ms, s.no_redact), (1500, true));
        assert_eq!(s.pty, Some(WindowSize { rows: 24, cols: 80 }));
        assert!(!s.bindings_only);
        assert_eq!(s.entry, "run");
        let size = WindowSize {
            rows: 50,
            cols: 132,
        };
        let sized = RunSpec::from(RunStart {
            size: Some(size),
            ..start.clone()
        });
        assert_eq!(sized.pty, Some(size));
        let no_pty = RunSpec::from(RunStart {
            pty: false,
            size: Some(size),
            ..start
        });
        assert_eq!(no_pty.pty, None);
    }

    /// An unlocked session over a vault holding `api` (injected) and
    /// `other` (not), with `policy` applied and written as the policy file.
    fn unlocked_session(policy: &str) -> (std::sync::Arc<Session>, tempfile::TempDir) {
        use crate::session::Paths;
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_path_buf();
        let vault_path = home.join("v.redb");
        let (vault, key) =
            crate::vault::Vault::init(&vault_path, b"pw", KdfParams::TEST_TINY).unwrap();
        for (k, v) in [("api", "injected-value-1"), ("other", "never-injected-2")] {
            let req = v1::SetRequest {
                key: k.into(),
                fields: vec![v1::FieldInput::new("value", v.as_bytes().to_vec())],
                ..Default::default()
            };
            vault.set(&key, &req).unwrap();
        }
        let file = home.join(secretctl_proto::paths::POLICY_FILE);
        std::fs::write(&file, policy).unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let audit = crate::audit::Audit::start(&home.join("audit"), 1 << 20).unwrap();
        let session = Session::new(
            Paths {
                home: home.clone(),
                vault: vault_path,
                socket: home.join("s.sock"),
            },
            crate::config::Config::default(),
            Some(vault),
            false,
            audit,
        );
        session.unlock(key, Duration::from_secs(600));
        let v = session.vault().unwrap();
        let dk = session.key(Use::Look).unwrap().1;
        session
            .applied
            .set_policy(
                &v,
                &dk,
                policy.into(),
                crate::policy::parse(policy).unwrap(),
            )
            .unwrap();
        (session, dir)
    }

    fn run_spec(dir: &Path, argv: &[&str]) -> RunSpec {
        RunSpec {
            patterns: vec!["api".into()],
            argv: argv.iter().map(|a| a.to_string()).collect(),
            cwd: dir.display().to_string(),
            ..Default::default()
        }
    }

    fn redacted(p: &Prepared, text: &str) -> String {
        String::from_utf8(p.redactor.redact_all(text.as_bytes()).0).unwrap()
    }

    #[tokio::test]
    async fn user_runs_redact_what_they_inject_unless_asked_not_to() {
        let (session, dir) = unlocked_session("version: 1\n");
        let mut rec = crate::audit::event("run", "cli", crate::audit::daemon_peer());
        let p = prepare(
            &session,
            run_spec(dir.path(), &["ls"]),
            Mode::User,
            &mut rec,
        )
        .await
        .unwrap();
        assert_eq!(p.injections.len(), 1);
        assert_eq!(p.injections[0].env, "API");
        assert_eq!(
            redacted(&p, "a injected-value-1 b never-injected-2"),
            "a [REDACTED:API] b never-injected-2"
        );
        assert!(p.slot.is_none() && p.timeout.is_none());

        let mut spec = run_spec(dir.path(), &["ls"]);
        spec.no_redact = true;
        let p = prepare(&session, spec, Mode::User, &mut rec).await.unwrap();
        assert_eq!(redacted(&p, "a injected-value-1"), "a injected-value-1");
    }

    #[tokio::test]
    async fn user_runs_record_the_program_found_on_their_path() {
        use std::os::unix::fs::PermissionsExt;
        let (session, dir) = unlocked_session("version: 1\n");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut spec = run_spec(dir.path(), &["tool"]);
        spec.env = vec![
            var("AAA", "/nonexistent"),
            var("PATH", bin.to_str().unwrap()),
        ];
        let mut rec = crate::audit::event("run", "cli", crate::audit::daemon_peer());
        let p = prepare(&session, spec, Mode::User, &mut rec).await.unwrap();
        assert!(p.program.is_none(), "exec looks the name up itself");
        let detail = rec.detail.unwrap();
        assert_eq!(
            detail["resolved"],
            std::fs::canonicalize(&tool).unwrap().display().to_string()
        );
        assert_eq!(rec.keys, ["api"]);
    }

    #[tokio::test]
    async fn agent_runs_redact_the_whole_vault_and_take_a_queue_slot() {
        let (session, dir) = unlocked_session("version: 1\nallowed_commands: [ls]\n");
        let slots = session.agent_run_slots();
        let before = slots.available_permits();
        let mut rec = crate::audit::event("run", "mcp", crate::audit::daemon_peer());
        let p = prepare(
            &session,
            run_spec(dir.path(), &["ls"]),
            Mode::Agent,
            &mut rec,
        )
        .await
        .unwrap();
        assert_eq!(
            redacted(&p, "a injected-value-1 b never-injected-2"),
            "a [REDACTED:API] b [REDACTED:OTHER]"
        );
        assert!(p.program.is_some());
        // The default timeout, less the moment spent in the queue.
        let default = session.agent_limits().default_timeout;
        let left = p.timeout.unwrap();
        assert!(
            left <= default && left > default - Duration::from_secs(60),
            "{left:?}"
        );
        assert!(p.slot.is_some());
        assert_eq!(slots.available_permits(), before - 1);
        drop(p);
        assert_eq!(slots.available_permits(), before);
    }
}
