//! The vault: creating it, unlocking it, and reading and writing secrets
//! with the data key. Joins the store (bytes on disk), crypto (sealing) and
//! the secret model (rules).
//!
//! Invariants:
//! - Only this module turns ciphertext into plaintext, and only into
//!   `Zeroizing` buffers handed to the caller that asked.
//! - Every write is one store transaction (see `store`).
//! - Unlock attempts are counted in the vault file; after
//!   [`FREE_ATTEMPTS`] failures each further attempt waits exponentially.

mod export;
mod import;
mod proxy_ca;

use std::path::{Path, PathBuf};

use secretctl_proto::v1;
use zeroize::Zeroizing;

use crate::crypto::{self, CryptoError, KdfParams, RecordKey, Sealed};
use crate::keyring::DataKey;
use crate::secret::{self, Invalid, Slot};
use crate::store::{
    self, Failures, Header, SealedRecord, SecretRecord, SecretSummary, Store, StoreError,
};

pub use import::{Conflict, Done, Entry as ImportEntry, ImportError};

/// Listings at least this long are decoded on two threads.
const PARALLEL_LIST: usize = 4096;

/// Failed unlocks allowed before backoff starts.
pub const FREE_ATTEMPTS: u32 = 5;
/// Longest wait between attempts once backoff is in force.
pub const MAX_BACKOFF_SECS: u64 = 15 * 60;

/// Vault failures; messages name keys and fields, never values.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("a vault already exists at {}", .0.display())]
    AlreadyInitialized(PathBuf),
    #[error("no secret named '{0}'")]
    NotFound(String),
    #[error("secret '{key}' has no field '{field}'")]
    NoField { key: String, field: String },
    #[error("secret '{key}' has several fields ({fields}): name one with --field")]
    AmbiguousField { key: String, fields: String },
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("wrong password")]
    WrongPassword,
    #[error("too many failed unlock attempts: try again in {0} s")]
    Backoff(u64),
    #[error(
        "integrity check failed for secret '{key}' ({slot}): the vault file was altered or a value was moved; restore vault.redb from a backup"
    )]
    Integrity { key: String, slot: String },
    #[error(
        "secret '{key}' is damaged ({why}): delete it ('secretctl delete {key}') and store it again, or restore vault.redb from a backup"
    )]
    Damaged { key: String, why: String },
    #[error(transparent)]
    Crypto(CryptoError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for VaultError {
    fn from(e: StoreError) -> VaultError {
        match e {
            // A record that no longer decodes is that record's damage.
            StoreError::DamagedSecret { key } => VaultError::Damaged {
                key,
                why: "its stored bytes do not decode".into(),
            },
            e => VaultError::Store(e),
        }
    }
}

/// An open, initialized vault file. Holds no key: callers pass the
/// [`DataKey`] of the current unlock.
pub struct Vault {
    store: Store,
    /// Never changes (it is bound into every seal), so kept apart from the
    /// header, which `password change` replaces.
    vault_id: Vec<u8>,
    header: std::sync::RwLock<Header>,
}

/// A value with the env-style name its redaction marker shows.
pub type NamedValue = (String, Zeroizing<Vec<u8>>);

/// A secret with its sensitive field values decrypted. No `Debug`.
pub struct SensitiveSecret {
    pub key: String,
    pub record: SecretRecord,
    /// (field name, value) of each sensitive field.
    pub values: Vec<(String, Zeroizing<Vec<u8>>)>,
}

/// Filters of `list`.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub tag: Option<String>,
    pub prefix: String,
    /// Secrets expiring before this unix time (expired ones included).
    pub expiring_before: Option<i64>,
}

/// Seconds an attempt must wait after the last failure, given the count.
pub fn backoff_secs(failures: u32) -> u64 {
    if failures < FREE_ATTEMPTS {
        return 0;
    }
    let exp = (failures - FREE_ATTEMPTS).min(20);
    (1u64 << exp).min(MAX_BACKOFF_SECS)
}

/// Current unix time in seconds.
pub fn now_secs() -> i64 {
    now_ms() / 1000
}

/// Current unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Vault {
    /// Opens the vault at `path`; `None` when no initialized vault is there.
    pub fn open(path: &Path) -> Result<Option<Vault>, VaultError> {
        let Some(store) = Store::open(path)? else {
            return Ok(None);
        };
        if !store.has_header()? {
            return Ok(None);
        }
        let header = store.header()?;
        Ok(Some(Vault::over(store, header)))
    }

    /// Creates a vault protected by `password`; returns it with its new key.
    pub fn init(
        path: &Path,
        password: &[u8],
        kdf: KdfParams,
    ) -> Result<(Vault, DataKey), VaultError> {
        if Vault::open(path)?.is_some() {
            return Err(VaultError::AlreadyInitialized(path.to_path_buf()));
        }
        kdf.validate().map_err(|e| Invalid(e.to_string()))?;
        let mut vault_id = vec![0u8; 16];
        let mut salt = vec![0u8; crypto::SALT_LEN];
        crypto::random(&mut vault_id).map_err(VaultError::Crypto)?;
        crypto::random(&mut salt).map_err(VaultError::Crypto)?;
        let key = DataKey::generate()
            .map_err(|e| VaultError::Crypto(CryptoError::Random(e.to_string())))?;
        let kek = crypto::derive_kek(password, &salt, kdf).map_err(VaultError::Crypto)?;
        let wrapped = crypto::wrap_key(&kek, &vault_id, kdf, &key).map_err(VaultError::Crypto)?;
        let header = Header {
            format_version: store::FORMAT_VERSION,
            vault_id,
            kdf_memory_kib: kdf.memory_kib,
            kdf_iterations: kdf.iterations,
            kdf_parallelism: kdf.parallelism,
            salt,
            wrapped_key: Some(to_record(wrapped)),
            created_at: now_secs(),
        };
        let store = Store::create(path, &header)?;
        Ok((Vault::over(store, header), key))
    }

    fn over(store: Store, header: Header) -> Vault {
        Vault {
            store,
            vault_id: header.vault_id.clone(),
            header: std::sync::RwLock::new(header),
        }
    }

    /// The header as it is now.
    pub fn header(&self) -> Header {
        self.header
            .read()
            .expect("header lock is never poisoned: no code panics holding it")
            .clone()
    }

    /// The vault's id (random at `init`, never changed).
    pub fn vault_id(&self) -> &[u8] {
        &self.vault_id
    }

    /// Path of the vault file.
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// KDF parameters from the header.
    pub fn kdf(&self) -> KdfParams {
        kdf_of(&self.header())
    }

    /// Checks the password and returns the data key. Enforces and updates
    /// the failure counter. CPU-heavy (Argon2id): call off the async runtime.
    pub fn unlock(&self, password: &[u8]) -> Result<DataKey, VaultError> {
        let failures = self.store.failures()?;
        let wait_ms = backoff_secs(failures.count) as i64 * 1000;
        let elapsed = now_ms() - failures.last_failure_unix_ms;
        if wait_ms > 0 && elapsed < wait_ms {
            let remaining = ((wait_ms - elapsed) as u64).div_ceil(1000);
            return Err(VaultError::Backoff(remaining));
        }
        match self.unwrap_with(password)? {
            Some(key) => {
                if failures.count > 0 {
                    self.store.set_failures(&Failures::default())?;
                }
                Ok(key)
            }
            None => {
                self.store.set_failures(&Failures {
                    count: failures.count.saturating_add(1),
                    last_failure_unix_ms: now_ms(),
                })?;
                Err(VaultError::WrongPassword)
            }
        }
    }

    /// The data key if `password` opens the header's wrapped key (`None`:
    /// it does not). Neither counts nor checks failures: for a copy of a
    /// vault (a restore's staged file), never for the live one.
    pub fn unwrap_with(&self, password: &[u8]) -> Result<Option<DataKey>, VaultError> {
        let header = self.header();
        let kdf = kdf_of(&header);
        let wrapped = header.wrapped_key.clone().unwrap_or_default();
        let kek = crypto::derive_kek(password, &header.salt, kdf).map_err(VaultError::Crypto)?;
        Ok(crypto::unwrap_key(&kek, &self.vault_id, kdf, &from_record(wrapped)).ok())
    }

    /// Re-wraps the data key `dk` (from an unlock with the old password)
    /// under `new_password`, with a fresh salt and `kdf` (the current
    /// parameters when `None`), and stores the new header in one
    /// transaction. Values are not re-encrypted, and everything keyed from
    /// the data key (record seals, the audit chain) stays valid. A crash
    /// leaves the old header or the new one: the old password or the new
    /// one opens the vault, never neither. CPU-heavy (Argon2id).
    pub fn change_password(
        &self,
        dk: &DataKey,
        new_password: &[u8],
        kdf: Option<KdfParams>,
    ) -> Result<KdfParams, VaultError> {
        let mut header = self
            .header
            .write()
            .expect("header lock is never poisoned: no code panics holding it");
        let kdf = kdf.unwrap_or_else(|| kdf_of(&header));
        kdf.validate().map_err(|e| Invalid(e.to_string()))?;
        let mut salt = vec![0u8; crypto::SALT_LEN];
        crypto::random(&mut salt).map_err(VaultError::Crypto)?;
        let kek = crypto::derive_kek(new_password, &salt, kdf).map_err(VaultError::Crypto)?;
        let wrapped =
            crypto::wrap_key(&kek, &self.vault_id, kdf, dk).map_err(VaultError::Crypto)?;
        // Proof before writing: the new header opens to the same key.
        let back =
            crypto::unwrap_key(&kek, &self.vault_id, kdf, &wrapped).map_err(VaultError::Crypto)?;
        if back.expose_secret() != dk.expose_secret() {
            return Err(VaultError::Crypto(CryptoError::Integrity));
        }
        let new = Header {
            kdf_memory_kib: kdf.memory_kib,
            kdf_iterations: kdf.iterations,
            kdf_parallelism: kdf.parallelism,
            salt,
            wrapped_key: Some(to_record(wrapped)),
            ..header.clone()
        };
        self.store.set_header(&new)?;
        *header = new;
        Ok(kdf)
    }

    /// Checks every record with `dk`: its metadata seal, and that every
    /// sealed value, note and URL opens. Returns the damaged ones as
    /// (key, why); nothing is kept in memory after.
    pub fn check_all(&self, dk: &DataKey) -> Result<Vec<(String, String)>, VaultError> {
        let rk = RecordKey::derive(dk);
        let mut damaged = Vec::new();
        self.store.scan_raw("", |key, bytes| {
            let checked = self
                .store
                .decode_secret::<SecretRecord>(bytes, key)
                .map_err(VaultError::from)
                .and_then(|rec| {
                    self.check_record(&rk, key, &rec.mac_body(), &rec.mac)?;
                    for f in &rec.fields {
                        let sealed = f.value.clone().unwrap_or_default();
                        self.open_slot(dk, key, Slot::Field(&f.name), &sealed)?;
                    }
                    self.open_text(dk, key, Slot::Notes, &rec.notes)?;
                    self.open_text(dk, key, Slot::Url, &rec.url)?;
                    Ok(())
                });
            if let Err(e) = checked {
                damaged.push((key.to_string(), e.to_string()));
            }
            Ok(())
        })?;
        Ok(damaged)
    }

    /// The registered agent hosts: (pid, start time, description).
    pub fn agent_hosts(&self) -> Result<Vec<(crate::caller::Identity, String)>, VaultError> {
        Ok(self
            .store
            .agent_hosts()?
            .hosts
            .into_iter()
            .map(|h| {
                (
                    crate::caller::Identity {
                        pid: h.pid,
                        start: h.start,
                    },
                    h.what,
                )
            })
            .collect())
    }

    /// Replaces the registered agent hosts.
    pub fn set_agent_hosts(
        &self,
        hosts: &[(crate::caller::Identity, String)],
    ) -> Result<(), VaultError> {
        let list = store::AgentHostList {
            hosts: hosts
                .iter()
                .map(|(id, what)| store::AgentHostRecord {
                    pid: id.pid,
                    start: id.start,
                    what: what.clone(),
                })
                .collect(),
        };
        Ok(self.store.set_agent_hosts(&list)?)
    }

    fn applied_aad(&self, which: store::Applied) -> Vec<u8> {
        let what: &[u8] = match which {
            store::Applied::Policy => b"policy",
            store::Applied::Config => b"config",
            store::Applied::ProxyCa => b"proxy_ca",
        };
        crypto::associated_data(&[b"secretctl/v1/applied", &self.vault_id, what])
    }

    /// The text of an applied settings file, if one was applied; an altered
    /// copy is an integrity error.
    pub fn applied_text(
        &self,
        dk: &DataKey,
        which: store::Applied,
    ) -> Result<Option<String>, VaultError> {
        let Some(sealed) = self.store.applied(which)? else {
            return Ok(None);
        };
        let plain =
            crypto::open(dk, &self.applied_aad(which), &from_record(sealed)).map_err(|_| {
                VaultError::Integrity {
                    key: "(settings)".into(),
                    slot: format!("applied {which:?} copy"),
                }
            })?;
        Ok(Some(String::from_utf8_lossy(&plain).into_owned()))
    }

    /// Stores the text of a settings file as its applied copy.
    pub fn set_applied_text(
        &self,
        dk: &DataKey,
        which: store::Applied,
        text: &str,
    ) -> Result<(), VaultError> {
        let sealed = crypto::seal(dk, &self.applied_aad(which), text.as_bytes())
            .map_err(VaultError::Crypto)?;
        Ok(self.store.set_applied(which, &to_record(sealed))?)
    }

    /// Failed unlocks since the last success.
    pub fn failed_unlocks(&self) -> Result<u32, VaultError> {
        Ok(self.store.failures()?.count)
    }

    /// The MAC of a record's metadata under `key`.
    fn record_mac(&self, rk: &RecordKey, key: &str, body: &[u8]) -> [u8; 32] {
        rk.mac(&[b"secretctl/v1/record", &self.vault_id, key.as_bytes(), body])
    }

    /// Refuses a record whose metadata does not carry its MAC (edited in
    /// the file, moved from another key, or written without one).
    fn check_record(
        &self,
        rk: &RecordKey,
        key: &str,
        body: &[u8],
        mac: &[u8],
    ) -> Result<(), VaultError> {
        if mac.is_empty() {
            return Err(VaultError::Damaged {
                key: key.into(),
                why: "it carries no integrity seal".into(),
            });
        }
        if self.record_mac(rk, key, body).as_slice() != mac {
            return Err(VaultError::Damaged {
                key: key.into(),
                why: "its metadata (fields, sensitivity, tags, expiry or bindings) was altered in the file".into(),
            });
        }
        Ok(())
    }

    /// Reads `key`'s record and checks its seal.
    fn checked(&self, dk: &DataKey, key: &str) -> Result<SecretRecord, VaultError> {
        let rec = self.record(key)?;
        self.check_record(&RecordKey::derive(dk), key, &rec.mac_body(), &rec.mac)?;
        Ok(rec)
    }

    fn aad(&self, key: &str, slot: Slot<'_>) -> Vec<u8> {
        let id = &self.vault_id;
        match slot {
            Slot::Field(f) => {
                crypto::associated_data(&[b"secretctl/v1/field", id, key.as_bytes(), f.as_bytes()])
            }
            Slot::Notes => crypto::associated_data(&[b"secretctl/v1/notes", id, key.as_bytes()]),
            Slot::Url => crypto::associated_data(&[b"secretctl/v1/url", id, key.as_bytes()]),
        }
    }

    fn open_slot(
        &self,
        dk: &DataKey,
        key: &str,
        slot: Slot<'_>,
        sealed: &SealedRecord,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        crypto::open(dk, &self.aad(key, slot), &from_record(sealed.clone())).map_err(|_| {
            VaultError::Integrity {
                key: key.to_string(),
                slot: match slot {
                    Slot::Field(f) => format!("field '{f}'"),
                    Slot::Notes => "notes".into(),
                    Slot::Url => "url".into(),
                },
            }
        })
    }

    fn open_text(
        &self,
        dk: &DataKey,
        key: &str,
        slot: Slot<'_>,
        sealed: &Option<SealedRecord>,
    ) -> Result<Option<String>, VaultError> {
        sealed
            .as_ref()
            .map(|s| {
                let bytes = self.open_slot(dk, key, slot, s)?;
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            })
            .transpose()
    }

    /// Creates or updates a secret (one transaction). Returns whether it was
    /// created and its metadata.
    pub fn set(
        &self,
        dk: &DataKey,
        req: &v1::SetRequest,
    ) -> Result<(bool, v1::SecretMeta), VaultError> {
        secret::check_key(&req.key)?;
        let now = now_secs();
        let rk = RecordKey::derive(dk);
        self.store.update(&req.key, |current| {
            let (rec, created) = self.apply(dk, &rk, current, req, now)?;
            let meta = secret::meta(&req.key, &rec);
            Ok::<_, VaultError>((Some(rec), (created, meta)))
        })
    }

    /// The set rules with this vault's sealing.
    /// Refuses to build on a damaged record (its metadata would be kept),
    /// and seals the new one's metadata.
    fn apply(
        &self,
        dk: &DataKey,
        rk: &RecordKey,
        current: Option<SecretRecord>,
        req: &v1::SetRequest,
        now: i64,
    ) -> Result<(SecretRecord, bool), VaultError> {
        if let Some(cur) = &current {
            self.check_record(rk, &req.key, &cur.mac_body(), &cur.mac)?;
        }
        let (mut rec, created) = secret::apply_set(current, req, now, |slot, plain| {
            crypto::seal(dk, &self.aad(&req.key, slot), plain)
                .map(to_record)
                .map_err(VaultError::Crypto)
        })?;
        rec.mac = self.record_mac(rk, &req.key, &rec.mac_body()).to_vec();
        Ok((rec, created))
    }

    /// Creates or updates many secrets in one transaction (imports, bulk
    /// loads): all are stored, or, if any request is invalid, none.
    pub fn set_many(&self, dk: &DataKey, reqs: &[v1::SetRequest]) -> Result<usize, VaultError> {
        let now = now_secs();
        let rk = RecordKey::derive(dk);
        self.store.transaction(|txn| {
            for req in reqs {
                secret::check_key(&req.key)?;
                let current = txn.get(&req.key)?;
                let (rec, _) = self.apply(dk, &rk, current, req, now)?;
                txn.put(&req.key, &rec)?;
            }
            Ok::<_, VaultError>(reqs.len())
        })
    }

    fn record(&self, key: &str) -> Result<SecretRecord, VaultError> {
        secret::check_key(key)?;
        self.store
            .get(key)?
            .ok_or_else(|| VaultError::NotFound(key.to_string()))
    }

    /// Decrypts one field (empty `field`: the default field).
    pub fn get(
        &self,
        dk: &DataKey,
        key: &str,
        field: &str,
    ) -> Result<(String, Zeroizing<Vec<u8>>), VaultError> {
        let rec = self.checked(dk, key)?;
        let f = if field.is_empty() {
            secret::default_field(&rec).ok_or_else(|| VaultError::AmbiguousField {
                key: key.to_string(),
                fields: rec
                    .fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?
        } else {
            rec.fields
                .iter()
                .find(|f| f.name == field)
                .ok_or_else(|| VaultError::NoField {
                    key: key.to_string(),
                    field: field.to_string(),
                })?
        };
        let sealed = f.value.clone().unwrap_or_default();
        let value = self.open_slot(dk, key, Slot::Field(&f.name), &sealed)?;
        Ok((f.name.clone(), value))
    }

    /// Metadata plus notes, URL and the values of non-sensitive fields.
    pub fn metadata(&self, dk: &DataKey, key: &str) -> Result<v1::MetadataResponse, VaultError> {
        let rec = self.checked(dk, key)?;
        let mut public_fields = Vec::new();
        for f in rec.fields.iter().filter(|f| !f.sensitive) {
            let sealed = f.value.clone().unwrap_or_default();
            let value = self.open_slot(dk, key, Slot::Field(&f.name), &sealed)?;
            public_fields.push(v1::NamedValue {
                name: f.name.clone(),
                value: value.to_vec(),
            });
        }
        Ok(v1::MetadataResponse {
            meta: Some(secret::meta(key, &rec)),
            public_fields,
            notes: self.open_text(dk, key, Slot::Notes, &rec.notes)?,
            url: self.open_text(dk, key, Slot::Url, &rec.url)?,
        })
    }

    /// Metadata of matching secrets, sorted by key. A damaged record (it
    /// does not decode, or its metadata fails its seal) is listed as such,
    /// with its key only, and does not stop the listing.
    pub fn list(
        &self,
        dk: &DataKey,
        filter: &ListFilter,
    ) -> Result<Vec<v1::SecretMeta>, VaultError> {
        // Copy the raw records out of one read transaction, then decode
        // them on both cores: decoding and allocating the metadata is most
        // of the cost of listing a large vault.
        let mut raw: Vec<u8> = Vec::new();
        let mut spans: Vec<(usize, usize, usize)> = Vec::new(); // key start, value start, end
        self.store.scan_raw(&filter.prefix, |key, bytes| {
            let start = raw.len();
            raw.extend_from_slice(key.as_bytes());
            raw.extend_from_slice(bytes);
            spans.push((start, start + key.len(), raw.len()));
            Ok(())
        })?;
        let rk = RecordKey::derive(dk);
        let decode = |part: &[(usize, usize, usize)]| -> Vec<v1::SecretMeta> {
            let mut out = Vec::with_capacity(part.len());
            for &(k, v, end) in part {
                let key = std::str::from_utf8(&raw[k..v]).expect("redb keys are &str");
                let checked = self
                    .store
                    .decode_secret::<SecretSummary>(&raw[v..end], key)
                    .map_err(VaultError::from)
                    .and_then(|rec| {
                        self.check_record(&rk, key, &rec.mac_body(), &rec.mac)?;
                        Ok(rec)
                    });
                match checked {
                    Ok(rec) => {
                        let tag_ok = filter.tag.as_ref().is_none_or(|t| rec.tags.contains(t));
                        let exp_ok = filter
                            .expiring_before
                            .is_none_or(|limit| rec.expires_at.is_some_and(|e| e <= limit));
                        if tag_ok && exp_ok {
                            out.push(secret::summary_meta(key, rec));
                        }
                    }
                    Err(e) => out.push(v1::SecretMeta {
                        key: key.to_string(),
                        damaged: e.to_string(),
                        ..Default::default()
                    }),
                }
            }
            out
        };
        if spans.len() < PARALLEL_LIST {
            return Ok(decode(&spans));
        }
        let (first, second) = spans.split_at(spans.len() / 2);
        Ok(std::thread::scope(|s| {
            let later = s.spawn(|| decode(second));
            let mut out = decode(first);
            out.extend(later.join().expect("list decoding does not panic"));
            out
        }))
    }

    /// Secrets whose key matches `pattern` (a glob or a literal name),
    /// sorted, each checked against its seal: a damaged match is an error
    /// naming it.
    pub fn matching(
        &self,
        dk: &DataKey,
        pattern: &str,
    ) -> Result<Vec<(String, SecretRecord)>, VaultError> {
        let prefix_len = pattern.find(['*', '?']).unwrap_or(pattern.len());
        let rk = RecordKey::derive(dk);
        let mut out = Vec::new();
        let mut damaged = None;
        self.store.scan_raw(&pattern[..prefix_len], |key, bytes| {
            if damaged.is_none() && secretctl_proto::names::glob_match(pattern, key) {
                let checked = self
                    .store
                    .decode_secret::<SecretRecord>(bytes, key)
                    .map_err(VaultError::from)
                    .and_then(|rec| {
                        self.check_record(&rk, key, &rec.mac_body(), &rec.mac)?;
                        Ok(rec)
                    });
                match checked {
                    Ok(rec) => out.push((key.to_string(), rec)),
                    Err(e) => damaged = Some(e),
                }
            }
            Ok(())
        })?;
        match damaged {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Every secret with its sensitive fields decrypted (agent-run
    /// redaction and the security score both need them). A damaged record
    /// counts with every field that still decrypts, as if all were
    /// sensitive: its flags cannot be trusted, its values must still be
    /// redacted.
    pub fn sensitive_secrets(&self, dk: &DataKey) -> Result<Vec<SensitiveSecret>, VaultError> {
        let rk = RecordKey::derive(dk);
        let mut records = Vec::new();
        self.store.scan_raw("", |key, bytes| {
            if let Ok(rec) = self.store.decode_secret::<SecretRecord>(bytes, key) {
                let intact = self
                    .check_record(&rk, key, &rec.mac_body(), &rec.mac)
                    .is_ok();
                records.push((key.to_string(), rec, intact));
            }
            Ok(())
        })?;
        Ok(records
            .into_iter()
            .map(|(key, rec, intact)| {
                let values = rec
                    .fields
                    .iter()
                    .filter(|f| f.sensitive || !intact)
                    .filter_map(|f| {
                        let v = self.field_value(dk, &key, &rec, &f.name).ok()?;
                        Some((f.name.clone(), v))
                    })
                    .collect();
                SensitiveSecret {
                    key,
                    record: rec,
                    values,
                }
            })
            .collect())
    }

    /// Every sensitive value in the vault, named like its env var
    /// (`KEY`, or `KEY_FIELD` for fields other than the default one). Agent
    /// runs redact against all of them.
    pub fn sensitive_values(&self, dk: &DataKey) -> Result<Vec<NamedValue>, VaultError> {
        let mut out = Vec::new();
        for s in self.sensitive_secrets(dk)? {
            let default = secret::default_field(&s.record).map(|f| f.name.clone());
            let base = secretctl_proto::names::env_name_for(&s.key, "");
            for (field, value) in s.values {
                let name = if Some(&field) == default.as_ref() {
                    base.clone()
                } else {
                    format!(
                        "{base}_{}",
                        secretctl_proto::names::env_name_for(&field, "")
                    )
                };
                out.push((name, value));
            }
        }
        Ok(out)
    }

    /// Decrypts one field of a record already read.
    pub fn field_value(
        &self,
        dk: &DataKey,
        key: &str,
        rec: &SecretRecord,
        field: &str,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let f = rec
            .fields
            .iter()
            .find(|f| f.name == field)
            .ok_or_else(|| VaultError::NoField {
                key: key.to_string(),
                field: field.to_string(),
            })?;
        let sealed = f.value.clone().unwrap_or_default();
        self.open_slot(dk, key, Slot::Field(&f.name), &sealed)
    }

    /// Deletes a secret (one transaction).
    pub fn delete(&self, key: &str) -> Result<(), VaultError> {
        secret::check_key(key)?;
        self.store.transaction(|txn| {
            if txn.remove(key)? {
                Ok(())
            } else {
                Err(VaultError::NotFound(key.to_string()))
            }
        })
    }

    /// Number of secrets.
    pub fn count(&self) -> u64 {
        self.store.count()
    }

    /// The secrets' version: changes with every stored change of a secret
    /// ([`Store::generation`]).
    pub fn generation(&self) -> u64 {
        self.store.generation()
    }

    /// The underlying store (raw access for tests and maintenance tools).
    pub fn store(&self) -> &Store {
        &self.store
    }
}

fn kdf_of(h: &Header) -> KdfParams {
    KdfParams {
        memory_kib: h.kdf_memory_kib,
        iterations: h.kdf_iterations,
        parallelism: h.kdf_parallelism,
    }
}

fn to_record(s: Sealed) -> SealedRecord {
    SealedRecord {
        nonce: s.nonce,
        ciphertext: s.ciphertext,
    }
}

fn from_record(s: SealedRecord) -> Sealed {
    Sealed {
        nonce: s.nonce,
        ciphertext: s.ciphertext,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: KdfParams = KdfParams::TEST_TINY;

    fn set_req(key: &str, value: &str) -> v1::SetRequest {
        v1::SetRequest {
            key: key.into(),
            fields: vec![v1::FieldInput::new("value", value.as_bytes().to_vec())],
            ..Default::default()
        }
    }

    #[test]
    fn backoff_grows_after_free_attempts() {
        assert_eq!(backoff_secs(0), 0);
        assert_eq!(backoff_secs(4), 0);
        assert_eq!(backoff_secs(5), 1);
        assert_eq!(backoff_secs(6), 2);
        assert_eq!(backoff_secs(10), 32);
        assert_eq!(backoff_secs(100), MAX_BACKOFF_SECS);
    }

    #[test]
    fn init_unlock_set_get_and_swap_detection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.redb");
        let (vault, key) = Vault::init(&path, b"pw", TINY).unwrap();
        vault.set(&key, &set_req("a", "alpha-secret")).unwrap();
        vault.set(&key, &set_req("b", "bravo-secret")).unwrap();
        drop(vault);
        assert!(matches!(
            Vault::init(&path, b"pw", TINY),
            Err(VaultError::AlreadyInitialized(_))
        ));

        let vault = Vault::open(&path).unwrap().unwrap();
        assert!(matches!(
            vault.unlock(b"nope"),
            Err(VaultError::WrongPassword)
        ));
        assert_eq!(vault.failed_unlocks().unwrap(), 1);
        let key = vault.unlock(b"pw").unwrap();
        assert_eq!(vault.failed_unlocks().unwrap(), 0);
        assert_eq!(
            vault.get(&key, "a", "").unwrap().1.as_slice(),
            b"alpha-secret"
        );

        let a = vault.store().get("a").unwrap().unwrap();
        let b = vault.store().get("b").unwrap().unwrap();
        // Whole records moved between keys: their seals name the key.
        vault.store().put_raw("a", &b).unwrap();
        vault.store().put_raw("b", &a).unwrap();
        assert!(matches!(
            vault.get(&key, "a", ""),
            Err(VaultError::Damaged { .. })
        ));
        // A value's ciphertext moved into another record with intact
        // metadata: its associated data names the key and field.
        let mut a2 = a.clone();
        a2.fields[0].value = b.fields[0].value.clone();
        vault.store().put_raw("a", &a2).unwrap();
        assert!(matches!(
            vault.get(&key, "a", ""),
            Err(VaultError::Integrity { .. })
        ));
        vault.store().put_raw("b", &b).unwrap();
        assert!(vault.get(&key, "b", "").is_ok());
    }

    #[test]
    fn backoff_is_enforced_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.redb");
        let (vault, _) = Vault::init(&path, b"pw", TINY).unwrap();
        for _ in 0..FREE_ATTEMPTS {
            assert!(matches!(
                vault.unlock(b"bad"),
                Err(VaultError::WrongPassword)
            ));
        }
        drop(vault);
        let vault = Vault::open(&path).unwrap().unwrap();
        assert!(matches!(vault.unlock(b"pw"), Err(VaultError::Backoff(_))));
    }

    #[test]
    fn list_filters_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, key) = Vault::init(&dir.path().join("v.redb"), b"pw", TINY).unwrap();
        let mut tagged = set_req("app/one", "v1");
        tagged.tags = Some(v1::TagList {
            tags: vec!["prod".into()],
        });
        tagged.expires_at = Some(now_secs() + 100);
        vault.set(&key, &tagged).unwrap();
        vault.set(&key, &set_req("app/two", "v2")).unwrap();
        vault.set(&key, &set_req("other", "v3")).unwrap();
        let keys = |f: &ListFilter| -> Vec<String> {
            vault
                .list(&key, f)
                .unwrap()
                .into_iter()
                .map(|m| m.key)
                .collect()
        };
        assert_eq!(
            keys(&ListFilter::default()),
            ["app/one", "app/two", "other"]
        );
        assert_eq!(
            keys(&ListFilter {
                prefix: "app/".into(),
                ..Default::default()
            }),
            ["app/one", "app/two"]
        );
        assert_eq!(
            keys(&ListFilter {
                tag: Some("prod".into()),
                ..Default::default()
            }),
            ["app/one"]
        );
        assert_eq!(
            keys(&ListFilter {
                expiring_before: Some(now_secs() + 200),
                ..Default::default()
            }),
            ["app/one"]
        );
        vault.delete("other").unwrap();
        let bad = [set_req("bulk/1", "x1"), set_req("bad key", "x2")];
        assert!(vault.set_many(&key, &bad).is_err());
        assert_eq!(vault.count(), 2, "a failed batch stores nothing");
        let good = [set_req("bulk/1", "x1"), set_req("bulk/2", "x2")];
        assert_eq!(vault.set_many(&key, &good).unwrap(), 2);
        assert_eq!(vault.get(&key, "bulk/2", "").unwrap().1.as_slice(), b"x2");
        vault.delete("bulk/1").unwrap();
        vault.delete("bulk/2").unwrap();
        assert!(matches!(
            vault.delete("other"),
            Err(VaultError::NotFound(_))
        ));
        assert_eq!(vault.count(), 2);
        // A listing long enough to be decoded in parallel keeps key order.
        let many: Vec<_> = (0..PARALLEL_LIST + 10)
            .map(|i| set_req(&format!("many/{i:06}"), "v"))
            .collect();
        vault.set_many(&key, &many).unwrap();
        let listed = vault.list(&key, &ListFilter::default()).unwrap();
        assert!(listed.windows(2).all(|w| w[0].key < w[1].key));
        assert_eq!(listed.len(), PARALLEL_LIST + 10 + 2);
    }

    #[test]
    fn altered_metadata_damages_one_record_only() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, key) = Vault::init(&dir.path().join("v.redb"), b"pw", TINY).unwrap();
        let mut two = set_req("db", "pw-1");
        let mut user = v1::FieldInput::new("user", b"app".to_vec());
        user.sensitive = Some(false);
        two.fields.push(user);
        vault.set(&key, &two).unwrap();
        vault.set(&key, &set_req("other", "v")).unwrap();
        // Flip `sensitive` behind the daemon's back, as an offline edit would.
        let mut rec = vault.store.get("db").unwrap().unwrap();
        rec.fields[0].sensitive = false;
        vault.store.put_raw("db", &rec).unwrap();
        let e = vault.metadata(&key, "db").unwrap_err();
        assert!(matches!(e, VaultError::Damaged { .. }), "{e}");
        assert!(e.to_string().contains("delete it"), "{e}");
        assert!(vault.get(&key, "db", "").is_err());
        assert!(vault.matching(&key, "db").is_err());
        assert!(
            vault.set(&key, &set_req("db", "new")).is_err(),
            "no upsert on a damaged record"
        );
        let listed = vault.list(&key, &ListFilter::default()).unwrap();
        assert_eq!(listed.len(), 2);
        assert!(!listed[0].damaged.is_empty() && listed[1].damaged.is_empty());
        // Its values are still redacted in agent runs, all of them.
        let values = vault.sensitive_values(&key).unwrap();
        assert!(values.iter().any(|(_, v)| v.as_slice() == b"app"));
        // Garbage bytes: the same, for that record only.
        vault.store.put_raw_bytes("other", b"\xff\xff\xff").unwrap();
        let listed = vault.list(&key, &ListFilter::default()).unwrap();
        assert!(listed.iter().all(|m| !m.damaged.is_empty()));
        vault.delete("db").unwrap();
        vault.delete("other").unwrap();
        assert!(vault.list(&key, &ListFilter::default()).unwrap().is_empty());
    }
}
