//! Keys and signatures: ed25519 with `verify_strict`, and a batch path for many signatures at once.
//!
//! Every signature in the protocol is over a 32-byte [`Hash`] that already carries its domain tag, so
//! the signing functions here take a `Hash`, never raw bytes.

use crate::hash::{serde_bytes_fixed, Hash};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The 32 bytes are not a valid ed25519 point, or are a weak (small-order) key.
    #[error("public key {key} is not a valid ed25519 key")]
    BadKey {
        /// The key, hex.
        key: String,
    },
    /// The signature does not verify under `verify_strict`.
    #[error("signature by {key} does not verify")]
    Invalid {
        /// The claimed signer, hex.
        key: String,
    },
}

/// An ed25519 public key: a partner's or a member's identity.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl PublicKey {
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// Parses 64 hex digits (the key is checked when it is used, by [`verify`]).
    pub fn from_hex(s: &str) -> Result<PublicKey, crate::hash::HexError> {
        crate::hash::parse_hex32(s).map(PublicKey)
    }
    /// The first bytes in hex, for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
    /// Whether this is a usable key: a valid point of large order.
    pub fn is_valid(&self) -> bool {
        VerifyingKey::from_bytes(&self.0).is_ok_and(|k| !k.is_weak())
    }
    fn verifying_key(&self) -> Result<VerifyingKey, SignatureError> {
        match VerifyingKey::from_bytes(&self.0) {
            Ok(k) if !k.is_weak() => Ok(k),
            _ => Err(SignatureError::BadKey { key: self.to_hex() }),
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.short())
    }
}
impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sig({})", hex::encode(&self.0[..6]))
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_bytes_fixed::serialize(&self.0, s)
    }
}
impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_bytes_fixed::deserialize(d).map(PublicKey)
    }
}
impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_bytes_fixed::serialize(&self.0, s)
    }
}
impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_bytes_fixed::deserialize(d).map(Signature)
    }
}

/// A secret signing key. Not `Debug`, not `Serialize`: it leaves memory only through
/// [`Keypair::secret_bytes`], which key files and wallets use.
pub struct Keypair(SigningKey);

impl Keypair {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Keypair {
        Keypair(SigningKey::generate(&mut rand::rngs::OsRng))
    }
    /// The key with this 32-byte secret seed.
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Keypair {
        Keypair(SigningKey::from_bytes(secret))
    }
    /// The 32-byte secret seed. Handle with care.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }
    /// Signs a domain-tagged digest.
    pub fn sign(&self, message: &Hash) -> Signature {
        Signature(self.0.sign(&message.0).to_bytes())
    }
}

/// Verifies one signature with `verify_strict` (rejects weak keys and non-canonical signatures).
pub fn verify(key: &PublicKey, message: &Hash, signature: &Signature) -> Result<(), SignatureError> {
    let vk = key.verifying_key()?;
    let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
    vk.verify_strict(&message.0, &sig)
        .map_err(|_| SignatureError::Invalid { key: key.to_hex() })
}

/// One signature to check in a batch.
#[derive(Debug, Clone, Copy)]
pub struct SignedMessage {
    /// The claimed signer.
    pub key: PublicKey,
    /// The tagged digest that was signed.
    pub message: Hash,
    /// The signature.
    pub signature: Signature,
}

/// Distinct keys remembered per batch; past this (a batch of member keys, say) the rest are
/// decompressed each time, so the linear search stays cheap.
const MAX_CACHED_KEYS: usize = 64;

/// Verifies many signatures at once, returning the index and reason of the first bad one.
///
/// Keys must pass the same checks as in [`verify`] and no `R` may be of small order, as
/// `verify_strict` demands. When the batch equation fails, every signature is checked alone with
/// [`verify`], so a bad signature is always named. One known gap remains (docs/protocol.md,
/// "Signatures"): a signer can craft a signature whose `R` carries a torsion component; it fails
/// `verify_strict` but passes the random-linear-combination batch with probability at most 1/8. Only
/// the key holder can make one, so the harm is limited to its own records; the node therefore uses
/// this path only for partner-signed log entries during catch-up, and [`verify`] everywhere else.
pub fn verify_batch(items: &[SignedMessage]) -> Result<(), (usize, SignatureError)> {
    if items.is_empty() {
        return Ok(());
    }
    let mut keys = Vec::with_capacity(items.len());
    let mut sigs = Vec::with_capacity(items.len());
    let mut msgs: Vec<&[u8]> = Vec::with_capacity(items.len());
    // A batch is signed by few distinct keys (a log's author, a handful of partners); decompressing
    // each once rather than per signature was a third of the batch's cost.
    let mut decompressed: Vec<(PublicKey, VerifyingKey)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = match decompressed.iter().find(|(k, _)| *k == item.key) {
            Some((_, vk)) => *vk,
            None => {
                let vk = item.key.verifying_key().map_err(|e| (i, e))?;
                if decompressed.len() < MAX_CACHED_KEYS {
                    decompressed.push((item.key, vk));
                }
                vk
            }
        };
        keys.push(key);
        let sig = ed25519_dalek::Signature::from_bytes(&item.signature.0);
        if !r_is_strict(&sig) {
            return Err((i, SignatureError::Invalid { key: item.key.to_hex() }));
        }
        sigs.push(sig);
        msgs.push(&item.message.0);
    }
    if ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok() {
        return Ok(());
    }
    for (i, item) in items.iter().enumerate() {
        verify(&item.key, &item.message, &item.signature).map_err(|e| (i, e))?;
    }
    // The batch failed but every signature passed alone: the batch held a torsion-crafted signature
    // that strict verification happens to accept in isolation. Refuse rather than guess.
    Err((0, SignatureError::Invalid { key: items.first().map(|i| i.key.to_hex()).unwrap_or_default() }))
}

/// `verify_strict` rejects signatures whose `R` is of small order; so must the batch path, or a
/// crafted signature could be accepted by a batching node and refused by another.
fn r_is_strict(sig: &ed25519_dalek::Signature) -> bool {
    // R that is a weak point is exactly what VerifyingKey::is_weak detects for keys.
    match VerifyingKey::from_bytes(sig.r_bytes()) {
        Ok(r) => !r.is_weak(),
        // Not a point at all: the batch will fail and the strict path will name it.
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_forgery() {
        let k = Keypair::generate();
        let m = Hash::tagged(b"t", b"m");
        let s = k.sign(&m);
        assert!(verify(&k.public(), &m, &s).is_ok());
        let mut bad = s;
        bad.0[3] ^= 1;
        assert!(verify(&k.public(), &m, &bad).is_err());
        assert!(verify(&k.public(), &Hash::tagged(b"t", b"n"), &s).is_err());
        assert!(verify(&Keypair::generate().public(), &m, &s).is_err());
    }

    #[test]
    fn weak_key_rejected() {
        // The identity point, encoded: y = 1.
        let mut id = [0u8; 32];
        id[0] = 1;
        assert!(!PublicKey(id).is_valid());
        assert!(matches!(
            verify(&PublicKey(id), &Hash::ZERO, &Signature([0; 64])),
            Err(SignatureError::BadKey { .. })
        ));
    }

    #[test]
    fn batch_agrees_with_single() {
        let items: Vec<SignedMessage> = (0..20u8)
            .map(|i| {
                let k = Keypair::generate();
                let m = Hash::tagged(b"t", &[i]);
                SignedMessage { key: k.public(), message: m, signature: k.sign(&m) }
            })
            .collect();
        assert!(verify_batch(&items).is_ok());
        let mut bad = items;
        bad[13].signature.0[10] ^= 4;
        assert_eq!(verify_batch(&bad).map_err(|(i, _)| i), Err(13));
    }
}
