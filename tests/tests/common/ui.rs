//! Talking to the web UI in tests: `secretctl ui --no-open --json` for a
//! login link, and a raw HTTP/1.1 client over a TCP socket, so a test can
//! send any Host, Origin or cookie it likes (a library client would
//! "correct" them).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::{Env, assert_ok, json};

/// A login link from `secretctl ui`.
pub struct Link {
    /// `127.0.0.1:PORT`
    pub host: String,
    pub port: u16,
    pub token: String,
    pub url: String,
}

impl Link {
    pub fn origin(&self) -> String {
        format!("http://{}", self.host)
    }

    pub fn cookie_name(&self) -> String {
        format!("secretctl_ui_{}", self.port)
    }
}

/// `secretctl ui --no-open --json`, which must succeed.
pub fn open(env: &Env) -> Link {
    let out = env.cli(&["ui", "--no-open", "--json"]);
    assert_ok(&out, "ui");
    let v = json(&out);
    let url = v["url"].as_str().expect("url").to_string();
    let (base, token) = url.split_once("/login#").expect("a login link");
    let host = base.strip_prefix("http://").expect("http").to_string();
    let port = host.rsplit(':').next().unwrap().parse().unwrap();
    Link {
        host,
        port,
        token: token.to_string(),
        url,
    }
}

/// An answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection to `link`'s port; `headers` come
/// first (so they can name another Host), then `Connection: close`.
pub fn request(
    link: &Link,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", link.port)).expect("connect to the UI");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {}\r\n", link.host));
    }
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("Connection: close\r\n\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    parse(&raw)
}

fn parse(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = unchunk(&body);
    }
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn unchunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[end + 2..end + 2 + size]);
        b = &b[end + 2 + size + 2..];
    }
}

/// A signed-in browser: the cookie header and the CSRF token.
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

/// Trades the link's token for a session, as the login page's script does.
pub fn login(link: &Link) -> Browser {
    let origin = link.origin();
    let r = request(
        link,
        "POST",
        "/login",
        &[("Origin", &origin)],
        &format!("token={}", link.token),
    );
    assert_eq!(r.status, 204, "login: {r:?}");
    let set = r.header("set-cookie").expect("a cookie");
    let cookie = set.split(';').next().unwrap().to_string();
    let page = request(link, "GET", "/", &[("Cookie", &cookie)], "");
    assert_eq!(page.status, 200, "{page:?}");
    let csrf = page
        .body
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the page carries the CSRF token")
        .to_string();
    Browser { cookie, csrf }
}

impl Browser {
    pub fn get(&self, link: &Link, path: &str) -> Resp {
        request(link, "GET", path, &[("Cookie", &self.cookie)], "")
    }

    /// A POST as the UI's own pages send it (Origin, cookie, CSRF field).
    pub fn post(&self, link: &Link, path: &str, form: &str) -> Resp {
        let origin = link.origin();
        let body = if form.is_empty() {
            format!("csrf={}", self.csrf)
        } else {
            format!("csrf={}&{form}", self.csrf)
        };
        request(
            link,
            "POST",
            path,
            &[("Cookie", &self.cookie), ("Origin", &origin)],
            &body,
        )
    }
}
