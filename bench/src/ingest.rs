//! Catch-up ingest through the node's own writer (`coalition_node::writer`): a node (partner 0)
//! receives partner 1's log as canonical bytes in ranges of 512, as node/src/sync.rs fetches them;
//! like sync.rs, one thread decodes each range and batch-verifies its signatures while the writer
//! thread applies the previous range, driving `coalition_core::replica::Ledger` over the RocksDB
//! `Store` (log rules, ledger rules, one write batch per entry, the Merkle frontier in the log head).
//!
//! `memory` does the same with a million issues generated on the fly and reports the peak RSS.

use crate::world::{
    member_ids, partner_key, rss_of, secs, write_json, LogBuilder, Net, BATCH, START,
};
use crate::Args;
use anyhow::{ensure, Context, Result};
use coalition_core::clock;
use coalition_core::encoding::{decode, encode};
use coalition_core::ledger::apply;
use coalition_core::log::{verify_entry_presigned, SignatureChecked};
use coalition_core::record::{MemberId, SignedEntry};
use coalition_core::state::{LedgerStore, LedgerView};
use coalition_node::store::Store;
use coalition_node::writer::{self, Writer, WriterConfig};
use futures::executor::block_on;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The node under test: partner 0, with its writer thread over a fresh store in `dir`.
fn start_node(
    net: &Net,
    dir: &std::path::Path,
) -> Result<(Store, Writer, std::thread::JoinHandle<()>)> {
    let store = Store::open(dir, net.genesis.hash(), net.pid(0)).context("opening the store")?;
    let reader = store.reader();
    let config = WriterConfig {
        genesis: Arc::new(net.genesis.clone()),
        keypair: Arc::new(partner_key(0)),
        clock: clock::system(),
        closed_until_rejoined: false,
    };
    let (w, thread) = writer::spawn(config, store).context("starting the writer")?;
    let h = thread.handle;
    Ok((reader, w, h))
}

/// Hands one checked range to the writer and checks that every entry applied.
fn ingest_range(w: &Writer, entries: Vec<writer::Checked>) -> Result<()> {
    let n = entries.len();
    let report = block_on(w.ingest_checked(entries));
    ensure!(
        report.applied == n
            && report.failure.is_none()
            && report.bad.is_empty()
            && report.missing.is_empty(),
        "ingest of {n} entries: applied {}, failure {:?}, bad {:?}, waiting {:?}",
        report.applied,
        report.failure,
        report.bad.first(),
        report.missing.first()
    );
    Ok(())
}

pub(crate) fn run(args: &Args) -> Result<()> {
    let out = args.path("out")?;
    let n: u64 = args.num("entries", 200_000)?;
    let members_n: u32 = args.num("members", 20_000)?;
    let sample: usize = args.num("breakdown", 50_000usize)?;
    let net = Net::new(4);
    let members = member_ids(members_n);

    // Partner 1's log as a peer sends it: canonical bytes.
    let t = Instant::now();
    let mut log = LogBuilder::new(1);
    let wire: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let m = members[(i % members.len() as u64) as usize];
            encode(&log.issue(&net, m, 1 + i % 500, START + i, i))
        })
        .collect();
    let build = t.elapsed();
    eprintln!("  built {n} signed issues in {:.1} s", build.as_secs_f64());

    let dir = tempfile::tempdir()?;
    let (store, w, handle) = start_node(&net, dir.path())?;
    // As node/src/sync.rs does: the next range is decoded and signature-checked on another thread
    // while the writer applies the current one.
    let t = Instant::now();
    let ranges = wire.chunks(BATCH);
    let decode_time = std::thread::scope(|scope| -> Result<Duration> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<writer::Checked>>(1);
        let checker = scope.spawn(move || -> Result<Duration> {
            let mut decode_time = Duration::ZERO;
            for chunk in ranges {
                let d = Instant::now();
                let entries: Vec<SignedEntry> =
                    chunk.iter().map(|b| decode(b)).collect::<Result<_, _>>()?;
                decode_time += d.elapsed();
                if tx.send(writer::check_signatures(entries)).is_err() {
                    break;
                }
            }
            Ok(decode_time)
        });
        for checked in rx {
            ingest_range(&w, checked)?;
        }
        checker
            .join()
            .map_err(|_| anyhow::anyhow!("the checking thread panicked"))?
    })?;
    let elapsed = t.elapsed();
    let head = LedgerView::log_head(&store, &net.pid(1))?;
    ensure!(
        head.size == n,
        "log of partner 1 holds {} entries, expected {n}",
        head.size
    );
    drop(w);
    handle.join().ok();
    let rate = n as f64 / elapsed.as_secs_f64();
    eprintln!(
        "  ingested {n} entries in {:.1} s: {rate:.0}/s",
        elapsed.as_secs_f64()
    );
    drop(store);

    // Where the time goes: the same steps one by one, on the first `sample` entries, into a fresh
    // store (no writer thread, no driver bookkeeping).
    let sample = sample.min(wire.len());
    let dir2 = tempfile::tempdir()?;
    let mut store2 = Store::open(dir2.path(), net.genesis.hash(), net.pid(0))?;
    let (mut t_dec, mut t_ver, mut t_log, mut t_apply, mut t_commit) = Default::default();
    let t_all = Instant::now();
    for chunk in wire[..sample].chunks(BATCH) {
        let s = Instant::now();
        let entries: Vec<SignedEntry> =
            chunk.iter().map(|b| decode(b)).collect::<Result<_, _>>()?;
        t_dec += s.elapsed();
        let s = Instant::now();
        let checked = SignatureChecked::verify_batch(entries)
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        t_ver += s.elapsed();
        for c in checked {
            let s = Instant::now();
            let v = verify_entry_presigned(&net.genesis, c)?;
            t_log += s.elapsed();
            let s = Instant::now();
            let changes = apply(&net.genesis, &store2, &v).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            t_apply += s.elapsed();
            let s = Instant::now();
            store2.commit(&v, &changes)?;
            t_commit += s.elapsed();
        }
    }
    let t_sum = t_all.elapsed();
    let per = |d: Duration| (d.as_secs_f64() * 1e6 / sample as f64 * 100.0).round() / 100.0;
    let breakdown = json!({
        "entries": sample,
        "decode_us": per(t_dec),
        "verify_batch_us": per(t_ver),
        "log_rules_us": per(t_log),
        "apply_us": per(t_apply),
        "commit_us": per(t_commit),
        "total_us": per(t_sum),
    });
    eprintln!("  breakdown per entry (first {sample}): {breakdown}");

    write_json(
        &out,
        &json!({
            "method": "in-process: 200k issues signed with coalition-core, fed as canonical bytes in ranges of 512, pipelined as node/src/sync.rs does: one thread decodes a range and checks its signatures (writer::check_signatures, one batch) while coalition_node::writer (the node's ledger-writer thread: Ledger::ingest_presigned over the RocksDB Store, unsynced peer commits) applies the previous one",
            "entries": n,
            "members": members_n,
            "secs": secs(elapsed),
            "records_per_sec": rate.round(),
            "decode_secs": secs(decode_time),
            "build_secs": secs(build),
            "final_root": head.root().to_string(),
            "breakdown_per_entry": breakdown,
        }),
    )
}

/// Peak RSS of a node's store after catching up on `--lots` issues.
pub(crate) fn memory(args: &Args) -> Result<()> {
    let out = args.path("out")?;
    let lots: u64 = args.num("lots", 1_000_000)?;
    let members_n: u32 = args.num("members", 100_000)?;
    let net = Net::new(4);
    let members: Vec<MemberId> = member_ids(members_n);
    let before = rss_of(None).map(|r| r.1).unwrap_or(0);
    let dir = tempfile::tempdir()?;
    let (store, w, handle) = start_node(&net, dir.path())?;
    let t = Instant::now();
    let mut log = LogBuilder::new(1);
    let mut sign_time = Duration::ZERO;
    let mut i = 0u64;
    while i < lots {
        let s = Instant::now();
        let end = (i + BATCH as u64).min(lots);
        let chunk: Vec<SignedEntry> = (i..end)
            .map(|k| {
                log.issue(
                    &net,
                    members[(k % members.len() as u64) as usize],
                    1 + k % 500,
                    START + k,
                    k,
                )
            })
            .collect();
        sign_time += s.elapsed();
        ingest_range(&w, writer::check_signatures(chunk))?;
        if end / 200_000 > i / 200_000 {
            eprintln!("  {end} lots, {:.0} s", t.elapsed().as_secs_f64());
        }
        i = end;
    }
    let elapsed = t.elapsed();
    // Reads a node serves: a few balances (lot lookups through the member index).
    let mut seen = 0usize;
    for m in members.iter().step_by((members.len() / 1000).max(1)) {
        seen += LedgerView::member_lots(&store, m)?.len();
    }
    ensure!(seen > 0, "no lots read back");
    let head = LedgerView::log_head(&store, &net.pid(1))?;
    ensure!(
        head.size == lots,
        "log holds {} entries, expected {lots}",
        head.size
    );
    let (hwm, rss) = rss_of(None).context("reading /proc/self/status")?;
    drop(w);
    handle.join().ok();
    let disk = dir_size(dir.path());
    let mib = |b: u64| (b as f64 / (1 << 20) as f64 * 10.0).round() / 10.0;
    eprintln!(
        "  {lots} lots in {:.0} s; peak RSS {} MiB, RSS now {} MiB, on disk {} MiB",
        elapsed.as_secs_f64(),
        mib(hwm),
        mib(rss),
        mib(disk)
    );
    write_json(
        &out,
        &json!({
            "method": "one process: a node's Store (default StoreOptions) and ledger-writer thread catch up on N issues of one peer log, generated and signed in ranges of 512 in the same process; VmHWM from /proc/self/status after reading back 1000 balances",
            "lots": lots,
            "members": members_n,
            "peak_rss_mib": mib(hwm),
            "rss_mib": mib(rss),
            "rss_before_store_mib": mib(before),
            "disk_mib": mib(disk),
            "secs": secs(elapsed),
            "sign_secs": secs(sign_time),
            "records_per_sec": (lots as f64 / (elapsed - sign_time).as_secs_f64()).round(),
        }),
    )
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
