//! `secretctl password_change` (contract §10): not built yet.

use crate::cli::PasswordChangeArgs;
use crate::error::{CliError, Result};

pub async fn run(_args: PasswordChangeArgs, _json: bool) -> Result<()> {
    Err(CliError::usage("'password_change' is not built yet".to_string()).into())
}
