//! `coalition audit ...`: export the ledger from a node, verify an export or a live node offline,
//! fetch and check a record's inclusion proof.

use crate::args::AuditCommand;
use crate::context::{Context, UsageError};
use anyhow::{anyhow, bail, Context as _, Result};
use coalition_client::Client;
use coalition_core::audit::{
    verify_export, write_item, ExportHeader, ExportItem, ExportTrailer, EXPORT_MAGIC,
};
use coalition_core::checkpoint::RecordProof;
use coalition_core::encoding::decode;
use coalition_core::genesis::Genesis;
use coalition_core::hash::Hash;
use coalition_core::record::{PartnerId, SignedEntry};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::path::Path;

/// Entries asked for per request.
const PAGE: u64 = 1000;

/// Runs an `audit` command.
pub(crate) fn run(ctx: &Context, cmd: AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::Export { out, epoch } => export_cmd(ctx, &out, epoch),
        AuditCommand::Verify {
            export,
            genesis,
            epoch,
        } => verify_cmd(ctx, export.as_deref(), genesis.as_deref(), epoch),
        AuditCommand::Prove {
            record,
            epoch,
            genesis,
            out,
        } => prove(ctx, &record, epoch, genesis.as_deref(), out.as_deref()),
        AuditCommand::CheckProof { proof, genesis } => check_proof(ctx, &proof, &genesis),
    }
}

fn progress(ctx: &Context, total: Option<u64>, what: &str) -> ProgressBar {
    if ctx.out.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(t) => ProgressBar::new(t).with_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{msg} {pos} ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(what.to_string());
    bar
}

/// Reads and validates a genesis file.
pub(crate) fn read_genesis(path: &Path) -> Result<Genesis> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let g: Genesis = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a genesis file", path.display()))?;
    g.validate()
        .with_context(|| format!("{} is not a valid genesis", path.display()))?;
    Ok(g)
}

#[derive(Serialize)]
struct ExportSummary {
    file: String,
    epoch: u64,
    entries: u64,
    checkpoints: u64,
    bytes: u64,
}

/// Writes the export of `client`'s node up to `epoch` (default: the last sealed) to `w`: the header,
/// every entry of every log up to that epoch's checkpoint, every checkpoint and statement from epoch
/// 0, and the trailer. Returns the epoch and the number of entries.
fn write_export(
    ctx: &Context,
    client: &Client,
    epoch: Option<u64>,
    w: &mut impl Write,
) -> Result<(u64, u64)> {
    let genesis = client.genesis().context("cannot get the node's genesis")?;
    let epoch = export_epoch(client, epoch)?;
    let log_sizes = log_sizes_at(client, epoch)?;
    w.write_all(EXPORT_MAGIC)?;
    write_item(
        w,
        &ExportItem::Header(ExportHeader {
            coalition: genesis.hash(),
            epoch,
            log_sizes: log_sizes.clone(),
        }),
    )?;
    let total: u64 = log_sizes.iter().map(|(_, s)| s).sum();
    let bar = progress(ctx, Some(total), "exporting entries");
    let mut entries = 0u64;
    for (partner, size) in &log_sizes {
        entries += write_log(client, partner, *size, w, &bar)?;
    }
    bar.finish_and_clear();
    write_checkpoints(client, epoch, w)?;
    write_item(
        w,
        &ExportItem::Trailer(ExportTrailer {
            entries,
            checkpoints: epoch + 1,
            statements: epoch + 1,
        }),
    )?;
    Ok((epoch, entries))
}

/// The epoch to export: `asked` if the node has sealed it, else the last sealed one.
fn export_epoch(client: &Client, asked: Option<u64>) -> Result<u64> {
    let last = client
        .status()
        .context("cannot get the node's status")?
        .last_sealed_epoch;
    match (asked, last) {
        (_, None) => bail!("the node has no sealed checkpoint yet; nothing can be exported"),
        (Some(e), Some(l)) if e > l => {
            bail!("epoch {e} is not sealed yet (the last sealed epoch is {l})")
        }
        (Some(e), Some(_)) => Ok(e),
        (None, Some(l)) => Ok(l),
    }
}

/// Every partner's log size in the checkpoint of `epoch`: how much of each log the export holds.
fn log_sizes_at(client: &Client, epoch: u64) -> Result<Vec<(PartnerId, u64)>> {
    let checkpoint = client
        .checkpoint(epoch)
        .with_context(|| format!("cannot get the checkpoint of epoch {epoch}"))?;
    Ok(checkpoint
        .checkpoint
        .logs
        .iter()
        .map(|l| (l.partner, l.size))
        .collect())
}

/// Writes the first `size` entries of `partner`'s log, fetched a page at a time; returns how many.
fn write_log(
    client: &Client,
    partner: &PartnerId,
    size: u64,
    w: &mut impl Write,
    bar: &ProgressBar,
) -> Result<u64> {
    let mut from = 0;
    while from < size {
        let range = client
            .log_range(partner, from, PAGE.min(size - from))
            .with_context(|| format!("cannot read the log of {} from {from}", partner.short()))?;
        if range.entries.is_empty() {
            bail!(
                "the node returned no entries of {} at {from} (log size {size})",
                partner.short()
            );
        }
        for hex_entry in range
            .entries
            .iter()
            .take(usize::try_from(size - from).unwrap_or(usize::MAX))
        {
            let bytes = hex::decode(hex_entry).context("the node sent an entry that is not hex")?;
            let entry: SignedEntry =
                decode(&bytes).context("the node sent an undecodable entry")?;
            write_item(w, &ExportItem::Entry(entry))?;
            from += 1;
            bar.inc(1);
        }
    }
    Ok(from)
}

/// Writes the sealed checkpoint and the settlement statement of every epoch from 0 to `epoch`.
fn write_checkpoints(client: &Client, epoch: u64, w: &mut impl Write) -> Result<()> {
    for e in 0..=epoch {
        let cp = client
            .checkpoint(e)
            .with_context(|| format!("cannot get the checkpoint of epoch {e}"))?;
        let st = client
            .settlement(e)
            .with_context(|| format!("cannot get the settlement of epoch {e}"))?;
        write_item(w, &ExportItem::Checkpoint(cp))?;
        write_item(w, &ExportItem::Statement(st.statement))?;
    }
    Ok(())
}

fn export_cmd(ctx: &Context, out: &Path, epoch: Option<u64>) -> Result<()> {
    let client = ctx.reader_client();
    let partial = out.with_extension("partial");
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    if out.exists() {
        let _ = std::fs::remove_file(&partial);
        bail!("{} already exists; choose another --out", out.display());
    }
    let mut w = BufWriter::new(file);
    let result = write_export(ctx, &client, epoch, &mut w).and_then(|r| {
        let f = w
            .into_inner()
            .map_err(|e| anyhow!("writing {}: {e}", partial.display()))?;
        f.sync_all()?;
        Ok(r)
    });
    let (epoch, entries) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, out)
        .with_context(|| format!("cannot move the export to {}", out.display()))?;
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    let summary = ExportSummary {
        file: out.display().to_string(),
        epoch,
        entries,
        checkpoints: epoch + 1,
        bytes,
    };
    if ctx.out.json {
        return ctx.out.json(&summary);
    }
    ctx.out.fields(&[
        ("exported", summary.file),
        ("epochs", format!("0..={epoch}")),
        ("entries", entries.to_string()),
        ("bytes", bytes.to_string()),
    ])
}

#[derive(Serialize)]
struct Verdict {
    verdict: &'static str,
    source: String,
    /// The hash of the genesis the entries were checked against, and where it came from: an audit
    /// proves consistency with *this* genesis, so the auditor compares it with a trusted copy.
    genesis: Hash,
    genesis_from: String,
    #[serde(flatten)]
    report: coalition_core::audit::AuditReport,
}

fn verify_cmd(
    ctx: &Context,
    export: Option<&Path>,
    genesis: Option<&Path>,
    epoch: Option<u64>,
) -> Result<()> {
    let (report, source, checked) = match export {
        Some(path) => {
            let genesis_path = genesis.ok_or_else(|| {
                UsageError("--export needs --genesis FILE: the export is checked against it".into())
            })?;
            let genesis = read_genesis(genesis_path)?;
            let checked = (genesis.hash(), genesis_path.display().to_string());
            if epoch.is_some() {
                return Err(UsageError(
                    "--epoch applies to a live node; an export covers the epochs it holds".into(),
                )
                .into());
            }
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let bar = progress(ctx, None, "verifying entries");
            let result = verify_export(genesis, BufReader::new(file), |n| bar.set_position(n));
            bar.finish_and_clear();
            (
                result.map_err(|f| anyhow!("audit FAILED: {f}"))?,
                path.display().to_string(),
                checked,
            )
        }
        None => {
            let client = ctx.reader_client();
            let (genesis, from) = match genesis {
                Some(p) => (read_genesis(p)?, p.display().to_string()),
                None => (
                    client.genesis().context("cannot get the node's genesis")?,
                    "the audited node".to_string(),
                ),
            };
            let checked = (genesis.hash(), from);
            let mut buf = Vec::new();
            write_export(ctx, &client, epoch, &mut buf)?;
            let bar = progress(ctx, None, "verifying entries");
            let result = verify_export(genesis, &buf[..], |n| bar.set_position(n));
            bar.finish_and_clear();
            (
                result.map_err(|f| anyhow!("audit FAILED: {f}"))?,
                ctx.node.clone(),
                checked,
            )
        }
    };
    let (genesis, genesis_from) = checked;
    if ctx.out.json {
        return ctx.out.json(&Verdict {
            verdict: "ok",
            source,
            genesis,
            genesis_from,
            report,
        });
    }
    ctx.out.line(format!(
        "audit OK: {source}: {} entries ({} certificates), checkpoints 0..={} recomputed and sealed, last checkpoint {}, against genesis {genesis} from {genesis_from}",
        report.entries, report.certificates, report.epoch, report.last_checkpoint
    ))
}

#[derive(Serialize)]
struct ProofSummary {
    verdict: &'static str,
    record: Hash,
    partner: String,
    position: u64,
    epoch: u64,
    checkpoint: Hash,
    signatures: usize,
    saved: Option<String>,
}

fn summarize(proof: &RecordProof, genesis: &Genesis, saved: Option<String>) -> ProofSummary {
    let e = &proof.entry.entry;
    ProofSummary {
        verdict: "ok",
        record: e.record.id(),
        partner: crate::output::partner_name(Some(genesis), &e.partner),
        position: e.seq,
        epoch: proof.sealed.checkpoint.epoch,
        checkpoint: proof.sealed.checkpoint.hash(),
        signatures: proof.sealed.signatures.len(),
        saved,
    }
}

fn print_proof(ctx: &Context, s: &ProofSummary) -> Result<()> {
    if ctx.out.json {
        return ctx.out.json(s);
    }
    let mut rows = vec![
        ("record", s.record.to_string()),
        (
            "in the log of",
            format!("{} at position {}", s.partner, s.position),
        ),
        (
            "sealed checkpoint",
            format!(
                "epoch {} ({}), {} signatures",
                s.epoch, s.checkpoint, s.signatures
            ),
        ),
        ("verdict", "proof verified".to_string()),
    ];
    if let Some(f) = &s.saved {
        rows.push(("saved to", f.clone()));
    }
    ctx.out.fields(&rows)
}

fn prove(
    ctx: &Context,
    record: &str,
    epoch: Option<u64>,
    genesis: Option<&Path>,
    out: Option<&Path>,
) -> Result<()> {
    let record = Hash::from_hex(record.trim()).map_err(|e| UsageError(format!("--record: {e}")))?;
    let client = ctx.reader_client();
    let genesis = match genesis {
        Some(p) => read_genesis(p)?,
        None => client.genesis().context("cannot get the node's genesis")?,
    };
    let proof = client
        .proof(&record, epoch)
        .with_context(|| format!("cannot get a proof of record {record}"))?;
    if proof.entry.entry.record.id() != record {
        bail!("the node answered with a proof of another record");
    }
    proof
        .verify(&genesis)
        .map_err(|e| anyhow!("the proof does NOT verify: {e}"))?;
    let saved = match out {
        Some(path) => {
            let json = serde_json::to_vec_pretty(&proof)?;
            crate::files::write_new(path, &json, crate::files::Mode::Public)?;
            Some(path.display().to_string())
        }
        None => None,
    };
    print_proof(ctx, &summarize(&proof, &genesis, saved))
}

fn check_proof(ctx: &Context, path: &Path, genesis: &Path) -> Result<()> {
    let genesis = read_genesis(genesis)?;
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let proof: RecordProof = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a record proof", path.display()))?;
    proof
        .verify(&genesis)
        .map_err(|e| anyhow!("the proof does NOT verify: {e}"))?;
    print_proof(ctx, &summarize(&proof, &genesis, None))
}
