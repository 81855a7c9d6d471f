//! [`verify_export`]: an [`Auditor`] with its signature checks spread over every core.

use super::auditor::{check_signatures, CheckedItem, BATCH};
use super::export::{ExportItem, ExportReader};
use super::{AuditFailure, AuditReport, Auditor};
use crate::genesis::Genesis;
use std::io::Read;
use std::sync::mpsc;

/// Up to [`BATCH`] entries and the frames between them, read in order; or why reading stopped.
type Unit = Result<Vec<ExportItem>, AuditFailure>;

/// Units in flight per worker: enough to keep the workers busy, little memory.
const UNITS_IN_FLIGHT: usize = 2;

/// Most signature-checking threads; the ledger replay is one more.
const MAX_WORKERS: usize = 8;

/// Verifies a whole export read from `r`, calling `progress` with the entries verified so far.
///
/// Signature checks, the bulk of the work, run on every core: one thread reads frames and deals
/// them out in units of [`BATCH`] entries to worker threads in turn; the calling thread takes the
/// checked units back in the same order and replays them through the [`Auditor`]. The result is the
/// same as feeding every frame to one [`Auditor`].
pub fn verify_export<R: Read + Send>(
    genesis: Genesis,
    r: R,
    mut progress: impl FnMut(u64),
) -> Result<AuditReport, AuditFailure> {
    let mut reader = ExportReader::new(r)?;
    let mut auditor = Auditor::new(genesis)?;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_WORKERS);
    std::thread::scope(|scope| {
        let mut to_workers = Vec::with_capacity(workers);
        let mut from_workers = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (unit_tx, unit_rx) = mpsc::sync_channel::<Unit>(UNITS_IN_FLIGHT);
            let (done_tx, done_rx) = mpsc::sync_channel(UNITS_IN_FLIGHT);
            scope.spawn(move || {
                for unit in unit_rx {
                    if done_tx.send(unit.map(check_unit)).is_err() {
                        return;
                    }
                }
            });
            to_workers.push(unit_tx);
            from_workers.push(done_rx);
        }
        scope.spawn(move || {
            // Deals units to the workers in turn until the file ends, a frame is bad, or the
            // auditor stopped listening (a failure downstream).
            for worker in to_workers.iter().cycle() {
                let unit = read_unit(&mut reader);
                let last = !matches!(&unit, Ok(items) if !items.is_empty());
                if worker.send(unit).is_err() || last {
                    return;
                }
            }
        });
        for worker in from_workers.iter().cycle() {
            // The reader stops after the last unit: the next worker's channel closes empty.
            let Ok(unit) = worker.recv() else { break };
            auditor.feed_checked(unit?)?;
            progress(auditor.entries());
        }
        Ok::<(), AuditFailure>(())
    })?;
    progress(auditor.entries());
    auditor.finish()
}

/// Reads frames up to [`BATCH`] entries or the end of the file (an empty unit).
fn read_unit<R: Read>(reader: &mut ExportReader<R>) -> Unit {
    let mut items = Vec::new();
    let mut entries = 0;
    while entries < BATCH {
        match reader.next_item()? {
            Some(item) => {
                if matches!(item, ExportItem::Entry(_)) {
                    entries = entries.saturating_add(1);
                }
                items.push(item);
            }
            None => break,
        }
    }
    Ok(items)
}

/// Checks the signatures of a unit's entries, one batch per run of entries.
fn check_unit(items: Vec<ExportItem>) -> Vec<CheckedItem> {
    let mut out = Vec::new();
    let mut run = Vec::new();
    for item in items {
        match item {
            ExportItem::Entry(e) => run.push(e),
            other => {
                if !run.is_empty() {
                    out.push(CheckedItem::Entries(check_signatures(std::mem::take(
                        &mut run,
                    ))));
                }
                out.push(CheckedItem::Other(other));
            }
        }
    }
    if !run.is_empty() {
        out.push(CheckedItem::Entries(check_signatures(run)));
    }
    out
}
