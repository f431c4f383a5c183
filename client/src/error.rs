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

/// The exit code for an RPC failure: 6 whenever the daemon did not answer.
fn rpc_code(e: &RpcError) -> i32 {
    match e {
        _ if e.is_connection() => UNREACHABLE,
        _ if e.is_locked() => LOCKED,
        RpcError::Status(s) => match s.code() {
            Code::NotFound => NOT_FOUND,
            Code::PermissionDenied => DENIED,
            Code::InvalidArgument => USAGE,
            // Not initialized, wrong password, unlock backoff, integrity
            // failures and the rest: a plain error.
            _ => ERROR,
        },
        _ => UNREACHABLE,
    }
}

/// Where an autostarted daemon's log is, for hints.
fn log_hint() -> String {
    match secretctl_proto::paths::home_dir() {
        Ok(h) => h
            .join(secretctl_proto::paths::DAEMON_LOG_FILE)
            .display()
            .to_string(),
        Err(_) => "secretctld's log".into(),
    }
}

/// What to do about an RPC failure, where there is something to do.
fn rpc_hint(e: &RpcError) -> Option<String> {
    let s = |h: &str| Some(h.to_string());
    match e {
        RpcError::Unreachable { .. } => {
            s("start it with 'secretctld' or unset SECRETCTL_NO_AUTOSTART")
        }
        RpcError::NotYours { .. } => s(
            "set SECRETCTL_SOCKET to your own daemon's socket, in a directory only you can write (the default is $XDG_RUNTIME_DIR/secretctl/secretctld.sock)",
        ),
        RpcError::Timeout {
            pid: Some(p),
            stopped: true,
            ..
        } => Some(format!("resume it with 'kill -CONT {p}'")),
        RpcError::Timeout { pid: Some(p), .. } => Some(format!(
            "see {}; 'kill {p}' stops it (it locks the vault first)",
            log_hint()
        )),
        RpcError::Timeout { pid: None, .. } => Some(format!(
            "if it is stopped, resume it with kill -CONT; see {}",
            log_hint()
        )),
        RpcError::Exited { .. } => Some(format!(
            "run the command again to start a new one; see {} for why it ended",
            log_hint()
        )),
        RpcError::ShuttingDown { .. } => s("run the command again in a moment"),
        RpcError::Refused { .. } => Some(format!("try again; see {}", log_hint())),
        // The message itself says "run 'secretctl unlock'".
        _ if e.is_locked() => None,
        RpcError::Status(st) => match st.code() {
            Code::FailedPrecondition if st.message().contains("not initialized") => {
                s("run 'secretctl init'")
            }
            Code::ResourceExhausted => s("wait a moment before trying again"),
            Code::Unimplemented => s(
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
            return rpc_hint(r);
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

/// Longest error line printed; the rest is cut (a daemon message may echo
/// a long input).
const MAX_LINE: usize = 2000;

/// Prints the error lines for command `cmd` to stderr; returns the exit
/// code. Control characters in messages (which may echo input) are
/// escaped, long ones cut, and a closed stderr is not a panic.
pub fn report(cmd: &str, err: &anyhow::Error) -> i32 {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    if let Some(refusal) = agent_refusal(err) {
        let _ = writeln!(
            stderr,
            "secretctl {cmd}: {}",
            secretctl_proto::text::one_line(refusal, MAX_LINE)
        );
        return DENIED;
    }
    if !is_broken_pipe(err) {
        // `{:#}` joins the context chain with ": ", outermost first.
        let line = secretctl_proto::text::one_line(&format!("{err:#}"), MAX_LINE);
        let _ = writeln!(stderr, "secretctl {cmd}: {line}");
        if let Some(h) = hint(err) {
            let _ = writeln!(
                stderr,
                "hint: {}",
                secretctl_proto::text::one_line(&h, MAX_LINE)
            );
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
        assert_eq!(hint(&locked), None, "the message already names the fix");
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
            pid: Some(7),
        })
        .context("cannot reach secretctld");
        assert_eq!(exit_code(&refused), UNREACHABLE);
        let stopped = anyhow::Error::from(RpcError::Timeout {
            path: PathBuf::from("/x"),
            after: std::time::Duration::from_secs(20),
            pid: Some(42),
            stopped: true,
        });
        assert_eq!(exit_code(&stopped), UNREACHABLE);
        assert_eq!(
            hint(&stopped).as_deref(),
            Some("resume it with 'kill -CONT 42'")
        );
        assert!(stopped.to_string().contains("is stopped"), "{stopped}");
        for e in [
            RpcError::NotYours {
                path: PathBuf::from("/x"),
                problem: "p".into(),
            },
            RpcError::Exited {
                path: PathBuf::from("/x"),
                pid: Some(1),
            },
            RpcError::ShuttingDown {
                path: PathBuf::from("/x"),
                pid: Some(1),
            },
        ] {
            let e = anyhow::Error::from(e);
            assert_eq!(exit_code(&e), UNREACHABLE, "{e}");
            assert!(hint(&e).is_some(), "{e}");
        }
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
