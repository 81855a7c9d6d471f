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

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use coalition_core::crypto::Keypair;
use coalition_core::hash::Hash;
use coalition_core::record::MemberId;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

use crate::files::{self, Mode};

/// The `format` field of every wallet.
pub const FORMAT: &str = "coalition-wallet";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Where the passphrase comes from when it is not prompted.
pub const PASSPHRASE_ENV: &str = "COALITION_WALLET_PASSPHRASE";

const KDF_ALGORITHM: &str = "argon2id";
/// Argon2 version 1.3.
const ARGON2_VERSION: u32 = 0x13;
const CIPHER: &str = "xchacha20poly1305";
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const SECRET_LEN: usize = 32;
const TAG_LEN: usize = 16;
const CHECKSUM_TAG: &[u8] = b"coalition/wallet/v1/checksum";
/// No wallet is anywhere near this; anything bigger is not one.
const MAX_FILE_LEN: u64 = 64 * 1024;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfCost {
    /// What new wallets use: 64 MiB, 3 passes, 1 lane (RFC 9106's second recommended option, with
    /// one lane because this build computes lanes one after another). About a quarter of a second.
    pub const DEFAULT: KdfCost = KdfCost {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// Largest values accepted from a file, so a crafted wallet cannot make us allocate or loop
    /// without bound.
    const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    const MAX_ITERATIONS: u32 = 100;
    const MAX_PARALLELISM: u32 = 16;

    fn check(&self) -> Result<(), String> {
        let min_memory = self.parallelism.saturating_mul(8);
        if !(1..=Self::MAX_PARALLELISM).contains(&self.parallelism) {
            return Err(format!(
                "kdf parallelism {} is outside 1..={}",
                self.parallelism,
                Self::MAX_PARALLELISM
            ));
        }
        if !(1..=Self::MAX_ITERATIONS).contains(&self.iterations) {
            return Err(format!(
                "kdf iterations {} is outside 1..={}",
                self.iterations,
                Self::MAX_ITERATIONS
            ));
        }
        if !(min_memory..=Self::MAX_MEMORY_KIB).contains(&self.memory_kib) {
            return Err(format!(
                "kdf memory {} KiB is outside {min_memory}..={}",
                self.memory_kib,
                Self::MAX_MEMORY_KIB
            ));
        }
        Ok(())
    }
}

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
        /// What is wrong.
        reason: String,
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

/// What went wrong, before the file name is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    Corrupt(String),
    Unsupported(u64),
    WrongPassphrase,
}

impl Problem {
    fn at(self, path: &Path) -> WalletError {
        let path = path.to_path_buf();
        match self {
            Problem::Corrupt(reason) => WalletError::Corrupt { path, reason },
            Problem::Unsupported(found) => WalletError::UnsupportedVersion { path, found },
            Problem::WrongPassphrase => WalletError::WrongPassphrase { path },
        }
    }
}

/// The file's JSON form.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletFile {
    format: String,
    version: u32,
    member: String,
    kdf: KdfSection,
    cipher: String,
    salt: String,
    nonce: String,
    ciphertext: String,
    checksum: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfSection {
    algorithm: String,
    version: u32,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

/// A wallet as read from a file: checked for shape and checksum, not yet decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    member: MemberId,
    cost: KdfCost,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl Sealed {
    /// Encrypts `key`'s secret under `passphrase` with fresh randomness.
    fn seal(key: &Keypair, passphrase: &[u8], cost: KdfCost) -> Result<Sealed, String> {
        cost.check()?;
        let mut salt = [0u8; SALT_LEN];
        let mut nonce = [0u8; NONCE_LEN];
        let mut rng = rand::rngs::OsRng;
        rng.try_fill_bytes(&mut salt)
            .map_err(|e| format!("no randomness for the salt: {e}"))?;
        rng.try_fill_bytes(&mut nonce)
            .map_err(|e| format!("no randomness for the nonce: {e}"))?;
        let member = MemberId(key.public());
        let aad = header(&member, &cost, &salt);
        let wrap_key = derive_key(passphrase, &salt, &cost)?;
        let cipher = XChaCha20Poly1305::new_from_slice(&wrap_key[..]).map_err(|e| e.to_string())?;
        let secret = Zeroizing::new(key.secret_bytes());
        let ciphertext = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &secret[..],
                    aad: &aad,
                },
            )
            .map_err(|e| format!("encryption failed: {e}"))?;
        Ok(Sealed {
            member,
            cost,
            salt,
            nonce,
            ciphertext,
        })
    }

    /// Decrypts the secret and checks it is the member's.
    fn open(&self, passphrase: &[u8]) -> Result<Keypair, Problem> {
        let aad = header(&self.member, &self.cost, &self.salt);
        let wrap_key = derive_key(passphrase, &self.salt, &self.cost).map_err(Problem::Corrupt)?;
        let cipher = XChaCha20Poly1305::new_from_slice(&wrap_key[..])
            .map_err(|e| Problem::Corrupt(e.to_string()))?;
        let plain = cipher
            .decrypt(
                &XNonce::from(self.nonce),
                Payload {
                    msg: &self.ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| Problem::WrongPassphrase)?;
        let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
        if plain.len() != SECRET_LEN {
            return Err(Problem::Corrupt(format!(
                "secret is {} bytes, expected {SECRET_LEN}",
                plain.len()
            )));
        }
        secret.copy_from_slice(&plain);
        let key = Keypair::from_secret_bytes(&secret);
        if MemberId(key.public()) != self.member {
            return Err(Problem::Corrupt(
                "the secret key does not match the member id".into(),
            ));
        }
        Ok(key)
    }

    /// The member id (stored in clear).
    pub fn member(&self) -> MemberId {
        self.member
    }

    fn checksum(&self) -> Hash {
        let mut bytes = header(&self.member, &self.cost, &self.salt);
        bytes.extend_from_slice(&self.nonce);
        bytes.extend_from_slice(&self.ciphertext);
        Hash::tagged(CHECKSUM_TAG, &bytes)
    }

    fn to_file(&self) -> WalletFile {
        WalletFile {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            member: self.member.to_hex(),
            kdf: KdfSection {
                algorithm: KDF_ALGORITHM.into(),
                version: ARGON2_VERSION,
                memory_kib: self.cost.memory_kib,
                iterations: self.cost.iterations,
                parallelism: self.cost.parallelism,
            },
            cipher: CIPHER.into(),
            salt: hex::encode(self.salt),
            nonce: hex::encode(self.nonce),
            ciphertext: hex::encode(&self.ciphertext),
            checksum: self.checksum().to_hex(),
        }
    }

    /// The file's bytes.
    fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let mut bytes = serde_json::to_vec_pretty(&self.to_file()).map_err(|e| e.to_string())?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Parses and checks a file's bytes (everything but the passphrase).
    fn parse(bytes: &[u8]) -> Result<Sealed, Problem> {
        let corrupt = |s: String| Problem::Corrupt(s);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(corrupt("the file is empty".into()));
        }
        // Look at the format and version first, so a newer wallet is reported as such rather than as
        // damaged because its fields differ.
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not valid JSON ({e})")))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(corrupt(format!("no \"format\": \"{FORMAT}\" field")));
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(v) => return Err(Problem::Unsupported(v)),
            None => return Err(corrupt("no format version".into())),
        }
        let file: WalletFile = serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
        if file.kdf.algorithm != KDF_ALGORITHM || file.kdf.version != ARGON2_VERSION {
            return Err(corrupt(format!(
                "unknown key derivation {} version {}",
                file.kdf.algorithm, file.kdf.version
            )));
        }
        if file.cipher != CIPHER {
            return Err(corrupt(format!("unknown cipher {:?}", file.cipher)));
        }
        let cost = KdfCost {
            memory_kib: file.kdf.memory_kib,
            iterations: file.kdf.iterations,
            parallelism: file.kdf.parallelism,
        };
        cost.check().map_err(corrupt)?;
        let member =
            MemberId::from_hex(&file.member).map_err(|e| corrupt(format!("member: {e}")))?;
        if !member.0.is_valid() {
            return Err(corrupt("member is not a valid ed25519 key".into()));
        }
        let salt = fixed_hex::<SALT_LEN>("salt", &file.salt).map_err(corrupt)?;
        let nonce = fixed_hex::<NONCE_LEN>("nonce", &file.nonce).map_err(corrupt)?;
        let ciphertext: [u8; SECRET_LEN + TAG_LEN] =
            fixed_hex("ciphertext", &file.ciphertext).map_err(corrupt)?;
        let sealed = Sealed {
            member,
            cost,
            salt,
            nonce,
            ciphertext: ciphertext.to_vec(),
        };
        let checksum =
            Hash::from_hex(&file.checksum).map_err(|e| corrupt(format!("checksum: {e}")))?;
        if sealed.checksum() != checksum {
            return Err(corrupt(
                "checksum mismatch (the file was truncated or edited)".into(),
            ));
        }
        Ok(sealed)
    }
}

/// The associated data: everything in the header that must not be changed without the passphrase.
fn header(member: &MemberId, cost: &KdfCost, salt: &[u8; SALT_LEN]) -> Vec<u8> {
    let mut h = Vec::with_capacity(128);
    h.extend_from_slice(FORMAT.as_bytes());
    h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    h.extend_from_slice(&member.0 .0);
    h.extend_from_slice(KDF_ALGORITHM.as_bytes());
    h.extend_from_slice(&ARGON2_VERSION.to_le_bytes());
    h.extend_from_slice(&cost.memory_kib.to_le_bytes());
    h.extend_from_slice(&cost.iterations.to_le_bytes());
    h.extend_from_slice(&cost.parallelism.to_le_bytes());
    h.extend_from_slice(salt);
    h.extend_from_slice(CIPHER.as_bytes());
    h
}

fn derive_key(
    passphrase: &[u8],
    salt: &[u8],
    cost: &KdfCost,
) -> Result<Zeroizing<[u8; 32]>, String> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, Some(32))
        .map_err(|e| format!("kdf parameters: {e}"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, &mut key[..])
        .map_err(|e| format!("key derivation failed: {e}"))?;
    Ok(key)
}

fn fixed_hex<const N: usize>(field: &str, s: &str) -> Result<[u8; N], String> {
    let bytes = hex::decode(s).map_err(|e| format!("{field} is not hex ({e})"))?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| format!("{field} is {len} bytes, expected {N}"))
}

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
    let sealed =
        Sealed::seal(&key, passphrase.as_bytes(), cost).map_err(|reason| WalletError::Write {
            path: path.to_path_buf(),
            source: io::Error::other(reason),
        })?;
    let bytes = sealed.to_bytes().map_err(|reason| WalletError::Write {
        path: path.to_path_buf(),
        source: io::Error::other(reason),
    })?;
    files::create_new(path, &bytes, Mode::Private).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            WalletError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            WalletError::Write {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    Ok(sealed.member())
}

/// Reads and checks a wallet file without decrypting it.
pub fn read(path: &Path) -> Result<Sealed, WalletError> {
    let read_err = |source| WalletError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > MAX_FILE_LEN {
        return Err(
            Problem::Corrupt(format!("{len} bytes is far larger than any wallet")).at(path),
        );
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
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

/// The passphrase for an existing wallet: from [`PASSPHRASE_ENV`], else asked on the terminal.
pub fn passphrase_for(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    if let Some(p) = passphrase_from_env()? {
        return Ok(p);
    }
    prompt(path, &format!("Passphrase for wallet {}: ", path.display()))
}

/// The passphrase for a new wallet: from [`PASSPHRASE_ENV`], else asked twice on the terminal. Never
/// empty.
pub fn new_passphrase_for(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let pass = match passphrase_from_env()? {
        Some(p) => p,
        None => {
            let first = prompt(
                path,
                &format!("New passphrase for wallet {}: ", path.display()),
            )?;
            let second = prompt(path, "Repeat the passphrase: ")?;
            if *first != *second {
                anyhow::bail!(
                    "the two passphrases differ; wallet {} not created",
                    path.display()
                );
            }
            first
        }
    };
    if pass.is_empty() {
        anyhow::bail!(
            "the passphrase is empty; wallet {} not created",
            path.display()
        );
    }
    Ok(pass)
}

fn passphrase_from_env() -> anyhow::Result<Option<Zeroizing<String>>> {
    match std::env::var(PASSPHRASE_ENV) {
        Ok(p) => Ok(Some(Zeroizing::new(p))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("{PASSPHRASE_ENV} is not valid UTF-8")
        }
    }
}

fn prompt(path: &Path, text: &str) -> anyhow::Result<Zeroizing<String>> {
    use std::io::IsTerminal;
    // Only prompt when a person is at the keyboard: without a terminal on stdin (a script, CI) the
    // prompt would hang or read garbage.
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "no passphrase for wallet {}: set {PASSPHRASE_ENV} or run in a terminal to be asked",
            path.display()
        );
    }
    rpassword::prompt_password(text)
        .map(Zeroizing::new)
        .map_err(|e| {
            anyhow::Error::new(e).context(format!(
                "cannot read the passphrase for wallet {}",
                path.display()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters so the tests that derive many keys stay fast; the format is the same.
    const CHEAP: KdfCost = KdfCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    fn sealed(pass: &str) -> (Keypair, Sealed) {
        let key = Keypair::generate();
        let s = Sealed::seal(&key, pass.as_bytes(), CHEAP).expect("sealing with valid parameters");
        (key, s)
    }

    #[test]
    fn round_trip_through_bytes() {
        let (key, s) = sealed("correct horse");
        let bytes = s.to_bytes().expect("serialize");
        let back = Sealed::parse(&bytes).expect("parse what we wrote");
        assert_eq!(back, s);
        assert_eq!(back.member(), MemberId(key.public()));
        let opened = back
            .open(b"correct horse")
            .expect("open with the right passphrase");
        assert_eq!(opened.secret_bytes(), key.secret_bytes());
    }

    #[test]
    fn wrong_passphrase_is_reported_as_such() {
        let (_, s) = sealed("correct horse");
        assert_eq!(
            s.open(b"correct horsf").err(),
            Some(Problem::WrongPassphrase)
        );
        assert_eq!(s.open(b"").err(), Some(Problem::WrongPassphrase));
    }

    #[test]
    fn every_single_byte_corruption_of_the_ciphertext_fails() {
        let (_, s) = sealed("pw");
        let bytes = s.to_bytes().expect("serialize");
        for i in 0..s.ciphertext.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = s.clone();
                bad.ciphertext[i] ^= mask;
                // As written in a file: the checksum catches it.
                let mut file = s.to_file();
                file.ciphertext = hex::encode(&bad.ciphertext);
                let text = serde_json::to_vec(&file).expect("serialize");
                assert!(
                    matches!(Sealed::parse(&text), Err(Problem::Corrupt(_))),
                    "byte {i} mask {mask:#x} not caught by the checksum"
                );
                // With the checksum recomputed (a deliberate edit): the AEAD tag catches it.
                assert!(
                    bad.open(b"pw").is_err(),
                    "byte {i} mask {mask:#x} decrypted"
                );
            }
        }
        assert!(Sealed::parse(&bytes).is_ok());
    }

    #[test]
    fn header_edits_fail_even_with_a_fixed_checksum() {
        let (_, s) = sealed("pw");
        let mut other = s.clone();
        other.member = MemberId(Keypair::generate().public());
        assert!(other.open(b"pw").is_err());
        let mut weaker = s.clone();
        weaker.cost.memory_kib = 32;
        assert!(weaker.open(b"pw").is_err());
        let mut salted = s.clone();
        salted.salt[0] ^= 1;
        assert!(salted.open(b"pw").is_err());
        let mut nonce = s;
        nonce.nonce[5] ^= 1;
        assert!(nonce.open(b"pw").is_err());
    }

    #[test]
    fn truncated_or_garbage_files_are_corrupt() {
        let (_, s) = sealed("pw");
        let bytes = s.to_bytes().expect("serialize");
        // Every strict prefix, short of the final newline, is invalid.
        for cut in 0..bytes.len() - 1 {
            assert!(
                matches!(Sealed::parse(&bytes[..cut]), Err(Problem::Corrupt(_))),
                "prefix of {cut} bytes accepted"
            );
        }
        for junk in [
            &b""[..],
            b"   ",
            b"{}",
            b"null",
            b"\xff\xfe",
            b"{\"format\":\"coalition-wallet\"}",
        ] {
            assert!(matches!(Sealed::parse(junk), Err(Problem::Corrupt(_))));
        }
    }

    #[test]
    fn every_single_byte_change_of_the_file_is_caught_before_decryption() {
        let (_, s) = sealed("pw");
        let bytes = s.to_bytes().expect("serialize");
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            // Flipping the low bit never changes only the case of a hex digit, and turns JSON
            // whitespace and punctuation into invalid characters: each such edit changes meaning.
            assert!(
                Sealed::parse(&bad).is_err(),
                "byte {i} ({:?}) change accepted",
                bytes[i] as char
            );
        }
    }

    #[test]
    fn newer_versions_are_named() {
        let (_, s) = sealed("pw");
        let mut v: serde_json::Value = serde_json::to_value(s.to_file()).expect("to value");
        v["version"] = serde_json::json!(2);
        v["new_field"] = serde_json::json!(true);
        let text = serde_json::to_vec(&v).expect("serialize");
        assert_eq!(Sealed::parse(&text).err(), Some(Problem::Unsupported(2)));
    }

    #[test]
    fn absurd_kdf_parameters_are_refused() {
        for (m, t, p) in [
            (0u32, 1u32, 1u32),
            (64, 0, 1),
            (64, 1, 0),
            (u32::MAX, 1, 1),
            (64, 1_000_000, 1),
        ] {
            let cost = KdfCost {
                memory_kib: m,
                iterations: t,
                parallelism: p,
            };
            assert!(cost.check().is_err(), "{cost:?} accepted");
        }
        assert!(KdfCost::DEFAULT.check().is_ok());
    }

    #[test]
    fn files_are_private_and_never_overwritten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("w.wallet");
        let id = create_with(&path, "pw", CHEAP).expect("create");
        assert_eq!(member_id(&path).expect("read id"), id);
        assert_eq!(MemberId(unlock(&path, "pw").expect("unlock").public()), id);
        assert!(matches!(
            unlock(&path, "nope"),
            Err(WalletError::WrongPassphrase { .. })
        ));
        assert!(matches!(
            create_with(&path, "pw", CHEAP),
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
}
