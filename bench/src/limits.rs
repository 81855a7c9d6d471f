//! The machine's limits, on one core: ed25519 verification (single `verify_strict` and batched),
//! blake3 over a record-sized input, RocksDB synced write batches.

use crate::world::{median_of, rate, write_json, LogBuilder, Net, BATCH};
use crate::Args;
use anyhow::{anyhow, Context, Result};
use coalition_core::crypto::{self, Keypair, SignedMessage};
use coalition_core::encoding::encode;
use coalition_core::hash::Hash;
use coalition_core::record::{MemberId, SignedEntry};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Bytes hashed per blake3 call: about one encoded issue entry with its signature.
pub(crate) const RECORD_BYTES: usize = 300;

pub(crate) fn run(args: &Args) -> Result<()> {
    let out = args.path("out")?;
    let window = Duration::from_millis(args.num("window-ms", 1000u64)?);
    let runs: usize = args.num("runs", 3usize)?;

    // 512 distinct signers and 32-byte messages, as in a batch of log entries.
    let items: Vec<(VerifyingKey, [u8; 32], ed25519_dalek::Signature)> = (0..BATCH as u32)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            let sk = SigningKey::from_bytes(&seed);
            let msg = *blake3::hash(&i.to_le_bytes()).as_bytes();
            (sk.verifying_key(), msg, sk.sign(&msg))
        })
        .collect();
    let keys: Vec<VerifyingKey> = items.iter().map(|i| i.0).collect();
    let msgs: Vec<&[u8]> = items.iter().map(|i| &i.1[..]).collect();
    let sigs: Vec<ed25519_dalek::Signature> = items.iter().map(|i| i.2).collect();

    let verify_single = median_of(runs, || {
        rate(window, BATCH as u64, || {
            for (k, m, s) in &items {
                k.verify_strict(m, s)?;
            }
            Ok(())
        })
    })?;
    eprintln!("  ed25519 verify_strict: {verify_single:.0}/s");
    let verify_batched = median_of(runs, || {
        rate(window, BATCH as u64, || {
            ed25519_dalek::verify_batch(&msgs, &sigs, &keys)?;
            Ok(())
        })
    })?;
    eprintln!("  ed25519 batched ({BATCH}): {verify_batched:.0}/s");

    // The same signatures through coalition-core's wrapper, as the node calls it: keys arrive as
    // bytes and are decompressed, R is checked for small order, then the batch equation.
    let wrapped: Vec<SignedMessage> = items
        .iter()
        .map(|(k, m, s)| SignedMessage {
            key: crypto::PublicKey(k.to_bytes()),
            message: Hash(*m),
            signature: crypto::Signature(s.to_bytes()),
        })
        .collect();
    let core_batched = median_of(runs, || {
        rate(window, BATCH as u64, || {
            crypto::verify_batch(&wrapped).map_err(|e| anyhow!("verify_batch: {e:?}"))?;
            Ok(())
        })
    })?;
    eprintln!("  coalition_core::crypto::verify_batch ({BATCH}): {core_batched:.0}/s");
    let core_single = median_of(runs, || {
        rate(window, BATCH as u64, || {
            for w in &wrapped {
                crypto::verify(&w.key, &w.message, &w.signature)
                    .map_err(|e| anyhow!("verify: {e:?}"))?;
            }
            Ok(())
        })
    })?;
    eprintln!("  coalition_core::crypto::verify: {core_single:.0}/s");

    let mut buf = [0u8; RECORD_BYTES];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = i as u8;
    }
    let mut n = 0u64;
    let blake3_rate = median_of(runs, || {
        rate(window, 1000, || {
            for _ in 0..1000 {
                n = n.wrapping_add(1);
                buf[..8].copy_from_slice(&n.to_le_bytes());
                std::hint::black_box(blake3::hash(std::hint::black_box(&buf)));
            }
            Ok(())
        })
    })?;
    eprintln!("  blake3 ({RECORD_BYTES} B): {blake3_rate:.0}/s");

    // An entry id as the protocol computes it: canonical encoding, then a tagged blake3.
    let net = Net::new(4);
    let member = MemberId(Keypair::from_secret_bytes(&[9; 32]).public());
    let entry: SignedEntry = LogBuilder::new(1).issue(&net, member, 100, crate::world::START, 0);
    let entry_bytes = encode(&entry).len();
    let entry_id_rate = median_of(runs, || {
        rate(window, 1000, || {
            for _ in 0..1000 {
                std::hint::black_box(std::hint::black_box(&entry).id());
            }
            Ok(())
        })
    })?;
    eprintln!("  entry id (encode + blake3): {entry_id_rate:.0}/s");

    let (rocks_1, rocks_8, batch_bytes) = rocksdb_synced(window, runs)?;
    eprintln!(
        "  RocksDB synced write batches: {rocks_1:.0}/s (1 writer), {rocks_8:.0}/s (8 writers)"
    );

    write_json(
        &out,
        &json!({
            "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "ed25519_verify_strict_per_sec": verify_single.round(),
            "ed25519_verify_batched_per_sec": verify_batched.round(),
            "ed25519_batch_size": BATCH,
            "core_verify_per_sec": core_single.round(),
            "core_verify_batch_per_sec": core_batched.round(),
            "blake3_per_sec": blake3_rate.round(),
            "blake3_input_bytes": RECORD_BYTES,
            "entry_id_per_sec": entry_id_rate.round(),
            "issue_entry_bytes": entry_bytes,
            "rocksdb_synced_batches_per_sec": rocks_1.round(),
            "rocksdb_synced_batches_per_sec_8_writers": rocks_8.round(),
            "rocksdb_batch_bytes": batch_bytes,
            "rocksdb_batch_puts": PUTS,
            "window_ms": window.as_millis() as u64,
            "runs": runs,
        }),
    )
}

/// Puts per write batch: about what one entry's commit writes (entry, leaf, head, lot, index,
/// record location, history, member).
const PUTS: usize = 8;

/// Synced `WriteBatch`es per second into a fresh RocksDB in the temp directory (where the cluster
/// benchmark's nodes keep their data too), with one writer and with 8 concurrent writers (which
/// RocksDB groups into shared WAL syncs).
fn rocksdb_synced(window: Duration, runs: usize) -> Result<(f64, f64, usize)> {
    let dir = tempfile::tempdir()?;
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    let db = Arc::new(rocksdb::DB::open(&opts, dir.path())?);
    let value = vec![0x5au8; 300];
    let small = [0x33u8; 40];
    let batch_bytes = value.len() + (PUTS - 1) * small.len();
    let write = |db: &rocksdb::DB, n: u64| {
        let mut batch = rocksdb::WriteBatch::default();
        for p in 0..PUTS {
            let mut key = [0u8; 40];
            key[0] = p as u8;
            key[1..9].copy_from_slice(&n.to_be_bytes());
            batch.put(key, if p == 0 { &value[..] } else { &small[..] });
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        db.write_opt(batch, &wo).context("RocksDB write")
    };
    let mut n = 0u64;
    let one = median_of(runs, || {
        rate(window, 1, || {
            n += 1;
            write(&db, n)
        })
    })?;
    let eight = median_of(runs, || {
        let started = std::time::Instant::now();
        let counts: Vec<u64> = std::thread::scope(|s| -> Result<Vec<u64>> {
            let handles: Vec<_> = (0..8u64)
                .map(|t| {
                    let db = db.clone();
                    s.spawn(move || -> Result<u64> {
                        let mut c = 0u64;
                        while started.elapsed() < window {
                            write(&db, (t << 40) | (1 << 32) | c)?;
                            c += 1;
                        }
                        Ok(c)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| anyhow!("writer thread panicked"))?)
                .collect()
        })?;
        Ok(counts.iter().sum::<u64>() as f64 / started.elapsed().as_secs_f64())
    })?;
    Ok((one, eight, batch_bytes))
}
