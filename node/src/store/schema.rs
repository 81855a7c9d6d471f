//! What the database says about itself (the `meta` column), checked every time it is opened.
//!
//! A fresh database gets the schema version, the genesis hash and this node's partner id, in one
//! synced batch. An existing one must carry exactly this build's [`CURRENT_SCHEMA_VERSION`], the
//! configured genesis and the configured partner, or the node refuses to start: running on another
//! coalition's ledger, or on another partner's votes, would be far worse than not running.

use super::columns::Column;
use super::error::{StoreError, StoreResult};
use coalition_core::encoding;
use coalition_core::hash::Hash;
use coalition_core::record::PartnerId;
use rocksdb::{IteratorMode, WriteBatch, WriteOptions, DB};
use serde::de::DeserializeOwned;

/// The on-disk layout this build reads and writes. Bump it with any change to column names, key
/// layouts or value types, together with a migration.
pub const CURRENT_SCHEMA_VERSION: u32 = 1;

/// `meta` key of the schema version (`u32`).
pub(crate) const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";
/// `meta` key of the genesis hash ([`Hash`]).
pub(crate) const GENESIS_HASH_KEY: &[u8] = b"genesis_hash";
/// `meta` key of this node's partner id ([`PartnerId`]).
pub(crate) const PARTNER_KEY: &[u8] = b"partner";

/// Checks the metadata of an opened database against this build and configuration, writing it first
/// if the database is fresh.
pub(crate) fn check_or_init(db: &DB, genesis_hash: Hash, me: PartnerId) -> StoreResult<()> {
    let Some(version) = read_meta::<u32>(db, SCHEMA_VERSION_KEY)? else {
        return init(db, genesis_hash, me);
    };
    if version != CURRENT_SCHEMA_VERSION {
        return Err(StoreError::SchemaMismatch {
            found: version,
            expected: CURRENT_SCHEMA_VERSION,
        });
    }
    let found = required_meta::<Hash>(db, GENESIS_HASH_KEY)?;
    if found != genesis_hash {
        return Err(StoreError::WrongGenesis {
            found,
            expected: genesis_hash,
        });
    }
    let found = required_meta::<PartnerId>(db, PARTNER_KEY)?;
    if found != me {
        return Err(StoreError::WrongPartner {
            found,
            expected: me,
        });
    }
    Ok(())
}

/// Writes the metadata of a fresh database, after making sure it really is empty (data with no
/// schema version would be a database we cannot vouch for).
fn init(db: &DB, genesis_hash: Hash, me: PartnerId) -> StoreResult<()> {
    for column in Column::ALL {
        let cf = cf(db, column)?;
        if let Some(item) = db.iterator_cf(cf, IteratorMode::Start).next() {
            let (key, _) = item.map_err(StoreError::db("checking", column))?;
            return Err(StoreError::corrupt(
                Column::Meta,
                SCHEMA_VERSION_KEY,
                format!(
                    "missing, but column {column} holds data (first key {})",
                    hex::encode(key)
                ),
            ));
        }
    }
    let meta = cf(db, Column::Meta)?;
    let mut batch = WriteBatch::default();
    batch.put_cf(
        meta,
        SCHEMA_VERSION_KEY,
        encoding::encode(&CURRENT_SCHEMA_VERSION),
    );
    batch.put_cf(meta, GENESIS_HASH_KEY, encoding::encode(&genesis_hash));
    batch.put_cf(meta, PARTNER_KEY, encoding::encode(&me));
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    db.write_opt(batch, &opts)
        .map_err(|source| StoreError::Write {
            what: "the database metadata".into(),
            source,
        })
}

/// The column family handle, which every opened store has.
pub(crate) fn cf(db: &DB, column: Column) -> StoreResult<&rocksdb::ColumnFamily> {
    db.cf_handle(column.name()).ok_or_else(|| {
        StoreError::corrupt(
            Column::Meta,
            column.name().as_bytes(),
            "column family missing",
        )
    })
}

fn read_meta<T: DeserializeOwned>(db: &DB, key: &[u8]) -> StoreResult<Option<T>> {
    let meta = cf(db, Column::Meta)?;
    match db
        .get_pinned_cf(meta, key)
        .map_err(StoreError::db("reading", Column::Meta))?
    {
        None => Ok(None),
        Some(bytes) => encoding::decode(&bytes)
            .map(Some)
            .map_err(|e| StoreError::corrupt(Column::Meta, key, e)),
    }
}

fn required_meta<T: DeserializeOwned>(db: &DB, key: &[u8]) -> StoreResult<T> {
    read_meta(db, key)?.ok_or_else(|| {
        StoreError::corrupt(
            Column::Meta,
            key,
            "missing although the schema version is present",
        )
    })
}
