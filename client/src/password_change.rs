//! `secretctl password change` (contract §10): the old password from
//! `--password-stdin`, `SECRETCTL_PASSWORD` or a prompt; the new one from
//! `SECRETCTL_NEW_PASSWORD` or a prompt asked twice (an agent's process:
//! both from the terminal only). The daemon re-wraps the data key in one
//! transaction.

use anyhow::Context;
use secretctl_proto::v1::{ChangePasswordRequest, KdfParams, VaultState};
use serde_json::json;
use zeroize::Zeroizing;

use crate::cli::PasswordChangeArgs;
use crate::connect;
use crate::error::{CliError, Result};
use crate::output::print_json;
use crate::password;

/// The KDF flags as a request: `None` keeps the vault's parameters; a
/// parameter left out is 0, which keeps that one.
pub fn kdf_from_args(a: &PasswordChangeArgs) -> Option<KdfParams> {
    if a.kdf_memory.is_none() && a.kdf_iterations.is_none() && a.kdf_parallelism.is_none() {
        return None;
    }
    Some(KdfParams {
        memory_kib: a.kdf_memory.map_or(0, |m| m.saturating_mul(1024)),
        iterations: a.kdf_iterations.unwrap_or(0),
        parallelism: a.kdf_parallelism.unwrap_or(0),
    })
}

/// The new master password: asked twice on a terminal (always, for an
/// agent's process), else `SECRETCTL_NEW_PASSWORD`.
fn new_password(agent: bool) -> Result<Zeroizing<Vec<u8>>> {
    let env = std::env::var_os("SECRETCTL_NEW_PASSWORD").filter(|v| !v.is_empty());
    if agent && env.is_some() {
        eprintln!(
            "secretctl: ignoring SECRETCTL_NEW_PASSWORD: an agent's process gives the new password on the terminal only"
        );
    }
    match env {
        Some(v) if !agent => Ok(Zeroizing::new(v.into_encoded_bytes())),
        _ if agent || password::interactive() => {
            let first = password::prompt_hidden("New master password: ")?;
            if first.is_empty() {
                return Err(CliError::usage("the new password is empty").into());
            }
            let again = password::prompt_hidden("Repeat new master password: ")?;
            if *first != *again {
                return Err(CliError::usage("the passwords do not match").into());
            }
            Ok(first)
        }
        _ => Err(CliError::usage("no new password given")
            .hint("run in a terminal, or set SECRETCTL_NEW_PASSWORD")
            .into()),
    }
}

pub async fn run(a: PasswordChangeArgs, json_out: bool) -> Result<()> {
    let (client, st) = connect::connect().await?;
    if st.state == VaultState::Uninitialized as i32 {
        return Err(CliError::error("the vault is not initialized")
            .hint("run 'secretctl init'")
            .into());
    }
    let agent = crate::reauth::is_agent(&st);
    let consent =
        crate::reauth::consent_password(&client, &st, "change the master password").await?;
    let (mut old, mut new) = match (consent, agent) {
        (Some(old), _) => (old, new_password(true)?),
        // An agent's process without a terminal: the daemon refuses (exit
        // 5) and records the refusal.
        (None, true) => (Zeroizing::default(), Zeroizing::default()),
        (None, false) => {
            let old = password::master_password(a.password_stdin, false, None)?;
            (old, new_password(false)?)
        }
    };
    if !new.is_empty() {
        if *new == *old {
            return Err(CliError::usage("the new master password is the old one").into());
        }
        if let Some(warning) = password::check_new_password(&new)? {
            eprintln!("{warning}");
        }
    }
    let req = ChangePasswordRequest {
        old_password: std::mem::take(&mut *old),
        new_password: std::mem::take(&mut *new),
        kdf: kdf_from_args(&a),
    };
    drop((old, new));
    let resp = client
        .transfer()
        .change_password(req)
        .await
        .map_err(|s| client.classify(s))
        .context("cannot change the master password")?
        .into_inner();
    let kdf = resp.kdf.unwrap_or_default();
    if json_out {
        print_json(&json!({
            "changed": true,
            "state": if resp.unlocked { "unlocked" } else { "locked" },
            "kdf": {
                "memory_kib": kdf.memory_kib,
                "iterations": kdf.iterations,
                "parallelism": kdf.parallelism,
            },
        }))?;
    } else {
        let memory = if kdf.memory_kib % 1024 == 0 {
            format!("{} MiB", kdf.memory_kib / 1024)
        } else {
            format!("{} KiB", kdf.memory_kib)
        };
        outln!(
            "master password changed (Argon2id m={memory}, t={}, p={}); the vault stays {}",
            kdf.iterations,
            kdf.parallelism,
            if resp.unlocked { "unlocked" } else { "locked" }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(m: Option<u32>, t: Option<u32>, p: Option<u32>) -> PasswordChangeArgs {
        PasswordChangeArgs {
            kdf_memory: m,
            kdf_iterations: t,
            kdf_parallelism: p,
            password_stdin: false,
        }
    }

    #[test]
    fn kdf_flags_keep_what_is_not_given() {
        assert_eq!(kdf_from_args(&args(None, None, None)), None);
        assert_eq!(
            kdf_from_args(&args(Some(256), None, None)),
            Some(KdfParams {
                memory_kib: 256 * 1024,
                iterations: 0,
                parallelism: 0
            })
        );
        assert_eq!(
            kdf_from_args(&args(None, Some(2), Some(1))),
            Some(KdfParams {
                memory_kib: 0,
                iterations: 2,
                parallelism: 1
            })
        );
    }
}
