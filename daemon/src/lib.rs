//! `secretctld`: the only process that holds the vault key.
#![deny(unsafe_code)]

pub mod activation;
pub mod agent;
pub mod applied;
pub mod archive;
pub mod audit;
pub mod caller;
pub mod config;
pub mod conns;
pub mod crypto;
pub mod error;
#[allow(unsafe_code)]
pub mod hardening;
pub mod keyring;
pub mod policy;
pub mod private_file;
pub mod proxy;
pub mod redact;
pub mod restore;
pub mod runner;
pub mod secret;
pub mod security;
pub mod server;
pub mod service;
pub mod session;
pub mod store;
pub mod ui;
pub mod vault;
pub mod yaml_guard;
