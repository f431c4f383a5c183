//! What the daemon enforces for agents: the copies of `mcp-policy.yaml` and
//! of `config.yaml` that a user applied (`secretctl policy apply`,
//! `secretctl config apply`; contract §9), not the files as they are now.
//!
//! The copies are sealed in the vault (an agent that edits the files, or
//! the vault's bytes, changes nothing it can use) and loaded at unlock.
//! While nothing is applied, agent runs are refused and the `agent.*`
//! settings have their defaults.

use std::path::Path;
use std::sync::RwLock;

use crate::config::Config;
use crate::keyring::DataKey;
use crate::policy::{self, Policy};
use crate::store::Applied as Which;
use crate::vault::{Vault, VaultError};

/// How a settings file compares with its applied copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Nothing was applied yet.
    NotApplied,
    /// The file reads exactly as the applied copy.
    Same,
    /// The file was changed (or removed) since it was applied.
    Differs,
    /// No file (and nothing applied).
    Missing,
    /// The file cannot be read safely (the message says why).
    Unusable(String),
}

impl FileState {
    pub fn as_str(&self) -> &'static str {
        match self {
            FileState::NotApplied => "not applied",
            FileState::Same => "applied",
            FileState::Differs => "differs from the applied copy",
            FileState::Missing => "missing",
            FileState::Unusable(_) => "unusable",
        }
    }
}

#[derive(Default)]
struct Inner {
    policy: Option<(String, Policy)>,
    config: Option<(String, Config)>,
}

/// The applied copies held in memory.
#[derive(Default)]
pub struct Applied {
    inner: RwLock<Inner>,
}

impl Applied {
    /// Loads the copies sealed in `vault` (at unlock and init).
    pub fn load(&self, vault: &Vault, dk: &DataKey) -> Result<(), VaultError> {
        let policy = vault.applied_text(dk, Which::Policy)?.and_then(|text| {
            policy::parse(&text)
                .map_err(|e| tracing::error!(error = %e, "the applied policy no longer parses; agent runs are refused until it is applied again"))
                .ok()
                .map(|p| (text, p))
        });
        let config = vault.applied_text(dk, Which::Config)?.and_then(|text| {
            Config::parse(&text)
                .map_err(|e| tracing::error!(error = %e, "the applied config no longer parses; agent settings have their defaults"))
                .ok()
                .map(|c| (text, c))
        });
        let mut inner = self.inner.write().expect("applied lock is never poisoned");
        inner.policy = policy;
        inner.config = config;
        Ok(())
    }

    /// The applied policy. The file must still be there and safe (a
    /// regular 0600 file of the user, contract §7): a missing or exposed
    /// file refuses every run even if a copy was applied (that can only
    /// narrow what agents may do). What the file says changes nothing until
    /// it is applied again.
    pub fn policy(&self, file: &Path) -> Result<Policy, String> {
        match policy::read(file) {
            Ok(_) => {}
            Err(crate::private_file::FileError::Missing { .. }) => {
                return Err(format!(
                    "no policy file at {}: ask the user to write it (docs/policy.md) and run 'secretctl policy apply' in their own terminal",
                    file.display()
                ));
            }
            Err(e) => return Err(format!("{e} (ask the user to fix it)")),
        }
        self.inner
            .read()
            .expect("applied lock is never poisoned")
            .policy
            .as_ref()
            .map(|(_, p)| p.clone())
            .ok_or_else(|| {
                format!(
                    "no policy has been applied: ask the user to check {} and run 'secretctl policy apply' in their own terminal",
                    file.display()
                )
            })
    }

    /// The applied config (its `agent:` section is what counts), or the
    /// defaults.
    pub fn config(&self) -> Config {
        self.inner
            .read()
            .expect("applied lock is never poisoned")
            .config
            .as_ref()
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    }

    /// Seals `text` (already validated as `parsed`) as the applied policy.
    pub fn set_policy(
        &self,
        vault: &Vault,
        dk: &DataKey,
        text: String,
        parsed: Policy,
    ) -> Result<(), VaultError> {
        vault.set_applied_text(dk, Which::Policy, &text)?;
        self.inner
            .write()
            .expect("applied lock is never poisoned")
            .policy = Some((text, parsed));
        Ok(())
    }

    /// Seals `text` (already validated as `parsed`) as the applied config.
    pub fn set_config(
        &self,
        vault: &Vault,
        dk: &DataKey,
        text: String,
        parsed: Config,
    ) -> Result<(), VaultError> {
        vault.set_applied_text(dk, Which::Config, &text)?;
        self.inner
            .write()
            .expect("applied lock is never poisoned")
            .config = Some((text, parsed));
        Ok(())
    }

    /// How the policy file compares with its applied copy.
    pub fn policy_state(&self, file: &Path) -> FileState {
        let applied = self
            .inner
            .read()
            .expect("applied lock is never poisoned")
            .policy
            .as_ref()
            .map(|(t, _)| t.clone());
        compare(policy::read(file).map(Some), applied)
    }

    /// How the config file compares with its applied copy.
    pub fn config_state(&self, file: &Path) -> FileState {
        let applied = self
            .inner
            .read()
            .expect("applied lock is never poisoned")
            .config
            .as_ref()
            .map(|(t, _)| t.clone());
        compare(Config::read(file), applied)
    }
}

fn compare(
    file: Result<Option<String>, crate::private_file::FileError>,
    applied: Option<String>,
) -> FileState {
    use crate::private_file::FileError;
    match (file, applied) {
        (Err(FileError::Missing { .. }) | Ok(None), None) => FileState::Missing,
        (Err(FileError::Missing { .. }) | Ok(None), Some(_)) => FileState::Differs,
        (Err(e), _) => FileState::Unusable(e.to_string()),
        (Ok(Some(_)), None) => FileState::NotApplied,
        (Ok(Some(now)), Some(was)) if now == was => FileState::Same,
        (Ok(Some(_)), Some(_)) => FileState::Differs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KdfParams;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    const POLICY_A: &str = "version: 1\nallowed_commands: [ls]\n";
    const POLICY_B: &str = "version: 1\ndefault_action: allow\n";
    const CONFIG: &str = "agent:\n  max_concurrent_runs: 2\n";

    fn setup() -> (tempfile::TempDir, Vault, DataKey, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let (vault, dk) =
            Vault::init(&dir.path().join("v.redb"), b"pw", KdfParams::TEST_TINY).unwrap();
        let policy = dir.path().join("mcp-policy.yaml");
        let config = dir.path().join("config.yaml");
        (dir, vault, dk, policy, config)
    }

    fn write(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn states_have_their_status_words() {
        let words = [
            (FileState::NotApplied, "not applied"),
            (FileState::Same, "applied"),
            (FileState::Differs, "differs from the applied copy"),
            (FileState::Missing, "missing"),
            (FileState::Unusable("x".into()), "unusable"),
        ];
        for (state, word) in words {
            assert_eq!(state.as_str(), word, "{state:?}");
        }
    }

    #[test]
    fn the_applied_policy_counts_not_the_file() {
        let (_d, vault, dk, file, _) = setup();
        let applied = Applied::default();
        assert_eq!(applied.policy_state(&file), FileState::Missing);
        let e = applied.policy(&file).unwrap_err();
        assert!(e.contains("no policy file"), "{e}");

        write(&file, POLICY_A, 0o600);
        assert_eq!(applied.policy_state(&file), FileState::NotApplied);
        let e = applied.policy(&file).unwrap_err();
        assert!(e.contains("no policy has been applied"), "{e}");

        let a = policy::parse(POLICY_A).unwrap();
        applied
            .set_policy(&vault, &dk, POLICY_A.into(), a.clone())
            .unwrap();
        assert_eq!(applied.policy_state(&file), FileState::Same);
        assert_eq!(applied.policy(&file).unwrap(), a);

        // An edit changes nothing until it is applied again.
        write(&file, POLICY_B, 0o600);
        assert_eq!(applied.policy_state(&file), FileState::Differs);
        assert_eq!(applied.policy(&file).unwrap(), a);

        // An exposed or removed file refuses every run.
        write(&file, POLICY_A, 0o644);
        assert!(matches!(
            applied.policy_state(&file),
            FileState::Unusable(m) if m.contains("chmod 600")
        ));
        assert!(applied.policy(&file).unwrap_err().contains("chmod 600"));
        std::fs::remove_file(&file).unwrap();
        assert_eq!(applied.policy_state(&file), FileState::Differs);
        assert!(
            applied
                .policy(&file)
                .unwrap_err()
                .contains("no policy file")
        );
    }

    #[test]
    fn applied_copies_are_sealed_in_the_vault_and_loaded_at_unlock() {
        let (_d, vault, dk, file, config_file) = setup();
        write(&file, POLICY_A, 0o600);
        write(&config_file, CONFIG, 0o600);
        let first = Applied::default();
        assert_eq!(first.config().agent.max_concurrent_runs, 4, "the default");
        first
            .set_policy(
                &vault,
                &dk,
                POLICY_A.into(),
                policy::parse(POLICY_A).unwrap(),
            )
            .unwrap();
        first
            .set_config(&vault, &dk, CONFIG.into(), Config::parse(CONFIG).unwrap())
            .unwrap();
        assert_eq!(first.config().agent.max_concurrent_runs, 2);
        assert_eq!(first.config_state(&config_file), FileState::Same);

        // What a later unlock finds.
        let later = Applied::default();
        assert_eq!(later.config_state(&config_file), FileState::NotApplied);
        later.load(&vault, &dk).unwrap();
        assert_eq!(
            later.policy(&file).unwrap(),
            policy::parse(POLICY_A).unwrap()
        );
        assert_eq!(later.policy_state(&file), FileState::Same);
        assert_eq!(later.config().agent.max_concurrent_runs, 2);
        assert_eq!(later.config_state(&config_file), FileState::Same);
        write(&config_file, "agent:\n  max_concurrent_runs: 3\n", 0o600);
        assert_eq!(later.config_state(&config_file), FileState::Differs);
        assert_eq!(later.config().agent.max_concurrent_runs, 2);
    }

    #[test]
    fn an_applied_policy_that_no_longer_parses_refuses_runs() {
        let (_d, vault, dk, file, _) = setup();
        write(&file, POLICY_A, 0o600);
        vault
            .set_applied_text(&dk, Which::Policy, "version: 2\n")
            .unwrap();
        let applied = Applied::default();
        applied.load(&vault, &dk).unwrap();
        let e = applied.policy(&file).unwrap_err();
        assert!(e.contains("no policy has been applied"), "{e}");
    }
}
