//! `init`, `unlock`, `lock`, `status`: the vault session.
//!
//! Passwords are read only after the daemon answered and its state says the
//! command can succeed, so nobody types a password twice for a vault that
//! already exists. Each password lives in one `Zeroizing` buffer and is
//! moved, not copied, into the request.

use anyhow::Context;
use secretctl_proto::v1::{
    InitRequest, KdfParams, LockRequest, StatusResponse, UnlockRequest, VaultState,
};
use serde_json::json;

use crate::cli::{InitArgs, UnlockArgs};
use crate::connect;
use crate::error::{CliError, Result};
use crate::output::{human_secs, print_json, time_ms};
use crate::password;

/// Argon2id defaults (contract §4), used for flags not given when some are.
const DEFAULT_KDF_MIB: u32 = 64;
const DEFAULT_KDF_ITERATIONS: u32 = 3;
const DEFAULT_KDF_PARALLELISM: u32 = 4;

fn state_name(s: i32) -> &'static str {
    match VaultState::try_from(s) {
        Ok(VaultState::Uninitialized) => "uninitialized",
        Ok(VaultState::Locked) => "locked",
        Ok(VaultState::Unlocked) => "unlocked",
        _ => "unknown",
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// KDF parameters from the flags; `None` (the daemon's defaults) when none
/// was given.
pub fn kdf_from_args(a: &InitArgs) -> Option<KdfParams> {
    if a.kdf_memory.is_none() && a.kdf_iterations.is_none() && a.kdf_parallelism.is_none() {
        return None;
    }
    Some(KdfParams {
        memory_kib: a.kdf_memory.unwrap_or(DEFAULT_KDF_MIB).saturating_mul(1024),
        iterations: a.kdf_iterations.unwrap_or(DEFAULT_KDF_ITERATIONS),
        parallelism: a.kdf_parallelism.unwrap_or(DEFAULT_KDF_PARALLELISM),
    })
}

pub async fn init(a: InitArgs, json_out: bool) -> Result<()> {
    let (client, st) = connect::connect().await?;
    if st.state != VaultState::Uninitialized as i32 {
        return Err(
            CliError::error(format!("a vault already exists at {}", st.vault_path))
                .hint("unlock it with 'secretctl unlock'")
                .into(),
        );
    }
    let agent = crate::reauth::is_agent(&st).then_some(st.caller_reason.as_str());
    let mut pw = password::master_password(a.password_stdin, true, agent)?;
    let req = InitRequest {
        password: std::mem::take(&mut *pw),
        kdf: kdf_from_args(&a),
    };
    drop(pw);
    let resp = client
        .daemon()
        .init(req)
        .await
        .map_err(|s| client.classify(s))
        .context("cannot create the vault")?
        .into_inner();
    // The daemon reports the deadline, not the timeout: round the time
    // left to whole seconds, which recovers the configured timeout.
    let idle_secs = ((resp.idle_lock_deadline_unix_ms - now_ms()).max(0) as u64 + 500) / 1000;
    if json_out {
        print_json(&json!({
            "vault_path": resp.vault_path,
            "state": "unlocked",
            "idle_lock_deadline": time_ms(resp.idle_lock_deadline_unix_ms),
            "kdf": resp.kdf.map(|k| json!({
                "memory_kib": k.memory_kib,
                "iterations": k.iterations,
                "parallelism": k.parallelism,
            })),
        }))?;
    } else {
        outln!(
            "vault created at {} and unlocked (idle lock in {})",
            resp.vault_path,
            human_secs(idle_secs)
        );
    }
    Ok(())
}

pub async fn unlock(a: UnlockArgs, json_out: bool) -> Result<()> {
    // 0 asks for the daemon's default; the flag itself refuses 0.
    let timeout_secs = a.timeout.map_or(0, |d| d.as_secs());
    let (client, st) = connect::connect().await?;
    if st.state == VaultState::Uninitialized as i32 {
        return Err(CliError::error("the vault is not initialized")
            .hint("run 'secretctl init'")
            .into());
    }
    let agent = crate::reauth::is_agent(&st).then_some(st.caller_reason.as_str());
    let mut pw = password::master_password(a.password_stdin, false, agent)?;
    let req = UnlockRequest {
        password: std::mem::take(&mut *pw),
        timeout_secs,
    };
    drop(pw);
    let resp = client
        .daemon()
        .unlock(req)
        .await
        .map_err(|s| client.classify(s))
        .context("cannot unlock the vault")?
        .into_inner();
    let deadline = time_ms(resp.idle_lock_deadline_unix_ms);
    if json_out {
        print_json(&json!({
            "state": "unlocked",
            "idle_lock_deadline": deadline,
            "idle_timeout_secs": resp.idle_timeout_secs,
        }))?;
    } else {
        outln!(
            "unlocked until {} (idle timeout {})",
            deadline.as_deref().unwrap_or("-"),
            human_secs(resp.idle_timeout_secs)
        );
    }
    Ok(())
}

pub async fn lock(json_out: bool) -> Result<()> {
    // No daemon means no key in memory: the vault is as locked as it gets,
    // and starting a daemon only to lock it would be silly.
    let Some(client) = connect::existing().await? else {
        if json_out {
            print_json(&json!({"state": "locked", "daemon_running": false}))?;
        } else {
            outln!("vault is locked (daemon not running)");
        }
        return Ok(());
    };
    let resp = client
        .daemon()
        .lock(LockRequest {})
        .await
        .map_err(|s| client.classify(s))
        .context("cannot lock the vault")?
        .into_inner();
    if json_out {
        print_json(&json!({
            "state": "locked",
            "daemon_running": true,
            "was_unlocked": resp.was_unlocked,
        }))?;
    } else if resp.was_unlocked {
        outln!("vault locked");
    } else {
        outln!("vault is locked (it was not unlocked)");
    }
    Ok(())
}

/// The status as JSON (keys fixed by the CLI's documented output).
pub fn status_json(st: &StatusResponse) -> serde_json::Value {
    json!({
        "pid": st.pid,
        "version": st.version,
        "protocol": st.protocol,
        "state": state_name(st.state),
        "idle_lock_deadline": time_ms(st.idle_lock_deadline_unix_ms),
        "idle_timeout_secs": st.idle_timeout_secs,
        "vault_path": st.vault_path,
        "socket_path": st.socket_path,
        "secret_count": st.secret_count,
        "service_managed": st.service_managed,
        "caller": {"class": st.caller_class, "reason": st.caller_reason},
        "policy": st.policy_state,
        "config": st.config_state,
        "hardening": st.hardening.as_ref().map(|h| json!({
            "dumpable": h.dumpable,
            "core_limit": h.core_limit,
            "locked_bytes": h.locked_bytes,
            "mlock_ok": h.mlock_ok,
        })),
    })
}

/// One line on the daemon's hardening; problems named, not hidden.
fn hardening_line(h: &secretctl_proto::v1::Hardening) -> String {
    let mut parts = vec![
        if h.dumpable {
            "DUMPABLE (ptrace and core dumps possible)".to_string()
        } else {
            "not dumpable".to_string()
        },
        if h.core_limit == 0 {
            "no core files".to_string()
        } else {
            format!("CORE LIMIT {}", h.core_limit)
        },
        format!("{} bytes mlocked", h.locked_bytes),
    ];
    if !h.mlock_ok {
        parts.push("MLOCK REFUSED (raise RLIMIT_MEMLOCK)".into());
    }
    parts.join(", ")
}

pub async fn status(json_out: bool) -> Result<()> {
    let (client, _) = connect::connect().await?;
    let st = client
        .daemon()
        .status(secretctl_proto::v1::StatusRequest { detail: true })
        .await
        .map_err(|s| client.classify(s))
        .context("cannot read the daemon's status")?
        .into_inner();
    if json_out {
        return print_json(&status_json(&st));
    }
    outln!(
        "daemon:    secretctld {} (pid {}, protocol {}{})",
        st.version,
        st.pid,
        st.protocol,
        if st.service_managed {
            ", service-managed"
        } else {
            ""
        }
    );
    let next = match VaultState::try_from(st.state) {
        Ok(VaultState::Uninitialized) => " (run 'secretctl init')",
        Ok(VaultState::Locked) => " (run 'secretctl unlock')",
        _ => "",
    };
    outln!("state:     {}{next}", state_name(st.state));
    if let Some(d) = time_ms(st.idle_lock_deadline_unix_ms) {
        outln!(
            "idle lock: {d} (idle timeout {})",
            human_secs(st.idle_timeout_secs)
        );
    }
    outln!("vault:     {}", st.vault_path);
    outln!("socket:    {}", st.socket_path);
    outln!("secrets:   {}", st.secret_count);
    outln!("policy:    mcp-policy.yaml {}", st.policy_state);
    outln!("config:    config.yaml {}", st.config_state);
    outln!("caller:    {} ({})", st.caller_class, st.caller_reason);
    if let Some(h) = &st.hardening {
        outln!("hardening: {}", hardening_line(h));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init_args(m: Option<u32>, t: Option<u32>, p: Option<u32>) -> InitArgs {
        InitArgs {
            kdf_memory: m,
            kdf_iterations: t,
            kdf_parallelism: p,
            password_stdin: false,
        }
    }

    #[test]
    fn kdf_flags_fill_in_defaults() {
        assert_eq!(kdf_from_args(&init_args(None, None, None)), None);
        assert_eq!(
            kdf_from_args(&init_args(Some(1), None, None)),
            Some(KdfParams {
                memory_kib: 1024,
                iterations: 3,
                parallelism: 4
            })
        );
        assert_eq!(
            kdf_from_args(&init_args(None, Some(7), Some(2))),
            Some(KdfParams {
                memory_kib: 64 * 1024,
                iterations: 7,
                parallelism: 2
            })
        );
    }

    #[test]
    fn status_json_keys() {
        let st = StatusResponse {
            version: "0.1.0".into(),
            protocol: 1,
            pid: 42,
            state: VaultState::Locked as i32,
            ..Default::default()
        };
        let j = status_json(&st);
        let mut keys: Vec<_> = j.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "caller",
                "config",
                "hardening",
                "idle_lock_deadline",
                "idle_timeout_secs",
                "pid",
                "policy",
                "protocol",
                "secret_count",
                "service_managed",
                "socket_path",
                "state",
                "vault_path",
                "version"
            ]
        );
        assert_eq!(j["state"], "locked");
        assert_eq!(j["idle_lock_deadline"], serde_json::Value::Null);
        assert_eq!(j["hardening"], serde_json::Value::Null);
    }

    #[test]
    fn hardening_is_shown() {
        let h = secretctl_proto::v1::Hardening {
            dumpable: false,
            core_limit: 0,
            locked_bytes: 4096,
            mlock_ok: true,
        };
        let st = StatusResponse {
            hardening: Some(h),
            ..Default::default()
        };
        assert_eq!(
            status_json(&st)["hardening"],
            json!({"dumpable": false, "core_limit": 0, "locked_bytes": 4096, "mlock_ok": true})
        );
        assert_eq!(
            hardening_line(&h),
            "not dumpable, no core files, 4096 bytes mlocked"
        );
        let bad = secretctl_proto::v1::Hardening {
            dumpable: true,
            core_limit: u64::MAX,
            locked_bytes: 0,
            mlock_ok: false,
        };
        let line = hardening_line(&bad);
        assert!(
            line.contains("DUMPABLE") && line.contains("MLOCK REFUSED"),
            "{line}"
        );
    }
}
