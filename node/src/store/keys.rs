//! Key layouts: fixed-width, big-endian integers, so RocksDB's byte order is the order we iterate in.

use coalition_core::hash::Hash;
use coalition_core::record::{Epoch, MemberId, PartnerId, Timestamp};

/// Length of a key or hash.
pub(crate) const ID: usize = 32;
/// Length of a big-endian u64.
pub(crate) const U64: usize = 8;

/// `a ‖ b` for two fixed-width parts.
fn cat<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    for part in parts {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    debug_assert_eq!(at, N, "key parts do not fill the key");
    out
}

/// `partner ‖ n be`: entries, leaves, closes, fraud.
pub(crate) fn partner_u64(partner: &PartnerId, n: u64) -> [u8; ID + U64] {
    cat(&[&partner.0 .0, &n.to_be_bytes()])
}

/// `partner`: heads.
pub(crate) fn partner(partner: &PartnerId) -> [u8; ID] {
    partner.0 .0
}

/// `member`: members, and the prefix of member_lots, history and votes.
pub(crate) fn member(member: &MemberId) -> [u8; ID] {
    member.0 .0
}

/// `id`: lots, records, inflight.
pub(crate) fn hash(id: &Hash) -> [u8; ID] {
    id.0
}

/// `id ‖ partner`: held_votes (order id ‖ voter).
pub(crate) fn hash_partner(id: &Hash, partner: &PartnerId) -> [u8; ID + ID] {
    cat(&[&id.0, &partner.0 .0])
}

/// `member ‖ lot`: member_lots.
pub(crate) fn member_lot(member: &MemberId, lot: &Hash) -> [u8; ID + ID] {
    cat(&[&member.0 .0, &lot.0])
}

/// `member ‖ seq be`: votes.
pub(crate) fn member_seq(member: &MemberId, seq: u64) -> [u8; ID + U64] {
    cat(&[&member.0 .0, &seq.to_be_bytes()])
}

/// `member ‖ time be ‖ partner ‖ seq be`: history, in time order per member.
pub(crate) fn history(
    member: &MemberId,
    time: Timestamp,
    partner: &PartnerId,
    seq: u64,
) -> [u8; ID + U64 + ID + U64] {
    cat(&[
        &member.0 .0,
        &time.to_be_bytes(),
        &partner.0 .0,
        &seq.to_be_bytes(),
    ])
}

/// `epoch be`: checkpoints, statements, and the prefix of checkpoint_sigs.
pub(crate) fn epoch(epoch: Epoch) -> [u8; U64] {
    epoch.to_be_bytes()
}

/// `epoch be ‖ partner`: checkpoint_sigs.
pub(crate) fn epoch_partner(epoch: Epoch, partner: &PartnerId) -> [u8; U64 + ID] {
    cat(&[&epoch.to_be_bytes(), &partner.0 .0])
}

/// Reads a big-endian u64 at `at`, if the key is long enough.
pub(crate) fn read_u64(key: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; U64] = key.get(at..at.checked_add(U64)?)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// Reads a 32-byte id at `at`, if the key is long enough.
pub(crate) fn read_id(key: &[u8], at: usize) -> Option<[u8; ID]> {
    key.get(at..at.checked_add(ID)?)?.try_into().ok()
}

/// The smallest key greater than every key starting with `prefix`, or `None` if there is none
/// (the prefix is all `0xff`).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use coalition_core::crypto::PublicKey;

    #[test]
    fn big_endian_orders_like_numbers() {
        let p = PartnerId(PublicKey([7; 32]));
        assert!(partner_u64(&p, 255) < partner_u64(&p, 256));
        assert!(partner_u64(&p, 1 << 40) < partner_u64(&p, u64::MAX));
        assert_eq!(read_u64(&partner_u64(&p, 1234), ID), Some(1234));
        assert_eq!(read_u64(&[0; 4], 0), None);
    }

    #[test]
    fn prefix_end_is_the_next_prefix() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }
}
