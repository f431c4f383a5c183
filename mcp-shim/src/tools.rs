//! The eight MCP tools (contract §6). Each forwards to the daemon's agent
//! service and shapes its answer; none can return a sensitive value, because
//! the agent service has no call that returns one.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::{Json, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use secretctl_proto::client::{Client, RpcError};
use secretctl_proto::duration;
use secretctl_proto::v1::{
    AgentGetFieldRequest, AgentKeyRequest, AgentListRequest, AgentPolicyRequest, AgentRunRequest,
    AgentSecretInfo, EnvVar, RegisterRequest, SecurityScoreRequest, register_request,
};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use secretctl_mcp::args::{
    BindingsRunArgs, FieldArgs, KeyArgs, ListArgs, RunArgs, argv, expiring_within_secs, timeout_ms,
};

#[derive(Debug, Serialize, JsonSchema)]
pub struct SecretInfo {
    pub key: String,
    pub field_count: u32,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub has_notes: bool,
    pub has_url: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ListOut {
    pub secrets: Vec<SecretInfo>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ExistsOut {
    pub key: String,
    pub exists: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_notes: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_url: Option<bool>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct MaskedOut {
    pub key: String,
    pub masked_value: String,
    pub field_count: u32,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FieldOut {
    pub name: String,
    pub sensitive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Hosts the credential proxy sends the value to: in a run the
    /// variable holds a placeholder that works only in HTTPS requests to
    /// these hosts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proxy_hosts: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FieldsOut {
    pub key: String,
    pub fields: Vec<FieldOut>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GetFieldOut {
    pub key: String,
    pub field: String,
    pub value: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RunOut {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    pub duration_ms: u64,
    pub timed_out: bool,
    pub truncated: bool,
    pub redacted_count: u64,
    /// Placeholders of proxied secrets that the credential proxy replaced
    /// by their values in HTTPS requests.
    pub proxy_substitutions: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IssueOut {
    /// weak | duplicate | expired | expiring
    pub kind: String,
    pub keys: Vec<String>,
    pub message: String,
    /// weak and duplicate: the fields concerned, as "key:field".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ScoreOut {
    pub score: u32,
    pub issues: Vec<IssueOut>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AliasOut {
    /// The alias, for secret_run's `env`.
    pub name: String,
    /// "pattern -> target" rewrites of key patterns.
    pub rules: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PolicyOut {
    /// "deny" (only allowed commands run) or "allow".
    pub default_action: String,
    /// Entries: a name ("npm"), an argv prefix ("npm test") or a path ("./test.sh").
    pub allowed_commands: Vec<String>,
    pub denied_commands: Vec<String>,
    /// Refused whatever the policy says.
    pub always_denied: Vec<String>,
    pub env_aliases: Vec<AliasOut>,
    /// Where bare command names are looked up (never the agent's PATH).
    pub trusted_directories: Vec<String>,
}

fn some_str(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn info(i: AgentSecretInfo) -> SecretInfo {
    SecretInfo {
        key: i.key,
        field_count: i.field_count,
        tags: i.tags,
        expires_at: i.expires_at.map(duration::rfc3339),
        has_notes: i.has_notes,
        has_url: i.has_url,
        created_at: duration::rfc3339(i.created_at),
        updated_at: duration::rfc3339(i.updated_at),
    }
}

/// One line explaining a failed call (control characters escaped: the
/// message may echo an argument).
fn reason(e: RpcError) -> String {
    let line = match e {
        RpcError::Unreachable { .. } => {
            "secretctld is not running: ask the user to run 'secretctl unlock' in a terminal".into()
        }
        RpcError::Status(s) if s.message().starts_with(secretctl_proto::LOCKED_MESSAGE) => {
            "the user's vault is locked: ask the user to unlock it in their own terminal ('secretctl unlock'); you cannot unlock it".into()
        }
        RpcError::Status(s) => s.message().to_string(),
        e @ (RpcError::Exited { .. } | RpcError::ShuttingDown { .. }) => {
            format!("{e}: ask the user to run 'secretctl unlock' in a terminal")
        }
        e => e.to_string(),
    };
    secretctl_proto::text::one_line(&line, 2000)
}

fn base_env() -> Vec<EnvVar> {
    base_env_of(std::env::vars())
}

/// The base variables (and `LC_*`) of `vars`.
fn base_env_of(vars: impl Iterator<Item = (String, String)>) -> Vec<EnvVar> {
    vars.filter(|(k, _)| secretctl_proto::rules::is_base_env(k))
        .map(|(name, v)| EnvVar {
            name,
            value: v.into_bytes(),
        })
        .collect()
}

fn cwd(arg: &Option<String>) -> Result<String, String> {
    let base =
        std::env::current_dir().map_err(|e| format!("cannot read the working directory: {e}"))?;
    let dir = match arg {
        Some(d) => base.join(d),
        None => base,
    };
    Ok(dir.to_string_lossy().into_owned())
}

/// The MCP server.
#[derive(Clone)]
pub struct SecretctlTools {
    client: Client,
    /// Whether the daemon now serving knows this shim (and so its agent
    /// host). Cleared when the daemon goes away; the next call registers
    /// again.
    registered: Arc<AtomicBool>,
    tool_router: ToolRouter<Self>,
}

/// Tells the daemon this process is the MCP shim, so it records the agent
/// that started it as an agent host (contract §9). Returns whether it was
/// heard.
pub async fn register(client: &Client) -> bool {
    let req = RegisterRequest {
        kind: register_request::Kind::Shim as i32,
    };
    match client.daemon().register(req).await {
        Ok(r) => {
            tracing::info!(hosts = ?r.into_inner().hosts, "registered with secretctld");
            true
        }
        Err(s) => {
            tracing::warn!(error = %reason(client.classify(s)), "cannot register with secretctld yet; will retry before the next call");
            false
        }
    }
}

impl std::fmt::Debug for SecretctlTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretctlTools").finish_non_exhaustive()
    }
}

#[tool_router]
impl SecretctlTools {
    pub fn new(client: Client, registered: bool) -> Self {
        SecretctlTools {
            client,
            registered: Arc::new(AtomicBool::new(registered)),
            tool_router: Self::tool_router(),
        }
    }

    /// Registers with the daemon if it does not know this shim yet.
    async fn ready(&self) {
        if !self.registered.load(Ordering::SeqCst) && register(&self.client).await {
            self.registered.store(true, Ordering::SeqCst);
        }
    }

    /// One line explaining a failed call; a lost daemon means registering
    /// again with the next one.
    fn fail(&self, s: tonic::Status) -> String {
        let e = self.client.classify(s);
        if e.is_connection() {
            self.registered.store(false, Ordering::SeqCst);
        }
        reason(e)
    }

    async fn run_request(&self, req: AgentRunRequest) -> Result<Json<RunOut>, String> {
        let r = self
            .client
            .agent()
            .run(req)
            .await
            .map_err(|s| self.fail(s))?
            .into_inner();
        Ok(Json(RunOut {
            exit_code: r.exit_code,
            stdout: r.stdout,
            stderr: r.stderr,
            duration_ms: r.duration_ms,
            timed_out: r.timed_out,
            truncated: r.truncated,
            redacted_count: r.redacted_count,
            proxy_substitutions: r.proxy_substitutions,
        }))
    }

    #[tool(
        description = "List the secrets in the user's vault: key names, tags, field counts, expiry and dates. Never returns any secret value.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn secret_list(
        &self,
        Parameters(a): Parameters<ListArgs>,
    ) -> Result<Json<ListOut>, String> {
        self.ready().await;
        let expiring_within_secs = expiring_within_secs(&a.expiring_within)?;
        let r = self
            .client
            .agent()
            .list(AgentListRequest {
                tag: a.tag.unwrap_or_default(),
                expiring_within_secs,
                prefix: a.prefix.unwrap_or_default(),
            })
            .await
            .map_err(|s| self.fail(s))?
            .into_inner();
        Ok(Json(ListOut {
            secrets: r.secrets.into_iter().map(info).collect(),
        }))
    }

    #[tool(
        description = "Check whether a secret with this exact key exists, with its tags and expiry. Never returns the value.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn secret_exists(
        &self,
        Parameters(a): Parameters<KeyArgs>,
    ) -> Result<Json<ExistsOut>, String> {
        self.ready().await;
        let r = self
            .client
            .agent()
            .exists(AgentKeyRequest { key: a.key })
            .await
            .map_err(|s| self.fail(s))?
            .into_inner();
        let i = r.info.map(info);
        Ok(Json(ExistsOut {
            key: r.key,
            exists: r.exists,
            tags: i.as_ref().map(|i| i.tags.clone()),
            expires_at: i.as_ref().and_then(|i| i.expires_at.clone()),
            has_notes: i.as_ref().map(|i| i.has_notes),
            has_url: i.as_ref().map(|i| i.has_url),
        }))
    }

    #[tool(
        description = "Show a masked form of a secret to confirm which one it is: \"****\" plus its last 4 characters (only for values of 12+ characters), with tags, notes and URL. Never reveals the value or its length.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn secret_get_masked(
        &self,
        Parameters(a): Parameters<KeyArgs>,
    ) -> Result<Json<MaskedOut>, String> {
        self.ready().await;
        let r = self
            .client
            .agent()
            .masked(AgentKeyRequest { key: a.key })
            .await
            .map_err(|s| self.fail(s))?
            .into_inner();
        Ok(Json(MaskedOut {
            key: r.key,
            masked_value: r.masked_value,
            field_count: r.field_count,
            tags: r.tags,
            notes: r.notes,
            url: r.url,
        }))
    }

    #[tool(
        description = "List a secret's fields with their sensitivity, kind and hint (e.g. a database secret's host, port, username, password). Never returns values.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn secret_list_fields(
        &self,
        Parameters(a): Parameters<KeyArgs>,
    ) -> Result<Json<FieldsOut>, String> {
        self.ready().await;
        let r = self
            .client
            .agent()
            .list_fields(AgentKeyRequest { key: a.key })
            .await
            .map_err(|s| self.fail(s))?
            .into_inner();
        Ok(Json(FieldsOut {
            key: r.key,
            fields: r
                .fields
                .into_iter()
                .map(|f| FieldOut {
                    name: f.name,
                    sensitive: f.sensitive,
                    kind: some_str(&f.kind),
                    hint: some_str(&f.hint),
                    proxy_hosts: f.proxy_hosts,
                })
                .collect(),
        }))
    }

    #[tool(
        description = "Read the value of a NON-sensitive field (a username, host, port or endpoint). Asking for a sensitive field is an error: sensitive values are never returned; use secret_run to use them.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn secret_get_field(
        &self,
        Parameters(a): Parameters<FieldArgs>,
    ) -> Result<Json<GetFieldOut>, String> {
        self.ready().await;
        let r = self
            .client
            .agent()
            .get_field(AgentGetFieldRequest {
                key: a.key,
                field: a.field,
            })
            .await
            .map_err(|s| self.fail(s))?
            .into_inner();
        let mut r = r;
        Ok(Json(GetFieldOut {
            key: std::mem::take(&mut r.key),
            field: std::mem::take(&mut r.field),
            value: std::mem::take(&mut r.value),
        }))
    }

    #[tool(
        description = "Run a command allowed by the user's policy with the named secrets in its environment, and get its exit code and output. Every secret value in the output (also base64, hex, URL- or JSON-encoded) is replaced by [REDACTED:NAME]; you never see a value. Secrets are only in the environment: reference them from a shell (sh -c '... \"$API_KEY\" ...') or let the program read them, never as $NAME arguments of a non-shell program. A secret whose fields list proxy_hosts (secret_list_fields) holds a placeholder instead of its value: use it as the value in HTTPS requests to those hosts (Authorization header or query string, e.g. curl -H \"Authorization: Bearer $GITHUB_TOKEN\"); the run's HTTPS proxy puts the value in on the wire.",
        annotations(read_only_hint = false, open_world_hint = true)
    )]
    async fn secret_run(&self, Parameters(a): Parameters<RunArgs>) -> Result<Json<RunOut>, String> {
        self.ready().await;
        let req = AgentRunRequest {
            keys: a.keys,
            bindings_only: false,
            argv: argv(&a.command, &a.args)?,
            env_alias: a.env.unwrap_or_default(),
            env_prefix: a.env_prefix.unwrap_or_default(),
            timeout_ms: timeout_ms(&a.timeout)?,
            cwd: cwd(&a.cwd)?,
            env: base_env(),
        };
        self.run_request(req).await
    }

    #[tool(
        description = "Run a command allowed by the user's policy with one secret's bindings (ENV name -> field, e.g. PGPASSWORD -> password) in its environment. Output is redacted as for secret_run; you never see a value.",
        annotations(read_only_hint = false, open_world_hint = true)
    )]
    async fn secret_run_with_bindings(
        &self,
        Parameters(a): Parameters<BindingsRunArgs>,
    ) -> Result<Json<RunOut>, String> {
        self.ready().await;
        let req = AgentRunRequest {
            keys: vec![a.key],
            bindings_only: true,
            argv: argv(&a.command, &a.args)?,
            env_alias: String::new(),
            env_prefix: String::new(),
            timeout_ms: timeout_ms(&a.timeout)?,
            cwd: cwd(&a.cwd)?,
            env: base_env(),
        };
        self.run_request(req).await
    }

    #[tool(
        description = "What the user's command policy lets secret_run start: allowed and denied command entries, the default, commands always denied, env aliases (for the env argument) and the directories bare command names are looked up in. Check it before planning a run. Never returns secret values.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn secret_policy(&self) -> Result<Json<PolicyOut>, String> {
        self.ready().await;
        let r = self
            .client
            .agent()
            .policy(AgentPolicyRequest {})
            .await
            .map_err(|s| self.fail(s))?
            .into_inner();
        if !r.error.is_empty() {
            return Err(r.error);
        }
        Ok(Json(PolicyOut {
            default_action: r.default_action,
            allowed_commands: r.allowed_commands,
            denied_commands: r.denied_commands,
            always_denied: r.always_denied,
            env_aliases: r
                .env_aliases
                .into_iter()
                .map(|a| AliasOut {
                    name: a.name,
                    rules: a
                        .rules
                        .into_iter()
                        .map(|r| format!("{} -> {}", r.pattern, r.target))
                        .collect(),
                })
                .collect(),
            trusted_directories: r.trusted_directories,
        }))
    }

    #[tool(
        description = "Score the vault's hygiene (0-100): weak (short or guessable), duplicated, expired and soon-expiring (30 days) secrets, by key and field name only. Never returns values.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn security_score(&self) -> Result<Json<ScoreOut>, String> {
        self.ready().await;
        let r = self
            .client
            .agent()
            .security_score(SecurityScoreRequest {})
            .await
            .map_err(|s| self.fail(s))?
            .into_inner();
        Ok(Json(ScoreOut {
            score: r.score,
            issues: r
                .issues
                .into_iter()
                .map(|i| IssueOut {
                    kind: i.kind,
                    keys: i.keys,
                    message: i.message,
                    fields: i
                        .fields
                        .into_iter()
                        .map(|f| format!("{}:{}", f.key, f.field))
                        .collect(),
                })
                .collect(),
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SecretctlTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("secretctl", secretctl_proto::VERSION))
            .with_instructions(
                "secretctl lets you use the user's secrets without seeing them: list and inspect \
                 metadata, then run allowed commands with secrets injected as environment \
                 variables. Output comes back with every secret redacted.",
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_get_only_the_base_environment() {
        let vars = [
            ("PATH", "/bin"),
            ("LC_ALL", "C"),
            ("FOO_SHOULD_NOT_PASS", "1"),
            ("SECRETCTL_SOCKET", "/s"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("HOME", "/h"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let names: Vec<String> = base_env_of(vars.into_iter())
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, ["PATH", "LC_ALL", "HOME"]);
    }

    #[test]
    fn nine_tools_with_schemas() {
        let router = SecretctlTools::tool_router();
        let tools = router.list_all();
        let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "secret_exists",
                "secret_get_field",
                "secret_get_masked",
                "secret_list",
                "secret_list_fields",
                "secret_policy",
                "secret_run",
                "secret_run_with_bindings",
                "security_score"
            ]
        );
        for t in &tools {
            assert!(t.output_schema.is_some(), "{} has no output schema", t.name);
            assert!(
                t.description
                    .as_ref()
                    .is_some_and(|d| d.contains("never") || d.contains("Never")),
                "{}",
                t.name
            );
        }
    }
}
