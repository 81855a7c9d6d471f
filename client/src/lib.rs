//! The node's HTTP API, defined once: request and response types, the node config file format, and a
//! blocking client. The node serves these types, the `coalition` CLI and the end-to-end tests consume
//! them, so the three cannot drift apart.
//!
//! ```no_run
//! use coalition_client::Client;
//! let node = Client::new("http://127.0.0.1:7101", None);
//! let status = node.status()?;
//! println!("{} sees {} logs", status.partner.name, status.logs.len());
//! # Ok::<(), coalition_client::ClientError>(())
//! ```

pub mod auth;
pub mod client;
pub mod config;
pub mod order;
pub mod types;

pub use client::{Client, ClientError, TlsRoots};
pub use config::{KeyFile, NodeConfig};
