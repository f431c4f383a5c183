//! Daemon benchmarks against the real `secretctld` (release build):
//! `cargo build --release --workspace && cargo bench -p secretctl-tests --bench daemon`.
//! Results go to docs/PERFORMANCE.md by hand.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Env, PASSWORD};
use secretctl_proto::client::Client;
use secretctl_proto::v1::{
    FieldInput, GetRequest, ListRequest, LockRequest, SetRequest, UnlockRequest,
};

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<34} n={:<6} p50={:>9.1?} p99={:>9.1?} max={:>9.1?}",
        samples.len(),
        pct(&samples, 0.5),
        pct(&samples, 0.99),
        samples.last().unwrap()
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn set_req(key: String, value: String) -> SetRequest {
    SetRequest {
        key,
        fields: vec![FieldInput::new("value", value.into_bytes())],
        ..Default::default()
    }
}

async fn status_load(
    socket: std::path::PathBuf,
    clients: usize,
    per_client: usize,
) -> (Vec<Duration>, Duration) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let socket = socket.clone();
        tasks.push(tokio::spawn(async move {
            let c = Client::new(&socket);
            c.status().await.unwrap(); // connect outside the timed loop
            let mut lat = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let t = Instant::now();
                c.status().await.unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (all, start.elapsed())
}

fn main() {
    let mut env = Env::new();
    env.log_level = "warn";
    env.start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Channels spawn their worker on the runtime they are created in.
    let _guard = rt.enter();
    let c = Client::new(&env.socket);
    let pid = env.daemon_pid().unwrap();
    println!("daemon RSS before init: {} KiB", rss_kib(pid));

    // Default KDF (Argon2id m=64 MiB, t=3, p=4).
    let out = env.cli_with_password(&["init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut unlocks = Vec::new();
    for _ in 0..7 {
        rt.block_on(c.daemon().lock(LockRequest {})).unwrap();
        let t = Instant::now();
        rt.block_on(c.daemon().unlock(UnlockRequest {
            password: PASSWORD.into(),
            timeout_secs: 0,
        }))
        .unwrap();
        unlocks.push(t.elapsed());
    }
    report("unlock (default Argon2id)", unlocks);
    println!("daemon RSS idle, unlocked, empty: {} KiB", rss_kib(pid));

    for clients in [1usize, 32] {
        let per = if clients == 1 { 20_000 } else { 1_500 };
        let (lat, wall) = rt.block_on(status_load(env.socket.clone(), clients, per));
        let n = lat.len();
        report(&format!("Status, {clients} client(s)"), lat);
        println!("{:<34} {:.0} calls/s", "", n as f64 / wall.as_secs_f64());
    }

    let mut sets = Vec::new();
    for i in 0..300 {
        let req = set_req(
            format!("bench/set-{i}"),
            format!("value-{i}-0123456789abcdef"),
        );
        let t = Instant::now();
        rt.block_on(c.vault().set(req)).unwrap();
        sets.push(t.elapsed());
    }
    report("set (durable commit)", sets);
    let mut gets = Vec::new();
    for i in 0..3000 {
        let req = GetRequest {
            key: format!("bench/set-{}", i % 300),
            field: String::new(),
        };
        let t = Instant::now();
        rt.block_on(c.vault().get(req)).unwrap();
        gets.push(t.elapsed());
    }
    report("get", gets);

    // `secretctl run` overhead over a bare /bin/true, and cat throughput.
    let time_cmd = |mut cmd: std::process::Command| {
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        let t = Instant::now();
        let st = cmd.status().unwrap();
        assert!(st.success());
        t.elapsed()
    };
    let bare: Vec<_> = (0..200)
        .map(|_| time_cmd(std::process::Command::new("/bin/true")))
        .collect();
    let wrapped: Vec<_> = (0..200)
        .map(|_| time_cmd(env.command(&["run", "-k", "bench/set-1", "--", "/bin/true"])))
        .collect();
    let (mut b, mut w) = (bare.clone(), wrapped.clone());
    b.sort();
    w.sort();
    report("bare /bin/true", bare);
    report("secretctl run -k K -- /bin/true", wrapped);
    println!(
        "{:<34} {:?} added (median)",
        "",
        w[w.len() / 2].saturating_sub(b[b.len() / 2])
    );
    let big = env.dir.path().join("big.txt");
    {
        let line = b"2026-11-28T19:00:00Z INFO request completed path=/api/v1/users status=200 latency_ms=12\n";
        let mut data = Vec::with_capacity(256 << 20);
        while data.len() < 256 << 20 {
            data.extend_from_slice(line);
        }
        std::fs::write(&big, data).unwrap();
    }
    let big_s = big.to_str().unwrap();
    let mut cat_bare = std::process::Command::new("cat");
    cat_bare.arg(big_s);
    let t_bare = time_cmd(cat_bare);
    let t_run = time_cmd(env.command(&["run", "-k", "bench/set-1*", "--", "cat", big_s]));
    let mib = 256.0;
    println!(
        "cat 256 MiB: bare {:.0} MiB/s, through secretctl run {:.0} MiB/s (ratio {:.2})",
        mib / t_bare.as_secs_f64(),
        mib / t_run.as_secs_f64(),
        t_bare.as_secs_f64() / t_run.as_secs_f64()
    );
    std::fs::remove_file(&big).unwrap();

    // 100k secrets, loaded in one transaction through the vault library
    // while the daemon is stopped (redb allows one process at a time).
    env.stop();
    {
        let vault = secretctld::vault::Vault::open(&env.home.join("vault.redb"))
            .unwrap()
            .unwrap();
        let key = vault.unlock(PASSWORD.as_bytes()).unwrap();
        let reqs: Vec<_> = (0..100_000)
            .map(|i| {
                set_req(
                    format!("load/{:02}/secret-{i:06}", i % 50),
                    format!("v-{i}-abcdefghijklmnop"),
                )
            })
            .collect();
        let t = Instant::now();
        vault.set_many(&key, &reqs).unwrap();
        println!("bulk load of 100k secrets: {:?}", t.elapsed());
        let mut scans = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            let all = vault.list(&key, &Default::default()).unwrap();
            scans.push(t.elapsed());
            assert!(all.len() >= 100_000);
        }
        report("list, 100k, in-process (no RPC)", scans);
        let mut raw = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            let mut n = 0;
            vault
                .store()
                .scan("", |_, _: secretctld::store::Present| n += 1)
                .unwrap();
            raw.push(t.elapsed());
            assert!(n >= 100_000);
        }
        report("redb scan of 100k, no decoding", raw);
    }
    env.start();
    let pid = env.daemon_pid().unwrap();
    rt.block_on(c.daemon().unlock(UnlockRequest {
        password: PASSWORD.into(),
        timeout_secs: 0,
    }))
    .unwrap();
    let mut lists = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let resp = rt
            .block_on(c.vault().list(ListRequest::default()))
            .unwrap()
            .into_inner();
        lists.push(t.elapsed());
        assert!(resp.secrets.len() >= 100_000);
    }
    report("list, 100k secrets", lists);
    println!(
        "daemon RSS with 100k secrets after list: {} KiB",
        rss_kib(pid)
    );
}
