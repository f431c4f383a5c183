//! Web UI page times against the real `secretctld` (release build) with
//! 10,000 secrets and 100,000 audit records:
//! `cargo build --release --workspace && cargo bench -p secretctl-tests --bench ui`.
//! Each sample is one whole request on a fresh TCP connection (the peer
//! lookup in /proc/net/tcp at accept included), measured by the client,
//! so it bounds the server time from above. Results go to
//! docs/PERFORMANCE.md by hand.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Env, ui};
use secretctl_proto::client::Client;
use secretctl_proto::v1::{FieldInput, GetRequest, SetRequest, UiRequest};

const SECRETS: usize = 10_000;
const RECORDS: usize = 100_000;
const SAMPLES: usize = 25;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn main() {
    let mut env = Env::new();
    env.log_level = "warn";
    env.start();
    env.init();
    let pid = env.daemon_pid().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let socket = env.socket.clone();

    // 10,000 secrets (tags, a few expiring), from 16 clients.
    let t = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..16 {
            let socket = socket.clone();
            tasks.push(tokio::spawn(async move {
                let c = Client::new(&socket);
                for i in (w..SECRETS).step_by(16) {
                    let req = SetRequest {
                        key: format!("team{}/svc{}/key-{i}", i % 20, i % 97),
                        fields: vec![FieldInput::new(
                            "value",
                            format!("value-{i}-9f8e7d6c5b4a").into_bytes(),
                        )],
                        tags: Some(secretctl_proto::v1::TagList {
                            tags: vec![format!("t{}", i % 7)],
                        }),
                        expires_at: (i % 50 == 0).then(|| now() + 86400 * (i as i64 % 30)),
                        ..Default::default()
                    };
                    c.vault().set(req).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    println!("{SECRETS} secrets stored in {:.1?}", t.elapsed());

    // Audit records up to 100,000: gets from 32 clients (each one record).
    let t = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        let per = (RECORDS - SECRETS) / 32 + 1;
        for w in 0..32 {
            let socket = socket.clone();
            tasks.push(tokio::spawn(async move {
                let c = Client::new(&socket);
                for i in 0..per {
                    let key = format!(
                        "team{}/svc{}/key-{}",
                        (w * per + i) % SECRETS % 20,
                        (w * per + i) % SECRETS % 97,
                        (w * per + i) % SECRETS
                    );
                    c.vault()
                        .get(GetRequest {
                            key,
                            field: String::new(),
                        })
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    println!("~{RECORDS} audit records written in {:.1?}", t.elapsed());
    println!("daemon RSS before the UI is opened: {} KiB", rss_kib(pid));

    let c = Client::new(&socket);
    let r = rt
        .block_on(c.daemon().ui(UiRequest {}))
        .unwrap()
        .into_inner();
    let url = format!("{}/login#{}", r.base_url, r.login_token);
    let host = r.base_url.trim_start_matches("http://").to_string();
    let link = ui::Link {
        port: host.rsplit(':').next().unwrap().parse().unwrap(),
        host,
        token: r.login_token.clone(),
        url,
    };
    let b = ui::login(&link);
    println!("daemon RSS with the UI started: {} KiB", rss_kib(pid));

    let t = Instant::now();
    let first = b.get(&link, "/audit");
    assert_eq!(first.status, 200);
    println!(
        "first audit page (the one full verifying walk of {RECORDS} records): {:.1?}",
        t.elapsed()
    );
    println!("daemon RSS after the audit snapshot: {} KiB", rss_kib(pid));

    let pages = [
        "/",
        "/secrets",
        "/secrets?q=svc42&page=0",
        "/secrets?tag=t3&page=3",
        "/secrets/view?key=team1/svc1/key-1",
        "/secrets/edit?key=team1/svc1/key-1",
        "/secrets/new?template=database",
        "/audit",
        "/audit?before=50000",
        "/audit?action=get&source=cli&success=yes",
        "/audit?key=team0/svc0/key-0",
        "/agents",
        "/policy?cmd=ls+-l",
        "/security",
    ];
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>9}",
        "page", "p50", "p99", "max", "bytes"
    );
    for p in pages {
        let mut lat = Vec::new();
        let mut bytes = 0;
        for _ in 0..SAMPLES {
            let t = Instant::now();
            let r = b.get(&link, p);
            lat.push(t.elapsed());
            assert_eq!(r.status, 200, "{p}: {}", r.body);
            bytes = r.body.len();
        }
        lat.sort();
        println!(
            "{p:<44} {:>9.1?} {:>9.1?} {:>9.1?} {bytes:>9}",
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            lat.last().unwrap()
        );
    }
    println!("daemon RSS at the end: {} KiB", rss_kib(pid));
    env.stop();
}
