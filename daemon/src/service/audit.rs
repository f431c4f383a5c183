//! `secretctl.v1.Audit`: listing, verifying and pruning the audit log.
//! Everything needs the audit key, so the vault must be unlocked: only
//! records that verify are listed.

use std::sync::Arc;

use secretctl_proto::v1::audit_server::Audit as AuditRpc;
use secretctl_proto::v1::{
    AuditAcknowledgeRequest, AuditAcknowledgeResponse, AuditListRequest, AuditListResponse,
    AuditPruneRequest, AuditPruneResponse, AuditVerifyRequest, AuditVerifyResponse,
};
use tonic::{Request, Response, Status};

use crate::caller::Action;

use crate::session::Session;

/// The audit service.
pub struct AuditService {
    session: Arc<Session>,
}

impl AuditService {
    pub fn new(session: Arc<Session>) -> Self {
        AuditService { session }
    }
}

fn locked() -> Status {
    Status::failed_precondition(secretctl_proto::LOCKED_MESSAGE)
}

#[tonic::async_trait]
impl AuditRpc for AuditService {
    async fn list(
        &self,
        req: Request<AuditListRequest>,
    ) -> Result<Response<AuditListResponse>, Status> {
        let who = super::conn_of(&req);
        let r = match self.session.audit.list(req.into_inner()).await {
            Ok((records, problem)) => Ok(AuditListResponse { records, problem }),
            Err(e) if e == secretctl_proto::LOCKED_MESSAGE => Err(locked()),
            Err(e) => Err(Status::internal(e)),
        };
        super::audited(
            &self.session.audit,
            "audit_list",
            "cli",
            &who,
            Vec::new(),
            r,
        )
        .await
        .map(Response::new)
    }

    async fn verify(
        &self,
        req: Request<AuditVerifyRequest>,
    ) -> Result<Response<AuditVerifyResponse>, Status> {
        let who = super::conn_of(&req);
        let resp = self.session.audit.verify().await.ok_or_else(locked)?;
        let mut rec = super::event("audit_verify", "cli", &who);
        rec.success = resp.ok;
        if !resp.ok {
            rec.error = Some(resp.error.clone());
        }
        self.session.audit.record(rec).await?;
        Ok(Response::new(resp))
    }

    async fn prune(
        &self,
        req: Request<AuditPruneRequest>,
    ) -> Result<Response<AuditPruneResponse>, Status> {
        let who = super::conn_of(&req);
        let rec = super::event("audit_prune", "cli", &who);
        if let Err(refused) = super::gate(&self.session.audit, &who, Action::Change).await {
            return super::audited(
                &self.session.audit,
                "audit_prune",
                "cli",
                &who,
                Vec::new(),
                Err(refused),
            )
            .await;
        }
        let before = req.into_inner().before_ms;
        if before <= 0 {
            return Err(Status::invalid_argument("give a date to prune before"));
        }
        match self.session.audit.prune(before, rec).await {
            None => Err(locked()),
            Some(Ok(r)) => Ok(Response::new(r)),
            Some(Err(e)) => Err(Status::failed_precondition(e)),
        }
    }

    async fn acknowledge(
        &self,
        req: Request<AuditAcknowledgeRequest>,
    ) -> Result<Response<AuditAcknowledgeResponse>, Status> {
        let who = super::conn_of(&req);
        if let Err(refused) = super::gate(&self.session.audit, &who, Action::Change).await {
            return super::audited(
                &self.session.audit,
                "audit_gap_acknowledged",
                "cli",
                &who,
                Vec::new(),
                Err(refused),
            )
            .await;
        }
        let rec = super::event("audit_gap_acknowledged", "cli", &who);
        match self.session.audit.acknowledge(rec).await {
            Ok(gaps) => Ok(Response::new(AuditAcknowledgeResponse { gaps })),
            Err(e) if e == secretctl_proto::LOCKED_MESSAGE => Err(locked()),
            Err(e) => Err(Status::internal(e)),
        }
    }
}
