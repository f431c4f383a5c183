//! Exit codes (contract §4) and how a failure is reported.
//!
//! Commands return `anyhow::Result` and add `.context()` saying what they
//! were doing, so the report reads `secretctl <cmd>: <what happened>:
//! <cause>`. The exit code and the hint line are recovered from the error
//! chain: the outermost [`CliError`] (a decision made here: usage errors,
//! refusals, a daemon that would not start) or [`RpcError`] (what the daemon
//! answered, or that it could not be reached) decides.

use std::fmt;

use secretctl_proto::client::RpcError;
use tonic::Code;

pub const ERROR: i32 = 1;
pub const USAGE: i32 = 2;
pub const LOCKED: i32 = 3;
pub const NOT_FOUND: i32 = 4;
pub const DENIED: i32 = 5;
pub const UNREACHABLE: i32 = 6;

/// Every command's result.
pub type Result<T> = anyhow::Result<T>;

/// A failure decided in this process, with the exit code it means and what
/// the user can do about it.
#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub message: String,
    pub hint: Option<String>,
}

impl CliError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// Bad input: exit 2.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::new(USAGE, message)
    }

    /// Anything else that went wrong: exit 1.
    pub fn error(message: impl Into<String>) -> Self {
        CliError::new(ERROR, message)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// The exit code for an RPC failure.
fn rpc_code(e: &RpcError) -> i32 {
    match e {
        RpcError::Unreachable { .. } | RpcError::Refused { .. } => UNREACHABLE,
        _ if e.is_locked() => LOCKED,
        RpcError::Status(s) => match s.code() {
            Code::NotFound => NOT_FOUND,
            Code::PermissionDenied => DENIED,
            Code::InvalidArgument => USAGE,
            // Not initialized, wrong password, unlock backoff, integrity
            // failures and the rest: a plain error.
            _ => ERROR,
        },
    }
}

/// What to do about an RPC failure, where there is something to do.
fn rpc_hint(e: &RpcError) -> Option<&'static str> {
    match e {
        RpcError::Unreachable { .. } => {
            Some("start it with 'secretctld' or unset SECRETCTL_NO_AUTOSTART")
        }
        RpcError::Refused { .. } => Some(
            "secretctld serves only the user who started it: run secretctl as that user, or set SECRETCTL_SOCKET to your own daemon's socket",
        ),
        _ if e.is_locked() => Some("run 'secretctl unlock'"),
        RpcError::Status(s) => match s.code() {
            Code::FailedPrecondition if s.message().contains("not initialized") => {
                Some("run 'secretctl init'")
            }
            Code::ResourceExhausted => Some("wait a moment before trying again"),
            Code::Unimplemented => Some(
                "the running secretctld is older than this secretctl: restart it ('secretctl lock', then stop secretctld)",
            ),
            _ => None,
        },
    }
}

/// The exit code `err` means: decided by the outermost [`CliError`] or
/// [`RpcError`] in its chain; 1 when there is neither (I/O and the like).
/// Both must be errors in the chain, not `.context()` values: a context
/// layer is not downcastable through `chain()`.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(c) = cause.downcast_ref::<CliError>() {
            return c.code;
        }
        if let Some(r) = cause.downcast_ref::<RpcError>() {
            return rpc_code(r);
        }
    }
    ERROR
}

/// The hint line for `err`, from the same error that decides its code.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    for cause in err.chain() {
        if let Some(c) = cause.downcast_ref::<CliError>() {
            return c.hint.clone();
        }
        if let Some(r) = cause.downcast_ref::<RpcError>() {
            return rpc_hint(r).map(str::to_string);
        }
    }
    None
}

/// True when stdout went away (`secretctl list | head -1`): not worth a
/// message, the reader already has what it wanted.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The daemon's refusal of an agent's request (contract §9), if that is
/// what `err` is: it names the reason and the way out by itself.
fn agent_refusal(err: &anyhow::Error) -> Option<&str> {
    err.chain()
        .find_map(|c| match c.downcast_ref::<RpcError>() {
            Some(RpcError::Status(s))
                if s.code() == Code::PermissionDenied
                    && s.metadata().contains_key(secretctl_proto::REAUTH_METADATA) =>
            {
                Some(s.message())
            }
            _ => None,
        })
}

/// Prints the error lines for command `cmd` to stderr; returns the exit code.
pub fn report(cmd: &str, err: &anyhow::Error) -> i32 {
    if let Some(refusal) = agent_refusal(err) {
        eprintln!("secretctl {cmd}: {refusal}");
        return DENIED;
    }
    if !is_broken_pipe(err) {
        // `{:#}` joins the context chain with ": ", outermost first.
        eprintln!("secretctl {cmd}: {err:#}");
        if let Some(h) = hint(err) {
            eprintln!("hint: {h}");
        }
    }
    exit_code(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;
    use std::path::PathBuf;

    fn status(code: Code, msg: &str) -> anyhow::Error {
        anyhow::Error::from(RpcError::Status(tonic::Status::new(code, msg)))
            .context("cannot do the thing")
    }

    #[test]
    fn maps_status_codes() {
        let locked = status(Code::FailedPrecondition, secretctl_proto::LOCKED_MESSAGE);
        assert_eq!(exit_code(&locked), LOCKED);
        assert_eq!(hint(&locked).as_deref(), Some("run 'secretctl unlock'"));
        assert_eq!(
            format!("{locked:#}"),
            "cannot do the thing: vault is locked: run 'secretctl unlock'"
        );

        let uninit = status(
            Code::FailedPrecondition,
            "vault is not initialized: run 'secretctl init'",
        );
        assert_eq!(exit_code(&uninit), ERROR);
        assert_eq!(hint(&uninit).as_deref(), Some("run 'secretctl init'"));

        for (code, want) in [
            (Code::NotFound, NOT_FOUND),
            (Code::PermissionDenied, DENIED),
            (Code::InvalidArgument, USAGE),
            (Code::Unauthenticated, ERROR),
            (Code::ResourceExhausted, ERROR),
            (Code::AlreadyExists, ERROR),
            (Code::DataLoss, ERROR),
            (Code::Internal, ERROR),
        ] {
            assert_eq!(exit_code(&status(code, "x")), want, "{code:?}");
        }
    }

    #[test]
    fn maps_connection_failures() {
        let unreachable = anyhow::Error::from(RpcError::Unreachable {
            path: PathBuf::from("/x"),
            reason: "nope".into(),
        });
        assert_eq!(exit_code(&unreachable), UNREACHABLE);
        assert!(
            hint(&unreachable)
                .unwrap()
                .contains("SECRETCTL_NO_AUTOSTART")
        );
        let refused = anyhow::Error::from(RpcError::Refused {
            path: PathBuf::from("/x"),
        })
        .context("cannot reach secretctld");
        assert_eq!(exit_code(&refused), UNREACHABLE);
    }

    #[test]
    fn local_errors_keep_code_and_hint_through_context() {
        let e: anyhow::Error = Err::<(), _>(CliError::usage("bad").hint("do this"))
            .context("outer")
            .unwrap_err();
        assert_eq!(exit_code(&e), USAGE);
        assert_eq!(hint(&e).as_deref(), Some("do this"));
        assert_eq!(format!("{e:#}"), "outer: bad");
    }

    #[test]
    fn other_errors_are_1() {
        let io = anyhow::Error::from(std::io::Error::other("disk on fire"));
        assert_eq!(exit_code(&io), ERROR);
        assert_eq!(hint(&io), None);
        let pipe = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&pipe.context("cannot write")));
    }
}
