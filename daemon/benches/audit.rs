//! Audit writer throughput and per-record latency, with fsync (group commit):
//! `cargo bench -p secretctld --bench audit`. Results: docs/PERFORMANCE.md.

use std::time::{Duration, Instant};

use secretctld::audit::{self, Audit};
use secretctld::keyring::DataKey;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for producers in [1usize, 8, 64] {
        let dir = tempfile::tempdir().unwrap();
        let a = Audit::start(&dir.path().join("audit"), 8 << 20).unwrap();
        a.unlocked(&DataKey::generate().unwrap());
        let per = if producers == 1 {
            2000
        } else {
            8000 / producers
        };
        let start = Instant::now();
        let lat: Vec<Duration> = rt.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..producers {
                let a = a.clone();
                tasks.push(tokio::spawn(async move {
                    let mut v = Vec::with_capacity(per);
                    for i in 0..per {
                        let mut r = audit::event("get", "cli", audit::daemon_peer());
                        r.keys = vec![format!("bench/key-{i}")];
                        let t = Instant::now();
                        a.record(r).await.expect("recorded");
                        v.push(t.elapsed());
                    }
                    v
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all
        });
        let wall = start.elapsed();
        let batches = a.batches_written().max(1);
        let mut lat = lat;
        lat.sort();
        println!(
            "{producers:>3} concurrent writers: {:>7.0} records/s, per-record wait p50 {:?} p99 {:?}, {:.1} records per fsync",
            lat.len() as f64 / wall.as_secs_f64(),
            lat[lat.len() / 2],
            lat[lat.len() * 99 / 100],
            lat.len() as f64 / batches as f64
        );
    }
}
