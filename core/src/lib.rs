//! The protocol of the coalition points network, with no I/O.
//!
//! Partners append signed [`record::SignedEntry`]s to their own logs; each log is an RFC 6962 Merkle
//! tree ([`merkle`]); the ledger state (lots, balances, spend counters) is derived from the logs by the
//! rules in [`ledger`]; spends carry quorum certificates checked in [`quorum`]; epochs end in
//! checkpoints and settlement statements ([`settlement`]). Everything here is deterministic and
//! depends only on its inputs, so a node, an auditor and a fuzzer all run the same code.
//!
//! ```
//! use coalition_core::{crypto::Keypair, encoding, hash::Hash, record::*};
//! let partner = Keypair::generate();
//! let issue = Issue {
//!     issuer: PartnerId(partner.public()),
//!     member: MemberId(Keypair::generate().public()),
//!     points: 100,
//!     expires_at: 2_000_000_000,
//!     reference: reference_hash("receipt 42"),
//!     time: 1_700_000_000,
//! };
//! let entry = Entry {
//!     partner: issue.issuer, seq: 0, prev: Hash::ZERO, epoch: 0, time: issue.time,
//!     record: Record::Issue(issue),
//! }
//! .sign(&partner);
//! assert!(entry.verify_signature().is_ok());
//! let bytes = encoding::encode(&entry);
//! assert_eq!(encoding::decode::<SignedEntry>(&bytes).unwrap(), entry);
//! ```

pub mod audit;
pub mod checkpoint;
pub mod crypto;
pub mod encoding;
pub mod genesis;
pub mod hash;
pub mod ledger;
pub mod log;
pub mod memory;
pub mod merkle;
pub mod quorum;
pub mod record;
pub mod settlement;
pub mod verified;
pub mod wire;
