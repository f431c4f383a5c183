//! `secretctl export` (contract §10): not built yet.

use crate::cli::ExportArgs;
use crate::error::{CliError, Result};

pub async fn run(_args: ExportArgs) -> Result<()> {
    Err(CliError::usage("'export' is not built yet".to_string()).into())
}
