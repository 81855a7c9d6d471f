//! Keys and signatures: ed25519 with `verify_strict`, and a batch path for many signatures at once.
//!
//! Every signature in the protocol is over a 32-byte [`Hash`] that already carries its domain tag, so
//! the signing functions here take a `Hash`, never raw bytes.

use crate::hash::{serde_bytes_fixed, Hash};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

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
pub fn verify(
    key: &PublicKey,
    message: &Hash,
    signature: &Signature,
) -> Result<(), SignatureError> {
    let vk = KEYS.with(|cache| cache.borrow_mut().get(key))?;
    let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
    vk.verify_strict(&message.0, &sig)
        .map_err(|_| SignatureError::Invalid { key: key.to_hex() })
}

/// Keys remembered per thread by [`verify`].
const KEY_CACHE_SIZE: usize = 32;

thread_local! {
    static KEYS: RefCell<KeyCache> = const { RefCell::new(KeyCache { keys: Vec::new() }) };
}

/// Decompressed keys, so that verifying a partner's signatures does not turn the same 32 bytes
/// into a curve point each time (about a tenth of a verification). A new key takes the place of
/// the one used least, so the few partner keys stay while members' keys come and go.
struct KeyCache {
    keys: Vec<([u8; 32], VerifyingKey, u32)>,
}

impl KeyCache {
    fn get(&mut self, key: &PublicKey) -> Result<VerifyingKey, SignatureError> {
        if let Some((_, vk, uses)) = self.keys.iter_mut().find(|(k, _, _)| *k == key.0) {
            *uses = uses.saturating_add(1);
            return Ok(*vk);
        }
        let vk = key.verifying_key()?;
        if self.keys.len() < KEY_CACHE_SIZE {
            self.keys.push((key.0, vk, 0));
        } else if let Some(slot) = self.keys.iter_mut().min_by_key(|(_, _, uses)| *uses) {
            *slot = (key.0, vk, 0);
        }
        Ok(vk)
    }
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

/// Verifies many signatures at once, returning the index and reason of the first bad one.
///
/// Keys must pass the same checks as in [`verify`] and no `R` may be of small order, as
/// `verify_strict` demands. When the batch equation fails, every signature is checked alone with
/// [`verify`], so a bad signature is always named. One known gap remains (docs/protocol.md,
/// "Signatures"): a signer can craft a signature whose `R` carries a torsion component; it fails
/// `verify_strict` but passes the random-linear-combination batch with probability at most 1/8. Only
/// the key holder can make one, so the harm is limited to what that key signs; the node therefore
/// uses this path only for log entries during catch-up, and [`verify`] everywhere else.
pub fn verify_batch(items: &[SignedMessage]) -> Result<(), (usize, SignatureError)> {
    if items.is_empty() {
        return Ok(());
    }
    let mut keys = Vec::with_capacity(items.len());
    let mut sigs = Vec::with_capacity(items.len());
    let mut msgs: Vec<&[u8]> = Vec::with_capacity(items.len());
    // A batch is signed mostly by few distinct keys (a log's author, the voting partners);
    // decompressing each once rather than per signature was a third of the batch's cost.
    let mut decompressed: HashMap<[u8; 32], VerifyingKey> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let key = match decompressed.get(&item.key.0) {
            Some(vk) => *vk,
            None => {
                let vk = item.key.verifying_key().map_err(|e| (i, e))?;
                decompressed.insert(item.key.0, vk);
                vk
            }
        };
        keys.push(key);
        let sig = ed25519_dalek::Signature::from_bytes(&item.signature.0);
        if !r_is_strict(sig.r_bytes()) {
            return Err((
                i,
                SignatureError::Invalid {
                    key: item.key.to_hex(),
                },
            ));
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
    Err((
        0,
        SignatureError::Invalid {
            key: items.first().map(|i| i.key.to_hex()).unwrap_or_default(),
        },
    ))
}

/// `verify_strict` rejects signatures whose `R` is of small order; so must the batch path, or a
/// crafted signature could be accepted by a batching node and refused by another.
///
/// Decompressing `R` to ask (what `verify_strict` does) cost a quarter of a batch verification, so
/// the encoding is compared with every encoding of a small-order point instead, as libsodium does:
/// the `y` coordinates of the eight small-order points, plus the non-canonical `y + p` of `y = 0` and
/// `y = 1`, whatever the sign bit. The test `small_order_r_matches_decompression` checks that this
/// refuses exactly the encodings that decompress to a small-order point.
fn r_is_strict(r: &[u8; 32]) -> bool {
    let mut y = *r;
    y[31] &= 0x7f;
    !small_order_ys().contains(&y)
}

/// The encodings (sign bit cleared) of the `y` coordinates of the points of small order.
fn small_order_ys() -> &'static [[u8; 32]] {
    static YS: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    YS.get_or_init(|| {
        let mut ys: Vec<[u8; 32]> = Vec::new();
        for point in curve25519_dalek::constants::EIGHT_TORSION.iter() {
            let mut y = point.compress().to_bytes();
            y[31] &= 0x7f;
            if !ys.contains(&y) {
                ys.push(y);
            }
        }
        // p = 2^255 - 19 and p + 1: the only non-canonical encodings (y + p < 2^255 means y < 19)
        // of a small-order point's y (0 and 1).
        for low in [0xed_u8, 0xee] {
            let mut y = [0xff_u8; 32];
            y[0] = low;
            y[31] = 0x7f;
            ys.push(y);
        }
        ys
    })
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

    /// The blocklist in [`r_is_strict`] refuses every encoding that decompresses to a small-order
    /// point (what `verify_strict` refuses), and nothing that decompresses to any other point.
    #[test]
    fn small_order_r_matches_decompression() {
        let slow_refuses = |b: &[u8; 32]| VerifyingKey::from_bytes(b).is_ok_and(|k| k.is_weak());
        let decompresses = |b: &[u8; 32]| VerifyingKey::from_bytes(b).is_ok();
        let mut candidates: Vec<[u8; 32]> = Vec::new();
        for y in small_order_ys() {
            for sign in [0u8, 0x80] {
                let mut b = *y;
                b[31] |= sign;
                candidates.push(b);
            }
        }
        // Every small y value and its y + p, both signs, and keys and R values of real signatures.
        for v in 0u8..=40 {
            for sign in [0u8, 0x80] {
                let mut b = [0u8; 32];
                b[0] = v;
                b[31] = sign;
                candidates.push(b);
                let mut nc = [0xff_u8; 32];
                nc[0] = 0xed_u8.wrapping_add(v);
                nc[31] = 0x7f | sign;
                if v < 19 {
                    candidates.push(nc);
                }
            }
        }
        for i in 0..200u8 {
            let k = Keypair::generate();
            candidates.push(k.public().0);
            let s = k.sign(&Hash::tagged(b"t", &[i]));
            let mut r = [0u8; 32];
            r.copy_from_slice(&s.0[..32]);
            candidates.push(r);
        }
        let mut refused = 0;
        for b in &candidates {
            if slow_refuses(b) {
                assert!(
                    !r_is_strict(b),
                    "small-order encoding {} passed",
                    hex::encode(b)
                );
                refused += 1;
            }
            if !r_is_strict(b) {
                assert!(
                    !decompresses(b) || slow_refuses(b),
                    "{} refused but not small order",
                    hex::encode(b)
                );
            }
        }
        // 8 points; y = 0 and y = 1 also as y + p; sign variants where they decompress.
        assert!(
            refused >= 10,
            "only {refused} small-order encodings among the candidates"
        );
    }

    #[test]
    fn batch_agrees_with_single() {
        let items: Vec<SignedMessage> = (0..20u8)
            .map(|i| {
                let k = Keypair::generate();
                let m = Hash::tagged(b"t", &[i]);
                SignedMessage {
                    key: k.public(),
                    message: m,
                    signature: k.sign(&m),
                }
            })
            .collect();
        assert!(verify_batch(&items).is_ok());
        let mut bad = items;
        bad[13].signature.0[10] ^= 4;
        assert_eq!(verify_batch(&bad).map_err(|(i, _)| i), Err(13));
    }
}
