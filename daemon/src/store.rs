//! Persistence: the vault file (`vault.redb`) and its record formats.
//!
//! Owns the redb tables and the protobuf encoding of what is stored in them.
//! Knows nothing of plaintext: values arrive here already sealed.
//!
//! Invariants:
//! - Every change is exactly one redb write transaction, committed with
//!   immediate durability: a crash leaves the last committed state intact.
//! - The unlock-failure counter lives in this file, not beside it, so
//!   deleting a side file cannot reset the password backoff.

use std::path::{Path, PathBuf};

use std::sync::atomic::Ordering;

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};

/// Format of the records below; bumped on incompatible change.
pub const FORMAT_VERSION: u32 = 1;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");
const HEADER_KEY: &str = "header";
const FAILURES_KEY: &str = "unlock_failures";
const AUDIT_ANCHOR_KEY: &str = "audit_anchor";
const AGENT_HOSTS_KEY: &str = "agent_hosts";
const AUDIT_PENDING_KEY: &str = "audit_pending";

/// The head of the chain of audit records written while locked: dropping
/// or altering one is found at the next unlock by comparing with this.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PendingAnchor {
    #[prost(uint64, tag = "1")]
    pub count: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub head: Vec<u8>,
}

/// A copy of a settings file a user applied (contract §9), sealed with the
/// data key; the daemon enforces this copy, not the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Policy,
    Config,
    /// Not a settings file: the credential proxy's local CA (contract
    /// §12), a sealed blob kept the same way.
    ProxyCa,
}

impl Applied {
    fn key(self) -> &'static str {
        match self {
            Applied::Policy => "applied_policy",
            Applied::Config => "applied_config",
            Applied::ProxyCa => "proxy_ca",
        }
    }
}

/// One registered agent host (contract §9), by process identity.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentHostRecord {
    #[prost(int32, tag = "1")]
    pub pid: i32,
    #[prost(uint64, tag = "2")]
    pub start: u64,
    #[prost(string, tag = "3")]
    pub what: String,
}

/// The registered agent hosts.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentHostList {
    #[prost(message, repeated, tag = "1")]
    pub hosts: Vec<AgentHostRecord>,
}

/// The newest sealed audit record, kept in the vault so cutting records off
/// the end of the log is detected.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuditAnchor {
    #[prost(uint64, tag = "1")]
    pub seq: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub mac: Vec<u8>,
}

/// The vault header: everything needed to turn a password into the data key.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Header {
    #[prost(uint32, tag = "1")]
    pub format_version: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub vault_id: Vec<u8>,
    #[prost(uint32, tag = "3")]
    pub kdf_memory_kib: u32,
    #[prost(uint32, tag = "4")]
    pub kdf_iterations: u32,
    #[prost(uint32, tag = "5")]
    pub kdf_parallelism: u32,
    #[prost(bytes = "vec", tag = "6")]
    pub salt: Vec<u8>,
    #[prost(message, optional, tag = "7")]
    pub wrapped_key: Option<SealedRecord>,
    #[prost(int64, tag = "8")]
    pub created_at: i64,
}

/// A message whose content is skipped: decodes only the presence of a field.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Present {}

/// The metadata of a [`FieldRecord`]: same tags, without the sealed value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FieldSummary {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(bool, tag = "2")]
    pub sensitive: bool,
    #[prost(string, tag = "3")]
    pub kind: String,
    #[prost(string, tag = "4")]
    pub hint: String,
    #[prost(string, repeated, tag = "6")]
    pub proxy_hosts: Vec<String>,
}

/// A [`SecretRecord`] read for listing: same tags, sealed parts skipped.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SecretSummary {
    #[prost(message, repeated, tag = "1")]
    pub fields: Vec<FieldSummary>,
    #[prost(string, repeated, tag = "2")]
    pub tags: Vec<String>,
    #[prost(message, optional, tag = "3")]
    pub notes: Option<Present>,
    #[prost(message, optional, tag = "4")]
    pub url: Option<Present>,
    #[prost(int64, optional, tag = "5")]
    pub expires_at: Option<i64>,
    #[prost(int64, tag = "6")]
    pub created_at: i64,
    #[prost(int64, tag = "7")]
    pub updated_at: i64,
    #[prost(message, repeated, tag = "8")]
    pub bindings: Vec<BindingRecord>,
    #[prost(bytes = "vec", tag = "9")]
    pub mac: Vec<u8>,
    #[prost(string, repeated, tag = "10")]
    pub proxy_hosts: Vec<String>,
}

/// What a record's `mac` covers: all its metadata, in a fixed encoding
/// (values, notes and URL are sealed on their own; their presence counts).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MacBody {
    #[prost(message, repeated, tag = "1")]
    pub fields: Vec<FieldSummary>,
    #[prost(string, repeated, tag = "2")]
    pub tags: Vec<String>,
    #[prost(bool, tag = "3")]
    pub has_notes: bool,
    #[prost(bool, tag = "4")]
    pub has_url: bool,
    #[prost(int64, optional, tag = "5")]
    pub expires_at: Option<i64>,
    #[prost(int64, tag = "6")]
    pub created_at: i64,
    #[prost(int64, tag = "7")]
    pub updated_at: i64,
    #[prost(message, repeated, tag = "8")]
    pub bindings: Vec<BindingRecord>,
    /// Where the credential proxy may send it: who may receive a value is
    /// as much a part of the secret as whether it is sensitive.
    #[prost(string, repeated, tag = "9")]
    pub proxy_hosts: Vec<String>,
}

impl SecretSummary {
    /// The bytes its MAC covers.
    pub fn mac_body(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(&MacBody {
            fields: self.fields.clone(),
            tags: self.tags.clone(),
            has_notes: self.notes.is_some(),
            has_url: self.url.is_some(),
            expires_at: self.expires_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            bindings: self.bindings.clone(),
            proxy_hosts: self.proxy_hosts.clone(),
        })
    }
}

impl SecretRecord {
    /// The bytes its MAC covers (the same as its summary's).
    pub fn mac_body(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(&MacBody {
            fields: self
                .fields
                .iter()
                .map(|f| FieldSummary {
                    name: f.name.clone(),
                    sensitive: f.sensitive,
                    kind: f.kind.clone(),
                    hint: f.hint.clone(),
                    proxy_hosts: f.proxy_hosts.clone(),
                })
                .collect(),
            tags: self.tags.clone(),
            has_notes: self.notes.is_some(),
            has_url: self.url.is_some(),
            expires_at: self.expires_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            bindings: self.bindings.clone(),
            proxy_hosts: self.proxy_hosts.clone(),
        })
    }
}

/// Failed unlock attempts since the last success.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Failures {
    #[prost(uint32, tag = "1")]
    pub count: u32,
    #[prost(int64, tag = "2")]
    pub last_failure_unix_ms: i64,
}

/// Nonce and ciphertext of one sealed value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SealedRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub nonce: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub ciphertext: Vec<u8>,
}

/// One named field of a secret; its value is always sealed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FieldRecord {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(bool, tag = "2")]
    pub sensitive: bool,
    #[prost(string, tag = "3")]
    pub kind: String,
    #[prost(string, tag = "4")]
    pub hint: String,
    #[prost(message, optional, tag = "5")]
    pub value: Option<SealedRecord>,
    /// Hosts the credential proxy may send this field to (contract §12).
    #[prost(string, repeated, tag = "6")]
    pub proxy_hosts: Vec<String>,
}

/// An environment binding: inject `field` as `env`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BindingRecord {
    #[prost(string, tag = "1")]
    pub env: String,
    #[prost(string, tag = "2")]
    pub field: String,
}

/// A stored secret. Metadata is clear; values, notes and URL are sealed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SecretRecord {
    #[prost(message, repeated, tag = "1")]
    pub fields: Vec<FieldRecord>,
    #[prost(string, repeated, tag = "2")]
    pub tags: Vec<String>,
    #[prost(message, optional, tag = "3")]
    pub notes: Option<SealedRecord>,
    #[prost(message, optional, tag = "4")]
    pub url: Option<SealedRecord>,
    #[prost(int64, optional, tag = "5")]
    pub expires_at: Option<i64>,
    #[prost(int64, tag = "6")]
    pub created_at: i64,
    #[prost(int64, tag = "7")]
    pub updated_at: i64,
    #[prost(message, repeated, tag = "8")]
    pub bindings: Vec<BindingRecord>,
    /// HMAC of the metadata with the record key (see [`MacBody`]).
    #[prost(bytes = "vec", tag = "9")]
    pub mac: Vec<u8>,
    /// Hosts the credential proxy may send its sensitive fields to.
    #[prost(string, repeated, tag = "10")]
    pub proxy_hosts: Vec<String>,
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed; `cause` is redb's text (deliberately not an
    /// error source, so it is printed once), `hint` what to do.
    #[error("vault file {path}: {cause}{hint}")]
    Db {
        path: PathBuf,
        cause: String,
        hint: &'static str,
    },
    #[error(
        "vault file {path} is damaged: its {what} does not decode; restore vault.redb from a backup"
    )]
    Corrupt { path: PathBuf, what: String },
    /// One secret's stored bytes do not decode; the others are unaffected.
    #[error("the stored record of secret '{key}' does not decode")]
    DamagedSecret { key: String },
    #[error("vault file {0} has no header: it was never initialized")]
    NoHeader(PathBuf),
    #[error(
        "vault file {0} could not be opened again after an I/O error: retry when the disk is writable"
    )]
    Reopen(PathBuf),
    /// A restore replaced the file while this write waited: nothing was
    /// written to the old one.
    #[error(
        "the vault was replaced by a restore while this request ran: nothing was stored; unlock the restored vault and run it again"
    )]
    Replaced,
    /// The snapshot found a table this version does not know.
    #[error(
        "vault file {path} holds a table this secretctl does not know ('{table}'): refusing to back up part of it"
    )]
    UnknownTable { path: PathBuf, table: String },
}

/// An open write transaction on the secrets table (see [`Store::transaction`]).
pub struct Txn<'a> {
    table: redb::Table<'a, &'static str, &'static [u8]>,
    store: &'a Store,
    /// Secrets added minus removed, applied to the cached count on commit.
    delta: i64,
}

impl Txn<'_> {
    /// The current record of `key`, including this transaction's writes.
    pub fn get(&self, key: &str) -> Result<Option<SecretRecord>, StoreError> {
        let got = self.table.get(key).map_err(|e| self.store.err(e))?;
        got.map(|v| self.store.decode_secret(v.value(), key))
            .transpose()
    }

    /// Whether `key` is stored (without decoding it: a damaged record
    /// counts).
    pub fn contains(&self, key: &str) -> Result<bool, StoreError> {
        let got = self.table.get(key).map_err(|e| self.store.err(e))?;
        Ok(got.is_some())
    }

    /// Inserts or replaces `key`.
    pub fn put(&mut self, key: &str, rec: &SecretRecord) -> Result<(), StoreError> {
        let bytes = prost::Message::encode_to_vec(rec);
        let old = self
            .table
            .insert(key, bytes.as_slice())
            .map_err(|e| self.store.err(e))?;
        if old.is_none() {
            self.delta += 1;
        }
        Ok(())
    }

    /// Removes `key` if present (without decoding it: a damaged record can
    /// be removed); returns whether it was.
    pub fn remove(&mut self, key: &str) -> Result<bool, StoreError> {
        let old = self.table.remove(key).map_err(|e| self.store.err(e))?;
        if old.is_some() {
            self.delta -= 1;
        }
        Ok(old.is_some())
    }
}

/// A value no store of this process had before (see [`Store::generation`]).
fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// The open vault file.
///
/// After an I/O error (a full disk, say) redb refuses every later write
/// until the database is opened again; the store does that itself at the
/// next operation, so no restart is needed once the cause is gone.
pub struct Store {
    db: std::sync::RwLock<Option<std::sync::Arc<Database>>>,
    /// Set by an I/O error: reopen before the next operation.
    broken: std::sync::atomic::AtomicBool,
    path: PathBuf,
    /// Number of secrets, kept in memory so `Status` never touches disk.
    count: std::sync::atomic::AtomicU64,
    /// The secrets table's version: a fresh [`next_generation`] after every
    /// commit that may have changed it (caches of what the secrets say are
    /// keyed by it; see [`Store::generation`]).
    generation: std::sync::atomic::AtomicU64,
    /// Set once a restore replaced the file: every later write fails.
    retired: std::sync::atomic::AtomicBool,
}

impl Store {
    /// Opens an existing vault file, or returns `None` when there is none.
    pub fn open(path: &Path) -> Result<Option<Store>, StoreError> {
        if !path.exists() {
            return Ok(None);
        }
        let db = Database::open(path).map_err(|e| db_err(path, e))?;
        let store = Store::over(db, path);
        store.count.store(store.count_on_disk()?, Ordering::SeqCst);
        Ok(Some(store))
    }

    /// Creates the vault file (or opens one a crashed `init` left without a
    /// header) and writes the header in one transaction.
    pub fn create(path: &Path, header: &Header) -> Result<Store, StoreError> {
        let db = Database::create(path).map_err(|e| db_err(path, e))?;
        let store = Store::over(db, path);
        store.count.store(store.count_on_disk()?, Ordering::SeqCst);
        store.write_meta(|meta| {
            meta.insert(HEADER_KEY, prost::Message::encode_to_vec(header).as_slice())?;
            Ok(())
        })?;
        Ok(store)
    }

    fn over(db: Database, path: &Path) -> Store {
        Store {
            db: std::sync::RwLock::new(Some(std::sync::Arc::new(db))),
            broken: Default::default(),
            path: path.to_path_buf(),
            count: Default::default(),
            generation: std::sync::atomic::AtomicU64::new(next_generation()),
            retired: Default::default(),
        }
    }

    /// A write transaction, unless a restore replaced this file: checked
    /// after the transaction began, so a write that waited for the
    /// restore's lock fails instead of landing in the replaced file.
    fn begin_write(&self) -> Result<redb::WriteTransaction, StoreError> {
        let txn = self.db()?.begin_write().map_err(|e| self.err(e))?;
        if self.retired.load(Ordering::SeqCst) {
            return Err(StoreError::Replaced);
        }
        Ok(txn)
    }

    /// The database, opened again first if an I/O error broke it.
    fn db(&self) -> Result<std::sync::Arc<Database>, StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            self.reopen()?;
        }
        self.db
            .read()
            .expect("db lock is never poisoned")
            .clone()
            .ok_or_else(|| StoreError::Reopen(self.path.clone()))
    }

    fn reopen(&self) -> Result<(), StoreError> {
        // The path now names the restored file: never open it through the
        // store of the file it replaced.
        if self.retired.load(Ordering::SeqCst) {
            return Err(StoreError::Replaced);
        }
        let mut slot = self.db.write().expect("db lock is never poisoned");
        if !self.broken.load(Ordering::SeqCst) {
            return Ok(());
        }
        *slot = None; // redb must close the file before it can open it again
        let db = Database::open(&self.path).map_err(|e| db_err(&self.path, e))?;
        *slot = Some(std::sync::Arc::new(db));
        self.broken.store(false, Ordering::SeqCst);
        drop(slot);
        self.generation.store(next_generation(), Ordering::SeqCst);
        if let Ok(n) = self.count_on_disk() {
            self.count.store(n, Ordering::SeqCst);
        }
        tracing::warn!(path = %self.path.display(), "vault file reopened after an I/O error");
        Ok(())
    }

    /// Path of the vault file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the file holds a header (the vault was initialized).
    pub fn has_header(&self) -> Result<bool, StoreError> {
        Ok(self.read_meta(HEADER_KEY)?.is_some())
    }

    /// The vault header.
    pub fn header(&self) -> Result<Header, StoreError> {
        let bytes = self
            .read_meta(HEADER_KEY)?
            .ok_or_else(|| StoreError::NoHeader(self.path.clone()))?;
        self.decode(&bytes, "header")
    }

    /// Replaces the header (one transaction: a crash leaves the old header
    /// or the new one, never a mix; `password change` relies on it).
    pub fn set_header(&self, header: &Header) -> Result<(), StoreError> {
        self.write_meta(|meta| {
            meta.insert(HEADER_KEY, prost::Message::encode_to_vec(header).as_slice())?;
            Ok(())
        })
    }

    /// Unlock failures since the last success.
    pub fn failures(&self) -> Result<Failures, StoreError> {
        match self.read_meta(FAILURES_KEY)? {
            Some(b) => self.decode(&b, "unlock failures"),
            None => Ok(Failures::default()),
        }
    }

    /// Replaces the failure counter (one transaction).
    pub fn set_failures(&self, f: &Failures) -> Result<(), StoreError> {
        self.write_meta(|meta| {
            if f.count == 0 {
                meta.remove(FAILURES_KEY)?;
            } else {
                meta.insert(FAILURES_KEY, prost::Message::encode_to_vec(f).as_slice())?;
            }
            Ok(())
        })
    }

    /// The audit anchor, if any record was ever sealed.
    pub fn audit_anchor(&self) -> Result<Option<AuditAnchor>, StoreError> {
        self.read_meta(AUDIT_ANCHOR_KEY)?
            .map(|b| self.decode(&b, "audit anchor"))
            .transpose()
    }

    /// Replaces the audit anchor (one transaction).
    pub fn set_audit_anchor(&self, a: &AuditAnchor) -> Result<(), StoreError> {
        self.write_meta(|meta| {
            meta.insert(
                AUDIT_ANCHOR_KEY,
                prost::Message::encode_to_vec(a).as_slice(),
            )?;
            Ok(())
        })
    }

    /// The head of the pending audit chain (none: nothing pending).
    pub fn audit_pending(&self) -> Result<Option<PendingAnchor>, StoreError> {
        self.read_meta(AUDIT_PENDING_KEY)?
            .map(|b| self.decode(&b, "audit pending anchor"))
            .transpose()
    }

    /// Replaces the head of the pending audit chain (count 0: removes it).
    pub fn set_audit_pending(&self, a: &PendingAnchor) -> Result<(), StoreError> {
        self.write_meta(|meta| {
            if a.count == 0 {
                meta.remove(AUDIT_PENDING_KEY)?;
            } else {
                meta.insert(
                    AUDIT_PENDING_KEY,
                    prost::Message::encode_to_vec(a).as_slice(),
                )?;
            }
            Ok(())
        })
    }

    /// The registered agent hosts (empty if none were stored).
    pub fn agent_hosts(&self) -> Result<AgentHostList, StoreError> {
        match self.read_meta(AGENT_HOSTS_KEY)? {
            Some(b) => self.decode(&b, "agent hosts"),
            None => Ok(AgentHostList::default()),
        }
    }

    /// Replaces the agent hosts (one transaction).
    pub fn set_agent_hosts(&self, list: &AgentHostList) -> Result<(), StoreError> {
        self.write_meta(|meta| {
            meta.insert(
                AGENT_HOSTS_KEY,
                prost::Message::encode_to_vec(list).as_slice(),
            )?;
            Ok(())
        })
    }

    /// The sealed applied copy of a settings file, if one was applied.
    pub fn applied(&self, which: Applied) -> Result<Option<SealedRecord>, StoreError> {
        self.read_meta(which.key())?
            .map(|b| self.decode(&b, which.key()))
            .transpose()
    }

    /// Stores the sealed applied copy of a settings file (one transaction).
    pub fn set_applied(&self, which: Applied, sealed: &SealedRecord) -> Result<(), StoreError> {
        self.write_meta(|meta| {
            meta.insert(
                which.key(),
                prost::Message::encode_to_vec(sealed).as_slice(),
            )?;
            Ok(())
        })
    }

    /// One secret's record.
    pub fn get(&self, key: &str) -> Result<Option<SecretRecord>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = match txn.open_table(SECRETS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let got = table.get(key).map_err(|e| self.err(e))?;
        got.map(|v| self.decode_secret(v.value(), key)).transpose()
    }

    /// Which of `keys` are stored, from one read transaction (records are
    /// not decoded: a damaged one counts).
    pub fn contains_each<'k>(
        &self,
        keys: impl Iterator<Item = &'k str>,
    ) -> Result<Vec<bool>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = match txn.open_table(SECRETS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Ok(keys.map(|_| false).collect());
            }
            Err(e) => return Err(self.err(e)),
        };
        keys.map(|k| table.get(k).map(|v| v.is_some()).map_err(|e| self.err(e)))
            .collect()
    }

    /// Read-modify-write of one secret in a single transaction. `f` gets the
    /// current record and returns the new one (`None` deletes) or an error,
    /// in which case nothing is written.
    pub fn update<T, E>(
        &self,
        key: &str,
        f: impl FnOnce(Option<SecretRecord>) -> Result<(Option<SecretRecord>, T), E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.transaction(|txn| {
            let (next, out) = f(txn.get(key)?)?;
            match next {
                Some(rec) => txn.put(key, &rec)?,
                None => {
                    txn.remove(key)?;
                }
            }
            Ok(out)
        })
    }

    /// Runs `f` in one write transaction over the secrets table: committed
    /// when `f` succeeds, discarded when it fails.
    pub fn transaction<T, E>(&self, f: impl FnOnce(&mut Txn<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let txn = self.begin_write()?;
        let out = {
            let table = txn.open_table(SECRETS).map_err(|e| self.err(e))?;
            let mut t = Txn {
                table,
                store: self,
                delta: 0,
            };
            let out = f(&mut t)?;
            (out, t.delta)
        };
        let (out, delta) = out;
        txn.commit().map_err(|e| self.err(e))?;
        self.count.fetch_add(delta as u64, Ordering::SeqCst);
        self.generation.store(next_generation(), Ordering::SeqCst);
        Ok(out)
    }

    /// Visits secrets whose key starts with `prefix`, in key order.
    /// Records decode as `M`: a [`SecretRecord`], or a [`SecretSummary`]
    /// that skips the sealed values (listing 100k secrets decodes no
    /// ciphertext).
    pub fn scan<M: prost::Message + Default>(
        &self,
        prefix: &str,
        mut visit: impl FnMut(&str, M),
    ) -> Result<(), StoreError> {
        self.scan_raw(prefix, |key, bytes| {
            visit(key, self.decode_secret(bytes, key)?);
            Ok(())
        })
    }

    /// Visits the stored bytes of secrets whose key starts with `prefix`.
    pub fn scan_raw(
        &self,
        prefix: &str,
        mut visit: impl FnMut(&str, &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = match txn.open_table(SECRETS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(self.err(e)),
        };
        for entry in table.range(prefix..).map_err(|e| self.err(e))? {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            let key = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            visit(key, v.value())?;
        }
        Ok(())
    }

    /// Number of secrets (cached; exact, since every write goes through
    /// [`Store::transaction`]).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// The secrets table's version in this process: it changes with every
    /// committed write of a secret (and when the file is opened again), and
    /// no two stores ever share a value, so a cache keyed by it is never
    /// served for another vault file or an older state of this one.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn count_on_disk(&self) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        match txn.open_table(SECRETS) {
            Ok(t) => t.len().map_err(|e| self.err(e)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Raw access for tests and tools that must alter stored bytes (tamper
    /// tests): replaces one secret's record as given, unchecked.
    pub fn put_raw(&self, key: &str, rec: &SecretRecord) -> Result<(), StoreError> {
        self.update(key, |_| Ok::<_, StoreError>((Some(rec.clone()), ())))
    }

    /// Raw access for tamper tests: replaces one secret's stored bytes.
    pub fn put_raw_bytes(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let txn = self.begin_write()?;
        {
            let mut t = txn.open_table(SECRETS).map_err(|e| self.err(e))?;
            t.insert(key, bytes).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))?;
        self.generation.store(next_generation(), Ordering::SeqCst);
        Ok(())
    }

    /// A consistent view of the whole file at this instant: a redb read
    /// transaction, which sees the last commit and nothing after it, while
    /// writers go on. See [`Snapshot::write_to`].
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        Ok(Snapshot {
            txn,
            path: self.path.clone(),
        })
    }

    /// Stops every write to this file, for a restore that replaces it:
    /// waits for the write transaction in progress to end, then holds the
    /// write lock until the guard is dropped. Writes that were waiting, and
    /// every later one, fail with [`StoreError::Replaced`] (unless the
    /// restore is undone with [`Retired::undo`]). Reads go on.
    pub fn retire(&self) -> Result<Retired<'_>, StoreError> {
        let txn = self.begin_write()?;
        self.retired.store(true, Ordering::SeqCst);
        Ok(Retired {
            txn: Some(txn),
            store: self,
        })
    }

    /// Writes what a restored vault takes over from the vault it replaces,
    /// in one transaction: `Some` entries are set, `None` ones left as the
    /// backup had them.
    pub fn carry_over(&self, c: &Carried) -> Result<(), StoreError> {
        // (entry, Some(bytes) to set, Some(empty) to remove, None to keep)
        let entries: [(&str, Option<Vec<u8>>); 4] = [
            (
                FAILURES_KEY,
                c.failures.as_ref().map(|f| {
                    if f.count == 0 {
                        Vec::new()
                    } else {
                        prost::Message::encode_to_vec(f)
                    }
                }),
            ),
            (
                AGENT_HOSTS_KEY,
                c.agent_hosts.as_ref().map(prost::Message::encode_to_vec),
            ),
            (
                AUDIT_ANCHOR_KEY,
                c.audit_anchor.as_ref().map(|a| {
                    a.as_ref()
                        .map(prost::Message::encode_to_vec)
                        .unwrap_or_default()
                }),
            ),
            (
                AUDIT_PENDING_KEY,
                c.audit_pending.as_ref().map(|a| {
                    a.as_ref()
                        .filter(|a| a.count > 0)
                        .map(prost::Message::encode_to_vec)
                        .unwrap_or_default()
                }),
            ),
        ];
        self.write_meta(|meta| {
            for (key, bytes) in &entries {
                match bytes {
                    Some(b) if b.is_empty() => {
                        meta.remove(*key)?;
                    }
                    Some(b) => {
                        meta.insert(*key, b.as_slice())?;
                    }
                    None => {}
                }
            }
            Ok(())
        })
    }

    /// Checks a vault file that is not open anywhere (a restore's staged
    /// copy) with redb's own integrity check: every page and checksum.
    pub fn check_file(path: &Path) -> Result<(), StoreError> {
        let mut db = Database::open(path).map_err(|e| db_err(path, e))?;
        match db.check_integrity() {
            Ok(true) => Ok(()),
            Ok(false) => Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                what: "redb structure (it was repaired on open, so it was not cleanly written)"
                    .into(),
            }),
            Err(e) => Err(db_err(path, e)),
        }
    }

    fn read_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let v = table.get(name).map_err(|e| self.err(e))?;
        Ok(v.map(|v| v.value().to_vec()))
    }

    /// One write transaction on the `meta` table.
    fn write_meta(
        &self,
        f: impl FnOnce(&mut redb::Table<&str, &[u8]>) -> Result<(), redb::Error>,
    ) -> Result<(), StoreError> {
        let txn = self.begin_write()?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            f(&mut meta).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    /// Decodes the stored bytes of secret `key`.
    pub fn decode_secret<M: prost::Message + Default>(
        &self,
        bytes: &[u8],
        key: &str,
    ) -> Result<M, StoreError> {
        M::decode(bytes).map_err(|_| StoreError::DamagedSecret {
            key: key.to_string(),
        })
    }

    /// Decodes stored bytes (`what`: the meta entry they belong to).
    pub fn decode<M: prost::Message + Default>(
        &self,
        bytes: &[u8],
        what: &str,
    ) -> Result<M, StoreError> {
        M::decode(bytes).map_err(|_| StoreError::Corrupt {
            path: self.path.clone(),
            what: what.to_string(),
        })
    }

    fn err(&self, e: impl Into<redb::Error>) -> StoreError {
        let e: redb::Error = e.into();
        if matches!(e, redb::Error::Io(_) | redb::Error::PreviousIo) {
            self.broken.store(true, Ordering::SeqCst);
        }
        db_err(&self.path, e)
    }
}

/// What a restored vault takes over from the one it replaces (see
/// [`Store::carry_over`]); `None`: keep the backup's.
#[derive(Debug, Default, Clone)]
pub struct Carried {
    pub failures: Option<Failures>,
    pub agent_hosts: Option<AgentHostList>,
    /// `Some(None)`: no anchor.
    pub audit_anchor: Option<Option<AuditAnchor>>,
    /// `Some(None)`: nothing pending.
    pub audit_pending: Option<Option<PendingAnchor>>,
}

/// The write lock of a store a restore is replacing (see [`Store::retire`]).
pub struct Retired<'a> {
    txn: Option<redb::WriteTransaction>,
    store: &'a Store,
}

impl Retired<'_> {
    /// The restore failed before the file was replaced: writes may go on.
    pub fn undo(mut self) {
        self.store.retired.store(false, Ordering::SeqCst);
        if let Some(txn) = self.txn.take() {
            let _ = txn.abort();
        }
    }
}

impl Drop for Retired<'_> {
    fn drop(&mut self) {
        if let Some(txn) = self.txn.take() {
            let _ = txn.abort();
        }
    }
}

/// A consistent, read-only view of the vault file (see [`Store::snapshot`]).
pub struct Snapshot {
    txn: redb::ReadTransaction,
    path: PathBuf,
}

impl Snapshot {
    fn err(&self, e: impl Into<redb::Error>) -> StoreError {
        db_err(&self.path, e)
    }

    /// Copies every table of the snapshot into a new vault file at `dest`,
    /// in one transaction committed durably; returns the number of
    /// secrets.
    ///
    /// Why a copy through a read transaction, not a copy of the file's
    /// bytes: redb writes pages in place and only the commit slot in the
    /// file header says which pages are live, so bytes copied while any
    /// write runs can mix two states. A read transaction sees exactly one
    /// committed state, whatever writers do meanwhile, and the new file
    /// holds exactly that (compacted). A table this version does not know
    /// is refused rather than left out.
    pub fn write_to(&self, dest: &Path) -> Result<u64, StoreError> {
        for t in self.txn.list_tables().map_err(|e| self.err(e))? {
            let name = t.name().to_string();
            if name != META.name() && name != SECRETS.name() {
                return Err(StoreError::UnknownTable {
                    path: self.path.clone(),
                    table: name,
                });
            }
        }
        if let Some(t) = self
            .txn
            .list_multimap_tables()
            .map_err(|e| self.err(e))?
            .next()
        {
            return Err(StoreError::UnknownTable {
                path: self.path.clone(),
                table: redb::MultimapTableHandle::name(&t).to_string(),
            });
        }
        let db = Database::create(dest).map_err(|e| db_err(dest, e))?;
        let txn = db.begin_write().map_err(|e| db_err(dest, e))?;
        let mut secrets = 0;
        for def in [META, SECRETS] {
            let from = match self.txn.open_table(def) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => continue,
                Err(e) => return Err(self.err(e)),
            };
            let mut to = txn.open_table(def).map_err(|e| db_err(dest, e))?;
            for entry in from.iter().map_err(|e| self.err(e))? {
                let (k, v) = entry.map_err(|e| self.err(e))?;
                to.insert(k.value(), v.value())
                    .map_err(|e| db_err(dest, e))?;
                if def.name() == SECRETS.name() {
                    secrets += 1;
                }
            }
        }
        txn.commit().map_err(|e| db_err(dest, e))?;
        drop(db);
        Ok(secrets)
    }
}

fn db_err(path: &Path, e: impl Into<redb::Error>) -> StoreError {
    let e: redb::Error = e.into();
    let hint = match &e {
        redb::Error::Corrupted(_) => " (the file is damaged: restore vault.redb from a backup)",
        redb::Error::Io(io) if io.raw_os_error() == Some(nix::libc::ENOSPC) => {
            " (the disk is full: free space and retry; no restart is needed)"
        }
        redb::Error::DatabaseAlreadyOpen => {
            " (another process has it open: is a second secretctld running on another socket?)"
        }
        _ => "",
    };
    StoreError::Db {
        path: path.to_path_buf(),
        cause: e.to_string(),
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format_version: FORMAT_VERSION,
            vault_id: vec![1; 16],
            salt: vec![2; 16],
            ..Default::default()
        }
    }

    #[test]
    fn missing_file_is_none_and_create_writes_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.redb");
        assert!(Store::open(&path).unwrap().is_none());
        let store = Store::create(&path, &header()).unwrap();
        assert_eq!(store.header().unwrap(), header());
        drop(store);
        let store = Store::open(&path).unwrap().unwrap();
        assert!(store.has_header().unwrap());
        assert_eq!(store.count(), 0);
    }

    #[test]
    fn update_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("v.redb"), &header()).unwrap();
        let rec = SecretRecord {
            tags: vec!["t".into()],
            ..Default::default()
        };
        store
            .update("a/b", |cur| {
                assert!(cur.is_none());
                Ok::<_, StoreError>((Some(rec.clone()), ()))
            })
            .unwrap();
        let failed: Result<(), StoreError> =
            store.update("a/c", |_| Err(StoreError::NoHeader(PathBuf::from("x"))));
        assert!(failed.is_err());
        assert_eq!(store.get("a/b").unwrap(), Some(rec));
        assert_eq!(store.get("a/c").unwrap(), None);
        assert_eq!(store.count(), 1);
        let mut seen = vec![];
        store
            .scan("a/", |k, _: SecretSummary| seen.push(k.to_string()))
            .unwrap();
        assert_eq!(seen, ["a/b"]);
        store
            .update("a/b", |_| Ok::<_, StoreError>((None, ())))
            .unwrap();
        assert_eq!(store.count(), 0);
        assert_eq!(store.count_on_disk().unwrap(), 0);
    }

    #[test]
    fn failures_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("v.redb"), &header()).unwrap();
        assert_eq!(store.failures().unwrap().count, 0);
        let f = Failures {
            count: 3,
            last_failure_unix_ms: 42,
        };
        store.set_failures(&f).unwrap();
        assert_eq!(store.failures().unwrap(), f);
        store.set_failures(&Failures::default()).unwrap();
        assert_eq!(store.failures().unwrap().count, 0);
    }
}
