//! `Security`: the findings of MCP `security_score` for the CLI, from the
//! same engine (`crate::security`). Names only, so any caller may look.

use std::sync::Arc;

use secretctl_proto::v1::{SecurityRequest, SecurityScoreResponse};
use tonic::{Request, Response, Status};

use crate::caller::Action;
use crate::service::{audited, blocking, conn_of, gate};
use crate::session::{Session, Use};
use crate::vault::now_secs;

pub async fn security(
    session: &Arc<Session>,
    req: Request<SecurityRequest>,
) -> Result<Response<SecurityScoreResponse>, Status> {
    let who = conn_of(&req);
    let days = req.into_inner().days;
    let result = async {
        gate(&session.audit, &who, Action::Look).await?;
        if days > 36_500 {
            return Err(Status::invalid_argument(
                "the expiry window is at most 36500 days",
            ));
        }
        // Judging decrypts sensitive values but answers with names only:
        // looking, not using, so the idle timer is not reset.
        let (vault, dk) = session.key(Use::Look)?;
        blocking(move || {
            crate::security::judge(&vault, &dk, now_secs(), days).map_err(Status::from)
        })
        .await
    }
    .await;
    audited(&session.audit, "security", "cli", &who, Vec::new(), result)
        .await
        .map(Response::new)
}
