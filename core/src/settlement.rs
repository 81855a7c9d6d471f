//! Settlement of one epoch: who owes whom for the points redeemed in it, netted to a short list of
//! transfers, plus each issuer's outstanding liability carried forward.
//!
//! [`compute_statement`] turns an [`EpochActivity`] (every lot spend of every certificate appended in
//! the epoch, and the points issued, expired and restored) and the previous epoch's
//! [`SettlementStatement`] into this epoch's statement. [`verify_statement_consistency`] is what an
//! auditor runs on a statement it was handed; [`SettlementStatement::render_table`] is what the CLI
//! prints. Everything is integer arithmetic, checked, and independent of the order of its inputs, so
//! every honest node computes byte-identical statements (their [`SettlementStatement::hash`] goes
//! into the checkpoint).
//!
//! # What is owed, and the fee convention
//!
//! A lot issued by partner `I` and spent at partner `R` makes `I` owe `R`. Points are first summed per
//! `(issuer, redeemer)` cell of the gross matrix; only then is the cell priced:
//!
//! ```text
//! money = ⌊points × minor_units / per_points⌋      (Genesis::money_for_points)
//! fee   = ⌊money × fee_bps / 10 000⌋                (computed in u128)
//! owed  = money − fee                               (gross_money[I][R])
//! ```
//!
//! The fee is the coalition's interchange discount: the *redeemer* concedes `fee_bps` basis points on
//! what it is owed, so the issuer pays `owed`, not the face value of its points. Pricing a whole cell
//! once per epoch means rounding happens once per cell, and the result does not depend on how the
//! redemptions were split into lots or certificates, or in what order they arrived.
//!
//! An issuer that redeems its own points owes nobody: the diagonal of both matrices is always zero.
//! Those points still count as *redeemed* in the issuer's totals, since they are no longer a liability.
//!
//! # Net positions, and why netting is safe
//!
//! `net[p] = Σ owed to p − Σ owed by p`. Every owed amount is counted once as received and once as
//! paid, so the net positions sum to exactly zero. Paying every gross cell would move each partner's
//! money by exactly `net[p]`; the transfer list moves it by exactly the same amount with far fewer
//! payments, so no partner gains or loses anything by netting, and [`verify_statement_consistency`]
//! checks precisely that (every partner's net plus what it pays minus what it receives is zero). The
//! gross matrix stays in the statement, so every bilateral claim remains visible and auditable; the
//! transfers are only how it is paid.
//!
//! [`netting`] is greedy: the largest debtor pays the largest creditor the smaller of the two amounts,
//! ties going to the partner listed first in the genesis. Each step brings at least one partner to zero
//! and the last step brings two, so there are at most n − 1 transfers; money only ever flows from a
//! net debtor to a net creditor, so no partner both pays and receives.
//!
//! # Liability carried forward
//!
//! Per issuer, `outstanding = opening + issued − redeemed − expired + restored`, where `opening` is
//! the previous statement's `outstanding` (zero before epoch 0). `restored` is the points of lots that
//! were already counted as expired (breakage) but that a late certificate redeemed in this epoch: they
//! appear in `redeemed` like any spend, and `restored` adds them back so they are not subtracted
//! twice. The sum is exact (computed in i128); a negative result is a typed error naming the issuer.

// Settlement money must never wrap or panic: every operation below is checked. Clippy holds us to it.
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use crate::encoding::{encode, try_encode, EncodeError};
use crate::genesis::{Genesis, PointValue};
use crate::hash::{tag, Hash};
use crate::record::{Epoch, PartnerId, Points};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Basis points in a whole: a fee of `fee_bps` is `fee_bps / BPS_DENOMINATOR` of the money.
pub const BPS_DENOMINATOR: u32 = 10_000;

/// One lot spend: `points` of a lot issued by `issuer`, consumed by a certificate that `redeemer`
/// appended in this epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    /// Who issued the lot, and owes for it.
    pub issuer: PartnerId,
    /// Who accepted the points, and is owed.
    pub redeemer: PartnerId,
    /// Points taken from the lot.
    pub points: Points,
}

/// Everything settlement needs to know about one epoch, derived from the partners' logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochActivity {
    /// The epoch being settled.
    pub epoch: Epoch,
    /// One per lot spend of every certificate appended in this epoch, in any order.
    pub redemptions: Vec<Redemption>,
    /// Points issued in this epoch, per issuer (missing means zero).
    pub issued: BTreeMap<PartnerId, Points>,
    /// Breakage recognised in this epoch: points of lots that expired unspent, per issuer.
    pub expired: BTreeMap<PartnerId, Points>,
    /// Points of lots already counted in `expired` in an earlier epoch that a late certificate
    /// redeemed in this one, per issuer.
    pub restored: BTreeMap<PartnerId, Points>,
}

/// One payment of the netted settlement: `from` pays `to` `amount` minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// The payer, a net debtor.
    pub from: PartnerId,
    /// The payee, a net creditor.
    pub to: PartnerId,
    /// Minor units of the statement's currency; never zero.
    pub amount: u64,
}

/// One issuer's points for the epoch and the liability it carries forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerTotals {
    /// The issuer.
    pub issuer: PartnerId,
    /// Outstanding at the start of the epoch: the previous statement's `outstanding` (0 in epoch 0).
    pub opening: Points,
    /// Issued this epoch.
    pub issued: Points,
    /// Redeemed this epoch, anywhere, including at the issuer itself.
    pub redeemed: Points,
    /// Expired this epoch (breakage).
    pub expired: Points,
    /// Redeemed this epoch from lots counted as expired earlier.
    pub restored: Points,
    /// `opening + issued − redeemed − expired + restored`.
    pub outstanding: Points,
}

/// The settlement of one epoch. Its canonical hash ([`SettlementStatement::hash`]) is sealed in the
/// epoch's checkpoint; its JSON form is what nodes serve and auditors read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementStatement {
    /// The epoch settled.
    pub epoch: Epoch,
    /// ISO code of the money amounts.
    pub currency: String,
    /// What a point is worth (from the genesis).
    pub point_value: PointValue,
    /// Fee the redeemer concedes, in basis points (from the genesis).
    pub fee_bps: u32,
    /// The partners in genesis order; every table below is indexed by this order.
    pub partners: Vec<PartnerId>,
    /// `gross_points[issuer][redeemer]`: points of `issuer` redeemed at `redeemer`. Zero diagonal.
    pub gross_points: Vec<Vec<Points>>,
    /// `gross_money[issuer][redeemer]`: minor units `issuer` owes `redeemer`, after the fee.
    pub gross_money: Vec<Vec<u64>>,
    /// Per partner, minor units received minus minor units paid. Sums to zero.
    pub net: Vec<i64>,
    /// Who pays whom: at most n − 1 transfers that settle every net position exactly.
    pub transfers: Vec<Transfer>,
    /// Per issuer (genesis order), points issued, redeemed, expired, restored and outstanding.
    pub per_issuer: Vec<IssuerTotals>,
}

/// Why a statement cannot be computed, or why a statement handed to an auditor is not consistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettlementError {
    /// A party named in the activity is not a genesis partner.
    #[error("{role} {partner} is not a genesis partner")]
    UnknownPartner {
        /// The key found.
        partner: PartnerId,
        /// Where it was found ("redemption issuer", "issued", …).
        role: &'static str,
    },
    /// A partner appears twice in the genesis or in a statement's partner list.
    #[error("partner {partner} is listed twice")]
    DuplicatePartner {
        /// The repeated key.
        partner: PartnerId,
    },
    /// A parameter settlement depends on is unusable.
    #[error("{field} is invalid for settlement: {reason}")]
    Parameter {
        /// Which parameter.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A sum or product does not fit its integer type.
    #[error("{what} overflows for partner {partner}")]
    Overflow {
        /// The quantity that overflowed.
        what: &'static str,
        /// The partner it belongs to (the issuer for points and owed money).
        partner: PartnerId,
    },
    /// An issuer's outstanding points would be negative: more left its books than it ever had.
    #[error(
        "outstanding points of issuer {issuer} would be negative: {opening} opening + {issued} \
         issued − {redeemed} redeemed − {expired} expired + {restored} restored"
    )]
    OutstandingUnderflow {
        /// The issuer.
        issuer: PartnerId,
        /// Outstanding at the start of the epoch.
        opening: Points,
        /// Issued this epoch.
        issued: Points,
        /// Redeemed this epoch.
        redeemed: Points,
        /// Expired this epoch.
        expired: Points,
        /// Restored this epoch.
        restored: Points,
    },
    /// An epoch after the first was settled without the previous statement, which would silently
    /// reset every issuer's outstanding liability to zero.
    #[error(
        "epoch {epoch} needs the statement of epoch {epoch}−1 to carry outstanding points forward"
    )]
    MissingPrevious {
        /// The epoch being settled.
        epoch: Epoch,
    },
    /// The previous statement is not for the epoch just before.
    #[error("the previous statement is for epoch {previous}, not the epoch before {epoch}")]
    NotConsecutive {
        /// The previous statement's epoch.
        previous: Epoch,
        /// The epoch being settled.
        epoch: Epoch,
    },
    /// The previous statement was made for another partner set.
    #[error("the previous statement does not match the genesis: {reason}")]
    PreviousMismatch {
        /// What differs.
        reason: &'static str,
    },
    /// A table does not have one entry per partner.
    #[error("{what} has {found} entries, expected {expected}")]
    Shape {
        /// Which table (or row).
        what: &'static str,
        /// One per partner.
        expected: usize,
        /// What it has.
        found: usize,
    },
    /// A partner is owed money by itself.
    #[error("partner {partner} owes itself {points} points / {money} minor units; the diagonal must be zero")]
    SelfOwed {
        /// The partner.
        partner: PartnerId,
        /// Points on the diagonal.
        points: Points,
        /// Money on the diagonal.
        money: u64,
    },
    /// A money cell does not follow from its points, the point value and the fee.
    #[error("{issuer} owes {redeemer} {found} minor units, but {points} points make {expected}")]
    MoneyMismatch {
        /// Row.
        issuer: PartnerId,
        /// Column.
        redeemer: PartnerId,
        /// The cell's points.
        points: Points,
        /// What those points are worth after the fee.
        expected: u64,
        /// What the statement says.
        found: u64,
    },
    /// A net position does not follow from the gross money matrix.
    #[error("net position of {partner} is {found}, but the gross matrix gives {expected}")]
    NetMismatch {
        /// The partner.
        partner: PartnerId,
        /// Received minus paid, from the matrix.
        expected: i64,
        /// What the statement says.
        found: i64,
    },
    /// Net positions that do not sum to zero cannot be settled.
    #[error("net positions sum to {sum}, not zero")]
    NetSumNonZero {
        /// Their sum.
        sum: i128,
    },
    /// More transfers than partners minus one.
    #[error("{count} transfers for {partners} partners; at most n−1 are allowed")]
    TooManyTransfers {
        /// Transfers in the statement.
        count: usize,
        /// Partners in the statement.
        partners: usize,
    },
    /// A transfer that no correct netting makes.
    #[error("transfer #{index} ({from} pays {to} {amount}) is invalid: {reason}")]
    BadTransfer {
        /// Position in the transfer list.
        index: usize,
        /// Payer.
        from: PartnerId,
        /// Payee.
        to: PartnerId,
        /// Amount.
        amount: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// After the transfers a partner is still owed, or still owes, money.
    #[error("after the transfers partner {partner} still has {residual} minor units unsettled")]
    Unsettled {
        /// The partner.
        partner: PartnerId,
        /// Net position plus what it paid minus what it received (should be zero).
        residual: i128,
    },
    /// An issuer's point totals contradict each other or the gross matrix.
    #[error("totals of issuer {issuer} are inconsistent: {reason}")]
    Totals {
        /// The issuer.
        issuer: PartnerId,
        /// Which rule fails.
        reason: &'static str,
    },
    /// The statement is too large for the canonical encoding, so it has no hash.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Money for `points` before the fee: `⌊points × minor_units / per_points⌋`, the same formula as
/// [`Genesis::money_for_points`]. `None` on overflow or a zero `per_points`.
pub fn money_for_points(point_value: PointValue, points: Points) -> Option<u64> {
    let m = u128::from(points).checked_mul(u128::from(point_value.minor_units))?;
    let v = m.checked_div(u128::from(point_value.per_points))?;
    u64::try_from(v).ok()
}

/// The fee conceded on `money`: `⌊money × fee_bps / 10 000⌋`. `None` if it would exceed `money`.
pub fn fee_for(money: u64, fee_bps: u32) -> Option<u64> {
    let fee = u128::from(money)
        .checked_mul(u128::from(fee_bps))?
        .checked_div(u128::from(BPS_DENOMINATOR))?;
    u64::try_from(fee).ok().filter(|&fee| fee <= money)
}

/// What an issuer owes a redeemer for `points`: their money minus the fee. `None` on overflow or
/// unusable parameters. Every cell of [`SettlementStatement::gross_money`] is this of its points.
pub fn cell_money(point_value: PointValue, fee_bps: u32, points: Points) -> Option<u64> {
    let money = money_for_points(point_value, points)?;
    money.checked_sub(fee_for(money, fee_bps)?)
}

fn check_parameters(point_value: PointValue, fee_bps: u32) -> Result<(), SettlementError> {
    if point_value.per_points == 0 {
        return Err(SettlementError::Parameter {
            field: "point_value.per_points",
            reason: "must be at least 1",
        });
    }
    if fee_bps > BPS_DENOMINATOR {
        return Err(SettlementError::Parameter {
            field: "fee_bps",
            reason: "must be at most 10000",
        });
    }
    Ok(())
}

fn check_distinct(partners: &[PartnerId]) -> Result<BTreeSet<PartnerId>, SettlementError> {
    let mut set = BTreeSet::new();
    for &partner in partners {
        if !set.insert(partner) {
            return Err(SettlementError::DuplicatePartner { partner });
        }
    }
    Ok(set)
}

fn check_len(what: &'static str, expected: usize, found: usize) -> Result<(), SettlementError> {
    if expected == found {
        Ok(())
    } else {
        Err(SettlementError::Shape {
            what,
            expected,
            found,
        })
    }
}

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
fn carry_forward(
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

    let mut cells: BTreeMap<(PartnerId, PartnerId), Points> = BTreeMap::new();
    let mut redeemed: BTreeMap<PartnerId, Points> = BTreeMap::new();
    for r in &activity.redemptions {
        let issuer = known(&set, r.issuer, "redemption issuer")?;
        let redeemer = known(&set, r.redeemer, "redemption redeemer")?;
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
            known(&set, partner, role)?;
        }
    }

    let gross_points: Vec<Vec<Points>> = partners
        .iter()
        .map(|i| {
            partners
                .iter()
                .map(|r| cells.get(&(*i, *r)).copied().unwrap_or(0))
                .collect()
        })
        .collect();
    let gross_money = partners
        .iter()
        .zip(&gross_points)
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
        .collect::<Result<Vec<_>, _>>()?;
    let net = net_positions(&partners, &gross_money)?;
    let transfers = netting(&partners, &net)?;

    let get = |map: &BTreeMap<PartnerId, Points>, p: &PartnerId| map.get(p).copied().unwrap_or(0);
    let per_issuer = partners
        .iter()
        .zip(opening)
        .map(|(issuer, opening)| {
            let (issued, redeemed, expired, restored) = (
                get(&activity.issued, issuer),
                get(&redeemed, issuer),
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
        .collect::<Result<Vec<_>, SettlementError>>()?;

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

/// Multilateral netting: transfers that settle every net position exactly, at most n − 1 of them,
/// none of zero amount, always from a net debtor to a net creditor.
///
/// Greedy and deterministic: the largest debtor pays the largest creditor the smaller of the two
/// amounts; ties go to the partner listed first. Fails if `net` does not have one entry per partner
/// or does not sum to zero (such positions cannot be settled).
pub fn netting(partners: &[PartnerId], net: &[i64]) -> Result<Vec<Transfer>, SettlementError> {
    check_len("net positions", partners.len(), net.len())?;
    let sum = net
        .iter()
        .map(|&v| i128::from(v))
        .try_fold(0i128, i128::checked_add)
        .unwrap_or(i128::MAX);
    if sum != 0 {
        return Err(SettlementError::NetSumNonZero { sum });
    }
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

/// Checks that a statement is internally consistent, as an auditor does before trusting it: one
/// entry per distinct partner in every table, zero diagonal, every money cell follows from its points,
/// every net position follows from the money matrix and they sum to zero, at most n − 1 transfers,
/// each from a net debtor to a net creditor and non-zero, settling every net position exactly, and
/// each issuer's outstanding points follow from its totals.
///
/// Whether the statement follows from the logs is a separate check: recompute it with
/// [`compute_statement`] and compare hashes.
pub fn verify_statement_consistency(s: &SettlementStatement) -> Result<(), SettlementError> {
    check_parameters(s.point_value, s.fee_bps)?;
    let n = s.partners.len();
    let set = check_distinct(&s.partners)?;
    check_len("gross points matrix", n, s.gross_points.len())?;
    check_len("gross money matrix", n, s.gross_money.len())?;
    check_len("net positions", n, s.net.len())?;
    check_len("per-issuer totals", n, s.per_issuer.len())?;

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
    let sum = s
        .net
        .iter()
        .map(|&v| i128::from(v))
        .try_fold(0i128, i128::checked_add)
        .unwrap_or(i128::MAX);
    if sum != 0 {
        return Err(SettlementError::NetSumNonZero { sum });
    }

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
    try_encode(s)?;
    Ok(())
}

impl SettlementStatement {
    /// The canonical hash, sealed in the epoch's checkpoint: `blake3(tag::STATEMENT ‖ encode(self))`.
    pub fn hash(&self) -> Hash {
        Hash::tagged(tag::STATEMENT, &encode(self))
    }

    /// Total minor units owed across the gross matrix (what would move without netting).
    pub fn gross_total(&self) -> u128 {
        self.gross_money
            .iter()
            .flatten()
            .map(|&m| u128::from(m))
            .fold(0u128, u128::saturating_add)
    }

    /// A plain-text report for people: the gross matrices (rows pay columns), net positions, who pays
    /// whom, and each issuer's points. Partners are named from `genesis` (a key prefix if absent);
    /// money is shown from minor units with two decimals and the currency code.
    pub fn render_table(&self, genesis: &Genesis) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.write_table(genesis, &mut out);
        out
    }

    fn write_table(&self, genesis: &Genesis, out: &mut String) -> std::fmt::Result {
        let cur = self.currency.as_str();
        let name = |p: &PartnerId| {
            genesis
                .partner(p)
                .map_or_else(|| p.short(), |g| g.name.clone())
        };
        let names: Vec<String> = self.partners.iter().map(name).collect();
        let pv = self.point_value;

        writeln!(out, "Settlement statement — epoch {}", self.epoch)?;
        writeln!(
            out,
            "Point value {} per {} point{}; fee {} bps ({}%) conceded by the redeemer",
            format_money(i128::from(pv.minor_units), cur),
            pv.per_points,
            if pv.per_points == 1 { "" } else { "s" },
            self.fee_bps,
            format_minor(i128::from(self.fee_bps)),
        )?;
        writeln!(out, "Statement hash {}", self.hash())?;

        let header: Vec<String> = std::iter::once("issuer \\ redeemer".to_string())
            .chain(names.iter().cloned())
            .collect();
        let matrix = |cells: &dyn Fn(usize, usize) -> String| -> Vec<Vec<String>> {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    std::iter::once(n.clone())
                        .chain((0..names.len()).map(|j| {
                            if i == j {
                                "-".to_string()
                            } else {
                                cells(i, j)
                            }
                        }))
                        .collect()
                })
                .collect()
        };
        let cell = |m: &[Vec<u64>], i: usize, j: usize| {
            m.get(i).and_then(|r| r.get(j)).copied().unwrap_or(0)
        };

        writeln!(
            out,
            "\nGross points owed (each row's issuer owes each column's redeemer)"
        )?;
        out.push_str(&grid(
            &header,
            &matrix(&|i, j| cell(&self.gross_points, i, j).to_string()),
            &[0],
        ));
        writeln!(out, "\nGross money owed after the fee, {cur}")?;
        out.push_str(&grid(
            &header,
            &matrix(&|i, j| format_minor(i128::from(cell(&self.gross_money, i, j)))),
            &[0],
        ));
        writeln!(
            out,
            "Total gross {} settled by {} in transfers",
            format_money(i128::try_from(self.gross_total()).unwrap_or(i128::MAX), cur),
            format_money(
                self.transfers
                    .iter()
                    .map(|t| i128::from(t.amount))
                    .fold(0, i128::saturating_add),
                cur
            ),
        )?;

        writeln!(out, "\nNet positions (received − paid)")?;
        let rows: Vec<Vec<String>> = names
            .iter()
            .zip(&self.net)
            .map(|(n, &v)| {
                let sign = if v > 0 { "+" } else { "" };
                let what = match v.signum() {
                    1 => "receives",
                    -1 => "pays",
                    _ => "even",
                };
                vec![
                    n.clone(),
                    format!("{sign}{}", format_money(i128::from(v), cur)),
                    what.into(),
                ]
            })
            .collect();
        out.push_str(&grid(
            &["partner".into(), "net".into(), String::new()],
            &rows,
            &[0, 2],
        ));

        writeln!(out, "\nWho pays whom")?;
        if self.transfers.is_empty() {
            writeln!(out, "  nothing to pay: every net position is zero")?;
        } else {
            let rows: Vec<Vec<String>> = self
                .transfers
                .iter()
                .map(|t| {
                    let account = genesis
                        .partner(&t.to)
                        .map(|g| g.settlement_account.clone())
                        .unwrap_or_default();
                    vec![
                        name(&t.from),
                        "pays".into(),
                        name(&t.to),
                        format_money(i128::from(t.amount), cur),
                        account,
                    ]
                })
                .collect();
            let header = ["payer", "", "payee", "amount", "to account"].map(String::from);
            out.push_str(&grid(&header, &rows, &[0, 1, 2, 4]));
        }

        writeln!(out, "\nPoints per issuer")?;
        let rows: Vec<Vec<String>> = names
            .iter()
            .zip(&self.per_issuer)
            .map(|(n, t)| {
                std::iter::once(n.clone())
                    .chain(
                        [
                            t.opening,
                            t.issued,
                            t.redeemed,
                            t.expired,
                            t.restored,
                            t.outstanding,
                        ]
                        .map(|v| v.to_string()),
                    )
                    .collect()
            })
            .collect();
        let header = [
            "issuer",
            "opening",
            "issued",
            "redeemed",
            "expired",
            "restored",
            "outstanding",
        ]
        .map(String::from);
        out.push_str(&grid(&header, &rows, &[0]));
        Ok(())
    }
}

/// `minor_units` as a decimal with two places and the currency code: `-1462` → `"-14.62 EUR"`.
pub fn format_money(minor_units: i128, currency: &str) -> String {
    format!("{} {currency}", format_minor(minor_units))
}

/// `minor_units` as a decimal with two places: `-1462` → `"-14.62"`, `5` → `"0.05"`.
fn format_minor(minor_units: i128) -> String {
    let sign = if minor_units < 0 { "-" } else { "" };
    let abs = minor_units.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// A text table, two spaces between columns, indented. Columns listed in `left` are left-aligned
/// (names, words); the others are right-aligned (numbers).
fn grid(header: &[String], rows: &[Vec<String>], left: &[usize]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (k, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(k) {
                Some(slot) => *slot = (*slot).max(w),
                None => widths.push(w),
            }
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::from(" ");
        for (k, (cell, &w)) in cells.iter().zip(&widths).enumerate() {
            s.push_str(if k == 0 { " " } else { "  " });
            if left.contains(&k) {
                s.push_str(&format!("{cell:<w$}"));
            } else {
                s.push_str(&format!("{cell:>w$}"));
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(header);
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::genesis::GenesisPartner;

    fn genesis(n: u8, fee_bps: u32) -> Genesis {
        Genesis {
            coalition: "unit".into(),
            genesis_time: 0,
            epoch_secs: 60,
            partners: (0..n)
                .map(|i| GenesisPartner {
                    name: format!("p{i}"),
                    id: PartnerId(Keypair::from_secret_bytes(&[i + 1; 32]).public()),
                    settlement_account: format!("acct-{i}"),
                })
                .collect(),
            fault_tolerance: None,
            point_value: PointValue {
                minor_units: 1,
                per_points: 1,
            },
            currency: "EUR".into(),
            fee_bps,
            max_clock_skew_secs: 300,
        }
    }

    #[test]
    fn money_agrees_with_genesis_and_rounds_down() {
        let mut g = genesis(1, 0);
        for pv in [(1, 1), (1, 2), (3, 7), (u64::MAX, 1), (5, u64::MAX)] {
            g.point_value = PointValue {
                minor_units: pv.0,
                per_points: pv.1,
            };
            for points in [0, 1, 3, 999, u64::MAX] {
                assert_eq!(
                    money_for_points(g.point_value, points),
                    g.money_for_points(points)
                );
            }
        }
        let pv = PointValue {
            minor_units: 1,
            per_points: 2,
        };
        assert_eq!(cell_money(pv, 0, 1001), Some(500));
        // 700 minor units at 2.5%: fee 17.5 rounds down to 17.
        assert_eq!(
            cell_money(
                PointValue {
                    minor_units: 1,
                    per_points: 1
                },
                250,
                700
            ),
            Some(683)
        );
        assert_eq!(fee_for(100, 10_000), Some(100));
        assert_eq!(fee_for(10_000, 10_001), None);
        assert_eq!(fee_for(u64::MAX, 10_000), Some(u64::MAX));
    }

    #[test]
    fn format_money_uses_integers() {
        assert_eq!(format_money(-1462, "EUR"), "-14.62 EUR");
        assert_eq!(format_money(5, "EUR"), "0.05 EUR");
        assert_eq!(format_money(-5, "EUR"), "-0.05 EUR");
        assert_eq!(format_money(0, "USD"), "0.00 USD");
        assert_eq!(
            format_money(i128::from(u64::MAX), "EUR"),
            "184467440737095516.15 EUR"
        );
        assert_eq!(
            format_minor(i128::MIN),
            "-1701411834604692317316873037158841057.28"
        );
    }

    #[test]
    fn netting_is_greedy_with_index_ties() {
        let g = genesis(4, 0);
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

    #[test]
    fn carry_forward_is_order_free_and_typed() {
        let p = genesis(1, 0).partners[0].id;
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

    #[test]
    fn bad_parameters_are_typed() {
        let mut g = genesis(2, 10_001);
        let a = EpochActivity::default();
        assert!(matches!(
            compute_statement(&g, &a, None),
            Err(SettlementError::Parameter {
                field: "fee_bps",
                ..
            })
        ));
        g.fee_bps = 0;
        g.point_value.per_points = 0;
        assert!(matches!(
            compute_statement(&g, &a, None),
            Err(SettlementError::Parameter {
                field: "point_value.per_points",
                ..
            })
        ));
        let mut g = genesis(2, 0);
        g.partners[1].id = g.partners[0].id;
        assert!(matches!(
            compute_statement(&g, &a, None),
            Err(SettlementError::DuplicatePartner { .. })
        ));
    }

    #[test]
    fn too_many_partners_to_encode_is_an_error() {
        // 300 partners → two 300×300 u64 matrices ≈ 1.4 MB > the canonical limit.
        let mut g = genesis(0, 0);
        g.partners = (0..300u32)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..4].copy_from_slice(&i.to_le_bytes());
                GenesisPartner {
                    name: format!("p{i}"),
                    id: PartnerId(crate::crypto::PublicKey(seed)),
                    settlement_account: String::new(),
                }
            })
            .collect();
        assert!(matches!(
            compute_statement(&g, &EpochActivity::default(), None),
            Err(SettlementError::Encode(_))
        ));
    }
}
