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
mod run;

use std::sync::Arc;

use secretctl_proto::names;
use secretctl_proto::v1::agent_server::Agent;
use secretctl_proto::v1::{
    AgentExistsResponse, AgentFieldInfo, AgentFieldsResponse, AgentGetFieldRequest,
    AgentGetFieldResponse, AgentKeyRequest, AgentListRequest, AgentListResponse,
    AgentMaskedResponse, AgentPolicyRequest, AgentPolicyResponse, AgentRunRequest,
    AgentRunResponse, AgentSecretInfo, SecretMeta, SecurityScoreRequest, SecurityScoreResponse,
};
use tonic::{Request, Response, Status};

use crate::secret;
use crate::service::{audited, blocking, conn_of};
use crate::session::{Session, Use};
use crate::vault::{ListFilter, now_secs};

/// The agent service.
pub struct AgentService {
    session: Arc<Session>,
}

impl AgentService {
    pub fn new(session: Arc<Session>) -> Self {
        AgentService { session }
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
    names::validate_key(key).map_err(|e| {
        Status::invalid_argument(format!("key '{}': {e}", secretctl_proto::text::shown(key)))
    })
}

/// `****` plus the last 4 characters for values of 12+ characters: a fixed
/// width that reveals no length.
pub fn mask(value: &[u8]) -> String {
    // Decoded into a buffer wiped on drop; no per-character copy.
    let text = zeroize::Zeroizing::new(String::from_utf8_lossy(value).into_owned());
    if text.chars().count() < 12 {
        return "****".into();
    }
    let tail = text.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
    format!("****{}", &text[tail..])
}

impl AgentService {
    async fn do_list(
        &self,
        req: Request<AgentListRequest>,
    ) -> Result<Response<AgentListResponse>, Status> {
        let req = req.into_inner();
        let (vault, dk) = self.session.key(Use::Look)?;
        let filter = ListFilter {
            tag: (!req.tag.is_empty()).then_some(req.tag),
            prefix: req.prefix,
            expiring_before: req
                .expiring_within_secs
                .map(|s| now_secs().saturating_add(s.max(0))),
        };
        let metas = blocking(move || vault.list(&dk, &filter).map_err(Status::from)).await?;
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
        let (vault, dk) = self.session.key(Use::Look)?;
        let k = key.clone();
        let found = blocking(move || vault.matching(&dk, &k).map_err(Status::from)).await?;
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
            let mut meta = vault.metadata(&dk, &k).map_err(Status::from)?;
            let m = meta.meta.take().unwrap_or_default();
            let masked = match secretctl_proto::rules::default_field(&m.fields, |f| &f.name) {
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
                notes: meta.notes.take(),
                url: meta.url.take(),
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
        let (vault, dk) = self.session.key(Use::Look)?;
        let k = key.clone();
        let found = blocking(move || vault.matching(&dk, &k).map_err(Status::from)).await?;
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
                    proxy_hosts: crate::secret::proxied_to(
                        &rec.proxy_hosts,
                        &f.proxy_hosts,
                        f.sensitive,
                    )
                    .to_vec(),
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
            let found = vault.matching(&dk, &key).map_err(Status::from)?;
            let (_, rec) = found
                .into_iter()
                .next()
                .ok_or_else(|| Status::not_found(format!("no secret named '{key}'")))?;
            let f = rec
                .fields
                .iter()
                .find(|f| f.name == field)
                .ok_or_else(|| {
                    Status::not_found(format!(
                        "secret '{key}' has no field '{}'",
                        secretctl_proto::text::shown(&field)
                    ))
                })?;
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

    async fn do_security_score(
        &self,
        _: Request<SecurityScoreRequest>,
    ) -> Result<Response<SecurityScoreResponse>, Status> {
        // Decrypts sensitive values to judge them, but answers with names
        // only: looking, not using, so it does not reset the idle timer.
        let (vault, dk) = self.session.key(Use::Look)?;
        let resp = blocking(move || {
            crate::security::judge(&vault, &dk, now_secs(), 0).map_err(Status::from)
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
        let who = conn_of(&req);
        let r = self.do_list(req).await;
        audited(&self.session.audit, "list", "mcp", &who, Vec::new(), r).await
    }

    async fn exists(
        &self,
        req: Request<AgentKeyRequest>,
    ) -> Result<Response<AgentExistsResponse>, Status> {
        let (who, keys) = (conn_of(&req), keys_of(&req.get_ref().key));
        let r = self.do_exists(req).await;
        audited(&self.session.audit, "exists", "mcp", &who, keys, r).await
    }

    async fn masked(
        &self,
        req: Request<AgentKeyRequest>,
    ) -> Result<Response<AgentMaskedResponse>, Status> {
        let (who, keys) = (conn_of(&req), keys_of(&req.get_ref().key));
        let r = self.do_masked(req).await;
        audited(&self.session.audit, "get_masked", "mcp", &who, keys, r).await
    }

    async fn list_fields(
        &self,
        req: Request<AgentKeyRequest>,
    ) -> Result<Response<AgentFieldsResponse>, Status> {
        let (who, keys) = (conn_of(&req), keys_of(&req.get_ref().key));
        let r = self.do_list_fields(req).await;
        audited(&self.session.audit, "list_fields", "mcp", &who, keys, r).await
    }

    async fn get_field(
        &self,
        req: Request<AgentGetFieldRequest>,
    ) -> Result<Response<AgentGetFieldResponse>, Status> {
        let (who, keys) = (conn_of(&req), keys_of(&req.get_ref().key));
        let r = self.do_get_field(req).await;
        audited(&self.session.audit, "get_field", "mcp", &who, keys, r).await
    }

    async fn run(
        &self,
        req: Request<AgentRunRequest>,
    ) -> Result<Response<AgentRunResponse>, Status> {
        let who = conn_of(&req);
        let mut rec = crate::service::event("run", "mcp", &who);
        match run::run(&self.session, req.into_inner(), &mut rec).await {
            Ok(resp) => {
                // Unrecorded, the run's output is not handed out.
                self.session.audit.record(rec).await?;
                Ok(Response::new(resp))
            }
            Err(e) => Err(crate::runner::refused(&self.session, rec, e).await),
        }
    }

    async fn policy(
        &self,
        req: Request<AgentPolicyRequest>,
    ) -> Result<Response<AgentPolicyResponse>, Status> {
        let who = conn_of(&req);
        let r = Ok(Response::new(report::applied_policy(
            self.session.applied_policy(),
        )));
        audited(&self.session.audit, "policy", "mcp", &who, Vec::new(), r).await
    }

    async fn security_score(
        &self,
        req: Request<SecurityScoreRequest>,
    ) -> Result<Response<SecurityScoreResponse>, Status> {
        let who = conn_of(&req);
        let r = self.do_security_score(req).await;
        audited(
            &self.session.audit,
            "security_score",
            "mcp",
            &who,
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
        assert_eq!(mask("ééééééééééé€€€€".as_bytes()), "****€€€€");
        assert_eq!(mask("éééééééééé".as_bytes()), "****");
    }
}
