//! When the daemon classifies this process as an AI agent's (contract §9):
//! reading a value or changing the vault needs the human's consent, given
//! by typing the master password on the terminal — never taken from
//! `SECRETCTL_PASSWORD` or stdin, which an agent controls.
//!
//! Before such a request the CLI asks on `/dev/tty` and re-authenticates its
//! connection; without a terminal nothing is asked and the daemon's refusal
//! (exit 5) is the answer.

use std::io::Write;

use anyhow::Context;
use secretctl_proto::client::Client;
use secretctl_proto::v1::{ReauthRequest, StatusResponse};

use crate::error::{CliError, DENIED, Result};

/// True when the daemon classified this process as an agent's.
pub fn is_agent(st: &StatusResponse) -> bool {
    st.caller_class == "agent"
}

/// A terminal this process can prompt on, and that nobody traces.
fn terminal() -> Option<std::fs::File> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    // The password will pass through this process: keep same-uid debuggers
    // out, and do not ask at all while one is already attached.
    #[cfg(target_os = "linux")]
    {
        if nix::sys::prctl::set_dumpable(false).is_err() || traced() {
            return None;
        }
    }
    Some(tty)
}

#[cfg(target_os = "linux")]
fn traced() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("TracerPid:"))
                .map(|v| v.trim() != "0")
        })
        .unwrap_or(true)
}

/// Before a request that reveals a value or changes the vault (`what`, e.g.
/// "read 'prod/db'"): if this process is an agent's, asks the human on the
/// terminal for the master password and re-authenticates this connection.
pub async fn consent(client: &Client, st: &StatusResponse, what: &str) -> Result<()> {
    if !is_agent(st) {
        return Ok(());
    }
    let Some(mut tty) = terminal() else {
        // No prompt: the daemon refuses, and says why.
        return Ok(());
    };
    let _ = writeln!(
        tty,
        "\nsecretctl: a process the daemon classifies as an AI agent's asks to {what}.\n  why: {}\n  Allow it once by typing the master password (Ctrl-C refuses).",
        st.caller_reason
    );
    let mut line = zeroize::Zeroizing::new(
        rpassword::prompt_password("Master password: ").context("cannot read from the terminal")?,
    );
    if line.is_empty() {
        return Err(CliError::new(DENIED, "refused: no password was given on the terminal").into());
    }
    let password = std::mem::take(&mut *line).into_bytes();
    client
        .daemon()
        .reauthenticate(ReauthRequest { password })
        .await
        .map_err(|s| client.classify(s))
        .context("re-authentication failed")?;
    Ok(())
}

/// Like [`consent`], for commands that need the master password anyway
/// (`backup`, `restore`, `password change`): the one password typed on
/// the terminal both re-authenticates the connection and is returned, so
/// the human types it once. `None` for a user's process, and for an
/// agent's without a terminal (the daemon then refuses, exit 5, and
/// records the refusal).
pub async fn consent_password(
    client: &Client,
    st: &StatusResponse,
    what: &str,
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
    if !is_agent(st) {
        return Ok(None);
    }
    let Some(mut tty) = terminal() else {
        return Ok(None);
    };
    let _ = writeln!(
        tty,
        "\nsecretctl: a process the daemon classifies as an AI agent's asks to {what}.\n  why: {}\n  Allow it once by typing the master password (Ctrl-C refuses).",
        st.caller_reason
    );
    let mut line = zeroize::Zeroizing::new(
        rpassword::prompt_password("Master password: ").context("cannot read from the terminal")?,
    );
    if line.is_empty() {
        return Err(CliError::new(DENIED, "refused: no password was given on the terminal").into());
    }
    let password = zeroize::Zeroizing::new(std::mem::take(&mut *line).into_bytes());
    client
        .daemon()
        .reauthenticate(ReauthRequest {
            password: password.to_vec(),
        })
        .await
        .map_err(|s| client.classify(s))
        .context("re-authentication failed")?;
    Ok(Some(password))
}
