//! The node's storage: RocksDB with one column family per kind of record ([`Column`]), one atomic
//! write batch per ledger entry, and the schema checked at open ([`schema`]).
//!
//! Two handles on one database. [`StoreWriter`] is the only one that writes (`write.rs`): the ledger
//! writer thread owns it, so every write is serialised without a lock. [`Store`] reads (`read.rs`):
//! a cheap `Clone`, `Send + Sync` handle that any thread may use at once (HTTP handlers through
//! `spawn_blocking`). Each write is one RocksDB `WriteBatch`, so a reader or a crash sees an
//! entry's effects entirely or not at all. Own-log appends, votes, in-flight redemptions and
//! checkpoints are written with `sync`, because the node promises them to someone (the POS, a
//! redeemer, its partners) before it could be asked again; replicated peer entries are not, since a
//! peer can always send them again. Values are typed: each column holds the canonical encoding of
//! one type ([`Column`] says which), decoded and checked on the way out.
//!
//! The ledger side ([`coalition_core::state::LedgerView`] and
//! [`coalition_core::state::LedgerStore`]) is implemented in `ledger.rs`.
//!
//! ```no_run
//! # fn demo(genesis: coalition_core::genesis::Genesis, me: coalition_core::record::PartnerId)
//! # -> Result<(), coalition_node::store::StoreError> {
//! use coalition_node::store::Store;
//! let writer = Store::open("/var/lib/coalition/db", genesis.hash(), me)?;
//! let store = writer.reader();
//! for (partner, head) in store.heads()? {
//!     println!("{partner}: {} entries, root {}", head.size, head.root());
//! }
//! # Ok(()) }
//! ```

mod columns;
mod error;
mod keys;
mod ledger;
mod read;
pub mod schema;
mod write;

pub use columns::Column;
pub use error::{StoreError, StoreResult};
pub use schema::CURRENT_SCHEMA_VERSION;
pub use write::{SigOutcome, StoreWriter};

use coalition_core::encoding;
use coalition_core::hash::Hash;
use coalition_core::record::{PartnerId, Points, Timestamp};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType,
    DBRecoveryMode, Direction, IteratorMode, Options, ReadOptions, DB,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const MIB: usize = 1 << 20;

/// Tuning of the RocksDB instance. The defaults keep a node with a million lots well under 512 MiB
/// of resident memory (about 150 MiB peak in `a_million_lots_stay_under_512_mib`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Shared block cache for all columns (data, index and filter blocks), in bytes.
    pub block_cache_bytes: usize,
    /// Memory for memtables across all columns, in bytes; RocksDB flushes when it is reached.
    pub write_buffer_bytes: usize,
    /// Most SST files held open at once.
    pub max_open_files: i32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            block_cache_bytes: 64 * MIB,
            write_buffer_bytes: 64 * MIB,
            max_open_files: 256,
        }
    }
}

/// Where a record lives: the log position of the entry that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordLocation {
    /// The log.
    pub partner: PartnerId,
    /// The entry's position in it.
    pub seq: u64,
}

/// Whether a history line adds or removes points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryKind {
    /// Points issued to the member (a lot).
    Earn,
    /// Points the member redeemed (a certified order).
    Redeem,
}

impl HistoryKind {
    /// `earn` or `redeem`, as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryKind::Earn => "earn",
            HistoryKind::Redeem => "redeem",
        }
    }
}

/// The value of a `history` row (the key holds the member, time and entry position).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRow {
    /// Earn or redeem.
    pub kind: HistoryKind,
    /// Points (always positive; the kind gives the direction).
    pub points: Points,
    /// The issuer (earn) or the redeemer (redeem).
    pub partner: PartnerId,
    /// The lot id (earn) or the order id (redeem).
    pub record: Hash,
}

/// One line of a member's history, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    /// When (the record's time).
    pub time: Timestamp,
    /// The entry that carries the record.
    pub entry: RecordLocation,
    /// What happened.
    pub row: HistoryRow,
}

/// The node's database, to read. Cheap to clone; all clones share one RocksDB instance.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: DB,
    path: PathBuf,
    genesis_hash: Hash,
    me: PartnerId,
    /// Whether any fraud proof may be stored: until one is, the ledger's per-entry "is this author
    /// banned" question is answered without a scan.
    fraud_held: AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("partner", &self.inner.me)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the database at `path` for the coalition `genesis_hash` as partner `me`,
    /// with [`StoreOptions::default`]: its one writer, from which readers are taken
    /// ([`StoreWriter::reader`]).
    ///
    /// Errors: [`StoreError::Open`] if `path` is not a RocksDB database (a file, or a non-empty
    /// directory without one), is corrupt or is locked by another process;
    /// [`StoreError::SchemaMismatch`], [`StoreError::WrongGenesis`] or [`StoreError::WrongPartner`]
    /// if it was written by another build, coalition or partner.
    pub fn open(
        path: impl AsRef<Path>,
        genesis_hash: Hash,
        me: PartnerId,
    ) -> StoreResult<StoreWriter> {
        Store::open_with(path, genesis_hash, me, StoreOptions::default())
    }

    /// [`Store::open`] with explicit tuning.
    pub fn open_with(
        path: impl AsRef<Path>,
        genesis_hash: Hash,
        me: PartnerId,
        options: StoreOptions,
    ) -> StoreResult<StoreWriter> {
        let path = path.as_ref().to_path_buf();
        let open_err = |reason: String| StoreError::Open {
            path: path.clone(),
            reason,
        };
        let existing = check_directory(&path)?;

        let cache = Cache::new_lru_cache(options.block_cache_bytes);
        let db_opts = db_options(&options);
        // A database written by a newer build may hold columns we do not know; RocksDB refuses to
        // open it without them, so open them too and let the schema check explain.
        let mut names: Vec<String> = Column::ALL.iter().map(|c| c.name().to_owned()).collect();
        if existing {
            let on_disk = DB::list_cf(&db_opts, &path).map_err(|e| open_err(describe(e)))?;
            names.extend(
                on_disk
                    .into_iter()
                    .filter(|n| n != "default" && Column::from_name(n).is_none()),
            );
        }
        let descriptors = names.into_iter().map(|name| {
            let opts = match Column::from_name(&name) {
                Some(column) => column_options(column, &cache, &options),
                None => Options::default(),
            };
            ColumnFamilyDescriptor::new(name, opts)
        });
        let db = DB::open_cf_descriptors(&db_opts, &path, descriptors)
            .map_err(|e| open_err(describe(e)))?;
        schema::check_or_init(&db, genesis_hash, me)?;
        let store = Store {
            inner: Arc::new(Inner {
                db,
                path,
                genesis_hash,
                me,
                fraud_held: AtomicBool::new(true),
            }),
        };
        let any_fraud = store.any_under(Column::Fraud, &[])?;
        store.inner.fraud_held.store(any_fraud, Ordering::Release);
        Ok(StoreWriter::new(store))
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The coalition this database belongs to.
    pub fn genesis_hash(&self) -> Hash {
        self.inner.genesis_hash
    }

    /// The partner this node is.
    pub fn me(&self) -> PartnerId {
        self.inner.me
    }

    pub(crate) fn cf(&self, column: Column) -> StoreResult<&ColumnFamily> {
        schema::cf(&self.inner.db, column)
    }

    pub(crate) fn get_raw(&self, column: Column, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        let cf = self.cf(column)?;
        let value = self
            .inner
            .db
            .get_pinned_cf(cf, key)
            .map_err(StoreError::db("reading", column))?;
        Ok(value.map(|v| v.to_vec()))
    }

    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        column: Column,
        key: &[u8],
    ) -> StoreResult<Option<T>> {
        let cf = self.cf(column)?;
        match self
            .inner
            .db
            .get_pinned_cf(cf, key)
            .map_err(StoreError::db("reading", column))?
        {
            None => Ok(None),
            Some(bytes) => decode(column, key, &bytes).map(Some),
        }
    }

    /// Calls `f` on each `(key, value)` of `column` from `from` on, while the key starts with
    /// `prefix` and `f` returns `Ok(true)`.
    pub(crate) fn scan_column(
        &self,
        column: Column,
        from: &[u8],
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> StoreResult<bool>,
    ) -> StoreResult<()> {
        let cf = self.cf(column)?;
        let mut opts = ReadOptions::default();
        if let Some(end) = keys::prefix_end(prefix) {
            opts.set_iterate_upper_bound(end);
        }
        for item in
            self.inner
                .db
                .iterator_cf_opt(cf, opts, IteratorMode::From(from, Direction::Forward))
        {
            let (key, value) = item.map_err(StoreError::db("scanning", column))?;
            if !key.starts_with(prefix) || !f(&key, &value)? {
                break;
            }
        }
        Ok(())
    }

    /// Reads every block of every column, checksums verified, without filling the cache; returns
    /// how many values were read, or `None` if `cancelled` was set meanwhile (checked every few
    /// thousand values, so a stopping node does not wait for the whole pass). RocksDB checks a
    /// table's blocks only when they are read, so without this pass a damaged SST file shows only
    /// when a request happens to need it.
    pub fn verify_all(&self, cancelled: &AtomicBool) -> StoreResult<Option<u64>> {
        let mut values = 0u64;
        for column in Column::ALL {
            let cf = self.cf(column)?;
            let mut opts = ReadOptions::default();
            opts.set_verify_checksums(true);
            opts.fill_cache(false);
            for item in self.inner.db.iterator_cf_opt(cf, opts, IteratorMode::Start) {
                item.map_err(StoreError::db("verifying", column))?;
                values += 1;
                if values % 4096 == 0 && cancelled.load(Ordering::Relaxed) {
                    return Ok(None);
                }
            }
        }
        Ok(Some(values))
    }

    /// Writes a consistent copy of the whole database, every column at one point in time, into
    /// the directory `dir`, which must not exist (a RocksDB checkpoint: table files are hard links
    /// when `dir` is on the same filesystem, so it is quick and small). The node keeps running.
    pub fn backup_to(&self, dir: &Path) -> StoreResult<()> {
        let failed = |e: rocksdb::Error| StoreError::Backup {
            path: dir.to_path_buf(),
            reason: e.into_string(),
        };
        rocksdb::checkpoint::Checkpoint::new(&self.inner.db)
            .map_err(failed)?
            .create_checkpoint(dir)
            .map_err(failed)
    }

    /// Whether `column` holds any key starting with `prefix`.
    pub(crate) fn any_under(&self, column: Column, prefix: &[u8]) -> StoreResult<bool> {
        let mut any = false;
        self.scan_column(column, prefix, prefix, |_, _| {
            any = true;
            Ok(false)
        })?;
        Ok(any)
    }

    /// Every value under `prefix` in `column`, decoded, in key order.
    pub(crate) fn collect<T: DeserializeOwned>(
        &self,
        column: Column,
        prefix: &[u8],
    ) -> StoreResult<Vec<T>> {
        let mut out = Vec::new();
        self.scan_column(column, prefix, prefix, |key, value| {
            out.push(decode(column, key, value)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Calls `f` on up to `limit` consecutive entries of a log from `from`, stopping at a gap.
    pub(crate) fn log_range(
        &self,
        partner: &PartnerId,
        from: u64,
        limit: usize,
        mut f: impl FnMut(&[u8], &[u8]) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let mut next = from;
        let mut taken = 0usize;
        self.scan_column(
            Column::Entries,
            &keys::partner_u64(partner, from),
            &keys::partner(partner),
            |key, value| {
                if taken >= limit || keys::read_u64(key, keys::ID) != Some(next) {
                    return Ok(false);
                }
                f(key, value)?;
                taken += 1;
                next = next.saturating_add(1);
                Ok(true)
            },
        )
    }
}

/// Decodes a stored value, naming the column and key if it does not decode.
pub(crate) fn decode<T: DeserializeOwned>(
    column: Column,
    key: &[u8],
    bytes: &[u8],
) -> StoreResult<T> {
    encoding::decode(bytes).map_err(|e| StoreError::corrupt(column, key, e))
}

/// A history row read back with its key.
pub(crate) fn history_item(key: &[u8], value: &[u8]) -> StoreResult<HistoryItem> {
    let bad = || {
        StoreError::corrupt(
            Column::History,
            key,
            "key is not member ‖ time ‖ partner ‖ seq",
        )
    };
    if key.len() != keys::ID + keys::U64 + keys::ID + keys::U64 {
        return Err(bad());
    }
    let time = keys::read_u64(key, keys::ID).ok_or_else(bad)?;
    let partner = keys::read_id(key, keys::ID + keys::U64).ok_or_else(bad)?;
    let seq = keys::read_u64(key, keys::ID + keys::U64 + keys::ID).ok_or_else(bad)?;
    Ok(HistoryItem {
        time,
        entry: RecordLocation {
            partner: PartnerId(coalition_core::crypto::PublicKey(partner)),
            seq,
        },
        row: decode(Column::History, key, value)?,
    })
}

/// Checks that `path` can hold the database before RocksDB creates one there: returns whether a
/// database already exists. A file, or a non-empty directory with no database in it, is refused, so
/// a mistyped `--data-dir` never scatters RocksDB files among someone else's.
fn check_directory(path: &Path) -> StoreResult<bool> {
    let refuse = |reason: String| StoreError::Open {
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(refuse(format!("cannot inspect it: {e}"))),
        Ok(m) if !m.is_dir() => {
            return Err(refuse("it is a file, not a database directory".into()))
        }
        Ok(_) => {}
    }
    if path.join("CURRENT").is_file() {
        return Ok(true);
    }
    let mut listing =
        std::fs::read_dir(path).map_err(|e| refuse(format!("cannot list it: {e}")))?;
    if listing.next().is_some() {
        return Err(refuse(
            "the directory is not empty and holds no RocksDB database (no CURRENT file); \
             refusing to create one among other files"
                .into(),
        ));
    }
    Ok(false)
}

/// RocksDB's message, with a hint for the usual causes.
fn describe(e: rocksdb::Error) -> String {
    let msg = e.into_string();
    if msg.contains("lock") {
        format!("{msg} (is another coalition-node running on this data directory?)")
    } else if msg.contains("Corruption") {
        format!(
            "{msg} (the database is damaged. Keep the directory as it is and do not start this \
             partner on an older copy or an empty directory: peers hold its log and votes, and it \
             would sign over them. See \"A damaged database\" in docs/operating.md)"
        )
    } else {
        msg
    }
}

fn db_options(options: &StoreOptions) -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_max_open_files(options.max_open_files);
    o.set_db_write_buffer_size(options.write_buffer_bytes);
    o.set_max_background_jobs(2);
    o.set_keep_log_file_num(4);
    o.set_max_log_file_size(8 * MIB);
    o.set_compression_type(DBCompressionType::Lz4);
    // A torn last record is what a crash leaves and holds nothing acknowledged (every acknowledged
    // write was synced whole). Anything else wrong in the write-ahead log refuses the open:
    // RocksDB's default (point in time) would stop replaying at the damage and start silently on
    // older data, and this partner would then sign new entries and votes at positions and
    // sequence numbers it already used.
    o.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
    o
}

fn column_options(column: Column, cache: &Cache, options: &StoreOptions) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    // Index and filter blocks count against the cache instead of growing without bound.
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    table.set_format_version(5);
    if column.point_lookups() {
        table.set_bloom_filter(10.0, false);
    }
    let mut o = Options::default();
    o.set_block_based_table_factory(&table);
    o.set_compression_type(DBCompressionType::Lz4);
    o.set_level_compaction_dynamic_level_bytes(true);
    let buffer = if column.is_large() {
        options.write_buffer_bytes / 4
    } else {
        options.write_buffer_bytes / 16
    };
    o.set_write_buffer_size(buffer.max(MIB));
    o.set_max_write_buffer_number(2);
    o
}
