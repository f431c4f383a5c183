//! `init`, `unlock`, `lock`, `status`: the vault session.

use secretctl_proto::v1::{InitRequest, KdfParams, LockRequest, UnlockRequest, VaultState};
use serde_json::json;

use crate::cli::{InitArgs, UnlockArgs};
use crate::connect;
use crate::error::{CliError, Result};
use crate::output::{print_json, time_ms};
use crate::password;

fn state_name(s: i32) -> &'static str {
    match VaultState::try_from(s) {
        Ok(VaultState::Uninitialized) => "uninitialized",
        Ok(VaultState::Locked) => "locked",
        Ok(VaultState::Unlocked) => "unlocked",
        _ => "unknown",
    }
}

/// KDF parameters from the flags; `None` when none was given.
pub fn kdf_from_args(a: &InitArgs) -> Option<KdfParams> {
    if a.kdf_memory.is_none() && a.kdf_iterations.is_none() && a.kdf_parallelism.is_none() {
        return None;
    }
    Some(KdfParams {
        memory_kib: a.kdf_memory.unwrap_or(64).saturating_mul(1024),
        iterations: a.kdf_iterations.unwrap_or(3),
        parallelism: a.kdf_parallelism.unwrap_or(4),
    })
}

pub async fn init(a: InitArgs, json_out: bool) -> Result<()> {
    let (client, _) = connect::connect().await?;
    let password = password::master_password(a.password_stdin, true)?;
    let req = InitRequest {
        password: password.to_vec(),
        kdf: kdf_from_args(&a),
    };
    drop(password);
    let resp = client
        .daemon()
        .init(req)
        .await
        .map_err(|s| client.classify(s))?
        .into_inner();
    if json_out {
        print_json(&json!({"vault_path": resp.vault_path, "state": "unlocked",
            "idle_lock_deadline": time_ms(resp.idle_lock_deadline_unix_ms)}));
    } else {
        println!("vault created at {} and unlocked", resp.vault_path);
    }
    Ok(())
}

pub async fn unlock(a: UnlockArgs, json_out: bool) -> Result<()> {
    let timeout_secs = match &a.timeout {
        Some(t) => secretctl_proto::duration::parse(t)
            .map_err(|e| CliError::usage(e.to_string()))?
            .as_secs()
            .max(1),
        None => 0,
    };
    let (client, _) = connect::connect().await?;
    let password = password::master_password(a.password_stdin, false)?;
    let req = UnlockRequest {
        password: password.to_vec(),
        timeout_secs,
    };
    drop(password);
    let resp = client
        .daemon()
        .unlock(req)
        .await
        .map_err(|s| client.classify(s))?
        .into_inner();
    let deadline = time_ms(resp.idle_lock_deadline_unix_ms);
    if json_out {
        print_json(&json!({"state": "unlocked", "idle_lock_deadline": deadline,
            "idle_timeout_secs": resp.idle_timeout_secs}));
    } else {
        println!(
            "unlocked; locks after {} without use (now: {})",
            secretctl_proto::duration::format(std::time::Duration::from_secs(
                resp.idle_timeout_secs
            )),
            deadline.unwrap_or_default()
        );
    }
    Ok(())
}

pub async fn lock(json_out: bool) -> Result<()> {
    let Some(client) = connect::existing().await? else {
        if json_out {
            print_json(&json!({"state": "locked", "daemon": "not running"}));
        } else {
            println!("vault is locked (daemon not running)");
        }
        return Ok(());
    };
    let resp = client
        .daemon()
        .lock(LockRequest {})
        .await
        .map_err(|s| client.classify(s))?
        .into_inner();
    if json_out {
        print_json(&json!({"state": "locked", "was_unlocked": resp.was_unlocked}));
    } else {
        println!("vault locked");
    }
    Ok(())
}

pub async fn status(json_out: bool) -> Result<()> {
    let (_, st) = connect::connect().await?;
    let deadline = time_ms(st.idle_lock_deadline_unix_ms);
    if json_out {
        print_json(&json!({
            "pid": st.pid,
            "version": st.version,
            "protocol": st.protocol,
            "state": state_name(st.state),
            "idle_lock_deadline": deadline,
            "idle_timeout_secs": st.idle_timeout_secs,
            "vault_path": st.vault_path,
            "socket_path": st.socket_path,
            "secret_count": st.secret_count,
            "service_managed": st.service_managed,
        }));
        return Ok(());
    }
    println!(
        "daemon:    secretctld {} (pid {}, protocol {})",
        st.version, st.pid, st.protocol
    );
    println!("state:     {}", state_name(st.state));
    if let Some(d) = deadline {
        println!("idle lock: {d}");
    }
    println!("vault:     {}", st.vault_path);
    println!("socket:    {}", st.socket_path);
    println!("secrets:   {}", st.secret_count);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdf_flags() {
        let mut a = InitArgs {
            kdf_memory: None,
            kdf_iterations: None,
            kdf_parallelism: None,
            password_stdin: false,
        };
        assert_eq!(kdf_from_args(&a), None);
        a.kdf_memory = Some(1);
        assert_eq!(
            kdf_from_args(&a),
            Some(KdfParams {
                memory_kib: 1024,
                iterations: 3,
                parallelism: 4
            })
        );
    }
}
