//! `restore` (contract §10): not built yet.

use std::sync::Arc;

#[allow(unused_imports)]
use secretctl_proto::v1::*;
#[allow(unused_imports)]
use tonic::Streaming;
use tonic::{Request, Response, Status};

#[allow(unused_imports)]
use super::Outbound;
use crate::session::Session;

pub async fn restore(
    _session: &Arc<Session>,
    _req: Request<Streaming<RestoreChunk>>,
) -> Result<Response<RestoreResponse>, Status> {
    Err(Status::unimplemented("'restore' is not built yet"))
}
