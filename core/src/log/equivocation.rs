//! Proof that a partner signed two different entries for one position of its log
//! ([`Equivocation`]): self-contained, checkable with nothing but the two entries.

use crate::crypto::SignatureError;
use crate::record::{PartnerId, SignedEntry};
use serde::{Deserialize, Serialize};

/// Why an [`Equivocation`] does not prove anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EquivocationError {
    /// One of the entries is not at the claimed position.
    #[error("{which} entry is {found_partner}/{found_seq}, not the claimed {partner}/{seq}")]
    WrongPosition {
        /// "first" or "second".
        which: &'static str,
        /// The claimed author.
        partner: PartnerId,
        /// The claimed position.
        seq: u64,
        /// The entry's author.
        found_partner: PartnerId,
        /// The entry's position.
        found_seq: u64,
    },
    /// The two entries are the same.
    #[error("the two entries are identical")]
    Identical,
    /// One of the signatures does not verify.
    #[error("{which} entry's signature does not verify: {source}")]
    BadSignature {
        /// "first" or "second".
        which: &'static str,
        /// Why.
        source: SignatureError,
    },
}

/// Proof that a partner signed two different entries for one position of its log. Anyone can check it
/// with [`verify`](Self::verify), with nothing but the two entries; nodes keep it, raise an alarm and
/// stop taking the partner's entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Equivocation {
    /// The partner that equivocated.
    pub partner: PartnerId,
    /// The contested position.
    pub seq: u64,
    /// The entry seen first.
    pub first: SignedEntry,
    /// The conflicting entry.
    pub second: SignedEntry,
}

impl Equivocation {
    /// Builds the proof from two entries and checks it.
    pub fn new(first: SignedEntry, second: SignedEntry) -> Result<Equivocation, EquivocationError> {
        let proof = Equivocation {
            partner: first.entry.partner,
            seq: first.entry.seq,
            first,
            second,
        };
        proof.verify()?;
        Ok(proof)
    }

    /// Checks that both entries are by `partner` at `seq`, differ, and carry valid signatures.
    pub fn verify(&self) -> Result<(), EquivocationError> {
        for (which, e) in [("first", &self.first), ("second", &self.second)] {
            if e.entry.partner != self.partner || e.entry.seq != self.seq {
                return Err(EquivocationError::WrongPosition {
                    which,
                    partner: self.partner,
                    seq: self.seq,
                    found_partner: e.entry.partner,
                    found_seq: e.entry.seq,
                });
            }
        }
        if self.first.id() == self.second.id() {
            return Err(EquivocationError::Identical);
        }
        for (which, e) in [("first", &self.first), ("second", &self.second)] {
            e.verify_signature()
                .map_err(|source| EquivocationError::BadSignature { which, source })?;
        }
        Ok(())
    }
}
