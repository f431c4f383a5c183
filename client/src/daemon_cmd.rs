//! `secretctl daemon status|stop|restart`: the daemon process itself. A
//! daemon the CLI started is stopped with SIGTERM (it locks first, zeroizing
//! the key) and restarted by starting a new one, which reads config.yaml
//! again and begins locked. A service-managed daemon is the service
//! manager's: these commands name the command to use instead.

use serde_json::json;

use crate::cli::DaemonCommand;
use crate::connect;
use crate::error::{CliError, Result};
use crate::output::print_json;

pub async fn run(cmd: DaemonCommand, json_out: bool) -> Result<()> {
    match cmd {
        DaemonCommand::Status => status(json_out).await,
        DaemonCommand::Stop => stop(json_out).await.map(|_| ()),
        DaemonCommand::Restart => {
            let was = stop(false).await?;
            let (_, st) = connect::connect().await?;
            if json_out {
                print_json(
                    &json!({"restarted": true, "old_pid": was, "pid": st.pid, "state": "locked"}),
                )
            } else {
                outln!(
                    "secretctld restarted (pid {}); it read config.yaml again and the vault is locked: run 'secretctl unlock'",
                    st.pid
                );
                Ok(())
            }
        }
    }
}

async fn status(json_out: bool) -> Result<()> {
    let Some(client) = connect::existing().await? else {
        if json_out {
            return print_json(&json!({"running": false}));
        }
        outln!("secretctld is not running (any secretctl command that needs it starts it)");
        return Ok(());
    };
    let st = client.status().await.map_err(anyhow::Error::from)?;
    let log = secretctl_proto::paths::home_dir()
        .map(|h| {
            h.join(secretctl_proto::paths::DAEMON_LOG_FILE)
                .display()
                .to_string()
        })
        .unwrap_or_default();
    if json_out {
        return print_json(&json!({
            "running": true,
            "pid": st.pid,
            "version": st.version,
            "protocol": st.protocol,
            "service_managed": st.service_managed,
            "socket": st.socket_path,
            "log": log,
        }));
    }
    outln!(
        "secretctld {} running (pid {}, {}), socket {}",
        st.version,
        st.pid,
        if st.service_managed {
            "started by its service"
        } else {
            "started by secretctl"
        },
        st.socket_path
    );
    if !st.service_managed {
        outln!("log: {log}");
    }
    Ok(())
}

/// Stops an autostarted daemon; returns its pid (0: none was running).
async fn stop(json_out: bool) -> Result<u32> {
    let Some(client) = connect::existing().await? else {
        if json_out {
            print_json(&json!({"stopped": false, "running": false}))?;
        } else {
            outln!("secretctld is not running");
        }
        return Ok(0);
    };
    let st = client.status().await.map_err(anyhow::Error::from)?;
    if st.service_managed {
        let how = crate::service::installed_stop_command()
            .unwrap_or_else(|| "your service manager".into());
        return Err(CliError::error("secretctld is run by its service")
            .hint(format!("stop or restart it with: {how}"))
            .into());
    }
    connect::stop_daemon(&client, st.pid).await?;
    if json_out {
        print_json(&json!({"stopped": true, "pid": st.pid}))?;
    } else {
        outln!("secretctld (pid {}) stopped; the vault is locked", st.pid);
    }
    Ok(st.pid)
}
