//! `secretctl.v1.Daemon`: status, init, unlock, lock; the handlers of the
//! policy and config files (`settings`) and of agent registration and
//! re-authentication (`agents`) are in modules of their own.

use std::sync::Arc;
use std::time::Duration;

use secretctl_proto::v1::daemon_server::Daemon;
use secretctl_proto::v1::{
    ApplyRequest, ApplyResponse, Hardening, InitRequest, InitResponse, KdfParams, LockRequest,
    LockResponse, PolicyCheckRequest, PolicyCheckResponse, ProxyCaRequest, ProxyCaResponse,
    ReauthRequest, ReauthResponse, RegisterRequest, RegisterResponse, StatusRequest,
    StatusResponse, UiRequest, UiResponse, UnlockRequest, UnlockResponse,
};
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use super::{agents, blocking, settings};
use crate::caller::Action;
use crate::crypto;
use crate::session::{LockReason, Session, unix_ms};
use crate::vault::{Vault, VaultError};

/// The session-control service.
pub struct DaemonService {
    pub(super) session: Arc<Session>,
}

impl DaemonService {
    async fn do_proxy_ca(&self, rotate: bool) -> Result<ProxyCaResponse, Status> {
        let (vault, dk) = self.session.key(crate::session::Use::Look)?;
        let session = self.session.clone();
        let ca = blocking(move || {
            let r = if rotate {
                crate::runner::proxied::rotate_ca(&session, &vault, &dk)
            } else {
                crate::runner::proxied::current_ca(&session, &vault, &dk)
            };
            r.map_err(Status::from)
        })
        .await?;
        if rotate {
            tracing::info!(fingerprint = %ca.fingerprint(), "credential proxy CA rotated");
        }
        Ok(ProxyCaResponse {
            cert_pem: ca.cert_pem(),
            fingerprint: ca.fingerprint(),
        })
    }

    pub fn new(session: Arc<Session>) -> Self {
        DaemonService { session }
    }

    fn timeout(&self, secs: u64) -> Result<Duration, Status> {
        let cfg = &self.session.config;
        if secs == 0 {
            return Ok(cfg.idle_timeout);
        }
        let d = Duration::from_secs(secs);
        if d > cfg.max_idle_timeout {
            return Err(Status::invalid_argument(format!(
                "timeout {} is longer than the allowed {} (max_idle_timeout in config.yaml)",
                secretctl_proto::duration::format(d),
                secretctl_proto::duration::format(cfg.max_idle_timeout)
            )));
        }
        Ok(d)
    }
}

pub(super) fn check_password(pw: &[u8]) -> Result<(), Status> {
    if pw.is_empty() {
        return Err(Status::invalid_argument("the password is empty"));
    }
    if pw.len() > 4096 {
        return Err(Status::invalid_argument(
            "the password is longer than 4096 bytes",
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl Daemon for DaemonService {
    async fn status(
        &self,
        req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let who = super::conn_of(&req);
        let detail = req.get_ref().detail;
        let s = &self.session;
        let state = s.state();
        let secret_count = s.vault().map(|v| v.count()).unwrap_or(0);
        let (deadline, timeout) = s
            .idle_deadline()
            .map(|(t, d)| (unix_ms(t), d.as_secs()))
            .unwrap_or((0, 0));
        let h = crate::hardening::report();
        Ok(Response::new(StatusResponse {
            version: secretctl_proto::VERSION.to_string(),
            protocol: secretctl_proto::PROTOCOL,
            pid: std::process::id(),
            state: state as i32,
            idle_lock_deadline_unix_ms: deadline,
            secret_count,
            vault_path: s.paths.vault.display().to_string(),
            socket_path: s.paths.socket.display().to_string(),
            service_managed: s.service_managed,
            idle_timeout_secs: timeout,
            caller_class: who.caller.class.as_str().into(),
            caller_reason: who.caller.reason.clone(),
            // Reading the files is for `secretctl status`, not for probes.
            policy_state: if detail {
                settings::policy_state(s)
            } else {
                String::new()
            },
            config_state: if detail {
                settings::config_state(s)
            } else {
                String::new()
            },
            hardening: Some(Hardening {
                dumpable: h.dumpable,
                core_limit: h.core_limit,
                locked_bytes: h.locked_bytes,
                mlock_ok: h.mlock_ok,
            }),
        }))
    }

    async fn init(&self, req: Request<InitRequest>) -> Result<Response<InitResponse>, Status> {
        let who = super::conn_of(&req);
        let r = match super::gate(&self.session.audit, &who, Action::Change).await {
            Ok(()) => self.do_init(req.into_inner()).await,
            Err(refused) => Err(refused),
        };
        let mut rec = super::event("init", "cli", &who);
        super::outcome(&mut rec, &r);
        self.session.audit.record(rec).await?;
        r.map(Response::new)
    }

    async fn unlock(
        &self,
        req: Request<UnlockRequest>,
    ) -> Result<Response<UnlockResponse>, Status> {
        let who = super::conn_of(&req);
        // Every attempt is recorded (failed ones are the evidence of
        // guessing): none is tried while the log cannot be written.
        self.session.audit.ensure_writable().await?;
        let r = self.do_unlock(req.into_inner()).await;
        // A failed unlock is written at once (to the pending chain while
        // locked) and sealed into the chain at the next unlock.
        let mut rec = super::event("unlock", "cli", &who);
        super::outcome(&mut rec, &r);
        if let Err(e) = self.session.audit.record(rec).await {
            if r.is_ok() {
                self.session.lock(LockReason::Manual, Some(&who));
            }
            return Err(e.into());
        }
        r.map(Response::new)
    }

    async fn policy_check(
        &self,
        req: Request<PolicyCheckRequest>,
    ) -> Result<Response<PolicyCheckResponse>, Status> {
        let who = super::conn_of(&req);
        settings::policy_check(&self.session, &who)
            .await
            .map(Response::new)
    }

    async fn lock(&self, req: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        let who = super::conn_of(&req);
        let was = self.session.lock(LockReason::Manual, Some(&who));
        Ok(Response::new(LockResponse { was_unlocked: was }))
    }

    async fn register(
        &self,
        req: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let who = super::conn_of(&req);
        let kind = req.get_ref().kind();
        agents::register(&self.session, &who, kind)
            .await
            .map(Response::new)
    }

    async fn reauthenticate(
        &self,
        req: Request<ReauthRequest>,
    ) -> Result<Response<ReauthResponse>, Status> {
        let who = super::conn_of(&req);
        let password = Zeroizing::new(std::mem::take(&mut req.into_inner().password));
        agents::reauthenticate(&self.session, &who, password)
            .await
            .map(Response::new)
    }

    async fn policy_apply(
        &self,
        req: Request<ApplyRequest>,
    ) -> Result<Response<ApplyResponse>, Status> {
        let who = super::conn_of(&req);
        settings::apply_policy(&self.session, &who)
            .await
            .map(Response::new)
    }

    async fn config_apply(
        &self,
        req: Request<ApplyRequest>,
    ) -> Result<Response<ApplyResponse>, Status> {
        let who = super::conn_of(&req);
        settings::apply_config(&self.session, &who)
            .await
            .map(Response::new)
    }

    /// `secretctl proxy ca show|rotate` (contract §12). Showing the
    /// certificate reveals nothing secret (it makes the CA if there is
    /// none, as a first proxied run would); rotating replaces the CA for
    /// new runs, so it is a change an agent may not make.
    async fn proxy_ca(
        &self,
        req: Request<ProxyCaRequest>,
    ) -> Result<Response<ProxyCaResponse>, Status> {
        let who = super::conn_of(&req);
        let rotate = req.into_inner().rotate;
        let action = if rotate {
            "proxy_ca_rotate"
        } else {
            "proxy_ca"
        };
        let kind = if rotate { Action::Change } else { Action::Look };
        let r = match super::gate(&self.session.audit, &who, kind).await {
            Ok(()) => self.do_proxy_ca(rotate).await,
            Err(refused) => Err(refused),
        };
        super::audited(&self.session.audit, action, "cli", &who, Vec::new(), r)
            .await
            .map(Response::new)
    }

    /// `secretctl ui`: a login link to the web UI, started if needed. The
    /// UI shows and changes everything, so an agent caller is refused
    /// (contract §9) unless its connection re-authenticated.
    async fn ui(&self, req: Request<UiRequest>) -> Result<Response<UiResponse>, Status> {
        let who = super::conn_of(&req);
        let r = match super::gate(&self.session.audit, &who, Action::Reveal).await {
            Ok(()) => self
                .session
                .ui
                .open(&self.session)
                .map(|o| UiResponse {
                    base_url: o.base_url,
                    login_token: o.token.to_string(),
                    started: o.started,
                    idle_stop_secs: self.session.config.ui.idle_timeout.as_secs(),
                    token_ttl_secs: crate::ui::auth::TOKEN_TTL.as_secs(),
                })
                .map_err(|e| Status::internal(e.to_string())),
            Err(refused) => Err(refused),
        };
        super::audited(&self.session.audit, "ui", "cli", &who, Vec::new(), r)
            .await
            .map(Response::new)
    }
}

impl DaemonService {
    async fn do_init(&self, mut req: InitRequest) -> Result<InitResponse, Status> {
        let password = Zeroizing::new(std::mem::take(&mut req.password));
        check_password(&password)?;
        // A new vault's password: the same floor the CLI enforces.
        if String::from_utf8_lossy(&password).chars().count() < 8 {
            return Err(Status::invalid_argument(
                "the master password must be at least 8 characters",
            ));
        }
        let kdf = match req.kdf {
            Some(k) => crypto::KdfParams {
                memory_kib: k.memory_kib,
                iterations: k.iterations,
                parallelism: k.parallelism,
            },
            None => crypto::KdfParams::DEFAULT,
        };
        let _gate = self.session.unlock_gate.lock().await;
        if self.session.vault().is_ok() {
            return Err(VaultError::AlreadyInitialized(self.session.paths.vault.clone()).into());
        }
        let path = self.session.paths.vault.clone();
        let (vault, key) =
            blocking(move || Vault::init(&path, &password, kdf).map_err(Status::from)).await?;
        self.session.set_vault(vault);
        let timeout = self.session.config.idle_timeout;
        self.session.unlock(key, timeout);
        tracing::info!(kdf_memory_kib = kdf.memory_kib, "vault created");
        let deadline = self
            .session
            .idle_deadline()
            .map(|(t, _)| unix_ms(t))
            .unwrap_or(0);
        Ok(InitResponse {
            vault_path: self.session.paths.vault.display().to_string(),
            kdf: Some(KdfParams {
                memory_kib: kdf.memory_kib,
                iterations: kdf.iterations,
                parallelism: kdf.parallelism,
            }),
            idle_lock_deadline_unix_ms: deadline,
        })
    }

    async fn do_unlock(&self, mut req: UnlockRequest) -> Result<UnlockResponse, Status> {
        let password = Zeroizing::new(std::mem::take(&mut req.password));
        check_password(&password)?;
        let timeout = self.timeout(req.timeout_secs)?;
        let vault = self.session.vault()?;
        let _gate = self.session.unlock_gate.lock().await;
        let result = blocking(move || vault.unlock(&password).map_err(Status::from)).await;
        let key = match result {
            Ok(k) => k,
            Err(status) => {
                tracing::warn!(reason = status.message(), "unlock refused");
                return Err(status);
            }
        };
        self.session.unlock(key, timeout);
        tracing::info!(timeout_secs = timeout.as_secs(), "vault unlocked");
        let deadline = self
            .session
            .idle_deadline()
            .map(|(t, _)| unix_ms(t))
            .unwrap_or(0);
        Ok(UnlockResponse {
            idle_lock_deadline_unix_ms: deadline,
            idle_timeout_secs: timeout.as_secs(),
        })
    }
}
