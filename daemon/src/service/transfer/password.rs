//! `change` (contract §10): not built yet.

use std::sync::Arc;

#[allow(unused_imports)]
use secretctl_proto::v1::*;
#[allow(unused_imports)]
use tonic::Streaming;
use tonic::{Request, Response, Status};

#[allow(unused_imports)]
use super::Outbound;
use crate::session::Session;

pub async fn change(
    _session: &Arc<Session>,
    _req: Request<ChangePasswordRequest>,
) -> Result<Response<ChangePasswordResponse>, Status> {
    Err(Status::unimplemented("'change' is not built yet"))
}
