//! The node's storage: RocksDB with one column family per kind of record ([`Column`]), one atomic
//! write batch per ledger entry, and the schema checked at open ([`schema`]).
//!
//! [`Store`] is a cheap handle (`Clone`, `Send + Sync`): reads may run from many threads at once
//! (HTTP handlers call them through `spawn_blocking`). Writes are serialised inside the store, and
//! each is one RocksDB `WriteBatch`, so a reader or a crash sees an entry's effects entirely or not
//! at all. Own-log appends, votes and in-flight redemptions are written with `sync`, because the node
//! promises them to someone (the POS, a redeemer) before it could be asked again; replicated peer
//! entries are not, since a peer can always send them again.
//!
//! The ledger side ([`coalition_core::ledger::LedgerView`] and
//! [`coalition_core::ledger::LedgerStore`]) is implemented in `ledger.rs`; the rest of the API is
//! here.
//!
//! ```no_run
//! # fn demo(genesis: coalition_core::genesis::Genesis, me: coalition_core::record::PartnerId)
//! # -> Result<(), coalition_node::store::StoreError> {
//! use coalition_node::store::Store;
//! let store = Store::open("/var/lib/coalition/db", genesis.hash(), me)?;
//! for (partner, head) in store.heads()? {
//!     println!("{partner}: {} entries, root {}", head.size, head.root());
//! }
//! # Ok(()) }
//! ```

mod columns;
mod error;
mod keys;
mod ledger;
pub mod schema;

pub use columns::Column;
pub use error::{StoreError, StoreResult};
pub use schema::CURRENT_SCHEMA_VERSION;

use coalition_core::encoding;
use coalition_core::hash::Hash;
use coalition_core::ledger::Lot;
use coalition_core::log::{Equivocation, LogClose, LogHead};
use coalition_core::record::{
    Epoch, MemberId, PartnerId, Points, SignedEntry, SignedOrder, Timestamp, Vote,
};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Direction,
    IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions, DB,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

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

/// The node's database. Cheap to clone; all clones share one RocksDB instance.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    /// Set on a handle made by [`Store::deferring_sync`] (and its clones): whether a write that
    /// should be synced has been written without, and awaits [`Store::sync_deferred`].
    deferred: Option<Arc<AtomicBool>>,
}

struct Inner {
    db: DB,
    path: PathBuf,
    genesis_hash: Hash,
    me: PartnerId,
    /// Serialises writers, so check-and-set writes (votes, fraud proofs) and the commit's position
    /// check see no concurrent batch. Readers never take it.
    write_lock: Mutex<()>,
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
    /// with [`StoreOptions::default`].
    ///
    /// Errors: [`StoreError::Open`] if `path` is not a RocksDB database (a file, or a non-empty
    /// directory without one), is corrupt or is locked by another process;
    /// [`StoreError::SchemaMismatch`], [`StoreError::WrongGenesis`] or [`StoreError::WrongPartner`]
    /// if it was written by another build, coalition or partner.
    pub fn open(path: impl AsRef<Path>, genesis_hash: Hash, me: PartnerId) -> StoreResult<Store> {
        Store::open_with(path, genesis_hash, me, StoreOptions::default())
    }

    /// [`Store::open`] with explicit tuning.
    pub fn open_with(
        path: impl AsRef<Path>,
        genesis_hash: Hash,
        me: PartnerId,
        options: StoreOptions,
    ) -> StoreResult<Store> {
        let path = path.as_ref().to_path_buf();
        let open_err = |reason: String| StoreError::Open {
            path: path.clone(),
            reason,
        };
        let existing = check_directory(&path).map_err(open_err)?;

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
            deferred: None,
            inner: Arc::new(Inner {
                db,
                path,
                genesis_hash,
                me,
                write_lock: Mutex::new(()),
                fraud_held: AtomicBool::new(true),
            }),
        };
        let any_fraud = store.any_under(Column::Fraud, &[])?;
        store.inner.fraud_held.store(any_fraud, Ordering::Release);
        Ok(store)
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

    // ---------------------------------------------------------------------------------------------
    // Logs
    // ---------------------------------------------------------------------------------------------

    /// Up to `limit` entries of `partner`'s log from position `from`, in order.
    pub fn entries(
        &self,
        partner: &PartnerId,
        from: u64,
        limit: usize,
    ) -> StoreResult<Vec<SignedEntry>> {
        let mut out = Vec::new();
        self.log_range(partner, from, limit, |key, bytes| {
            out.push(decode(Column::Entries, key, bytes)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Up to `limit` entries of `partner`'s log from position `from`, as their canonical bytes (what
    /// a peer fetching the log is sent). Each is checked to decode.
    pub fn entries_bytes(
        &self,
        partner: &PartnerId,
        from: u64,
        limit: usize,
    ) -> StoreResult<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        self.log_range(partner, from, limit, |key, bytes| {
            decode::<SignedEntry>(Column::Entries, key, bytes)?;
            out.push(bytes.to_vec());
            Ok(())
        })?;
        Ok(out)
    }

    /// The entry at `partner`/`seq`, if held.
    pub fn entry(&self, partner: &PartnerId, seq: u64) -> StoreResult<Option<SignedEntry>> {
        self.get(Column::Entries, &keys::partner_u64(partner, seq))
    }

    /// The canonical bytes of the entry at `partner`/`seq`, if held.
    pub fn entry_bytes(&self, partner: &PartnerId, seq: u64) -> StoreResult<Option<Vec<u8>>> {
        let key = keys::partner_u64(partner, seq);
        let Some(bytes) = self.get_raw(Column::Entries, &key)? else {
            return Ok(None);
        };
        decode::<SignedEntry>(Column::Entries, &key, &bytes)?;
        Ok(Some(bytes))
    }

    /// The Merkle leaf hashes of the first `size` entries of `partner`'s log (fewer if the log is
    /// shorter), for inclusion and consistency proofs.
    pub fn leaf_hashes(&self, partner: &PartnerId, size: u64) -> StoreResult<Vec<Hash>> {
        let limit = usize::try_from(size).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        self.scan_column(
            Column::Leaves,
            &keys::partner_u64(partner, 0),
            &keys::partner(partner),
            |key, value| {
                if out.len() >= limit {
                    return Ok(false);
                }
                if keys::read_u64(key, keys::ID) != Some(out.len() as u64) {
                    return Err(StoreError::corrupt(
                        Column::Leaves,
                        key,
                        format!("expected leaf {}", out.len()),
                    ));
                }
                out.push(decode(Column::Leaves, key, value)?);
                Ok(true)
            },
        )?;
        Ok(out)
    }

    /// Every log head held, by partner id.
    pub fn heads(&self) -> StoreResult<Vec<(PartnerId, LogHead)>> {
        let mut out = Vec::new();
        self.scan_column(Column::Heads, &[], &[], |key, value| {
            let id = keys::read_id(key, 0)
                .filter(|_| key.len() == keys::ID)
                .ok_or_else(|| {
                    StoreError::corrupt(Column::Heads, key, "key is not a partner id")
                })?;
            out.push((
                PartnerId(coalition_core::crypto::PublicKey(id)),
                decode(Column::Heads, key, value)?,
            ));
            Ok(true)
        })?;
        Ok(out)
    }

    /// `partner`'s log size and root right after it closed `epoch`, if it has.
    pub fn close(&self, partner: &PartnerId, epoch: Epoch) -> StoreResult<Option<LogClose>> {
        self.get(Column::Closes, &keys::partner_u64(partner, epoch))
    }

    /// Where the issue with this lot id, or the redemption with this order id, was appended.
    pub fn record_location(&self, record: &Hash) -> StoreResult<Option<RecordLocation>> {
        self.get(Column::Records, &keys::hash(record))
    }

    /// The log entry holding the issue with this lot id, or the redemption with this order id.
    pub fn record_entry(&self, record: &Hash) -> StoreResult<Option<SignedEntry>> {
        match self.record_location(record)? {
            Some(at) => self.entry(&at.partner, at.seq),
            None => Ok(None),
        }
    }

    /// The member's `limit` most recent history lines, oldest first.
    pub fn history(&self, member: &MemberId, limit: usize) -> StoreResult<Vec<HistoryItem>> {
        let prefix = keys::member(member);
        let mut last = [0xffu8; keys::ID + keys::U64 + keys::ID + keys::U64];
        last[..keys::ID].copy_from_slice(&prefix);
        let cf = self.cf(Column::History)?;
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(prefix.to_vec());
        let mut out = Vec::new();
        for item in
            self.inner
                .db
                .iterator_cf_opt(cf, opts, IteratorMode::From(&last, Direction::Reverse))
        {
            if out.len() >= limit {
                break;
            }
            let (key, value) = item.map_err(StoreError::db("scanning", Column::History))?;
            if !key.starts_with(&prefix) {
                break;
            }
            out.push(history_item(&key, &value)?);
        }
        out.reverse();
        Ok(out)
    }

    // ---------------------------------------------------------------------------------------------
    // Votes and in-flight redemptions
    // ---------------------------------------------------------------------------------------------

    /// The vote this node gave for `member`'s spend number `seq`, if any.
    pub fn vote(&self, member: &MemberId, seq: u64) -> StoreResult<Option<Vote>> {
        self.get(Column::Votes, &keys::member_seq(member, seq))
    }

    /// Records this node's vote for `member`'s spend number `seq`, synced, before it is sent.
    ///
    /// Check-and-set: if a vote for the same order is already stored, that vote is returned and
    /// nothing is written (asked again, the node answers the same vote); if a vote for a different
    /// order is stored, [`StoreError::VoteConflict`]. Returns the vote now on disk.
    pub fn put_vote_synced(&self, member: &MemberId, seq: u64, vote: &Vote) -> StoreResult<Vote> {
        let key = keys::member_seq(member, seq);
        let _guard = self.write_guard();
        if let Some(existing) = self.get::<Vote>(Column::Votes, &key)? {
            if existing.order_id == vote.order_id {
                return Ok(existing);
            }
            return Err(StoreError::VoteConflict {
                member: *member,
                seq,
                existing: existing.order_id,
                requested: vote.order_id,
            });
        }
        let mut batch = self.batch();
        batch.put(Column::Votes, &key, vote)?;
        self.write(batch, true, || {
            format!("the vote for member {member} seq {seq}")
        })?;
        Ok(vote.clone())
    }

    /// Remembers a redemption this node is collecting votes for (synced: it survives a restart).
    pub fn put_inflight(&self, order: &SignedOrder) -> StoreResult<()> {
        let id = order.order.id();
        let _guard = self.write_guard();
        let mut batch = self.batch();
        batch.put(Column::Inflight, &keys::hash(&id), order)?;
        self.write(batch, true, || format!("in-flight order {id}"))
    }

    /// Forgets an in-flight redemption (certified, or given up). Not synced: if a crash undoes the
    /// removal, the restarted node retries the order, finds it certified or refused, and removes it
    /// again; a sync here would cost every redemption a second disk flush for nothing.
    pub fn remove_inflight(&self, order_id: &Hash) -> StoreResult<()> {
        let _guard = self.write_guard();
        let mut batch = self.batch();
        batch.delete(Column::Inflight, &keys::hash(order_id))?;
        self.write(batch, false, || {
            format!("removal of in-flight order {order_id}")
        })
    }

    /// Every in-flight redemption, by order id.
    pub fn inflight(&self) -> StoreResult<Vec<SignedOrder>> {
        self.collect(Column::Inflight, &[])
    }

    // ---------------------------------------------------------------------------------------------
    // Fraud proofs
    // ---------------------------------------------------------------------------------------------

    /// Keeps a fraud proof. Only the first proof for a position is kept; returns whether this one
    /// was new.
    pub fn put_fraud(&self, proof: &Equivocation) -> StoreResult<bool> {
        let key = keys::partner_u64(&proof.partner, proof.seq);
        let _guard = self.write_guard();
        if self.get_raw(Column::Fraud, &key)?.is_some() {
            return Ok(false);
        }
        self.inner.fraud_held.store(true, Ordering::Release);
        let mut batch = self.batch();
        batch.put(Column::Fraud, &key, proof)?;
        self.write(batch, true, || {
            format!("fraud proof {}/{}", proof.partner, proof.seq)
        })?;
        Ok(true)
    }

    /// Whether any fraud proof may be held (false: certainly none).
    pub(crate) fn may_hold_fraud(&self) -> bool {
        self.inner.fraud_held.load(Ordering::Acquire)
    }

    /// The lot this node issued with receipt reference `reference` (hashed), if any.
    pub fn own_issue_by_reference(&self, reference: &Hash) -> StoreResult<Option<Hash>> {
        self.get(Column::References, &keys::hash(reference))
    }

    /// Every fraud proof held, by partner and position.
    pub fn fraud_proofs(&self) -> StoreResult<Vec<Equivocation>> {
        self.collect(Column::Fraud, &[])
    }

    /// Calls `f` on every lot, in id order: how settlement derives an epoch's activity.
    pub fn for_each_lot(&self, mut f: impl FnMut(&Lot)) -> StoreResult<()> {
        self.scan_column(Column::Lots, &[], &[], |key, value| {
            let lot: Lot = decode(Column::Lots, key, value)?;
            f(&lot);
            Ok(true)
        })
    }

    // ---------------------------------------------------------------------------------------------
    // Checkpoints and statements (bytes, opaque to the store)
    // ---------------------------------------------------------------------------------------------

    /// Stores the checkpoint of `epoch` (its canonical bytes).
    pub fn put_checkpoint(&self, epoch: Epoch, bytes: &[u8]) -> StoreResult<()> {
        self.put_bytes(Column::Checkpoints, &keys::epoch(epoch), bytes)
    }

    /// The checkpoint of `epoch`, if computed.
    pub fn checkpoint(&self, epoch: Epoch) -> StoreResult<Option<Vec<u8>>> {
        self.get_raw(Column::Checkpoints, &keys::epoch(epoch))
    }

    /// Stores `partner`'s signature over the checkpoint of `epoch`.
    pub fn put_checkpoint_sig(
        &self,
        epoch: Epoch,
        partner: &PartnerId,
        bytes: &[u8],
    ) -> StoreResult<()> {
        self.put_bytes(
            Column::CheckpointSigs,
            &keys::epoch_partner(epoch, partner),
            bytes,
        )
    }

    /// The checkpoint signatures held for `epoch`, by partner id.
    pub fn checkpoint_sigs(&self, epoch: Epoch) -> StoreResult<Vec<(PartnerId, Vec<u8>)>> {
        let prefix = keys::epoch(epoch);
        let mut out = Vec::new();
        self.scan_column(Column::CheckpointSigs, &prefix, &prefix, |key, value| {
            let id = keys::read_id(key, keys::U64)
                .filter(|_| key.len() == keys::U64 + keys::ID)
                .ok_or_else(|| {
                    StoreError::corrupt(Column::CheckpointSigs, key, "key is not epoch ‖ partner")
                })?;
            out.push((
                PartnerId(coalition_core::crypto::PublicKey(id)),
                value.to_vec(),
            ));
            Ok(true)
        })?;
        Ok(out)
    }

    /// Stores the settlement statement of `epoch` (its canonical bytes).
    pub fn put_statement(&self, epoch: Epoch, bytes: &[u8]) -> StoreResult<()> {
        self.put_bytes(Column::Statements, &keys::epoch(epoch), bytes)
    }

    /// The settlement statement of `epoch`, if computed.
    pub fn statement(&self, epoch: Epoch) -> StoreResult<Option<Vec<u8>>> {
        self.get_raw(Column::Statements, &keys::epoch(epoch))
    }

    // ---------------------------------------------------------------------------------------------
    // Plumbing
    // ---------------------------------------------------------------------------------------------

    fn cf(&self, column: Column) -> StoreResult<&ColumnFamily> {
        schema::cf(&self.inner.db, column)
    }

    fn write_guard(&self) -> MutexGuard<'_, ()> {
        // The mutex guards no data, so a panic while it was held leaves nothing inconsistent.
        self.inner
            .write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn batch(&self) -> Batch<'_> {
        Batch {
            store: self,
            batch: WriteBatch::default(),
        }
    }

    /// A handle on the same database whose synced writes do not wait for the disk: they are written
    /// at once (visible to readers, safe from a killed process) and made durable together by the next
    /// [`Store::sync_deferred`]. For the ledger writer's group commit: one disk sync for every
    /// command it has queued, and no reply before that sync.
    pub fn deferring_sync(&self) -> Store {
        Store {
            inner: self.inner.clone(),
            deferred: Some(Arc::new(AtomicBool::new(false))),
        }
    }

    /// Makes every write deferred on this handle durable (one sync of the write-ahead log). Cheap
    /// when nothing was deferred.
    pub fn sync_deferred(&self) -> StoreResult<()> {
        let Some(flag) = &self.deferred else {
            return Ok(());
        };
        if flag.swap(false, Ordering::AcqRel) {
            self.inner
                .db
                .flush_wal(true)
                .map_err(|source| StoreError::Write {
                    what: "the sync of the write-ahead log".into(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Writes one batch; `sync` waits for the write-ahead log to reach the disk (or, on a
    /// [`Store::deferring_sync`] handle, marks the sync as owed).
    fn write(
        &self,
        batch: Batch<'_>,
        sync: bool,
        what: impl FnOnce() -> String,
    ) -> StoreResult<()> {
        let sync = match &self.deferred {
            Some(flag) if sync => {
                flag.store(true, Ordering::Release);
                false
            }
            _ => sync,
        };
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.inner
            .db
            .write_opt(batch.batch, &opts)
            .map_err(|source| StoreError::Write {
                what: what(),
                source,
            })
    }

    fn put_bytes(&self, column: Column, key: &[u8], bytes: &[u8]) -> StoreResult<()> {
        let _guard = self.write_guard();
        let mut batch = self.batch();
        batch.put_raw(column, key, bytes)?;
        self.write(batch, true, || format!("{column} {}", hex::encode(key)))
    }

    fn get_raw(&self, column: Column, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        let cf = self.cf(column)?;
        let value = self
            .inner
            .db
            .get_pinned_cf(cf, key)
            .map_err(StoreError::db("reading", column))?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn get<T: DeserializeOwned>(&self, column: Column, key: &[u8]) -> StoreResult<Option<T>> {
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
    fn scan_column(
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

    /// Whether `column` holds any key starting with `prefix`.
    fn any_under(&self, column: Column, prefix: &[u8]) -> StoreResult<bool> {
        let mut any = false;
        self.scan_column(column, prefix, prefix, |_, _| {
            any = true;
            Ok(false)
        })?;
        Ok(any)
    }

    /// Every value under `prefix` in `column`, decoded, in key order.
    fn collect<T: DeserializeOwned>(&self, column: Column, prefix: &[u8]) -> StoreResult<Vec<T>> {
        let mut out = Vec::new();
        self.scan_column(column, prefix, prefix, |key, value| {
            out.push(decode(column, key, value)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Calls `f` on up to `limit` consecutive entries of a log from `from`, stopping at a gap.
    fn log_range(
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
fn decode<T: DeserializeOwned>(column: Column, key: &[u8], bytes: &[u8]) -> StoreResult<T> {
    encoding::decode(bytes).map_err(|e| StoreError::corrupt(column, key, e))
}

/// A history row read back with its key.
fn history_item(key: &[u8], value: &[u8]) -> StoreResult<HistoryItem> {
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

/// One atomic write being assembled.
struct Batch<'s> {
    store: &'s Store,
    batch: WriteBatch,
}

impl Batch<'_> {
    /// Puts the canonical encoding of `value`.
    fn put<T: Serialize>(&mut self, column: Column, key: &[u8], value: &T) -> StoreResult<()> {
        self.put_raw(column, key, &encoding::encode(value))
    }

    fn put_raw(&mut self, column: Column, key: &[u8], bytes: &[u8]) -> StoreResult<()> {
        let cf = self.store.cf(column)?;
        self.batch.put_cf(cf, key, bytes);
        Ok(())
    }

    fn delete(&mut self, column: Column, key: &[u8]) -> StoreResult<()> {
        let cf = self.store.cf(column)?;
        self.batch.delete_cf(cf, key);
        Ok(())
    }
}

/// Checks that `path` can hold the database before RocksDB creates one there: returns whether a
/// database already exists. A file, or a non-empty directory with no database in it, is refused, so
/// a mistyped `--data-dir` never scatters RocksDB files among someone else's.
fn check_directory(path: &Path) -> Result<bool, String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("cannot inspect it: {e}")),
        Ok(m) if !m.is_dir() => return Err("it is a file, not a database directory".into()),
        Ok(_) => {}
    }
    if path.join("CURRENT").is_file() {
        return Ok(true);
    }
    let mut listing = std::fs::read_dir(path).map_err(|e| format!("cannot list it: {e}"))?;
    if listing.next().is_some() {
        return Err(
            "the directory is not empty and holds no RocksDB database (no CURRENT file); \
                    refusing to create one among other files"
                .into(),
        );
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
            "{msg} (the database is damaged; restore it from a backup or resynchronise into an \
             empty directory)"
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
