//! `secretctl.v1.Vault`: secret CRUD for the CLI. The only service that
//! returns plaintext, to the same-uid user who asked for it by name.

use std::sync::Arc;

use secretctl_proto::v1::vault_server::Vault as VaultRpc;
use secretctl_proto::v1::{
    DeleteRequest, DeleteResponse, GetRequest, GetResponse, ListRequest, ListResponse,
    MetadataRequest, MetadataResponse, SetRequest, SetResponse,
};
use tonic::{Request, Response, Status};

use super::blocking;
use crate::caller::{Action, Conn};
use crate::session::{Session, Use};
use crate::vault::{ListFilter, now_secs};

/// The CRUD service.
pub struct VaultService {
    session: Arc<Session>,
}

impl VaultService {
    pub fn new(session: Arc<Session>) -> Self {
        VaultService { session }
    }
}

impl VaultService {
    /// Asks the caller rule, runs `f` if allowed, records the outcome.
    async fn gated<T>(
        &self,
        action: &str,
        kind: Action,
        who: &Conn,
        key: Option<String>,
        f: impl std::future::Future<Output = Result<T, Status>>,
    ) -> Result<Response<T>, Status> {
        let result = match super::gate(&self.session.audit, who, kind).await {
            Ok(()) => f.await,
            Err(refused) => Err(refused),
        };
        let keys = key.into_iter().collect();
        super::audited(&self.session.audit, action, "cli", who, keys, result)
            .await
            .map(Response::new)
    }

    async fn do_set(&self, req: SetRequest) -> Result<SetResponse, Status> {
        let (vault, key) = self.session.key(Use::Secret)?;
        let (created, meta) = blocking(move || vault.set(&key, &req).map_err(Status::from)).await?;
        tracing::info!(key = %meta.key, created, "secret stored");
        Ok(SetResponse {
            created,
            meta: Some(meta),
        })
    }

    async fn do_get(&self, req: GetRequest) -> Result<GetResponse, Status> {
        let (vault, key) = self.session.key(Use::Secret)?;
        let name = req.key.clone();
        let (field, value) =
            blocking(move || vault.get(&key, &req.key, &req.field).map_err(Status::from)).await?;
        tracing::info!(key = %name, %field, "secret read");
        Ok(GetResponse {
            key: name,
            field,
            value: value.to_vec(),
        })
    }

    async fn do_metadata(&self, req: MetadataRequest) -> Result<MetadataResponse, Status> {
        // Decrypts notes, URL and non-sensitive values, but no secret value:
        // looking does not keep the vault awake.
        let (vault, key) = self.session.key(Use::Look)?;
        blocking(move || vault.metadata(&key, &req.key).map_err(Status::from)).await
    }

    async fn do_list(&self, req: ListRequest) -> Result<ListResponse, Status> {
        let (vault, key) = self.session.key(Use::Look)?;
        if req.prefix.len() > secretctl_proto::names::MAX_KEY_LEN || req.prefix.contains('\0') {
            return Err(Status::invalid_argument("prefix is not a valid key prefix"));
        }
        let filter = ListFilter {
            tag: (!req.tag.is_empty()).then_some(req.tag),
            prefix: req.prefix,
            expiring_before: match req.expiring_within_secs {
                Some(s) if s < 0 => {
                    return Err(Status::invalid_argument(
                        "expiring window must not be negative",
                    ));
                }
                Some(s) => Some(now_secs().saturating_add(s)),
                None => None,
            },
        };
        let secrets = blocking(move || vault.list(&key, &filter).map_err(Status::from)).await?;
        Ok(ListResponse { secrets })
    }

    async fn do_delete(&self, req: DeleteRequest) -> Result<DeleteResponse, Status> {
        let (vault, _) = self.session.key(Use::Secret)?;
        let name = req.key.clone();
        blocking(move || vault.delete(&req.key).map_err(Status::from)).await?;
        tracing::info!(key = %name, "secret deleted");
        Ok(DeleteResponse {})
    }
}

#[tonic::async_trait]
impl VaultRpc for VaultService {
    async fn set(&self, req: Request<SetRequest>) -> Result<Response<SetResponse>, Status> {
        let who = super::conn_of(&req);
        let req = req.into_inner();
        let key = Some(req.key.clone());
        self.gated("set", Action::Change, &who, key, self.do_set(req))
            .await
    }

    async fn get(&self, req: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let who = super::conn_of(&req);
        let req = req.into_inner();
        let key = Some(req.key.clone());
        self.gated("get", Action::Reveal, &who, key, self.do_get(req))
            .await
    }

    async fn get_metadata(
        &self,
        req: Request<MetadataRequest>,
    ) -> Result<Response<MetadataResponse>, Status> {
        let who = super::conn_of(&req);
        let req = req.into_inner();
        let key = Some(req.key.clone());
        self.gated(
            "get_metadata",
            Action::Look,
            &who,
            key,
            self.do_metadata(req),
        )
        .await
    }

    async fn list(&self, req: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let who = super::conn_of(&req);
        self.gated(
            "list",
            Action::Look,
            &who,
            None,
            self.do_list(req.into_inner()),
        )
        .await
    }

    async fn delete(
        &self,
        req: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let who = super::conn_of(&req);
        let req = req.into_inner();
        let key = Some(req.key.clone());
        self.gated("delete", Action::Change, &who, key, self.do_delete(req))
            .await
    }
}
