//! `secretctl generate` (contract §10): random passwords and passphrases.
//!
//! Every character (or word) is drawn uniformly from the OS random source
//! by rejection sampling, so no symbol is likelier than another; a password
//! lacking one of the enabled classes is thrown away and drawn again, which
//! keeps the result uniform over the passwords that have them all.

use std::io::IsTerminal;

use anyhow::Context;
use secretctl_proto::v1::{FieldInput, SetRequest};
use zeroize::Zeroizing;

use crate::cli::GenerateArgs;
use crate::connect;
use crate::error::{CliError, Result};

pub const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
pub const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
pub const DIGITS: &str = "0123456789";
/// Printable ASCII punctuation without quotes, backslash, backtick and
/// space, so a generated value pastes into shells, .env files and URLs'
/// userinfo without quoting surprises.
pub const SYMBOLS: &str = "!#$%&()*+,-./:;<=>?@[]^_{|}~";

/// Words of a passphrase are joined with this.
pub const WORD_SEPARATOR: &str = "-";

/// A password recipe: the enabled classes after `--exclude`.
#[derive(Debug, PartialEq, Eq)]
pub struct Recipe {
    classes: Vec<Vec<char>>,
    length: usize,
}

impl Recipe {
    pub fn new(a: &GenerateArgs) -> Result<Recipe> {
        let exclude: Vec<char> = a.exclude.as_deref().unwrap_or("").chars().collect();
        let mut classes = Vec::new();
        for (on, name, set, flag) in [
            (!a.no_lower, "lower-case letter", LOWER, "--no-lower"),
            (!a.no_upper, "upper-case letter", UPPER, "--no-upper"),
            (!a.no_digits, "digit", DIGITS, "--no-digits"),
            (!a.no_symbols, "symbol", SYMBOLS, "--no-symbols"),
        ] {
            if !on {
                continue;
            }
            let chars: Vec<char> = set.chars().filter(|c| !exclude.contains(c)).collect();
            if chars.is_empty() {
                return Err(CliError::usage(format!("--exclude removes every {name}"))
                    .hint(format!("add {flag} to leave them out"))
                    .into());
            }
            classes.push(chars);
        }
        if classes.is_empty() {
            return Err(CliError::usage("every character class is turned off")
                .hint("keep at least one of lower, upper, digits, symbols")
                .into());
        }
        let length = a.length as usize;
        if length < classes.len() {
            return Err(CliError::usage(format!(
                "a {length}-character password cannot hold one of each of the {} enabled classes",
                classes.len()
            ))
            .hint("use a larger -l, or turn classes off with --no-symbols, --no-digits, ...")
            .into());
        }
        Ok(Recipe { classes, length })
    }

    fn alphabet(&self) -> Vec<char> {
        self.classes.iter().flatten().copied().collect()
    }

    /// One password with at least one character of every class.
    pub fn password(&self, rng: &mut Rng) -> Result<Zeroizing<String>> {
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

impl Rng {
    pub fn new() -> Rng {
        Rng {
            buf: Zeroizing::new(vec![0; 512]),
            pos: 512,
        }
    }

    fn u32(&mut self) -> Result<u32> {
        if self.pos + 4 > self.buf.len() {
            getrandom::fill(&mut self.buf)
                .map_err(|e| anyhow::anyhow!("the OS random source failed: {e}"))?;
            self.pos = 0;
        }
        let b = &self.buf[self.pos..self.pos + 4];
        self.pos += 4;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A uniform integer in `0..n` (`n` > 0): draws above the largest
    /// multiple of `n` are rejected, so no remainder is favoured.
    pub fn below(&mut self, n: usize) -> Result<usize> {
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

/// The wordlist of `--words`: the EFF long list (7,776 words).
pub fn wordlist() -> &'static [&'static str] {
    diceware_wordlists::Wordlist::EffLong.get_list()
}

/// A passphrase of `words` words.
pub fn passphrase(words: usize, rng: &mut Rng) -> Result<Zeroizing<String>> {
    let list = wordlist();
    let mut out = Zeroizing::new(String::new());
    for i in 0..words {
        if i > 0 {
            out.push_str(WORD_SEPARATOR);
        }
        out.push_str(list[rng.below(list.len())?]);
    }
    Ok(out)
}

pub async fn run(a: GenerateArgs) -> Result<()> {
    if a.set.is_some() && a.count > 1 {
        return Err(CliError::usage("--set stores one value: leave out -n")
            .hint("generate several with -n and store them one by one with 'secretctl set'")
            .into());
    }
    let mut rng = Rng::new();
    let make = |rng: &mut Rng| -> Result<Zeroizing<String>> {
        match a.words {
            Some(n) => passphrase(n as usize, rng),
            None => Recipe::new(&a)?.password(rng),
        }
    };
    // Checked before anything is drawn or the daemon is asked.
    if a.words.is_none() {
        Recipe::new(&a)?;
    }
    if let Some(key) = &a.set {
        let value = make(&mut rng)?;
        return store(key, &a.field, value).await;
    }
    for _ in 0..a.count {
        let value = make(&mut rng)?;
        outln!("{}", value.as_str());
    }
    if std::io::stderr().is_terminal() {
        let bits = match a.words {
            Some(n) => f64::from(n) * (wordlist().len() as f64).log2(),
            None => Recipe::new(&a)?.bits(),
        };
        eprintln!("(about {bits:.0} bits of entropy each)");
    }
    Ok(())
}

/// Stores a generated value as `key`'s `field` (an upsert: the secret's
/// other fields and metadata are kept). Nothing is printed but the key.
async fn store(key: &str, field: &str, value: Zeroizing<String>) -> Result<()> {
    secretctl_proto::names::validate_key(key).map_err(|e| {
        CliError::usage(format!(
            "invalid key name '{}': {e}",
            secretctl_proto::text::shown(key)
        ))
    })?;
    let (client, st) = connect::connect().await?;
    crate::reauth::consent(&client, &st, &format!("store a generated value as '{key}'")).await?;
    let req = SetRequest {
        key: key.to_string(),
        fields: vec![FieldInput::new(field, value.as_bytes().to_vec())],
        ..Default::default()
    };
    drop(value);
    let resp = client
        .vault()
        .set(req)
        .await
        .map_err(|s| client.classify(s))
        .with_context(|| format!("cannot store '{key}'"))?
        .into_inner();
    let verb = if resp.created { "created" } else { "updated" };
    let which = if field == "value" {
        String::new()
    } else {
        format!(" (field '{field}')")
    };
    eprintln!("{verb} {key}{which} with a generated value (not shown)");
    if std::io::stdout().is_terminal() {
        eprintln!(
            "read it with 'secretctl get {key}' or use it with 'secretctl run -k {key} -- ...'"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(argv: &[&str]) -> GenerateArgs {
        match crate::cli::Cli::try_parse_from(
            ["secretctl", "generate"].iter().chain(argv.iter()).copied(),
        )
        .unwrap()
        .command
        {
            crate::cli::Command::Generate(g) => g,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_class_is_present_and_nothing_else() {
        let mut rng = Rng::new();
        let r = Recipe::new(&args(&["-l", "4"])).unwrap();
        for _ in 0..2000 {
            let p = r.password(&mut rng).unwrap();
            assert_eq!(p.chars().count(), 4);
            assert!(p.chars().any(|c| LOWER.contains(c)), "{}", p.as_str());
            assert!(p.chars().any(|c| UPPER.contains(c)));
            assert!(p.chars().any(|c| DIGITS.contains(c)));
            assert!(p.chars().any(|c| SYMBOLS.contains(c)));
        }
        let r = Recipe::new(&args(&["--no-symbols", "--no-upper", "--exclude", "0o1l"])).unwrap();
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
        assert!(
            Recipe::new(&args(&["-l", "3"])).is_err(),
            "4 classes, 3 chars"
        );
        assert!(
            Recipe::new(&args(&[
                "--no-lower",
                "--no-upper",
                "--no-digits",
                "--no-symbols"
            ]))
            .is_err()
        );
        assert!(Recipe::new(&args(&["--exclude", DIGITS])).is_err());
        assert!(Recipe::new(&args(&["--exclude", DIGITS, "--no-digits"])).is_ok());
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
        let r = Recipe::new(&args(&[])).unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            assert!(seen.insert(r.password(&mut rng).unwrap().to_string()));
        }
        assert!(r.bits() > 150.0, "{}", r.bits());
    }

    #[test]
    fn passphrases_come_from_the_wordlist() {
        assert_eq!(wordlist().len(), 7776);
        let mut rng = Rng::new();
        let p = passphrase(6, &mut rng).unwrap();
        let words: Vec<&str> = p.split(WORD_SEPARATOR).collect();
        // EFF words may hold a hyphen themselves ("t-shirt"), so count at
        // least six parts, each a word or a piece of one.
        assert!(words.len() >= 6, "{}", p.as_str());
        assert!(wordlist().iter().filter(|w| p.contains(*w)).count() >= 1);
    }
}
