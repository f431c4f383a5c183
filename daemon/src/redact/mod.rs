//! Output redaction: replaces every occurrence of a secret value, and of
//! its encodings (see [`encodings`]), with `[REDACTED:ENV_NAME]`.
//!
//! No I/O. A [`Redactor`] is built once per run from the values in play and
//! shared by that run's streams; a [`Stream`] takes chunks as they arrive.
//!
//! Invariants:
//! - Streamed output equals one-shot output for any chunking: a match
//!   straddling chunks is caught, and overlapping matches are merged into one
//!   redacted range (so a value that is a prefix of another cannot leak the
//!   other's tail). The marker names the match that starts first (the
//!   longest, at equal starts).
//! - A stream holds back at most the longest pattern minus one byte; a
//!   deadline flush ([`Stream::flush`]) releases held bytes except a tail
//!   that could still begin a secret.
//! - Memory is bounded by the patterns, never by the output's size.

mod encodings;
mod matcher;

use std::sync::Arc;

use matcher::{Hit, Matcher};
use zeroize::Zeroizing;

pub use encodings::encodings;

/// Patterns for a set of named values; cheap to clone.
#[derive(Clone)]
pub struct Redactor {
    inner: Arc<Inner>,
}

struct Inner {
    matcher: Matcher,
    markers: Vec<Vec<u8>>,
}

impl Redactor {
    /// Builds a redactor for `(env name, value)` pairs.
    pub fn new<'a>(values: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Redactor {
        let mut markers: Vec<Vec<u8>> = Vec::new();
        let mut patterns: Vec<(Zeroizing<Vec<u8>>, u32)> = Vec::new();
        for (name, value) in values {
            if value.is_empty() {
                continue;
            }
            let marker = format!("[REDACTED:{name}]").into_bytes();
            let label = match markers.iter().position(|m| *m == marker) {
                Some(i) => i,
                None => {
                    markers.push(marker);
                    markers.len() - 1
                }
            } as u32;
            patterns.extend(encodings(value).into_iter().map(|p| (p, label)));
        }
        Redactor {
            inner: Arc::new(Inner {
                matcher: Matcher::new(patterns),
                markers,
            }),
        }
    }

    /// A redactor that changes nothing (for `--no-redact`).
    pub fn none() -> Redactor {
        Redactor::new(std::iter::empty())
    }

    /// A new stream over these patterns.
    pub fn stream(&self) -> Stream {
        Stream {
            r: self.clone(),
            buf: Vec::new(),
            searched: 0,
            emitted: 0,
            count: 0,
            hits: Vec::new(),
        }
    }

    /// Redacts a whole buffer at once; returns the output and the number of
    /// redactions.
    pub fn redact_all(&self, input: &[u8]) -> (Vec<u8>, u64) {
        let mut s = self.stream();
        let mut out = Vec::with_capacity(input.len());
        s.push(input, &mut out);
        s.finish(&mut out);
        (out, s.count())
    }

    /// Longest pattern in bytes (the holdback bound is this minus one).
    pub fn max_pattern_len(&self) -> usize {
        self.inner.matcher.max_len()
    }
}

/// One output stream being redacted.
pub struct Stream {
    r: Redactor,
    /// Bytes from position `searched` of the stream on (earlier ones are done).
    buf: Vec<u8>,
    /// Index in `buf` before which every match start has been searched.
    searched: usize,
    /// Index in `buf` before which output has been produced (or swallowed).
    emitted: usize,
    count: u64,
    hits: Vec<Hit>,
}

impl Stream {
    /// Takes a chunk; appends what can be released to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.buf.extend_from_slice(chunk);
        let hold = self.r.inner.matcher.max_len().saturating_sub(1);
        let cut = self.buf.len().saturating_sub(hold);
        self.advance(cut, out);
    }

    /// Releases held bytes (deadline flush), keeping back only a tail that
    /// could still grow into a secret.
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        let m = &self.r.inner.matcher;
        let cut = (self.searched..self.buf.len())
            .find(|&p| m.is_pattern_prefix(&self.buf[p..]))
            .unwrap_or(self.buf.len());
        self.advance(cut, out);
    }

    /// End of stream: releases everything.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let len = self.buf.len();
        self.advance(len, out);
    }

    /// Bytes held back right now.
    pub fn held(&self) -> usize {
        self.buf.len() - self.emitted.min(self.buf.len())
    }

    /// Redactions made so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Searches match starts in `[searched, cut)` and emits up to `cut`
    /// (further when a redaction reaches past it).
    fn advance(&mut self, cut: usize, out: &mut Vec<u8>) {
        if cut <= self.searched {
            return;
        }
        let inner = &*self.r.inner;
        self.hits.clear();
        inner
            .matcher
            .find(&self.buf, self.searched, cut, &mut self.hits);
        for h in &self.hits {
            if h.start < self.emitted {
                // Overlaps the redaction just made: widen it silently.
                self.emitted = self.emitted.max(h.end);
            } else {
                out.extend_from_slice(&self.buf[self.emitted..h.start]);
                out.extend_from_slice(&inner.markers[h.label as usize]);
                self.count += 1;
                self.emitted = h.end;
            }
        }
        if self.emitted < cut {
            out.extend_from_slice(&self.buf[self.emitted..cut]);
            self.emitted = cut;
        }
        self.searched = cut;
        // Keep only bytes still to be searched; positions shift down.
        self.buf.drain(..cut);
        self.emitted -= cut;
        self.searched = 0;
    }
}

#[cfg(test)]
mod tests;
