//! `secretctl proxy ca show|rotate`: the credential proxy's local CA
//! (contract §12). Only the certificate and its fingerprint ever leave the
//! daemon; the key stays sealed in the vault.

use anyhow::Context;
use secretctl_proto::v1::ProxyCaRequest;
use serde_json::json;

use crate::cli::ProxyCaCommand;
use crate::connect;
use crate::error::Result;
use crate::output::print_json;

pub async fn run(c: ProxyCaCommand, json_out: bool) -> Result<()> {
    let (client, st) = connect::connect().await?;
    let rotate = matches!(c, ProxyCaCommand::Rotate);
    if rotate {
        crate::reauth::consent(
            &client,
            &st,
            "replace the credential proxy's CA (what runs trust for intercepted hosts)",
        )
        .await?;
    }
    let r = client
        .daemon()
        .proxy_ca(ProxyCaRequest { rotate })
        .await
        .map_err(|s| client.classify(s))
        .context(if rotate {
            "cannot rotate the proxy CA"
        } else {
            "cannot show the proxy CA"
        })?
        .into_inner();
    if json_out {
        print_json(&json!({
            "certificate": r.cert_pem,
            "fingerprint_sha256": r.fingerprint,
            "rotated": rotate,
        }))?;
    } else {
        if rotate {
            eprintln!("A new CA is in force for runs started from now on.");
        }
        outln!("{}", r.cert_pem.trim_end());
        eprintln!("SHA-256 fingerprint: {}", r.fingerprint);
    }
    Ok(())
}
