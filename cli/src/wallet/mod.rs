//! The member wallet: one file holding the member's ed25519 secret, encrypted at rest.
//!
//! The file is a small JSON document (format version 1):
//!
//! ```json
//! {
//!   "format": "coalition-wallet",
//!   "version": 1,
//!   "member": "<64 hex: the member id, in clear>",
//!   "kdf": { "algorithm": "argon2id", "version": 19, "memory_kib": 65536, "iterations": 3, "parallelism": 1 },
//!   "cipher": "xchacha20poly1305",
//!   "salt": "<32 hex: 16 random bytes>",
//!   "nonce": "<48 hex: 24 random bytes>",
//!   "ciphertext": "<96 hex: the 32-byte secret seed + 16-byte tag>",
//!   "checksum": "<64 hex>"
//! }
//! ```
//!
//! - The key is `argon2id(passphrase, salt)` with the parameters written in the file (so they can be
//!   raised later without breaking old wallets), 32 bytes.
//! - The secret seed is sealed with XChaCha20-Poly1305 under that key and a random nonce. The
//!   associated data is the header (format version, member id, KDF parameters, salt, cipher), so
//!   swapping the member id or weakening the parameters in the file makes decryption fail.
//! - The member id is in clear so that `member id`, `member show` and `member balance` need no
//!   passphrase; after decryption the secret must derive that id.
//! - `checksum` is `blake3(tag ‖ header ‖ nonce ‖ ciphertext)`. It is not a security measure (anyone
//!   can recompute it; the AEAD tag is what protects the secret): it tells a damaged file ("wallet X is
//!   damaged") apart from a wrong passphrase, which otherwise look the same to the AEAD.
//!
//! Secrets (the passphrase, the derived key, the seed) live in [`Zeroizing`] buffers and are wiped
//! when dropped; the signing key itself is wiped by `ed25519-dalek` on drop.
//!
//! Layout: this module reads and writes wallet files (the public API); `kdf` derives the key from the
//! passphrase, `seal` encrypts and decrypts the secret, `format` encodes and checks the JSON file,
//! `passphrase` gets the passphrase from the environment or the terminal, and `error` says what went
//! wrong.
//!
//! [`Zeroizing`]: zeroize::Zeroizing

mod error;
mod format;
mod kdf;
mod passphrase;
mod seal;

use coalition_core::crypto::Keypair;
use coalition_core::record::MemberId;
use std::io;
use std::path::Path;

use crate::files::{self, Mode};
use error::Problem;

pub use error::{CorruptReason, WalletError};
pub use kdf::{KdfCost, KdfCostError, KdfError};
pub use passphrase::{new_passphrase_for, passphrase_for, MIN_PASSPHRASE_CHARS, PASSPHRASE_ENV};
pub use seal::{SealError, Sealed};

/// The `format` field of every wallet.
pub const FORMAT: &str = "coalition-wallet";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// No wallet is anywhere near this; anything bigger is not one.
const MAX_FILE_LEN: u64 = 64 * 1024;
/// Bytes of the secret seed (the sealed secret, and what a damaged file is checked against).
const SECRET_LEN: usize = 32;

/// Creates a wallet at `path` holding a new member key, with the default KDF cost.
pub fn create(path: &Path, passphrase: &str) -> Result<MemberId, WalletError> {
    create_with(path, passphrase, KdfCost::DEFAULT)
}

/// Creates a wallet at `path` holding a new member key. Never overwrites; mode 0600.
pub fn create_with(path: &Path, passphrase: &str, cost: KdfCost) -> Result<MemberId, WalletError> {
    if path.exists() {
        return Err(WalletError::Exists {
            path: path.to_path_buf(),
        });
    }
    let key = Keypair::generate();
    let sealed = Sealed::seal(&key, passphrase.as_bytes(), cost)
        .map_err(|reason| write_error(path, io::Error::other(reason)))?;
    let bytes = sealed
        .to_bytes()
        .map_err(|reason| write_error(path, io::Error::other(reason)))?;
    files::create_new(path, &bytes, Mode::Private).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            WalletError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            write_error(path, source)
        }
    })?;
    Ok(sealed.member())
}

/// [`WalletError::Write`] for `path`.
fn write_error(path: &Path, source: io::Error) -> WalletError {
    WalletError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads and checks a wallet file without decrypting it.
pub fn read(path: &Path) -> Result<Sealed, WalletError> {
    let read_err = |source| WalletError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Read at most one byte past the limit, whatever the file claims to be: a device such as
    // /dev/zero or a pipe has no length to check beforehand and would be read forever.
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(file, MAX_FILE_LEN + 1), &mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(Problem::from(CorruptReason::TooLarge { max: MAX_FILE_LEN }).at(path));
    }
    Sealed::parse(&bytes).map_err(|p| p.at(path))
}

/// Checks a wallet file's bytes as [`read`] and [`unlock`] do, without touching the disk: the path
/// outside bytes take, for the fuzzers. A file asking for more than `max_memory_kib` of key-derivation
/// memory is parsed but not opened.
pub fn check_bytes(
    bytes: &[u8],
    passphrase: &str,
    max_memory_kib: u32,
) -> Result<MemberId, WalletError> {
    let here = Path::new("<bytes>");
    let sealed = Sealed::parse(bytes).map_err(|p| p.at(here))?;
    if sealed.cost.memory_kib > max_memory_kib {
        return Ok(sealed.member());
    }
    let key = sealed.open(passphrase.as_bytes()).map_err(|p| p.at(here))?;
    Ok(MemberId(key.public()))
}

/// The member id of the wallet at `path` (no passphrase needed).
pub fn member_id(path: &Path) -> Result<MemberId, WalletError> {
    read(path).map(|s| s.member())
}

/// Decrypts the wallet at `path`.
pub fn unlock(path: &Path, passphrase: &str) -> Result<Keypair, WalletError> {
    read(path)?
        .open(passphrase.as_bytes())
        .map_err(|p| p.at(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_private_and_never_overwritten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("w.wallet");
        let id = create_with(&path, "pw", KdfCost::CHEAP).expect("create");
        assert_eq!(member_id(&path).expect("read id"), id);
        assert_eq!(MemberId(unlock(&path, "pw").expect("unlock").public()), id);
        assert!(matches!(
            unlock(&path, "nope"),
            Err(WalletError::WrongPassphrase { .. })
        ));
        assert!(matches!(
            create_with(&path, "pw", KdfCost::CHEAP),
            Err(WalletError::Exists { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let err = unlock(&path, "nope")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            err,
            format!("wrong passphrase for wallet {}", path.display())
        );
    }

    #[test]
    fn errors_name_the_file_and_say_what_is_wrong() {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = |r: Result<MemberId, WalletError>| r.err().map(|e| e.to_string());
        let big = dir.path().join("big.wallet");
        std::fs::write(&big, vec![b' '; 70 * 1024]).expect("write");
        assert_eq!(
            text(member_id(&big)),
            Some(format!(
                "wallet {} is damaged or not a coalition wallet: more than 65536 bytes, far larger than any wallet",
                big.display()
            ))
        );
        let newer = dir.path().join("newer.wallet");
        std::fs::write(&newer, br#"{"format":"coalition-wallet","version":2}"#).expect("write");
        assert_eq!(
            text(member_id(&newer)),
            Some(format!(
                "wallet {} has format version 2; this build reads version 1",
                newer.display()
            ))
        );
        assert_eq!(
            text(check_bytes(b"{nope", "pw", 64)),
            Some(
                "wallet <bytes> is damaged or not a coalition wallet: not valid JSON (key must be a \
string at line 1 column 2)"
                    .to_string()
            )
        );
        let err = create_with(&newer, "pw", KdfCost::CHEAP).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some(format!(
                "wallet {} already exists; refusing to overwrite it",
                newer.display()
            ))
        );
    }

    #[test]
    fn a_refused_cost_is_a_write_error_with_the_reason() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("w.wallet");
        let cost = KdfCost {
            iterations: 0,
            ..KdfCost::CHEAP
        };
        let err = create_with(&path, "pw", cost)
            .err()
            .map(|e| format!("{:#}", anyhow::Error::new(e)));
        assert_eq!(
            err,
            Some(format!(
                "cannot write wallet {}: kdf iterations 0 is outside 1..=100",
                path.display()
            ))
        );
        assert!(!path.exists());
    }
}
