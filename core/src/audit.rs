//! The audit export and its offline verification (DESIGN.md §6).
//!
//! An export is a self-contained file: the magic bytes [`EXPORT_MAGIC`], then frames of
//! `u32 little-endian length ‖ canonical bytes of an` [`ExportItem`]: one [`ExportHeader`], every
//! entry of every partner's log up to its size at the last exported checkpoint, every sealed
//! checkpoint and settlement statement from epoch 0, and an [`ExportTrailer`] with the counts. Each
//! frame is within the canonical decode limit, so a reader never holds more than one frame.
//!
//! [`Auditor`] verifies an export against the genesis alone: every entry's signature, chain link and
//! ledger rule (by replaying the logs through the same [`crate::memory::Ledger`] a node uses), every
//! certificate, every checkpoint's seal, and that recomputing every statement and checkpoint gives
//! byte-identical results; it also checks consistency proofs between consecutive checkpoints. A
//! failure names the epoch, partner, position and rule where it can.

use crate::checkpoint::{epoch_activity, Checkpoint, SealedCheckpoint};
use crate::encoding::{self, encode, MAX_ENCODED_LEN};
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::log::{entry_leaf, EntryError, SignatureChecked};
use crate::memory::{IngestError, IngestOutcome, Ledger, MemoryLedger};
use crate::merkle::{Blake3Hasher, ConsistencyProof};
use crate::record::{Epoch, PartnerId, Record, SignedEntry};
use crate::settlement::{compute_statement, SettlementStatement};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::sync::mpsc;

/// The first bytes of every export file.
pub const EXPORT_MAGIC: &[u8; 8] = b"COALEXP1";

/// Entries verified per batch signature check.
const BATCH: usize = 512;

/// What the export covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportHeader {
    /// The genesis hash.
    pub coalition: Hash,
    /// The last epoch exported; checkpoints `0..=epoch` follow.
    pub epoch: Epoch,
    /// Entries exported per partner, in genesis order: the log sizes at checkpoint `epoch`.
    pub log_sizes: Vec<(PartnerId, u64)>,
}

/// What the export held, so a truncated file is detected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportTrailer {
    /// Entries.
    pub entries: u64,
    /// Sealed checkpoints.
    pub checkpoints: u64,
    /// Settlement statements.
    pub statements: u64,
}

/// One frame of an export.
// Inline variants: each is built or decoded once and moved.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportItem {
    /// First frame.
    Header(ExportHeader),
    /// A log entry.
    Entry(SignedEntry),
    /// A sealed checkpoint.
    Checkpoint(SealedCheckpoint),
    /// A settlement statement.
    Statement(SettlementStatement),
    /// Last frame.
    Trailer(ExportTrailer),
}

/// Where a verification failed and which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFailure {
    /// The epoch concerned, if known.
    pub epoch: Option<Epoch>,
    /// The partner ("name (id)"), if known.
    pub partner: Option<String>,
    /// The log position, if known.
    pub position: Option<u64>,
    /// The rule that failed, in words.
    pub rule: String,
}

impl fmt::Display for AuditFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(e) = self.epoch {
            parts.push(format!("epoch {e}"));
        }
        if let Some(p) = &self.partner {
            parts.push(format!("partner {p}"));
        }
        if let Some(s) = self.position {
            parts.push(format!("position {s}"));
        }
        if parts.is_empty() {
            write!(f, "{}", self.rule)
        } else {
            write!(f, "{}: {}", parts.join(", "), self.rule)
        }
    }
}

impl std::error::Error for AuditFailure {}

fn failure(rule: impl Into<String>) -> AuditFailure {
    AuditFailure {
        epoch: None,
        partner: None,
        position: None,
        rule: rule.into(),
    }
}

/// Writes one frame.
pub fn write_item(w: &mut impl Write, item: &ExportItem) -> std::io::Result<()> {
    let bytes = encoding::try_encode(item)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let len = u32::try_from(bytes.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(&bytes)
}

/// Reads frames from an export, checking the magic first.
pub struct ExportReader<R> {
    inner: R,
    frame: u64,
    done: bool,
}

impl<R: Read> ExportReader<R> {
    /// Checks the magic bytes.
    pub fn new(mut inner: R) -> Result<Self, AuditFailure> {
        let mut magic = [0u8; 8];
        inner
            .read_exact(&mut magic)
            .map_err(|e| failure(format!("not an export file: {e}")))?;
        if &magic != EXPORT_MAGIC {
            return Err(failure("not an export file (wrong magic bytes)"));
        }
        Ok(ExportReader {
            inner,
            frame: 0,
            done: false,
        })
    }

    /// The next frame, `None` at a clean end of file.
    pub fn next_item(&mut self) -> Result<Option<ExportItem>, AuditFailure> {
        if self.done {
            return Ok(None);
        }
        let mut len = [0u8; 4];
        match read_full(&mut self.inner, &mut len) {
            Ok(0) => {
                self.done = true;
                return Ok(None);
            }
            Ok(4) => {}
            Ok(_) => return Err(failure(format!("frame {}: truncated length", self.frame))),
            Err(e) => return Err(failure(format!("frame {}: {e}", self.frame))),
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_ENCODED_LEN {
            return Err(failure(format!(
                "frame {}: length {len} exceeds the limit of {MAX_ENCODED_LEN}",
                self.frame
            )));
        }
        let mut buf = vec![0u8; len];
        self.inner
            .read_exact(&mut buf)
            .map_err(|e| failure(format!("frame {}: truncated ({e})", self.frame)))?;
        let item = encoding::decode::<ExportItem>(&buf)
            .map_err(|e| failure(format!("frame {}: {e}", self.frame)))?;
        self.frame = self.frame.saturating_add(1);
        Ok(Some(item))
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// The last epoch verified.
    pub epoch: Epoch,
    /// Entries verified.
    pub entries: u64,
    /// Certificates among them.
    pub certificates: u64,
    /// Checkpoints verified (epochs `0..=epoch`).
    pub checkpoints: u64,
    /// Hash of the last checkpoint.
    pub last_checkpoint: Hash,
    /// Its logs root.
    pub last_logs_root: Hash,
}

/// Verifies an export frame by frame; see the module docs.
pub struct Auditor {
    genesis: Genesis,
    ledger: Ledger<MemoryLedger>,
    header: Option<ExportHeader>,
    trailer: Option<ExportTrailer>,
    batch: Vec<SignedEntry>,
    entries: u64,
    certificates: u64,
    checkpoints: BTreeMap<Epoch, SealedCheckpoint>,
    statements: BTreeMap<Epoch, SettlementStatement>,
}

impl Auditor {
    /// An auditor for the coalition `genesis` (which it validates).
    pub fn new(genesis: Genesis) -> Result<Auditor, AuditFailure> {
        genesis
            .validate()
            .map_err(|e| failure(format!("genesis: {e}")))?;
        Ok(Auditor {
            ledger: Ledger::new(genesis.clone(), MemoryLedger::new(), usize::MAX),
            genesis,
            header: None,
            trailer: None,
            batch: Vec::new(),
            entries: 0,
            certificates: 0,
            checkpoints: BTreeMap::new(),
            statements: BTreeMap::new(),
        })
    }

    fn name(&self, p: &PartnerId) -> String {
        match self.genesis.partner(p) {
            Some(g) => format!("{} ({})", g.name, p.short()),
            None => p.short(),
        }
    }

    /// Entries verified and applied so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Takes the next frame.
    pub fn feed(&mut self, item: ExportItem) -> Result<(), AuditFailure> {
        match item {
            ExportItem::Header(h) => self.take_header(h),
            ExportItem::Entry(e) => {
                self.in_body()?;
                self.batch.push(e);
                if self.batch.len() >= BATCH {
                    self.flush()?;
                }
                Ok(())
            }
            ExportItem::Checkpoint(c) => {
                self.in_body()?;
                let epoch = c.checkpoint.epoch;
                if self.checkpoints.insert(epoch, c).is_some() {
                    return Err(at_epoch(epoch, "two checkpoints for one epoch"));
                }
                Ok(())
            }
            ExportItem::Statement(s) => {
                self.in_body()?;
                let epoch = s.epoch;
                if self.statements.insert(epoch, s).is_some() {
                    return Err(at_epoch(epoch, "two statements for one epoch"));
                }
                Ok(())
            }
            ExportItem::Trailer(t) => {
                self.in_body()?;
                self.trailer = Some(t);
                Ok(())
            }
        }
    }

    fn take_header(&mut self, h: ExportHeader) -> Result<(), AuditFailure> {
        if self.trailer.is_some() {
            return Err(failure("data after the trailer"));
        }
        if self.header.is_some() {
            return Err(failure("two headers"));
        }
        if h.coalition != self.genesis.hash() {
            return Err(failure(format!(
                "the export is of coalition {}, the genesis given is {}",
                h.coalition.short(),
                self.genesis.hash().short()
            )));
        }
        let in_order = h.log_sizes.len() == self.genesis.partners.len()
            && h.log_sizes
                .iter()
                .zip(&self.genesis.partners)
                .all(|((p, _), g)| *p == g.id);
        if !in_order {
            return Err(failure(
                "header does not list the genesis partners in order",
            ));
        }
        self.header = Some(h);
        Ok(())
    }

    /// Every frame but the header comes after the header and before the trailer.
    fn in_body(&self) -> Result<(), AuditFailure> {
        if self.trailer.is_some() {
            return Err(failure("data after the trailer"));
        }
        if self.header.is_none() {
            return Err(failure("the export does not start with a header"));
        }
        Ok(())
    }

    /// Verifies and applies the buffered entries: one batch signature check, then the ledger rules.
    fn flush(&mut self) -> Result<(), AuditFailure> {
        let checked = check_signatures(std::mem::take(&mut self.batch));
        self.apply_checked(checked)
    }

    /// Applies entries whose signatures were checked (by [`check_signatures`]), in export order; the
    /// first failure, of a signature or a rule, ends the audit.
    fn apply_checked(&mut self, checked: CheckedEntries) -> Result<(), AuditFailure> {
        for (epoch, c) in checked {
            let c = c.map_err(|e| self.signature_failure(epoch, e))?;
            self.entries = self.entries.saturating_add(1);
            if matches!(c.entry().entry.record, Record::Redeem(_)) {
                self.certificates = self.certificates.saturating_add(1);
            }
            let (p, s, ep) = (
                c.entry().entry.partner,
                c.entry().entry.seq,
                c.entry().entry.epoch,
            );
            match self.ledger.ingest_presigned(c) {
                Ok(IngestOutcome::Applied { rejected, .. }) => {
                    if let Some(r) = rejected.first() {
                        return Err(failure(format!(
                            "an entry waiting for another breaks a rule: {r:?}"
                        )));
                    }
                }
                Ok(IngestOutcome::Pending(_)) => {}
                Ok(IngestOutcome::Duplicate) => {
                    return Err(self.at_entry(ep, &p, s, "entry appears twice".into()))
                }
                Ok(IngestOutcome::Equivocation(_)) => {
                    return Err(self.at_entry(
                        ep,
                        &p,
                        s,
                        "two different entries at one position (equivocation)".into(),
                    ))
                }
                Err(IngestError::Store(e)) => return Err(failure(e.to_string())),
                Err(e) => return Err(self.at_entry(ep, &p, s, e.to_string())),
            }
        }
        Ok(())
    }

    /// Takes a unit checked by a worker of [`verify_export`]: its entries (applied in order) and the
    /// other frames.
    fn feed_checked(&mut self, unit: Vec<CheckedItem>) -> Result<(), AuditFailure> {
        for item in unit {
            match item {
                CheckedItem::Other(item) => self.feed(item)?,
                CheckedItem::Entries(checked) => {
                    self.in_body()?;
                    self.apply_checked(checked)?;
                }
            }
        }
        Ok(())
    }

    fn signature_failure(&self, epoch: Epoch, e: EntryError) -> AuditFailure {
        match e {
            EntryError::BadSignature {
                partner,
                seq,
                source,
            } => self.at_entry(epoch, &partner, seq, format!("signature: {source}")),
            EntryError::BadCertificate {
                partner,
                seq,
                source,
            } => self.at_entry(epoch, &partner, seq, format!("certificate: {source}")),
            other => failure(other.to_string()),
        }
    }

    fn at_entry(&self, epoch: Epoch, partner: &PartnerId, seq: u64, rule: String) -> AuditFailure {
        AuditFailure {
            epoch: Some(epoch),
            partner: Some(self.name(partner)),
            position: Some(seq),
            rule,
        }
    }

    /// Ends the export: every log complete, nothing left waiting, every checkpoint and statement
    /// recomputed and compared, consecutive checkpoints consistent.
    pub fn finish(mut self) -> Result<AuditReport, AuditFailure> {
        self.flush()?;
        let header = self.header.clone().ok_or_else(|| failure("empty export"))?;
        let trailer = self
            .trailer
            .clone()
            .ok_or_else(|| failure("the export is truncated (no trailer)"))?;
        let counts = (
            self.entries,
            self.checkpoints.len() as u64,
            self.statements.len() as u64,
        );
        if counts != (trailer.entries, trailer.checkpoints, trailer.statements) {
            return Err(failure(format!(
                "the trailer counts {} entries, {} checkpoints, {} statements; the export holds {}, {}, {}",
                trailer.entries, trailer.checkpoints, trailer.statements, counts.0, counts.1, counts.2
            )));
        }
        if let Some((p, seq, missing)) = self.ledger.pending_missing().into_iter().next() {
            return Err(AuditFailure {
                epoch: None,
                partner: Some(self.name(&p)),
                position: Some(seq),
                rule: format!("entry cannot apply: {missing} is not in the export"),
            });
        }
        for (p, size) in &header.log_sizes {
            let held = self.ledger.store().log(p).len() as u64;
            if held != *size {
                return Err(AuditFailure {
                    epoch: Some(header.epoch),
                    partner: Some(self.name(p)),
                    position: Some(held),
                    rule: format!("the log holds {held} entries, the header says {size}"),
                });
            }
        }

        let lots: Vec<_> = self.ledger.store().lots().values().cloned().collect();
        let mut prev_statement: Option<SettlementStatement> = None;
        let mut prev_checkpoint: Option<Checkpoint> = None;
        for epoch in 0..=header.epoch {
            let sealed = self
                .checkpoints
                .get(&epoch)
                .ok_or_else(|| at_epoch(epoch, "no sealed checkpoint in the export"))?;
            sealed
                .verify(&self.genesis)
                .map_err(|e| at_epoch(epoch, format!("seal: {e}")))?;
            let given = self
                .statements
                .get(&epoch)
                .ok_or_else(|| at_epoch(epoch, "no settlement statement in the export"))?;
            let activity = epoch_activity(&self.genesis, epoch, &lots)
                .map_err(|e| at_epoch(epoch, e.to_string()))?;
            let statement = compute_statement(&self.genesis, &activity, prev_statement.as_ref())
                .map_err(|e| at_epoch(epoch, format!("settlement: {e}")))?;
            if encode(&statement) != encode(given) {
                return Err(at_epoch(
                    epoch,
                    "the settlement statement differs from the one recomputed from the logs",
                ));
            }
            let closes: BTreeMap<_, _> = self
                .genesis
                .partners
                .iter()
                .filter_map(|g| {
                    self.ledger
                        .store()
                        .closes()
                        .get(&(g.id, epoch))
                        .map(|c| (g.id, *c))
                })
                .collect();
            if let Some(g) = self
                .genesis
                .partners
                .iter()
                .find(|g| !closes.contains_key(&g.id))
            {
                return Err(AuditFailure {
                    epoch: Some(epoch),
                    partner: Some(self.name(&g.id)),
                    position: None,
                    rule: "the log does not close this epoch".into(),
                });
            }
            let recomputed = Checkpoint::compute(
                &self.genesis,
                epoch,
                &closes,
                prev_checkpoint.as_ref().map(Checkpoint::hash),
                statement.hash(),
            )
            .map_err(|e| at_epoch(epoch, e.to_string()))?;
            if recomputed != sealed.checkpoint {
                let partner = recomputed
                    .logs
                    .iter()
                    .zip(&sealed.checkpoint.logs)
                    .find(|(a, b)| a != b)
                    .map(|(a, _)| self.name(&a.partner));
                return Err(AuditFailure {
                    epoch: Some(epoch),
                    partner,
                    position: None,
                    rule: "the sealed checkpoint differs from the one recomputed from the logs"
                        .into(),
                });
            }
            if let Some(prev) = &prev_checkpoint {
                self.check_consistency(prev, &recomputed)?;
            }
            prev_statement = Some(statement);
            prev_checkpoint = Some(recomputed);
        }
        let last = prev_checkpoint.ok_or_else(|| failure("no checkpoint"))?;
        for (p, size) in &header.log_sizes {
            let at_last = last.log_of(p).map(|(_, l)| l.size);
            if at_last != Some(*size) {
                return Err(AuditFailure {
                    epoch: Some(header.epoch),
                    partner: Some(self.name(p)),
                    position: None,
                    rule: "the header's log size is not the size at the last checkpoint".into(),
                });
            }
        }
        if self.checkpoints.keys().any(|e| *e > header.epoch)
            || self.statements.keys().any(|e| *e > header.epoch)
        {
            return Err(failure(
                "the export holds checkpoints or statements beyond its last epoch",
            ));
        }
        Ok(AuditReport {
            epoch: header.epoch,
            entries: self.entries,
            certificates: self.certificates,
            checkpoints: header.epoch.saturating_add(1),
            last_checkpoint: last.hash(),
            last_logs_root: last.logs_root,
        })
    }

    /// Each log at `next` extends the log at `prev` (an RFC 6962 consistency proof, built from the
    /// replayed log and checked against both checkpoints' roots).
    fn check_consistency(&self, prev: &Checkpoint, next: &Checkpoint) -> Result<(), AuditFailure> {
        for (a, b) in prev.logs.iter().zip(&next.logs) {
            let leaves: Vec<Hash> = self
                .ledger
                .store()
                .log(&a.partner)
                .iter()
                .take(usize::try_from(b.size).unwrap_or(usize::MAX))
                .map(|e| entry_leaf(&e.id()))
                .collect();
            let fail = |rule: String| AuditFailure {
                epoch: Some(next.epoch),
                partner: Some(self.name(&a.partner)),
                position: None,
                rule,
            };
            if a.size == 0 {
                continue;
            }
            let proof = ConsistencyProof::from_leaves(&Blake3Hasher, &leaves, a.size, b.size)
                .map_err(|e| fail(format!("consistency with epoch {}: {e}", prev.epoch)))?;
            proof.verify(&Blake3Hasher, &a.root, &b.root).map_err(|e| {
                fail(format!(
                    "log is not an extension of epoch {}'s: {e}",
                    prev.epoch
                ))
            })?;
        }
        Ok(())
    }
}

fn at_epoch(epoch: Epoch, rule: impl Into<String>) -> AuditFailure {
    AuditFailure {
        epoch: Some(epoch),
        partner: None,
        position: None,
        rule: rule.into(),
    }
}

/// Entries with their epoch and the result of their signature check, in export order.
type CheckedEntries = Vec<(Epoch, Result<SignatureChecked, EntryError>)>;

/// Checks the signatures of a batch of entries (one batch verification; each alone if it fails).
fn check_signatures(batch: Vec<SignedEntry>) -> CheckedEntries {
    let epochs: Vec<Epoch> = batch.iter().map(|e| e.entry.epoch).collect();
    epochs
        .into_iter()
        .zip(SignatureChecked::verify_batch(batch))
        .collect()
}

/// A frame after a worker of [`verify_export`] has seen it.
// Inline variants: each is built once and moved, like `ExportItem`.
#[allow(clippy::large_enum_variant)]
enum CheckedItem {
    /// A run of entries, signatures checked.
    Entries(CheckedEntries),
    /// Any other frame.
    Other(ExportItem),
}

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
            for k in 0.. {
                let unit = read_unit(&mut reader);
                let last = !matches!(&unit, Ok(items) if !items.is_empty());
                let Some(worker) = to_workers.get(k % to_workers.len()) else {
                    return;
                };
                if worker.send(unit).is_err() || last {
                    return;
                }
            }
        });
        for k in 0.. {
            let Some(worker) = from_workers.get(k % from_workers.len()) else {
                break;
            };
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
                    entries += 1;
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
