//! `secretctl generate` (contract §10): not built yet.

use crate::cli::GenerateArgs;
use crate::error::{CliError, Result};

pub async fn run(_args: GenerateArgs) -> Result<()> {
    Err(CliError::usage("'generate' is not built yet".to_string()).into())
}
