//! Logging in to the web UI: one-time login tokens and browser sessions.
//!
//! - `secretctl ui` gets a **login token** (32 random bytes, hex) that
//!   works once, within [`TOKEN_TTL`]; the URL carries it in its fragment,
//!   which browsers never send to a server, and the login page's script
//!   posts it once and removes it from the address bar.
//! - Redeeming it opens a **session**: a random id in an HttpOnly,
//!   SameSite=Strict cookie, and a CSRF token that every state-changing
//!   request must echo. A session ends after `ui.session_timeout` without a
//!   request, at logout, or when the UI stops.
//!
//! Invariants: only SHA-256 hashes of tokens and session ids are kept, so a
//! memory read of the table does not yield a usable credential; a token is
//! removed when it is presented, whether it was still valid or not;
//! comparisons of the CSRF token take the same time whatever the input.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::caller::{Caller, Conn};

/// How long an unused login token stays valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(120);
/// Most login tokens outstanding at once (older ones are dropped).
const MAX_TOKENS: usize = 16;
/// Most sessions at once (the longest idle is dropped).
const MAX_SESSIONS: usize = 64;

type Hash = [u8; 32];

fn hash(s: &str) -> Hash {
    Sha256::digest(s.as_bytes()).into()
}

/// 32 random bytes as 64 hex characters.
pub fn random_token() -> Result<Zeroizing<String>, getrandom::Error> {
    let mut b = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *b)?;
    let mut s = Zeroizing::new(String::with_capacity(64));
    for byte in b.iter() {
        s.push(char::from_digit(u32::from(byte >> 4), 16).expect("a nibble"));
        s.push(char::from_digit(u32::from(byte & 15), 16).expect("a nibble"));
    }
    Ok(s)
}

/// Equal, in a time that depends only on the lengths.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new session: its id (for the cookie) and the session.
pub type Opened = (Zeroizing<String>, Arc<UiSession>);

/// One signed-in browser.
pub struct UiSession {
    /// Echoed by every state-changing request (form field or header).
    pub csrf: Zeroizing<String>,
    /// Who the services see: a user caller whose records say `source: "ui"`.
    pub conn: Arc<Conn>,
    last_seen: Mutex<Instant>,
}

impl UiSession {
    /// How long until the session ends if nothing happens (zero: ended).
    pub fn idle_left(&self, timeout: Duration) -> Duration {
        timeout.saturating_sub(self.last_seen.lock().expect("never poisoned").elapsed())
    }

    /// Whether `given` is this session's CSRF token.
    pub fn csrf_ok(&self, given: &str) -> bool {
        same(self.csrf.as_bytes(), given.as_bytes())
    }
}

/// Login tokens and sessions of one UI server.
pub struct Auth {
    tokens: Mutex<HashMap<Hash, Instant>>,
    sessions: Mutex<HashMap<Hash, Arc<UiSession>>>,
    session_timeout: Duration,
    uid: u32,
}

impl Auth {
    pub fn new(session_timeout: Duration, uid: u32) -> Auth {
        Auth {
            tokens: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            session_timeout,
            uid,
        }
    }

    /// A new one-time login token.
    pub fn mint(&self) -> Result<Zeroizing<String>, getrandom::Error> {
        let token = random_token()?;
        let now = Instant::now();
        let mut t = self
            .tokens
            .lock()
            .expect("no code panics holding the tokens");
        t.retain(|_, expires| *expires > now);
        while t.len() >= MAX_TOKENS {
            let oldest = *t.iter().min_by_key(|(_, e)| **e).expect("not empty").0;
            t.remove(&oldest);
        }
        t.insert(hash(&token), now + TOKEN_TTL);
        Ok(token)
    }

    /// Trades a login token for a session: `(session id, session)`. The
    /// token is gone afterwards, whatever the outcome.
    pub fn redeem(&self, token: &str) -> Result<Option<Opened>, getrandom::Error> {
        let valid = self
            .tokens
            .lock()
            .expect("no code panics holding the tokens")
            .remove(&hash(token))
            .is_some_and(|expires| expires > Instant::now());
        if !valid {
            return Ok(None);
        }
        let id = random_token()?;
        let peer = crate::audit::record::Peer {
            pid: None,
            uid: self.uid,
            exe: None,
        };
        let caller = Caller::user(
            "the web UI, signed in with a login link from 'secretctl ui' (a user caller)".into(),
        );
        let s = Arc::new(UiSession {
            csrf: random_token()?,
            conn: Arc::new(Conn::new(peer, caller).with_source("ui")),
            last_seen: Mutex::new(Instant::now()),
        });
        let mut all = self
            .sessions
            .lock()
            .expect("no code panics holding the sessions");
        self.expire(&mut all);
        while all.len() >= MAX_SESSIONS {
            let idlest = *all
                .iter()
                .min_by_key(|(_, s)| *s.last_seen.lock().expect("never poisoned"))
                .expect("not empty")
                .0;
            all.remove(&idlest);
        }
        all.insert(hash(&id), s.clone());
        Ok(Some((id, s)))
    }

    fn expire(&self, all: &mut HashMap<Hash, Arc<UiSession>>) {
        let now = Instant::now();
        all.retain(|_, s| {
            now.duration_since(*s.last_seen.lock().expect("never poisoned")) < self.session_timeout
        });
    }

    /// The live session with this id, its idle clock reset; `None` for an
    /// unknown or expired one (which is then forgotten).
    pub fn session(&self, id: &str) -> Option<Arc<UiSession>> {
        let mut all = self
            .sessions
            .lock()
            .expect("no code panics holding the sessions");
        let key = hash(id);
        let s = all.get(&key)?.clone();
        let mut seen = s.last_seen.lock().expect("never poisoned");
        if seen.elapsed() >= self.session_timeout {
            drop(seen);
            all.remove(&key);
            return None;
        }
        *seen = Instant::now();
        drop(seen);
        Some(s)
    }

    /// The live session with this id, its idle clock left as it is (the
    /// session page's countdown, and tests, watch it run out); `None` for an
    /// unknown or expired one (which is then forgotten).
    pub fn peek(&self, id: &str) -> Option<Arc<UiSession>> {
        let mut all = self
            .sessions
            .lock()
            .expect("no code panics holding the sessions");
        let key = hash(id);
        let s = all.get(&key)?.clone();
        if s.idle_left(self.session_timeout).is_zero() {
            all.remove(&key);
            return None;
        }
        Some(s)
    }

    /// Ends the session with this id (logout).
    pub fn end(&self, id: &str) {
        self.sessions
            .lock()
            .expect("no code panics holding the sessions")
            .remove(&hash(id));
    }

    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_works_once() {
        let a = Auth::new(Duration::from_secs(60), 1000);
        let t = a.mint().unwrap();
        assert_eq!(t.len(), 64);
        let (id, s) = a.redeem(&t).unwrap().expect("first use");
        assert!(a.redeem(&t).unwrap().is_none(), "second use");
        assert!(a.redeem("nope").unwrap().is_none());
        let found = a.session(&id).expect("live");
        assert!(Arc::ptr_eq(&found, &s));
        assert!(s.csrf_ok(&s.csrf.clone()));
        assert!(!s.csrf_ok("x"));
        assert_eq!(s.conn.event("list", "cli").source, "ui");
        a.end(&id);
        assert!(a.session(&id).is_none());
    }

    #[test]
    fn sessions_expire_when_idle() {
        let a = Auth::new(Duration::from_millis(1), 1000);
        let t = a.mint().unwrap();
        let (id, _) = a.redeem(&t).unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(5)); // past the timeout
        assert!(a.session(&id).is_none());
    }

    #[test]
    fn peeking_does_not_keep_a_session_alive() {
        let a = Auth::new(Duration::from_secs(60), 1000);
        let (id, s) = a.redeem(&a.mint().unwrap()).unwrap().unwrap();
        *s.last_seen.lock().unwrap() -= Duration::from_secs(30);
        let left = a.peek(&id).unwrap().idle_left(a.session_timeout());
        assert!(left <= Duration::from_secs(30), "{left:?}");
        let again = a.peek(&id).unwrap().idle_left(a.session_timeout());
        assert!(again <= left, "a peek reset the clock");
        a.session(&id).unwrap();
        assert!(s.idle_left(a.session_timeout()) > Duration::from_secs(59));
        *s.last_seen.lock().unwrap() -= Duration::from_secs(61);
        assert!(a.peek(&id).is_none());
        assert!(a.session(&id).is_none(), "an expired session is forgotten");
    }

    #[test]
    fn tokens_are_capped() {
        let a = Auth::new(Duration::from_secs(60), 1000);
        let first = a.mint().unwrap();
        for _ in 0..MAX_TOKENS {
            a.mint().unwrap();
        }
        assert!(
            a.redeem(&first).unwrap().is_none(),
            "the oldest was dropped"
        );
    }

    #[test]
    fn same_compares_whole_strings() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }
}
