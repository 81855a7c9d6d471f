//! The signatures of a log entry, checked once: the author's and, for a redemption, the
//! certificate's ([`SignatureChecked`]), alone or in one batch for many entries.

use super::EntryError;
use crate::cert::{cert_signatures, CertSigner};
use crate::crypto::{self, Keypair, SignatureError, SignedMessage};
use crate::record::{Entry, Record, RedeemCert, SignedEntry};
use crate::verified::Verified;

/// A signed entry whose signatures have been verified (alone or in a batch): the author's and, for a
/// redemption, the certificate's (the member's and every vote's); but nothing else. Checking them
/// here, once, lets a node or an auditor verify many entries with [`crypto::verify_batch`], and keeps
/// [`crate::ledger::apply`] free of signature work, which matters because a parked entry is applied
/// again each time something else commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureChecked(SignedEntry);

/// Whose signature one batch item is.
#[derive(Clone, Copy)]
enum Signer {
    Author,
    Cert(CertSigner),
}

/// Every signature in `entry`: the author's first.
fn entry_signatures(entry: &SignedEntry) -> impl Iterator<Item = (Signer, SignedMessage)> {
    let author = SignedMessage {
        key: entry.entry.partner.0,
        message: entry.id(),
        signature: entry.signature,
    };
    let cert = match &entry.entry.record {
        Record::Redeem(cert) => cert_signatures(cert),
        _ => Vec::new(),
    };
    std::iter::once((Signer::Author, author))
        .chain(cert.into_iter().map(|(who, m)| (Signer::Cert(who), m)))
}

fn signature_error(entry: &SignedEntry, signer: Signer, source: SignatureError) -> EntryError {
    let (partner, seq) = (entry.entry.partner, entry.entry.seq);
    match signer {
        Signer::Author => EntryError::BadSignature {
            partner,
            seq,
            source,
        },
        Signer::Cert(who) => EntryError::BadCertificate {
            partner,
            seq,
            source: who.error(source),
        },
    }
}

impl SignatureChecked {
    /// Verifies every signature of the entry with `verify_strict`, the author's first.
    pub fn verify(entry: SignedEntry) -> Result<SignatureChecked, EntryError> {
        for (signer, m) in entry_signatures(&entry) {
            crypto::verify(&m.key, &m.message, &m.signature)
                .map_err(|source| signature_error(&entry, signer, source))?;
        }
        Ok(SignatureChecked(entry))
    }

    /// Signs `entry` as its author, without verifying again what is known to be good: the signature
    /// just made, if `keypair` is the author's, and a certificate verified as it was built (`cert`,
    /// which must be the entry's own). Anything else is verified as usual. For a node's own appends,
    /// which would otherwise check five signatures it has just checked or made.
    pub fn sign(
        entry: Entry,
        keypair: &Keypair,
        cert: Option<&Verified<RedeemCert>>,
    ) -> Result<SignatureChecked, EntryError> {
        let own = keypair.public() == entry.partner.0;
        let cert_known = match (&entry.record, cert) {
            (Record::Redeem(c), Some(verified)) => verified.inner() == c,
            (Record::Redeem(_), None) => false,
            _ => true,
        };
        let signed = entry.sign(keypair);
        if own && cert_known {
            Ok(SignatureChecked(signed))
        } else {
            SignatureChecked::verify(signed)
        }
    }

    /// Verifies every signature of all the entries in one batch ([`crypto::verify_batch`]: for log
    /// entries during catch-up and audit). If the batch fails, each entry is verified alone, so the
    /// good ones still pass and every bad one is named: one result per entry, in order.
    pub fn verify_batch(entries: Vec<SignedEntry>) -> Vec<Result<SignatureChecked, EntryError>> {
        let items: Vec<SignedMessage> = entries
            .iter()
            .flat_map(|e| entry_signatures(e).map(|(_, m)| m))
            .collect();
        if crypto::verify_batch(&items).is_ok() {
            entries
                .into_iter()
                .map(|e| Ok(SignatureChecked(e)))
                .collect()
        } else {
            entries.into_iter().map(SignatureChecked::verify).collect()
        }
    }

    /// The entry.
    pub fn entry(&self) -> &SignedEntry {
        &self.0
    }

    /// Unwraps the entry.
    pub fn into_inner(self) -> SignedEntry {
        self.0
    }
}
