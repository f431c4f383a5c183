//! End-to-end tests for secretctl live in `tests/`: they start the real
//! `secretctld` binary on a temp socket with a temp `SECRETCTL_HOME` and
//! drive it with the real `secretctl` CLI. Build the binaries first:
//! `cargo build --workspace && cargo test --workspace`.
#![forbid(unsafe_code)]
