//! Records written while the vault is locked, before they can be sealed
//! into the chain (there is no audit key while locked).
//!
//! They are not left unauthenticated: each pending record carries a link
//! `pmac` chaining it to the one before. The link is an HMAC with the
//! *pending key* (derived from the data key, and kept by the daemon after a
//! lock, so it exists whenever the vault was unlocked since the daemon
//! started; `pauth: "key"`), or, in a daemon that was never unlocked, a
//! plain SHA-256 link (`pauth: "hash"`). After every append the chain's
//! count and head are committed to the vault. At the next unlock the chain
//! is checked link by link and against that head: a dropped, altered or
//! forged record is found and recorded, and only the records before the
//! first bad one are sealed.
//!
//! What a cold-started, never-unlocked daemon cannot do: key its links.
//! Dropping records is still found (the head in the vault no longer
//! matches) unless the vault file itself is edited to match; a forged
//! record could be given a valid hash link.

use hmac::{KeyInit, Mac};
use sha2::Digest;
use zeroize::Zeroizing;

use super::files::Line;
use super::record::{AuditKey, Record, hex, unhex};
use crate::keyring::DataKey;
use crate::store::PendingAnchor;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The key of the pending chain: derived from the data key, kept while
/// locked. It can only link pending records; it decrypts nothing.
pub struct PendingKey(Zeroizing<[u8; 32]>);

impl PendingKey {
    pub fn derive(dk: &DataKey) -> PendingKey {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"secretctl-audit"), dk.expose_secret());
        let mut out = Zeroizing::new([0u8; 32]);
        hk.expand(b"secretctl audit pending v1", out.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        PendingKey(out)
    }
}

/// The link of `rec` after `prev`: keyed when `key` is given.
pub fn link(key: Option<&PendingKey>, prev: &[u8], rec: &Record) -> ([u8; 32], &'static str) {
    let body = rec.canonical();
    match key {
        Some(k) => {
            let mut m = <HmacSha256 as KeyInit>::new_from_slice(k.0.as_ref())
                .expect("HMAC takes any key length");
            m.update(b"secretctl audit pending link");
            m.update(prev);
            m.update(&body);
            (m.finalize().into_bytes().into(), "key")
        }
        None => {
            let mut h = sha2::Sha256::new();
            h.update(b"secretctl audit pending hash");
            h.update(prev);
            h.update(&body);
            (h.finalize().into(), "hash")
        }
    }
}

/// The running state of the pending chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    pub count: u64,
    pub head: Vec<u8>,
}

impl Chain {
    /// Links `rec` (marking it unsealed) and advances the chain.
    pub fn append(&mut self, key: Option<&PendingKey>, rec: &mut Record) {
        rec.sealed = Some(false);
        rec.pmac = None;
        rec.pauth = None;
        let (mac, auth) = link(key, &self.head, rec);
        rec.pmac = Some(hex(&mac));
        rec.pauth = Some(auth.into());
        self.count += 1;
        self.head = mac.to_vec();
    }

    pub fn anchor(&self) -> PendingAnchor {
        PendingAnchor {
            count: self.count,
            head: self.head.clone(),
        }
    }
}

/// What the pending file holds, checked.
#[derive(Debug)]
pub struct Checked {
    /// The records that verified, in order (their pending fields removed).
    pub good: Vec<Record>,
    /// Why the rest cannot be trusted, if anything is wrong.
    pub problem: Option<String>,
    /// The chain over every line as written (to continue appending).
    pub chain: Chain,
}

/// Checks the pending lines. `key`: the pending key (none in a daemon never
/// unlocked: then keyed links cannot be checked and are taken as they are,
/// for continuing the chain only). `anchor`: the head the vault holds, or
/// `None` to skip that comparison.
pub fn check(
    lines: Vec<Line>,
    key: Option<&PendingKey>,
    anchor: Option<&PendingAnchor>,
) -> Checked {
    let mut chain = Chain::default();
    let mut good = Vec::new();
    let mut problem: Option<String> = None;
    for l in lines {
        let place = format!("{} line {}", l.file, l.line);
        let mut rec = match l.parsed {
            Ok(r) => r,
            Err(e) => {
                problem.get_or_insert(format!("{place}: not a valid record ({e})"));
                continue;
            }
        };
        let claimed = rec.pmac.as_deref().and_then(unhex);
        let auth = rec.pauth.clone().unwrap_or_default();
        let expected = match (auth.as_str(), key) {
            ("hash", _) => Some(link(None, &chain.head, &rec).0),
            ("key", Some(k)) => Some(link(Some(k), &chain.head, &rec).0),
            // Keyed, but no key to check it with: continue the chain only.
            ("key", None) => claimed
                .as_deref()
                .and_then(|c| <[u8; 32]>::try_from(c).ok()),
            _ => None,
        };
        match (claimed, expected) {
            (Some(c), Some(e)) if c == e => {
                chain.count += 1;
                chain.head = c;
                if problem.is_none() {
                    rec.pmac = None;
                    rec.pauth = None;
                    rec.sealed = None;
                    good.push(rec);
                }
            }
            _ => {
                problem.get_or_insert(format!(
                    "{place}: its link does not match: a record written while locked was altered, inserted or forged"
                ));
                // Keep the chain going over what is there, so later appends
                // continue from the file's end.
                if let Some(c) = rec.pmac.as_deref().and_then(unhex) {
                    chain.count += 1;
                    chain.head = c;
                }
            }
        }
    }
    if problem.is_none()
        && let Some(a) = anchor
        && (a.count != chain.count || a.head != chain.head)
    {
        problem = Some(format!(
            "the vault expects {} records written while locked, the pending file holds {}{}: records were removed or replaced",
            a.count,
            chain.count,
            if a.count == chain.count {
                " with another head"
            } else {
                ""
            }
        ));
    }
    Checked {
        good,
        problem,
        chain,
    }
}

/// The key an unlocked writer seals with, and the pending key it keeps.
pub fn keys(dk: &DataKey) -> (AuditKey, PendingKey) {
    (AuditKey::derive(dk), PendingKey::derive(dk))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::files::Files;

    fn rec(action: &str) -> Record {
        crate::audit::event(action, "cli", crate::audit::daemon_peer())
    }

    fn written(f: &Files, chain: &mut Chain, key: Option<&PendingKey>, actions: &[&str]) {
        let mut batch: Vec<Record> = actions.iter().map(|a| rec(a)).collect();
        for r in &mut batch {
            chain.append(key, r);
        }
        f.append_pending(&batch).unwrap();
    }

    #[test]
    fn dropped_altered_and_forged_records_are_found() {
        let d = tempfile::tempdir().unwrap();
        let f = Files::open(&d.path().join("a"), 1 << 20).unwrap();
        let pk = PendingKey::derive(&DataKey::generate().unwrap());
        let mut chain = Chain::default();
        written(&f, &mut chain, None, &["cold1"]);
        written(&f, &mut chain, Some(&pk), &["unlock", "connection_refused"]);
        let anchor = chain.anchor();
        let ok = check(f.pending_lines(), Some(&pk), Some(&anchor));
        assert_eq!(ok.problem, None);
        assert_eq!(ok.good.len(), 3);
        assert!(
            ok.good
                .iter()
                .all(|r| r.pmac.is_none() && r.sealed.is_none())
        );

        // Dropped: the last line removed.
        let path = d.path().join("a/pending.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(&path, format!("{}\n{}\n", lines[0], lines[1])).unwrap();
        let c = check(f.pending_lines(), Some(&pk), Some(&anchor));
        assert!(c.problem.unwrap().contains("expects 3"));

        // Forged: a keyed record made up without the key.
        let mut forged = rec("unlock");
        forged.success = true;
        let mut fake_chain = Chain {
            count: 2,
            head: unhex(
                &serde_json::from_str::<Record>(lines[1])
                    .unwrap()
                    .pmac
                    .unwrap(),
            )
            .unwrap(),
        };
        fake_chain.append(
            Some(&PendingKey::derive(&DataKey::generate().unwrap())),
            &mut forged,
        );
        std::fs::write(
            &path,
            format!(
                "{}\n{}\n{}",
                lines[0],
                lines[1],
                String::from_utf8(forged.line()).unwrap()
            ),
        )
        .unwrap();
        let c = check(f.pending_lines(), Some(&pk), Some(&fake_chain.anchor()));
        assert!(c.problem.unwrap().contains("does not match"));
        assert_eq!(c.good.len(), 2, "only what came before the forgery");
    }
}
