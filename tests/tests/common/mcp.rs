//! An MCP client for the end-to-end tests: rmcp's client over the real
//! `secretctl-mcp`'s stdio, with every answer kept so a test can check that
//! none held a secret.

use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use serde_json::Value;

use super::{Env, shim_command};

/// Longest wait for one MCP answer (a run's own timeout is shorter).
pub const RPC_LIMIT: Duration = Duration::from_secs(90);

/// Awaits `fut`, failing the test if it takes longer than [`RPC_LIMIT`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(RPC_LIMIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {RPC_LIMIT:?}"))
}

pub struct Mcp {
    pub client: rmcp::service::RunningService<rmcp::RoleClient, ()>,
    stderr_log: std::path::PathBuf,
    seen: Vec<String>,
}

impl Mcp {
    pub async fn start(env: &Env) -> Mcp {
        Mcp::start_with_env(env, &[]).await
    }

    /// Starts the shim with `extra` variables in its environment. The shim
    /// is killed when the client is dropped, also when the test panics.
    pub async fn start_with_env(env: &Env, extra: &[(&str, &str)]) -> Mcp {
        let stderr_log = env
            .dir
            .path()
            .join(format!("shim-{}.log", std::process::id()));
        let log = std::fs::File::create(&stderr_log).unwrap();
        let mut cmd = shim_command();
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SECRETCTL_SOCKET", &env.socket)
            .env("SECRETCTL_LOG", "debug")
            .env("RUST_LOG", "trace")
            .envs(extra.iter().copied())
            .current_dir(env.dir.path())
            .kill_on_drop(true);
        let (transport, _) = rmcp::transport::TokioChildProcess::builder(cmd)
            .stderr(log)
            .spawn()
            .unwrap();
        let client = within("MCP initialize", ().serve(transport))
            .await
            .expect("MCP initialize");
        Mcp {
            client,
            stderr_log,
            seen: Vec::new(),
        }
    }

    /// Calls a tool; returns (is_error, structured content or text).
    pub async fn call(&mut self, name: &'static str, args: Value) -> (bool, Value) {
        let params =
            CallToolRequestParams::new(name).with_arguments(args.as_object().unwrap().clone());
        let r = within(name, self.client.call_tool(params))
            .await
            .expect("tools/call");
        let text = serde_json::to_string(&r).unwrap();
        self.seen.push(text);
        let is_error = r.is_error.unwrap_or(false);
        let value = match r.structured_content {
            Some(v) => v,
            None => Value::String(
                r.content
                    .iter()
                    .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        };
        (is_error, value)
    }

    pub async fn ok(&mut self, name: &'static str, args: Value) -> Value {
        let (err, v) = self.call(name, args).await;
        assert!(!err, "{name} failed: {v}");
        v
    }

    pub async fn err(&mut self, name: &'static str, args: Value) -> String {
        let (err, v) = self.call(name, args).await;
        assert!(err, "{name} should fail: {v}");
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    }

    /// Closes the session and checks nothing the agent saw, nor the shim's
    /// log, holds one of `secrets`.
    pub async fn finish(self, env: &Env, secrets: &[&str]) {
        let _ = within("MCP close", self.client.cancel()).await;
        let log = std::fs::read_to_string(&self.stderr_log).unwrap_or_default();
        for s in secrets {
            assert!(!log.contains(*s), "shim stderr holds a secret");
            for r in &self.seen {
                assert!(!r.contains(*s), "a response holds a secret: {r}");
            }
        }
        env.assert_log_clean(secrets);
    }
}
