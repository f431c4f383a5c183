//! The credential proxy end to end (contract §12): a secret set with
//! `--proxy-host`, an agent's `secret_run` of real `curl` through the real
//! shim and daemon, and recording HTTPS upstreams with a CA of the test's
//! own (trusted through `proxy.extra_roots`). The value must reach only the
//! named upstream; the child, its `/proc/PID/environ`, its output and its
//! files hold only the placeholder.

mod common;

use std::process::Command;

use common::mcp::*;
use common::*;
use secretctld::proxy::testing::{TestCa, Upstream};
use serde_json::{Value, json};

const TOKEN: &str = "ghp_proxyTEST_9f8e7d6c5b4a3210";

const POLICY: &str = "version: 1\ndefault_action: deny\nallowed_commands: [sh, curl, cat]\n";

struct Rig {
    env: Env,
    rt: tokio::runtime::Runtime,
    /// Named by the secret (as `localhost`).
    named: Upstream,
    /// Not named (reached as `127.0.0.1`).
    other: Upstream,
    /// Plain HTTP, reached as `localhost`.
    plain: Upstream,
}

fn rig(strict: bool) -> Rig {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut env = Env::new();
    let ca = TestCa::new("secretctl e2e test CA");
    let ca_file = ca.write(env.dir.path());
    env.write_config(&format!(
        "proxy:\n  strict: {strict}\n  extra_roots: [{}]\n",
        ca_file.display()
    ));
    env.start();
    env.init();
    env.apply_config();
    env.write_policy(POLICY);
    env.apply_policy();
    let out = env.cli_stdin(
        &["set", "gh/token", "--proxy-host", "localhost"],
        Some(TOKEN.as_bytes()),
    );
    assert_ok(&out, "set --proxy-host");
    let (named, other, plain) = rt.block_on(async {
        (
            Upstream::start(&ca, &[b"h2", b"http/1.1"]).await,
            Upstream::start(&ca, &[b"http/1.1"]).await,
            Upstream::start_plain().await,
        )
    });
    Rig {
        env,
        rt,
        named,
        other,
        plain,
    }
}

/// The child's script: what it holds, then curl to each upstream. Every
/// line is tagged so the assertions can find it.
fn script(r: &Rig) -> String {
    format!(
        r#"printf '%s' "$GH_TOKEN" > token-file.txt
echo "ENV=$GH_TOKEN"
tr '\0' '\n' < /proc/$$/environ | grep '^GH_TOKEN=' | sed 's/^/PROC:/'
echo "PORT=${{HTTPS_PROXY##*:}}"
curl -sS -o /dev/null -w 'NAMED=%{{http_code}}\n' -H "Authorization: Bearer $GH_TOKEN" "https://localhost:{n}/repos?token=$GH_TOKEN&x=1"
curl -sS -o /dev/null -w 'OTHER=%{{http_connect}}/%{{http_code}}\n' -H "Authorization: Bearer $GH_TOKEN" "https://127.0.0.1:{o}/other"
curl -sS -o /dev/null -w 'PLAIN=%{{http_code}}\n' -H "Authorization: Bearer $GH_TOKEN" "http://localhost:{p}/plain"
curl -sS -o /dev/null -w 'NOCRED=%{{http_connect}}\n' -x "http://${{HTTPS_PROXY##*@}}" "https://localhost:{n}/nocred"
true"#,
        n = r.named.port,
        o = r.other.port,
        p = r.plain.port,
    )
}

/// The value of the `TAG=` line of the child's output.
fn line<'a>(stdout: &'a str, tag: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{tag}=")))
        .unwrap_or_else(|| panic!("no {tag}= line in:\n{stdout}"))
}

fn secret_run(r: &Rig) -> Value {
    let cwd = r.env.dir.path().to_str().unwrap().to_string();
    let script = script(r);
    r.rt.block_on(async {
        let mut m = Mcp::start(&r.env).await;
        let fields = m.ok("secret_list_fields", json!({"key": "gh/token"})).await;
        assert_eq!(
            fields["fields"][0]["proxy_hosts"],
            json!(["localhost"]),
            "{fields}"
        );
        let run = m
            .ok(
                "secret_run",
                json!({"keys": ["gh/token"], "command": "sh", "args": ["-c", script], "cwd": cwd}),
            )
            .await;
        m.finish(&r.env, &[TOKEN]).await;
        run
    })
}

#[test]
fn an_agent_run_holds_a_placeholder_and_only_the_named_host_gets_the_value() {
    let r = rig(false);
    let run = secret_run(&r);
    let out = run["stdout"].as_str().unwrap();
    assert_eq!(run["exit_code"], 0, "{run}");

    // The child: environment, /proc/PID/environ, output and file hold the
    // placeholder.
    let ph = line(out, "ENV");
    assert!(
        ph.starts_with("SECRETCTL_PH_") && ph.len() == 13 + 24,
        "{out}"
    );
    assert_eq!(line(out, "PROC:GH_TOKEN"), ph);
    let file = std::fs::read_to_string(r.env.dir.path().join("token-file.txt")).unwrap();
    assert_eq!(file, ph);
    assert!(!out.contains(TOKEN) && !run.to_string().contains(TOKEN));

    // The named upstream got the value, in the header and the query.
    assert_eq!(line(out, "NAMED"), "200", "{out}");
    let seen = r.named.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(seen[0].target, format!("/repos?token={TOKEN}&x=1"));
    assert_eq!(run["proxy_substitutions"], 1, "{run}");

    // Another host got the placeholder, tunnelled untouched.
    assert_eq!(line(out, "OTHER"), "200/200", "{out}");
    let other = r.other.seen();
    assert_eq!(
        other[0].header("authorization"),
        Some(format!("Bearer {ph}").as_str())
    );
    // Plain HTTP to the named host: refused, nothing sent.
    assert_eq!(line(out, "PLAIN"), "403", "{out}");
    assert!(r.plain.seen().is_empty());
    // Another process without the run's credential: refused.
    assert_eq!(line(out, "NOCRED"), "407", "{out}");
    assert_eq!(
        r.named.seen().len(),
        1,
        "the uncredentialed request got through"
    );

    // The proxy stopped with the run.
    let port: u16 = line(out, "PORT").parse().unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the run's proxy still listens"
    );

    // Audited: key, host, method and the path without its query.
    let listed = r
        .env
        .cli(&["audit", "list", "--action", "proxy_substitution", "--json"]);
    assert_ok(&listed, "audit list");
    assert!(!stdout(&listed).contains(TOKEN));
    let recs = json(&listed);
    assert_eq!(recs.as_array().unwrap().len(), 1, "{recs}");
    let rec = &recs[0];
    assert_eq!(rec["keys"], json!(["gh/token"]), "{rec}");
    assert_eq!(rec["detail"]["host"], "localhost", "{rec}");
    assert_eq!(rec["detail"]["method"], "GET", "{rec}");
    assert_eq!(rec["detail"]["path"], "/repos", "{rec}");
    r.env.assert_log_clean(&[TOKEN]);
}

#[test]
fn strict_refuses_unnamed_hosts_and_agents_cannot_unproxy_or_rotate() {
    let r = rig(true);
    let result = secret_run(&r);
    let out = result["stdout"].as_str().unwrap();
    assert_eq!(line(out, "NAMED"), "200", "{out}");
    assert_eq!(line(out, "OTHER").split('/').next(), Some("403"), "{out}");
    assert!(
        r.other.seen().is_empty(),
        "strict let an unnamed host through"
    );

    // An agent's shell may not take the marking off, nor swap the CA.
    let agent = |args: &[&str]| {
        let mut cmd = Command::new("setsid");
        r.env.apply(&mut cmd);
        cmd.arg("-w")
            .arg(bin("secretctl"))
            .args(args)
            .env("CLAUDECODE", "1");
        run(cmd, Some(b""))
    };
    let unproxy = agent(&["set", "gh/token", "--proxy-host", ""]);
    assert_code(&unproxy, 5, "an agent's set --proxy-host ''");
    let rotate = agent(&["proxy", "ca", "rotate"]);
    assert_code(&rotate, 5, "an agent's proxy ca rotate");
    let meta = r.env.cli(&["get", "gh/token", "--show-metadata", "--json"]);
    assert_eq!(json(&meta)["proxy_hosts"], json!(["localhost"]));

    // An agent's own `secretctl run` gets the placeholder too.
    let own = agent(&[
        "run",
        "-k",
        "gh/token",
        "--",
        "sh",
        "-c",
        "echo \"ENV=$GH_TOKEN\"",
    ]);
    assert_ok(&own, "an agent's run");
    assert!(line(&stdout(&own), "ENV").starts_with("SECRETCTL_PH_"));

    // The user: `run` without --proxy gets the value; with it, the
    // placeholder. A rotation makes a new CA.
    let shown = |extra: &[&str]| {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend([
            "-k",
            "gh/token",
            "--no-redact",
            "--",
            "sh",
            "-c",
            "echo \"ENV=$GH_TOKEN\"",
        ]);
        stdout(&r.env.cli(&args))
    };
    assert_eq!(line(&shown(&[]), "ENV"), TOKEN);
    assert!(line(&shown(&["--proxy"]), "ENV").starts_with("SECRETCTL_PH_"));
    let before = json(&r.env.cli(&["proxy", "ca", "show", "--json"]));
    let after = json(&r.env.cli(&["proxy", "ca", "rotate", "--json"]));
    assert_ne!(before["fingerprint_sha256"], after["fingerprint_sha256"]);
    assert!(
        after["certificate"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
}
