//! Files written by `coalition network init` and read by `coalition-node`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `node.toml`: everything one partner node needs to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The coalition's genesis file.
    pub genesis: PathBuf,
    /// This partner's key file.
    pub key_file: PathBuf,
    /// RocksDB directory (created on first start).
    pub data_dir: PathBuf,
    /// libp2p listen address, e.g. `/ip4/127.0.0.1/tcp/7100`.
    pub p2p_listen: String,
    /// Other partners' libp2p addresses to dial. Who they are is checked against the genesis during the
    /// handshake, so no peer id is needed here.
    #[serde(default)]
    pub peers: Vec<String>,
    /// HTTP API listen address, e.g. `127.0.0.1:7101`.
    pub api_listen: String,
    /// Bearer token required for partner operations (issuing, submitting redemptions); it also
    /// reads everything an auditor token reads.
    pub api_token: String,
    /// Bearer tokens this partner has given its auditors: each reads members' balances and
    /// histories, logs and proofs, and nothing else (it cannot issue or redeem).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auditor_tokens: Vec<String>,
    /// PEM certificate chain the API serves TLS with (with `tls_key`); without both, plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Where sealed checkpoint roots are appended, one line per epoch. Defaults to `DATA_DIR/anchors.txt`.
    #[serde(default)]
    pub anchor_file: Option<PathBuf>,
    /// Seconds between anti-entropy passes (head comparison and catch-up).
    #[serde(default = "default_anti_entropy_secs")]
    pub anti_entropy_secs: u64,
    /// How long a redemption waits for a quorum of votes before failing.
    #[serde(default = "default_vote_timeout_ms")]
    pub vote_timeout_ms: u64,
}

fn default_anti_entropy_secs() -> u64 {
    2
}
fn default_vote_timeout_ms() -> u64 {
    5_000
}

/// A partner's key file (`partner.key`), JSON, readable only by its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// The partner's display name, as in the genesis.
    pub name: String,
    /// Public key, hex.
    pub public: String,
    /// Secret ed25519 seed, hex (32 bytes).
    pub secret: String,
}
