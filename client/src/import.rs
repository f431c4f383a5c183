//! `secretctl import` (contract §10): not built yet.

use crate::cli::ImportArgs;
use crate::error::{CliError, Result};

pub async fn run(_args: ImportArgs, _json: bool) -> Result<()> {
    Err(CliError::usage("'import' is not built yet".to_string()).into())
}
