//! End-to-end tests of the proxy over real sockets: a recording HTTPS
//! upstream (its own rcgen CA, trusted through `Settings::extra_roots`),
//! `curl` as the child (configured only by [`RunProxy::env`]), and a hyper
//! client through the proxy for HTTP/2.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{Request, Version};
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn substitutes_header_and_query_for_the_named_host_and_audits() {
    let test_ca = TestCa::new("upstream CA");
    let up = Upstream::start(&test_ca, &[b"h2", b"http/1.1"]).await;
    let f = fixture(&test_ca, false, false).await;
    let url = format!("https://localhost:{}/api/v1?token={}&x=1", up.port, f.ph);
    let auth = format!("Authorization: Bearer {}", f.ph);
    let r = curl(&f.proxy.env(), &["-H", &auth, &url]).await;
    assert_eq!(r.code, "200", "{r:?}");
    assert_eq!(r.connect, "200");
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("authorization"),
        Some("Bearer s3cr3t-VALUE/+")
    );
    assert_eq!(seen[0].target, "/api/v1?token=s3cr3t-VALUE%2F%2B&x=1");
    assert!(seen[0].header("proxy-authorization").is_none());
    let events = f.auditor.events.lock().unwrap().clone();
    assert_eq!(
        events,
        vec![["github/token", "localhost", "GET", "/api/v1"].map(String::from)]
    );
    assert_eq!(f.proxy.substitutions(), 1);
    // The response came back through the proxy untouched.
    assert!(r.body.contains("/api/v1?token=s3cr3t"), "{r:?}");
    assert_eq!(f.proxy.stop().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_substitutions_naming_the_host_are_applied_each_audited() {
    let test_ca = TestCa::new("upstream CA");
    let up = Upstream::start(&test_ca, &[b"h2", b"http/1.1"]).await;
    let sub = |key: &str, value: &[u8], hosts: &[&str]| Substitution {
        key: key.into(),
        placeholder: placeholder(),
        value: Zeroizing::new(value.to_vec()),
        hosts: hosts
            .iter()
            .map(|h| HostPattern::parse(h).unwrap())
            .collect(),
    };
    let stripe = sub(
        "stripe#secret",
        b"sk_live_x",
        &["api.stripe.com", "LOCALHOST"],
    );
    let other = sub(
        "other/key",
        b"never-here",
        &["api.example.com", "*.example.org"],
    );
    let (ph_stripe, ph_other) = (stripe.placeholder.clone(), other.placeholder.clone());
    let f = fixture_with(&test_ca, false, false, vec![stripe, other]).await;
    let url = format!(
        "https://localhost:{}/multi?s={ph_stripe}&o={ph_other}",
        up.port
    );
    let headers = [
        format!("Authorization: Bearer {}", f.ph),
        format!("X-Stripe: {ph_stripe}"),
        format!("X-Other: {ph_other}"),
    ];
    let mut args: Vec<&str> = headers.iter().flat_map(|h| ["-H", h.as_str()]).collect();
    args.push(&url);
    let r = curl(&f.proxy.env(), &args).await;
    assert_eq!(r.code, "200", "{r:?}");
    let seen = &up.seen()[0];
    assert_eq!(seen.header("authorization"), Some("Bearer s3cr3t-VALUE/+"));
    assert_eq!(seen.header("x-stripe"), Some("sk_live_x"));
    assert_eq!(seen.header("x-other"), Some(ph_other.as_str()));
    assert_eq!(seen.target, format!("/multi?s=sk_live_x&o={ph_other}"));
    let mut events = f.auditor.events.lock().unwrap().clone();
    events.sort();
    assert_eq!(
        events,
        vec![
            ["github/token", "localhost", "GET", "/multi"].map(String::from),
            ["stripe#secret", "localhost", "GET", "/multi"].map(String::from),
        ]
    );
    assert_eq!(f.proxy.stop().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_hosts_get_the_placeholder_tunnelled_or_refused_when_strict() {
    let test_ca = TestCa::new("upstream CA");
    let other = Upstream::start(&test_ca, &[b"h2", b"http/1.1"]).await;
    let url = format!("https://127.0.0.1:{}/x?token=PH", other.port);
    for strict in [false, true] {
        let f = fixture(&test_ca, strict, false).await;
        let url = url.replace("PH", &f.ph);
        let auth = format!("Authorization: Bearer {}", f.ph);
        let r = curl(&f.proxy.env(), &["-H", &auth, &url]).await;
        if strict {
            assert_eq!(r.connect, "403", "{r:?}");
            assert_eq!(other.seen().len(), 1, "strict let a request through");
        } else {
            assert_eq!(r.code, "200", "{r:?}");
            let seen = other.seen();
            assert_eq!(seen.len(), 1);
            assert_eq!(seen[0].header("authorization"), Some(auth[15..].trim()));
            assert_eq!(seen[0].target, format!("/x?token={}", f.ph));
        }
        assert_eq!(f.proxy.substitutions(), 0);
        assert!(f.auditor.events.lock().unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_a_named_host_is_refused() {
    let test_ca = TestCa::new("upstream CA");
    let up = Upstream::start(&test_ca, &[b"http/1.1"]).await;
    let f = fixture(&test_ca, false, false).await;
    let url = format!("http://localhost:{}/?token={}", up.port, f.ph);
    let r = curl(&f.proxy.env(), &[&url]).await;
    assert_eq!(r.code, "403", "{r:?}");
    assert!(r.body.contains("use https://"), "{r:?}");
    assert!(up.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_other_hosts_is_forwarded_or_refused_when_strict() {
    let test_ca = TestCa::new("upstream CA");
    let up = Upstream::start_plain().await;
    for strict in [false, true] {
        let f = fixture(&test_ca, strict, false).await;
        let url = format!("http://127.0.0.1:{}/plain?token={}", up.port, f.ph);
        let r = curl(
            &f.proxy.env(),
            &[
                "-H",
                "Connection: keep-alive, x-hop",
                "-H",
                "x-hop: 1",
                &url,
            ],
        )
        .await;
        if strict {
            assert_eq!(r.code, "403", "{r:?}");
            assert!(r.body.contains("proxy.strict"), "{r:?}");
            assert_eq!(up.seen().len(), 1);
        } else {
            assert_eq!(r.code, "200", "{r:?}");
            let seen = up.seen();
            assert_eq!(seen[0].target, format!("/plain?token={}", f.ph));
            assert!(seen[0].header("proxy-authorization").is_none());
            assert!(seen[0].header("x-hop").is_none(), "{:?}", seen[0].headers);
        }
        assert_eq!(f.proxy.substitutions(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_proxy_credentials_get_407() {
    let test_ca = TestCa::new("upstream CA");
    let up = Upstream::start(&test_ca, &[b"http/1.1"]).await;
    let f = fixture(&test_ca, false, false).await;
    let port = f.proxy.port();
    let url = format!("https://localhost:{}/?token={}", up.port, f.ph);
    let wrong = format!("http://secretctl:{}@127.0.0.1:{port}", "x".repeat(32));
    let none = format!("http://127.0.0.1:{port}");
    for proxy in [wrong, none] {
        let env = with_credential(&f.proxy.env(), &proxy);
        let r = curl(&env, &[&url]).await;
        assert_eq!(r.connect, "407", "{r:?}");
        let r = curl(&env, &[&format!("http://127.0.0.1:{}/", up.port)]).await;
        assert_eq!(r.code, "407", "{r:?}");
    }
    assert!(up.seen().is_empty());
    assert_eq!(f.proxy.substitutions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_upstream_gets_502_and_never_the_value() {
    let trusted = TestCa::new("upstream CA");
    let untrusted = TestCa::new("someone else's CA");
    let up = Upstream::start(&untrusted, &[b"h2", b"http/1.1"]).await;
    let f = fixture(&trusted, false, false).await;
    let url = format!("https://localhost:{}/?token={}", up.port, f.ph);
    let r = curl(&f.proxy.env(), &[&url]).await;
    assert_eq!(r.code, "502", "{r:?}");
    assert!(
        r.body.contains("TLS") && r.body.contains("nothing was sent"),
        "{r:?}"
    );
    assert!(up.seen().is_empty());
    assert_eq!(f.proxy.substitutions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_auditor_refuses_the_request() {
    let test_ca = TestCa::new("upstream CA");
    let up = Upstream::start(&test_ca, &[b"h2", b"http/1.1"]).await;
    let f = fixture(&test_ca, false, true).await;
    let url = format!("https://localhost:{}/?token={}", up.port, f.ph);
    let r = curl(&f.proxy.env(), &[&url]).await;
    assert_eq!(r.code, "403", "{r:?}");
    assert!(r.body.contains("audit log unavailable"), "{r:?}");
    assert!(up.seen().is_empty());
    assert_eq!(f.proxy.substitutions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_and_http1_upstreams() {
    let test_ca = TestCa::new("upstream CA");
    let h2 = Upstream::start(&test_ca, &[b"h2", b"http/1.1"]).await;
    let h1 = Upstream::start(&test_ca, &[b"http/1.1"]).await;
    let f = fixture(&test_ca, false, false).await;
    let auth = format!("Authorization: Bearer {}", f.ph);
    let r = curl(
        &f.proxy.env(),
        &[
            "--http2",
            "-H",
            &auth,
            &format!("https://localhost:{}/", h2.port),
        ],
    )
    .await;
    assert_eq!((r.code.as_str(), r.version.as_str()), ("200", "2"), "{r:?}");
    assert_eq!(h2.seen()[0].version, Version::HTTP_2);
    assert_eq!(
        h2.seen()[0].header("authorization"),
        Some("Bearer s3cr3t-VALUE/+")
    );
    let r = curl(
        &f.proxy.env(),
        &[
            "--http1.1",
            "-H",
            &auth,
            &format!("https://localhost:{}/", h1.port),
        ],
    )
    .await;
    assert_eq!(
        (r.code.as_str(), r.version.as_str()),
        ("200", "1.1"),
        "{r:?}"
    );
    assert_eq!(h1.seen()[0].version, Version::HTTP_11);
    assert_eq!(
        h1.seen()[0].header("authorization"),
        Some("Bearer s3cr3t-VALUE/+")
    );

    // A hyper client speaking HTTP/2 to the proxy's leaf, several requests
    // on one kept-alive tunnel.
    let client = proxied_client(&f.proxy);
    for i in 0..3 {
        let req = Request::get(format!("https://localhost:{}/h2/{i}?k={}", h2.port, f.ph))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.version(), Version::HTTP_2);
        assert_eq!(resp.status(), 200);
    }
    let seen = h2.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[3].target, "/h2/2?k=s3cr3t-VALUE%2F%2B");
    assert_eq!(f.proxy.substitutions(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_closes_tunnels_and_removes_the_bundle() {
    let test_ca = TestCa::new("upstream CA");
    let up = Upstream::start(&test_ca, &[b"http/1.1"]).await;
    let f = fixture(&test_ca, false, false).await;
    let port = f.proxy.port();
    let bundle = f.proxy.bundle_path().to_path_buf();
    assert!(bundle.exists());
    let userinfo = f.proxy.env()[0]
        .1
        .trim_start_matches("http://")
        .split('@')
        .next()
        .unwrap()
        .to_string();
    let auth = base64::engine::general_purpose::STANDARD.encode(userinfo);
    // One plain tunnel (127.0.0.1 is not named) and one intercepted CONNECT.
    let mut open = Vec::new();
    for host in ["127.0.0.1", "localhost"] {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let connect = format!(
            "CONNECT {host}:{p} HTTP/1.1\r\nHost: {host}:{p}\r\nProxy-Authorization: Basic {auth}\r\n\r\n",
            p = up.port
        );
        tcp.write_all(connect.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(tcp.read(&mut byte).await.unwrap(), 1);
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        open.push(tcp);
    }
    f.proxy.stop().await;
    for mut tcp in open {
        let mut buf = [0u8; 16];
        // The guard only bounds a failing test; EOF or a reset is expected.
        let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .expect("connection closed by stop");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    assert!(!bundle.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_and_path_are_not_substituted_and_misdirected_requests_get_421() {
    let test_ca = TestCa::new("upstream CA");
    let up = Upstream::start(&test_ca, &[b"h2", b"http/1.1"]).await;
    let f = fixture(&test_ca, false, false).await;
    let url = format!("https://localhost:{}/p/{}/x", up.port, f.ph);
    let data = format!("body={}", f.ph);
    let r = curl(&f.proxy.env(), &["--data", &data, &url]).await;
    assert_eq!(r.code, "200", "{r:?}");
    let seen = up.seen();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].target, format!("/p/{}/x", f.ph));
    assert_eq!(seen[0].body, data);
    assert_eq!(f.proxy.substitutions(), 0);
    assert!(f.auditor.events.lock().unwrap().is_empty());

    let auth = format!("Authorization: Bearer {}", f.ph);
    for host in ["Host: example.com", "Host: localhost:1"] {
        let r = curl(
            &f.proxy.env(),
            &[
                "--http1.1",
                "-H",
                host,
                "-H",
                &auth,
                &format!("https://localhost:{}/", up.port),
            ],
        )
        .await;
        assert_eq!(r.code, "421", "{host}: {r:?}");
    }
    assert_eq!(up.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_is_private_and_holds_the_local_ca_and_env_is_complete() {
    let test_ca = TestCa::new("upstream CA");
    let f = fixture(&test_ca, false, false).await;
    let bundle = f.proxy.bundle_path().to_path_buf();
    let meta = std::fs::symlink_metadata(&bundle).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&bundle).unwrap();
    assert!(text.contains(f.ca.cert_pem().trim()));
    assert!(text.contains(test_ca.pem.trim()));
    let env = f.proxy.env();
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let url = get("HTTPS_PROXY").unwrap();
    assert!(
        url.starts_with("http://secretctl:")
            && url.ends_with(&format!("@127.0.0.1:{}", f.proxy.port()))
    );
    for k in ["HTTP_PROXY", "https_proxy", "http_proxy"] {
        assert_eq!(get(k).as_deref(), Some(url.as_str()));
    }
    for k in ["NO_PROXY", "no_proxy"] {
        assert_eq!(get(k).as_deref(), Some(""));
    }
    for k in [
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "GIT_SSL_CAINFO",
    ] {
        assert_eq!(get(k).as_deref(), Some(bundle.to_str().unwrap()));
    }
    f.proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_extra_root_file_is_a_start_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("corp-root.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let settings = Settings {
        strict: false,
        extra_roots: vec![bad.clone()],
    };
    let ca = Arc::new(LocalCa::generate("t").unwrap());
    let err = RunProxy::start(
        ca,
        &settings,
        Vec::new(),
        Arc::new(Recorder::default()),
        dir.path(),
    )
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("corp-root.pem"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_bundle_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let ca = Arc::new(LocalCa::generate("t").unwrap());
    let err = RunProxy::start(
        ca,
        &Settings::default(),
        Vec::new(),
        Arc::new(Recorder::default()),
        dir.path(),
    )
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("0700"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn local_ca_round_trips_through_pem_and_refuses_a_foreign_key() {
    let ca = LocalCa::generate("laptop").unwrap();
    assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    let again = LocalCa::from_pem(&ca.cert_pem(), &ca.key_pem()).unwrap();
    assert_eq!(again.fingerprint(), ca.fingerprint());
    assert_eq!(ca.fingerprint().len(), 64);
    let other = LocalCa::generate("other").unwrap();
    assert!(LocalCa::from_pem(&ca.cert_pem(), &other.key_pem()).is_err());
    assert!(LocalCa::from_pem("junk", &ca.key_pem()).is_err());
    let (_, x509) = x509_parser::parse_x509_certificate(ca.cert_der()).unwrap();
    assert!(
        x509.subject()
            .to_string()
            .contains("secretctl local CA (laptop)")
    );
    let bc = x509.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca && bc.path_len_constraint == Some(0));
    // Leaves are cached per host.
    let a = ca.leaf("api.example.com").unwrap();
    let b = ca.leaf("API.example.com").unwrap();
    assert!(Arc::ptr_eq(&a, &b));
}

#[test]
fn placeholders_are_fresh_and_alphanumeric() {
    let a = placeholder();
    let b = placeholder();
    assert_ne!(a, b);
    let tail = a.strip_prefix(PLACEHOLDER_PREFIX).unwrap();
    assert_eq!(tail.len(), 24);
    assert!(tail.bytes().all(|c| c.is_ascii_alphanumeric()));
}
