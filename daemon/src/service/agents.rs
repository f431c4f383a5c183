//! Agent hosts registering themselves, and re-authentication: the master
//! password typed by a human lifts the agent refusal for one connection.

use secretctl_proto::v1::register_request::Kind;
use secretctl_proto::v1::{ReauthResponse, RegisterResponse};
use tonic::Status;
use zeroize::Zeroizing;

use super::{audited, blocking, event};
use crate::caller::Conn;
use crate::caller::classify::Classifier;
use crate::session::Session;

/// `Register`: a shim registers its agent hosts; `secretctl agent`
/// registers itself.
pub async fn register(s: &Session, who: &Conn, kind: Kind) -> Result<RegisterResponse, Status> {
    let r = do_register(s, who, kind);
    let mut rec = event("register", "cli", who);
    super::outcome(&mut rec, &r);
    if let Ok(resp) = &r {
        rec.detail.get_or_insert_with(|| serde_json::json!({}))["hosts"] =
            serde_json::json!(resp.hosts);
    }
    s.audit.record(rec).await?;
    r
}

fn do_register(s: &Session, who: &Conn, kind: Kind) -> Result<RegisterResponse, Status> {
    let pid = who
        .peer
        .pid
        .ok_or_else(|| Status::failed_precondition("the caller's pid is unknown"))?;
    let me = Classifier::identity(pid)
        .ok_or_else(|| Status::failed_precondition(format!("process {pid} is gone")))?;
    let hosts = match kind {
        Kind::Shim => {
            let depth = s.caller.rules().host_depth;
            let hosts = s.caller.hosts_above(pid, depth);
            s.caller.registry.add_shim(me, &hosts);
            hosts
        }
        Kind::Host => {
            let comm = crate::caller::procfs::stat(pid)
                .map(|st| st.comm)
                .unwrap_or_default();
            s.caller
                .registry
                .add_host(me, "ran 'secretctl agent'".into());
            vec![(me, comm)]
        }
        Kind::Unspecified => return Err(Status::invalid_argument("say what registers")),
    };
    let hosts: Vec<String> = hosts
        .iter()
        .map(|(id, comm)| format!("pid {} '{comm}'", id.pid))
        .collect();
    tracing::info!(?hosts, ?kind, "agent hosts registered");
    Ok(RegisterResponse { hosts })
}

/// `Reauthenticate`: checks the master password (with the unlock backoff)
/// and, if right, lets this connection do what its caller class alone may
/// not.
pub async fn reauthenticate(
    s: &Session,
    who: &Conn,
    password: Zeroizing<Vec<u8>>,
) -> Result<ReauthResponse, Status> {
    let r = async {
        super::daemon::check_password(&password)?;
        let vault = s.vault()?;
        let _gate = s.unlock_gate.lock().await;
        blocking(move || vault.unlock(&password).map(drop).map_err(Status::from)).await?;
        who.reauthenticated();
        Ok(ReauthResponse {})
    }
    .await;
    audited(&s.audit, "reauth", "cli", who, Vec::new(), r).await
}
