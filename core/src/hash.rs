//! 32-byte digests and the domain tags that keep one kind of signed object from ever being mistaken
//! for another.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A 32-byte digest (blake3 in the protocol). Shown and parsed as lowercase hex; encoded canonically as
/// 32 raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; 32]);

/// Domain tags, one per kind of hashed object. A signature is always over `blake3(tag ‖ bytes)`, so a
/// vote can never be replayed as an entry signature or a checkpoint signature, and so on.
pub mod tag {
    /// A log entry (what a partner signs when it appends).
    pub const ENTRY: &[u8] = b"coalition/v1/entry";
    /// A record inside an entry: an issue's id is the id of its lot.
    pub const RECORD: &[u8] = b"coalition/v1/record";
    /// A member's redeem order (what the member signs).
    pub const ORDER: &[u8] = b"coalition/v1/order";
    /// A partner's vote for an order.
    pub const VOTE: &[u8] = b"coalition/v1/vote";
    /// A checkpoint (what partners sign to seal an epoch).
    pub const CHECKPOINT: &[u8] = b"coalition/v1/checkpoint";
    /// A settlement statement.
    pub const STATEMENT: &[u8] = b"coalition/v1/statement";
    /// The genesis document.
    pub const GENESIS: &[u8] = b"coalition/v1/genesis";
    /// The ledger state root.
    pub const STATE: &[u8] = b"coalition/v1/state";
    /// The external reference of an issue (a receipt number is hashed, never stored).
    pub const REFERENCE: &[u8] = b"coalition/v1/reference";
    /// A member's request to read its own data ([`crate::read_auth`]).
    pub const MEMBER_READ: &[u8] = b"coalition/v1/member-read";
}

impl Hash {
    /// The all-zero digest, used as `prev` of the first entry of a log.
    pub const ZERO: Hash = Hash([0u8; 32]);

    /// `blake3(tag ‖ bytes)`.
    pub fn tagged(tag: &[u8], bytes: &[u8]) -> Hash {
        let mut h = blake3::Hasher::new();
        // The tag length goes first so that no (tag, bytes) pair can collide with another split.
        h.update(&(tag.len() as u64).to_le_bytes());
        h.update(tag);
        h.update(bytes);
        Hash(*h.finalize().as_bytes())
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Hash, HexError> {
        parse_hex32(s).map(Hash)
    }

    /// The first bytes in hex, for logs and tables.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

/// A hex string that is not 32 bytes of hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 hex digits, got {found:?}")]
pub struct HexError {
    /// What was given (cut to 80 characters).
    pub found: String,
}

pub(crate) fn parse_hex32(s: &str) -> Result<[u8; 32], HexError> {
    let err = || HexError {
        found: s.chars().take(80).collect(),
    };
    let bytes = hex::decode(s.trim()).map_err(|_| err())?;
    bytes.try_into().map_err(|_| err())
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.short())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::str::FromStr for Hash {
    type Err = HexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hash::from_hex(s)
    }
}

/// Serde for fixed-size byte arrays: hex in human-readable formats (JSON), raw bytes with no length
/// prefix in the canonical binary form.
pub(crate) mod serde_bytes_fixed {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::ser::SerializeTuple;
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub(crate) fn serialize<S: Serializer, const N: usize>(
        v: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(v))
        } else {
            let mut t = s.serialize_tuple(N)?;
            for b in v {
                t.serialize_element(b)?;
            }
            t.end()
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        if d.is_human_readable() {
            let s: String = serde::Deserialize::deserialize(d)?;
            let bytes = hex::decode(s.trim()).map_err(D::Error::custom)?;
            bytes.try_into().map_err(|_| {
                D::Error::custom(format!("expected {} hex digits", N.saturating_mul(2)))
            })
        } else {
            struct V<const N: usize>;
            impl<'de, const N: usize> Visitor<'de> for V<N> {
                type Value = [u8; N];
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    write!(f, "{N} bytes")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
                    let mut out = [0u8; N];
                    for (i, slot) in out.iter_mut().enumerate() {
                        *slot = seq
                            .next_element()?
                            .ok_or_else(|| A::Error::invalid_length(i, &self))?;
                    }
                    Ok(out)
                }
            }
            d.deserialize_tuple(N, V::<N>)
        }
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_bytes_fixed::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_bytes_fixed::deserialize(d).map(Hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_separate_domains() {
        assert_ne!(
            Hash::tagged(tag::VOTE, b"x"),
            Hash::tagged(tag::ENTRY, b"x")
        );
        // Moving a byte between tag and body changes the hash.
        assert_ne!(Hash::tagged(b"ab", b"c"), Hash::tagged(b"a", b"bc"));
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let h = Hash::tagged(tag::RECORD, b"r");
        assert_eq!(Hash::from_hex(&h.to_hex()), Ok(h));
        assert!(Hash::from_hex("abc").is_err());
        assert!(Hash::from_hex(&"zz".repeat(32)).is_err());
        assert!(Hash::from_hex(&"00".repeat(33)).is_err());
    }
}
