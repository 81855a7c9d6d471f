//! The auditor's check of a statement handed to it: every table consistent with the others
//! ([`verify_statement_consistency`]). Whether the statement follows from the logs is the other
//! half: recompute it and compare hashes.

use super::compute::carry_forward;
use super::netting::{check_net_sum, net_positions};
use super::{
    cell_money, check_distinct, check_len, check_parameters, SettlementError, SettlementStatement,
};
use crate::encoding::try_encode;
use crate::record::PartnerId;
use std::collections::{BTreeMap, BTreeSet};

/// Checks that a statement is internally consistent, as an auditor does before trusting it: one
/// entry per distinct partner in every table, zero diagonal, every money cell follows from its points,
/// every net position follows from the money matrix and they sum to zero, at most n − 1 transfers,
/// each from a net debtor to a net creditor and non-zero, settling every net position exactly, and
/// each issuer's outstanding points follow from its totals.
///
/// Whether the statement follows from the logs is a separate check: recompute it with
/// [`super::compute_statement`] and compare hashes.
pub fn verify_statement_consistency(s: &SettlementStatement) -> Result<(), SettlementError> {
    check_parameters(s.point_value, s.fee_bps)?;
    let n = s.partners.len();
    let set = check_distinct(&s.partners)?;
    check_len("gross points matrix", n, s.gross_points.len())?;
    check_len("gross money matrix", n, s.gross_money.len())?;
    check_len("net positions", n, s.net.len())?;
    check_len("per-issuer totals", n, s.per_issuer.len())?;
    check_cells(s)?;
    check_net(s)?;
    check_transfers(s, &set)?;
    check_totals(s)?;
    try_encode(s)?;
    Ok(())
}

/// Every cell of the gross matrices: a zero diagonal, and money that follows from the points, the
/// point value and the fee.
fn check_cells(s: &SettlementStatement) -> Result<(), SettlementError> {
    let n = s.partners.len();
    for (i, (issuer, (points_row, money_row))) in s
        .partners
        .iter()
        .zip(s.gross_points.iter().zip(&s.gross_money))
        .enumerate()
    {
        check_len("gross points row", n, points_row.len())?;
        check_len("gross money row", n, money_row.len())?;
        for (j, (redeemer, (&points, &money))) in s
            .partners
            .iter()
            .zip(points_row.iter().zip(money_row))
            .enumerate()
        {
            if i == j && (points != 0 || money != 0) {
                return Err(SettlementError::SelfOwed {
                    partner: *issuer,
                    points,
                    money,
                });
            }
            let expected =
                cell_money(s.point_value, s.fee_bps, points).ok_or(SettlementError::Overflow {
                    what: "money owed",
                    partner: *issuer,
                })?;
            if expected != money {
                return Err(SettlementError::MoneyMismatch {
                    issuer: *issuer,
                    redeemer: *redeemer,
                    points,
                    expected,
                    found: money,
                });
            }
        }
    }

    Ok(())
}

/// Each net position follows from the money matrix, and they sum to zero.
fn check_net(s: &SettlementStatement) -> Result<(), SettlementError> {
    let expected_net = net_positions(&s.partners, &s.gross_money)?;
    for ((partner, &expected), &found) in s.partners.iter().zip(&expected_net).zip(&s.net) {
        if expected != found {
            return Err(SettlementError::NetMismatch {
                partner: *partner,
                expected,
                found,
            });
        }
    }
    check_net_sum(&s.net)?;

    Ok(())
}

/// At most n − 1 transfers, each non-zero from a net debtor to a net creditor of the statement,
/// that together settle every net position exactly.
fn check_transfers(
    s: &SettlementStatement,
    set: &BTreeSet<PartnerId>,
) -> Result<(), SettlementError> {
    let n = s.partners.len();
    if s.transfers.len() > n.saturating_sub(1) {
        return Err(SettlementError::TooManyTransfers {
            count: s.transfers.len(),
            partners: n,
        });
    }
    let net_of: BTreeMap<PartnerId, i64> = s
        .partners
        .iter()
        .copied()
        .zip(s.net.iter().copied())
        .collect();
    let mut residual: BTreeMap<PartnerId, i128> =
        net_of.iter().map(|(p, &v)| (*p, i128::from(v))).collect();
    for (index, t) in s.transfers.iter().enumerate() {
        let bad = |reason| SettlementError::BadTransfer {
            index,
            from: t.from,
            to: t.to,
            amount: t.amount,
            reason,
        };
        if !set.contains(&t.from) || !set.contains(&t.to) {
            return Err(bad("a party is not a partner of the statement"));
        }
        if t.from == t.to {
            return Err(bad("a partner pays itself"));
        }
        if t.amount == 0 {
            return Err(bad("zero amount"));
        }
        if net_of.get(&t.from).is_none_or(|&v| v >= 0) {
            return Err(bad("the payer is not a net debtor"));
        }
        if net_of.get(&t.to).is_none_or(|&v| v <= 0) {
            return Err(bad("the payee is not a net creditor"));
        }
        let amount = i128::from(t.amount);
        for (party, delta) in [(t.from, amount), (t.to, amount.checked_neg().unwrap_or(0))] {
            if let Some(r) = residual.get_mut(&party) {
                *r = r.checked_add(delta).ok_or(bad("amounts overflow"))?;
            }
        }
    }
    if let Some(partner) = s
        .partners
        .iter()
        .find(|p| residual.get(p).is_some_and(|&r| r != 0))
    {
        return Err(SettlementError::Unsettled {
            partner: *partner,
            residual: residual.get(partner).copied().unwrap_or(0),
        });
    }

    Ok(())
}

/// Each issuer's totals, in partner order: outstanding follows from the others, and no fewer
/// points redeemed than others redeemed of its points in the gross matrix.
fn check_totals(s: &SettlementStatement) -> Result<(), SettlementError> {
    for ((partner, t), points_row) in s.partners.iter().zip(&s.per_issuer).zip(&s.gross_points) {
        let totals = |reason| SettlementError::Totals {
            issuer: *partner,
            reason,
        };
        if t.issuer != *partner {
            return Err(totals(
                "per-issuer totals are not in the statement's partner order",
            ));
        }
        let outstanding = carry_forward(
            t.issuer, t.opening, t.issued, t.redeemed, t.expired, t.restored,
        )?;
        if outstanding != t.outstanding {
            return Err(totals(
                "outstanding ≠ opening + issued − redeemed − expired + restored",
            ));
        }
        let owed_points = points_row
            .iter()
            .map(|&p| u128::from(p))
            .try_fold(0u128, u128::checked_add)
            .unwrap_or(u128::MAX);
        if owed_points > u128::from(t.redeemed) {
            return Err(totals(
                "fewer points redeemed than the gross matrix says others redeemed",
            ));
        }
    }
    Ok(())
}
