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

use super::resolve::{self, Injection, ResolveError};
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
    if spec.patterns.is_empty() {
        return bad(if spec.entry == "run" {
            "no key given: name at least one with -k KEY"
        } else {
            "keys is empty: name at least one secret to inject, e.g. keys: [\"api/key\"] (secret_list shows them)"
        });
    }
    if spec.bindings_only && spec.patterns.len() != 1 {
        return bad("secret_run_with_bindings takes exactly one key");
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
    let policy = session.applied_policy();
    let work_cwd = cwd.clone();
    let (spec, program, injections, redactor) = tokio::task::spawn_blocking(move || {
        let cwd = work_cwd;
        let (policy, program) = check_policy(policy, &spec, mode, &cwd)?;
        if spec.bindings_only {
            check_has_bindings(&vault, &dk, &spec.patterns[0])?;
        }
        let injections = resolve::resolve(
            &vault,
            &dk,
            policy.as_ref(),
            &spec.alias,
            &spec.prefix,
            &spec.patterns,
            now_secs(),
        )?;
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
                let names: Vec<String> = injections.iter().map(|i| i.env.clone()).collect();
                command::check_no_var_args(&spec.argv, &names)
                    .map_err(|r| RunError::Invalid(r.0))?;
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
    tracing::info!(keys = ?rec.keys, command = %spec.argv[0], ?mode, "run prepared");
    let (slot, timeout) = match (mode, timeout) {
        (Mode::Agent, Some(t)) => {
            let (slot, left) = queue(session, &limits, t).await?;
            (Some(slot), Some(left))
        }
        _ => (None, timeout),
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
        env: spec.env,
        injections,
        redactor,
        timeout,
        pty: spec.pty,
        mode,
        entry: spec.entry,
        slot,
    })
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
            let policy = applied.map_err(RunError::PolicyUnusable)?;
            let program =
                command::check(&policy, &spec.argv, cwd).map_err(|r| RunError::Refused(r.0))?;
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
