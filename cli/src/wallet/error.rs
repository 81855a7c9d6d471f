//! What can go wrong with a wallet: [`WalletError`] for callers (it names the file), with a typed
//! [`CorruptReason`] for damaged files, and [`Problem`] inside this module before the file is known.

use super::kdf::{KdfCostError, KdfError};
use super::{FORMAT, FORMAT_VERSION, SECRET_LEN};
use coalition_core::hash::HexError;
use std::io;
use std::path::{Path, PathBuf};

/// Why a wallet could not be created, read or unlocked. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// Creating over an existing file.
    #[error("wallet {} already exists; refusing to overwrite it", .path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("cannot read wallet {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file could not be written.
    #[error("cannot write wallet {}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file is truncated, edited, or not a wallet at all.
    #[error("wallet {} is damaged or not a coalition wallet: {reason}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong (part of this error's message, so not also its source).
        reason: CorruptReason,
    },
    /// A wallet written by a newer (or unknown) version of this program.
    #[error("wallet {} has format version {found}; this build reads version {FORMAT_VERSION}", .path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u64,
    },
    /// Decryption failed on an intact file.
    #[error("wrong passphrase for wallet {}", .path.display())]
    WrongPassphrase {
        /// The file.
        path: PathBuf,
    },
}

/// What is wrong with a damaged wallet file. Each message is what follows "wallet X is damaged or not
/// a coalition wallet: ".
#[derive(Debug, thiserror::Error)]
pub enum CorruptReason {
    /// Far bigger than any wallet.
    #[error("more than {max} bytes, far larger than any wallet")]
    TooLarge {
        /// The most a wallet file may hold.
        max: u64,
    },
    /// Nothing but whitespace.
    #[error("the file is empty")]
    Empty,
    /// Not JSON.
    #[error("not valid JSON ({0})")]
    NotJson(serde_json::Error),
    /// JSON without this format's `format` field.
    #[error("no \"format\": \"{FORMAT}\" field")]
    NotAWallet,
    /// No numeric `version` field.
    #[error("no format version")]
    NoVersion,
    /// A field missing, unknown or of the wrong type.
    #[error(transparent)]
    Fields(serde_json::Error),
    /// A key derivation this build does not know.
    #[error("unknown key derivation {algorithm} version {version}")]
    UnknownKdf {
        /// The `kdf.algorithm` field.
        algorithm: String,
        /// The `kdf.version` field.
        version: u32,
    },
    /// A cipher this build does not know.
    #[error("unknown cipher {cipher:?}")]
    UnknownCipher {
        /// The `cipher` field.
        cipher: String,
    },
    /// Key-derivation parameters out of bounds.
    #[error(transparent)]
    KdfCost(KdfCostError),
    /// The member id is not 64 hex digits.
    #[error("member: {0}")]
    MemberHex(HexError),
    /// The member id is not a usable public key.
    #[error("member is not a valid ed25519 key")]
    WeakMember,
    /// A binary field that is not hex.
    #[error("{field} is not hex ({cause})")]
    NotHex {
        /// The field.
        field: &'static str,
        /// Why.
        cause: hex::FromHexError,
    },
    /// A binary field of the wrong length.
    #[error("{field} is {len} bytes, expected {expected}")]
    Length {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The length it must have.
        expected: usize,
    },
    /// The checksum is not 64 hex digits.
    #[error("checksum: {0}")]
    ChecksumHex(HexError),
    /// The checksum does not match the rest of the file.
    #[error("checksum mismatch (the file was truncated or edited)")]
    ChecksumMismatch,
    /// The key could not be derived with the file's parameters.
    #[error(transparent)]
    Kdf(KdfError),
    /// The decrypted secret has the wrong length.
    #[error("secret is {len} bytes, expected {SECRET_LEN}")]
    SecretLength {
        /// Its length in bytes.
        len: usize,
    },
    /// The decrypted secret is not the key of the member id in the file.
    #[error("the secret key does not match the member id")]
    KeyMismatch,
}

/// What went wrong, before the file name is attached.
#[derive(Debug)]
pub(super) enum Problem {
    Corrupt(CorruptReason),
    Unsupported(u64),
    WrongPassphrase,
}

impl From<CorruptReason> for Problem {
    fn from(reason: CorruptReason) -> Problem {
        Problem::Corrupt(reason)
    }
}

impl Problem {
    /// The error for the file at `path`.
    pub(super) fn at(self, path: &Path) -> WalletError {
        let path = path.to_path_buf();
        match self {
            Problem::Corrupt(reason) => WalletError::Corrupt { path, reason },
            Problem::Unsupported(found) => WalletError::UnsupportedVersion { path, found },
            Problem::WrongPassphrase => WalletError::WrongPassphrase { path },
        }
    }
}
