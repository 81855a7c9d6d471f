//! The `Authorization` header of a member's signed read, `Member <time>.<signature hex>`: the
//! member id is in the path it signs (`/v1/members/{id}/...`), with the coalition and the node
//! asked; the rule is in `coalition_core::read_auth`. Partners and auditors use `Bearer <token>`.

use coalition_core::crypto::{Keypair, Signature};
use coalition_core::read_auth::{sign_member_read, ReadTarget};
use coalition_core::record::Timestamp;

/// The scheme word of a member's signed read.
pub const MEMBER_SCHEME: &str = "Member";

/// The header value for `key`'s read of `target` at `time`.
pub fn member_read_header(key: &Keypair, target: ReadTarget<'_>, time: Timestamp) -> String {
    let sig = sign_member_read(key, target, time);
    format!("{MEMBER_SCHEME} {time}.{}", hex::encode(sig.0))
}

/// The time and signature of a `Member ...` header value; `None` if it is another scheme or
/// malformed.
pub fn parse_member_read_header(value: &str) -> Option<(Timestamp, Signature)> {
    let rest = value.strip_prefix(MEMBER_SCHEME)?.strip_prefix(' ')?;
    let (time, sig) = rest.trim().split_once('.')?;
    let time: Timestamp = time.parse().ok()?;
    let mut bytes = [0u8; 64];
    hex::decode_to_slice(sig, &mut bytes).ok()?;
    Some((time, Signature(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coalition_core::hash::Hash;

    #[test]
    fn the_header_round_trips_and_other_forms_are_refused() {
        let key = Keypair::generate();
        let node = coalition_core::record::PartnerId(Keypair::generate().public());
        let target = ReadTarget {
            genesis: &Hash([3; 32]),
            node: &node,
            path: "/v1/members/x/balance",
        };
        let header = member_read_header(&key, target, 42);
        let (time, sig) = parse_member_read_header(&header).expect("own header parses");
        assert_eq!(time, 42);
        assert_eq!(sig, sign_member_read(&key, target, 42));
        for bad in [
            "Bearer abc",
            "Member",
            "Member 42",
            "Member x.00",
            "Member 42.zz",
            "Member 42.0011",
            "Membe 42.00",
        ] {
            assert_eq!(parse_member_read_header(bad), None, "{bad}");
        }
    }
}
