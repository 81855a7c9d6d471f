//! Turns `node.toml` (and the genesis and key files it names) into a checked, typed configuration.

use coalition_client::{KeyFile, NodeConfig};
use coalition_core::crypto::Keypair;
use coalition_core::genesis::{Genesis, GenesisError};
use coalition_core::record::PartnerId;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the node cannot start with this configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not in its expected format.
    #[error("{path} is not a valid {what}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it should be.
        what: &'static str,
        /// The parser's words.
        reason: String,
    },
    /// The genesis is inconsistent.
    #[error("genesis {path}")]
    Genesis {
        /// The file.
        path: PathBuf,
        /// The rule broken.
        source: GenesisError,
    },
    /// The key file's key is not one of the genesis partners.
    #[error("key in {path} ({key}) is not a partner in the genesis")]
    NotAPartner {
        /// The key file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A setting is out of range.
    #[error("{field}: {reason}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// Everything the node runs with, checked.
pub struct Config {
    /// The raw settings.
    pub file: NodeConfig,
    /// The coalition.
    pub genesis: Arc<Genesis>,
    /// This partner's key.
    pub keypair: Arc<Keypair>,
    /// This partner.
    pub me: PartnerId,
    /// Where the HTTP API listens.
    pub api_listen: SocketAddr,
    /// Where anchors are appended.
    pub anchor_file: PathBuf,
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })
}

/// Resolves a path in a config file relative to the config file's directory.
fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Loads and checks the genesis file.
pub fn load_genesis(path: &Path) -> Result<Genesis, ConfigError> {
    let text = read(path)?;
    let genesis: Genesis = serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.into(),
        what: "genesis (JSON)",
        reason: e.to_string(),
    })?;
    genesis.validate().map_err(|source| ConfigError::Genesis {
        path: path.into(),
        source,
    })?;
    Ok(genesis)
}

/// Loads a partner key file.
pub fn load_key(path: &Path) -> Result<Keypair, ConfigError> {
    let text = read(path)?;
    let parse = |reason: String| ConfigError::Parse {
        path: path.into(),
        what: "key file",
        reason,
    };
    let kf: KeyFile = serde_json::from_str(&text).map_err(|e| parse(e.to_string()))?;
    let secret = hex::decode(kf.secret.trim()).map_err(|e| parse(format!("secret: {e}")))?;
    let secret: [u8; 32] = secret
        .try_into()
        .map_err(|_| parse("secret must be 32 bytes".into()))?;
    let keypair = Keypair::from_secret_bytes(&secret);
    if keypair.public().to_hex() != kf.public.trim().to_lowercase() {
        return Err(parse("public key does not match the secret".into()));
    }
    Ok(keypair)
}

/// The longest anti-entropy period: beyond it a node that missed gossip stays behind for hours.
pub const MAX_ANTI_ENTROPY_SECS: u64 = 3600;
/// The longest a redemption may wait for votes: a till does not wait longer than this.
pub const MAX_VOTE_TIMEOUT_MS: u64 = 600_000;
/// The shortest API token: guessing it must be out of reach.
pub const MIN_API_TOKEN_LEN: usize = 16;

/// Checks the settings that are not files: addresses parse, the token is a usable secret, periods are
/// within range (a timeout of `u64::MAX` would overflow the clock arithmetic it feeds).
fn check_settings(file: &NodeConfig) -> Result<(), ConfigError> {
    let invalid = |field, reason: String| ConfigError::Invalid { field, reason };
    crate::p2p::parse_addr(&file.p2p_listen).map_err(|e| invalid("p2p_listen", e.to_string()))?;
    for peer in &file.peers {
        crate::p2p::parse_addr(peer).map_err(|e| invalid("peers", e.to_string()))?;
    }
    // A token travels in an `Authorization` header, so visible ASCII only; spaces would be
    // trimmed away by some clients and make a token of blanks.
    let usable = |t: &str| t.len() >= MIN_API_TOKEN_LEN && t.bytes().all(|b| b.is_ascii_graphic());
    let rule = format!("must be at least {MIN_API_TOKEN_LEN} visible ASCII characters (no spaces)");
    if !usable(&file.api_token) {
        return Err(invalid("api_token", rule));
    }
    if !file.auditor_tokens.iter().all(|t| usable(t)) {
        return Err(invalid("auditor_tokens", format!("each {rule}")));
    }
    if file.auditor_tokens.contains(&file.api_token) {
        return Err(invalid(
            "auditor_tokens",
            "an auditor token must not be the partner's api_token".into(),
        ));
    }
    if !(1..=MAX_ANTI_ENTROPY_SECS).contains(&file.anti_entropy_secs) {
        return Err(invalid(
            "anti_entropy_secs",
            format!("must be between 1 and {MAX_ANTI_ENTROPY_SECS}"),
        ));
    }
    if !(1..=MAX_VOTE_TIMEOUT_MS).contains(&file.vote_timeout_ms) {
        return Err(invalid(
            "vote_timeout_ms",
            format!("must be between 1 and {MAX_VOTE_TIMEOUT_MS}"),
        ));
    }
    if file.tls_cert.is_some() != file.tls_key.is_some() {
        return Err(invalid(
            "tls_cert",
            "tls_cert and tls_key go together: give both, or neither for plain HTTP".into(),
        ));
    }
    Ok(())
}

impl Config {
    /// Reads `node.toml` and everything it names.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read(path)?;
        let mut file: NodeConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            what: "node config (TOML)",
            reason: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        file.genesis = resolve(base, &file.genesis);
        file.key_file = resolve(base, &file.key_file);
        file.data_dir = resolve(base, &file.data_dir);
        file.tls_cert = file.tls_cert.as_deref().map(|p| resolve(base, p));
        file.tls_key = file.tls_key.as_deref().map(|p| resolve(base, p));
        let genesis = load_genesis(&file.genesis)?;
        let keypair = load_key(&file.key_file)?;
        let me = PartnerId(keypair.public());
        if !genesis.is_partner(&me) {
            return Err(ConfigError::NotAPartner {
                path: file.key_file,
                key: me.to_hex(),
            });
        }
        let api_listen: SocketAddr = file.api_listen.parse().map_err(|e| ConfigError::Invalid {
            field: "api_listen",
            reason: format!("{:?} is not an address:port ({e})", file.api_listen),
        })?;
        check_settings(&file)?;
        let anchor_file = match &file.anchor_file {
            Some(p) => resolve(base, p),
            None => file.data_dir.join("anchors.txt"),
        };
        Ok(Config {
            genesis: Arc::new(genesis),
            keypair: Arc::new(keypair),
            me,
            api_listen,
            anchor_file,
            file,
        })
    }
}
