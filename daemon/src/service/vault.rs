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

#[tonic::async_trait]
impl VaultRpc for VaultService {
    async fn set(&self, req: Request<SetRequest>) -> Result<Response<SetResponse>, Status> {
        let req = req.into_inner();
        let (vault, key) = self.session.key(Use::Secret)?;
        let (created, meta) = blocking(move || vault.set(&key, &req).map_err(Status::from)).await?;
        tracing::info!(key = %meta.key, created, "secret stored");
        Ok(Response::new(SetResponse {
            created,
            meta: Some(meta),
        }))
    }

    async fn get(&self, req: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let req = req.into_inner();
        let (vault, key) = self.session.key(Use::Secret)?;
        let name = req.key.clone();
        let (field, value) =
            blocking(move || vault.get(&key, &req.key, &req.field).map_err(Status::from)).await?;
        tracing::info!(key = %name, %field, "secret read");
        Ok(Response::new(GetResponse {
            key: name,
            field,
            value: value.to_vec(),
        }))
    }

    async fn get_metadata(
        &self,
        req: Request<MetadataRequest>,
    ) -> Result<Response<MetadataResponse>, Status> {
        let req = req.into_inner();
        // Decrypts notes, URL and non-sensitive values, but no secret value:
        // looking does not keep the vault awake.
        let (vault, key) = self.session.key(Use::Look)?;
        let resp = blocking(move || vault.metadata(&key, &req.key).map_err(Status::from)).await?;
        Ok(Response::new(resp))
    }

    async fn list(&self, req: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let req = req.into_inner();
        let (vault, _) = self.session.key(Use::Look)?;
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
        let secrets = blocking(move || vault.list(&filter).map_err(Status::from)).await?;
        Ok(Response::new(ListResponse { secrets }))
    }

    async fn delete(
        &self,
        req: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let req = req.into_inner();
        let (vault, _) = self.session.key(Use::Secret)?;
        let name = req.key.clone();
        blocking(move || vault.delete(&req.key).map_err(Status::from)).await?;
        tracing::info!(key = %name, "secret deleted");
        Ok(Response::new(DeleteResponse {}))
    }
}
