//! `secretctl.v1.Transfer` (contract §10): moving secrets in and out of the
//! vault. Each RPC lives in its own module; this one only routes them.
//!
//! | RPC | caller rule (§9) | module |
//! |---|---|---|
//! | `Export`, `Backup` | reveal | `export`, `backup` |
//! | `Import`, `Restore`, `ChangePassword` | change | `import`, `restore`, `password` |
//! | `Security` | look (names only) | `security` |

mod backup;
mod export;
mod import;
mod password;
mod restore;
mod security;

use std::pin::Pin;
use std::sync::Arc;

use secretctl_proto::v1::transfer_server::Transfer;
use secretctl_proto::v1::{
    BackupChunk, BackupRequest, ChangePasswordRequest, ChangePasswordResponse, ExportRequest,
    ExportResponse, ImportChunk, ImportResponse, RestoreChunk, RestoreResponse, SecurityRequest,
    SecurityScoreResponse,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::session::Session;

/// A server stream of `T`.
pub type Outbound<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The transfer service.
pub struct TransferService {
    session: Arc<Session>,
}

impl TransferService {
    pub fn new(session: Arc<Session>) -> Self {
        TransferService { session }
    }
}

#[tonic::async_trait]
impl Transfer for TransferService {
    type ExportStream = Outbound<ExportResponse>;
    type BackupStream = Outbound<BackupChunk>;

    async fn export(
        &self,
        req: Request<ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        export::export(&self.session, req).await
    }

    async fn import(
        &self,
        req: Request<Streaming<ImportChunk>>,
    ) -> Result<Response<ImportResponse>, Status> {
        import::import(&self.session, req).await
    }

    async fn backup(
        &self,
        req: Request<BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        backup::backup(&self.session, req).await
    }

    async fn restore(
        &self,
        req: Request<Streaming<RestoreChunk>>,
    ) -> Result<Response<RestoreResponse>, Status> {
        restore::restore(&self.session, req).await
    }

    async fn change_password(
        &self,
        req: Request<ChangePasswordRequest>,
    ) -> Result<Response<ChangePasswordResponse>, Status> {
        password::change(&self.session, req).await
    }

    async fn security(
        &self,
        req: Request<SecurityRequest>,
    ) -> Result<Response<SecurityScoreResponse>, Status> {
        security::security(&self.session, req).await
    }
}
