//! Compiles `secretctl/v1/*.proto` with the vendored `protoc`, so a fresh
//! machine needs nothing but cargo.

/// Every message whose fields may hold a password, a value, notes or a URL
/// (or a login token: `UiResponse`).
/// Each gets a hand-written redacting `Debug` in `src/redacted.rs`.
const VALUE_BEARING: [&str; 22] = [
    ".secretctl.v1.InitRequest",
    ".secretctl.v1.UnlockRequest",
    ".secretctl.v1.ReauthRequest",
    ".secretctl.v1.FieldInput",
    ".secretctl.v1.SetRequest",
    ".secretctl.v1.GetResponse",
    ".secretctl.v1.NamedValue",
    ".secretctl.v1.MetadataResponse",
    ".secretctl.v1.EnvVar",
    ".secretctl.v1.RunStart",
    ".secretctl.v1.RunInput",
    ".secretctl.v1.RunOutput",
    ".secretctl.v1.AgentRunRequest",
    ".secretctl.v1.AgentGetFieldResponse",
    ".secretctl.v1.AgentMaskedResponse",
    ".secretctl.v1.ExportedSecret",
    ".secretctl.v1.ImportEntry",
    ".secretctl.v1.ImportChunk",
    ".secretctl.v1.BackupRequest",
    ".secretctl.v1.RestoreChunk",
    ".secretctl.v1.ChangePasswordRequest",
    ".secretctl.v1.UiResponse",
];

const PROTOS: [&str; 6] = [
    "secretctl/v1/daemon.proto",
    "secretctl/v1/vault.proto",
    "secretctl/v1/runner.proto",
    "secretctl/v1/agent.proto",
    "secretctl/v1/audit.proto",
    "secretctl/v1/transfer.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .skip_debug(VALUE_BEARING)
        .compile_with_config(config, &PROTOS, &["."])?;
    Ok(())
}
