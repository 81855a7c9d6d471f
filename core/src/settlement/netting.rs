//! Net positions from the gross money matrix ([`net_positions`]), and multilateral netting into at
//! most n − 1 transfers ([`netting`]): why this is safe is in the module docs of
//! [`crate::settlement`].

use super::{check_len, SettlementError, Transfer};
use crate::record::PartnerId;
use std::cmp::Reverse;

/// Per partner (in `partners` order), minor units received minus minor units paid, from a square
/// `gross_money[issuer][redeemer]` matrix. The positions sum to zero.
pub fn net_positions(
    partners: &[PartnerId],
    gross_money: &[Vec<u64>],
) -> Result<Vec<i64>, SettlementError> {
    let n = partners.len();
    check_len("gross money matrix", n, gross_money.len())?;
    let mut received = vec![0i128; n];
    let mut paid = Vec::with_capacity(n);
    for (issuer, row) in partners.iter().zip(gross_money) {
        check_len("gross money row", n, row.len())?;
        let overflow = SettlementError::Overflow {
            what: "money owed in total",
            partner: *issuer,
        };
        let mut row_sum = 0i128;
        for (acc, &m) in received.iter_mut().zip(row) {
            *acc = acc.checked_add(i128::from(m)).ok_or(overflow.clone())?;
            row_sum = row_sum.checked_add(i128::from(m)).ok_or(overflow.clone())?;
        }
        paid.push(row_sum);
    }
    partners
        .iter()
        .zip(received.into_iter().zip(paid))
        .map(|(partner, (r, p))| {
            r.checked_sub(p)
                .and_then(|v| i64::try_from(v).ok())
                .ok_or(SettlementError::Overflow {
                    what: "net position",
                    partner: *partner,
                })
        })
        .collect()
}

/// Net positions that do not sum to exactly zero cannot be settled.
pub(super) fn check_net_sum(net: &[i64]) -> Result<(), SettlementError> {
    let sum = net
        .iter()
        .map(|&v| i128::from(v))
        .try_fold(0i128, i128::checked_add)
        .unwrap_or(i128::MAX);
    if sum != 0 {
        return Err(SettlementError::NetSumNonZero { sum });
    }
    Ok(())
}

/// Multilateral netting: transfers that settle every net position exactly, at most n − 1 of them,
/// none of zero amount, always from a net debtor to a net creditor.
///
/// Greedy and deterministic: the largest debtor pays the largest creditor the smaller of the two
/// amounts; ties go to the partner listed first. Fails if `net` does not have one entry per partner
/// or does not sum to zero (such positions cannot be settled).
pub fn netting(partners: &[PartnerId], net: &[i64]) -> Result<Vec<Transfer>, SettlementError> {
    check_len("net positions", partners.len(), net.len())?;
    check_net_sum(net)?;
    let mut balance: Vec<(PartnerId, i128)> = partners
        .iter()
        .zip(net)
        .map(|(p, &v)| (*p, i128::from(v)))
        .collect();
    let mut transfers = Vec::new();
    // Each round zeroes at least one balance, so n rounds always suffice; the bound only guards
    // against a bug turning into an endless loop.
    for _ in 0..partners.len() {
        let debtor = balance
            .iter()
            .enumerate()
            .filter(|(_, (_, b))| *b < 0)
            .min_by_key(|&(i, &(_, b))| (b, i))
            .map(|(i, _)| i);
        let creditor = balance
            .iter()
            .enumerate()
            .filter(|(_, (_, b))| *b > 0)
            .min_by_key(|&(i, &(_, b))| (Reverse(b), i))
            .map(|(i, _)| i);
        let (Some(d), Some(c)) = (debtor, creditor) else {
            break;
        };
        let (Some(&(from, owes)), Some(&(to, owed))) = (balance.get(d), balance.get(c)) else {
            break;
        };
        let owes = owes.unsigned_abs();
        let owed = owed.unsigned_abs();
        let amount = owes.min(owed);
        let overflow = SettlementError::Overflow {
            what: "transfer amount",
            partner: from,
        };
        let amount_i = i128::try_from(amount).map_err(|_| overflow.clone())?;
        if let Some((_, b)) = balance.get_mut(d) {
            *b = b.checked_add(amount_i).ok_or(overflow.clone())?;
        }
        if let Some((_, b)) = balance.get_mut(c) {
            *b = b.checked_sub(amount_i).ok_or(overflow.clone())?;
        }
        transfers.push(Transfer {
            from,
            to,
            amount: u64::try_from(amount).map_err(|_| overflow)?,
        });
    }
    if let Some(&(partner, residual)) = balance.iter().find(|(_, b)| *b != 0) {
        return Err(SettlementError::Unsettled { partner, residual });
    }
    Ok(transfers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::test_genesis;

    #[test]
    fn netting_is_greedy_with_index_ties() {
        let (g, _) = test_genesis(4);
        let ids: Vec<PartnerId> = g.partners.iter().map(|p| p.id).collect();
        // Two equal debtors and two equal creditors: the first listed of each goes first.
        let t = netting(&ids, &[-5, -5, 5, 5]).unwrap();
        assert_eq!(
            t,
            vec![
                Transfer {
                    from: ids[0],
                    to: ids[2],
                    amount: 5
                },
                Transfer {
                    from: ids[1],
                    to: ids[3],
                    amount: 5
                },
            ]
        );
        assert_eq!(netting(&ids, &[0, 0, 0, 0]).unwrap(), vec![]);
        assert!(matches!(
            netting(&ids, &[1, 0, 0, 0]),
            Err(SettlementError::NetSumNonZero { sum: 1 })
        ));
        assert!(matches!(
            netting(&ids, &[0, 0]),
            Err(SettlementError::Shape { .. })
        ));
        let t = netting(&ids, &[i64::MIN, i64::MAX, 1, 0]).unwrap();
        assert_eq!(t.len(), 2);
    }
}
