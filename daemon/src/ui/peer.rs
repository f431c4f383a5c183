//! Whose is the TCP connection at the other end? The web UI listens on
//! 127.0.0.1, where every local user can connect; only connections from a
//! socket owned by the daemon's own uid are served (contract §11).
//!
//! Linux: the kernel lists every TCP socket with its owner's uid in
//! `/proc/net/tcp` and `/proc/net/tcp6`. The client's socket is the row
//! whose local address is the peer address we accepted and whose remote
//! address is our listening address (a dual-stack client appears in
//! `tcp6` with an IPv4-mapped address).
//!
//! Invariant: fail closed. A row that is missing (another network
//! namespace, a client already gone), a file that cannot be read or
//! parsed, or an owner that is not us all refuse the connection.
//!
//! Other systems have no such table; see [`owner`] and docs/ui.md.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a connection's owner is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error("cannot read {0}: {1}")]
    Unreadable(&'static str, String),
    #[error("no socket {0} -> {1} in /proc/net/tcp or /proc/net/tcp6")]
    NotFound(SocketAddr, SocketAddr),
}

/// The uid owning the client socket of the connection from `peer` to
/// `ours`.
#[cfg(target_os = "linux")]
pub fn owner(peer: SocketAddr, ours: SocketAddr) -> Result<u32, PeerError> {
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PeerError::Unreadable(path, e.to_string()))?;
        if let Some(uid) = find(&text, peer, ours) {
            return Ok(uid);
        }
    }
    Err(PeerError::NotFound(peer, ours))
}

/// Elsewhere (macOS, the BSDs) there is no table to look the client up
/// in: the owner is unknown, and the caller decides (docs/ui.md).
#[cfg(not(target_os = "linux"))]
pub fn owner(peer: SocketAddr, ours: SocketAddr) -> Result<u32, PeerError> {
    Err(PeerError::Unreadable(
        "the socket table",
        format!("not available on this system ({peer} -> {ours})"),
    ))
}

/// The uid of the row for a socket whose local end is `local` and remote
/// end is `remote`, in the text of `/proc/net/tcp{,6}`.
pub fn find(table: &str, local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    let (local, remote) = (normal(local), normal(remote));
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid ...
        let (l, r, uid) = (cols.get(1)?, cols.get(2)?, cols.get(7)?);
        (address(l)? == local && address(r)? == remote)
            .then(|| uid.parse().ok())
            .flatten()
    })
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn normal(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

/// `0100007F:1F90` or 32 hex digits `:PORT`. The kernel prints each 32-bit
/// word of the address in host byte order, so the bytes come back with
/// `to_ne_bytes`.
fn address(col: &str) -> Option<SocketAddr> {
    let (ip, port) = col.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::to_ne_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(ip.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(normal(SocketAddr::new(ip, port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex4(a: Ipv4Addr) -> String {
        format!("{:08X}", u32::from_ne_bytes(a.octets()))
    }

    fn hex6(a: Ipv6Addr) -> String {
        a.octets()
            .chunks(4)
            .map(|c| format!("{:08X}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
            .collect()
    }

    const HEAD: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    fn row(local: &str, lport: u16, remote: &str, rport: u16, uid: u32) -> String {
        format!(
            "   0: {local}:{lport:04X} {remote}:{rport:04X} 01 00000000:00000000 00:00000000 00000000 {uid:>5}        0 4242 1 0000000000000000 20 4 30 10 -1\n"
        )
    }

    #[test]
    fn finds_the_client_row_not_the_server_row() {
        let lo = Ipv4Addr::LOCALHOST;
        let client: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:8765".parse().unwrap();
        let table = format!(
            "{HEAD}{}{}{}",
            row(&hex4(lo), 8765, "00000000", 0, 0), // the listener
            row(&hex4(lo), 8765, &hex4(lo), 50000, 1000), // our end
            row(&hex4(lo), 50000, &hex4(lo), 8765, 65534)  // the client
        );
        assert_eq!(find(&table, client, server), Some(65534));
        assert_eq!(find(&table, server, client), Some(1000));
        let other: SocketAddr = "127.0.0.1:50001".parse().unwrap();
        assert_eq!(find(&table, other, server), None);
    }

    #[test]
    fn a_dual_stack_client_is_found_in_tcp6() {
        let client: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:8765".parse().unwrap();
        let mapped = Ipv4Addr::LOCALHOST.to_ipv6_mapped();
        let table = format!(
            "{HEAD}{}",
            row(&hex6(mapped), 40000, &hex6(mapped), 8765, 7)
        );
        assert_eq!(find(&table, client, server), Some(7));
    }

    #[test]
    fn garbage_finds_nothing() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        for t in [
            "",
            HEAD,
            "x\n 0: zz:zz yy:yy 01",
            "h\n 0: 0100007F:0001 0100007F:0001",
        ] {
            assert_eq!(find(t, a, a), None, "{t:?}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_real_connection_is_ours() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_s, peer) = l.accept().unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        assert_eq!(
            owner(peer, l.local_addr().unwrap()).unwrap(),
            nix::unistd::geteuid().as_raw()
        );
    }
}
