//! `secretctl backup` and `restore` (contract §10): not built yet.

use crate::cli::{BackupArgs, RestoreArgs};
use crate::error::{CliError, Result};

pub async fn backup(_args: BackupArgs, _json: bool) -> Result<()> {
    Err(CliError::usage("'backup' is not built yet".to_string()).into())
}

pub async fn restore(_args: RestoreArgs, _json: bool) -> Result<()> {
    Err(CliError::usage("'restore' is not built yet".to_string()).into())
}
