//! `secretctl generate` (contract §10): random passwords and passphrases.
//!
//! Passwords come from `secretctl_proto::generate` (shared with the web
//! UI); every word of a passphrase is drawn uniformly from the OS random
//! source by the same rejection sampling.

use std::io::IsTerminal;

use anyhow::Context;
use secretctl_proto::v1::{FieldInput, SetRequest};
use zeroize::Zeroizing;

use secretctl_proto::generate::{Classes, Recipe, Rng};

use crate::cli::GenerateArgs;
use crate::connect;
use crate::error::{CliError, Result};

/// Words of a passphrase are joined with this.
pub const WORD_SEPARATOR: &str = "-";

/// The password recipe of `a` (`secretctl_proto::generate`, shared with the
/// web UI), or a usage error naming the flag to change.
pub fn recipe(a: &GenerateArgs) -> Result<Recipe> {
    let classes = Classes {
        length: a.length as usize,
        lower: !a.no_lower,
        upper: !a.no_upper,
        digits: !a.no_digits,
        symbols: !a.no_symbols,
        exclude: a.exclude.clone().unwrap_or_default(),
    };
    Recipe::new(&classes).map_err(|e| {
        let err = CliError::usage(e.message);
        match e.hint {
            Some(h) => err.hint(h).into(),
            None => err.into(),
        }
    })
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
        out.push_str(list[rng.below(list.len()).map_err(|e| anyhow::anyhow!(e))?]);
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
    // Built (and so checked) once, before anything is drawn or the daemon
    // is asked.
    let password = match a.words {
        Some(_) => None,
        None => Some(recipe(&a)?),
    };
    let make = |rng: &mut Rng| -> Result<Zeroizing<String>> {
        match (&password, a.words) {
            (Some(r), _) => r.password(rng).map_err(|e| anyhow::anyhow!(e)),
            (None, n) => passphrase(n.unwrap_or_default() as usize, rng),
        }
    };
    if let Some(key) = &a.set {
        let value = make(&mut rng)?;
        return store(key, &a.field, value).await;
    }
    for _ in 0..a.count {
        let value = make(&mut rng)?;
        outln!("{}", value.as_str());
    }
    if std::io::stderr().is_terminal() {
        let bits = match (&password, a.words) {
            (Some(r), _) => r.bits(),
            (None, n) => f64::from(n.unwrap_or_default()) * (wordlist().len() as f64).log2(),
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
    use secretctl_proto::generate::{DIGITS, LOWER, SYMBOLS, UPPER};

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
        let r = recipe(&args(&["-l", "4"])).unwrap();
        for _ in 0..2000 {
            let p = r.password(&mut rng).unwrap();
            assert_eq!(p.chars().count(), 4);
            assert!(p.chars().any(|c| LOWER.contains(c)), "{}", p.as_str());
            assert!(p.chars().any(|c| UPPER.contains(c)));
            assert!(p.chars().any(|c| DIGITS.contains(c)));
            assert!(p.chars().any(|c| SYMBOLS.contains(c)));
        }
        let r = recipe(&args(&["--no-symbols", "--no-upper", "--exclude", "0o1l"])).unwrap();
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
        assert!(recipe(&args(&["-l", "3"])).is_err(), "4 classes, 3 chars");
        assert!(
            recipe(&args(&[
                "--no-lower",
                "--no-upper",
                "--no-digits",
                "--no-symbols"
            ]))
            .is_err()
        );
        assert!(recipe(&args(&["--exclude", DIGITS])).is_err());
        assert!(recipe(&args(&["--exclude", DIGITS, "--no-digits"])).is_ok());
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
