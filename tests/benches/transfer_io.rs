//! `import` and `export` of a 10,000-entry `.env` file (issue 13: import
//! ≤ 2 s), end to end: the real release-built `secretctl` process against
//! the real `secretctld`, as a user types it.
//!
//! ```sh
//! cargo build --release -p secretctld -p secretctl -p secretctl-mcp && \
//!   env -u CLAUDECODE cargo bench -p secretctl-tests --bench transfer_io
//! ```
//!
//! Each round imports the file under a new `--prefix` (10,000 new secrets
//! in one transaction, into a vault that grows by 10,000 per round), then
//! imports it again with `--conflict overwrite`, runs a `--dry-run`, and
//! exports the round's secrets (`-k 'rN/*'`) to a file. Times include
//! starting the CLI, reading and parsing the file, the stream to the
//! daemon, sealing every value, the durable redb commit and the audit
//! record. No value is printed. Results go to docs/PERFORMANCE.md by hand.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use common::{Env, assert_ok};

const ENTRIES: usize = 10_000;
const ROUNDS: usize = 7;
const TARGET: Duration = Duration::from_secs(2);

/// A deterministic 32-character value per entry (xorshift; no secrets).
fn values() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut text = String::with_capacity(ENTRIES * 48);
    for i in 0..ENTRIES {
        let _ = write!(text, "APP_VAR_{i:05}='");
        for _ in 0..32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            text.push(ALPHABET[(x % ALPHABET.len() as u64) as usize] as char);
        }
        text.push_str("'\n");
    }
    text
}

fn timed(env: &Env, args: &[&str], what: &str) -> Duration {
    let t = Instant::now();
    let out = env.cli(args);
    let took = t.elapsed();
    assert_ok(&out, what);
    took
}

fn report(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let median = samples[samples.len() / 2];
    println!(
        "{name:<40} n={} min={:>8.1?} median={:>8.1?} max={:>8.1?}",
        samples.len(),
        samples[0],
        median,
        samples.last().unwrap()
    );
    median
}

fn main() {
    let mut env = Env::new();
    env.log_level = "warn";
    env.start();
    env.init();
    let file = env.dir.path().join("bench.env");
    std::fs::write(&file, values()).unwrap();
    let path = file.to_str().unwrap().to_string();
    let size = std::fs::metadata(&file).unwrap().len();
    println!("{ENTRIES} entries, {size} bytes, {ROUNDS} rounds");

    let (mut new, mut over, mut dry, mut export) = (vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        let prefix = format!("r{round}/");
        new.push(timed(
            &env,
            &["import", &path, "--prefix", &prefix],
            "import",
        ));
        over.push(timed(
            &env,
            &[
                "import",
                &path,
                "--prefix",
                &prefix,
                "--conflict",
                "overwrite",
            ],
            "import --conflict overwrite",
        ));
        dry.push(timed(
            &env,
            &["import", &path, "--prefix", &prefix, "--dry-run"],
            "import --dry-run",
        ));
        let out = env.dir.path().join(format!("export-{round}.env"));
        let pattern = format!("r{round}/*");
        export.push(timed(
            &env,
            &["export", "-k", &pattern, "-o", out.to_str().unwrap()],
            "export",
        ));
        // The same lines, each name now starting with `RN_`.
        assert_eq!(
            std::fs::read(&out).unwrap().len(),
            size as usize + ENTRIES * 3,
            "export of round {round}"
        );
    }
    let median = report("import, 10k new secrets", new);
    report("import --conflict overwrite, 10k", over);
    report("import --dry-run, 10k (all exist)", dry);
    report("export -k 'rN/*' -o FILE, 10k", export);
    println!(
        "target: import of 10k ≤ {TARGET:?}: {}",
        if median <= TARGET { "met" } else { "NOT met" }
    );
}
