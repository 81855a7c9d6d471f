//! Sealing the secret: XChaCha20-Poly1305 under the key [`kdf`](super::kdf) derives, with the header
//! as associated data, so the secret opens only with the passphrase and an unchanged header.

use super::error::{CorruptReason, Problem};
use super::kdf::{self, derive_key, KdfCost, KdfCostError, KdfError, SALT_LEN};
use super::{FORMAT, FORMAT_VERSION, SECRET_LEN};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use coalition_core::crypto::Keypair;
use coalition_core::record::MemberId;
use rand::RngCore;
use zeroize::Zeroizing;

/// The `cipher` field.
pub(super) const CIPHER: &str = "xchacha20poly1305";
/// Bytes of nonce.
pub(super) const NONCE_LEN: usize = 24;
/// Bytes of the AEAD tag after the sealed seed.
pub(super) const TAG_LEN: usize = 16;

/// A wallet as read from a file: checked for shape and checksum, not yet decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub(super) member: MemberId,
    pub(super) cost: KdfCost,
    pub(super) salt: [u8; SALT_LEN],
    pub(super) nonce: [u8; NONCE_LEN],
    pub(super) ciphertext: Vec<u8>,
}

/// Why a new wallet's secret could not be sealed. A wallet that cannot be sealed is not written:
/// [`create_with`](super::create_with) reports this as the cause of
/// [`WalletError::Write`](super::WalletError::Write).
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The cost asked for is out of bounds.
    #[error(transparent)]
    Cost(KdfCostError),
    /// The operating system gave no random bytes.
    #[error("no randomness for the {what}: {cause}")]
    Randomness {
        /// What they were for (`salt`, `nonce`).
        what: &'static str,
        /// Why.
        cause: rand::Error,
    },
    /// Argon2 refused to derive the key.
    #[error(transparent)]
    Kdf(KdfError),
    /// The cipher refused to encrypt.
    #[error("encryption failed: {0}")]
    Encrypt(chacha20poly1305::Error),
}

impl Sealed {
    /// Encrypts `key`'s secret under `passphrase` with fresh randomness.
    pub(super) fn seal(
        key: &Keypair,
        passphrase: &[u8],
        cost: KdfCost,
    ) -> Result<Sealed, SealError> {
        cost.check().map_err(SealError::Cost)?;
        let salt = random::<SALT_LEN>("salt")?;
        let nonce = random::<NONCE_LEN>("nonce")?;
        let member = MemberId(key.public());
        let aad = header(&member, &cost, &salt);
        let wrap_key = derive_key(passphrase, &salt, &cost).map_err(SealError::Kdf)?;
        let cipher = XChaCha20Poly1305::new((&*wrap_key).into());
        let secret = Zeroizing::new(key.secret_bytes());
        let ciphertext = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &secret[..],
                    aad: &aad,
                },
            )
            .map_err(SealError::Encrypt)?;
        Ok(Sealed {
            member,
            cost,
            salt,
            nonce,
            ciphertext,
        })
    }

    /// Decrypts the secret and checks it is the member's.
    pub(super) fn open(&self, passphrase: &[u8]) -> Result<Keypair, Problem> {
        let aad = header(&self.member, &self.cost, &self.salt);
        let wrap_key =
            derive_key(passphrase, &self.salt, &self.cost).map_err(CorruptReason::Kdf)?;
        let cipher = XChaCha20Poly1305::new((&*wrap_key).into());
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
            return Err(CorruptReason::SecretLength { len: plain.len() }.into());
        }
        secret.copy_from_slice(&plain);
        let key = Keypair::from_secret_bytes(&secret);
        if MemberId(key.public()) != self.member {
            return Err(CorruptReason::KeyMismatch.into());
        }
        Ok(key)
    }

    /// The member id (stored in clear).
    pub fn member(&self) -> MemberId {
        self.member
    }

    /// The associated data of this wallet's secret (see [`header`]).
    pub(super) fn header(&self) -> Vec<u8> {
        header(&self.member, &self.cost, &self.salt)
    }
}

/// `N` bytes from the operating system's generator; `what` names them in the error.
fn random<const N: usize>(what: &'static str) -> Result<[u8; N], SealError> {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|cause| SealError::Randomness { what, cause })?;
    Ok(bytes)
}

/// The associated data: everything in the header that must not be changed without the passphrase.
fn header(member: &MemberId, cost: &KdfCost, salt: &[u8; SALT_LEN]) -> Vec<u8> {
    let mut h = Vec::with_capacity(128);
    h.extend_from_slice(FORMAT.as_bytes());
    h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    h.extend_from_slice(&member.0 .0);
    h.extend_from_slice(kdf::ALGORITHM.as_bytes());
    h.extend_from_slice(&kdf::VERSION.to_le_bytes());
    h.extend_from_slice(&cost.memory_kib.to_le_bytes());
    h.extend_from_slice(&cost.iterations.to_le_bytes());
    h.extend_from_slice(&cost.parallelism.to_le_bytes());
    h.extend_from_slice(salt);
    h.extend_from_slice(CIPHER.as_bytes());
    h
}

/// A wallet of a new key sealed under `pass` at [`KdfCost::CHEAP`], for tests.
#[cfg(test)]
pub(super) fn sealed_for_test(pass: &str) -> (Keypair, Sealed) {
    let key = Keypair::generate();
    let s =
        Sealed::seal(&key, pass.as_bytes(), KdfCost::CHEAP).expect("sealing with valid parameters");
    (key, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_with_the_right_passphrase() {
        let (key, s) = sealed_for_test("correct horse");
        assert_eq!(s.member(), MemberId(key.public()));
        assert_eq!(s.ciphertext.len(), SECRET_LEN + TAG_LEN);
        let opened = s
            .open(b"correct horse")
            .expect("open with the right passphrase");
        assert_eq!(opened.secret_bytes(), key.secret_bytes());
    }

    #[test]
    fn wrong_passphrase_is_reported_as_such() {
        let (_, s) = sealed_for_test("correct horse");
        assert!(matches!(
            s.open(b"correct horsf"),
            Err(Problem::WrongPassphrase)
        ));
        assert!(matches!(s.open(b""), Err(Problem::WrongPassphrase)));
    }

    #[test]
    fn every_single_byte_corruption_of_the_ciphertext_fails_to_open() {
        // As if the checksum had been recomputed (a deliberate edit): the AEAD tag catches it.
        let (_, s) = sealed_for_test("pw");
        for i in 0..s.ciphertext.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = s.clone();
                bad.ciphertext[i] ^= mask;
                assert!(
                    bad.open(b"pw").is_err(),
                    "byte {i} mask {mask:#x} decrypted"
                );
            }
        }
    }

    #[test]
    fn header_edits_fail_even_with_a_fixed_checksum() {
        let (_, s) = sealed_for_test("pw");
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
    fn refused_costs_are_not_sealed() {
        let cost = KdfCost {
            parallelism: 0,
            ..KdfCost::CHEAP
        };
        let err = Sealed::seal(&Keypair::generate(), b"pw", cost).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("kdf parallelism 0 is outside 1..=16")
        );
    }
}
