//! `secretctl.v1.Agent`: everything the MCP shim may ask.
//!
//! Invariants (the trust boundary for agents):
//! - No call returns a sensitive value: metadata, a fixed-width mask, the
//!   values of non-sensitive fields, and redacted output only.
//! - No call creates, changes or deletes anything in the vault.
//! - Runs are checked against `mcp-policy.yaml` (re-read every time), get
//!   only a small base environment plus the secrets, are redacted against
//!   every sensitive value in the vault, and are capped in count, time and
//!   output size.

pub mod command;
pub mod report;
pub mod score;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secretctl_proto::names;
use secretctl_proto::v1::agent_server::Agent;
use secretctl_proto::v1::{
    AgentExistsResponse, AgentFieldInfo, AgentFieldsResponse, AgentGetFieldRequest,
    AgentGetFieldResponse, AgentKeyRequest, AgentListRequest, AgentListResponse,
    AgentMaskedResponse, AgentRunRequest, AgentRunResponse, AgentSecretInfo, RunExit, SecretMeta,
    SecurityScoreRequest, SecurityScoreResponse, run_output,
};
use tokio::sync::{Semaphore, mpsc};
use tonic::{Request, Response, Status};

use crate::policy;
use crate::redact::Redactor;
use crate::runner::{self, resolve, spawn};
use crate::secret;
use crate::service::{audited, blocking, peer_of};
use crate::session::{Session, Use};
use crate::vault::{ListFilter, now_secs};

/// Variables of the shim's environment an agent run may see.
const BASE_ENV: [&str; 9] = [
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "TERM", "TZ", "TMPDIR", "SHELL",
];

/// The agent service.
pub struct AgentService {
    session: Arc<Session>,
    runs: Arc<Semaphore>,
}

impl AgentService {
    pub fn new(session: Arc<Session>) -> Self {
        let n = session.config.agent.max_concurrent_runs;
        AgentService {
            session,
            runs: Arc::new(Semaphore::new(n)),
        }
    }

    fn policy_path(&self) -> PathBuf {
        self.session
            .paths
            .home
            .join(secretctl_proto::paths::POLICY_FILE)
    }
}

fn info(m: &SecretMeta) -> AgentSecretInfo {
    AgentSecretInfo {
        key: m.key.clone(),
        field_count: m.fields.len() as u32,
        tags: m.tags.clone(),
        expires_at: m.expires_at,
        has_notes: m.has_notes,
        has_url: m.has_url,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

fn check_key(key: &str) -> Result<(), Status> {
    names::validate_key(key).map_err(|e| Status::invalid_argument(format!("key '{key}': {e}")))
}

/// `****` plus the last 4 characters for values of 12+ characters: a fixed
/// width that reveals no length.
pub fn mask(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let chars: Vec<char> = text.chars().collect();
    if chars.len() >= 12 {
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("****{tail}")
    } else {
        "****".into()
    }
}

/// Keeps `cap` bytes of a stream and notes whether more came.
struct Capped {
    buf: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Capped {
    fn push(&mut self, bytes: &[u8]) {
        let room = self.cap.saturating_sub(self.buf.len());
        if bytes.len() > room {
            self.truncated = true;
        }
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

impl AgentService {
    async fn do_list(
        &self,
        req: Request<AgentListRequest>,
    ) -> Result<Response<AgentListResponse>, Status> {
        let req = req.into_inner();
        let (vault, _) = self.session.key(Use::Look)?;
        let filter = ListFilter {
            tag: (!req.tag.is_empty()).then_some(req.tag),
            prefix: req.prefix,
            expiring_before: req
                .expiring_within_secs
                .map(|s| now_secs().saturating_add(s.max(0))),
        };
        let metas = blocking(move || vault.list(&filter).map_err(Status::from)).await?;
        Ok(Response::new(AgentListResponse {
            secrets: metas.iter().map(info).collect(),
        }))
    }

    async fn do_exists(
        &self,
        req: Request<AgentKeyRequest>,
    ) -> Result<Response<AgentExistsResponse>, Status> {
        let key = req.into_inner().key;
        check_key(&key)?;
        let (vault, _) = self.session.key(Use::Look)?;
        let k = key.clone();
        let found = blocking(move || vault.matching(&k).map_err(Status::from)).await?;
        let info = found.first().map(|(k, rec)| info(&secret::meta(k, rec)));
        Ok(Response::new(AgentExistsResponse {
            key,
            exists: info.is_some(),
            info,
        }))
    }

    async fn do_masked(
        &self,
        req: Request<AgentKeyRequest>,
    ) -> Result<Response<AgentMaskedResponse>, Status> {
        let key = req.into_inner().key;
        check_key(&key)?;
        let (vault, dk) = self.session.key(Use::Secret)?;
        let k = key.clone();
        let resp = blocking(move || {
            let meta = vault.metadata(&dk, &k).map_err(Status::from)?;
            let m = meta.meta.unwrap_or_default();
            let masked = match m
                .fields
                .iter()
                .find(|f| f.name == secret::DEFAULT_FIELD)
                .or_else(|| (m.fields.len() == 1).then(|| &m.fields[0]))
            {
                Some(f) => {
                    let (_, value) = vault.get(&dk, &k, &f.name).map_err(Status::from)?;
                    mask(&value)
                }
                None => "****".into(),
            };
            Ok(AgentMaskedResponse {
                key: k,
                masked_value: masked,
                field_count: m.fields.len() as u32,
                tags: m.tags,
                notes: meta.notes,
                url: meta.url,
            })
        })
        .await?;
        Ok(Response::new(resp))
    }

    async fn do_list_fields(
        &self,
        req: Request<AgentKeyRequest>,
    ) -> Result<Response<AgentFieldsResponse>, Status> {
        let key = req.into_inner().key;
        check_key(&key)?;
        let (vault, _) = self.session.key(Use::Look)?;
        let k = key.clone();
        let found = blocking(move || vault.matching(&k).map_err(Status::from)).await?;
        let (_, rec) = found
            .into_iter()
            .next()
            .ok_or_else(|| Status::not_found(format!("no secret named '{key}'")))?;
        Ok(Response::new(AgentFieldsResponse {
            key,
            fields: rec
                .fields
                .iter()
                .map(|f| AgentFieldInfo {
                    name: f.name.clone(),
                    sensitive: f.sensitive,
                    kind: f.kind.clone(),
                    hint: f.hint.clone(),
                })
                .collect(),
        }))
    }

    async fn do_get_field(
        &self,
        req: Request<AgentGetFieldRequest>,
    ) -> Result<Response<AgentGetFieldResponse>, Status> {
        let req = req.into_inner();
        check_key(&req.key)?;
        let (vault, dk) = self.session.key(Use::Secret)?;
        let (key, field) = (req.key.clone(), req.field.clone());
        let value = blocking(move || {
            let found = vault.matching(&key).map_err(Status::from)?;
            let (_, rec) = found
                .into_iter()
                .next()
                .ok_or_else(|| Status::not_found(format!("no secret named '{key}'")))?;
            let f = rec
                .fields
                .iter()
                .find(|f| f.name == field)
                .ok_or_else(|| Status::not_found(format!("secret '{key}' has no field '{field}'")))?;
            if f.sensitive {
                return Err(Status::permission_denied(format!(
                    "field '{field}' of '{key}' is sensitive: agents never see sensitive values (use secret_run to inject it)"
                )));
            }
            let v = vault.field_value(&dk, &key, &rec, &field).map_err(Status::from)?;
            Ok(String::from_utf8_lossy(&v).into_owned())
        })
        .await?;
        Ok(Response::new(AgentGetFieldResponse {
            key: req.key,
            field: req.field,
            value,
        }))
    }

    async fn do_run(
        &self,
        req: AgentRunRequest,
        rec: &mut crate::audit::record::Record,
    ) -> Result<Response<AgentRunResponse>, Status> {
        rec.command = Some(req.argv.join(" "));
        rec.keys = req.keys.clone();
        let limits = self.session.config.agent.clone();
        let timeout = match req.timeout_ms {
            0 => limits.default_timeout,
            ms => Duration::from_millis(ms),
        };
        if timeout > limits.max_timeout {
            return Err(Status::invalid_argument(format!(
                "timeout is longer than the allowed {}",
                secretctl_proto::duration::format(limits.max_timeout)
            )));
        }
        let mut start = secretctl_proto::v1::RunStart {
            key_patterns: req.keys.clone(),
            env_alias: req.env_alias.clone(),
            env_prefix: req.env_prefix.clone(),
            argv: req.argv.clone(),
            cwd: req.cwd.clone(),
            env: req
                .env
                .into_iter()
                .filter(|v| BASE_ENV.contains(&v.name.as_str()) || v.name.starts_with("LC_"))
                .collect(),
            ..Default::default()
        };
        let cwd = runner::validate_start(&mut start)?;
        if req.bindings_only && req.keys.len() != 1 {
            return Err(Status::invalid_argument(
                "secret_run_with_bindings takes exactly one key",
            ));
        }
        let (vault, dk) = self.session.key(Use::Secret)?;
        let policy_path = self.policy_path();
        let argv = start.argv.clone();
        let checked = {
            let (path, argv, cwd) = (policy_path.clone(), argv.clone(), cwd.clone());
            blocking(move || {
                Ok(policy::load(&path)
                    .map_err(|e| ("policy_error", e.to_string()))
                    .and_then(|pol| {
                        let program = command::check(&pol, &argv, &cwd)
                            .map_err(|r| ("policy_refused", r.0))?;
                        Ok((program, pol))
                    }))
            })
            .await?
        };
        // The policy read for the check also serves the env alias: one read
        // per run, so the alias cannot come from a different file version.
        let (program, policy) = match checked {
            Ok(p) => p,
            Err((action, why)) => {
                rec.action = action.into();
                return Err(Status::permission_denied(why));
            }
        };
        rec.detail =
            Some(serde_json::json!({"resolved": program.display().to_string(), "cwd": start.cwd}));
        let resolved = program.clone();
        let (program, injections, redactor) = blocking(move || {
            let program = resolved;
            if req.bindings_only {
                let key = &req.keys[0];
                let found = vault.matching(key).map_err(Status::from)?;
                match found.first() {
                    None => return Err(Status::not_found(format!("no secret named '{key}'"))),
                    Some((_, rec)) if rec.bindings.is_empty() => {
                        return Err(Status::failed_precondition(format!(
                            "secret '{key}' has no bindings: add them with 'secretctl set {key} --binding ENV=field', or use secret_run"
                        )));
                    }
                    Some(_) => {}
                }
            }
            let injections = resolve::resolve(
                &vault,
                &dk,
                Some(&policy),
                &req.env_alias,
                &req.env_prefix,
                &req.keys,
                now_secs(),
            )
            .map_err(Status::from)?;
            let names: Vec<String> = injections.iter().map(|i| i.env.clone()).collect();
            command::check_no_var_args(&argv, &names).map_err(|r| Status::invalid_argument(r.0))?;
            let everything = vault.sensitive_values(&dk).map_err(Status::from)?;
            let redactor = Redactor::new(
                injections
                    .iter()
                    .map(|i| (i.env.as_str(), i.value.as_slice()))
                    .chain(everything.iter().map(|(n, v)| (n.as_str(), v.as_slice()))),
            );
            Ok((program, injections, redactor))
        })
        .await?;
        let keys: Vec<&str> = injections.iter().map(|i| i.key.as_str()).collect();
        tracing::info!(?keys, command = %start.argv[0], resolved = %program.display(), "agent run");

        // Wait for a slot, but no longer than the run itself may take.
        let queued = tokio::time::Instant::now();
        let permit = tokio::time::timeout(timeout, self.runs.clone().acquire_owned())
            .await
            .map_err(|_| {
                Status::resource_exhausted(format!(
                    "{} agent runs were in progress for the whole timeout ({}): try again later",
                    limits.max_concurrent_runs,
                    secretctl_proto::duration::format(timeout)
                ))
            })?
            .map_err(|_| Status::internal("run queue closed"))?;
        let remaining = timeout
            .saturating_sub(queued.elapsed())
            .max(Duration::from_millis(1));

        let spawned = spawn::spawn(spawn::Plan {
            argv: &start.argv,
            program: Some(&program),
            cwd: std::path::Path::new(&start.cwd),
            env: &start.env,
            secrets: &injections,
            pty: None,
        });
        drop(injections);
        let exit = match spawned {
            Err(e) => {
                drop(permit);
                rec.success = false;
                rec.error = Some(e.message.clone());
                return Ok(Response::new(AgentRunResponse {
                    exit_code: e.code,
                    stderr: e.message,
                    ..Default::default()
                }));
            }
            Ok(sp) => {
                let (tx, mut rx) = mpsc::channel(4);
                tokio::spawn(runner::drive(sp, None, tx, redactor, Some(remaining), None));
                let cap = limits.output_cap_bytes;
                let mut out = Capped {
                    buf: Vec::new(),
                    cap,
                    truncated: false,
                };
                let mut err = Capped {
                    buf: Vec::new(),
                    cap,
                    truncated: false,
                };
                let mut exit = RunExit {
                    code: 1,
                    ..Default::default()
                };
                while let Some(msg) = rx.recv().await {
                    match msg.ok().and_then(|m| m.kind) {
                        Some(run_output::Kind::Stdout(b)) => out.push(&b),
                        Some(run_output::Kind::Stderr(b)) => err.push(&b),
                        Some(run_output::Kind::Exit(e)) => exit = e,
                        None => {}
                    }
                }
                drop(permit);
                (exit, out, err)
            }
        };
        let (exit, out, err) = exit;
        runner::record_exit(rec, &exit);
        Ok(Response::new(AgentRunResponse {
            exit_code: exit.code,
            stdout: String::from_utf8_lossy(&out.buf).into_owned(),
            stderr: String::from_utf8_lossy(&err.buf).into_owned(),
            duration_ms: exit.duration_ms,
            timed_out: exit.timed_out,
            truncated: out.truncated || err.truncated,
            redacted_count: exit.redacted_count,
        }))
    }

    async fn do_security_score(
        &self,
        _: Request<SecurityScoreRequest>,
    ) -> Result<Response<SecurityScoreResponse>, Status> {
        let (vault, dk) = self.session.key(Use::Look)?;
        let resp = blocking(move || {
            let scored: Vec<score::Scored> = vault
                .sensitive_secrets(&dk)
                .map_err(Status::from)?
                .into_iter()
                .map(|s| score::Scored {
                    expires_at: s.record.expires_at,
                    key: s.key,
                    values: s.values.into_iter().map(|(_, v)| v).collect(),
                })
                .collect();
            Ok(score::score(&scored, now_secs()))
        })
        .await?;
        Ok(Response::new(resp))
    }
}

fn keys_of(key: &str) -> Vec<String> {
    vec![key.to_string()]
}

#[tonic::async_trait]
impl Agent for AgentService {
    async fn list(
        &self,
        req: Request<AgentListRequest>,
    ) -> Result<Response<AgentListResponse>, Status> {
        let who = peer_of(&req);
        let r = self.do_list(req).await;
        audited(&self.session.audit, "list", "mcp", who, Vec::new(), r).await
    }

    async fn exists(
        &self,
        req: Request<AgentKeyRequest>,
    ) -> Result<Response<AgentExistsResponse>, Status> {
        let (who, keys) = (peer_of(&req), keys_of(&req.get_ref().key));
        let r = self.do_exists(req).await;
        audited(&self.session.audit, "exists", "mcp", who, keys, r).await
    }

    async fn masked(
        &self,
        req: Request<AgentKeyRequest>,
    ) -> Result<Response<AgentMaskedResponse>, Status> {
        let (who, keys) = (peer_of(&req), keys_of(&req.get_ref().key));
        let r = self.do_masked(req).await;
        audited(&self.session.audit, "get_masked", "mcp", who, keys, r).await
    }

    async fn list_fields(
        &self,
        req: Request<AgentKeyRequest>,
    ) -> Result<Response<AgentFieldsResponse>, Status> {
        let (who, keys) = (peer_of(&req), keys_of(&req.get_ref().key));
        let r = self.do_list_fields(req).await;
        audited(&self.session.audit, "list_fields", "mcp", who, keys, r).await
    }

    async fn get_field(
        &self,
        req: Request<AgentGetFieldRequest>,
    ) -> Result<Response<AgentGetFieldResponse>, Status> {
        let (who, keys) = (peer_of(&req), keys_of(&req.get_ref().key));
        let r = self.do_get_field(req).await;
        audited(&self.session.audit, "get_field", "mcp", who, keys, r).await
    }

    async fn run(
        &self,
        req: Request<AgentRunRequest>,
    ) -> Result<Response<AgentRunResponse>, Status> {
        let who = peer_of(&req);
        let mut rec = crate::audit::event("run", "mcp", who);
        let r = self.do_run(req.into_inner(), &mut rec).await;
        if let Err(s) = &r {
            rec.success = false;
            rec.error = Some(s.message().to_string());
        }
        self.session.audit.record(rec).await;
        r
    }

    async fn security_score(
        &self,
        req: Request<SecurityScoreRequest>,
    ) -> Result<Response<SecurityScoreResponse>, Status> {
        let who = peer_of(&req);
        let r = self.do_security_score(req).await;
        audited(
            &self.session.audit,
            "security_score",
            "mcp",
            who,
            Vec::new(),
            r,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_without_revealing_length() {
        assert_eq!(mask(b"short"), "****");
        assert_eq!(mask(b"elevenchars"), "****");
        assert_eq!(mask(b"twelve-chars"), "****hars");
        assert_eq!(mask(b"a-much-longer-secret-value-XYZW"), "****XYZW");
    }

    #[test]
    fn capped_output_notes_truncation() {
        let mut c = Capped {
            buf: Vec::new(),
            cap: 5,
            truncated: false,
        };
        c.push(b"abc");
        assert!(!c.truncated);
        c.push(b"defg");
        assert_eq!(c.buf, b"abcde");
        assert!(c.truncated);
    }
}
