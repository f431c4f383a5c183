//! A raw Unix-socket peer for the integration tests, small enough to copy
//! and run as another uid (`nobody`):
//!
//! - `sc-peer listen SOCKET LOG`: binds SOCKET (mode 0666) and serves one
//!   connection at a time, reading it to EOF and appending
//!   `conn BYTES` to LOG; prints `ready` once listening. Runs until killed.
//! - `sc-peer dial SOCKET`: connects, sends the HTTP/2 client preface and
//!   prints `closed` when the other side hangs up without a byte, `answered
//!   N` when it sends something, or `error: ...` when connecting fails;
//!   gives up after 20 s.
//! - `sc-peer http ADDR HOST`: connects over TCP to ADDR (the web UI),
//!   sends `GET / HTTP/1.1` with that Host and prints `closed` or `answered
//!   N <status line>`, like `dial`.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["listen", socket, log] => listen(socket, log),
        ["dial", socket] => dial(socket),
        ["http", addr, host] => http(addr, host),
        _ => {
            eprintln!("usage: sc-peer listen SOCKET LOG | dial SOCKET | http ADDR HOST");
            std::process::exit(2);
        }
    }
}

fn listen(socket: &str, log: &str) {
    let l = UnixListener::bind(socket).expect("bind");
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    println!("ready");
    std::io::stdout().flush().expect("stdout");
    for conn in l.incoming() {
        let Ok(mut conn) = conn else { continue };
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut total = 0usize;
        let mut buf = [0u8; 4096];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log");
        writeln!(f, "conn {total}").expect("write log");
    }
}

fn dial(socket: &str) {
    let mut s = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => {
            println!("error: {e}");
            return;
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let _ = s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    let mut buf = [0u8; 1024];
    match s.read(&mut buf) {
        Ok(0) => println!("closed"),
        Ok(n) => println!("answered {n}"),
        // A reset counts as hanging up.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => println!("closed"),
        Err(e) => println!("error: {e}"),
    }
}

fn http(addr: &str, host: &str) {
    let mut s = match std::net::TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => {
            println!("error: {e}");
            return;
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let _ = write!(
        s,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    let mut buf = [0u8; 4096];
    match s.read(&mut buf) {
        Ok(0) => println!("closed"),
        Ok(n) => {
            let text = String::from_utf8_lossy(&buf[..n]);
            println!("answered {n} {}", text.lines().next().unwrap_or(""));
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => println!("closed"),
        Err(e) => println!("error: {e}"),
    }
}
