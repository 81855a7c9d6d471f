//! The node's operations, one module each: what the API and the peers ask of a node. Each takes the
//! [`crate::node::Node`] handles and returns a typed [`crate::error::NodeError`]; none knows HTTP.
//!
//! - [`issue`]: credit points to a member (idempotent by receipt reference);
//! - [`redeem`]: gather a quorum of votes for a member-signed order, append the certificate;
//! - [`vote`]: answer a partner's vote request by the vote rule;
//! - [`inflight`]: complete redemptions left in flight by a restart or a failed append;
//! - [`views`]: balances, histories, log ranges, status (read-only);
//! - [`audit`]: sealed checkpoints, statements and record proofs for auditors;
//! - [`admin`]: the operator's partition switch and online backups.

pub mod admin;
pub mod audit;
pub mod inflight;
pub mod issue;
pub mod redeem;
pub mod views;
pub mod vote;
