//! Multi-pattern search that finds *every* occurrence of every pattern,
//! overlapping ones included, tuned for the common case where output holds
//! no secret at all.
//!
//! A Wu–Manber skip scan: the window is as long as the shortest pattern; a
//! hashed table keyed by the window's last `b` bytes says how far the window
//! may jump without passing a place a pattern could start. Only where the
//! table says 0 do we compare patterns, found by their first bytes in a
//! sorted index. For text without secrets the scan touches roughly one
//! window per (shortest pattern − b + 1) bytes.
//!
//! Invariant: the tables hold plaintext-derived bytes, so they are zeroed on
//! drop and the type has no `Debug`.

use zeroize::{Zeroize, Zeroizing};

/// A match: `[start, end)` of pattern `label`'s value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub start: usize,
    pub end: usize,
    pub label: u32,
}

pub struct Matcher {
    /// Sorted by bytes, with their labels.
    patterns: Vec<(Zeroizing<Vec<u8>>, u32)>,
    /// (first `k` bytes as a key, index into `patterns`), sorted.
    heads: Vec<(u64, u32)>,
    shift: Vec<u8>,
    bits: u32,
    /// Window length: the shortest pattern (capped so shifts fit a byte).
    m: usize,
    /// Block length hashed at the window's end.
    b: usize,
    /// Bytes of a pattern used as its `heads` key.
    k: usize,
    max_len: usize,
}

impl Drop for Matcher {
    fn drop(&mut self) {
        for h in &mut self.heads {
            h.0.zeroize();
        }
        self.shift.zeroize();
    }
}

#[inline]
fn load(bytes: &[u8], n: usize) -> u64 {
    let mut buf = [0u8; 8];
    buf[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(buf)
}

impl Matcher {
    /// Builds a matcher; patterns must be non-empty.
    pub fn new(mut patterns: Vec<(Zeroizing<Vec<u8>>, u32)>) -> Matcher {
        patterns.retain(|(p, _)| !p.is_empty());
        patterns.sort_by(|a, b| a.0.as_slice().cmp(b.0.as_slice()).then(a.1.cmp(&b.1)));
        patterns.dedup_by(|a, b| a.0.as_slice() == b.0.as_slice());
        let min = patterns.iter().map(|p| p.0.len()).min().unwrap_or(1);
        let max_len = patterns.iter().map(|p| p.0.len()).max().unwrap_or(0);
        let m = min.min(128);
        let b = m.min(4);
        let k = m.min(8);
        let entries = patterns.len() * (m - b + 1);
        let bits = (entries.max(1) * 4)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(10, 18);
        let default = (m - b + 1) as u8;
        let mut shift = vec![default; 1 << bits];
        let mut heads = Vec::with_capacity(patterns.len());
        for (i, (p, _)) in patterns.iter().enumerate() {
            for j in 0..=(m - b) {
                let h = hash(load(&p[j..], b), bits);
                let s = (m - b - j) as u8;
                if shift[h] > s {
                    shift[h] = s;
                }
            }
            heads.push((load(p, k), i as u32));
        }
        heads.sort_unstable();
        Matcher {
            patterns,
            heads,
            shift,
            bits,
            m,
            b,
            k,
            max_len,
        }
    }

    /// Length of the longest pattern.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Appends every match that starts in `[from, limit)` and ends within
    /// `hay`, ordered by start, longest first at equal starts.
    pub fn find(&self, hay: &[u8], from: usize, limit: usize, out: &mut Vec<Hit>) {
        if self.patterns.is_empty() || hay.len() < self.m {
            return;
        }
        let limit = limit.min(hay.len() - self.m + 1);
        if from >= limit {
            return;
        }
        let (m, b) = (self.m, self.b);
        let mut end = from + m - 1; // last byte of the window
        let last = limit - 1 + m - 1;
        while end <= last {
            let s = self.shift[hash(load(&hay[end + 1 - b..], b), self.bits)];
            if s != 0 {
                end += s as usize;
                continue;
            }
            self.verify(hay, end + 1 - m, out);
            end += 1;
        }
    }

    #[inline(never)]
    fn verify(&self, hay: &[u8], start: usize, out: &mut Vec<Hit>) {
        let key = load(&hay[start..], self.k);
        let first = self.heads.partition_point(|h| h.0 < key);
        let before = out.len();
        for &(hk, idx) in &self.heads[first..] {
            if hk != key {
                break;
            }
            let (p, label) = &self.patterns[idx as usize];
            if hay[start..].starts_with(p) {
                out.push(Hit {
                    start,
                    end: start + p.len(),
                    label: *label,
                });
            }
        }
        out[before..].sort_unstable_by_key(|h| std::cmp::Reverse(h.end));
    }

    /// True when `tail` is a prefix of some pattern (so it must not be
    /// released yet: more bytes could complete a secret).
    pub fn is_pattern_prefix(&self, tail: &[u8]) -> bool {
        let i = self.patterns.partition_point(|(p, _)| p.as_slice() < tail);
        self.patterns
            .get(i)
            .is_some_and(|(p, _)| p.starts_with(tail))
    }
}

#[inline]
fn hash(block: u64, bits: u32) -> usize {
    (block.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(pats: &[&str]) -> Matcher {
        Matcher::new(
            pats.iter()
                .enumerate()
                .map(|(i, p)| (Zeroizing::new(p.as_bytes().to_vec()), i as u32))
                .collect(),
        )
    }

    fn naive(pats: &[&str], hay: &[u8]) -> Vec<(usize, usize)> {
        let mut out = vec![];
        for s in 0..hay.len() {
            for p in pats {
                if hay[s..].starts_with(p.as_bytes()) {
                    out.push((s, s + p.len()));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        out.dedup();
        out
    }

    #[test]
    fn finds_all_overlapping_matches() {
        let pats = ["abcabc", "bca", "cab", "abcabcabc", "zz"];
        let m = matcher(&pats);
        let hay = b"xxabcabcabcabczzzyabc";
        let mut hits = vec![];
        m.find(hay, 0, hay.len(), &mut hits);
        let got: Vec<_> = hits.iter().map(|h| (h.start, h.end)).collect();
        assert_eq!(got, naive(&pats, hay));
    }

    #[test]
    fn respects_from_and_limit() {
        let m = matcher(&["secret"]);
        let hay = b"secret..secret..secret";
        let mut hits = vec![];
        m.find(hay, 1, 15, &mut hits);
        assert_eq!(hits.iter().map(|h| h.start).collect::<Vec<_>>(), [8]);
    }

    #[test]
    fn prefix_check() {
        let m = matcher(&["hunter2", "abc"]);
        assert!(m.is_pattern_prefix(b"hun"));
        assert!(m.is_pattern_prefix(b"hunter2"));
        assert!(!m.is_pattern_prefix(b"hunx"));
        assert!(!m.is_pattern_prefix(b"b"));
    }
}
