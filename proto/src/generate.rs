//! Random passwords (contract §10), shared by `secretctl generate` and the
//! web UI's "generate" button.
//!
//! Every character is drawn uniformly from the OS random source by
//! rejection sampling, so no symbol is likelier than another; a password
//! lacking one of the enabled classes is thrown away and drawn again, which
//! keeps the result uniform over the passwords that have them all.

use zeroize::Zeroizing;

pub const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
pub const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
pub const DIGITS: &str = "0123456789";
/// Printable ASCII punctuation without quotes, backslash, backtick and
/// space, so a generated value pastes into shells, .env files and URLs'
/// userinfo without quoting surprises.
pub const SYMBOLS: &str = "!#$%&()*+,-./:;<=>?@[]^_{|}~";

/// Longest password generated (the CLI's `-l` and the UI's length field).
pub const MAX_LENGTH: usize = 4096;

/// What a password is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classes {
    pub length: usize,
    pub lower: bool,
    pub upper: bool,
    pub digits: bool,
    pub symbols: bool,
    /// Characters never used.
    pub exclude: String,
}

impl Default for Classes {
    fn default() -> Self {
        Classes {
            length: 24,
            lower: true,
            upper: true,
            digits: true,
            symbols: true,
            exclude: String::new(),
        }
    }
}

/// Why no password can be made; `hint` says what to change (in the CLI's
/// flag names).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GenerateError {
    pub message: String,
    pub hint: Option<String>,
}

fn error(message: String, hint: Option<String>) -> GenerateError {
    GenerateError { message, hint }
}

/// A password recipe: the enabled classes after `exclude`.
#[derive(Debug, PartialEq, Eq)]
pub struct Recipe {
    classes: Vec<Vec<char>>,
    length: usize,
}

impl Recipe {
    pub fn new(c: &Classes) -> Result<Recipe, GenerateError> {
        let exclude: Vec<char> = c.exclude.chars().collect();
        let mut classes = Vec::new();
        for (on, name, set, flag) in [
            (c.lower, "lower-case letter", LOWER, "--no-lower"),
            (c.upper, "upper-case letter", UPPER, "--no-upper"),
            (c.digits, "digit", DIGITS, "--no-digits"),
            (c.symbols, "symbol", SYMBOLS, "--no-symbols"),
        ] {
            if !on {
                continue;
            }
            let chars: Vec<char> = set.chars().filter(|c| !exclude.contains(c)).collect();
            if chars.is_empty() {
                return Err(error(
                    format!("--exclude removes every {name}"),
                    Some(format!("add {flag} to leave them out")),
                ));
            }
            classes.push(chars);
        }
        if classes.is_empty() {
            return Err(error(
                "every character class is turned off".into(),
                Some("keep at least one of lower, upper, digits, symbols".into()),
            ));
        }
        let length = c.length;
        if length > MAX_LENGTH {
            return Err(error(
                format!("a password is at most {MAX_LENGTH} characters long"),
                None,
            ));
        }
        if length < classes.len() {
            return Err(error(
                format!(
                    "a {length}-character password cannot hold one of each of the {} enabled classes",
                    classes.len()
                ),
                Some(
                    "use a larger -l, or turn classes off with --no-symbols, --no-digits, ..."
                        .into(),
                ),
            ));
        }
        Ok(Recipe { classes, length })
    }

    fn alphabet(&self) -> Vec<char> {
        self.classes.iter().flatten().copied().collect()
    }

    /// One password with at least one character of every class.
    pub fn password(&self, rng: &mut Rng) -> Result<Zeroizing<String>, GenerateError> {
        let alphabet = self.alphabet();
        loop {
            let mut out = Zeroizing::new(String::with_capacity(self.length));
            for _ in 0..self.length {
                out.push(alphabet[rng.below(alphabet.len())?]);
            }
            if self
                .classes
                .iter()
                .all(|class| out.chars().any(|c| class.contains(&c)))
            {
                return Ok(out);
            }
        }
    }

    /// Bits of entropy of one password (an upper bound: the class rule
    /// removes a few).
    pub fn bits(&self) -> f64 {
        self.length as f64 * (self.alphabet().len() as f64).log2()
    }
}

/// Uniform integers from the OS random source, read in blocks.
pub struct Rng {
    buf: Zeroizing<Vec<u8>>,
    pos: usize,
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}

impl Rng {
    pub fn new() -> Rng {
        Rng {
            buf: Zeroizing::new(vec![0; 512]),
            pos: 512,
        }
    }

    fn u32(&mut self) -> Result<u32, GenerateError> {
        if self.pos + 4 > self.buf.len() {
            getrandom::fill(&mut self.buf)
                .map_err(|e| error(format!("the OS random source failed: {e}"), None))?;
            self.pos = 0;
        }
        let b = &self.buf[self.pos..self.pos + 4];
        self.pos += 4;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A uniform integer in `0..n` (`n` > 0): draws above the largest
    /// multiple of `n` are rejected, so no remainder is favoured.
    pub fn below(&mut self, n: usize) -> Result<usize, GenerateError> {
        let n = n as u64;
        let zone = (1u64 << 32) - (1u64 << 32) % n;
        loop {
            let x = u64::from(self.u32()?);
            if x < zone {
                return Ok((x % n) as usize);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(length: usize, exclude: &str) -> Classes {
        Classes {
            length,
            exclude: exclude.into(),
            ..Classes::default()
        }
    }

    #[test]
    fn every_class_is_present_and_nothing_else() {
        let mut rng = Rng::new();
        let r = Recipe::new(&classes(4, "")).unwrap();
        for _ in 0..2000 {
            let p = r.password(&mut rng).unwrap();
            assert_eq!(p.chars().count(), 4);
            assert!(p.chars().any(|c| LOWER.contains(c)), "{}", p.as_str());
            assert!(p.chars().any(|c| UPPER.contains(c)));
            assert!(p.chars().any(|c| DIGITS.contains(c)));
            assert!(p.chars().any(|c| SYMBOLS.contains(c)));
        }
        let r = Recipe::new(&Classes {
            symbols: false,
            upper: false,
            ..classes(24, "0o1l")
        })
        .unwrap();
        for _ in 0..500 {
            let p = r.password(&mut rng).unwrap();
            assert_eq!(p.len(), 24);
            assert!(
                p.chars()
                    .all(|c| (c.is_ascii_lowercase() || c.is_ascii_digit()) && !"0o1l".contains(c)),
                "{}",
                p.as_str()
            );
        }
    }

    #[test]
    fn impossible_recipes_are_refused() {
        assert!(Recipe::new(&classes(3, "")).is_err(), "4 classes, 3 chars");
        let none = Classes {
            lower: false,
            upper: false,
            digits: false,
            symbols: false,
            ..Classes::default()
        };
        assert!(Recipe::new(&none).is_err());
        assert!(Recipe::new(&classes(24, DIGITS)).is_err());
        let no_digits = Classes {
            digits: false,
            ..classes(24, DIGITS)
        };
        assert!(Recipe::new(&no_digits).is_ok());
        assert!(Recipe::new(&classes(MAX_LENGTH + 1, "")).is_err());
    }

    #[test]
    fn draws_are_uniform_and_distinct() {
        // 40,000 draws over 10 buckets: each within 10% of 4,000 (the chance
        // that a fair source fails this is below 1e-9).
        let mut rng = Rng::new();
        let mut counts = [0u32; 10];
        for _ in 0..40_000 {
            counts[rng.below(10).unwrap()] += 1;
        }
        assert!(
            counts.iter().all(|&c| (3600..=4400).contains(&c)),
            "{counts:?}"
        );
        let r = Recipe::new(&Classes::default()).unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            assert!(seen.insert(r.password(&mut rng).unwrap().to_string()));
        }
        assert!(r.bits() > 150.0, "{}", r.bits());
    }
}
