//! Exit codes (contract §4) and the one-line error format
//! `secretctl <cmd>: <what happened>: <cause>` plus an optional hint line.

use secretctl_proto::client::RpcError;
use tonic::Code;

pub const ERROR: i32 = 1;
pub const USAGE: i32 = 2;
pub const LOCKED: i32 = 3;
pub const NOT_FOUND: i32 = 4;
pub const DENIED: i32 = 5;
pub const UNREACHABLE: i32 = 6;

/// A failure to report: message, exit code, and what to do about it.
#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub message: String,
    pub hint: Option<String>,
}

pub type Result<T> = std::result::Result<T, CliError>;

impl CliError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
            hint: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        CliError::new(USAGE, message)
    }

    pub fn error(message: impl Into<String>) -> Self {
        CliError::new(ERROR, message)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl From<RpcError> for CliError {
    fn from(e: RpcError) -> Self {
        let message = e.to_string();
        match &e {
            RpcError::Unreachable { .. } => CliError::new(UNREACHABLE, message).hint(
                "start it with 'secretctld', or unset SECRETCTL_NO_AUTOSTART so secretctl starts it",
            ),
            RpcError::Refused { .. } => CliError::new(UNREACHABLE, message)
                .hint("the daemon only serves its own uid: run secretctl as the user who started it"),
            RpcError::Status(s) => {
                let code = match s.code() {
                    _ if e.is_locked() => LOCKED,
                    Code::NotFound => NOT_FOUND,
                    Code::PermissionDenied => DENIED,
                    Code::InvalidArgument => USAGE,
                    _ => ERROR,
                };
                let err = CliError::new(code, message);
                match s.code() {
                    // The locked message already names the fix.
                    _ if e.is_locked() => err,
                    Code::FailedPrecondition if s.message().contains("not initialized") => {
                        err.hint("run 'secretctl init'")
                    }
                    Code::Unimplemented => err.hint(
                        "the running secretctld is older than this secretctl: restart it ('secretctl lock' then stop secretctld)",
                    ),
                    _ => err,
                }
            }
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::error(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn status(code: Code, msg: &str) -> i32 {
        CliError::from(RpcError::Status(tonic::Status::new(code, msg))).code
    }

    #[test]
    fn maps_codes() {
        assert_eq!(
            status(Code::FailedPrecondition, secretctl_proto::LOCKED_MESSAGE),
            LOCKED
        );
        assert_eq!(
            status(
                Code::FailedPrecondition,
                "vault is not initialized: run 'secretctl init'"
            ),
            ERROR
        );
        assert_eq!(status(Code::NotFound, "no secret"), NOT_FOUND);
        assert_eq!(status(Code::PermissionDenied, "policy"), DENIED);
        assert_eq!(status(Code::InvalidArgument, "bad"), USAGE);
        assert_eq!(status(Code::Unauthenticated, "wrong password"), ERROR);
        let unreachable = RpcError::Unreachable {
            path: PathBuf::from("/x"),
            reason: "nope".into(),
        };
        assert_eq!(CliError::from(unreachable).code, UNREACHABLE);
        assert_eq!(
            CliError::from(RpcError::Refused {
                path: PathBuf::from("/x")
            })
            .code,
            UNREACHABLE
        );
        let locked = CliError::from(RpcError::Status(tonic::Status::failed_precondition(
            secretctl_proto::LOCKED_MESSAGE,
        )));
        assert!(locked.message.contains("run 'secretctl unlock'"));
    }
}
