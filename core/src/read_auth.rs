//! Who may read a member's data: a member proves a read of its own balance or history is its own
//! by signing the request (docs/threat-model.md, "Privacy"). What is signed is the coalition (its
//! genesis hash), the node asked (its partner id), the request's path, which names the member, and
//! the time, so a signature is good for that one read at that one node, for [`READ_WINDOW_SECS`].

use crate::crypto::{self, Keypair, Signature, SignatureError};
use crate::hash::{tag, Hash};
use crate::record::{MemberId, PartnerId, Timestamp};

/// How far a signed read's time may be from the node's clock: long enough for a request in
/// flight and a clock a little off, short enough that a captured one is soon useless.
pub const READ_WINDOW_SECS: u64 = 60;

/// Where and what a member reads: the coalition, the node asked, the request path.
#[derive(Debug, Clone, Copy)]
pub struct ReadTarget<'a> {
    /// The coalition's genesis hash.
    pub genesis: &'a Hash,
    /// The partner whose node is asked.
    pub node: &'a PartnerId,
    /// The request's path (`/v1/members/{id}/balance`).
    pub path: &'a str,
}

/// What a member signs to read `target` at `time`.
pub fn member_read_message(target: ReadTarget<'_>, time: Timestamp) -> Hash {
    let mut bytes = Vec::with_capacity(target.path.len().saturating_add(72));
    bytes.extend_from_slice(&target.genesis.0);
    bytes.extend_from_slice(&target.node.0 .0);
    bytes.extend_from_slice(&time.to_be_bytes());
    bytes.extend_from_slice(target.path.as_bytes());
    Hash::tagged(tag::MEMBER_READ, &bytes)
}

/// A member's signature on one read.
pub fn sign_member_read(key: &Keypair, target: ReadTarget<'_>, time: Timestamp) -> Signature {
    key.sign(&member_read_message(target, time))
}

/// Why a member's signed read is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadAuthError {
    /// Signed too long ago, or in the future, by this node's clock.
    #[error("the read was signed at {time}, more than {READ_WINDOW_SECS}s from this node's clock ({now}); sign it again")]
    Stale {
        /// When it was signed.
        time: Timestamp,
        /// This node's clock.
        now: Timestamp,
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

/// Checks that `member` signed the read of `target` at `time`, within [`READ_WINDOW_SECS`] of
/// `now`.
pub fn verify_member_read(
    member: &MemberId,
    target: ReadTarget<'_>,
    time: Timestamp,
    signature: &Signature,
    now: Timestamp,
) -> Result<(), ReadAuthError> {
    if time.abs_diff(now) > READ_WINDOW_SECS {
        return Err(ReadAuthError::Stale { time, now });
    }
    crypto::verify(&member.0, &member_read_message(target, time), signature).map_err(|source| {
        ReadAuthError::BadSignature {
            member: *member,
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_verifies_only_for_its_member_node_path_coalition_and_time() {
        let key = Keypair::generate();
        let member = MemberId(key.public());
        let genesis = Hash([1; 32]);
        let node = PartnerId(Keypair::generate().public());
        let path = format!("/v1/members/{}/balance", member.to_hex());
        let at = |genesis, node, path| ReadTarget {
            genesis,
            node,
            path,
        };
        let target = at(&genesis, &node, &path);
        let sig = sign_member_read(&key, target, 1_000);
        assert_eq!(
            verify_member_read(&member, target, 1_000, &sig, 1_030),
            Ok(())
        );
        let bad = |member: &MemberId, target, time| {
            matches!(
                verify_member_read(member, target, time, &sig, 1_000),
                Err(ReadAuthError::BadSignature { .. })
            )
        };
        let other = MemberId(Keypair::generate().public());
        assert!(bad(&other, target, 1_000), "another member");
        let history = path.replace("balance", "history");
        assert!(
            bad(&member, at(&genesis, &node, &history), 1_000),
            "another path"
        );
        assert!(
            bad(&member, at(&Hash([2; 32]), &node, &path), 1_000),
            "another coalition"
        );
        let elsewhere = PartnerId(Keypair::generate().public());
        assert!(
            bad(&member, at(&genesis, &elsewhere, &path), 1_000),
            "another node"
        );
        assert!(bad(&member, target, 1_001), "another time");
        assert_eq!(
            verify_member_read(&member, target, 1_000, &sig, 1_061),
            Err(ReadAuthError::Stale {
                time: 1_000,
                now: 1_061
            })
        );
    }
}
