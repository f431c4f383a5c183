//! Credential proxy latency and throughput against a local HTTPS upstream:
//! `cargo bench -p secretctld --bench proxy`. Results: docs/PERFORMANCE.md.
//!
//! (a) p50/p99 of one request over a kept-alive TLS connection, direct vs
//! through a `RunProxy` with one substitution per request (header and
//! query); (b) requests/s through one proxy with 8 concurrent kept-alive
//! clients. Both legs negotiate ALPN (HTTP/2 here).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use secretctld::audit;
use secretctld::proxy::{
    Auditor, Event, HostPattern, LocalCa, RunProxy, Settings, Substitution, placeholder,
};
use zeroize::Zeroizing;

const LATENCY_REQUESTS: usize = 2000;
const CLIENTS: usize = 8;
const THROUGHPUT_FOR: Duration = Duration::from_secs(5);

struct NoAudit;
impl Auditor for NoAudit {
    fn substituted(&self, _: &Event<'_>) -> Result<(), String> {
        Ok(())
    }
}

/// The daemon's own audit log (sealed, group-committed, fsynced): each
/// substituted request waits for its record, as in a run.
struct Durable {
    audit: audit::Audit,
    rt: tokio::runtime::Handle,
}
impl Auditor for Durable {
    fn substituted(&self, ev: &Event<'_>) -> Result<(), String> {
        let mut r = audit::event("proxy_substitution", "mcp", audit::daemon_peer());
        r.keys = vec![ev.key.to_string()];
        self.rt
            .block_on(self.audit.record(r))
            .map_err(|e| e.to_string())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// An HTTPS upstream (h2 and http/1.1) answering "ok"; returns its port and
/// CA certificate.
async fn upstream() -> (u16, CertificateDer<'static>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca = params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(|_req| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (port, ca.der().clone())
}

fn tls(roots: &[CertificateDer<'static>]) -> rustls::ClientConfig {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth()
}

type Direct = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;
type Proxied = Client<HttpsConnector<Tunnel<HttpConnector>>, Full<Bytes>>;

fn direct_client(ca: &CertificateDer<'static>) -> Direct {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls(std::slice::from_ref(ca)))
        .https_only()
        .enable_all_versions()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).build(https)
}

fn proxied_client(proxy: &RunProxy, local_ca: &LocalCa) -> Proxied {
    let url = &proxy.env()[0].1;
    let userinfo = url.trim_start_matches("http://").split('@').next().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(userinfo);
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let tunnel = Tunnel::new(
        format!("http://127.0.0.1:{}", proxy.port())
            .parse()
            .unwrap(),
        http,
    )
    .with_auth(format!("Basic {auth}").parse().unwrap());
    let ca = pem_der(&local_ca.cert_pem());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls(&[ca]))
        .https_only()
        .enable_all_versions()
        .wrap_connector(tunnel);
    Client::builder(TokioExecutor::new()).build(https)
}

fn pem_der(pem: &str) -> CertificateDer<'static> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

fn request(port: u16, ph: &str) -> Request<Full<Bytes>> {
    Request::get(format!("https://localhost:{port}/v1/items?token={ph}"))
        .header("authorization", format!("Bearer {ph}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn one<C>(client: &Client<C, Full<Bytes>>, port: u16, ph: &str) -> Duration
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let t = Instant::now();
    let resp = client.request(request(port, ph)).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap();
    t.elapsed()
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (port, ca_der) = upstream().await;
        let dir = tempfile::tempdir().unwrap();
        let roots = dir.path().join("upstream-ca.pem");
        let ca_pem = pem::encode(&pem::Pem::new("CERTIFICATE", ca_der.to_vec()));
        std::fs::write(&roots, ca_pem).unwrap();
        let local_ca = Arc::new(LocalCa::generate("bench").unwrap());
        let ph = placeholder();
        let subs = || vec![Substitution {
            key: "bench/token".into(),
            placeholder: ph.clone(),
            value: Zeroizing::new(b"the-real-token-value-0123456789".to_vec()),
            hosts: vec![HostPattern::parse("localhost").unwrap()],
        }];
        let settings = Settings {
            strict: false,
            extra_roots: vec![roots],
        };
        // The proxy wants its bundle directory ours and 0700, as the daemon makes it.
        let bundles = dir.path().join("bundles");
        std::fs::create_dir(&bundles).unwrap();
        std::fs::set_permissions(&bundles, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let log = audit::Audit::start(&dir.path().join("audit"), 8 << 20).unwrap();
        log.unlocked(&secretctld::keyring::DataKey::generate().unwrap());
        let durable = Arc::new(Durable {
            audit: log,
            rt: tokio::runtime::Handle::current(),
        });
        let auditors: [(&str, Arc<dyn Auditor>); 2] =
            [("a no-op auditor", Arc::new(NoAudit)), ("the durable audit log", durable)];
        for (what, auditor) in auditors {
        println!("with {what}:");
        let proxy = RunProxy::start(local_ca.clone(), &settings, subs(), auditor, &bundles)
            .await
            .unwrap();

        let direct = direct_client(&ca_der);
        let proxied = proxied_client(&proxy, &local_ca);
        for _ in 0..200 {
            one(&direct, port, &ph).await;
            one(&proxied, port, &ph).await;
        }
        let mut d = Vec::with_capacity(LATENCY_REQUESTS);
        let mut p = Vec::with_capacity(LATENCY_REQUESTS);
        for _ in 0..LATENCY_REQUESTS {
            d.push(one(&direct, port, &ph).await);
            p.push(one(&proxied, port, &ph).await);
        }
        let (d50, d99) = percentiles(d);
        let (p50, p99) = percentiles(p);
        println!("(a) {LATENCY_REQUESTS} sequential requests, kept-alive, one substitution each:");
        println!("    direct        p50 {d50:>10.1?}  p99 {d99:>10.1?}");
        println!("    through proxy p50 {p50:>10.1?}  p99 {p99:>10.1?}");
        println!("    added p50 {:.1?}", p50.saturating_sub(d50));

        let before = proxy.substitutions();
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let client = proxied_client(&proxy, &local_ca);
            let ph = ph.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while start.elapsed() < THROUGHPUT_FOR {
                    one(&client, port, &ph).await;
                    n += 1;
                }
                n
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        let wall = start.elapsed();
        println!(
            "(b) {CLIENTS} concurrent kept-alive clients for {:.1?}: {total} requests, {:.0} req/s through one proxy",
            wall,
            total as f64 / wall.as_secs_f64()
        );
        assert_eq!(proxy.substitutions() - before, total);
        proxy.stop().await;
        }
    });
}
