//! What caller classification (contract §9, issue 10) costs, against the real
//! release-built `secretctld`:
//!
//! ```sh
//! cargo build --release --workspace && env -u CLAUDECODE cargo bench -p secretctl-tests --bench classify
//! ```
//!
//! The daemon classifies each connection once, at accept, by walking the
//! peer's ancestry in `/proc`. The measurements run in a *probe*: this very
//! binary re-executed with `--probe`, either directly (ancestry depth 0:
//! probe → bench → cargo → shell …) or at the bottom of a chain of 10
//! `sh -c '…; exit $?'` processes (depth 10). Each is taken with
//! classification on and off (`agent.classify: false`, applied), alternating
//! over rounds so that machine drift hits both alike; cost = p50(on) − p50(off).
//!
//! - fresh-connection Get / Status: every sample is a new client, so a new
//!   connection the daemon classifies (the probe's ancestry is cached by then);
//! - cached Status: one connection, many calls (classification is not redone);
//! - CLI get: the probe spawns `secretctl get KEY` (a new process each time);
//! - walk: `Classifier::classify` in-process on the probe's parent, warm
//!   cache and cold (a new classifier per call), and the `/proc` reads alone.
//!
//! Every probe reports its caller class: the numbers are for a *user*
//! caller, i.e. the full walk. No secret value is printed. Results go to
//! docs/PERFORMANCE.md by hand.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Env;
use secretctl_proto::client::Client;
use secretctl_proto::v1::GetRequest;
use secretctld::caller::classify::{Classifier, DEFAULT_MARKERS};
use secretctld::caller::procfs;
use secretctld::caller::registry::Registry;
use serde_json::{Value, json};

const KEY: &str = "bench/classify";
const ROUNDS: usize = 8;
/// Per round and condition: fresh-connection calls, cached Status calls, CLI gets.
const FRESH: usize = 63;
const CACHED: usize = 625;
const CLI: usize = 13;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "--probe") {
        probe(&args[2..]);
        return;
    }
    bench();
}

// ---- probe: runs at the bottom of the chain, prints one JSON line ----

fn probe(args: &[String]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter(); // Client::new spawns its worker on the runtime
    let socket = std::path::Path::new(&args[1]);
    let n: usize = args[2].parse().expect("sample count");
    let warm = Client::new(socket);
    // A first connection: its class, and the ancestry is cached from here on.
    let class = rt.block_on(warm.status()).expect("status").caller_class;
    let timed =
        |f: &dyn Fn() -> Duration| -> Vec<u64> { (0..n).map(|_| f().as_nanos() as u64).collect() };
    let mut out = match args[0].as_str() {
        "get" => json!({"ns": timed(&|| {
            let t = Instant::now();
            let c = Client::new(socket);
            let req = GetRequest { key: KEY.into(), field: String::new() };
            rt.block_on(c.vault().get(req)).expect("get");
            t.elapsed()
        })}),
        "status" => json!({"ns": timed(&|| {
            let t = Instant::now();
            rt.block_on(Client::new(socket).status()).expect("status");
            t.elapsed()
        })}),
        "cached" => json!({"ns": timed(&|| {
            let t = Instant::now();
            rt.block_on(warm.status()).expect("status");
            t.elapsed()
        })}),
        "cli" => {
            let cli = &args[3];
            let st = Command::new(cli)
                .args(["status", "--json"])
                .output()
                .expect("cli");
            let st: Value = serde_json::from_slice(&st.stdout).expect("status json");
            let ns = timed(&|| {
                let t = Instant::now();
                let ok = Command::new(cli)
                    .args(["get", KEY])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null()) // the value is never shown
                    .status()
                    .expect("spawn secretctl")
                    .success();
                assert!(ok, "secretctl get failed");
                t.elapsed()
            });
            json!({"ns": ns, "cli_class": st["caller"]["class"]})
        }
        "walk" => walk(n),
        other => panic!("unknown probe mode {other}"),
    };
    out["class"] = json!(class);
    out["ancestry"] = json!(ancestry());
    println!("{out}");
}

/// The processes a walk from this probe visits: its parent up to pid 1.
fn ancestry() -> Vec<String> {
    let mut at = nix::unistd::getppid().as_raw();
    let mut chain = Vec::new();
    while at > 1 {
        let Ok(st) = procfs::stat(at) else { break };
        chain.push(st.comm);
        at = st.ppid;
    }
    chain
}

/// `Classifier::classify` on this probe's parent (its own pid counts as the
/// "daemon" of an in-process classifier, so the walk starts one up), and
/// the `/proc` reads a walk step makes.
fn walk(n: usize) -> Value {
    let parent = nix::unistd::getppid().as_raw();
    let markers: Vec<String> = DEFAULT_MARKERS.iter().map(|m| m.to_string()).collect();
    let p50 = |f: &dyn Fn()| {
        let mut s: Vec<u64> = (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_nanos() as u64
            })
            .collect();
        s.sort_unstable();
        s[s.len() / 2]
    };
    let kept = procfs::StatFiles::default();
    let warm = Classifier::new(Registry::default());
    assert!(
        !warm.classify(Some(parent)).is_agent(),
        "the chain is an agent's"
    );
    json!({
        "warm_ns": p50(&|| { warm.classify(Some(parent)); }),
        "cold_ns": p50(&|| { Classifier::new(Registry::default()).classify(Some(parent)); }),
        "stat_ns": p50(&|| { procfs::stat(parent).expect("stat"); }),
        "kept_ns": p50(&|| { kept.stat(parent).expect("stat"); }),
        "status_ns": p50(&|| { procfs::real_uid(parent).expect("status"); }),
        "environ_ns": p50(&|| { procfs::marker_in_environ(parent, &markers).expect("environ"); }),
    })
}

// ---- the bench process ----

/// A probe at `depth` sh processes below this one, without marker variables.
fn run_probe(env: &Env, depth: usize, args: &[&str]) -> Value {
    let exe = std::env::current_exe().expect("own path");
    let mut cmd = Command::new(if depth == 0 {
        exe.as_os_str()
    } else {
        "sh".as_ref()
    });
    for i in 0..depth {
        // `; exit $?` keeps each sh from exec'ing the next in its place.
        cmd.args(&["sh", "-c", "\"$@\"; exit $?", "sh"][usize::from(i == 0)..]);
    }
    if depth > 0 {
        cmd.arg(&exe);
    }
    cmd.arg("--probe")
        .arg(args[0])
        .arg(&env.socket)
        .args(&args[1..]);
    env.apply(&mut cmd);
    for m in DEFAULT_MARKERS {
        cmd.env_remove(m);
    }
    let out = cmd.stderr(Stdio::inherit()).output().expect("spawn probe");
    assert!(
        out.status.success(),
        "probe {args:?} at depth {depth} failed"
    );
    serde_json::from_slice(&out.stdout).expect("probe prints one JSON line")
}

fn set_classify(env: &Env, on: bool) {
    env.write_config(&format!("agent:\n  classify: {on}\n"));
    env.apply_config();
    let reason = env.status().expect("status").caller_reason;
    assert_eq!(!reason.contains("classification is off"), on, "{reason}");
}

fn pct(sorted: &[u64], p: f64) -> Duration {
    Duration::from_nanos(sorted[((sorted.len() as f64 - 1.0) * p).round() as usize])
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn bench() {
    if let Some(m) = DEFAULT_MARKERS
        .iter()
        .find(|m| std::env::var_os(m).is_some())
    {
        panic!("{m} is set: run the bench without agent markers (env -u {m} cargo bench …)");
    }
    let mut env = Env::new();
    env.log_level = "warn";
    env.start();
    env.init();
    env.set(KEY, "bench-value-0123456789");
    let cli = common::bin("secretctl");
    let cli = cli.to_str().expect("utf-8 path");
    let n = |k: usize| k.to_string();

    // samples[(what, depth, on)]
    let mut samples: BTreeMap<(&str, usize, bool), Vec<u64>> = BTreeMap::new();
    for round in 0..ROUNDS {
        for on in if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        } {
            set_classify(&env, on);
            for depth in [0, 10] {
                for (what, args) in [
                    ("fresh-connection Get", vec!["get", &n(FRESH)]),
                    ("fresh-connection Status", vec!["status", &n(FRESH)]),
                    ("cached Status", vec!["cached", &n(CACHED)]),
                    ("CLI get (end to end)", vec!["cli", &n(CLI), cli]),
                ] {
                    let v = run_probe(&env, depth, &args);
                    assert_eq!(v["class"], "user", "probe at depth {depth} is not a user");
                    if what.starts_with("CLI") {
                        assert_eq!(v["cli_class"], "user", "CLI at depth {depth} is not a user");
                    }
                    if round == 0 && on && what.starts_with("CLI") {
                        println!(
                            "depth {depth:>2}: probe classified {}, CLI {}; the walk visits the probe and {}",
                            v["class"], v["cli_class"], v["ancestry"]
                        );
                    }
                    let ns = v["ns"].as_array().expect("samples");
                    samples
                        .entry((what, depth, on))
                        .or_default()
                        .extend(ns.iter().map(|x| x.as_u64().expect("ns")));
                }
            }
        }
    }
    set_classify(&env, true);

    println!(
        "\n{ROUNDS} rounds alternating on/off; all callers classified user; µs\n\
         {:<26} {:>5} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "what", "depth", "n", "on p50", "on p99", "off p50", "off p99", "added p50"
    );
    for what in [
        "fresh-connection Get",
        "fresh-connection Status",
        "cached Status",
        "CLI get (end to end)",
    ] {
        for depth in [0, 10] {
            let mut on = samples.remove(&(what, depth, true)).expect("on");
            let mut off = samples.remove(&(what, depth, false)).expect("off");
            on.sort_unstable();
            off.sort_unstable();
            let added = pct(&on, 0.5).as_secs_f64() - pct(&off, 0.5).as_secs_f64();
            println!(
                "{what:<26} {depth:>5} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9.1}",
                on.len(),
                us(pct(&on, 0.5)),
                us(pct(&on, 0.99)),
                us(pct(&off, 0.5)),
                us(pct(&off, 0.99)),
                added * 1e6
            );
        }
    }

    println!("\nin-process Classifier::classify on the probe's parent, p50 of 2000; µs");
    println!(
        "{:>5} {:>5} {:>9} {:>9} {:>11} {:>11} {:>13} {:>14}",
        "depth", "steps", "warm", "cold", "stat read", "kept stat", "status read", "environ read"
    );
    for depth in [0, 10] {
        let v = run_probe(&env, depth, &["walk", "2000"]);
        let f = |k: &str| us(Duration::from_nanos(v[k].as_u64().expect("ns")));
        println!(
            "{depth:>5} {:>5} {:>9} {:>9} {:>11} {:>11} {:>13} {:>14}",
            v["ancestry"].as_array().expect("chain").len(),
            f("warm_ns"),
            f("cold_ns"),
            f("stat_ns"),
            f("kept_ns"),
            f("status_ns"),
            f("environ_ns")
        );
    }
}
