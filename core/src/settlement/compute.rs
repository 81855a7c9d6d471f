//! Computing an epoch's statement from its activity and the previous statement
//! ([`compute_statement`]).

use super::netting::{net_positions, netting};
use super::{
    cell_money, check_distinct, check_parameters, EpochActivity, IssuerTotals, SettlementError,
    SettlementStatement,
};
use crate::encoding::try_encode;
use crate::genesis::Genesis;
use crate::record::{Epoch, PartnerId, Points};
use std::collections::{BTreeMap, BTreeSet};

fn known(
    set: &BTreeSet<PartnerId>,
    partner: PartnerId,
    role: &'static str,
) -> Result<PartnerId, SettlementError> {
    if set.contains(&partner) {
        Ok(partner)
    } else {
        Err(SettlementError::UnknownPartner { partner, role })
    }
}

fn add_points<K: Ord>(
    map: &mut BTreeMap<K, Points>,
    key: K,
    points: Points,
    what: &'static str,
    partner: PartnerId,
) -> Result<(), SettlementError> {
    let slot = map.entry(key).or_default();
    *slot = slot
        .checked_add(points)
        .ok_or(SettlementError::Overflow { what, partner })?;
    Ok(())
}

/// `opening + issued − redeemed − expired + restored`, exact; an error if negative or too large.
pub(super) fn carry_forward(
    issuer: PartnerId,
    opening: Points,
    issued: Points,
    redeemed: Points,
    expired: Points,
    restored: Points,
) -> Result<Points, SettlementError> {
    // Four u64 terms cannot overflow an i128, so the order of additions and subtractions does not
    // matter and a temporarily negative partial sum is not an error; only the result is checked.
    let wide = [
        i128::from(opening),
        i128::from(issued),
        i128::from(restored),
        i128::from(redeemed).checked_neg().unwrap_or(i128::MIN),
        i128::from(expired).checked_neg().unwrap_or(i128::MIN),
    ]
    .into_iter()
    .try_fold(0i128, i128::checked_add);
    match wide {
        Some(v) if v < 0 => Err(SettlementError::OutstandingUnderflow {
            issuer,
            opening,
            issued,
            redeemed,
            expired,
            restored,
        }),
        Some(v) => Points::try_from(v).map_err(|_| SettlementError::Overflow {
            what: "outstanding points",
            partner: issuer,
        }),
        None => Err(SettlementError::Overflow {
            what: "outstanding points",
            partner: issuer,
        }),
    }
}

/// The outstanding points each issuer starts the epoch with, in genesis order.
fn opening_balances(
    partners: &[PartnerId],
    epoch: Epoch,
    prev: Option<&SettlementStatement>,
) -> Result<Vec<Points>, SettlementError> {
    let Some(prev) = prev else {
        return if epoch == 0 {
            Ok(vec![0; partners.len()])
        } else {
            Err(SettlementError::MissingPrevious { epoch })
        };
    };
    if prev.epoch.checked_add(1) != Some(epoch) {
        return Err(SettlementError::NotConsecutive {
            previous: prev.epoch,
            epoch,
        });
    }
    if prev.partners != partners {
        return Err(SettlementError::PreviousMismatch {
            reason: "its partner list differs from the genesis",
        });
    }
    if prev.per_issuer.len() != partners.len()
        || prev
            .per_issuer
            .iter()
            .zip(partners)
            .any(|(t, p)| t.issuer != *p)
    {
        return Err(SettlementError::PreviousMismatch {
            reason: "its per-issuer totals are not one per partner in genesis order",
        });
    }
    Ok(prev.per_issuer.iter().map(|t| t.outstanding).collect())
}

/// Computes the settlement statement of `activity.epoch`.
///
/// `prev` is the statement of the epoch before (`None` only for epoch 0); its outstanding points are
/// carried forward. Fails with a typed error if a party is not a genesis partner, a sum overflows, an
/// issuer's outstanding points would go negative, or the genesis parameters are unusable. The result
/// does not depend on the order of `activity.redemptions`.
pub fn compute_statement(
    genesis: &Genesis,
    activity: &EpochActivity,
    prev: Option<&SettlementStatement>,
) -> Result<SettlementStatement, SettlementError> {
    check_parameters(genesis.point_value, genesis.fee_bps)?;
    let partners: Vec<PartnerId> = genesis.partners.iter().map(|p| p.id).collect();
    let set = check_distinct(&partners)?;
    let opening = opening_balances(&partners, activity.epoch, prev)?;
    let (cells, redeemed) = sum_redemptions(&set, activity)?;
    let gross_points: Vec<Vec<Points>> = partners
        .iter()
        .map(|i| {
            partners
                .iter()
                .map(|r| cells.get(&(*i, *r)).copied().unwrap_or(0))
                .collect()
        })
        .collect();
    let gross_money = price(genesis, &partners, &gross_points)?;
    let net = net_positions(&partners, &gross_money)?;
    let transfers = netting(&partners, &net)?;
    let per_issuer = issuer_totals(&partners, opening, activity, &redeemed)?;
    let statement = SettlementStatement {
        epoch: activity.epoch,
        currency: genesis.currency.clone(),
        point_value: genesis.point_value,
        fee_bps: genesis.fee_bps,
        partners,
        gross_points,
        gross_money,
        net,
        transfers,
        per_issuer,
    };
    // Make sure `hash()` is well defined (a coalition of hundreds of partners would exceed the
    // canonical size limit) before anyone seals it.
    try_encode(&statement)?;
    Ok(statement)
}

/// Points per `(issuer, redeemer)` cell.
type Cells = BTreeMap<(PartnerId, PartnerId), Points>;
/// Points per partner.
type PerPartner = BTreeMap<PartnerId, Points>;

/// Points redeemed per `(issuer, redeemer)` cell (none on the diagonal) and per issuer (at itself
/// included), after checking that every party of the activity is a partner.
fn sum_redemptions(
    set: &BTreeSet<PartnerId>,
    activity: &EpochActivity,
) -> Result<(Cells, PerPartner), SettlementError> {
    let mut cells = Cells::new();
    let mut redeemed = PerPartner::new();
    for r in &activity.redemptions {
        let issuer = known(set, r.issuer, "redemption issuer")?;
        let redeemer = known(set, r.redeemer, "redemption redeemer")?;
        add_points(&mut redeemed, issuer, r.points, "points redeemed", issuer)?;
        if issuer != redeemer {
            add_points(
                &mut cells,
                (issuer, redeemer),
                r.points,
                "gross points",
                issuer,
            )?;
        }
    }
    for (map, role) in [
        (&activity.issued, "issued"),
        (&activity.expired, "expired"),
        (&activity.restored, "restored"),
    ] {
        for &partner in map.keys() {
            known(set, partner, role)?;
        }
    }
    Ok((cells, redeemed))
}

/// Each cell's money after the fee, priced once per cell.
fn price(
    genesis: &Genesis,
    partners: &[PartnerId],
    gross_points: &[Vec<Points>],
) -> Result<Vec<Vec<u64>>, SettlementError> {
    partners
        .iter()
        .zip(gross_points)
        .map(|(issuer, row)| {
            row.iter()
                .map(|&points| {
                    cell_money(genesis.point_value, genesis.fee_bps, points).ok_or(
                        SettlementError::Overflow {
                            what: "money owed",
                            partner: *issuer,
                        },
                    )
                })
                .collect::<Result<Vec<u64>, _>>()
        })
        .collect()
}

/// Each issuer's points for the epoch, in partner order, and what it carries forward.
fn issuer_totals(
    partners: &[PartnerId],
    opening: Vec<Points>,
    activity: &EpochActivity,
    redeemed: &PerPartner,
) -> Result<Vec<IssuerTotals>, SettlementError> {
    let get = |map: &PerPartner, p: &PartnerId| map.get(p).copied().unwrap_or(0);
    partners
        .iter()
        .zip(opening)
        .map(|(issuer, opening)| {
            let (issued, redeemed, expired, restored) = (
                get(&activity.issued, issuer),
                get(redeemed, issuer),
                get(&activity.expired, issuer),
                get(&activity.restored, issuer),
            );
            Ok(IssuerTotals {
                issuer: *issuer,
                opening,
                issued,
                redeemed,
                expired,
                restored,
                outstanding: carry_forward(*issuer, opening, issued, redeemed, expired, restored)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::test_genesis;

    #[test]
    fn carry_forward_is_order_free_and_typed() {
        let p = test_genesis(1).0.partners[0].id;
        // Redeemed before restored would underflow a naive u64 sequence; the exact sum is fine.
        assert_eq!(carry_forward(p, 0, 0, 5, 0, 5), Ok(0));
        assert_eq!(
            carry_forward(p, u64::MAX, u64::MAX, u64::MAX, 0, 0),
            Ok(u64::MAX)
        );
        assert!(matches!(
            carry_forward(p, u64::MAX, 1, 0, 0, 0),
            Err(SettlementError::Overflow {
                what: "outstanding points",
                ..
            })
        ));
        assert!(matches!(
            carry_forward(p, 1, 0, 2, 0, 0),
            Err(SettlementError::OutstandingUnderflow { redeemed: 2, .. })
        ));
    }
}
