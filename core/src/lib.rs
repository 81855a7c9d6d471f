//! The protocol of the coalition points network, with no I/O.
//!
//! Partners append signed [`record::SignedEntry`]s to their own logs ([`log`]); each log is an
//! RFC 6962 Merkle tree ([`merkle`]); the ledger state ([`state`]: lots, balances, spend counters) is
//! derived from the logs by the rules in [`ledger`], driven in any arrival order by
//! [`replica::Ledger`]; spends are member-signed orders ([`order`]) that partners vote on by the
//! vote rule ([`vote`]) and that become final with a quorum certificate ([`cert`]); epochs end in
//! checkpoints ([`checkpoint`]) and settlement statements ([`settlement`]), which an auditor
//! re-derives from an export ([`audit`]). Everything here is deterministic and depends only on its
//! inputs, so a node, an auditor and a fuzzer all run the same code.
//!
//! The modules, from the bottom up (each uses only modules above it in this list):
//!
//! | module | owns |
//! |---|---|
//! | [`hash`], [`encoding`], [`crypto`] | digests and domain tags, the canonical byte form, ed25519 |
//! | [`record`], [`genesis`], [`verified`], [`clock`] | the records, the coalition's parameters, checked values, time |
//! | [`merkle`] | the RFC 6962 tree, its proofs and frontier |
//! | [`refusal`], [`order`], [`cert`] | refusal codes, an order's form, quorum certificates |
//! | [`log`] | the chain rules of one log, entry signatures, equivocation proofs |
//! | [`state`], [`cert_window`], [`ledger`], [`vote`], [`lot_selection`] | the state, how long an order can be certified, its rules, the vote rule, the wallet's choice of lots |
//! | [`replica`], [`memory`] | the replication driver, the in-memory store |
//! | [`settlement`], [`checkpoint`], [`audit`], [`wire`] | statements, checkpoints, the offline audit, partner messages |
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

// Every input here may come from another process (a peer's entry, an export, a wallet's order), and
// points and money must never wrap: outside tests, no arithmetic that can overflow, no indexing that
// can panic, no unwrap or panic. Checked arithmetic returns a typed error instead.
#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod audit;
pub mod cert;
pub mod cert_window;
pub mod checkpoint;
pub mod clock;
pub mod crypto;
pub mod encoding;
pub mod genesis;
pub mod hash;
pub mod ledger;
pub mod log;
pub mod lot_selection;
pub mod memory;
pub mod merkle;
pub mod order;
pub mod read_auth;
pub mod record;
pub mod refusal;
pub mod replica;
pub mod settlement;
pub mod state;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
pub mod verified;
pub mod vote;
pub mod wire;
