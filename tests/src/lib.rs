//! End-to-end tests for secretctl live in `tests/`: they start the real
//! `secretctld` binary on a temp socket with a temp `SECRETCTL_HOME` and
//! drive it with the real `secretctl` CLI. Each test process builds the
//! binaries it runs first, so `cargo test --workspace` is enough.
#![forbid(unsafe_code)]
