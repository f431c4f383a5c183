//! The web UI in a real browser: Debian's Chromium driven through
//! chromedriver (WebDriver, from Rust with fantoccini). Logs in through the
//! printed link, searches, adds a secret with a generated password, reveals
//! it, sees the audit chart, locks.
//!
//! Skipped (with the reason printed) when `chromedriver` or `chromium` is
//! not on PATH; under CI (`CI` set) that is a failure: `.ci/run` installs
//! both. With `SECRETCTL_UI_SCREENSHOTS=DIR` it saves a screenshot of each
//! page there (how docs/ui/*.png are made).

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// chromedriver and a Chromium binary, or why not.
fn tools() -> Result<(PathBuf, PathBuf), String> {
    let driver = on_path("chromedriver")
        .ok_or("chromedriver is not on PATH (apt-get install chromium-driver)")?;
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|n| on_path(n))
        .ok_or("chromium is not on PATH (apt-get install chromium)")?;
    Ok((driver, browser))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn poll<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await; // polling interval
    }
}

async fn text_of(c: &Client, css: &str) -> Option<String> {
    c.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

async fn shot(c: &Client, name: &str) {
    let Some(dir) = std::env::var_os("SECRETCTL_UI_SCREENSHOTS") else {
        return;
    };
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).expect("save screenshot");
}

#[test]
fn log_in_search_add_reveal_see_the_chart_and_lock() {
    let (driver, browser) = match tools() {
        Ok(t) => t,
        Err(why) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{why}; CI must run the browser tests (.ci/run installs them)"
            );
            eprintln!("SKIP log_in_search_add_reveal_see_the_chart_and_lock: {why}");
            return;
        }
    };
    let env = Env::unlocked();
    env.set("app/token", "app-token-value-3c5e7a9b1d");
    env.set("ci/deploy-key", "deploy-key-value-8f6e4d2c0a");
    let out = env.cli(&[
        "set",
        "prod/db",
        "--template",
        "database",
        "--field",
        "host=db.internal",
        "--field",
        "port=5432",
        "--field",
        "username=app",
        "--field",
        "database=main",
        "--field",
        "password=short",
        "--tags",
        "prod",
        "--expires",
        "5d",
    ]);
    assert_ok(&out, "set prod/db");
    env.write_policy("version: 1\ndefault_action: deny\nallowed_commands: [ls, \"npm test\", python3]\ndenied_commands: [rm]\n");
    env.apply_policy();
    let link = common::ui::open(&env);

    let port = free_port();
    let profile = tempfile::tempdir().unwrap();
    let mut chromedriver = ChildGuard::new(
        Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let webdriver = format!("http://127.0.0.1:{port}");
        poll("chromedriver answers", || async {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
        })
        .await;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": browser,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                         "--force-color-profile=srgb", format!("--user-data-dir={}", profile.path().display())],
            }),
        );
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&webdriver)
            .await
            .expect("a WebDriver session");

        // Log in through the printed link: the page trades the token and
        // lands on the Session page; the token is gone from the address bar.
        c.goto(&link.url).await.unwrap();
        poll("signed in", || async { (text_of(&c, "#vault-state").await.as_deref() == Some("unlocked")).then_some(()) }).await;
        let url = c.current_url().await.unwrap();
        assert_eq!(url.path(), "/");
        assert!(url.fragment().is_none(), "the token left the address bar");
        shot(&c, "session").await;

        // Search with the keyboard shortcut.
        c.goto(&format!("{}/secrets", link.origin())).await.unwrap();
        c.find(Locator::Css("body")).await.unwrap().send_keys("/").await.unwrap();
        let q = c.find(Locator::Id("q")).await.unwrap();
        q.send_keys("prod\u{E007}").await.unwrap(); // Enter
        poll("search results", || async {
            let t = text_of(&c, "#secrets").await?;
            (t.contains("prod/db") && !t.contains("app/token")).then_some(())
        })
        .await;
        c.goto(&format!("{}/secrets", link.origin())).await.unwrap();
        shot(&c, "secrets").await;

        // Add a secret from the login template with a generated password.
        c.goto(&format!("{}/secrets/new?template=login", link.origin())).await.unwrap();
        c.find(Locator::Id("key")).await.unwrap().send_keys("web/shop").await.unwrap();
        c.find(Locator::Id("f0")).await.unwrap().send_keys("alice").await.unwrap();
        c.find(Locator::Css("button[data-generate=f1]")).await.unwrap().click().await.unwrap();
        poll("a generated password", || async {
            let v = c.find(Locator::Id("f1")).await.ok()?.prop("value").await.ok()??;
            (v.len() == 24).then_some(())
        })
        .await;
        shot(&c, "add-secret").await;
        c.find(Locator::Id("save")).await.unwrap().click().await.unwrap();
        poll("the saved secret", || async {
            (text_of(&c, "h1").await.as_deref() == Some("web/shop")).then_some(())
        })
        .await;
        let stored = stdout(&env.cli(&["get", "web/shop", "--field", "password"]));
        assert_eq!(stored.len(), 24);
        let page = c.source().await.unwrap();
        assert!(!page.contains(&stored), "the value is not in the page before reveal");

        // Reveal it on click.
        c.find(Locator::Css("form.reveal button")).await.unwrap().click().await.unwrap();
        poll("the revealed value", || async {
            (text_of(&c, "output.value.shown").await.as_deref() == Some(stored.as_str())).then_some(())
        })
        .await;
        shot(&c, "reveal").await;

        // The audit page and its chart.
        c.goto(&format!("{}/audit", link.origin())).await.unwrap();
        let bars = c.find_all(Locator::Css("figure.chart svg rect.bar0")).await.unwrap();
        assert!(!bars.is_empty(), "the chart has bars");
        assert!(text_of(&c, "#chain").await.unwrap().contains("chain verified"));
        assert!(text_of(&c, "#audit").await.unwrap().contains("get"), "the reveal is in the log");
        shot(&c, "audit").await;
        for page in ["agents", "security"] {
            c.goto(&format!("{}/{page}", link.origin())).await.unwrap();
            shot(&c, page).await;
        }
        c.goto(&format!("{}/policy?cmd=npm+test&cwd=%2Ftmp", link.origin())).await.unwrap();
        assert!(text_of(&c, "#verdict").await.unwrap().contains("would run"));
        shot(&c, "policy").await;

        // Lock from the Session page.
        c.goto(&format!("{}/", link.origin())).await.unwrap();
        c.find(Locator::Id("lock")).await.unwrap().click().await.unwrap();
        poll("locked", || async { (text_of(&c, "#vault-state").await.as_deref() == Some("locked")).then_some(()) }).await;
        assert_eq!(json(&env.cli(&["status", "--json"]))["state"], "locked");
        c.close().await.unwrap();
    });
    drop(chromedriver.child().kill());
    env.assert_log_clean(&["app-token-value-3c5e7a9b1d", "deploy-key-value-8f6e4d2c0a"]);
}
