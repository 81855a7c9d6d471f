//! The audit export and its offline verification (DESIGN.md §6).
//!
//! An export is a self-contained file: the magic bytes [`EXPORT_MAGIC`], then frames of
//! `u32 little-endian length ‖ canonical bytes of an` [`ExportItem`]: one [`ExportHeader`], every
//! entry of every partner's log up to its size at the last exported checkpoint, every sealed
//! checkpoint and settlement statement from epoch 0, and an [`ExportTrailer`] with the counts. Each
//! frame is within the canonical decode limit, so a reader never holds more than one frame.
//!
//! [`Auditor`] verifies an export against the genesis alone: every entry's signature, chain link and
//! ledger rule (by replaying the logs through the same [`crate::replica::Ledger`] a node uses), every
//! certificate, every checkpoint's seal, and that recomputing every statement and checkpoint gives
//! byte-identical results; it also checks consistency proofs between consecutive checkpoints. A
//! failure names the epoch, partner, position and rule where it can.
//!
//! [`export`] holds the file format, [`Auditor`] the checks, and [`verify_export`] runs them with the
//! signature checks spread over every core.

mod auditor;
pub mod export;
mod parallel;

pub use auditor::Auditor;
pub use export::{write_item, ExportHeader, ExportItem, ExportReader, ExportTrailer, EXPORT_MAGIC};
pub use parallel::verify_export;

use crate::hash::Hash;
use crate::record::Epoch;
use serde::{Deserialize, Serialize};
use std::fmt;

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

fn at_epoch(epoch: Epoch, rule: impl Into<String>) -> AuditFailure {
    AuditFailure {
        epoch: Some(epoch),
        partner: None,
        position: None,
        rule: rule.into(),
    }
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
