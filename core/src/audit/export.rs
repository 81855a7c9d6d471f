//! The export file: the magic bytes [`EXPORT_MAGIC`], then frames of `u32 little-endian length ‖
//! canonical bytes of an` [`ExportItem`], each within the canonical decode limit, so a reader never
//! holds more than one frame.

use super::{failure, AuditFailure};
use crate::checkpoint::SealedCheckpoint;
use crate::encoding::{self, MAX_ENCODED_LEN};
use crate::hash::Hash;
use crate::record::{Epoch, PartnerId, SignedEntry};
use crate::settlement::SettlementStatement;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// The first bytes of every export file.
pub const EXPORT_MAGIC: &[u8; 8] = b"COALEXP1";
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
    while let Some(rest) = buf.get_mut(n..).filter(|rest| !rest.is_empty()) {
        match r.read(rest) {
            Ok(0) => break,
            Ok(k) => n = n.saturating_add(k),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
