//! The partner node: a RocksDB-backed replica of every partner's log, a libp2p peer, a voter on
//! redemptions and the HTTP API a merchant's POS calls. Built on the pure protocol in
//! `coalition-core`; [`service`] wires the parts and runs the tasks, and docs/architecture.md walks
//! a redemption through them.
//!
//! From the top down (a module uses only modules below it):
//!
//! | module | job |
//! |---|---|
//! | [`service`] | wiring, tasks, shutdown |
//! | [`api`] | HTTP: routes, the token check, one mapping of errors to statuses |
//! | [`dispatch`] | inbound gossip and requests, to their handlers, bounded |
//! | [`ops`] | issue, redeem, vote, in-flight retry, views, audit, admin |
//! | [`epoch`], [`sync`], [`rejoin`] | epoch close and sealing tasks; anti-entropy and catch-up; the check with partners before a started node signs |
//! | [`node`], [`error`] | the shared handles; typed errors |
//! | [`writer`] | the one thread that writes |
//! | [`store`], [`p2p`], [`metrics`], [`config`] | RocksDB; libp2p; Prometheus; `node.toml` |

pub mod api;
pub mod config;
pub mod dispatch;
pub mod epoch;
pub mod error;
pub mod metrics;
pub mod node;
pub mod ops;
pub mod p2p;
pub mod rejoin;
pub mod service;
pub mod store;
pub mod sync;
pub mod writer;
