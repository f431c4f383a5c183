//! Who is calling: the user, or an AI agent in the user's shell (contract
//! §9). The trust decision lives here and only here:
//!
//! - [`classify::Classifier`] turns a connection's peer pid into a
//!   [`Caller`] once, when the connection is accepted ([`conn`]);
//! - [`may`] is the one function every service asks before doing an
//!   action; no service re-implements the rule.
//!
//! | module | role |
//! |---|---|
//! | `procfs` | reading `/proc` (parent, start time, uid, environment markers) |
//! | `classify` | the ancestry walk and its rules |
//! | `registry` | shims, agent hosts and run supervisors the daemon knows of |
//! | `conn` | the per-connection stream that carries the [`Conn`] to requests |
//!
//! Invariant: an agent caller never gets a value or changes the vault
//! unless its connection re-authenticated with the master password.

pub mod classify;
pub mod conn;
pub mod procfs;
pub mod registry;

use std::sync::atomic::{AtomicBool, Ordering};

use crate::audit::record::{Peer, Record};

/// A process identity: a pid and its start time, so a reused pid never
/// matches an old entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Identity {
    pub pid: i32,
    /// Clock ticks after boot (`/proc/PID/stat` field 22).
    pub start: u64,
}

/// The two kinds of caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    User,
    Agent,
}

impl Class {
    /// As written in audit records and status (`user` / `agent`).
    pub fn as_str(self) -> &'static str {
        match self {
            Class::User => "user",
            Class::Agent => "agent",
        }
    }
}

/// How the daemon classified a caller, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub class: Class,
    /// A phrase that completes "refused: ...", naming the rule and process.
    pub reason: String,
}

impl Caller {
    pub fn user(reason: String) -> Caller {
        Caller {
            class: Class::User,
            reason,
        }
    }

    pub fn agent(reason: String) -> Caller {
        Caller {
            class: Class::Agent,
            reason,
        }
    }

    pub fn is_agent(&self) -> bool {
        self.class == Class::Agent
    }
}

/// One connection: who is at the other end, decided at accept.
#[derive(Debug)]
pub struct Conn {
    pub peer: Peer,
    pub caller: Caller,
    /// Set once the connection proved a human is present (the master
    /// password, typed on a terminal): gated actions are then allowed.
    reauthenticated: AtomicBool,
    /// Written as the `source` of every record of this connection,
    /// whatever service it calls: `"ui"` for the web UI's sessions, which
    /// call the same services as the CLI (contract §11).
    source: Option<&'static str>,
}

impl Conn {
    pub fn new(peer: Peer, caller: Caller) -> Conn {
        Conn {
            peer,
            caller,
            reauthenticated: AtomicBool::new(false),
            source: None,
        }
    }

    /// A connection whose records all say `source` (the web UI: `"ui"`).
    pub fn with_source(mut self, source: &'static str) -> Conn {
        self.source = Some(source);
        self
    }

    /// Marks this connection as re-authenticated.
    pub fn reauthenticated(&self) {
        self.reauthenticated.store(true, Ordering::SeqCst);
    }

    pub fn is_reauthenticated(&self) -> bool {
        self.reauthenticated.load(Ordering::SeqCst)
    }

    /// A new audit record for `action` by this connection's caller. The
    /// MCP shim's calls (`source: "mcp"`) are agent calls by definition.
    pub fn event(&self, action: &str, source: &str) -> Record {
        let source = self.source.unwrap_or(source);
        let mut rec = crate::audit::event(action, source, self.peer.clone());
        let agent = self.caller.is_agent() || source == "mcp";
        rec.caller = Some(
            if agent { Class::Agent } else { Class::User }
                .as_str()
                .into(),
        );
        if self.caller.is_agent() {
            let detail = rec.detail.get_or_insert_with(|| serde_json::json!({}));
            detail["caller_reason"] = serde_json::json!(self.caller.reason);
            if self.is_reauthenticated() {
                detail["reauthenticated"] = serde_json::json!(true);
            }
        }
        rec
    }
}

/// What a request wants to do, as far as the caller rule cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Status, list, metadata, lock, unlock, audit list/verify, policy
    /// check, MCP calls: allowed to everyone.
    Look,
    /// A value or field leaves the daemon (`get`, `export`, `backup`, `ui`).
    Reveal,
    /// The vault or its settings change (`set`, `delete`, `init`, `import`,
    /// `restore`, `password change`, `audit prune`, `policy apply`, `config
    /// apply`).
    Change,
}

/// Why an action was refused; carries whether re-authentication can lift
/// the refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refused: {reason}; run it in your own terminal, or enter the master password when asked on a terminal"
)]
pub struct Refusal {
    pub reason: String,
}

/// The one rule: may this connection do `action`?
pub fn may(conn: &Conn, action: Action) -> Result<(), Refusal> {
    match action {
        Action::Look => Ok(()),
        Action::Reveal | Action::Change if conn.caller.is_agent() && !conn.is_reauthenticated() => {
            Err(Refusal {
                reason: conn.caller.reason.clone(),
            })
        }
        Action::Reveal | Action::Change => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(class: Class) -> Conn {
        let peer = Peer {
            pid: Some(1),
            uid: 0,
            exe: None,
        };
        let caller = Caller {
            class,
            reason: "this process descends from an AI agent (pid 9 'claude' started secretctl-mcp)"
                .into(),
        };
        Conn::new(peer, caller)
    }

    #[test]
    fn agents_may_look_but_not_reveal_or_change_until_reauthenticated() {
        let user = conn(Class::User);
        let agent = conn(Class::Agent);
        for a in [Action::Look, Action::Reveal, Action::Change] {
            assert!(may(&user, a).is_ok(), "{a:?}");
        }
        assert!(may(&agent, Action::Look).is_ok());
        let e = may(&agent, Action::Reveal).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("refused: this process descends from an AI agent (pid 9")
        );
        assert!(e.to_string().contains("enter the master password"));
        assert!(may(&agent, Action::Change).is_err());
        agent.reauthenticated();
        assert!(may(&agent, Action::Reveal).is_ok());
        assert!(may(&agent, Action::Change).is_ok());
    }

    #[test]
    fn audit_records_name_the_caller_class_and_why() {
        let user = conn(Class::User);
        let rec = user.event("get", "cli");
        assert_eq!(rec.caller.as_deref(), Some("user"));
        assert_eq!(rec.detail, None);
        // The shim's calls are agent calls whoever the connection is.
        assert_eq!(user.event("run", "mcp").caller.as_deref(), Some("agent"));

        let agent = conn(Class::Agent);
        let rec = agent.event("get", "cli");
        assert_eq!(rec.caller.as_deref(), Some("agent"));
        assert_eq!(
            rec.detail,
            Some(serde_json::json!({ "caller_reason": agent.caller.reason }))
        );
        agent.reauthenticated();
        let rec = agent.event("get", "cli");
        assert_eq!(
            rec.detail,
            Some(serde_json::json!({
                "caller_reason": agent.caller.reason,
                "reauthenticated": true,
            }))
        );
    }

    #[test]
    fn a_ui_connection_records_its_source_whatever_service_it_calls() {
        let ui = conn(Class::User).with_source("ui");
        let rec = ui.event("set", "cli");
        assert_eq!(rec.source, "ui");
        assert_eq!(rec.caller.as_deref(), Some("user"));
    }
}
