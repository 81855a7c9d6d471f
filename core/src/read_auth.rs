//! Who may read a member's data: a member proves a read of its own balance or history is its own
//! by signing the request (docs/threat-model.md, "Privacy"). What is signed is the coalition (its
//! genesis hash), the request's path, which names the member, and the time, so a signature is good
//! for that one read, in that one coalition, for as long as the clock skew allows.

use crate::crypto::{self, Keypair, Signature, SignatureError};
use crate::hash::{tag, Hash};
use crate::record::{MemberId, Timestamp};

/// What a member signs to read `path` at `time` in the coalition of `genesis`.
pub fn member_read_message(genesis: &Hash, path: &str, time: Timestamp) -> Hash {
    let mut bytes = Vec::with_capacity(path.len().saturating_add(40));
    bytes.extend_from_slice(&genesis.0);
    bytes.extend_from_slice(&time.to_be_bytes());
    bytes.extend_from_slice(path.as_bytes());
    Hash::tagged(tag::MEMBER_READ, &bytes)
}

/// A member's signature on one read.
pub fn sign_member_read(key: &Keypair, genesis: &Hash, path: &str, time: Timestamp) -> Signature {
    key.sign(&member_read_message(genesis, path, time))
}

/// Why a member's signed read is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadAuthError {
    /// Signed too long ago, or in the future, by this node's clock.
    #[error("the read was signed at {time}, more than {max_skew}s from this node's clock ({now}); sign it again")]
    Stale {
        /// When it was signed.
        time: Timestamp,
        /// This node's clock.
        now: Timestamp,
        /// The genesis limit.
        max_skew: u64,
    },
    /// Not the member's signature over this read.
    #[error("the read is not signed by member {member}: {source}")]
    BadSignature {
        /// Whose data it asks for.
        member: MemberId,
        /// Why.
        source: SignatureError,
    },
}

/// Checks that `member` signed the read of `path` at `time`, within `max_skew` seconds of `now`.
pub fn verify_member_read(
    member: &MemberId,
    genesis: &Hash,
    path: &str,
    time: Timestamp,
    signature: &Signature,
    now: Timestamp,
    max_skew: u64,
) -> Result<(), ReadAuthError> {
    if time.abs_diff(now) > max_skew {
        return Err(ReadAuthError::Stale {
            time,
            now,
            max_skew,
        });
    }
    crypto::verify(
        &member.0,
        &member_read_message(genesis, path, time),
        signature,
    )
    .map_err(|source| ReadAuthError::BadSignature {
        member: *member,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_verifies_only_for_its_member_path_coalition_and_time() {
        let key = Keypair::generate();
        let member = MemberId(key.public());
        let genesis = Hash([1; 32]);
        let path = format!("/v1/members/{}/balance", member.to_hex());
        let sig = sign_member_read(&key, &genesis, &path, 1_000);
        assert_eq!(
            verify_member_read(&member, &genesis, &path, 1_000, &sig, 1_030, 60),
            Ok(())
        );
        let other = MemberId(Keypair::generate().public());
        assert!(matches!(
            verify_member_read(&other, &genesis, &path, 1_000, &sig, 1_000, 60),
            Err(ReadAuthError::BadSignature { .. })
        ));
        let history = path.replace("balance", "history");
        assert!(matches!(
            verify_member_read(&member, &genesis, &history, 1_000, &sig, 1_000, 60),
            Err(ReadAuthError::BadSignature { .. })
        ));
        assert!(matches!(
            verify_member_read(&member, &Hash([2; 32]), &path, 1_000, &sig, 1_000, 60),
            Err(ReadAuthError::BadSignature { .. })
        ));
        assert!(matches!(
            verify_member_read(&member, &genesis, &path, 1_001, &sig, 1_000, 60),
            Err(ReadAuthError::BadSignature { .. })
        ));
        assert_eq!(
            verify_member_read(&member, &genesis, &path, 1_000, &sig, 1_061, 60),
            Err(ReadAuthError::Stale {
                time: 1_000,
                now: 1_061,
                max_skew: 60
            })
        );
    }
}
