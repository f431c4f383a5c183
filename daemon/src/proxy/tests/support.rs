//! The test rig for the end-to-end tests of the proxy over real sockets: a recording HTTPS
//! upstream (its own rcgen CA, trusted through `Settings::extra_roots`),
//! `curl` as the child (configured only by [`RunProxy::env`]), and a hyper
//! client through the proxy for HTTP/2.

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioExecutor;
use zeroize::Zeroizing;

pub(super) use crate::proxy::testing::*;
use crate::proxy::*;

pub(super) const VALUE: &[u8] = b"s3cr3t-VALUE/+";

/// Records audit events; refuses them all when `fail`.
#[derive(Default)]
pub(super) struct Recorder {
    pub(super) fail: bool,
    pub(super) events: Mutex<Vec<[String; 4]>>,
}

impl Auditor for Recorder {
    fn substituted(&self, ev: &Event<'_>) -> Result<(), String> {
        if self.fail {
            return Err("audit log unavailable".into());
        }
        self.events.lock().unwrap().push([
            ev.key.into(),
            ev.host.into(),
            ev.method.into(),
            ev.path.into(),
        ]);
        Ok(())
    }
}

pub(super) struct Fixture {
    pub(super) proxy: RunProxy,
    pub(super) ph: String,
    pub(super) auditor: Arc<Recorder>,
    pub(super) ca: Arc<LocalCa>,
    pub(super) _dir: tempfile::TempDir,
}

/// A proxy with one substitution ("github/token", for `localhost`), the
/// test CA as an extra root, and a local CA that went through PEM (as one
/// loaded from the vault does).
pub(super) async fn fixture(test_ca: &TestCa, strict: bool, fail_audit: bool) -> Fixture {
    fixture_with(test_ca, strict, fail_audit, Vec::new()).await
}

/// [`fixture`] with `extra` substitutions after the first.
pub(super) async fn fixture_with(
    test_ca: &TestCa,
    strict: bool,
    fail_audit: bool,
    extra: Vec<Substitution>,
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let generated = LocalCa::generate("test").unwrap();
    let ca = Arc::new(LocalCa::from_pem(&generated.cert_pem(), &generated.key_pem()).unwrap());
    let ph = placeholder();
    let settings = Settings {
        strict,
        extra_roots: vec![test_ca.write(dir.path())],
    };
    let auditor = Arc::new(Recorder {
        fail: fail_audit,
        ..Recorder::default()
    });
    let mut subs = vec![Substitution {
        key: "github/token".into(),
        placeholder: ph.clone(),
        value: Zeroizing::new(VALUE.to_vec()),
        hosts: vec![HostPattern::parse("localhost").unwrap()],
    }];
    subs.extend(extra);
    let proxy = RunProxy::start(ca.clone(), &settings, subs, auditor.clone(), dir.path())
        .await
        .unwrap();
    Fixture {
        proxy,
        ph,
        auditor,
        ca,
        _dir: dir,
    }
}

/// What curl reports.
#[derive(Debug)]
pub(super) struct Curl {
    pub(super) body: String,
    pub(super) code: String,
    pub(super) connect: String,
    pub(super) version: String,
}

/// Runs curl with only `env` (and PATH) as its environment.
pub(super) async fn curl(env: &[(String, String)], args: &[&str]) -> Curl {
    let out = tokio::process::Command::new("curl")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args([
            "-sS",
            "--max-time",
            "20",
            "-w",
            "\n@@%{http_code} %{http_connect} %{http_version}",
        ])
        .args(args)
        .output()
        .await
        .expect("curl runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, w) = stdout.rsplit_once("\n@@").expect("curl -w output");
    let mut w = w.split(' ').map(str::to_string);
    Curl {
        body: body.to_string(),
        code: w.next().unwrap_or_default(),
        connect: w.next().unwrap_or_default(),
        version: w.next().unwrap_or_default(),
    }
}

pub(super) fn with_credential(env: &[(String, String)], proxy_url: &str) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| {
            if k.to_ascii_lowercase().ends_with("_proxy") && !k.eq_ignore_ascii_case("no_proxy") {
                (k.clone(), proxy_url.to_string())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

/// A hyper client that CONNECTs through `proxy` and trusts its bundle.
pub(super) fn proxied_client(
    proxy: &RunProxy,
) -> hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<
        hyper_util::client::legacy::connect::proxy::Tunnel<
            hyper_util::client::legacy::connect::HttpConnector,
        >,
    >,
    Full<Bytes>,
> {
    let url = &proxy.env()[0].1;
    let userinfo = url.trim_start_matches("http://").split('@').next().unwrap();
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(userinfo)
    );
    let tunnel = hyper_util::client::legacy::connect::proxy::Tunnel::new(
        format!("http://127.0.0.1:{}", proxy.port())
            .parse()
            .unwrap(),
        hyper_util::client::legacy::connect::HttpConnector::new(),
    )
    .with_auth(auth.parse().unwrap());
    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(proxy.bundle_path()).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_all_versions()
        .wrap_connector(tunnel);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(https)
}
