//! Starting under a service manager: an inherited listening socket
//! (systemd's `LISTEN_FDS`/`LISTEN_PID`, launchd's `launch_activate_socket`)
//! and readiness notification (`sd_notify`'s `READY=1`).
//!
//! Every connection on an inherited socket still goes through the same
//! peer-uid check as on one we bound ourselves.

use std::os::unix::net::UnixListener;

use crate::error::{IoContext, StartError};

/// The listening socket a service manager passed us, if any.
pub fn inherited_listener() -> Result<Option<UnixListener>, StartError> {
    // launchd answers ESRCH when it does not manage us: then try systemd's way.
    #[cfg(target_os = "macos")]
    if let Some(l) = crate::hardening::launchd_socket("Listeners")
        .context_of(|| "cannot take the socket launchd holds for us".into())?
    {
        return Ok(Some(l));
    }
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    fds.take_unix_listener(0)
        .context_of(|| "LISTEN_FDS is set but fd 3 is not a listening Unix socket".into())
}

/// How many listening sockets systemd passed us (fd 3 onwards): the
/// `LISTEN_FDS` count when `LISTEN_PID` is our pid, else 0. Read before
/// anything else runs, so inherited descriptors beyond them can be closed.
pub fn passed_fd_count() -> i32 {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    if !ours {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .filter(|n| (0..=64).contains(n))
        .unwrap_or(0)
}

/// Tells systemd we are ready (`Type=notify`), when it asked us to.
pub fn notify_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send_notify(&path, b"READY=1") {
        tracing::warn!(error = %e, "cannot notify the service manager of readiness");
    }
}

fn send_notify(path: &std::ffi::OsStr, msg: &[u8]) -> std::io::Result<()> {
    let sock = std::os::unix::net::UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    #[cfg(target_os = "linux")]
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.send_to_addr(msg, &addr)?;
        return Ok(());
    }
    let _ = bytes;
    sock.send_to(msg, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_reaches_a_datagram_socket() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notify.sock");
        let rx = std::os::unix::net::UnixDatagram::bind(&p).unwrap();
        send_notify(p.as_os_str(), b"READY=1").unwrap();
        let mut buf = [0u8; 16];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn passed_fds_need_our_pid() {
        // The test runner is not socket-activated.
        if std::env::var_os("LISTEN_PID").is_none() {
            assert_eq!(passed_fd_count(), 0);
        }
    }

    #[test]
    fn no_activation_without_listen_fds() {
        // The test runner sets no LISTEN_FDS for us.
        if std::env::var_os("LISTEN_FDS").is_none() {
            assert!(inherited_listener().unwrap().is_none());
        }
    }
}
