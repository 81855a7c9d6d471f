//! The chain rules of one partner's append-only log (DESIGN.md §3): who may append, in what order,
//! in which epoch, and the Merkle tree the log forms.
//!
//! This is the first of two validation layers; [`crate::ledger`] checks the records against the state.
//! [`check_entry`] (or [`verify_entry`] then [`check_position`]) takes an entry from the wire to a
//! [`Verified<SignedEntry>`]; [`LogHead::advance`] gives the head after it. A partner that signs two
//! different entries for one position is caught in an [`Equivocation`], a self-contained fraud proof.
//!
//! Each entry is a leaf of its log's RFC 6962 tree: the leaf data is the 32-byte entry id
//! ([`entry_leaf`]), so an inclusion proof needs only the id and the proof.

mod equivocation;
mod signatures;

pub use equivocation::{Equivocation, EquivocationError};
pub use signatures::SignatureChecked;

use crate::cert::CertError;
use crate::crypto::SignatureError;
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::merkle::{Blake3Hasher, MerkleFrontier, MerkleHasher};
use crate::record::{Entry, Epoch, PartnerId, Record, SignedEntry, Timestamp};
use crate::verified::Verified;
use serde::{Deserialize, Serialize};

/// The Merkle leaf hash of the entry with id `entry_id`: `blake3(0x00 ‖ entry_id)`.
pub fn entry_leaf(entry_id: &Hash) -> Hash {
    Blake3Hasher.hash_leaf(&entry_id.0)
}

/// Where a partner's log stands: what the next entry must continue from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogHead {
    /// Entries in the log; the next entry's `seq`.
    pub size: u64,
    /// Id of the last entry, or [`Hash::ZERO`] for an empty log; the next entry's `prev`.
    pub last: Hash,
    /// The epoch the next entry belongs to: one more than the last closed epoch (0 at first).
    pub open_epoch: Epoch,
    /// Time of the last entry (0 for an empty log); the next entry may not be earlier.
    pub last_time: Timestamp,
    /// The log's Merkle tree right edge, of `size` leaves.
    pub frontier: MerkleFrontier,
}

/// A log's size and Merkle root right after its `EpochClose { epoch }` (the close included): what a
/// checkpoint records for this log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogClose {
    /// The epoch closed.
    pub epoch: Epoch,
    /// Log size including the close entry.
    pub size: u64,
    /// Merkle root at that size.
    pub root: Hash,
}

impl LogHead {
    /// The head of an empty log.
    pub fn empty() -> LogHead {
        LogHead::default()
    }

    /// The log's Merkle root at `size`.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The head after appending `entry`, which must have passed [`check_position`] against `self`.
    pub fn advance(&self, entry: &Entry) -> Result<LogHead, EntryError> {
        let full = || EntryError::LogFull {
            partner: entry.partner,
        };
        let id = entry.id();
        let mut frontier = self.frontier.clone();
        frontier.push(entry_leaf(&id)).map_err(|_| full())?;
        let open_epoch = match &entry.record {
            Record::EpochClose(_) => self.open_epoch.checked_add(1).ok_or_else(full)?,
            _ => self.open_epoch,
        };
        Ok(LogHead {
            size: self.size.checked_add(1).ok_or_else(full)?,
            last: id,
            open_epoch,
            last_time: entry.time,
            frontier,
        })
    }
}

/// Why an entry does not extend its log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The author is not a genesis partner.
    #[error("entry author {partner} is not a partner")]
    NotAPartner {
        /// The claimed author.
        partner: PartnerId,
    },
    /// The author's signature does not verify.
    #[error("entry {partner}/{seq}: signature does not verify: {source}")]
    BadSignature {
        /// The author.
        partner: PartnerId,
        /// The entry's position.
        seq: u64,
        /// Why.
        source: SignatureError,
    },
    /// The entry is not at the log's next position.
    #[error("entry {partner}/{found}: the log's next position is {expected}")]
    WrongSeq {
        /// The author.
        partner: PartnerId,
        /// The log's size.
        expected: u64,
        /// The entry's `seq`.
        found: u64,
    },
    /// `prev` is not the id of the log's last entry.
    #[error("entry {partner}/{seq}: prev is {found}, the last entry is {expected}")]
    PrevMismatch {
        /// The author.
        partner: PartnerId,
        /// The entry's position.
        seq: u64,
        /// Id of the last entry.
        expected: Hash,
        /// The entry's `prev`.
        found: Hash,
    },
    /// The entry's epoch is not the log's open epoch.
    #[error("entry {partner}/{seq}: epoch {found}, the log is in epoch {expected}")]
    WrongEpoch {
        /// The author.
        partner: PartnerId,
        /// The entry's position.
        seq: u64,
        /// The log's open epoch.
        expected: Epoch,
        /// The entry's epoch.
        found: Epoch,
    },
    /// The entry is earlier than the log's last entry.
    #[error("entry {partner}/{seq}: time {found} is before the last entry's time {last}")]
    TimeBackwards {
        /// The author.
        partner: PartnerId,
        /// The entry's position.
        seq: u64,
        /// Time of the last entry.
        last: Timestamp,
        /// The entry's time.
        found: Timestamp,
    },
    /// An issue in another partner's name.
    #[error("entry {partner}/{seq}: issue names issuer {issuer}, not the author")]
    IssuerMismatch {
        /// The author.
        partner: PartnerId,
        /// The entry's position.
        seq: u64,
        /// The issue's issuer.
        issuer: PartnerId,
    },
    /// A certificate for a redemption at another partner.
    #[error("entry {partner}/{seq}: redemption is at redeemer {redeemer}, not the author")]
    RedeemerMismatch {
        /// The author.
        partner: PartnerId,
        /// The entry's position.
        seq: u64,
        /// The order's redeemer.
        redeemer: PartnerId,
    },
    /// An epoch close naming another epoch than the entry's.
    #[error("entry {partner}/{seq}: closes epoch {close_epoch} from epoch {entry_epoch}")]
    CloseEpochMismatch {
        /// The author.
        partner: PartnerId,
        /// The entry's position.
        seq: u64,
        /// The entry's epoch.
        entry_epoch: Epoch,
        /// The epoch the record closes.
        close_epoch: Epoch,
    },
    /// An epoch closed before its end by the genesis clock.
    #[error("entry {partner}/{seq}: closes epoch {epoch} at {time}, before its end at {ends_at}")]
    CloseTooEarly {
        /// The author.
        partner: PartnerId,
        /// The entry's position.
        seq: u64,
        /// The epoch closed.
        epoch: Epoch,
        /// The entry's time.
        time: Timestamp,
        /// The first second after the epoch.
        ends_at: Timestamp,
    },
    /// A signature inside the entry's certificate (the member's or a vote) does not verify.
    #[error("entry {partner}/{seq}: {source}")]
    BadCertificate {
        /// The author.
        partner: PartnerId,
        /// The entry's position.
        seq: u64,
        /// Which signature, and why.
        source: CertError,
    },
    /// The log cannot grow (size or epoch at `u64::MAX`).
    #[error("log of {partner} is full")]
    LogFull {
        /// The author.
        partner: PartnerId,
    },
}

/// The rules that do not depend on the log's head: the author is a partner and authored the record
/// (an issue's issuer, a redemption's redeemer, a close of the entry's own epoch, not before the epoch
/// ends by the genesis clock).
pub fn check_author(genesis: &Genesis, entry: &Entry) -> Result<(), EntryError> {
    let (partner, seq) = (entry.partner, entry.seq);
    if !genesis.is_partner(&partner) {
        return Err(EntryError::NotAPartner { partner });
    }
    match &entry.record {
        Record::Issue(issue) if issue.issuer != partner => Err(EntryError::IssuerMismatch {
            partner,
            seq,
            issuer: issue.issuer,
        }),
        Record::Redeem(cert) if cert.order.order.redeemer != partner => {
            Err(EntryError::RedeemerMismatch {
                partner,
                seq,
                redeemer: cert.order.order.redeemer,
            })
        }
        Record::EpochClose(close) => {
            if close.epoch != entry.epoch {
                return Err(EntryError::CloseEpochMismatch {
                    partner,
                    seq,
                    entry_epoch: entry.epoch,
                    close_epoch: close.epoch,
                });
            }
            let ends_at = genesis.epoch_end(close.epoch);
            if entry.time < ends_at {
                return Err(EntryError::CloseTooEarly {
                    partner,
                    seq,
                    epoch: close.epoch,
                    time: entry.time,
                    ends_at,
                });
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The rules that place the entry right after `head`: next `seq`, `prev` = last id, the open epoch,
/// and a time no earlier than the last entry's.
pub fn check_position(head: &LogHead, entry: &Entry) -> Result<(), EntryError> {
    let (partner, seq) = (entry.partner, entry.seq);
    if seq != head.size {
        return Err(EntryError::WrongSeq {
            partner,
            expected: head.size,
            found: seq,
        });
    }
    if entry.prev != head.last {
        return Err(EntryError::PrevMismatch {
            partner,
            seq,
            expected: head.last,
            found: entry.prev,
        });
    }
    if entry.epoch != head.open_epoch {
        return Err(EntryError::WrongEpoch {
            partner,
            seq,
            expected: head.open_epoch,
            found: entry.epoch,
        });
    }
    if entry.time < head.last_time {
        return Err(EntryError::TimeBackwards {
            partner,
            seq,
            last: head.last_time,
            found: entry.time,
        });
    }
    Ok(())
}

/// Checks the author rules ([`check_author`]) and the signature, whatever the log's head: what an
/// entry needs before it may wait in a pending buffer.
///
/// A `Verified<SignedEntry>` means exactly this (every signature in it included, see
/// [`SignatureChecked`]); [`crate::ledger::apply`] checks the position
/// against the head it reads, so a verified entry can never be applied out of place.
pub fn verify_entry(
    genesis: &Genesis,
    entry: &SignedEntry,
) -> Result<Verified<SignedEntry>, EntryError> {
    check_author(genesis, &entry.entry)?;
    let checked = SignatureChecked::verify(entry.clone())?;
    Ok(Verified::new_unchecked(checked.into_inner()))
}

/// [`verify_entry`] for an entry whose signature was already verified.
pub fn verify_entry_presigned(
    genesis: &Genesis,
    entry: SignatureChecked,
) -> Result<Verified<SignedEntry>, EntryError> {
    check_author(genesis, &entry.entry().entry)?;
    Ok(Verified::new_unchecked(entry.into_inner()))
}

/// All the log rules for an entry arriving at a log with head `head`: position, author, signature
/// (checked last: it is the expensive part).
pub fn check_entry(
    genesis: &Genesis,
    head: &LogHead,
    entry: &SignedEntry,
) -> Result<Verified<SignedEntry>, EntryError> {
    check_position(head, &entry.entry)?;
    verify_entry(genesis, entry)
}

/// [`check_entry`] for an entry whose signature was already verified.
pub fn check_entry_presigned(
    genesis: &Genesis,
    head: &LogHead,
    entry: SignatureChecked,
) -> Result<Verified<SignedEntry>, EntryError> {
    check_position(head, &entry.entry().entry)?;
    verify_entry_presigned(genesis, entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::record::EpochClose;
    use crate::test_util::genesis_for;

    /// One partner, epochs of 10 s from time 1000.
    fn genesis(key: &Keypair) -> Genesis {
        Genesis {
            genesis_time: 1000,
            epoch_secs: 10,
            ..genesis_for(&[key.public()])
        }
    }

    fn close(key: &Keypair, head: &LogHead, time: Timestamp) -> Entry {
        Entry {
            partner: PartnerId(key.public()),
            seq: head.size,
            prev: head.last,
            epoch: head.open_epoch,
            time,
            record: Record::EpochClose(EpochClose {
                epoch: head.open_epoch,
            }),
        }
    }

    #[test]
    fn chain_of_closes_advances_epochs_and_root() {
        let k = Keypair::generate();
        let g = genesis(&k);
        let mut head = LogHead::empty();
        let mut leaves = Vec::new();
        for i in 0..5u64 {
            let e = close(&k, &head, 1010 + 10 * i).sign(&k);
            let v = check_entry(&g, &head, &e).unwrap();
            leaves.push(entry_leaf(&v.id()));
            head = head.advance(&v.entry).unwrap();
            assert_eq!(head.open_epoch, i + 1);
        }
        assert_eq!(head.size, 5);
        assert_eq!(
            head.root(),
            crate::merkle::root(&Blake3Hasher, &leaves, 5).unwrap()
        );
    }

    #[test]
    fn position_and_author_errors() {
        let k = Keypair::generate();
        let g = genesis(&k);
        let head = LogHead::empty();
        let early = close(&k, &head, 1009).sign(&k);
        assert!(matches!(
            check_entry(&g, &head, &early),
            Err(EntryError::CloseTooEarly { .. })
        ));
        let mut e = close(&k, &head, 1010);
        e.seq = 1;
        assert!(matches!(
            check_entry(&g, &head, &e.sign(&k)),
            Err(EntryError::WrongSeq { .. })
        ));
        let mut e = close(&k, &head, 1010);
        e.prev = Hash([1; 32]);
        assert!(matches!(
            check_entry(&g, &head, &e.sign(&k)),
            Err(EntryError::PrevMismatch { .. })
        ));
        let mut e = close(&k, &head, 1010);
        e.record = Record::EpochClose(EpochClose { epoch: 1 });
        assert!(matches!(
            check_entry(&g, &head, &e.sign(&k)),
            Err(EntryError::CloseEpochMismatch { .. })
        ));
        let other = Keypair::generate();
        let e = close(&other, &head, 1010).sign(&other);
        assert!(matches!(
            check_entry(&g, &head, &e),
            Err(EntryError::NotAPartner { .. })
        ));
        let mut e = close(&k, &head, 1010).sign(&k);
        e.signature.0[1] ^= 1;
        assert!(matches!(
            check_entry(&g, &head, &e),
            Err(EntryError::BadSignature { .. })
        ));
        let results = SignatureChecked::verify_batch(vec![close(&k, &head, 1010).sign(&k), e]);
        assert!(results[0].is_ok());
        assert!(matches!(results[1], Err(EntryError::BadSignature { .. })));
    }

    #[test]
    fn equivocation_proof() {
        let k = Keypair::generate();
        let head = LogHead::empty();
        let a = close(&k, &head, 1010).sign(&k);
        let b = close(&k, &head, 1011).sign(&k);
        let proof = Equivocation::new(a.clone(), b.clone()).unwrap();
        assert!(proof.verify().is_ok());
        assert_eq!(
            Equivocation::new(a.clone(), a.clone()),
            Err(EquivocationError::Identical)
        );
        let mut forged = b;
        forged.signature.0[0] ^= 1;
        assert!(matches!(
            Equivocation::new(a, forged),
            Err(EquivocationError::BadSignature {
                which: "second",
                ..
            })
        ));
        let mut moved = proof;
        moved.seq = 1;
        assert!(matches!(
            moved.verify(),
            Err(EquivocationError::WrongPosition { .. })
        ));
    }
}
