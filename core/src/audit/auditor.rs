//! [`Auditor`]: the checks of an export against the genesis alone, frame by frame.

use super::export::{ExportHeader, ExportItem, ExportTrailer};
use super::{at_epoch, failure, AuditFailure, AuditReport};
use crate::checkpoint::{Checkpoint, SealedCheckpoint};
use crate::encoding::encode;
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::log::{entry_leaf, EntryError, LogClose, SignatureChecked};
use crate::memory::MemoryLedger;
use crate::merkle::{Blake3Hasher, ConsistencyProof};
use crate::record::{Epoch, PartnerId, Record, SignedEntry};
use crate::replica::{IngestError, IngestOutcome, Ledger};
use crate::settlement::{compute_statement, epoch_activity, SettlementStatement};
use std::collections::BTreeMap;

/// Entries verified per batch signature check.
pub(super) const BATCH: usize = 512;
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
    pub(super) fn feed_checked(&mut self, unit: Vec<CheckedItem>) -> Result<(), AuditFailure> {
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
        self.check_complete(&header)?;
        let mut prev: Option<(SettlementStatement, Checkpoint)> = None;
        for epoch in 0..=header.epoch {
            let (statement, checkpoint) = self.check_epoch(epoch, prev.as_ref())?;
            if let Some((_, prev_checkpoint)) = &prev {
                self.check_consistency(prev_checkpoint, &checkpoint)?;
            }
            prev = Some((statement, checkpoint));
        }
        let (_, last) = prev.ok_or_else(|| failure("no checkpoint"))?;
        self.check_ends_at(&header, &last)?;
        Ok(AuditReport {
            epoch: header.epoch,
            entries: self.entries,
            certificates: self.certificates,
            checkpoints: header.epoch.saturating_add(1),
            last_checkpoint: last.hash(),
            last_logs_root: last.logs_root,
        })
    }

    /// The export is whole: the trailer counts what it holds, no entry waits for one that is not
    /// in it, and every log is as long as the header says.
    fn check_complete(&self, header: &ExportHeader) -> Result<(), AuditFailure> {
        let trailer = self
            .trailer
            .as_ref()
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
        Ok(())
    }

    /// One epoch: its seal holds, and its statement and checkpoint, recomputed from the replayed
    /// logs and the epoch before (`prev`), are the ones in the export. Returns the recomputed pair.
    fn check_epoch(
        &self,
        epoch: Epoch,
        prev: Option<&(SettlementStatement, Checkpoint)>,
    ) -> Result<(SettlementStatement, Checkpoint), AuditFailure> {
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
        let activity = epoch_activity(&self.genesis, epoch, self.ledger.store().lots().values())
            .map_err(|e| at_epoch(epoch, e.to_string()))?;
        let statement = compute_statement(&self.genesis, &activity, prev.map(|(s, _)| s))
            .map_err(|e| at_epoch(epoch, format!("settlement: {e}")))?;
        if encode(&statement) != encode(given) {
            return Err(at_epoch(
                epoch,
                "the settlement statement differs from the one recomputed from the logs",
            ));
        }
        let recomputed = Checkpoint::compute(
            &self.genesis,
            epoch,
            &self.closes_of(epoch)?,
            prev.map(|(_, c)| c.hash()),
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
                rule: "the sealed checkpoint differs from the one recomputed from the logs".into(),
            });
        }
        Ok((statement, recomputed))
    }

    /// Every partner's close of `epoch` in the replayed logs; the first partner whose log does not
    /// close it is the failure.
    fn closes_of(&self, epoch: Epoch) -> Result<BTreeMap<PartnerId, LogClose>, AuditFailure> {
        let held = self.ledger.store().closes();
        let mut closes = BTreeMap::new();
        for g in &self.genesis.partners {
            let Some(close) = held.get(&(g.id, epoch)) else {
                return Err(AuditFailure {
                    epoch: Some(epoch),
                    partner: Some(self.name(&g.id)),
                    position: None,
                    rule: "the log does not close this epoch".into(),
                });
            };
            closes.insert(g.id, *close);
        }
        Ok(closes)
    }

    /// The export ends where its header says: every log at its size in the last checkpoint, and no
    /// checkpoint or statement beyond the last epoch.
    fn check_ends_at(&self, header: &ExportHeader, last: &Checkpoint) -> Result<(), AuditFailure> {
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
        Ok(())
    }

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

/// Entries with their epoch and the result of their signature check, in export order.
pub(super) type CheckedEntries = Vec<(Epoch, Result<SignatureChecked, EntryError>)>;

/// Checks the signatures of a batch of entries (one batch verification; each alone if it fails).
pub(super) fn check_signatures(batch: Vec<SignedEntry>) -> CheckedEntries {
    let epochs: Vec<Epoch> = batch.iter().map(|e| e.entry.epoch).collect();
    epochs
        .into_iter()
        .zip(SignatureChecked::verify_batch(batch))
        .collect()
}

/// A frame after a worker of [`verify_export`] has seen it.
// Inline variants: each is built once and moved, like `ExportItem`.
#[allow(clippy::large_enum_variant)]
pub(super) enum CheckedItem {
    /// A run of entries, signatures checked.
    Entries(CheckedEntries),
    /// Any other frame.
    Other(ExportItem),
}
