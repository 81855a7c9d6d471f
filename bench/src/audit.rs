//! The offline audit: an export of a 4-partner coalition (issues and certified cross-partner
//! redemptions, one closed and sealed epoch) built here with coalition-core, then
//! `coalition audit verify --export F --genesis G` timed as a subprocess.

use crate::world::{member_ids, member_key, secs, write_json, LogBuilder, Net, BATCH, START};
use crate::Args;
use anyhow::{bail, ensure, Context, Result};
use coalition_core::audit::{write_item, ExportHeader, ExportItem, ExportTrailer, EXPORT_MAGIC};
use coalition_core::cert::CertBuilder;
use coalition_core::checkpoint::{Checkpoint, CheckpointSig, SealedCheckpoint};
use coalition_core::log::SignatureChecked;
use coalition_core::lot_selection::select_lots;
use coalition_core::memory::MemoryLedger;
use coalition_core::record::{EpochClose, MemberId, Record, RedeemOrder, SignedEntry, Vote};
use coalition_core::replica::{IngestOutcome, Ledger};
use coalition_core::settlement::compute_statement;
use coalition_core::settlement::epoch_activity;
use coalition_core::state::LedgerView;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::process::Command;
use std::time::Instant;

const PARTNERS: usize = 4;

fn applied(outcome: IngestOutcome) -> Result<()> {
    match outcome {
        IngestOutcome::Applied { rejected, .. } if rejected.is_empty() => Ok(()),
        other => bail!("entry did not apply: {other:?}"),
    }
}

pub(crate) fn run(args: &Args) -> Result<()> {
    let out = args.path("out")?;
    let total: u64 = args.num("entries", 200_000)?;
    let runs: usize = args.num("runs", 1usize)?;
    let redeems = total / 4;
    let issues = total - redeems - PARTNERS as u64;
    let members_n = redeems as u32;
    let net = Net::new(PARTNERS);
    let members: Vec<MemberId> = member_ids(members_n);
    let mut ledger = Ledger::new(net.genesis.clone(), MemoryLedger::new(), usize::MAX);
    let mut logs: Vec<LogBuilder> = (0..PARTNERS).map(LogBuilder::new).collect();
    let mut now = START;
    let t = Instant::now();

    // Issues everywhere, 100 points each (about 3 lots per member).
    let mut batch: Vec<SignedEntry> = Vec::with_capacity(BATCH);
    for k in 0..issues {
        let p = (k % PARTNERS as u64) as usize;
        batch.push(logs[p].issue(&net, members[(k % members_n as u64) as usize], 100, now, k));
        now += 1;
        if batch.len() == BATCH || k + 1 == issues {
            let checked = SignatureChecked::verify_batch(std::mem::take(&mut batch))
                .into_iter()
                .collect::<Result<Vec<_>, _>>()?;
            for c in checked {
                applied(ledger.ingest_presigned(c)?)?;
            }
        }
    }
    // One redemption of 150 points per member (it spans two lots), certified by 3 of 4 partners,
    // at a partner other than the first issuer.
    for (r, member) in members.iter().enumerate().take(redeems as usize) {
        let p = (r + 1) % PARTNERS;
        let lots = ledger.store().member_lots(member)?;
        let order = RedeemOrder {
            member: *member,
            member_seq: ledger.store().member(member)?.next_seq,
            redeemer: net.pid(p),
            points: 150,
            lots: select_lots(&lots, 150, now)?,
            time: now,
        }
        .sign(&member_key(r as u32));
        let mut b = CertBuilder::new(&net.genesis, order)?;
        for v in 0..3 {
            b.add(&Vote::sign(b.order_id(), &net.partners[(p + v) % PARTNERS]))?;
        }
        let cert = b.finish()?.into_inner();
        let entry = logs[p].next(&net, now, Record::Redeem(cert));
        applied(ledger.ingest(entry)?)?;
        now += 1;
    }
    // Close epoch 0 everywhere and seal it, as honest nodes would.
    now = now.max(net.genesis.epoch_end(0));
    for log in logs.iter_mut() {
        let e = log.next(&net, now, Record::EpochClose(EpochClose { epoch: 0 }));
        applied(ledger.ingest(e)?)?;
    }
    let store = ledger.store();
    let activity = epoch_activity(&net.genesis, 0, store.lots().values())?;
    let statement = compute_statement(&net.genesis, &activity, None)?;
    let closes: BTreeMap<_, _> = (0..PARTNERS)
        .map(|p| (net.pid(p), store.closes()[&(net.pid(p), 0)]))
        .collect();
    let checkpoint = Checkpoint::compute(&net.genesis, 0, &closes, None, statement.hash())?;
    let signatures = net
        .partners
        .iter()
        .take(3)
        .map(|k| CheckpointSig::sign(&checkpoint, k))
        .collect();
    let sealed = SealedCheckpoint {
        checkpoint,
        signatures,
    };
    let build = t.elapsed();

    let dir = tempfile::tempdir()?;
    let genesis_path = dir.path().join("genesis.json");
    std::fs::write(&genesis_path, serde_json::to_string_pretty(&net.genesis)?)?;
    let export_path = dir.path().join("ledger.export");
    let mut w = BufWriter::new(std::fs::File::create(&export_path)?);
    w.write_all(EXPORT_MAGIC)?;
    let log_sizes: Vec<_> = sealed
        .checkpoint
        .logs
        .iter()
        .map(|l| (l.partner, l.size))
        .collect();
    write_item(
        &mut w,
        &ExportItem::Header(ExportHeader {
            coalition: net.genesis.hash(),
            epoch: 0,
            log_sizes: log_sizes.clone(),
        }),
    )?;
    let mut entries = 0u64;
    for (p, size) in &log_sizes {
        for e in &store.log(p)[..*size as usize] {
            write_item(&mut w, &ExportItem::Entry(e.clone()))?;
            entries += 1;
        }
    }
    write_item(&mut w, &ExportItem::Checkpoint(sealed))?;
    write_item(&mut w, &ExportItem::Statement(statement))?;
    write_item(
        &mut w,
        &ExportItem::Trailer(ExportTrailer {
            entries,
            checkpoints: 1,
            statements: 1,
        }),
    )?;
    w.flush()?;
    drop(w);
    let bytes = std::fs::metadata(&export_path)?.len();
    eprintln!("  export: {entries} entries ({issues} issues, {redeems} redemptions), {} MiB, built in {:.1} s", bytes >> 20, build.as_secs_f64());
    drop(ledger);
    // For profiling `coalition audit verify` on its own (docs/performance.md).
    if let Some(keep) = std::env::var_os("COALITION_BENCH_KEEP") {
        let keep = std::path::PathBuf::from(keep);
        std::fs::create_dir_all(&keep)?;
        std::fs::copy(&genesis_path, keep.join("genesis.json"))?;
        std::fs::copy(&export_path, keep.join("ledger.export"))?;
        eprintln!("  kept the export and genesis in {}", keep.display());
    }

    let cli = coalition_tests::bin_dir().join("coalition");
    ensure!(cli.exists(), "{} not found", cli.display());
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let o = Command::new(&cli)
            .args(["--json", "audit", "verify", "--export"])
            .arg(&export_path)
            .arg("--genesis")
            .arg(&genesis_path)
            .env_remove("COALITION_NODE")
            .output()
            .context("running coalition audit verify")?;
        let elapsed = t.elapsed();
        ensure!(
            o.status.success(),
            "coalition audit verify failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).context("parsing audit verify --json")?;
        let verified = v.get("entries").and_then(|e| e.as_u64());
        ensure!(
            verified == Some(entries),
            "audit verified {verified:?} entries, expected {entries}: {v}"
        );
        ensure!(
            v.get("verdict").and_then(|e| e.as_str()) == Some("ok"),
            "audit verdict is not ok: {v}"
        );
        eprintln!(
            "  coalition audit verify: {entries} entries in {:.2} s",
            elapsed.as_secs_f64()
        );
        times.push(elapsed);
    }
    times.sort();
    let median = times[times.len() / 2];
    write_json(
        &out,
        &json!({
            "method": "export built in-process with coalition-core (4 partners; issues of 100 points, then one 150-point cross-partner redemption per member certified by 3 partners; epoch 0 closed and sealed), then `coalition --json audit verify --export F --genesis G` timed as a subprocess (release build; includes process start, reading the file, the final settlement and checkpoint recomputation)",
            "entries": entries,
            "issues": issues,
            "redemptions": redeems,
            // Entry signatures, plus each certificate's member signature and 3 votes.
            "signatures": entries + 4 * redeems,
            "export_bytes": bytes,
            "build_secs": secs(build),
            "runs_secs": times.iter().map(|d| secs(*d)).collect::<Vec<_>>(),
            "secs": secs(median),
            "records_per_sec": (entries as f64 / median.as_secs_f64()).round(),
        }),
    )
}
