//! The partner node: a RocksDB-backed replica of every partner's log, a libp2p peer, a voter on
//! redemptions and the HTTP API a merchant's POS calls. Built on the pure protocol in
//! `coalition-core`; see [`service`] for how the tasks fit together.

pub mod anchor;
pub mod api;
pub mod audit;
pub mod config;
pub mod epoch;
pub mod metrics;
pub mod p2p;
pub mod redeem;
pub mod seal;
pub mod service;
pub mod store;
pub mod sync;
pub mod views;
pub mod writer;
