//! `secretctl security` (contract §10): not built yet.

use crate::cli::SecurityArgs;
use crate::error::{CliError, Result};

pub async fn run(_args: SecurityArgs, _json: bool) -> Result<()> {
    Err(CliError::usage("'security' is not built yet".to_string()).into())
}
