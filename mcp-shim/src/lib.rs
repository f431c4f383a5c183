//! The pure parts of `secretctl-mcp`, as a library so that they can be
//! fuzzed and tested on their own: splitting a command line
//! ([`split`], which lives in `secretctl-proto` because the daemon's web
//! UI splits the same way) and the tools' arguments ([`args`]). The binary
//! (`main.rs`, `tools.rs`) is the MCP server around them.
#![forbid(unsafe_code)]

pub mod args;
pub use secretctl_proto::split;
