//! `secretctl-mcp`: the stdio MCP server Claude Code (or any MCP client)
//! spawns. It forwards every tool call to the daemon's agent service over the
//! socket. No password, no crypto, no vault file: only the socket.
//!
//! stdout carries MCP protocol only; logs go to stderr, and rmcp's own log
//! level is pinned at info (at debug it logs whole messages). The process
//! exits when stdin closes.
#![forbid(unsafe_code)]

mod stdio;
mod tools;

use anyhow::Context;
use rmcp::ServiceExt;

/// Log filter: `SECRETCTL_LOG` applies to this crate; rmcp stays at info.
fn log_filter() -> tracing_subscriber::EnvFilter {
    let user = std::env::var("SECRETCTL_LOG").unwrap_or_else(|_| "info".into());
    let mut directives = vec!["warn".to_string()];
    for d in user.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if d.contains('=') {
            if !d.starts_with("rmcp") {
                directives.push(d.to_string());
            }
        } else {
            directives.push(format!("secretctl_mcp={d}"));
        }
    }
    directives.push("rmcp=info".into());
    tracing_subscriber::EnvFilter::new(directives.join(","))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    if std::env::args()
        .skip(1)
        .any(|a| a == "--version" || a == "-V")
    {
        println!("secretctl-mcp {}", secretctl_proto::VERSION);
        return Ok(());
    }
    if std::env::args().skip(1).any(|a| a == "--help" || a == "-h") {
        println!(
            "secretctl-mcp {}: MCP server (stdio) for secretctl.\n\n\
             Started by an MCP client such as Claude Code; needs a running, unlocked secretctld.\n\
             Configure: claude mcp add secretctl -- secretctl mcp-server\n\n\
             Environment: SECRETCTL_SOCKET, SECRETCTL_HOME (to find the socket), SECRETCTL_LOG (stderr log filter).",
            secretctl_proto::VERSION
        );
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let socket = secretctl_proto::paths::socket_path().context("cannot find the daemon socket")?;
    let client = secretctl_proto::client::Client::new(&socket);
    // Before answering `initialize`: from now on the agent that started us
    // is known to the daemon as an agent host (contract §9).
    let registered = tools::register(&client).await;
    tracing::info!(socket = %socket.display(), "secretctl-mcp serving on stdio");
    let service = tools::SecretctlTools::new(client, registered)
        .serve(stdio::stdio())
        .await
        .context("MCP initialisation failed")?;
    service.waiting().await.context("MCP session failed")?;
    tracing::info!("stdin closed; exiting");
    Ok(())
}
