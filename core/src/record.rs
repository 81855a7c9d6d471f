//! The records of the ledger and the signed envelopes around them.
//!
//! A partner's log is a chain of [`SignedEntry`]s; each entry carries one [`Record`]. The record enum
//! is versioned by position: new kinds are only ever appended, so old records keep their encoding and
//! their ids.

use crate::crypto::{self, Keypair, PublicKey, Signature, SignatureError};
use crate::encoding::encode;
use crate::hash::{tag, Hash};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Whole points. Never fractional, never negative.
pub type Points = u64;
/// Seconds since the Unix epoch (UTC).
pub type Timestamp = u64;
/// Epoch number, counted from the genesis time.
pub type Epoch = u64;

macro_rules! key_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub PublicKey);

        impl $name {
            /// Lowercase hex of the key.
            pub fn to_hex(&self) -> String {
                self.0.to_hex()
            }
            /// Parses 64 hex digits.
            pub fn from_hex(s: &str) -> Result<Self, crate::hash::HexError> {
                PublicKey::from_hex(s).map($name)
            }
            /// The first bytes in hex, for logs and tables.
            pub fn short(&self) -> String {
                self.0.short()
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.short())
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0.to_hex())
            }
        }
        impl std::str::FromStr for $name {
            type Err = crate::hash::HexError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_hex(s)
            }
        }
    };
}

key_id!(
    /// A partner merchant: its ed25519 key, also its libp2p identity.
    PartnerId
);
key_id!(
    /// A member: the ed25519 key held in the member's wallet.
    MemberId
);

/// Points credited to a member by an issuer: one lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// The partner that issues (and later pays for) the points. Must be the entry's author.
    pub issuer: PartnerId,
    /// Who receives them.
    pub member: MemberId,
    /// How many. At least 1.
    pub points: Points,
    /// The lot cannot be spent at or after this time; what is left then is breakage.
    pub expires_at: Timestamp,
    /// A hash of the purchase receipt (never the receipt itself).
    pub reference: Hash,
    /// When the issuer issued it.
    pub time: Timestamp,
}

impl Issue {
    /// The lot id: identifies this issue everywhere (orders name lots by it). Two identical issues have
    /// one id, which is what makes a replayed issue detectable.
    pub fn id(&self) -> Hash {
        Hash::tagged(tag::RECORD, &encode(self))
    }
}

/// Part of a lot consumed by an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotSpend {
    /// The lot (an [`Issue::id`]).
    pub lot: Hash,
    /// Points taken from it. At least 1.
    pub points: Points,
}

/// A member's instruction to burn points at a redeemer. Signed by the member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemOrder {
    /// The member spending.
    pub member: MemberId,
    /// The member's spend counter: exactly the number of the member's earlier applied spends.
    pub member_seq: u64,
    /// The partner where the points are redeemed (and who is owed by the lots' issuers).
    pub redeemer: PartnerId,
    /// Total points. Equal to the sum of `lots`.
    pub points: Points,
    /// Which lots pay, chosen by the wallet (expiring first). Distinct lots.
    pub lots: Vec<LotSpend>,
    /// When the member signed it.
    pub time: Timestamp,
}

impl RedeemOrder {
    /// The order id: what the member signs and what partners vote on.
    pub fn id(&self) -> Hash {
        Hash::tagged(tag::ORDER, &encode(self))
    }
    /// Signs as the member.
    pub fn sign(self, member: &Keypair) -> SignedOrder {
        let signature = member.sign(&self.id());
        SignedOrder {
            order: self,
            signature,
        }
    }
}

/// A redeem order with the member's signature: what a wallet hands to a POS (the "order token").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOrder {
    /// The order.
    pub order: RedeemOrder,
    /// The member's signature over [`RedeemOrder::id`].
    pub signature: Signature,
}

impl SignedOrder {
    /// Checks the member's signature.
    pub fn verify_signature(&self) -> Result<(), SignatureError> {
        crypto::verify(&self.order.member.0, &self.order.id(), &self.signature)
    }
}

/// What a partner signs to vote for an order.
pub fn vote_message(order_id: &Hash) -> Hash {
    Hash::tagged(tag::VOTE, &order_id.0)
}

/// One partner's vote for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The order voted for.
    pub order_id: Hash,
    /// The voter.
    pub partner: PartnerId,
    /// Signature over [`vote_message`] of the order id.
    pub signature: Signature,
}

impl Vote {
    /// Signs a vote for `order_id` as `partner`.
    pub fn sign(order_id: Hash, partner: &Keypair) -> Vote {
        Vote {
            order_id,
            partner: PartnerId(partner.public()),
            signature: partner.sign(&vote_message(&order_id)),
        }
    }
    /// Checks the voter's signature (not whether the voter is a partner: see the certificate check).
    pub fn verify_signature(&self) -> Result<(), SignatureError> {
        crypto::verify(
            &self.partner.0,
            &vote_message(&self.order_id),
            &self.signature,
        )
    }
}

/// A vote as carried inside a certificate (the order id is the certificate's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteSig {
    /// The voter.
    pub partner: PartnerId,
    /// Its signature over [`vote_message`] of the order id.
    pub signature: Signature,
}

/// An order with a quorum of partner votes: final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemCert {
    /// The member-signed order.
    pub order: SignedOrder,
    /// At least a quorum of distinct genesis partners, sorted by partner id.
    pub votes: Vec<VoteSig>,
}

/// A partner's marker that its log for `epoch` is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochClose {
    /// The epoch closed.
    pub epoch: Epoch,
}

/// What a log entry carries. Append new kinds at the end only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// Earn: a credit, signed by its issuer through the entry.
    Issue(Issue),
    /// Burn: a certified redemption, appended by the redeemer.
    Redeem(RedeemCert),
    /// The author's log for an epoch is complete.
    EpochClose(EpochClose),
}

impl Record {
    /// Short name of the kind, for logs, errors and tables.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Issue(_) => "issue",
            Record::Redeem(_) => "redeem",
            Record::EpochClose(_) => "epoch-close",
        }
    }
    /// The id by which users and auditors name a record: an issue's lot id, a redemption's order id,
    /// or for an epoch close the hash of the record.
    pub fn id(&self) -> Hash {
        match self {
            Record::Issue(i) => i.id(),
            Record::Redeem(c) => c.order.order.id(),
            Record::EpochClose(_) => Hash::tagged(tag::RECORD, &encode(self)),
        }
    }
}

/// One position in a partner's append-only log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The log's owner and the entry's signer.
    pub partner: PartnerId,
    /// Position in the log, from 0.
    pub seq: u64,
    /// The id of entry `seq - 1`, or [`Hash::ZERO`] for the first.
    pub prev: Hash,
    /// The epoch the log is in when this entry is appended (one more than the last closed).
    pub epoch: Epoch,
    /// When the partner appended it.
    pub time: Timestamp,
    /// The payload.
    pub record: Record,
}

impl Entry {
    /// The entry id: what the partner signs, what the next entry's `prev` names, and the Merkle leaf.
    pub fn id(&self) -> Hash {
        Hash::tagged(tag::ENTRY, &encode(self))
    }
    /// Signs as the log's owner.
    pub fn sign(self, partner: &Keypair) -> SignedEntry {
        let signature = partner.sign(&self.id());
        SignedEntry {
            entry: self,
            signature,
        }
    }
}

/// An entry with its author's signature: the unit of replication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEntry {
    /// The entry.
    pub entry: Entry,
    /// The author's signature over [`Entry::id`].
    pub signature: Signature,
}

impl SignedEntry {
    /// The entry id.
    pub fn id(&self) -> Hash {
        self.entry.id()
    }
    /// Checks the author's signature.
    pub fn verify_signature(&self) -> Result<(), SignatureError> {
        crypto::verify(&self.entry.partner.0, &self.entry.id(), &self.signature)
    }
}

/// Hashes an outside reference (a receipt number) so the ledger never holds it.
pub fn reference_hash(text: &str) -> Hash {
    Hash::tagged(tag::REFERENCE, text.as_bytes())
}
