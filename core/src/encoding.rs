//! The one canonical byte form of every protocol object.
//!
//! `version byte ‖ bincode(value)` with a single fixed bincode configuration: little-endian,
//! fixed-width integers, a hard size limit. Decoding rejects an unknown version, anything over the
//! limit, and trailing bytes, so every object has exactly one accepted encoding and its id
//! (`blake3(tag ‖ bytes)`) is well defined.

use serde::{de::DeserializeOwned, Serialize};

/// The format version written as the first byte. Bump it only with a migration plan: ids change.
pub const ENCODING_VERSION: u8 = 1;

/// Largest canonical object accepted (a certificate with many lots and votes fits easily).
pub const MAX_ENCODED_LEN: usize = 1 << 20;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::Limit<MAX_ENCODED_LEN>,
>;

const CONFIG: Config = bincode::config::standard()
    .with_little_endian()
    .with_fixed_int_encoding()
    .with_limit::<MAX_ENCODED_LEN>();

/// Why bytes are not the canonical form of an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No bytes at all.
    #[error("empty input")]
    Empty,
    /// The first byte names a format this build does not know.
    #[error("unknown encoding version {found} (this build reads version {ENCODING_VERSION})")]
    UnknownVersion {
        /// The version byte found.
        found: u8,
    },
    /// More than [`MAX_ENCODED_LEN`] bytes.
    #[error("input of {len} bytes exceeds the limit of {MAX_ENCODED_LEN}")]
    TooLarge {
        /// Length of the input.
        len: usize,
    },
    /// The body does not decode as the expected type.
    #[error("malformed body: {reason}")]
    Malformed {
        /// What the decoder said.
        reason: String,
    },
    /// A valid object followed by more bytes.
    #[error("{extra} trailing bytes after the object")]
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
}

/// The canonical bytes of `value`.
///
/// Encoding our own in-memory types cannot fail except by exceeding the size limit, which callers
/// building objects from outside input must prevent (they bound lot and vote counts first); it is
/// reported as an empty vector's absence via [`try_encode`]. Most callers use this infallible form on
/// values they constructed.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    match try_encode(value) {
        Ok(bytes) => bytes,
        // Only reachable for objects above MAX_ENCODED_LEN, which no constructor in this crate makes.
        Err(e) => unreachable_encoding(e),
    }
}

#[cold]
fn unreachable_encoding(e: EncodeError) -> Vec<u8> {
    // Encoding failures are bugs in the caller, not outside input: fail loudly in tests, but never
    // produce a silently wrong id in release. An empty vector decodes as `Empty` and hashes apart from
    // any real object.
    debug_assert!(false, "canonical encoding failed: {e}");
    Vec::new()
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode: {reason}")]
pub struct EncodeError {
    /// What the encoder said (typically the size limit).
    pub reason: String,
}

/// The canonical bytes of `value`, or why it cannot be encoded (over the size limit).
pub fn try_encode<T: Serialize>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let mut out = vec![ENCODING_VERSION];
    let body = bincode::serde::encode_to_vec(value, CONFIG).map_err(|e| EncodeError {
        reason: e.to_string(),
    })?;
    let len = body.len().saturating_add(1);
    if len > MAX_ENCODED_LEN {
        return Err(EncodeError {
            reason: format!("{len} bytes exceeds the limit"),
        });
    }
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes the canonical form, rejecting anything that is not exactly one object of type `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if version != ENCODING_VERSION {
        return Err(DecodeError::UnknownVersion { found: version });
    }
    if bytes.len() > MAX_ENCODED_LEN {
        return Err(DecodeError::TooLarge { len: bytes.len() });
    }
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(body, CONFIG).map_err(|e| {
        DecodeError::Malformed {
            reason: e.to_string(),
        }
    })?;
    if used != body.len() {
        return Err(DecodeError::TrailingBytes {
            extra: body.len().saturating_sub(used),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;

    #[test]
    fn hash_is_32_raw_bytes() {
        let bytes = encode(&Hash([7; 32]));
        assert_eq!(bytes.len(), 33);
        assert_eq!(decode::<Hash>(&bytes), Ok(Hash([7; 32])));
    }

    #[test]
    fn rejects_trailing_version_and_truncation() {
        let mut bytes = encode(&(5u64, Hash([1; 32])));
        assert!(decode::<(u64, Hash)>(&bytes).is_ok());
        bytes.push(0);
        assert_eq!(
            decode::<(u64, Hash)>(&bytes),
            Err(DecodeError::TrailingBytes { extra: 1 })
        );
        bytes.pop();
        bytes.pop();
        assert!(matches!(
            decode::<(u64, Hash)>(&bytes),
            Err(DecodeError::Malformed { .. })
        ));
        bytes[0] = 9;
        assert_eq!(
            decode::<(u64, Hash)>(&bytes),
            Err(DecodeError::UnknownVersion { found: 9 })
        );
        assert_eq!(decode::<u64>(&[]), Err(DecodeError::Empty));
    }

    #[test]
    fn huge_length_prefix_does_not_allocate() {
        // A Vec claiming u64::MAX elements must fail on the limit, not try to allocate.
        let mut bytes = vec![ENCODING_VERSION];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode::<Vec<u64>>(&bytes).is_err());
    }
}
