//! `secretctl ui`: asks the daemon for a login link to its web UI
//! (contract §11), prints it and opens it in the browser.
//!
//! The link carries a one-time token in its fragment (the part after `#`,
//! which browsers never send in a request). It is printed to stdout and,
//! unless `--no-open`, passed to the system's opener; another local user
//! who reads it from a process list still cannot use it: the UI serves
//! only connections from our uid.

use std::process::{Command, Stdio};

use anyhow::Context;
use secretctl_proto::v1::UiRequest;
use serde_json::json;
use zeroize::Zeroizing;

use crate::cli::UiArgs;
use crate::connect;
use crate::error::Result;
use crate::output::print_json;

pub async fn run(a: UiArgs, json_out: bool) -> Result<()> {
    let (client, st) = connect::connect().await?;
    crate::reauth::consent(
        &client,
        &st,
        "open the web UI (it shows and changes everything in the vault)",
    )
    .await?;
    let r = client
        .daemon()
        .ui(UiRequest {})
        .await
        .map_err(|s| client.classify(s))
        .context("cannot open the web UI")?
        .into_inner();
    let url = Zeroizing::new(format!("{}/login#{}", r.base_url, r.login_token));
    if json_out {
        print_json(&json!({
            "url": url.as_str(),
            "base_url": r.base_url,
            "started": r.started,
            "idle_stop_secs": r.idle_stop_secs,
            "token_ttl_secs": r.token_ttl_secs,
        }))?;
    } else {
        outln!("{}", url.as_str());
        eprintln!(
            "The link works once, within {} s. The UI stops after {} without use.",
            r.token_ttl_secs,
            secretctl_proto::duration::format(std::time::Duration::from_secs(r.idle_stop_secs))
        );
    }
    if !a.no_open {
        open_browser(&url);
    }
    Ok(())
}

/// Hands the link to the system's opener, without waiting for it.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = Command::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!("secretctl ui: cannot start {opener} ({e}): open the link above yourself");
    }
}
