//! Redactor throughput over 1 GiB of log-like text on one core:
//! `cargo bench -p secretctld --bench redact`. Results: docs/PERFORMANCE.md.

use std::time::Instant;

use secretctld::redact::Redactor;

/// xorshift: deterministic filler without a rand dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, from: &'a [&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

fn secret(rng: &mut Rng, len: usize) -> Vec<u8> {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALNUM[(rng.next() % 62) as usize])
        .collect()
}

/// 64 MiB of log lines; every ~1 MiB one line carries a secret.
fn log_text(rng: &mut Rng, secrets: &[Vec<u8>]) -> Vec<u8> {
    let levels = ["INFO", "DEBUG", "WARN", "INFO", "INFO"];
    let paths = [
        "/api/v1/users",
        "/healthz",
        "/api/v1/orders/42",
        "/static/app.js",
        "/login",
    ];
    let words = [
        "request",
        "completed",
        "cache",
        "miss",
        "retrying",
        "connected",
        "upstream",
        "ok",
    ];
    let mut out = Vec::with_capacity(64 << 20);
    let mut next_secret = 1 << 20;
    while out.len() < 64 << 20 {
        let line = format!(
            "2026-11-28T19:{:02}:{:02}.{:03}Z {} {} {} path={} status={} latency_ms={} id={:016x}\n",
            rng.next() % 60,
            rng.next() % 60,
            rng.next() % 1000,
            rng.pick(&levels),
            rng.pick(&words),
            rng.pick(&words),
            rng.pick(&paths),
            [200, 200, 201, 404, 500][(rng.next() % 5) as usize],
            rng.next() % 900,
            rng.next()
        );
        out.extend_from_slice(line.as_bytes());
        if out.len() > next_secret && !secrets.is_empty() {
            out.extend_from_slice(b"token=");
            out.extend_from_slice(&secrets[(rng.next() % secrets.len() as u64) as usize]);
            out.push(b'\n');
            next_secret += 1 << 20;
        }
    }
    out
}

fn run(n_secrets: usize) {
    let mut rng = Rng(0x5eed_1234_abcd_ef01 ^ n_secrets as u64);
    let secrets: Vec<Vec<u8>> = (0..n_secrets)
        .map(|i| secret(&mut rng, 24 + i % 17))
        .collect();
    let names: Vec<String> = (0..n_secrets).map(|i| format!("SECRET_{i}")).collect();
    let redactor = Redactor::new(
        names
            .iter()
            .map(String::as_str)
            .zip(secrets.iter().map(Vec::as_slice)),
    );
    let text = log_text(&mut rng, &secrets);
    let total: usize = 1 << 30;
    let mut stream = redactor.stream();
    let mut out = Vec::with_capacity(128 << 10);
    let mut done = 0;
    let mut max_held = 0;
    let start = Instant::now();
    while done < total {
        for chunk in text.chunks(64 << 10) {
            out.clear();
            stream.push(chunk, &mut out);
            max_held = max_held.max(stream.held());
            std::hint::black_box(&out);
        }
        done += text.len();
    }
    out.clear();
    stream.finish(&mut out);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{n_secrets:>4} secrets, every encoding: {:>6.2} GiB/s  ({} GiB in {secs:.2} s, {} redactions, max held {} B, longest pattern {} B)",
        done as f64 / (1u64 << 30) as f64 / secs,
        done >> 30,
        stream.count(),
        max_held,
        redactor.max_pattern_len()
    );
}

fn main() {
    for n in [1, 10, 100] {
        run(n);
    }
}
